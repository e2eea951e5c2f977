"""`make demo`: the NetAdaptV2 pipeline, end to end on Fashion-MNIST with host latency.

Usage: python tools/demo.py [--seed=0] [--workdir=./workdir/demo] [--quick]

1. The search space: MACs and parameters of the paper's initial network (224x224, 1000
   classes), of random sub-networks of it and of its smallest sub-network.
2. A small super-network of the same design (netadapt_tf/configs/demo.py): random
   sub-networks are exported as plain Keras models and compared with the masked
   super-network.
3. The flow (netadapt_tf/pipeline/demo.py), each step a tool run as its own process
   (netadapt_tf/pipeline/stage_runner.py):
   super-network training, a host latency lookup table, the MCD search to 35% of the
   initial latency and a random search with as many judged samples; the comparison at
   equal training (netadapt_tf/pipeline/comparison.py): the initial network shrunk uniformly to
   several width fractions, the discovered network and the random pick, each trained with
   the same recipe and steps from the super-network's weights (one column) and from
   scratch (the other), measured on LiteRT and read from the super-network; TFLite export
   of the discovered network (float32, int8, int8 QAT); report.md with the accuracy
   against latency plot and the verdict.

Rerunning the same command skips finished steps and resumes an interrupted one; a step
whose command changed (another --seed, other flow settings) runs again from scratch, and so
do the steps after it (netadapt_tf/pipeline/stage_runner.py says why in each step's log).
`--quick` runs the flow on synthetic data with a tiny network (seconds per step; for tests).
"""

import pathlib
import sys
import time

from absl import app, flags

from netadapt_tf.cli import cli_flags
from netadapt_tf.configs import demo as demo_config
from netadapt_tf.pipeline import demo, demo_report
from netadapt_tf.pipeline.stage_runner import StageFailedError

_SEED = flags.DEFINE_integer(
    "seed", 0, "Seed of the random sub-networks and of the untrained weights.", lower_bound=0
)
_WORKDIR = flags.DEFINE_string("workdir", "./workdir/demo", "Directory for the outputs.")
_QUICK = flags.DEFINE_bool("quick", False, "Synthetic data and a tiny network (tests).")


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}; everything is a --flag")
    start = time.perf_counter()
    overrides = {"flow": demo_config.flow_quick()} if _QUICK.value else {}
    config = demo_config.get_config(seed=_SEED.value, **overrides)
    workdir = pathlib.Path(_WORKDIR.value)
    cli_flags.lock_workdir(workdir)  # each stage locks its own directory inside it too
    if not demo.check_search_space(config, workdir):
        print("demo: an exported model disagrees with the super-network", file=sys.stderr)
        return 1
    try:
        report = demo.run_flow(config.flow, workdir, config.seed)
    except (StageFailedError, ValueError) as error:
        print(f"demo: {error}", file=sys.stderr)
        print("demo: fix the cause and rerun the same command to go on", file=sys.stderr)
        return 1
    print(
        f"done in {time.perf_counter() - start:.0f} s; report: {report}; discovered arch: "
        f"{workdir / 'search' / 'discovered_arch.json'}; trajectory plot: "
        f"{workdir / 'search' / 'progress.png'}; comparison plot: "
        f"{workdir / demo_report.COMPARISON_PLOT}; TFLite: {workdir / 'export_discovered'}"
    )
    return 0


if __name__ == "__main__":
    cli_flags.run(main)
