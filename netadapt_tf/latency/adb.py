"""Measure .tflite latency on Android phones by running TFLite's `benchmark_model` over adb.

Each measurement pushes the model under a unique name, runs the benchmark binary (optionally
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
import logging
import math
import os
import posixpath
import queue
import re
import shlex
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence

from netadapt_tf.latency.benchmark_log import BenchmarkRun, parse_benchmark_log

__all__ = ["AdbBenchmarkBackend", "AdbSettings", "DeviceError", "LatencyMeasurement"]

_log = logging.getLogger(__name__)

BACKEND_NAME = "adb_benchmark_model"


class DeviceError(RuntimeError):
    """adb, the phone or the benchmark binary cannot take the measurement."""


class _TransientDeviceError(DeviceError):
    """Worth retrying: the phone dropped off the bus, adb's transport broke, a command hung."""


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
    taskset_mask: str | None = None
    timeout_s: float = 300.0
    retries: int = 3
    backoff_s: float = 1.0

    def __post_init__(self):
        serials = self.serials
        if isinstance(serials, str) or not isinstance(serials, Sequence):
            raise TypeError(
                f"AdbSettings.serials must be a tuple of serial strings (e.g. ('{serials}',)), "
                f"got {type(serials).__name__} {serials!r}"
            )
        object.__setattr__(self, "serials", tuple(serials))
        if not self.serials:
            raise ValueError("AdbSettings.serials is empty; list at least one (see `adb devices`)")
        for serial in self.serials:
            if not isinstance(serial, str) or not serial or serial != serial.strip():
                raise ValueError(f"AdbSettings.serials has an invalid serial {serial!r}")
        if len(set(self.serials)) != len(self.serials):
            raise ValueError(f"AdbSettings.serials has duplicates: {self.serials!r}")
        if not isinstance(self.adb_path, str) or not self.adb_path:
            raise ValueError(f"AdbSettings.adb_path must be a non-empty str, got {self.adb_path!r}")
        for name in ("benchmark_binary", "remote_dir"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.startswith("/"):
                raise ValueError(
                    f"AdbSettings.{name} must be an absolute phone path, got {value!r}"
                )
        for name, minimum in (("num_threads", 1), ("num_runs", 1), ("warmup_runs", 0)):
            _check_int(name, getattr(self, name), minimum)
        _check_int("retries", self.retries, 0)
        if self.use_xnnpack is not None and not isinstance(self.use_xnnpack, bool):
            raise TypeError(
                f"AdbSettings.use_xnnpack must be True, False or None, got {self.use_xnnpack!r}"
            )
        if not isinstance(self.use_gpu, bool):
            raise TypeError(f"AdbSettings.use_gpu must be a bool, got {self.use_gpu!r}")
        mask = self.taskset_mask
        if mask is not None and not (
            isinstance(mask, str) and re.fullmatch(r"(0x)?0*[1-9a-fA-F][0-9a-fA-F]*", mask)
        ):
            raise ValueError(
                "AdbSettings.taskset_mask must be a non-zero hexadecimal CPU mask such as 'f0', "
                f"got {mask!r}"
            )
        for name, minimum_exclusive in (("timeout_s", True), ("backoff_s", False)):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
                or (minimum_exclusive and value == 0)
            ):
                bound = "> 0" if minimum_exclusive else ">= 0"
                raise ValueError(
                    f"AdbSettings.{name} must be a finite number {bound}, got {value!r}"
                )

    def benchmark_flags(self) -> dict[str, object]:
        """The settings that change what `benchmark_model` measures, for fingerprints."""
        return {
            "num_threads": self.num_threads,
            "num_runs": self.num_runs,
            "warmup_runs": self.warmup_runs,
            "use_xnnpack": self.use_xnnpack,
            "use_gpu": self.use_gpu,
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


# adb's own complaints (on the host's stderr) when the connection to the phone breaks.
_TRANSPORT_ERROR = re.compile(
    r"error: (device (?:'[^']*' )?not found|no devices/emulators found|device offline|closed"
    r"|protocol fault|connection reset|device still (?:connecting|authorizing))",
    re.IGNORECASE,
)
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
_GETPROP_LINE = re.compile(r"^\[([^\]]+)\]: \[(.*)\]$")


class AdbBenchmarkBackend:
    """Measures .tflite files with `benchmark_model` on the phones named in `AdbSettings`.

    `sleep` is what waits between retries; tests pass a recorder so they do not wait.
    """

    def __init__(self, settings: AdbSettings, *, sleep: Callable[[float], None] = time.sleep):
        if not isinstance(settings, AdbSettings):
            raise TypeError(f"settings must be AdbSettings, got {type(settings).__name__}")
        self._settings = settings
        self._sleep = sleep
        self._adb: str | None = None
        self._devices: dict[str, dict[str, str | None]] = {}
        self._serial_locks = {serial: threading.Lock() for serial in settings.serials}

    @property
    def settings(self) -> AdbSettings:
        return self._settings

    def fingerprint(self) -> dict[str, object]:
        """Describes what is measured and how, for keying cached measurements.

        Checks every phone first. All phones must report the same model, ABI, build and
        benchmark binary, since their measurements are used interchangeably.
        """
        devices = {serial: self._ensure_ready(serial) for serial in self._settings.serials}
        first_serial = self._settings.serials[0]
        for serial, device in devices.items():
            if device != devices[first_serial]:
                raise DeviceError(
                    f"phones {first_serial!r} and {serial!r} differ ({devices[first_serial]} vs "
                    f"{device}); measure with one kind of phone and one benchmark binary at a time"
                )
        return {
            "backend": BACKEND_NAME,
            "device": dict(devices[first_serial]),
            "benchmark_flags": self._settings.benchmark_flags(),
            "statistic": "median_ms if printed, else avg",
        }

    def measure(
        self, tflite_path: str | os.PathLike, *, serial: str | None = None
    ) -> LatencyMeasurement:
        """Measures one model on `serial` (default: the first one), retrying transient failures.

        Raises:
          DeviceError: the phone or tooling cannot measure, or transient failures persisted.
          BenchmarkLogError: `benchmark_model` ran but reported a failure or printed no summary.
          FileNotFoundError: `tflite_path` does not exist.
        """
        path = _existing_file(tflite_path)
        if serial is None:
            serial = self._settings.serials[0]
        elif serial not in self._settings.serials:
            raise ValueError(
                f"serial {serial!r} is not in AdbSettings.serials {self._settings.serials}"
            )
        attempts = self._settings.retries + 1
        attempt = 1
        while True:
            try:
                self._ensure_ready(serial)
                return self._measure_once(path, serial)
            except _TransientDeviceError as error:
                if attempt == attempts:
                    raise DeviceError(
                        f"measuring {path!r} on {serial!r} failed {attempts} times; "
                        f"last error: {error}"
                    ) from error
                delay = self._settings.backoff_s * 2 ** (attempt - 1)
                _log.warning("%s; retry %d of %d in %.3g s", error, attempt, attempts - 1, delay)
                self._sleep(delay)
                attempt += 1

    def measure_many(
        self, tflite_paths: Iterable[str | os.PathLike]
    ) -> tuple[LatencyMeasurement, ...]:
        """Measures every model, one worker thread per phone, and returns results in input order.

        Stops handing out work at the first failure and raises it (the earliest input's error
        when several phones failed) once the running measurements have finished.
        """
        paths = [_existing_file(path) for path in tflite_paths]
        if not paths:
            return ()
        self.fingerprint()
        work: queue.SimpleQueue[tuple[int, str]] = queue.SimpleQueue()
        for index, path in enumerate(paths):
            work.put((index, path))
        results: list[LatencyMeasurement | None] = [None] * len(paths)
        errors: dict[int, Exception] = {}
        failed = threading.Event()

        def drain(serial: str) -> None:
            while not failed.is_set():
                try:
                    index, path = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    results[index] = self.measure(path, serial=serial)
                except Exception as error:  # handed to the caller below
                    errors[index] = error
                    failed.set()

        workers = [
            threading.Thread(target=drain, args=(serial,), name=f"adb-{serial}", daemon=True)
            for serial in self._settings.serials
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        if errors:
            raise errors[min(errors)]
        return tuple(results)

    # -- one measurement ------------------------------------------------------------------

    def _measure_once(self, path: str, serial: str) -> LatencyMeasurement:
        settings = self._settings
        # The unique prefix keeps concurrent runs (and leftovers of killed runs) apart; the
        # original name is kept so that a stray file on the phone can be recognised.
        remote = posixpath.join(
            settings.remote_dir, f"netadapt_{uuid.uuid4().hex[:12]}_{os.path.basename(path)}"
        )
        try:
            code, out, err = self._adb_command(serial, ["push", path, remote])
            if code != 0:
                raise DeviceError(
                    f"adb push {path!r} to {serial}:{remote!r} failed: {(err or out).strip()!r}"
                )
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
            if settings.use_gpu:
                words.append("--use_gpu=true")
            code, out, err = self._shell(serial, words)
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

    def _remove(self, serial: str, remote: str) -> None:
        try:
            code, out, err = self._shell(serial, ["rm", "-f", remote])
        except DeviceError as error:
            _log.warning("could not remove %s from %s: %s", remote, serial, error)
            return
        if code != 0:
            _log.warning("could not remove %s from %s: %s", remote, serial, (err or out).strip())

    # -- checks done once per phone -------------------------------------------------------

    def _ensure_ready(self, serial: str) -> dict[str, str | None]:
        with self._serial_locks[serial]:
            if serial not in self._devices:
                self._devices[serial] = self._check_device(serial)
            return self._devices[serial]

    def _check_device(self, serial: str) -> dict[str, str | None]:
        _, out, _ = self._adb_command(None, ["devices"])
        states = {}
        for line in out.splitlines():
            parts = line.split(None, 1)
            if len(parts) == 2 and not line.startswith(("*", "List of devices")):
                states[parts[0]] = parts[1].strip()
        state = states.get(serial)
        if state is None:
            attached = ", ".join(f"{name} ({value})" for name, value in sorted(states.items()))
            raise DeviceError(
                f"phone {serial!r} is not attached; `adb devices` lists: {attached or 'nothing'}"
            )
        if state == "unauthorized":
            raise DeviceError(
                f"phone {serial!r} is unauthorized: unlock it and accept the "
                "'Allow USB debugging' prompt"
            )
        if state == "offline":
            raise DeviceError(
                f"phone {serial!r} is offline: reconnect the cable or run `adb reconnect`"
            )
        if state != "device":
            raise DeviceError(f"phone {serial!r} is in state {state!r}; expected 'device'")

        _, out, _ = self._shell(serial, ["getprop"])
        props = dict(
            match.groups() for match in map(_GETPROP_LINE.match, out.splitlines()) if match
        )
        abi = props.get("ro.product.cpu.abi")
        if not abi or not props.get("ro.product.model"):
            raise DeviceError(
                f"`getprop` on {serial!r} did not report ro.product.model and ro.product.cpu.abi"
            )

        binary = self._settings.benchmark_binary
        _, out, err = self._shell(serial, [binary, "--help"])
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

        code, out, _ = self._shell(serial, ["sha256sum", binary])
        digest = out.split()[0] if code == 0 and out.split() else None
        return {
            "manufacturer": props.get("ro.product.manufacturer"),
            "model": props["ro.product.model"],
            "abi": abi,
            "build_fingerprint": props.get("ro.build.fingerprint"),
            "benchmark_model_sha256": digest,
        }

    # -- running adb ----------------------------------------------------------------------

    def _shell(self, serial: str, words: list[str]) -> tuple[int, str, str]:
        """Runs `words` on the phone as one quoted command line, stderr merged into stdout."""
        command = " ".join(shlex.quote(word) for word in words) + " 2>&1"
        return self._adb_command(serial, ["shell", command])

    def _adb_command(self, serial: str | None, args: list[str]) -> tuple[int, str, str]:
        if self._adb is None:
            found = shutil.which(self._settings.adb_path)
            if found is None:
                raise DeviceError(
                    f"adb executable {self._settings.adb_path!r} not found; install Android SDK "
                    "platform-tools or set AdbSettings.adb_path"
                )
            self._adb = found
        argv = [self._adb] + (["-s", serial] if serial else []) + args
        try:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self._settings.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise _TransientDeviceError(
                f"`adb {' '.join(argv[1:])}` timed out after timeout_s={self._settings.timeout_s} s"
            ) from None
        except OSError as error:
            raise DeviceError(f"cannot run {argv[0]!r}: {error}") from error
        out = done.stdout.decode("utf-8", errors="replace")
        err = done.stderr.decode("utf-8", errors="replace")
        transport = _TRANSPORT_ERROR.search(err)
        if transport:
            raise _TransientDeviceError(
                f"`adb {' '.join(argv[1:])}` lost the phone: {transport.group(0)!r}"
            )
        return done.returncode, out, err


def _existing_file(path: str | os.PathLike) -> str:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model file {path!r} does not exist")
    return path
