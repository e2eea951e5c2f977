"""Writing the files a rerun reads, so that a kill at any moment leaves the old or the new.

Whole files: `write_bytes`, `write_text`, `write_json` and `write_with` (for writers that
take a path, such as Keras' `save_weights` or `np.savez`) write a temporary sibling, fsync
it, rename it over the target (`os.replace`, atomic on POSIX) and fsync the directory, so
after a kill -9 or a power cut the target holds its old content or its new content, never
a mix. A failed write removes its temporary file; a killed one leaves it (hidden, never
read; MeasurementCache.purge_temp_files removes old ones from a cache). Temporary names keep
the target's name at the end (`.tmp-PID-RANDOM-supernet.weights.h5`), since Keras checks
suffixes.

Directories: `replace_directory(path, fill)` fills a new sibling directory and swaps it
with the old one in one system call (Linux renameat2 RENAME_EXCHANGE, macOS renamex_np
RENAME_SWAP), so files that belong together (a checkpoint's spec and weights) are all old
or all new; the temporary directories of killed writers are removed by the next write of
the same directory. Elsewhere the swap is two renames, and a kill between them leaves the
old directory under a `.tmp-` name next to the missing one.

Journals: `append_line` writes one JSON line with one write() call and fsyncs it, so after
a kill the file holds every finished line and at most one torn last line; `read_journal`
drops that line and truncates the file after the last intact one, so the next append
starts on a fresh line.
"""

import contextlib
import ctypes
import json
import os
import pathlib
import secrets
import shutil
import sys
from collections.abc import Callable

from netadapt_tf.common import strict_json

TEMP_PREFIX = ".tmp-"


def temporary_path(path: str | os.PathLike) -> pathlib.Path:
    """A fresh hidden sibling of `path` whose name ends with `path`'s name."""
    path = pathlib.Path(path)
    return path.with_name(f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-{path.name}")


def fsync_directory(directory: str | os.PathLike) -> None:
    """Makes renames inside `directory` durable (where directories can be opened)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_file(path: pathlib.Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove(path: pathlib.Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def write_with(path: str | os.PathLike, write: Callable[[str], object]) -> pathlib.Path:
    """Calls write(a temporary path, as str), then puts that file at `path` atomically."""
    path = pathlib.Path(path)
    temporary = temporary_path(path)
    try:
        write(str(temporary))
        _fsync_file(temporary)
        os.replace(temporary, path)
    except BaseException:
        _remove(temporary)
        raise
    fsync_directory(path.parent)
    return path


def write_bytes(path: str | os.PathLike, data: bytes) -> pathlib.Path:
    def write(name: str) -> None:
        with open(name, "xb") as f:
            f.write(data)

    return write_with(path, write)


def write_text(path: str | os.PathLike, text: str) -> pathlib.Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, data, **dump_options) -> pathlib.Path:
    """`data` as JSON (json.dumps options; default indent=1) and a final newline."""
    dump_options.setdefault("indent", 1)
    return write_text(path, json.dumps(data, **dump_options) + "\n")


# -- directories ------------------------------------------------------------------------

_RENAME_EXCHANGE = 2  # linux/fs.h
_RENAME_SWAP = 2  # macOS sys/stdio.h
_AT_FDCWD = -100


def _swap_in_one_call(a: pathlib.Path, b: pathlib.Path) -> bool:
    """Swaps the entries `a` and `b` atomically; False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the C library this process runs on
    except OSError:
        return False
    a_name, b_name = os.fsencode(a), os.fsencode(b)
    if sys.platform == "linux" and hasattr(libc, "renameat2"):
        done = libc.renameat2(_AT_FDCWD, a_name, _AT_FDCWD, b_name, _RENAME_EXCHANGE)
    elif sys.platform == "darwin" and hasattr(libc, "renamex_np"):
        done = libc.renamex_np(a_name, b_name, _RENAME_SWAP)
    else:
        return False
    if done == 0:
        return True
    error = ctypes.get_errno()
    if error in (22, 38, 45, 95):  # EINVAL, ENOSYS, ENOTSUP (macOS), EOPNOTSUPP: no swap here
        return False
    raise OSError(error, os.strerror(error), str(a), None, str(b))


def _swap(new: pathlib.Path, path: pathlib.Path) -> None:
    """Puts directory `new` at `path` and the old `path` at `new`."""
    if _swap_in_one_call(new, path):
        return
    aside = temporary_path(path)
    os.rename(path, aside)
    os.rename(new, path)
    os.rename(aside, new)


def remove_stale_temporaries(path: str | os.PathLike) -> list[pathlib.Path]:
    """Removes temporaries of `path` left by processes that no longer run (killed while
    writing); returns what was removed."""
    path = pathlib.Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    for candidate in path.parent.iterdir():
        name = candidate.name
        if not (name.startswith(TEMP_PREFIX) and name.endswith(f"-{path.name}")):
            continue
        pid_text = name[len(TEMP_PREFIX) :].split("-", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        try:
            os.kill(int(pid_text), 0)
            continue  # its writer still runs
        except ProcessLookupError:
            pass
        except PermissionError:
            continue  # another user's live process
        _remove(candidate)
        removed.append(candidate)
    return removed


def replace_directory(
    path: str | os.PathLike, fill: Callable[[pathlib.Path], object]
) -> pathlib.Path:
    """Calls fill(a new empty directory), then puts that directory at `path` in one step:
    a kill at any moment leaves the old directory or the new one at `path`, never a mix."""
    path = pathlib.Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path}: is not a directory; it cannot be replaced by one")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    new = temporary_path(path)
    new.mkdir()
    try:
        fill(new)
        for file in sorted(new.rglob("*")):
            if file.is_file():
                _fsync_file(file)
        fsync_directory(new)
        if path.exists():
            _swap(new, path)
        else:
            os.rename(new, path)
    except BaseException:
        _remove(new)
        raise
    fsync_directory(path.parent)
    _remove(new)  # the old directory, after a swap
    return path


# -- journals ---------------------------------------------------------------------------


def append_line(path: str | os.PathLike, data: dict) -> None:
    """Appends `data` as one JSON line and makes it durable before returning."""
    line = json.dumps(data, separators=(",", ":")) + "\n"
    with open(path, "a") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def read_journal(path: str | os.PathLike) -> list[dict]:
    """The intact lines of a JSON-lines journal (none when it does not exist).

    A damaged last line is the trace of a kill during its write: it is dropped and the file
    truncated after the last intact line. A damaged line before the last one means the file
    was changed by something else: RecordError naming the line.
    """
    path = pathlib.Path(path)
    if not path.exists():
        return []
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    records, good_bytes = [], 0
    for number, line in enumerate(lines, start=1):
        last = number == len(lines)
        if last and not line:
            break  # the file ends with a newline
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError(f"expected a JSON object, got {type(record).__name__}")
        except ValueError as error:
            if last or (number == len(lines) - 1 and not lines[-1]):
                break  # the torn last line
            raise strict_json.RecordError(
                f"{path}:{number}: damaged line ({error}); allowed: one JSON object per line "
                "(a kill only tears the last line, so this file was edited); restore it or "
                "start afresh"
            ) from None
        if last:
            break  # an intact object without its newline: the write did not finish
        records.append(record)
        good_bytes += len(line) + 1
    if good_bytes != len(raw):
        with open(path, "r+b") as f:
            f.truncate(good_bytes)
            f.flush()
            os.fsync(f.fileno())
    return records


def clear(path: str | os.PathLike) -> None:
    """Empties a journal (durably)."""
    with open(path, "w") as f:
        f.flush()
        os.fsync(f.fileno())
