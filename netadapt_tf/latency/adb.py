"""Measure .tflite latency on Android phones by running TFLite's `benchmark_model` over adb.

The adb plumbing (checks, retries, several phones) is `PhoneBackend` in phones.py. Each
measurement pushes the model under a unique name, runs the benchmark binary (optionally
pinned to cores with `taskset`), parses its log with `benchmark_log` and removes the pushed
file, also when something failed. Problems a person must fix (no adb, phone unauthorized,
binary missing or built for another ABI) raise `DeviceError` up front with what to do; a phone
that drops off USB or a command that hangs is retried with exponential back-off. A failed
measurement is always raised, never returned as a number.

Nothing goes through a host shell: adb runs from argument lists with timeouts, and the one
string handed to `adb shell` (which the phone's shell parses) is built from `shlex.quote`d
words, so model names with spaces, quotes or `;` cannot run anything on the phone.
"""

import dataclasses
import re
import time
from collections.abc import Callable

from netadapt_tf.latency.adb_client import DeviceError, DeviceLostError
from netadapt_tf.latency.benchmark_log import BenchmarkRun, parse_benchmark_log
from netadapt_tf.latency.phones import PhoneBackend, check_retry_settings

__all__ = [
    "AdbBenchmarkBackend",
    "AdbSettings",
    "DeviceError",
    "DeviceLostError",
    "LatencyMeasurement",
]

BACKEND_NAME = "adb_benchmark_model"


@dataclasses.dataclass(frozen=True, kw_only=True)
class AdbSettings:
    """Which phones to use and how to run `benchmark_model` on them.

    `serials` lists phones of one kind (see `AdbBenchmarkBackend.fingerprint`); `retries` is
    the number of extra attempts after a transient failure, waiting `backoff_s`, then twice
    that, and so on. `timeout_s` bounds every single adb command, the benchmark included.
    """

    serials: tuple[str, ...]
    adb_path: str = "adb"
    benchmark_binary: str = "/data/local/tmp/benchmark_model"
    remote_dir: str = "/data/local/tmp"
    num_threads: int = 1
    num_runs: int = 50
    warmup_runs: int = 5
    use_xnnpack: bool | None = None
    use_gpu: bool = False
    use_nnapi: bool = False
    report_peak_memory_footprint: bool = False
    enable_op_profiling: bool = False
    taskset_mask: str | None = None
    timeout_s: float = 300.0
    retries: int = 3
    backoff_s: float = 1.0

    def __post_init__(self):
        check_retry_settings("AdbSettings", self)
        binary = self.benchmark_binary
        if not isinstance(binary, str) or not binary.startswith("/"):
            raise ValueError(
                f"AdbSettings.benchmark_binary must be an absolute phone path, got {binary!r}"
            )
        for name, minimum in (("num_threads", 1), ("num_runs", 1), ("warmup_runs", 0)):
            _check_int(name, getattr(self, name), minimum)
        if self.use_xnnpack is not None and not isinstance(self.use_xnnpack, bool):
            raise TypeError(
                f"AdbSettings.use_xnnpack must be True, False or None, got {self.use_xnnpack!r}"
            )
        for name in _SWITCHES:
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"AdbSettings.{name} must be a bool, got {getattr(self, name)!r}")
        if self.use_gpu and self.use_nnapi:
            raise ValueError("AdbSettings.use_gpu and use_nnapi are both set; choose one delegate")
        mask = self.taskset_mask
        if mask is not None and not (
            isinstance(mask, str) and re.fullmatch(r"(0x)?0*[1-9a-fA-F][0-9a-fA-F]*", mask)
        ):
            raise ValueError(
                "AdbSettings.taskset_mask must be a non-zero hexadecimal CPU mask such as 'f0', "
                f"got {mask!r}"
            )

    def benchmark_flags(self) -> dict[str, object]:
        """The settings that change what `benchmark_model` measures, for fingerprints."""
        return {
            "num_threads": self.num_threads,
            "num_runs": self.num_runs,
            "warmup_runs": self.warmup_runs,
            "use_xnnpack": self.use_xnnpack,
            "use_gpu": self.use_gpu,
            "use_nnapi": self.use_nnapi,
            "report_peak_memory_footprint": self.report_peak_memory_footprint,
            "enable_op_profiling": self.enable_op_profiling,
            "taskset_mask": self.taskset_mask,
        }


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"AdbSettings.{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"AdbSettings.{name} must be >= {minimum}, got {value}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class LatencyMeasurement:
    """One model's latency on one phone.

    `latency_ms` is the median of the timed runs when `benchmark_model` prints it (newer
    builds), else their mean; `statistic` says which. `spread_ms` is their standard deviation
    when printed.
    """

    latency_ms: float
    statistic: str
    spread_ms: float | None
    run: BenchmarkRun
    serial: str

    @classmethod
    def from_run(cls, run: BenchmarkRun, serial: str) -> "LatencyMeasurement":
        if run.median_us is not None:
            latency_us, statistic = run.median_us, "median"
        else:
            latency_us, statistic = run.inference_avg_us, "avg"
        spread_ms = None if run.std_us is None else run.std_us / 1000.0
        return cls(
            latency_ms=latency_us / 1000.0,
            statistic=statistic,
            spread_ms=spread_ms,
            run=run,
            serial=serial,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "latency_ms": self.latency_ms,
            "statistic": self.statistic,
            "spread_ms": self.spread_ms,
            "run": self.run.to_json(),
            "serial": self.serial,
        }


