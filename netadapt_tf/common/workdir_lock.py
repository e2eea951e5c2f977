"""One run per work directory: an exclusive lock that a killed holder cannot leave behind.

`hold(workdir, tool)` takes an flock on `workdir/.lock` for the life of the process and
writes the holder into it (tool, pid, host, start time). The kernel releases an flock when
its process ends, however it ends; a run that ends normally also empties the file, so a
lock file still naming a holder was left by a killed run: the next run takes it over and
says whose it was. A second run while the
first still holds it fails with WorkdirLockedError naming the holder. (flock is advisory
and per host; a work directory on a network file system shared by hosts is not covered.)
"""

import atexit
import contextlib
import datetime
import fcntl
import json
import os
import pathlib
import socket

LOCK_FILE = ".lock"
_held: dict[str, int] = {}  # the locks this process holds: path -> descriptor


class WorkdirLockedError(RuntimeError):
    """Another live process holds the work directory."""


def _describe(text: str) -> str:
    try:
        holder = json.loads(text)
        return (
            f"{holder['tool']} (pid {holder['pid']} on {holder['host']}, started "
            f"{holder['started']})"
        )
    except (ValueError, KeyError, TypeError):
        return "an unknown process"


def hold(workdir: str | os.PathLike, tool: str, log=print) -> pathlib.Path:
    """Locks `workdir` (created if missing) for this process, until it exits or
    `release`; raises WorkdirLockedError when another process holds it."""
    directory = pathlib.Path(workdir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_FILE
    key = str(path.resolve())
    if key in _held:
        return path
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        with contextlib.suppress(OSError):
            holder = _describe(os.pread(descriptor, 4096, 0).decode("utf-8", "replace"))
        os.close(descriptor)
        raise WorkdirLockedError(
            f"{directory}: in use by {holder}; allowed: one run per work directory (wait "
            "for it to end, or pick another --workdir)"
        ) from None
    previous = os.pread(descriptor, 4096, 0).decode("utf-8", "replace").strip()
    if previous:
        log(
            f"{path}: taking over the lock of {_describe(previous)}, which ended without "
            "releasing it (killed)"
        )
    record = {
        "tool": tool,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, (json.dumps(record) + "\n").encode(), 0)
    os.fsync(descriptor)
    _held[key] = descriptor
    atexit.register(release, directory)  # a run that ends normally leaves a clean file
    return path


def release(workdir: str | os.PathLike) -> None:
    """Gives the lock up (emptying the file, so the next run sees a clean release)."""
    path = pathlib.Path(workdir) / LOCK_FILE
    descriptor = _held.pop(str(path.resolve()), None)
    if descriptor is None:
        return
    os.ftruncate(descriptor, 0)
    os.close(descriptor)
