"""Crash-safe files of a search work directory: JSON-lines journals and whole JSON files.

A journal line is written with one write() call, flushed and fsynced before the search goes
on, so after a kill -9 the file holds every finished line and at most one torn last line
(no newline, or not valid JSON). `read_journal` drops that torn line and truncates the file
to the intact lines, so the next append starts on a fresh line. Whole files (search.json,
trajectory.json, ...) are written under a temporary name and renamed.
"""

import json
import os
import pathlib


def append_line(path: pathlib.Path, data: dict) -> None:
    """Appends `data` as one JSON line and makes it durable before returning."""
    line = json.dumps(data, separators=(",", ":")) + "\n"
    with open(path, "a") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def read_journal(path: pathlib.Path) -> list[dict]:
    """The intact lines of a journal (none when it does not exist).

    A damaged last line is the trace of a kill during its write: it is dropped and the file
    truncated after the last intact line. A damaged line before the last one means the file
    was changed by something else, and is an error that names the line.
    """
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
            raise ValueError(
                f"{path}:{number}: damaged line ({error}); a kill only tears the last line, so "
                "this file was edited; restore it or start afresh with --overwrite"
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


def clear(path: pathlib.Path) -> None:
    """Empties a journal (durably)."""
    with open(path, "w") as f:
        f.flush()
        os.fsync(f.fileno())


def write_json(path: pathlib.Path, data) -> None:
    """Writes `data` as indented JSON through a temporary file and a rename."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: pathlib.Path):
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: malformed JSON ({error})") from None
