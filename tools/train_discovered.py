"""Trains the discovered network (an exported sub-network) from scratch, from the
super-network's weights, or by trajectory knowledge transfer.

Example:
  python tools/train_discovered.py --mode=trajectory --supernet_checkpoint=TRAIN/supernet \
      --trajectory=SEARCH/trajectory.json --workdir=workdir/discovered
  python tools/train_discovered.py --mode=inherit --supernet_checkpoint=TRAIN/supernet \
      --arch=SEARCH/discovered_arch.json --distill --workdir=workdir/inherit

A depth network (fastdepth) trains on its depth data with the masked L1 and reports the depth
metrics (validation_rmse, validation_delta1, ...) where a classifier reports
validation_accuracy; see docs/depth.md. The run resumes from the work directory's last
checkpoint when started again with the same settings. Modes, flags and outputs: docs/discovered.md.
"""

import json
import sys

from absl import app, flags

from netadapt_tf import data
from netadapt_tf.cli import cli_flags
from netadapt_tf.discovered.trainer import DiscoveredOptions, DiscoveredRun, DiscoveredTrainer
from netadapt_tf.discovered.trajectory import read_trajectory
from netadapt_tf.search.held_out_accuracy import data_config
from netadapt_tf.space.spec import NetworkSpec, load_spec
from netadapt_tf.space.task import task_of
from netadapt_tf.supernet import checkpoint, distribute
from netadapt_tf.training.supernet_trainer import TrainConfig

_WORKDIR = flags.DEFINE_string("workdir", None, "Work directory (checkpoints, log, outputs).")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Start afresh in a work dir of other settings.")
_STRATEGY = flags.DEFINE_enum("strategy", "mirrored", distribute.STRATEGIES, "tf.distribute.")
_CORES = flags.DEFINE_integer("cores", 0, distribute.CORES_HELP, lower_bound=0)
_TPU = flags.DEFINE_string("tpu", "", "TPU name or address for --strategy=tpu.")
# What is trained.
_MODE = flags.DEFINE_string("mode", "inherit", "scratch, inherit or trajectory.")
_ARCH = cli_flags.define_arch_flag(False, "Arch to train (default: the trajectory's end).")
_CHECKPOINT = flags.DEFINE_string("supernet_checkpoint", None, "Super-network checkpoint dir.")
_SPEC = flags.DEFINE_string("spec", None, "Network spec JSON, when there is no checkpoint.")
_TRAJECTORY = flags.DEFINE_string("trajectory", None, "The search's trajectory.json.")
_INITIAL_MODEL = flags.DEFINE_string("initial_model", None, "Trained initial network (.keras).")
_INITIAL_ARCH = flags.DEFINE_string("initial_arch", None, "Arch of --initial_model (full).")
_STEPS_PER_ARCH = flags.DEFINE_integer(
    "steps_per_trajectory_arch", 100, "Steps per intermediate trajectory arch.", lower_bound=1
)
_TEACHER = flags.DEFINE_string("teacher_model", None, "Teacher (.keras); default: the full net.")
# Recipe (TrainConfig; defaults are the paper's).
_EPOCHS = flags.DEFINE_integer("epochs", 150, "Epochs of the final arch.", lower_bound=1)
_STEPS = flags.DEFINE_integer("steps_per_epoch", None, "Steps per epoch.", lower_bound=1)
_BATCH = flags.DEFINE_integer("batch_size", 1024, "Global batch size.", lower_bound=1)
_LR = flags.DEFINE_float("learning_rate", 0.064, "Learning rate per 1024 images.")
_DECAY = flags.DEFINE_float("lr_decay", 0.963, "Learning-rate decay factor.")
_DECAY_EPOCHS = flags.DEFINE_float("lr_decay_epochs", 3.0, "Epochs between decays.")
_WARMUP = flags.DEFINE_float("warmup_epochs", 0.0, "Linear warm-up epochs.")
_OPTIMIZER = flags.DEFINE_enum("optimizer", "rmsprop", ["rmsprop", "sgd", "adam"], "Optimizer.")
_WD = flags.DEFINE_float("weight_decay", 1e-5, "l2 weight decay of kernels.")
_EMA = flags.DEFINE_float("ema_decay", 0.9998, "EMA of weights (0: off).")
_SMOOTHING = flags.DEFINE_float("label_smoothing", 0.0, "Label smoothing.")
_BN_MOMENTUM = flags.DEFINE_float("bn_momentum", 0.99, "Momentum of the moving BN statistics.")
_DISTILL = flags.DEFINE_bool("distill", False, "Learn the teacher's soft outputs too.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of initialization and data order.")
_CKPT_STEPS = flags.DEFINE_integer("checkpoint_every_steps", 0, "0: once per epoch.")
_EVAL_BATCH = flags.DEFINE_integer("eval_batch_size", 256, "Validation batch size.")
_MAX_EVAL = flags.DEFINE_integer("max_eval_examples", None, "Validation examples (all).")
_RAND_AUGMENT = flags.DEFINE_float("rand_augment_magnitude", 0.0, "RandAugment (0: off).")
_MIXUP = flags.DEFINE_float("mixup_alpha", 0.0, "MixUp alpha (0: off).")
_CUTMIX = flags.DEFINE_float("cutmix_alpha", 0.0, "CutMix alpha (0: off).")
_DROP_PATH = flags.DEFINE_float("stochastic_depth", 0.0, "Stochastic depth rate (0: off).")
# Data (default: the super-network trainer's recorded config).
_DATASET = flags.DEFINE_string("dataset", None, "Dataset (default: the trainer's).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Where the dataset's files are.")
_HELD_OUT = flags.DEFINE_integer("held_out", 0, "Training examples kept out (0: train on all).")

