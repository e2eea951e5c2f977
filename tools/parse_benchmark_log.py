"""Print the runs in a TensorFlow Lite `benchmark_model` log, as a table or as JSON.

Usage: python tools/parse_benchmark_log.py LOG_FILE [--json]

Exits with status 1 and the cause on stderr when the log holds no complete, successful run.
"""

import json
import pathlib
import sys

from absl import app, flags

from netadapt_tf.cli import cli_flags
from netadapt_tf.latency import benchmark_log

_JSON = flags.DEFINE_bool("json", False, "Print JSON {'runs': [...]} instead of a table.")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        raise app.UsageError(f"expected exactly one log file, got {len(argv) - 1}: {argv[1:]}")
    path = pathlib.Path(argv[1])
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
        runs = benchmark_log.parse_benchmark_log(text)
    except (OSError, benchmark_log.BenchmarkLogError) as error:
        print(f"parse_benchmark_log: {path}: {error}", file=sys.stderr)
        return 1
    if _JSON.value:
        print(json.dumps({"runs": [run.to_json() for run in runs]}, indent=2))
    else:
        print(benchmark_log.format_runs_table(runs))
    return 0


if __name__ == "__main__":
    cli_flags.run(main)
