"""A reader for IDX files, the format of MNIST and Fashion-MNIST (plain or gzip-compressed).

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the values in C order. Every
mismatch (magic, type, rank, length) is a ValueError that names the file, so a corrupt or
truncated download fails before training instead of yielding garbage images.
"""

import gzip
import pathlib
import zlib

import numpy as np

# IDX type codes and the numpy types they hold (multi-byte values are big-endian).
DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: pathlib.Path) -> bytes:
    raw = path.read_bytes()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"IDX file {path}: corrupt or truncated gzip data ({err})") from err


def read_idx(path, *, ndim: int | None = None) -> np.ndarray:
    """The array stored in IDX file `path`; `ndim`, when given, is the rank it must have."""
    path = pathlib.Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"IDX file {path}: {len(data)} bytes, too short for the 4-byte magic")
    zero0, zero1, type_code, rank = data[:4]
    if zero0 or zero1:
        raise ValueError(
            f"IDX file {path}: bad magic number {data[:4].hex()}; an IDX file starts with "
            "two zero bytes, a type code and the number of dimensions"
        )
    if type_code not in DTYPES:
        codes = ", ".join(f"0x{c:02x}" for c in DTYPES)
        raise ValueError(f"IDX file {path}: type code 0x{type_code:02x} is not one of {codes}")
    if ndim is not None and rank != ndim:
        raise ValueError(f"IDX file {path}: has {rank} dimensions, expected {ndim}")
    header = 4 + 4 * rank
    if len(data) < header:
        raise ValueError(f"IDX file {path}: truncated in the header ({len(data)} bytes)")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank))
    dtype = DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        state = "truncated" if len(data) - header < expected else "longer than its header says"
        raise ValueError(
            f"IDX file {path}: {state}: {len(data) - header} bytes of values, expected "
            f"{expected} for shape {shape}"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
