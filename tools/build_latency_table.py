"""Build, or continue building, the per-layer latency lookup table of a search space.

Usage:
  python tools/build_latency_table.py --model=netadaptv2_mobilenet_v3 --output=table.json
      [--width_multiplier=0.25 --input_size=32 --num_classes=10]
      [--max_x_points=4] [--calibration_archs=12] [--calibration_rounds=3]
      [--fit=sum] [--save_every=25] [--json]
      [--backend=host] [--threads=1 --num_runs=50 --warmup_runs=5 --clock=thread_cpu]
      [--backend=adb --serial=SERIAL --benchmark_binary=... --taskset=f0]

The table is saved every --save_every entries; running the same command again continues
where it stopped. A table at --output built for another model, backend or grid is refused.
See docs/metrics.md for the format and what each entry measures.
"""

import json
import sys

from absl import app, flags

from netadapt_tf.cli import cli_flags
from netadapt_tf.metrics import GridSettings, backend_flags, build_table
from netadapt_tf.metrics.lookup_table import FITS

cli_flags.define_model_flags()
backend_flags.define_backend_flags(("host", "adb"))
_OUTPUT = flags.DEFINE_string("output", None, "Table JSON file to write.", required=True)
_MAX_X = flags.DEFINE_integer(
    "max_x_points", 4, "Grid values of input channels per layer group.", lower_bound=2
)
_CAL_ARCHS = flags.DEFINE_integer(
    "calibration_archs", 12, "Whole networks measured to calibrate.", lower_bound=2
)
_CAL_ROUNDS = flags.DEFINE_integer(
    "calibration_rounds", 3, "Timing rounds per calibration network.", lower_bound=1
)
_FIT = flags.DEFINE_enum("fit", GridSettings().fit, sorted(FITS), "Calibration fit.")
_SAVE_EVERY = flags.DEFINE_integer("save_every", 25, "Save after this many entries.", lower_bound=1)
_JSON = flags.DEFINE_bool("json", False, "Print a JSON summary instead of text.")


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}; everything is a --flag")
    spec = cli_flags.spec_from_flags()
    try:
        grid = GridSettings(
            max_x_points=_MAX_X.value,
            calibration_archs=_CAL_ARCHS.value,
            calibration_rounds=_CAL_ROUNDS.value,
            fit=_FIT.value,
        )
        metric = backend_flags.latency_metric_from_flags(spec)
        table = build_table(
            spec,
            metric,
            _OUTPUT.value,
            grid,
            save_every=_SAVE_EVERY.value,
            progress=lambda message: print(f"build_latency_table: {message}", file=sys.stderr),
        )
    except (ValueError, OSError) as error:
        print(f"build_latency_table: {error}", file=sys.stderr)
        return 1
    summary = {
        "output": _OUTPUT.value,
        "model": spec.name,
        "fingerprint": spec.fingerprint(),
        "entries": table.num_entries,
        "groups": len(table.plan.groups),
        "complete": table.complete,
        "build_seconds": round(table.build_seconds, 1),
        "calibration": table.calibration["fit"] if table.calibration else None,
    }
    if _JSON.value:
        print(json.dumps(summary, indent=1))
    else:
        for key, value in summary.items():
            print(f"{key:<14}{value}")
    return 0


if __name__ == "__main__":
    cli_flags.run(main)
