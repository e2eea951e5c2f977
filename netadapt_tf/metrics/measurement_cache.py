"""A persistent cache of latency measurements, safe with concurrent writers and crashes.

Measuring a network on a phone takes seconds to minutes, and a search measures thousands, so
results are kept on disk keyed by what was measured (the model's content hash, or a key the
caller chooses) and how (the backend's fingerprint dict, such as
`AdbBenchmarkBackend.fingerprint()`, canonicalised to JSON).

Each entry is its own small JSON file, sharded by hash prefix, holding the key, the
fingerprint, the value and a checksum of those. Entries are written with atomic_files (a
temporary file in the same directory, fsync'ed, then renamed into place), so readers see
either the old entry or the new one, whatever other threads or processes do and even if a
writer is killed with SIGKILL; leftover temporary files are never read. Reading checks every
field (strict_json); an entry that is corrupt anyway (bad disk, hand edits, a copy under
another key's name) is deleted, logged with what is wrong with it, and reported as a miss,
so it is measured again rather than read as a number.
"""

import contextlib
import hashlib
import json
import logging
import math
import numbers
import os
import pathlib
import time
from collections.abc import Callable, Mapping

from netadapt_tf.common import atomic_files
from netadapt_tf.common import strict_json as sj

__all__ = ["MeasurementCache"]

_log = logging.getLogger(__name__)

_FORMAT = 1

ModelKey = bytes | bytearray | memoryview | str


def _model_key(key: ModelKey) -> str:
    # Prefixes keep a caller's key string from ever colliding with a content hash.
    if isinstance(key, bytes | bytearray | memoryview):
        return "sha256:" + hashlib.sha256(key).hexdigest()
    if isinstance(key, str):
        if not key:
            raise ValueError("cache key must be model bytes or a non-empty str, got ''")
        return "key:" + key
    raise TypeError(f"cache key must be model bytes or a str, got {type(key).__name__}")


def _canonical_json(value: object) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _canonical_fingerprint(fingerprint: Mapping) -> str:
    if not isinstance(fingerprint, Mapping):
        raise TypeError(f"fingerprint must be a dict, got {type(fingerprint).__name__}")
    try:
        return _canonical_json(fingerprint)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"fingerprint must be JSON-able (str keys, finite numbers): {error}"
        ) from None


def _checked_value(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"measurement value must be a real number, got {type(value).__name__} {value!r}"
        )
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"measurement value must be finite and >= 0, got {value!r}")
    return value


def _encode(body: dict) -> bytes:
    checksum = hashlib.sha256(_canonical_json(body).encode("utf-8")).hexdigest()
    return (_canonical_json({"entry": body, "sha256": checksum}) + "\n").encode("utf-8")


def _decode(data: bytes, model_key: str, fingerprint_json: str, path: pathlib.Path) -> float:
    """The value of entry file `path` (its bytes `data`); RecordError naming the file and the
    field when it is not an intact entry of (model_key, fingerprint)."""
    with sj.source(path):
        return _decode_document(sj.parse_text(data, str(path)), model_key, fingerprint_json)


def _decode_document(document, model_key: str, fingerprint_json: str) -> float:
    sj.obj(document, "document", ("entry", "sha256"))
    body = sj.obj(document["entry"], "entry", ("format", "model_key", "fingerprint", "value"))
    checksum = sj.string(document["sha256"], "sha256")
    try:
        body_json = _canonical_json(body)
    except (TypeError, ValueError):
        raise sj.fail("entry", body, "finite numbers only") from None
    actual = hashlib.sha256(body_json.encode("utf-8")).hexdigest()
    if checksum != actual:
        raise sj.fail("sha256", checksum, f"{actual!r}, the checksum of the entry")
    sj.constant(body["format"], "entry.format", _FORMAT)
    sj.constant(body["model_key"], "entry.model_key", model_key)
    sj.mapping(body["fingerprint"], "entry.fingerprint")
    if _canonical_json(body["fingerprint"]) != fingerprint_json:
        raise sj.fail("entry.fingerprint", body["fingerprint"], fingerprint_json)
    return float(sj.number(body["value"], "entry.value", minimum=0))