# benchmark_model flags that are off unless AdbSettings turns them on.
_SWITCHES = ("use_gpu", "use_nnapi", "report_peak_memory_footprint", "enable_op_profiling")
# How the phone's shell and linker say that a binary cannot run, in the order to test them.
_EXEC_FAILURES = (
    (
        re.compile(r"not executable: \d+-bit ELF|exec format error|syntax error", re.I),
        "is built for another ABI than the phone's {abi} (supported: {abilist}); use the "
        "android_aarch64 build for arm64-v8a phones and android_arm for armeabi-v7a",
    ),
    (re.compile(r"CANNOT LINK EXECUTABLE", re.I), "cannot load its libraries"),
    (
        re.compile(r"permission denied|can't execute", re.I),
        "is not executable; run `adb shell chmod +x {binary}`",
    ),
    (
        re.compile(r"not found|no such file", re.I),
        "is missing; push it with `adb push benchmark_model {binary}` (see docs/on_device.md)",
    ),
)


class AdbBenchmarkBackend(PhoneBackend):
    """Measures .tflite files with `benchmark_model` on the phones named in `AdbSettings`.

    `sleep` is what waits between retries; tests pass a recorder so they do not wait.
    """

    def __init__(self, settings: AdbSettings, *, sleep: Callable[[float], None] = time.sleep):
        if not isinstance(settings, AdbSettings):
            raise TypeError(f"settings must be AdbSettings, got {type(settings).__name__}")
        super().__init__(settings, sleep=sleep)

    def fingerprint(self) -> dict[str, object]:
        """Describes what is measured and how, for keying cached measurements.

        Checks every phone first. All phones must report the same model, ABI, build and
        benchmark binary, since their measurements are used interchangeably.
        """
        devices = self.devices()
        return {
            "backend": BACKEND_NAME,
            "device": dict(devices[self._settings.serials[0]]),
            "benchmark_flags": self._settings.benchmark_flags(),
            "statistic": "median_ms if printed, else avg",
        }

    # -- one measurement ------------------------------------------------------------------

    def _measure_once(self, path: str, serial: str) -> LatencyMeasurement:
        settings = self._settings
        remote = self._remote_path(path)
        try:
            self._push(serial, path, remote)
            words = ["taskset", settings.taskset_mask] if settings.taskset_mask else []
            words += [
                settings.benchmark_binary,
                f"--graph={remote}",
                f"--num_threads={settings.num_threads}",
                f"--num_runs={settings.num_runs}",
                f"--warmup_runs={settings.warmup_runs}",
            ]
            if settings.use_xnnpack is not None:
                words.append(f"--use_xnnpack={str(settings.use_xnnpack).lower()}")
            for flag in _SWITCHES:
                if getattr(settings, flag):
                    words.append(f"--{flag}=true")
            code, out, err = self._client.shell(serial, words)
            runs = parse_benchmark_log(out + err)
            if code != 0:
                raise DeviceError(
                    f"benchmark_model on {serial} exited with status {code}; "
                    f"its log ends: {out[-500:]!r}"
                )
            if len(runs) != 1:
                raise DeviceError(
                    f"benchmark_model on {serial} printed {len(runs)} timing summaries, expected 1"
                )
            return LatencyMeasurement.from_run(runs[0], serial)
        finally:
            self._remove(serial, remote)

    # -- checks done once per phone -------------------------------------------------------

    def _check_device(self, serial: str) -> dict[str, str | None]:
        props = self._phone_checks(serial)
        abi = props["ro.product.cpu.abi"]
        binary = self._settings.benchmark_binary
        _, out, err = self._client.shell(serial, [binary, "--help"])
        for line in (out + err).splitlines():
            if binary not in line and "CANNOT LINK" not in line:
                continue  # only the shell's and linker's messages name the binary
            for pattern, problem in _EXEC_FAILURES:
                if pattern.search(line):
                    abilist = props.get("ro.product.cpu.abilist") or abi
                    what = problem.format(abi=abi, abilist=abilist, binary=binary)
                    raise DeviceError(
                        f"benchmark_model {binary!r} on {serial!r} {what}: {line.strip()!r}"
                    )

        code, out, _ = self._client.shell(serial, ["sha256sum", binary])
        digest = out.split()[0] if code == 0 and out.split() else None
        return {
            "manufacturer": props.get("ro.product.manufacturer"),
            "model": props["ro.product.model"],
            "abi": abi,
            "build_fingerprint": props.get("ro.build.fingerprint"),
            "benchmark_model_sha256": digest,
        }
