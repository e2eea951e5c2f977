"""Does the discovered network beat uniform shrinking and random search when every network
is trained to its plateau? (issue 21; the paper's Fig. 1 and Tables 1-2 are at convergence.)

  python benchmarks/pareto.py [--workdir=workdir/pareto] [--json]
  python benchmarks/pareto.py --quick --workdir=/tmp/pareto_quick   # minutes, for the tests

The flow a user runs (netadapt_tf/pipeline/pareto.py): the initial network's learning curve
on held-out training images chooses the budget (the first one whose doubling adds under 0.5
points); the initial network is trained at that budget on every seed (the uniform curve's
1.0 point); the super-network starts from its first seed (--init_from); an MCD search and a
random search with as many judged samples run per latency target (50% and 30% of the
initial network's table latency); the uniform width curve, the discovered networks, the
random picks and one MCD iteration's candidates are trained from scratch with the same
recipe and budget on every seed, and measured on LiteRT. Every step is a tool run recorded
in WORKDIR/stages.json and every training a recorded run: rerunning the command skips what
finished and resumes what was killed (kill -9 included), so a run can span sessions.

Writes WORKDIR/pareto.json (budget_epochs, seeds, networks with latency_ms and accuracies
per seed, margins per target and baseline with 95% intervals, the judge's quality, the
machine, the commands, the stage times) and WORKDIR/pareto.png; --json prints the record.
The statistics: netadapt_tf/pipeline/pareto_stats.py. Results: docs/benchmarks.md.
"""

import json
import pathlib
import sys

from absl import app, flags

from netadapt_tf.configs import pareto as pareto_config
from netadapt_tf.pipeline import pareto, pareto_record
from netadapt_tf.pipeline.stage_runner import StageFailedError

_WORKDIR = flags.DEFINE_string("workdir", "./workdir/pareto", "Directory of the run.")
_QUICK = flags.DEFINE_bool("quick", False, "Synthetic data, a tiny network, two seeds (tests).")
_JSON = flags.DEFINE_bool("json", False, "Print the record as JSON.")


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}; everything is a --flag")
    config = pareto_config.quick() if _QUICK.value else pareto_config.ParetoConfig()
    workdir = pathlib.Path(_WORKDIR.value)
    log = (lambda line: print(line, file=sys.stderr)) if _JSON.value else print
    try:
        pareto.run_stages(config, workdir, log)
        record = pareto_record.build_record(config, workdir)
    except (StageFailedError, ValueError) as error:
        print(f"pareto: {error}", file=sys.stderr)
        print("pareto: fix the cause and rerun the same command to go on", file=sys.stderr)
        return 1
    path, plot = pareto_record.write(record, workdir)
    if _JSON.value:
        print(json.dumps(record, indent=1))
    else:
        for line in pareto_record.summary_lines(record):
            print(line)
        print(f"record: {path}; plot: {plot}")
    return 0


if __name__ == "__main__":
    app.run(main)
