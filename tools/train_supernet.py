"""Trains a NetAdaptV2 super-network with ordered dropout.

Example:
  python tools/train_supernet.py --preset=fashion_mnist_demo --workdir=workdir/supernet
  python tools/train_supernet.py --preset=paper_imagenet --data_dir=/data/tfds \
      --strategy=multi_worker --workdir=gs://bucket/run1
  python tools/train_supernet.py --preset=depth_quick --workdir=workdir/depth_supernet
  python tools/train_supernet.py --preset=nyu_fastdepth_paper --data_dir=/data/tfds \
      --workdir=run_nyu/supernet

A depth network (--model=fastdepth, the depth presets) trains on a depth dataset
(procedural_depth, nyu_depth_v2) with the masked L1 loss; see docs/depth.md.

Presets live in netadapt_tf/configs/supernet.py; flags override their fields. The run
resumes from the work directory's last checkpoint when started again with the same settings.
"""

import dataclasses
import json
import os
import sys

from absl import app, flags

from netadapt_tf import data
from netadapt_tf.cli import cli_flags, config_flags
from netadapt_tf.configs import supernet as presets
from netadapt_tf.space.task import DEFAULT_SCORE, task_of
from netadapt_tf.supernet import checkpoint, distribute
from netadapt_tf.training.step import NonFiniteLossError
from netadapt_tf.training.supernet_trainer import SupernetTrainer, TrainConfig

_PRESET = flags.DEFINE_enum("preset", "fashion_mnist_demo", sorted(presets.PRESETS), "Preset.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Work directory (checkpoints, logs, result).")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Reuse a work directory of other settings.")
_STRATEGY = flags.DEFINE_enum("strategy", None, distribute.STRATEGIES, "tf.distribute strategy.")
_TPU = flags.DEFINE_string("tpu", "", "TPU name or address for --strategy=tpu.")
_CORES = flags.DEFINE_integer("cores", 0, distribute.CORES_HELP, lower_bound=0)
# Model overrides.
_MODEL = flags.DEFINE_string("model", None, "Builder name (overrides the preset).")
_WIDTH = flags.DEFINE_float("width_multiplier", None, "Width multiplier.")
_INPUT_SIZE = flags.DEFINE_integer("input_size", None, "Input size in pixels.")
_BYPASS = flags.DEFINE_bool("channel_bypass", None, "Channel-level bypass connections.")
_TIE_DW = flags.DEFINE_bool(
    "tie_depthwise", None, "Depthwise layers keep every input channel (widths not searched)."
)
# Data overrides.
_DATASET = flags.DEFINE_string("dataset", None, "Dataset name (see netadapt_tf/data).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Where the dataset's files are.")
_HELD_OUT = flags.DEFINE_integer("held_out", None, "Training images kept out for the search.")
# Training overrides.
_EPOCHS = flags.DEFINE_integer("epochs", None, "Epochs.", lower_bound=1)
_STEPS = flags.DEFINE_integer("steps_per_epoch", None, "Steps per epoch.", lower_bound=1)
_BATCH = flags.DEFINE_integer("batch_size", None, "Global batch size.", lower_bound=1)
_LR = flags.DEFINE_float("learning_rate", None, "Learning rate per 1024 images.")
_SANDWICH = flags.DEFINE_bool("sandwich", None, "Always train the full and smallest nets.")
_DISTILL = flags.DEFINE_bool("distill", None, "In-place distillation from the full network.")
_FULL = flags.DEFINE_bool("full_network", None, "Every step also trains the full network.")
_CORRELATION = flags.DEFINE_float(
    "width_correlation", None, "0: independent widths per layer (paper); 1: one per image."
)
_FREE = flags.DEFINE_float(
    "free_layer_probability", None, "Chance that a layer of an image draws its width alone."
)
_WARM = flags.DEFINE_integer(
    "warm_start_steps", None, "First steps that train only the full network.", lower_bound=0
)
_INIT_FROM = flags.DEFINE_string(
    "init_from",
    None,
    "A .keras file of the full network trained alone (for example the demo's initial "
    "network), or a super-network checkpoint directory such as tools/import_model.py's "
    "--output (its spec replaces the model flags): the super-network starts from its weights.",
)
_SHRINK = flags.DEFINE_float(
    "progressive_shrinking", None, "Fraction of steps over which smaller widths come in; 0: off."
)
_BN_MOMENTUM = flags.DEFINE_float("bn_momentum", None, "Momentum of the moving BN statistics.")
_SEED = flags.DEFINE_integer("seed", None, "Seed of initialization and sampling.")
_CKPT_STEPS = flags.DEFINE_integer("checkpoint_every_steps", None, "0: once per epoch.")

