"""What every phone backend needs from adb: running commands, checking phones, sharing work.

`AdbClient` runs adb from argument lists with a timeout and tells a broken connection
(`device not found`, `device offline`, a hung command: worth retrying) from everything else.
`PhoneBackend` is the base of the two ways of measuring a .tflite file on Android phones
(`benchmark_model` in adb.py, the instrumented harness app in android_app.py): it checks each
phone once, retries a measurement whose phone dropped off the bus with exponential back-off,
and spreads models over several phones of one kind. A phone that stays unreachable after its
retries is *lost*: `measure_any` and `measure_many` give its model to another phone and stop
using it; when no phone is left they raise. A failed measurement is always raised, never
returned as a number.
"""

import abc
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
from collections.abc import Callable, Iterable, Mapping, Sequence

__all__ = [
    "AdbClient",
    "DeviceError",
    "DeviceLostError",
    "PhoneBackend",
    "TransientDeviceError",
    "check_retry_settings",
    "choose_serials",
    "existing_file",
]

_log = logging.getLogger(__name__)

ALL_PHONES = "all"


class DeviceError(RuntimeError):
    """adb, the phone or the program on it cannot take the measurement."""


class TransientDeviceError(DeviceError):
    """Worth retrying: the phone dropped off the bus, adb's transport broke, a command hung."""


class DeviceLostError(DeviceError):
    """A phone stayed unreachable through every retry; another phone may take its work."""

    def __init__(self, message: str, serial: str):
        super().__init__(message)
        self.serial = serial


# adb's own complaints (on the host's stderr) when the connection to the phone breaks.
_TRANSPORT_ERROR = re.compile(
    r"error: (device (?:'[^']*' )?not found|no devices/emulators found|device offline|closed"
    r"|protocol fault|connection reset|device still (?:connecting|authorizing))",
    re.IGNORECASE,
)
_GETPROP_LINE = re.compile(r"^\[([^\]]+)\]: \[(.*)\]$")


