"""Searches a trained super-network with the multi-layer coordinate descent optimizer.

Example:
  python tools/search.py --preset=demo --supernet_checkpoint=workdir/supernet/supernet \
      --workdir=workdir/search
  python tools/search.py --preset=paper_latency --supernet_checkpoint=run1/supernet \
      --latency_table=table.json --target=51 --workdir=run1/search
  python tools/search.py --preset=paper_latency --metric=adb_latency --serial=all \
      --taskset=80 --supernet_checkpoint=run1/supernet --target=51 --workdir=run1/phones

  python tools/search.py --preset=depth_quick --supernet_checkpoint=workdir/depth/supernet \
      --workdir=workdir/depth_search
  python tools/search.py --preset=depth_quick --supernet_checkpoint=workdir/depth/supernet \
      --latency_table=fastdepth_host.json --target_fraction=0.7 --workdir=workdir/depth_latency

A depth super-network (fastdepth) is searched with a depth preset (depth_quick,
nyu_fastdepth_paper), its samples judged by delta1 or, with --depth_metric=rmse, by RMSE
(the search maximizes minus the RMSE) over the held-out depth maps; a checkpoint of the
other task than the preset's is refused before any data is read. The checkpoint is a
directory written by the trainer (spec.json and weights). The data
config defaults to the one the trainer recorded next to it, and the held-out split must be
the recorded one; a checkpoint without the trainer's split record is refused unless
--allow_unrecorded_split (the search then cannot check that it judges on held-out images).
Presets live in netadapt_tf/configs/search.py; flags override their fields (a
--latency_table without --metric makes any preset's search latency-guided). Rerun the same
command to resume an interrupted search; a work directory made with other settings is
refused unless --overwrite. See docs/search.md.

--metric=adb_latency converts every sample to TFLite and measures it on Android phones
(--adb_backend=benchmark_model, or android_app: the android_benchmark/ harness app; see
docs/on_device.md), through the work directory's measurement cache. With several phones
(--serial repeated, or --serial=all) the samples of an iteration are made in parallel, one
per phone; a phone lost mid-iteration hands its model to another.

Samples are judged by --judge_workers local processes (default: one per CPU core; each holds
the super-network; search/judge_pool.py), or with --judge_cluster by the workers of the
cluster in TF_CONFIG (tools/judge_server.py; search/cluster_judge.py). Either way the
readings are the serial judge's and the search's history is the same; a timing on this host
(--metric=host_latency) waits for the judging in flight.
"""

import contextlib
import json
import os
import sys

from absl import app, flags

from netadapt_tf import data
from netadapt_tf.cli import cli_flags, config_flags
from netadapt_tf.common.strict_json import RecordError
from netadapt_tf.configs import search as presets
from netadapt_tf.latency.adb_client import DeviceError
from netadapt_tf.latency.instrumentation import HarnessError
from netadapt_tf.metrics import backend_flags
from netadapt_tf.search import mcd, resources
from netadapt_tf.search.driver import SearchDriver
from netadapt_tf.search.held_out_accuracy import (
    EvalSettings,
    data_config,
    held_out_accuracy,
    open_checkpoint,
    split_record,
)
from netadapt_tf.search.judge_pool import HostTimingGate, JudgePool
from netadapt_tf.space.task import DEPTH_JUDGE_METRICS, check_depth_metric, check_task
from netadapt_tf.supernet import distribute