flags.mark_flag_as_required("workdir")
cli_flags.checked_by(
    TrainConfig,
    {
        name: name
        for name in (
            "learning_rate",
            "lr_decay",
            "lr_decay_epochs",
            "warmup_epochs",
            "weight_decay",
            "ema_decay",
            "label_smoothing",
            "bn_momentum",
            "seed",
            "checkpoint_every_steps",
            "eval_batch_size",
            "max_eval_examples",
        )
    },
)
cli_flags.checked_by(
    DiscoveredOptions,
    {
        "mode": "mode",
        "rand_augment_magnitude": "rand_augment_magnitude",
        "mixup_alpha": "mixup_alpha",
        "cutmix_alpha": "cutmix_alpha",
        "stochastic_depth": "stochastic_depth",
    },
)
cli_flags.require("held_out", lambda v: v >= 0, "must be >= 0 (images)")


def read_spec() -> NetworkSpec:
    """The checkpoint's spec; --spec must then be the same network."""
    expected = load_spec(_SPEC.value) if _SPEC.value else None
    if _CHECKPOINT.value:
        return checkpoint.read_spec(_CHECKPOINT.value, expected)
    if expected is None:
        raise ValueError("spec: pass --supernet_checkpoint or --spec (a network spec JSON)")
    return expected


def train_config() -> TrainConfig:
    return TrainConfig(
        epochs=_EPOCHS.value,
        steps_per_epoch=_STEPS.value,
        batch_size=_BATCH.value,
        learning_rate=_LR.value,
        lr_decay=_DECAY.value,
        lr_decay_epochs=_DECAY_EPOCHS.value,
        warmup_epochs=_WARMUP.value,
        optimizer=_OPTIMIZER.value,
        weight_decay=_WD.value,
        ema_decay=_EMA.value,
        label_smoothing=_SMOOTHING.value,
        bn_momentum=_BN_MOMENTUM.value,
        distill=_DISTILL.value,
        seed=_SEED.value,
        checkpoint_every_steps=_CKPT_STEPS.value,
        eval_batch_size=_EVAL_BATCH.value,
        max_eval_examples=_MAX_EVAL.value,
    )


def load_data(spec: NetworkSpec, batch_size: int) -> tuple[data.DataConfig, data.Datasets]:
    overrides = {"name": _DATASET.value, "data_dir": _DATA_DIR.value, "held_out": _HELD_OUT.value}
    if _CHECKPOINT.value:
        config = data_config(_CHECKPOINT.value, spec, batch_size, overrides)
    elif _DATASET.value:
        config = data.DataConfig(
            **{k: v for k, v in overrides.items() if v is not None},
            image_size=spec.input_size,
            channels=spec.input_channels,
            batch_size=batch_size,
        )
    else:
        raise ValueError("dataset: no checkpoint to take the data config from; pass --dataset")
    datasets = data.load(config, task=task_of(spec))
    if datasets.num_classes != spec.num_classes:
        raise ValueError(
            f"dataset: {config.name} has {datasets.num_classes} classes but the network "
            f"{spec.name!r} has {spec.num_classes}"
        )
    return config, datasets


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}; everything is a --flag")
    try:
        options = DiscoveredOptions(
            mode=_MODE.value,
            steps_per_trajectory_arch=_STEPS_PER_ARCH.value,
            rand_augment_magnitude=_RAND_AUGMENT.value,
            mixup_alpha=_MIXUP.value,
            cutmix_alpha=_CUTMIX.value,
            stochastic_depth=_DROP_PATH.value,
        )
        config = train_config()
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    try:
        if _STRATEGY.value == "mirrored":  # before TensorFlow runs anything
            distribute.use_cores(_CORES.value, config.batch_size)
        spec = read_spec()
        arch = cli_flags.read_arch(_ARCH.value, spec) if _ARCH.value else None
        initial = cli_flags.read_arch(_INITIAL_ARCH.value, spec) if _INITIAL_ARCH.value else None
        trajectory = read_trajectory(_TRAJECTORY.value, spec) if _TRAJECTORY.value else None
        data_cfg, datasets = load_data(spec, config.batch_size)
        strategy = distribute.make_strategy(_STRATEGY.value, _TPU.value)
        if distribute.is_chief(strategy):  # the other workers write where the chief says
            cli_flags.lock_workdir(_WORKDIR.value)
        run = DiscoveredRun(
            spec=spec,
            arch=arch,
            config=config,
            options=options,
            workdir=_WORKDIR.value,
            supernet_dir=_CHECKPOINT.value,
            trajectory=trajectory,
            initial_model=_INITIAL_MODEL.value,
            initial_arch=initial,
            teacher_model=_TEACHER.value,
            data_record={"config": data_cfg.to_json(), "split": datasets.split.to_json()},
            overwrite=_OVERWRITE.value,
        )
        trainer = DiscoveredTrainer(
            run,
            datasets.train_for_epoch,
            datasets.validation,
            datasets.num_train,
            strategy=strategy,
        )
        result = trainer.run()
    except ValueError as error:
        print(f"train_discovered: {error}", file=sys.stderr)
        return 1
    summary = {
        "files": result.files,
        "steps": result.steps,
        "seconds": round(result.seconds, 1),
        **result.summary(),
    }
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    cli_flags.run(main)
