"""Measures the networks of the demo's comparison: host latency and the super-network's read.

Usage:
  python tools/measure_comparison.py --networks=workdir/demo/comparison/networks.json \
      --supernet_checkpoint=workdir/demo/supernet/supernet \
      --search_settings=workdir/demo/search/search.json \
      --output=workdir/demo/comparison/measured.json

Every network's arch is converted to float32 TFLite and timed on this host's CPU with LiteRT
(1 thread, CPU time of the thread), in --rounds interleaved rounds; the accuracy read from
the super-network uses the search's judge with the settings the search recorded
(netadapt_tf/pipeline/comparison_measure.py).
"""

import sys

from absl import app, flags

from netadapt_tf.cli import cli_flags
from netadapt_tf.metrics.host import HostSettings
from netadapt_tf.pipeline import comparison
from netadapt_tf.pipeline.comparison_measure import (
    Measured,
    host_latencies,
    search_eval_settings,
    write_measured,
)
from netadapt_tf.search.held_out_accuracy import held_out_accuracy
from netadapt_tf.space.arch import load_arch
from netadapt_tf.supernet import checkpoint

_NETWORKS = flags.DEFINE_string("networks", None, "The comparison's networks.json.")
_CHECKPOINT = flags.DEFINE_string("supernet_checkpoint", None, "Super-network checkpoint dir.")
_SEARCH = flags.DEFINE_string("search_settings", None, "The search's search.json (its judge).")
_OUTPUT = flags.DEFINE_string("output", None, "Where to write measured.json.")
_ROUNDS = flags.DEFINE_integer("rounds", 5, "Interleaved timing rounds.", lower_bound=1)
_RUNS = flags.DEFINE_integer("latency_runs", 30, "Timed runs per network and round.", lower_bound=5)
_WARMUP = flags.DEFINE_integer(
    "warmup_runs", 3, "Untimed runs per network and round.", lower_bound=0
)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the rounds' orders.", lower_bound=0)

for _name in ("networks", "supernet_checkpoint", "search_settings", "output"):
    flags.mark_flag_as_required(_name)


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}; everything is a --flag")
    try:
        settings = HostSettings(
            threads=1, warmup_runs=_WARMUP.value, num_runs=_RUNS.value, clock="thread_cpu"
        )
        networks = comparison.read_networks(_NETWORKS.value, require_discovered=False)
        spec = checkpoint.read_spec(_CHECKPOINT.value)
        directory = comparison.plan_directory(_NETWORKS.value)
        archs = {n.name: load_arch(directory / n.arch, spec) for n in networks}
        evaluation = search_eval_settings(_SEARCH.value)
        judge = held_out_accuracy(_CHECKPOINT.value, evaluation)
        reads = {name: judge(arch) for name, arch in archs.items()}
        latencies = host_latencies(spec, archs, settings, _ROUNDS.value, _SEED.value)
    except ValueError as error:
        print(f"measure_comparison: {error}", file=sys.stderr)
        return 1
    measured = [
        Measured(name=name, host_ms=ms, rounds_ms=rounds, read_accuracy=reads[name])
        for name, (ms, rounds) in latencies.items()
    ]
    record = {"latency": settings.to_json(), "rounds": _ROUNDS.value, "judge": judge.fingerprint}
    write_measured(_OUTPUT.value, record, measured)
    for m in measured:
        print(f"{m.name:<16} {m.host_ms:.4f} ms  read {100 * m.read_accuracy:.2f}%")
    return 0


if __name__ == "__main__":
    cli_flags.run(main)
