"""adb from Python: run commands with a timeout, tell a lost phone from other failures.

`AdbClient` runs adb from argument lists (never through a host shell) with a timeout, and
turns adb's complaints about a broken connection (`device not found`, `device offline`, a
hung command) into `TransientDeviceError`, which the backends retry. `check_attached` and
`choose_serials` say, in words a person can act on, why a phone cannot be used: none
attached, several attached and none chosen, unauthorized, offline.
"""

import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence

__all__ = [
    "ALL_PHONES",
    "AdbClient",
    "DeviceError",
    "DeviceLostError",
    "TransientDeviceError",
    "check_attached",
    "choose_serials",
]

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
        if transport and serial is None and "no devices/emulators" in transport.group(0):
            # Asked without a serial, adb answers this when it sees no phone at all: nothing
            # was lost, none was ever there.
            raise DeviceError(
                f"`adb {' '.join(argv[1:])}`: adb sees no phone ({transport.group(0)!r}); "
                "connect one and check `adb devices`"
            )
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
