"""Trains one column of the demo's comparison: every network of a plan, same start and recipe.

Usage:
  python tools/train_comparison.py --networks=workdir/demo/comparison/networks.json \
      --mode=inherit --supernet_checkpoint=workdir/demo/supernet/supernet \
      --workdir=workdir/demo/comparison/inherit --epochs=1 --steps_per_epoch=150

--networks is the plan the demo writes (netadapt_tf/pipeline/comparison.py); each network and seed
is trained in WORKDIR/<network>/seed<k> (model.keras, result.json) and recorded in
WORKDIR/results.json. --mode=inherit starts every network from the super-network's
weights, --mode=scratch every network from fresh ones. The recipe flags are those of
tools/train_discovered.py; the data config is the super-network trainer's, training on all
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
from netadapt_tf.cli import cli_flags
from netadapt_tf.common import strict_json as sj
from netadapt_tf.pipeline import comparison
from netadapt_tf.pipeline.comparison_training import VALIDATE_ON, train_column
from netadapt_tf.search.held_out_accuracy import data_config
from netadapt_tf.space.spec import load_spec
from netadapt_tf.supernet import checkpoint, distribute
from netadapt_tf.training.supernet_trainer import TrainConfig

_NETWORKS = flags.DEFINE_string("networks", None, "The comparison's networks.json.")
_MODE = flags.DEFINE_enum("mode", None, list(comparison.COLUMNS), "The column's start.")
_CHECKPOINT = flags.DEFINE_string("supernet_checkpoint", None, "Super-network checkpoint dir.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Work directory of the column.")
_SPEC = flags.DEFINE_string("spec", None, "Network spec JSON (no super-network; scratch).")
_DATA_CONFIG = flags.DEFINE_string("data_config", None, "DataConfig JSON (with --spec).")
_VALIDATE_ON = flags.DEFINE_enum("validate_on", "test", list(VALIDATE_ON), "Scored images.")
# The recipe (as tools/train_discovered.py; defaults are the paper's).
_EPOCHS = flags.DEFINE_integer("epochs", 150, "Epochs.", lower_bound=1)
_STEPS = flags.DEFINE_integer("steps_per_epoch", None, "Steps per epoch.", lower_bound=1)
_BATCH = flags.DEFINE_integer("batch_size", 1024, "Batch size.", lower_bound=1)
_LR = flags.DEFINE_float("learning_rate", 0.064, "Learning rate per 1024 images.")
_DECAY = flags.DEFINE_float("lr_decay", 0.963, "Learning-rate decay factor.")
_DECAY_EPOCHS = flags.DEFINE_float("lr_decay_epochs", 3.0, "Epochs between decays.")
_WARMUP = flags.DEFINE_float("warmup_epochs", 0.0, "Linear warm-up epochs.")
_OPTIMIZER = flags.DEFINE_enum("optimizer", "rmsprop", ["rmsprop", "sgd", "adam"], "Optimizer.")
_WD = flags.DEFINE_float("weight_decay", 1e-5, "l2 weight decay of kernels.")
_EMA = flags.DEFINE_float("ema_decay", 0.9998, "EMA of weights (0: off).")
_BN_MOMENTUM = flags.DEFINE_float("bn_momentum", 0.99, "Momentum of the moving BN statistics.")
_EVAL_BATCH = flags.DEFINE_integer("eval_batch_size", 256, "Test batch size.", lower_bound=1)
_MAX_EVAL = flags.DEFINE_integer("max_eval_examples", None, "Test examples (all).")
_CORES = flags.DEFINE_integer(
    "cores",
    0,
    distribute.CORES_HELP + " The demo trains its two columns at the same time on one core each.",
    lower_bound=0,
)

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
            "bn_momentum",
            "max_eval_examples",
        )
    },
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


def _data_config(spec, batch_size: int):
    """The DataConfig of --data_config (a JSON object of its fields), else the
    super-network trainer's recorded one, training on all its training images."""
    if _DATA_CONFIG.value is None:
        return data_config(_CHECKPOINT.value, spec, batch_size, {"held_out": 0})
    fields = sj.read(_DATA_CONFIG.value, lambda d: sj.mapping(d, "data_config"))
    try:
        return data.DataConfig(**{**fields, "batch_size": batch_size})
    except TypeError as error:
        raise ValueError(f"data_config: {_DATA_CONFIG.value}: {error}") from None


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
        bn_momentum=_BN_MOMENTUM.value,
        eval_batch_size=_EVAL_BATCH.value,
        max_eval_examples=_MAX_EVAL.value,
    )


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}; everything is a --flag")
    try:
        config = train_config()
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    try:
        distribute.use_cores(_CORES.value, config.batch_size)  # before TensorFlow runs anything
        networks = comparison.read_networks(_NETWORKS.value, require_discovered=False)
        spec = load_spec(_SPEC.value) if _SPEC.value else checkpoint.read_spec(_CHECKPOINT.value)
        data_cfg = _data_config(spec, config.batch_size)
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