class MeasurementCache:
    """Measurements on disk under `directory`, keyed by (model, backend fingerprint).

    `key` is the model's bytes (hashed with SHA-256) or a caller-chosen non-empty string;
    `fingerprint` is a JSON-able dict describing the measuring setup. Two threads or processes
    that miss the same entry both measure it; the last write wins, and both values are valid.
    """

    def __init__(self, directory: str | os.PathLike):
        self._directory = pathlib.Path(directory)
        self._directory.mkdir(parents=True, exist_ok=True)

    @property
    def directory(self) -> pathlib.Path:
        return self._directory

    def entry_path(self, key: ModelKey, fingerprint: Mapping) -> pathlib.Path:
        """Where the entry for (key, fingerprint) lives, whether or not it exists."""
        return self._path(_model_key(key), _canonical_fingerprint(fingerprint))

    def _path(self, model_key: str, fingerprint_json: str) -> pathlib.Path:
        fingerprint_hash = hashlib.sha256(fingerprint_json.encode("utf-8")).hexdigest()
        name = hashlib.sha256(f"{model_key}\n{fingerprint_hash}".encode()).hexdigest()
        return self._directory / name[:2] / f"{name}.json"

    def get(self, key: ModelKey, fingerprint: Mapping) -> float | None:
        """Returns the cached value, or None when absent (or corrupt, which is then deleted)."""
        model_key, fingerprint_json = _model_key(key), _canonical_fingerprint(fingerprint)
        path = self._path(model_key, fingerprint_json)
        try:
            with open(path, "rb") as entry:
                data = entry.read()
                seen = os.fstat(entry.fileno())
        except FileNotFoundError:
            return None
        try:
            return _decode(data, model_key, fingerprint_json, path)
        except sj.RecordError as problem:
            _log.warning("deleting corrupt measurement cache entry: %s", problem)
            self._discard(path, seen)
            return None

    @staticmethod
    def _discard(path: pathlib.Path, seen: os.stat_result) -> None:
        # Another process may have replaced the bad file with a good entry since it was read;
        # only the file that was actually read is deleted.
        with contextlib.suppress(FileNotFoundError):
            now = os.stat(path)
            if (now.st_dev, now.st_ino) == (seen.st_dev, seen.st_ino):
                os.unlink(path)

    def put(self, key: ModelKey, fingerprint: Mapping, value: float) -> None:
        """Stores `value` atomically; refuses NaN, infinities and negative numbers."""
        value = _checked_value(value)
        model_key, fingerprint_json = _model_key(key), _canonical_fingerprint(fingerprint)
        path = self._path(model_key, fingerprint_json)
        body = {
            "format": _FORMAT,
            "model_key": model_key,
            "fingerprint": json.loads(fingerprint_json),
            "value": value,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_files.write_bytes(path, _encode(body))

    def get_or_measure(
        self, key: ModelKey, fingerprint: Mapping, measure: Callable[[], float]
    ) -> float:
        """Returns the cached value, or calls `measure()`, stores and returns its result.

        When `measure` raises, or returns something `put` refuses, nothing is stored and the
        error propagates.
        """
        cached = self.get(key, fingerprint)
        if cached is not None:
            return cached
        value = _checked_value(measure())
        self.put(key, fingerprint, value)
        return value

    def purge_temp_files(self, older_than_s: float = 3600.0) -> int:
        """Deletes temporary files left by killed writers; returns how many were deleted.

        Only files older than `older_than_s` go, so that live writers are not disturbed.
        """
        deadline = time.time() - older_than_s
        removed = 0
        for temp in self._directory.glob(f"*/{atomic_files.TEMP_PREFIX}*"):
            with contextlib.suppress(FileNotFoundError):
                if temp.stat().st_mtime <= deadline:
                    temp.unlink()
                    removed += 1
        return removed
