"""Ship a trained discovered network as TFLite: float32, float16, int8 (post-training) and,
with --qat_epochs > 0, int8 trained with quantization awareness; each judged on the
validation set (accuracy next to the Keras model's, size, host latency with 1 thread).

Usage:
  python tools/export_tflite.py --keras_model=out/model.keras --arch=out/arch.json \
      --spec=workdir/supernet/supernet --output_dir=ship/ [--dataset=fashion_mnist] \
      [--quantizations=float32,float16,int8] [--qat_epochs=1] [--json]

--spec is the super-network the arch came from: a checkpoint directory (its spec.json) or a
spec JSON file. Writes model_float32.tflite, model_float16.tflite, model_int8_ptq.tflite,
model_int8_qat.tflite and export_summary.json into --output_dir (docs/shipping.md).
"""

import json
import sys

from absl import app, flags

from netadapt_tf.cli import cli_flags
from netadapt_tf.metrics.host import HostSettings
from netadapt_tf.shipping import dataset, pipeline, qat, trained_model

_MODEL = flags.DEFINE_string("keras_model", None, "Trained model (.keras, from model.save).")
_ARCH = flags.DEFINE_string("arch", None, "Arch JSON the model was exported from.")
_SPEC = flags.DEFINE_string("spec", None, "Super-network checkpoint directory or spec JSON.")
_OUTPUT = flags.DEFINE_string("output_dir", None, "Directory for the .tflite files and summary.")
_QUANT = flags.DEFINE_list(
    "quantizations", list(pipeline.QUANTIZATIONS), "Post-training variants to write."
)
_DATASET = flags.DEFINE_string("dataset", "fashion_mnist", "Dataset name (see netadapt_tf/data).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Where the dataset's files are.")
_SYNTHETIC = flags.DEFINE_integer("synthetic_examples", 1024, "Size of --dataset=synthetic.")
_CALIBRATION = flags.DEFINE_integer(
    "calibration_examples", 200, "Training images that calibrate int8.", lower_bound=1
)
_EVAL = flags.DEFINE_integer(
    "validation_examples", 0, "Validation images to judge on (0: all).", lower_bound=0
)
_QAT_EPOCHS = flags.DEFINE_integer(
    "qat_epochs", 0, "Epochs of quantization-aware training (0: none).", lower_bound=0
)
_QAT_EXAMPLES = flags.DEFINE_integer(
    "qat_examples", 10_000, "Training images for quantization-aware training.", lower_bound=1
)
_QAT_BATCH = flags.DEFINE_integer("qat_batch_size", 32, "QAT batch size.", lower_bound=1)
_QAT_LR = flags.DEFINE_float("qat_learning_rate", 1e-4, "QAT learning rate (Adam).")
flags.register_validator("qat_learning_rate", lambda v: v > 0, message="must be > 0")
_QAT_RANGES = flags.DEFINE_integer(
    "qat_range_batches",
    qat.QatSettings.range_batches,
    "Batches whose activation ranges start QAT's fake-quant ranges (0: TFMOT's [-6, 6]).",
    lower_bound=0,
)
_QAT_BN = flags.DEFINE_enum(
    "qat_batch_norm",
    qat.QatSettings.batch_norm,
    qat.BATCH_NORM_MODES,
    "QAT's batch norm: train (normalise by each batch, update the moving statistics) or "
    "frozen (as at inference, the trained moving statistics kept).",
)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the training order and of QAT.", lower_bound=0)
_RUNS = flags.DEFINE_integer("latency_runs", 50, "Timed runs per model.", lower_bound=5)
_WARMUP = flags.DEFINE_integer("warmup_runs", 5, "Untimed runs per model.", lower_bound=0)
_JSON = flags.DEFINE_bool("json", False, "Print the summary as JSON instead of a table.")

for _name in ("keras_model", "arch", "spec", "output_dir"):
    flags.mark_flag_as_required(_name)
flags.register_validator(
    "qat_learning_rate", lambda value: value > 0, message="--qat_learning_rate must be > 0"
)


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}; everything is a --flag")
    qat_epochs = _QAT_EPOCHS.value
    try:
        options = pipeline.ExportOptions(
            quantizations=tuple(_QUANT.value),
            qat=qat.QatSettings(
                epochs=qat_epochs,
                batch_size=_QAT_BATCH.value,
                learning_rate=_QAT_LR.value,
                seed=_SEED.value,
                range_batches=_QAT_RANGES.value,
                batch_norm=_QAT_BN.value,
            )
            if qat_epochs
            else None,
            latency=HostSettings(threads=1, warmup_runs=_WARMUP.value, num_runs=_RUNS.value),
        )
        network = trained_model.load_discovered(_MODEL.value, _ARCH.value, _SPEC.value)
        data = dataset.load_shipping_data(
            network.spec,
            _DATASET.value,
            _DATA_DIR.value,
            calibration_examples=_CALIBRATION.value,
            train_examples=_QAT_EXAMPLES.value if qat_epochs else 0,
            validation_examples=_EVAL.value or None,
            shuffle_seed=_SEED.value,
            synthetic_examples=_SYNTHETIC.value,
        )
        summary = pipeline.export_tflite_variants(network, _OUTPUT.value, data, options)
    except (ValueError, qat.QatError) as error:
        print(f"export_tflite: {error}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=1) if _JSON.value else pipeline.format_table(summary))
    return 0


if __name__ == "__main__":
    cli_flags.run(main)