class AdbClient:
    """Runs `adb` (found on PATH, or at `adb_path`) with a timeout per command."""

    def __init__(self, adb_path: str = "adb", timeout_s: float = 300.0, setting: str = "adb_path"):
        self.adb_path = adb_path
        self.timeout_s = timeout_s
        self._setting = setting  # what the error message tells the user to set
        self._adb: str | None = None

    def run(
        self, serial: str | None, args: Sequence[str], timeout_s: float | None = None
    ) -> tuple[int, str, str]:
        """(exit status, stdout, stderr) of `adb [-s serial] args`.

        Raises TransientDeviceError when adb lost the phone or the command timed out, and
        DeviceError when adb cannot be found or started.
        """
        if self._adb is None:
            found = shutil.which(self.adb_path)
            if found is None:
                raise DeviceError(
                    f"adb executable {self.adb_path!r} not found; install Android SDK "
                    f"platform-tools or set {self._setting}"
                )
            self._adb = found
        argv = [self._adb] + (["-s", serial] if serial else []) + list(args)
        timeout = self.timeout_s if timeout_s is None else timeout_s
        try:
            done = subprocess.run(
                argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise TransientDeviceError(
                f"`adb {' '.join(argv[1:])}` timed out after timeout_s={timeout} s"
            ) from None
        except OSError as error:
            raise DeviceError(f"cannot run {argv[0]!r}: {error}") from error
        out = done.stdout.decode("utf-8", errors="replace")
        err = done.stderr.decode("utf-8", errors="replace")
        transport = _TRANSPORT_ERROR.search(err)
        if transport:
            raise TransientDeviceError(
                f"`adb {' '.join(argv[1:])}` lost the phone: {transport.group(0)!r}"
            )
        return done.returncode, out, err

    def shell(
        self, serial: str, words: Sequence[str], timeout_s: float | None = None
    ) -> tuple[int, str, str]:
        """Runs `words` on the phone as one quoted command line, stderr merged into stdout.

        The phone's shell parses the string, so every word is `shlex.quote`d: file names with
        spaces, quotes or `;` cannot run anything on the phone.
        """
        command = " ".join(shlex.quote(word) for word in words) + " 2>&1"
        return self.run(serial, ["shell", command], timeout_s)

    def device_states(self) -> dict[str, str]:
        """{serial: state} as `adb devices` lists them ('device', 'unauthorized', ...)."""
        _, out, _ = self.run(None, ["devices"])
        states = {}
        for line in out.splitlines():
            parts = line.split(None, 1)
            if len(parts) == 2 and not line.startswith(("*", "List of devices")):
                states[parts[0]] = parts[1].strip()
        return states

    def props(self, serial: str) -> dict[str, str]:
        """The phone's system properties (`getprop`)."""
        _, out, _ = self.shell(serial, ["getprop"])
        return dict(match.groups() for match in map(_GETPROP_LINE.match, out.splitlines()) if match)


def check_attached(serial: str, states: Mapping[str, str]) -> None:
    """Raises DeviceError saying what to do unless `serial` is listed in state 'device'."""
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


def choose_serials(requested: Sequence[str], adb_path: str = "adb") -> tuple[str, ...]:
    """The phones to measure on: `requested` as given, every attached phone for ['all'], or
    the one attached phone when none is named.

    Raises DeviceError when none is attached, or several are and none was chosen.
    """
    requested = tuple(requested)
    if requested and requested != (ALL_PHONES,):
        if ALL_PHONES in requested:
            raise ValueError(
                f"serial: {ALL_PHONES!r} means every attached phone and cannot be combined with "
                f"serials, got {list(requested)}"
            )
        return requested
    states = AdbClient(adb_path).device_states()
    ready = sorted(serial for serial, state in states.items() if state == "device")
    listed = ", ".join(f"{name} ({value})" for name, value in sorted(states.items()))
    if not ready:
        detail = f"`adb devices` lists: {listed}" if listed else "`adb devices` lists nothing"
        hint = (
            "; unlock it and accept the 'Allow USB debugging' prompt"
            if "unauthorized" in states.values()
            else "; connect a phone with USB debugging on"
        )
        raise DeviceError(f"no phone is ready to measure: {detail}{hint}")
    if len(ready) > 1 and not requested:
        raise DeviceError(
            f"several phones are attached ({', '.join(ready)}) and none was chosen; name them "
            f"with --serial (repeat it to use several) or --serial={ALL_PHONES}"
        )
    return tuple(ready)


def check_retry_settings(owner: str, settings) -> None:
    """Validates the fields every phone backend's settings share (serials, adb, retries)."""
    serials = settings.serials
    if isinstance(serials, str) or not isinstance(serials, Sequence):
        raise TypeError(
            f"{owner}.serials must be a tuple of serial strings (e.g. ('{serials}',)), "
            f"got {type(serials).__name__} {serials!r}"
        )
    object.__setattr__(settings, "serials", tuple(serials))
    if not settings.serials:
        raise ValueError(f"{owner}.serials is empty; list at least one (see `adb devices`)")
    for serial in settings.serials:
        if not isinstance(serial, str) or not serial or serial != serial.strip():
            raise ValueError(f"{owner}.serials has an invalid serial {serial!r}")
    if len(set(settings.serials)) != len(settings.serials):
        raise ValueError(f"{owner}.serials has duplicates: {settings.serials!r}")
    if not isinstance(settings.adb_path, str) or not settings.adb_path:
        raise ValueError(f"{owner}.adb_path must be a non-empty str, got {settings.adb_path!r}")
    if not isinstance(settings.remote_dir, str) or not settings.remote_dir.startswith("/"):
        raise ValueError(
            f"{owner}.remote_dir must be an absolute phone path, got {settings.remote_dir!r}"
        )
    retries = settings.retries
    if isinstance(retries, bool) or not isinstance(retries, int):
        raise TypeError(f"{owner}.retries must be an int, got {type(retries).__name__} {retries!r}")
    if retries < 0:
        raise ValueError(f"{owner}.retries must be >= 0, got {retries}")
    for name, minimum_exclusive in (("timeout_s", True), ("backoff_s", False)):
        value = getattr(settings, name)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
            or (minimum_exclusive and value == 0)
        ):
            bound = "> 0" if minimum_exclusive else ">= 0"
            raise ValueError(f"{owner}.{name} must be a finite number {bound}, got {value!r}")