flags.mark_flag_as_required("workdir")
cli_flags.positive("width_multiplier")
cli_flags.positive("input_size")
cli_flags.require("held_out", lambda v: v >= 0, "must be >= 0 (images)")
cli_flags.checked_by(
    TrainConfig,
    {
        name: name
        for name in (
            "learning_rate",
            "width_correlation",
            "free_layer_probability",
            "progressive_shrinking",
            "bn_momentum",
            "seed",
            "checkpoint_every_steps",
        )
    },
)


_MODEL_OVERRIDES = config_flags.Overrides(
    presets.ModelConfig,
    {
        "name": _MODEL,
        "width_multiplier": _WIDTH,
        "input_size": _INPUT_SIZE,
        "channel_bypass": _BYPASS,
        "tie_depthwise": _TIE_DW,
    },
)
_TRAIN_OVERRIDES = config_flags.Overrides(
    TrainConfig,
    {
        "epochs": _EPOCHS,
        "steps_per_epoch": _STEPS,
        "batch_size": _BATCH,
        "learning_rate": _LR,
        "sandwich": _SANDWICH,
        "distill": _DISTILL,
        "full_network": _FULL,
        "width_correlation": _CORRELATION,
        "free_layer_probability": _FREE,
        "warm_start_steps": _WARM,
        "init_from": _INIT_FROM,
        "progressive_shrinking": _SHRINK,
        "bn_momentum": _BN_MOMENTUM,
        "seed": _SEED,
        "checkpoint_every_steps": _CKPT_STEPS,
    },
)
_DATA_OVERRIDES = config_flags.Overrides(
    data.DataConfig, {"name": _DATASET, "data_dir": _DATA_DIR, "held_out": _HELD_OUT}
)


def resolve_config() -> presets.SupernetConfig:
    """The preset with the flags' overrides applied."""
    config = presets.get_config(_PRESET.value)
    model = _MODEL_OVERRIDES.apply(config.model)
    train = _TRAIN_OVERRIDES.apply(config.train)
    data_config = _DATA_OVERRIDES.apply(
        config.data, image_size=model.input_size, batch_size=train.batch_size
    )
    strategy = _STRATEGY.value or config.strategy
    return presets.SupernetConfig(model, data_config, train, strategy)


def _spec(config: presets.SupernetConfig):
    """The preset's model, or the spec of the --init_from checkpoint directory (an import)."""
    init_from = config.train.init_from
    if init_from is not None and os.path.isdir(init_from):
        return checkpoint.read_spec(init_from)
    return config.model.build()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        config = resolve_config()
        if config.strategy == "mirrored":  # before TensorFlow runs anything
            distribute.use_cores(_CORES.value, config.train.batch_size)
        spec = _spec(config)
        config = dataclasses.replace(
            config,
            data=dataclasses.replace(
                config.data, image_size=spec.input_size, channels=spec.input_channels
            ),
        )
        task = task_of(spec)
        datasets = data.load(config.data, task=task)  # dataset errors before any training
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    if datasets.num_classes != spec.num_classes:
        raise app.UsageError(
            f"--dataset {config.data.name} has {datasets.num_classes} classes but the model "
            f"was built for {spec.num_classes}"
        )
    cli_flags.check(
        not _TPU.value or config.strategy == "tpu",
        "tpu",
        _TPU.value,
        f"only for --strategy=tpu (this run's strategy: {config.strategy})",
    )
    strategy = distribute.make_strategy(config.strategy, _TPU.value)
    os.makedirs(_WORKDIR.value, exist_ok=True)
    if distribute.is_chief(strategy):  # the other workers write where the chief says
        cli_flags.lock_workdir(_WORKDIR.value)
    try:  # a work directory of other settings, damaged checkpoints, a loss gone NaN
        data.record_split(_WORKDIR.value, datasets.split)
        trainer = SupernetTrainer(
            spec,
            datasets.train_for_epoch,
            datasets.held_out,
            datasets.num_train,
            config.train,
            _WORKDIR.value,
            strategy,
            data_record={"config": config.data.to_json(), "split": datasets.split.to_json()},
            overwrite=_OVERWRITE.value,
        )
        result = trainer.run()
    except (ValueError, NonFiniteLossError) as error:
        print(f"train_supernet: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    summary = {
        "supernet": result.supernet_dir,
        "steps": result.steps,
        "seconds": round(result.seconds, 1),
        "images_per_second": round(result.images_per_second, 1),
        f"held_out_{DEFAULT_SCORE[task]}": result.monitor,
    }
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    cli_flags.run(main)
