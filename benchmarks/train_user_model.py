"""What a user does before importing: train a small keras.applications model with plain
`model.fit` and save it as a .keras file (the start of docs/import.md's flow).

Example:
  python benchmarks/train_user_model.py --model=MobileNetV3Small --alpha=0.75 \
      --dataset=fashion_mnist --input_size=32 --epochs=3 --output=user/model.keras

Images come from the project's data pipeline (float32 in [0, 1], 3 channels), so the model
is built without its own preprocessing (include_preprocessing=False where the family has
it) and with a logits output (classifier_activation=None): the imported network then sees
in the search exactly what the model saw in training. Prints the validation accuracy.
"""

import json
import os

import keras
from absl import app, flags

from netadapt_tf import data

_MODEL = flags.DEFINE_string("model", "MobileNetV3Small", "keras.applications name.")
_ALPHA = flags.DEFINE_float("alpha", 1.0, "Width multiplier (alpha).")
_MINIMALISTIC = flags.DEFINE_bool("minimalistic", False, "MobileNetV3 minimalistic.")
_DATASET = flags.DEFINE_string("dataset", "fashion_mnist", "Dataset (netadapt_tf/data).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Where the dataset's files are.")
_HELD_OUT = flags.DEFINE_integer(
    "held_out",
    5000,
    "Training images kept out, as the super-network trainer keeps them for the search "
    "(same split: the model never sees the images the search judges on).",
    lower_bound=0,
)
_SIZE = flags.DEFINE_integer("input_size", 32, "Input size.", lower_bound=32)
_EPOCHS = flags.DEFINE_integer("epochs", 1, "Epochs.", lower_bound=1)
_STEPS = flags.DEFINE_integer("steps_per_epoch", None, "Steps per epoch (default: all).")
_BATCH = flags.DEFINE_integer("batch_size", 128, "Batch size.", lower_bound=1)
_LR = flags.DEFINE_float("learning_rate", 2e-3, "Adam learning rate.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed.")
_OUTPUT = flags.DEFINE_string("output", None, "Where to save the .keras model.")
flags.mark_flag_as_required("output")


def build(name: str, size: int, classes: int, alpha: float, minimalistic: bool):
    options = {"alpha": alpha}
    if name.startswith("MobileNetV3"):
        options.update(include_preprocessing=False, minimalistic=minimalistic)
    return getattr(keras.applications, name)(
        input_shape=(size, size, 3),
        weights=None,
        classes=classes,
        classifier_activation=None,
        **options,
    )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    keras.utils.set_random_seed(_SEED.value)
    config = data.DataConfig(
        name=_DATASET.value,
        image_size=_SIZE.value,
        channels=3,
        batch_size=_BATCH.value,
        data_dir=_DATA_DIR.value,
        held_out=_HELD_OUT.value,
        synthetic_classes=4,
    )
    datasets = data.load(config)
    model = build(
        _MODEL.value, _SIZE.value, datasets.num_classes, _ALPHA.value, _MINIMALISTIC.value
    )
    model.compile(
        optimizer=keras.optimizers.Adam(_LR.value),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    train = datasets.train.repeat().batch(_BATCH.value).prefetch(2)
    steps = _STEPS.value or datasets.num_train // _BATCH.value
    model.fit(train, epochs=_EPOCHS.value, steps_per_epoch=steps, verbose=2)
    _, accuracy = model.evaluate(datasets.validation.batch(256), verbose=0)
    os.makedirs(os.path.dirname(os.path.abspath(_OUTPUT.value)), exist_ok=True)
    model.save(_OUTPUT.value)
    print(json.dumps({"model": _OUTPUT.value, "validation_accuracy": round(accuracy, 4)}))


if __name__ == "__main__":
    app.run(main)
