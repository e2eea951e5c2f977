"""Trains one column of the demo's comparison: every network of a plan, same start and recipe.

Usage:
  python tools/train_comparison.py --networks=workdir/demo/comparison/networks.json \
      --mode=inherit --supernet_checkpoint=workdir/demo/supernet/supernet \
      --workdir=workdir/demo/comparison/inherit --epochs=1 --steps_per_epoch=150

--networks is the plan the demo writes (netadapt_tf/pipeline/comparison.py); each network and seed
is trained in WORKDIR/<network>/seed<k> (model.keras, result.json) and recorded in
WORKDIR/results.json. --mode=inherit starts every network from the super-network's
weights, --mode=scratch every network from fresh ones. The recipe is a --preset of
netadapt_tf/configs/discovered.py (the paper's by default) with flags overriding its fields,
as in tools/train_discovered.py; the data config is the super-network trainer's, training on all
its training images (no held-out split). Rerun the same command to go on after a kill.
--cores sets the CPU cores (data-parallel replicas) it trains on; the demo trains its two
columns side by side on one core each.

Without a super-network (networks trained before one exists, --mode=scratch only), --spec
names the network spec JSON and --data_config a DataConfig JSON (netadapt_tf/data/config.py
fields); --validate_on=held_out scores each epoch on the held-out training images instead
of the test images (benchmarks/pareto.py's learning curve).
"""

import sys

from absl import app, flags

from netadapt_tf import data
from netadapt_tf.cli import cli_flags, config_flags
from netadapt_tf.common import strict_json as sj
from netadapt_tf.configs import discovered as presets
from netadapt_tf.pipeline import comparison
from netadapt_tf.pipeline.comparison_training import VALIDATE_ON, train_column
from netadapt_tf.search.held_out_accuracy import data_config, open_checkpoint
from netadapt_tf.space.spec import load_spec
from netadapt_tf.supernet import distribute
from netadapt_tf.training.supernet_trainer import TrainConfig

_NETWORKS = flags.DEFINE_string("networks", None, "The comparison's networks.json.")
_MODE = flags.DEFINE_enum("mode", None, list(comparison.COLUMNS), "The column's start.")
_CHECKPOINT = flags.DEFINE_string("supernet_checkpoint", None, "Super-network checkpoint dir.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Work directory of the column.")
_SPEC = flags.DEFINE_string("spec", None, "Network spec JSON (no super-network; scratch).")
_DATA_CONFIG = flags.DEFINE_string("data_config", None, "DataConfig JSON (with --spec).")
_VALIDATE_ON = flags.DEFINE_enum("validate_on", "test", list(VALIDATE_ON), "Scored images.")
# The recipe: a preset (netadapt_tf/configs/discovered.py, as tools/train_discovered.py)
# and flags overriding its fields.
_PRESET = flags.DEFINE_enum(
    "preset", "paper_imagenet", sorted(presets.PRESETS), "Recipe preset (configs/discovered.py)."
)
_TRAIN = config_flags.define(TrainConfig, presets.RECIPE)
_CORES = flags.DEFINE_integer(
    "cores",
    0,
    distribute.CORES_HELP + " The demo trains its two columns at the same time on one core each.",
    lower_bound=0,
)

for _name in ("networks", "mode", "workdir"):
    flags.mark_flag_as_required(_name)
flags.register_multi_flags_validator(
    ["supernet_checkpoint", "spec", "data_config", "mode"],
    lambda f: (
        (f["supernet_checkpoint"] is None)
        == (f["spec"] is not None and f["data_config"] is not None and f["mode"] == "scratch")
        and (f["spec"] is None) == (f["data_config"] is None)
    ),
    message="pass --supernet_checkpoint, or --spec and --data_config with --mode=scratch",
)


def _data_config(trained, batch_size: int):
    """The DataConfig of --data_config (a JSON object of its fields), else the
    super-network trainer's recorded one, training on all its training images."""
    if _DATA_CONFIG.value is None:
        return data_config(trained, batch_size, {"held_out": 0})
    fields = sj.read(_DATA_CONFIG.value, lambda d: sj.mapping(d, "data_config"))
    try:
        return data.DataConfig(**{**fields, "batch_size": batch_size})
    except TypeError as error:
        raise ValueError(f"data_config: {_DATA_CONFIG.value}: {error}") from None


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}; everything is a --flag")
    config = _TRAIN.apply(presets.get_config(_PRESET.value).train)
    try:
        distribute.use_cores(_CORES.value, config.batch_size)  # before TensorFlow runs anything
        networks = comparison.read_networks(_NETWORKS.value, require_discovered=False)
        trained = None if _SPEC.value else open_checkpoint(_CHECKPOINT.value)  # read once
        spec = load_spec(_SPEC.value) if _SPEC.value else trained.spec
        data_cfg = _data_config(trained, config.batch_size)
        datasets = data.load(data_cfg)
        cli_flags.lock_workdir(_WORKDIR.value)
        runs = train_column(
            spec,
            networks,
            arch_dir=comparison.plan_directory(_NETWORKS.value),
            mode=_MODE.value,
            datasets=datasets,
            config=config,
            workdir=_WORKDIR.value,
            supernet_dir=_CHECKPOINT.value,
            data_record={"config": data_cfg.to_json(), "split": datasets.split.to_json()},
            validate_on=_VALIDATE_ON.value,
        )
    except ValueError as error:
        print(f"train_comparison: {error}", file=sys.stderr)
        return 1
    for run in runs:
        print(f"{run.name:<16} seed {run.seed}: {100 * run.accuracy:.2f}%")
    return 0


if __name__ == "__main__":
    cli_flags.run(main)