class PhoneBackend(abc.ABC):
    """Measures .tflite files on the phones of `settings.serials`, all of one kind.

    Subclasses say how one phone is checked (`_check_device`, once per phone) and how one
    model is measured on it (`_measure_once`). `sleep` is what waits between retries; tests
    pass a recorder so they do not wait.
    """

    def __init__(self, settings, *, sleep: Callable[[float], None] = time.sleep):
        self._settings = settings
        self._sleep = sleep
        self._client = AdbClient(
            settings.adb_path, settings.timeout_s, f"{type(settings).__name__}.adb_path"
        )
        self._devices: dict[str, dict] = {}
        self._serial_locks = {serial: threading.Lock() for serial in settings.serials}
        # The pool of measure_any: phones measuring now, phones lost for good.
        self._pool = threading.Condition()
        self._busy: set[str] = set()
        self._lost: dict[str, str] = {}

    @property
    def settings(self):
        return self._settings

    @property
    def lost_phones(self) -> dict[str, str]:
        """{serial: why} of the phones given up on."""
        with self._pool:
            return dict(self._lost)

    @abc.abstractmethod
    def _check_device(self, serial: str) -> dict:
        """Checks the phone (and what runs on it); returns what identifies it for fingerprints."""

    @abc.abstractmethod
    def _measure_once(self, path: str, serial: str):
        """Measures `path` on `serial` once; TransientDeviceError means 'try again'."""

    def devices(self) -> dict[str, dict]:
        """Checks every phone (once) and requires them to be of one kind; returns their records."""
        devices = {serial: self._ensure_ready(serial) for serial in self._settings.serials}
        first_serial = self._settings.serials[0]
        for serial, device in devices.items():
            if device != devices[first_serial]:
                raise DeviceError(
                    f"phones {first_serial!r} and {serial!r} differ ({devices[first_serial]} vs "
                    f"{device}); measure with one kind of phone and one benchmark binary at a time"
                )
        return devices

    def _ensure_ready(self, serial: str) -> dict:
        with self._serial_locks[serial]:
            if serial not in self._devices:
                self._devices[serial] = self._check_device(serial)
            return self._devices[serial]

    def _phone_checks(self, serial: str) -> dict[str, str]:
        """`adb devices` state and `getprop` of the phone; returns its properties."""
        check_attached(serial, self._client.device_states())
        props = self._client.props(serial)
        if not props.get("ro.product.cpu.abi") or not props.get("ro.product.model"):
            raise DeviceError(
                f"`getprop` on {serial!r} did not report ro.product.model and ro.product.cpu.abi"
            )
        return props

    def measure(self, path: str | os.PathLike, *, serial: str | None = None):
        """Measures one model on `serial` (default: the first phone), retrying transient failures.

        Raises:
          DeviceLostError: the phone stayed unreachable through every retry.
          DeviceError: the phone or tooling cannot measure.
          FileNotFoundError: `path` does not exist.
        """
        path = existing_file(path)
        if serial is None:
            serial = self._settings.serials[0]
        elif serial not in self._settings.serials:
            raise ValueError(
                f"serial {serial!r} is not in {type(self._settings).__name__}.serials "
                f"{self._settings.serials}"
            )
        attempts = self._settings.retries + 1
        attempt = 1
        while True:
            try:
                self._ensure_ready(serial)
                return self._measure_once(path, serial)
            except TransientDeviceError as error:
                if attempt == attempts:
                    raise DeviceLostError(
                        f"measuring {path!r} on {serial!r} failed {attempts} times; "
                        f"last error: {error}",
                        serial,
                    ) from error
                delay = self._settings.backoff_s * 2 ** (attempt - 1)
                _log.warning("%s; retry %d of %d in %.3g s", error, attempt, attempts - 1, delay)
                self._sleep(delay)
                attempt += 1

    # -- files on the phone ---------------------------------------------------------------

    def _remote_path(self, path: str, suffix: str = "") -> str:
        # The unique prefix keeps concurrent runs (and leftovers of killed runs) apart; the
        # original name is kept so that a stray file on the phone can be recognised.
        name = f"netadapt_{uuid.uuid4().hex[:12]}_{os.path.basename(path)}{suffix}"
        return posixpath.join(self._settings.remote_dir, name)

    def _push(self, serial: str, local: str, remote: str) -> None:
        code, out, err = self._client.run(serial, ["push", local, remote])
        if code != 0:
            raise DeviceError(
                f"adb push {local!r} to {serial}:{remote!r} failed: {(err or out).strip()!r}"
            )

    def _remove(self, serial: str, *remotes: str) -> None:
        """Deletes pushed files; a failure is logged, not raised (cleanup after a failure)."""
        try:
            code, out, err = self._client.shell(serial, ["rm", "-f", *remotes])
        except DeviceError as error:
            _log.warning("could not remove %s from %s: %s", remotes, serial, error)
            return
        if code != 0:
            _log.warning("could not remove %s from %s: %s", remotes, serial, (err or out).strip())

    # -- several phones -------------------------------------------------------------------

    def _acquire(self) -> str:
        with self._pool:
            while True:
                alive = [s for s in self._settings.serials if s not in self._lost]
                if not alive:
                    raise DeviceError(
                        "every phone was lost: "
                        + "; ".join(f"{s}: {why}" for s, why in self._lost.items())
                    )
                idle = [s for s in alive if s not in self._busy]
                if idle:
                    self._busy.add(idle[0])
                    return idle[0]
                self._pool.wait()

    def _release(self, serial: str, lost: DeviceLostError | None = None) -> None:
        with self._pool:
            self._busy.discard(serial)
            if lost is not None:
                self._lost[serial] = str(lost)
                _log.warning("phone %s is lost, its work goes to the others: %s", serial, lost)
            self._pool.notify_all()

    def measure_any(self, path: str | os.PathLike):
        """Measures `path` on whichever phone is idle (waiting for one); a phone lost meanwhile
        is dropped and the model measured on another. Safe to call from several threads."""
        while True:
            serial = self._acquire()
            try:
                result = self.measure(path, serial=serial)
            except DeviceLostError as error:
                self._release(serial, error)
                continue
            except BaseException:
                self._release(serial)
                raise
            self._release(serial)
            return result

    def measure_many(self, paths: Iterable[str | os.PathLike]) -> tuple:
        """Measures every model, one worker thread per phone, and returns results in input order.

        A lost phone's model goes back to the others. Stops handing out work at the first other
        failure and raises it (the earliest input's error when several phones failed) once the
        running measurements have finished.
        """
        paths = [existing_file(path) for path in paths]
        if not paths:
            return ()
        self.devices()
        work: queue.SimpleQueue[tuple[int, str]] = queue.SimpleQueue()
        for index, path in enumerate(paths):
            work.put((index, path))
        results: list = [None] * len(paths)
        errors: dict[int, Exception] = {}
        failed = threading.Event()

        def drain() -> None:
            while not failed.is_set():
                try:
                    index, path = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    results[index] = self.measure_any(path)
                except Exception as error:  # handed to the caller below
                    errors[index] = error
                    failed.set()

        workers = [
            threading.Thread(target=drain, name=f"adb-worker-{i}", daemon=True)
            for i in range(len(self._settings.serials))
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        if errors:
            raise errors[min(errors)]
        return tuple(results)


def existing_file(path: str | os.PathLike) -> str:
    """`path` as a str; raises FileNotFoundError unless it is a file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model file {path!r} does not exist")
    return path
