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
from netadapt_tf.cli import cli_flags, config_flags
from netadapt_tf.configs import discovered as presets
from netadapt_tf.discovered.trainer import DiscoveredOptions, DiscoveredRun, DiscoveredTrainer
from netadapt_tf.discovered.trajectory import read_trajectory
from netadapt_tf.search.held_out_accuracy import TrainedSupernet, data_config, open_checkpoint
from netadapt_tf.space.spec import NetworkSpec, load_spec
from netadapt_tf.space.task import task_of
from netadapt_tf.supernet import distribute
from netadapt_tf.training.supernet_trainer import TrainConfig

_WORKDIR = flags.DEFINE_string("workdir", None, "Work directory (checkpoints, log, outputs).")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Start afresh in a work dir of other settings.")
_STRATEGY = flags.DEFINE_enum("strategy", "mirrored", distribute.STRATEGIES, "tf.distribute.")
_CORES = flags.DEFINE_integer("cores", 0, distribute.CORES_HELP, lower_bound=0)
_TPU = flags.DEFINE_string("tpu", "", "TPU name or address for --strategy=tpu.")
# What is trained.
_ARCH = cli_flags.define_arch_flag(False, "Arch to train (default: the trajectory's end).")
_CHECKPOINT = flags.DEFINE_string("supernet_checkpoint", None, "Super-network checkpoint dir.")
_SPEC = flags.DEFINE_string("spec", None, "Network spec JSON, when there is no checkpoint.")
_TRAJECTORY = flags.DEFINE_string("trajectory", None, "The search's trajectory.json.")
_INITIAL_MODEL = flags.DEFINE_string("initial_model", None, "Trained initial network (.keras).")
_INITIAL_ARCH = flags.DEFINE_string("initial_arch", None, "Arch of --initial_model (full).")
_TEACHER = flags.DEFINE_string("teacher_model", None, "Teacher (.keras); default: the full net.")
# The recipe: a preset (netadapt_tf/configs/discovered.py) and flags overriding its fields.
_PRESET = flags.DEFINE_enum(
    "preset", "paper_imagenet", sorted(presets.PRESETS), "Recipe preset (configs/discovered.py)."
)
_TRAIN = config_flags.define(TrainConfig, {**presets.RECIPE, **presets.DISCOVERED_ONLY})
_OPTIONS = config_flags.define(DiscoveredOptions, presets.OPTIONS)
# Data (default: the super-network trainer's recorded config).
_DATASET = flags.DEFINE_string("dataset", None, "Dataset (default: the trainer's).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Where the dataset's files are.")
_HELD_OUT = flags.DEFINE_integer("held_out", 0, "Training examples kept out (0: train on all).")

flags.mark_flag_as_required("workdir")
cli_flags.require("held_out", lambda v: v >= 0, "must be >= 0 (images)")


def read_checkpoint() -> tuple[NetworkSpec, TrainedSupernet | None]:
    """(spec, the checkpoint read once or None): the checkpoint's spec, which --spec must
    then name too, or --spec's without a checkpoint."""
    expected = load_spec(_SPEC.value) if _SPEC.value else None
    if _CHECKPOINT.value:
        trained = open_checkpoint(_CHECKPOINT.value, expected)
        return trained.spec, trained
    if expected is None:
        raise ValueError("spec: pass --supernet_checkpoint or --spec (a network spec JSON)")
    return expected, None


def load_data(
    spec: NetworkSpec, trained: TrainedSupernet | None, batch_size: int
) -> tuple[data.DataConfig, data.Datasets]:
    overrides = {"name": _DATASET.value, "data_dir": _DATA_DIR.value, "held_out": _HELD_OUT.value}
    if trained is not None:
        config = data_config(trained, batch_size, overrides)
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
    preset = presets.get_config(_PRESET.value)
    options = _OPTIONS.apply(preset.options)
    config = _TRAIN.apply(preset.train)
    try:
        if _STRATEGY.value == "mirrored":  # before TensorFlow runs anything
            distribute.use_cores(_CORES.value, config.batch_size)
        spec, trained = read_checkpoint()
        arch = cli_flags.read_arch(_ARCH.value, spec) if _ARCH.value else None
        initial = cli_flags.read_arch(_INITIAL_ARCH.value, spec) if _INITIAL_ARCH.value else None
        trajectory = read_trajectory(_TRAJECTORY.value, spec) if _TRAJECTORY.value else None
        data_cfg, datasets = load_data(spec, trained, config.batch_size)
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
