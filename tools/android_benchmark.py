"""Time .tflite models inside an app on Android phones (the android_benchmark/ harness).

Usage:
  python tools/android_benchmark.py --tflite=model.tflite [--tflite=...]
      [--serial=SERIAL ... | --serial=all] [--delegates=cpu,gpu,nnapi] [--threads=1,4]
      [--num_runs=50 --warmup_runs=5] [--parity] [--json] [--output=report.json]
  python tools/android_benchmark.py --build [--install_only]      # Gradle, needs the SDK
  python tools/android_benchmark.py --apk=app.apk --test_apk=test.apk [--install_only]

Each model runs in the harness app with every delegate and thread count: median, p90 and
init time, peak memory, and (with --parity, the default) the largest difference between the
phone's outputs and LiteRT on this host for the same random inputs. --build builds the APKs
with Gradle and installs them on every chosen phone; --apk/--test_apk install given ones.
Without --serial the one attached phone is used; --serial=all uses every attached phone
(models are shared among them). See docs/on_device.md.
"""

import json
import sys

from absl import app, flags

from netadapt_tf.cli import cli_flags
from netadapt_tf.latency import app_report, harness_build
from netadapt_tf.latency.adb_client import DeviceError, choose_serials
from netadapt_tf.latency.android_app import (
    DELEGATES,
    AndroidAppBackend,
    AndroidAppSettings,
    HarnessError,
)

_TFLITE = flags.DEFINE_multi_string("tflite", [], "A .tflite file to time (repeat for several).")
_SERIAL = flags.DEFINE_multi_string(
    "serial", [], "Phone serial (repeat for several), or 'all' for every attached phone."
)
_ADB = flags.DEFINE_string("adb_path", "adb", "The adb executable.")
_BUILD = flags.DEFINE_bool("build", False, "Build the harness with Gradle and install it.")
_APK = flags.DEFINE_string("apk", None, "Install this harness app APK first.")
_TEST_APK = flags.DEFINE_string("test_apk", None, "Install this harness test APK first.")
_INSTALL_ONLY = flags.DEFINE_bool("install_only", False, "Install the harness, time nothing.")
_DELEGATES = flags.DEFINE_list("delegates", ["cpu"], f"Delegates to run, of {list(DELEGATES)}.")
_THREADS = flags.DEFINE_list("threads", ["1"], "Interpreter thread counts to run.")
_RUNS = flags.DEFINE_integer("num_runs", 50, "Timed runs per model and setting.", lower_bound=1)
_WARMUP = flags.DEFINE_integer("warmup_runs", 5, "Untimed runs before timing.", lower_bound=0)
_XNNPACK = flags.DEFINE_bool("use_xnnpack", True, "Let LiteRT use XNNPACK on the CPU.")
_PARITY = flags.DEFINE_bool("parity", True, "Compare the phone's outputs with the host's.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the parity inputs.", lower_bound=0)
_TIMEOUT = flags.DEFINE_float("timeout_s", 600.0, "Limit of each adb command.")
flags.register_validator("timeout_s", lambda v: v > 0, message="must be > 0 (seconds)")
_JSON = flags.DEFINE_bool("json", False, "Print the report as JSON.")
_OUTPUT = flags.DEFINE_string("output", None, "Also write the JSON report to this file.")

flags.register_multi_flags_validator(
    ["apk", "test_apk", "build"],
    lambda f: (f["apk"] is None) == (f["test_apk"] is None) and not (f["build"] and f["apk"]),
    message="--apk and --test_apk go together, and exclude --build",
)
flags.register_multi_flags_validator(
    ["tflite", "install_only", "build", "apk"],
    lambda f: (
        bool(f["tflite"]) != f["install_only"] and (not f["install_only"] or f["build"] or f["apk"])
    ),
    message="give --tflite files to time, or --install_only with --build or --apk",
)


def _threads() -> list[int]:
    try:
        threads = [int(t) for t in _THREADS.value]
    except ValueError:
        threads = [0]
    if min(threads) < 1:
        raise ValueError(f"--threads: {_THREADS.value} must be integers >= 1")
    return threads


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}; everything is a --flag")
    try:
        threads = _threads()
        serials = choose_serials(_SERIAL.value, _ADB.value)
        settings = AndroidAppSettings(
            serials=serials,
            adb_path=_ADB.value,
            num_runs=_RUNS.value,
            warmup_runs=_WARMUP.value,
            use_xnnpack=_XNNPACK.value,
            timeout_s=_TIMEOUT.value,
        )
        backend = AndroidAppBackend(settings)
        apks = harness_build.build_harness() if _BUILD.value else None
        if _APK.value:
            apks = harness_build.HarnessApks(_APK.value, _TEST_APK.value)
        for serial in serials if apks else ():
            backend.install(apks.apk, apks.test_apk, serial)
            print(f"android_benchmark: installed the harness on {serial}", file=sys.stderr)
        if _INSTALL_ONLY.value:
            return 0
        report = app_report.benchmark_files(
            backend,
            _TFLITE.value,
            delegates=_DELEGATES.value,
            threads=threads,
            parity=_PARITY.value,
            seed=_SEED.value,
        )
    except (ValueError, OSError, DeviceError, HarnessError) as error:
        print(f"android_benchmark: {error}", file=sys.stderr)
        return 1
    if _OUTPUT.value:
        with open(_OUTPUT.value, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=1)
    print(json.dumps(report, indent=1) if _JSON.value else app_report.describe(report))
    return 0


if __name__ == "__main__":
    cli_flags.run(main)
