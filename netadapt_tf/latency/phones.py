"""The base of the phone backends: checks each phone once, retries, shares work among phones.

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
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence

from netadapt_tf.latency.adb_client import (
    AdbClient,
    DeviceError,
    DeviceLostError,
    TransientDeviceError,
    check_attached,
)

__all__ = ["PhoneBackend", "check_retry_settings", "existing_file"]

_log = logging.getLogger(__name__)


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
        self._handed_out = {serial: 0 for serial in settings.serials}  # when last handed out
        self._hand_outs = 0

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
        serial = self._known_serial(serial)
        return self._retrying(serial, lambda: self._measure_once(path, serial), path)

    def _known_serial(self, serial: str | None) -> str:
        """`serial`, or the first phone for None; ValueError for a phone not in the settings."""
        if serial is None:
            return self._settings.serials[0]
        if serial not in self._settings.serials:
            raise ValueError(
                f"serial {serial!r} is not in {type(self._settings).__name__}.serials "
                f"{self._settings.serials}"
            )
        return serial

    def _retrying(self, serial: str, work: Callable[[], object], path: str):
        """work() on a checked phone, retried with back-off while it fails transiently."""
        attempts = self._settings.retries + 1
        attempt = 1
        while True:
            try:
                self._ensure_ready(serial)
                return work()
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
                    # The phone idle longest: work spreads over all phones, and each has
                    # time to cool between models.
                    serial = min(idle, key=self._handed_out.__getitem__)
                    self._hand_outs += 1
                    self._handed_out[serial] = self._hand_outs
                    self._busy.add(serial)
                    return serial
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
        path = existing_file(path)
        return self._on_any_phone(lambda serial: self.measure(path, serial=serial))

    def _on_any_phone(self, work: Callable[[str], object]):
        """work(serial) on an idle phone; again on another phone if that one is lost."""
        while True:
            serial = self._acquire()
            try:
                result = work(serial)
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
        return self._map_on_phones(paths, self.measure_any)

    def _map_on_phones(self, items: list, work: Callable[[object], object]) -> tuple:
        """work(item) for every item, one worker thread per phone (work picks the phone)."""
        pending: queue.SimpleQueue[tuple[int, object]] = queue.SimpleQueue()
        for index, item in enumerate(items):
            pending.put((index, item))
        results: list = [None] * len(items)
        errors: dict[int, Exception] = {}
        failed = threading.Event()

        def drain() -> None:
            while not failed.is_set():
                try:
                    index, item = pending.get_nowait()
                except queue.Empty:
                    return
                try:
                    results[index] = work(item)
                except Exception as error:  # handed to the caller below
                    errors[index] = error
                    failed.set()

        workers = [
            threading.Thread(target=drain, name=f"adb-worker-{i}", daemon=True)
            for i in range(min(len(self._settings.serials), len(items)))
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
