"""Checksums that tell a damaged file from a good one before anything is built from it.

Two forms, one digest (SHA-256):

- a manifest: a JSON file beside a group of files (a TensorFlow checkpoint's `.index` and
  `.data-*` files), `{"files": {name: {"bytes": n, "sha256": hex}}}`, written after the
  files (`write_manifest`) and checked before they are read (`verify_manifest`); a group
  without its manifest was not finished (a kill while saving) and counts as damaged;
- an HDF5 stamp: Keras weight files (`.weights.h5`) carry the digest of every dataset's
  name and bytes as a root attribute (`stamp_h5`, `verify_h5`), so the file stays one file.

Every problem is a strict_json.RecordError that names the file and what is wrong with it.
"""

import hashlib
import json
import os
import pathlib

from netadapt_tf.common import atomic_files
from netadapt_tf.common.strict_json import RecordError

H5_ATTRIBUTE = "netadapt_tf_sha256"


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(manifest: str | os.PathLike, files) -> pathlib.Path:
    """Writes (atomically) the sizes and digests of `files` (paths beside `manifest`)."""
    entries = {
        pathlib.Path(f).name: {"bytes": os.path.getsize(f), "sha256": file_sha256(f)}
        for f in sorted(map(str, files))
    }
    return atomic_files.write_json(manifest, {"files": entries})


def verify_manifest(manifest: str | os.PathLike) -> None:
    """Checks every file `manifest` names against its size and digest (RecordError)."""
    manifest = pathlib.Path(manifest)
    if not manifest.is_file():
        raise RecordError(
            f"{manifest}: no such file (the files it would check were not "
            "finished: a run killed while saving them)"
        )
    try:
        entries = json.loads(manifest.read_text())["files"]
        items = [(name, int(e["bytes"]), str(e["sha256"])) for name, e in entries.items()]
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise RecordError(f"{manifest}: damaged checksum file ({error!r})") from None
    for name, size, sha in items:
        path = manifest.parent / name
        if not path.is_file():
            raise RecordError(f"{path}: missing (listed in {manifest.name})")
        if os.path.getsize(path) != size:
            raise RecordError(
                f"{path}: {os.path.getsize(path)} bytes, {size} when written (truncated or "
                "extended)"
            )
        if file_sha256(path) != sha:
            raise RecordError(f"{path}: checksum mismatch (its bytes changed after writing)")


def _h5_digest(f) -> str:
    import numpy as np

    digest = hashlib.sha256()

    def visit(name, item):
        if hasattr(item, "dtype"):  # a dataset
            digest.update(name.encode() + b"\0" + str(item.dtype).encode() + b"\0")
            digest.update(np.ascontiguousarray(item[()]).tobytes())

    f.visititems(visit)
    return digest.hexdigest()


def stamp_h5(path: str | os.PathLike) -> None:
    """Stores the digest of `path`'s datasets in `path` (before it is renamed into place)."""
    import h5py

    with h5py.File(path, "r+") as f:
        f.attrs[H5_ATTRIBUTE] = _h5_digest(f)


def verify_h5(path: str | os.PathLike) -> None:
    """Checks that `path` is a readable HDF5 file whose datasets match its stamp."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            stored = f.attrs.get(H5_ATTRIBUTE)
            if stored is None:
                raise RecordError(
                    f"{path}: has no checksum (attribute {H5_ATTRIBUTE}); it was not written "
                    "by this version's checkpoint.save_supernet: save it again"
                )
            found = _h5_digest(f)
    except RecordError:
        raise
    except Exception as error:  # h5py raises OSError, KeyError, RuntimeError... on damage
        raise RecordError(f"{path}: damaged HDF5 file ({type(error).__name__}: {error})") from None
    if isinstance(stored, bytes):
        stored = stored.decode()
    if found != stored:
        raise RecordError(f"{path}: checksum mismatch (its weights changed after writing)")
