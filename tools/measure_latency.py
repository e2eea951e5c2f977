"""Measure the latency (or MACs) of a .tflite file or of one arch of a super-network.

Usage:
  python tools/measure_latency.py --model=netadaptv2_mobilenet_v3 [--arch=arch.json]
      [--backend=host|adb|android_app|table|macs] [--json] [--cache_dir=DIR]
      [--width_multiplier=0.25 --input_size=32 --num_classes=10]
      host: [--threads=1 --num_runs=50 --warmup_runs=5 --clock=wall|thread_cpu --pin_cpus=1]
      adb (benchmark_model) and android_app (the android_benchmark/ harness app):
            [--serial=SERIAL ... | --serial=all] [--delegate=cpu|gpu|nnapi]
            adb only: [--benchmark_binary=...] [--taskset=f0]
      table: --table=table.json (tools/build_latency_table.py)
  python tools/measure_latency.py --model=... --tflite=model.tflite [--backend=host|adb|...]

Without --arch and --tflite the full network is measured. An arch is exported from a
super-network with random weights (latency does not depend on them) and converted to TFLite
(--quantization). --cache_dir keeps arch measurements on disk (MeasurementCache). --model is
required by the shared model flags even with --tflite, where it is not used. --json prints
one object: `value`, `unit`, `latency_ms`, `spread_ms` (inter-quartile range on the host,
standard deviation on a phone), `measurement`, `fingerprint`, `cache`. Without --serial the
one attached phone is used; several attached phones need --serial (or --serial=all).
"""

import json
import sys

from absl import app, flags

from netadapt_tf.cli import cli_flags
from netadapt_tf.latency.adb_client import DeviceError
from netadapt_tf.latency.instrumentation import HarnessError
from netadapt_tf.metrics import backend_flags, report
from netadapt_tf.metrics.measurement_cache import MeasurementCache
from netadapt_tf.space.arch import full_arch

cli_flags.define_model_flags()
backend_flags.define_backend_flags(("host", "adb", "android_app", "table", "macs"))
_ARCH = cli_flags.define_arch_flag(False, "Arch JSON file (default: the full network).")
_TFLITE = flags.DEFINE_string("tflite", None, "A .tflite file to measure instead of an arch.")
_TABLE = flags.DEFINE_string("table", None, "Latency table JSON for --backend=table.")
_CACHE_DIR = flags.DEFINE_string("cache_dir", None, "Measurement cache directory (archs only).")
_JSON = flags.DEFINE_bool("json", False, "Print one JSON object instead of text.")

flags.register_multi_flags_validator(
    ["tflite", "arch", "backend", "cache_dir"],
    lambda f: not f["tflite"] or (not f["arch"] and f["backend"] in ("host", "adb", "android_app")),
    message="--tflite is measured by --backend=host, adb or android_app, and excludes --arch",
)
flags.register_multi_flags_validator(
    ["tflite", "cache_dir"],
    lambda f: not (f["tflite"] and f["cache_dir"]),
    message="--cache_dir caches arch measurements; it does not apply to --tflite",
)
flags.register_multi_flags_validator(
    ["backend", "table"],
    lambda f: (f["backend"] == "table") == bool(f["table"]),
    message="--table is needed by, and only by, --backend=table",
)


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}; everything is a --flag")
    backend = flags.FLAGS.backend
    try:
        if _TFLITE.value:
            result = report.measure_tflite_file(_TFLITE.value, backend)
        else:
            spec = cli_flags.spec_from_flags()
            arch = cli_flags.read_arch(_ARCH.value, spec) if _ARCH.value else full_arch(spec)
            cache = MeasurementCache(_CACHE_DIR.value) if _CACHE_DIR.value else None
            result = report.measure_arch(spec, arch, backend, _TABLE.value, cache)
    except (ValueError, OSError, DeviceError, HarnessError) as error:
        print(f"measure_latency: {error}", file=sys.stderr)
        return 1
    result["source"] = _TFLITE.value or _ARCH.value or "full network"
    if _JSON.value:
        print(json.dumps(result, indent=1))
    else:
        print(report.describe(result))
    return 0


if __name__ == "__main__":
    cli_flags.run(main)