_PRESET = flags.DEFINE_enum("preset", "demo", sorted(presets.PRESETS), "Search preset.")
_CHECKPOINT = flags.DEFINE_string("supernet_checkpoint", None, "Super-network checkpoint dir.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Work directory of the search.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Start afresh in a work directory in use.")
_ARCH = cli_flags.define_arch_flag(False, "Arch JSON to start from (default: the full network).")
# The resource.
_METRIC = flags.DEFINE_enum("metric", None, list(resources.METRICS), "Resource to minimize.")
_TABLE = flags.DEFINE_string(
    "latency_table",
    None,
    "Latency lookup table for --metric=table (without --metric, it selects --metric=table "
    "over the preset's metric).",
)
_PHONE_BACKEND = flags.DEFINE_enum(
    "adb_backend",
    "benchmark_model",
    list(backend_flags.PHONE_BACKENDS),
    "How --metric=adb_latency measures on the phones: TFLite's benchmark_model binary or the "
    "android_benchmark/ harness app.",
)
# --metric=adb_latency: the model variant, runs, threads and phones (see docs/on_device.md).
backend_flags.define_measurement_flags()
backend_flags.define_phone_flags()
_TARGET = flags.DEFINE_float("target", None, "Final target, in the metric's unit.")
_FRACTION = flags.DEFINE_float("target_fraction", None, "Final target, a fraction of the start.")
# The optimizer.
_J = flags.DEFINE_integer("samples_per_iteration", None, "J: samples per iteration.")
_L = flags.DEFINE_integer("layers_per_sample", None, "L: search units shrunk per sample.")
_REDUCTION = flags.DEFINE_float("initial_reduction", None, "First reduction, fraction of start.")
_DECAY = flags.DEFINE_float("decay", None, "Reduction decay per iteration.")
_ITERATIONS = flags.DEFINE_integer("max_iterations", None, "Iterations at most.")
_SEED = flags.DEFINE_integer("seed", None, "Seed of the samples.")
_SAMPLER = flags.DEFINE_enum("sampler", None, list(mcd.SAMPLERS), "How samples are made.")
_TIES = flags.DEFINE_bool("tie_residual_streams", None, "Shrink residual streams as one.")
_ATTEMPTS = flags.DEFINE_integer("max_attempts", None, "Evaluation attempts per sample.")
_DRAWS = flags.DEFINE_integer("max_draws", None, "Draws per sample before it is infeasible.")
# The judge.
_DATASET = flags.DEFINE_string("dataset", None, "Dataset (default: the trainer's).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Where the dataset's files are.")
_HELD_OUT = flags.DEFINE_integer("held_out", None, "Held-out examples (default: the trainer's).")
_HELD_OUT_SEED = flags.DEFINE_integer("held_out_seed", None, "Seed of the held-out split.")
_EVAL_BATCH = flags.DEFINE_integer("eval_batch_size", None, "Batch size of the judge.")
_MAX_EXAMPLES = flags.DEFINE_integer("max_eval_examples", None, "Held-out examples judged.")
_RECAL = flags.DEFINE_integer("recalibration_batches", None, "BN recalibration batches.")
_RECAL_AVERAGE = flags.DEFINE_enum(
    "recalibration_average",
    None,
    ["cumulative", "momentum"],
    "How the recalibration batches' BN statistics combine (default: the preset's).",
)
_DEPTH_METRIC = flags.DEFINE_enum(
    "depth_metric",
    None,
    list(DEPTH_JUDGE_METRICS),
    "What a depth network's samples are judged by (default: the preset's, delta1); "
    "refused for a classifier.",
)
_UNRECORDED = flags.DEFINE_bool(
    "allow_unrecorded_split",
    False,
    "Judge even without the trainer's held-out split record next to the checkpoint.",
)

_JUDGE_WORKERS = flags.DEFINE_integer(
    "judge_workers",
    0,
    "Processes judging samples at once, each holding the super-network (search/judge_pool.py); "
    "0: one per CPU core, 1: judged in this process.",
    lower_bound=0,
)
_JUDGE_CLUSTER = flags.DEFINE_bool(
    "judge_cluster",
    False,
    "Judge samples on the cluster in TF_CONFIG (this process its chief; workers and "
    "parameter servers: tools/judge_server.py; search/cluster_judge.py) instead of in local "
    "processes.",
)

flags.mark_flags_as_required(["supernet_checkpoint", "workdir"])
flags.register_multi_flags_validator(
    ["target", "target_fraction"],
    lambda f: f["target"] is None or f["target_fraction"] is None,
    message="--target and --target_fraction exclude each other",
)
flags.register_multi_flags_validator(
    ["sampler", "samples_per_iteration", "layers_per_sample"],
    lambda f: (
        f["sampler"] != "single_layer"
        or (f["samples_per_iteration"] is None and f["layers_per_sample"] is None)
    ),
    message="--sampler=single_layer makes one sample per search unit with L=1; it takes no "
    "--samples_per_iteration or --layers_per_sample",
)


cli_flags.checked_by(
    mcd.MCDConfig,
    {
        "samples_per_iteration": "samples_per_iteration",
        "layers_per_sample": "layers_per_sample",
        "initial_reduction": "initial_reduction",
        "decay": "decay",
        "max_iterations": "max_iterations",
        "seed": "seed",
        "max_attempts": "max_attempts",
        "max_draws": "max_draws",
        "target": "target",
        "target_fraction": "target_fraction",
    },
)
cli_flags.checked_by(
    EvalSettings,
    {
        "eval_batch_size": "batch_size",
        "max_eval_examples": "max_examples",
        "recalibration_batches": "recalibration_batches",
    },
)
cli_flags.require("held_out", lambda v: v >= 1, "must be >= 1 (images)")
cli_flags.require("held_out_seed", lambda v: v >= 0, "must be >= 0")


_SEARCH_OVERRIDES = config_flags.Overrides(
    mcd.MCDConfig,
    {
        "samples_per_iteration": _J,
        "layers_per_sample": _L,
        "initial_reduction": _REDUCTION,
        "decay": _DECAY,
        "max_iterations": _ITERATIONS,
        "seed": _SEED,
        "sampler": _SAMPLER,
        "tie_residual_streams": _TIES,
        "max_attempts": _ATTEMPTS,
        "max_draws": _DRAWS,
    },
)
_EVAL_OVERRIDES = config_flags.Overrides(
    EvalSettings,
    {
        "batch_size": _EVAL_BATCH,
        "max_examples": _MAX_EXAMPLES,
        "recalibration_batches": _RECAL,
        "recalibration_average": _RECAL_AVERAGE,
        "depth_metric": _DEPTH_METRIC,
    },
)
# The data flags override fields of the trainer's recorded DataConfig (data_config()).
_DATA_OVERRIDES = config_flags.Overrides(
    data.DataConfig,
    {
        "name": _DATASET,
        "data_dir": _DATA_DIR,
        "held_out": _HELD_OUT,
        "held_out_seed": _HELD_OUT_SEED,
    },
)


def resolve_preset() -> presets.SearchPreset:
    """The preset with the flags' overrides applied (--target or --target_fraction
    replacing the preset's target)."""
    preset = presets.get_config(_PRESET.value)
    target = {}
    if _TARGET.value is not None:
        target = {"target": _TARGET.value, "target_fraction": None}
    if _FRACTION.value is not None:
        target = {"target": None, "target_fraction": _FRACTION.value}
    search = _SEARCH_OVERRIDES.apply(preset.search, **target)
    evaluation = _EVAL_OVERRIDES.apply(preset.evaluation)
    metric = _METRIC.value or ("table" if _TABLE.value else preset.metric)
    return presets.SearchPreset(search, metric, evaluation, preset.task)


def _check_data_flags(trained, preset, data_overrides: dict) -> None:
    """The data flags must make a data config with the trainer's record (a --data_dir for
    a generated dataset, which reads no files, is refused): a usage error."""
    try:
        data_config(trained, preset.evaluation.batch_size, data_overrides)
    except RecordError:
        raise  # a damaged record: an input's problem, not the flags'
    except ValueError as error:
        raise app.UsageError(str(error)) from None


def _judge(trained, judge_args: tuple, resource: resources.Resource):
    """(judge, what to close, accuracy fingerprint, sample threads, judge lock, measure):
    judged in this process (from `trained`, the checkpoint read once), by a pool of local
    processes or on the TF_CONFIG cluster (each reading the checkpoint `judge_args` name);
    with judging elsewhere, samples run at once, and a timing on this host waits for the
    judging in flight (HostTimingGate)."""
    if _JUDGE_CLUSTER.value:
        from netadapt_tf.search.cluster_judge import ClusterJudge

        judge = closer = ClusterJudge(judge_args)
        fingerprint, workers = judge.fingerprint, max(resource.workers, judge.workers)
    else:
        accuracy = held_out_accuracy(trained, *judge_args[1:])
        judge_workers = _JUDGE_WORKERS.value or distribute.available_cores()
        if judge_workers == 1:
            return (
                accuracy,
                None,
                accuracy.fingerprint,
                resource.workers,
                resource.lock,
                (resource.measure),
            )
        judge = closer = JudgePool(judge_args, judge_workers, num_examples=accuracy.num_examples)
        fingerprint, workers = accuracy.fingerprint, max(resource.workers, judge_workers)
    measure = resource.measure
    if resource.host_timed:
        gate = HostTimingGate()
        judge, measure = gate.judge(judge), gate.measure(measure)
    return judge, closer, fingerprint, workers, contextlib.nullcontext(), measure


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}; everything is a --flag")
    pool = None
    try:
        preset = resolve_preset()
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    try:
        trained = open_checkpoint(_CHECKPOINT.value)  # spec and records, read once
        spec = trained.spec
        if _DEPTH_METRIC.value is not None:
            check_depth_metric(spec, _DEPTH_METRIC.value, "--depth_metric")
        check_task(spec, preset.task, f"--preset={_PRESET.value}")
        mcd.check_config(spec, preset.search)  # J, L and the target, before any data
        initial = cli_flags.read_arch(_ARCH.value, spec) if _ARCH.value else None
        data_overrides = _DATA_OVERRIDES.values()
        _check_data_flags(trained, preset, data_overrides)
        split_record(trained, _UNRECORDED.value)  # refused before the workdir
        cli_flags.lock_workdir(_WORKDIR.value)  # before anything is written there
        phones = None
        if preset.metric == "adb_latency":
            phones = backend_flags.phone_backend_from_flags(_PHONE_BACKEND.value)
        resource = resources.make_resource(
            preset.metric,
            spec,
            _TABLE.value,
            cache_dir=os.path.join(_WORKDIR.value, "measurement_cache"),
            phones=phones,
            quantization=flags.FLAGS.quantization,
        )
        judge_args = (_CHECKPOINT.value, preset.evaluation, data_overrides, _UNRECORDED.value)
        judge, pool, fingerprint, workers, judge_lock, measure = _judge(
            trained, judge_args, resource
        )
        driver = SearchDriver(
            spec,
            preset.search,
            judge,
            measure,
            _WORKDIR.value,
            resource_fingerprint=resource.fingerprint,
            accuracy_fingerprint=fingerprint,
            initial_arch=initial,
            overwrite=_OVERWRITE.value,
            resource_unit=resource.unit,
            workers=workers,
            judge_lock=judge_lock,
        )
        driver.run()
    except (
        ValueError,
        DeviceError,
        HarnessError,
        mcd.SearchStalledError,
        mcd.StartFailedError,
    ) as error:
        print(f"search: {error}", file=sys.stderr)
        return 1
    finally:
        if pool is not None:
            pool.close()
    print(json.dumps(driver.read_summary(), indent=1))
    return 0


if __name__ == "__main__":
    cli_flags.run(main)
