"""The held-out split: which training examples the search compares samples on, and its record.

The paper keeps part of the training set (10K ImageNet images) out of super-network training
to rank sampled networks. The examples are chosen by a fixed integer hash of (seed, index),
not by numpy's random generators, whose streams may change between numpy versions: the
same (dataset, count, seed) gives the same examples on every run, worker and machine.

`HeldOutSplit` records a split with a sha256 fingerprint of the held-out example ids.
A work directory keeps it (`write_split`), and a resumed run checks it (`check_split`), so
it cannot silently train on images that an earlier run held out.
"""

import dataclasses
import hashlib
import json
import os
import pathlib
from collections.abc import Sequence

import numpy as np

FORMAT = "netadapt_tf.held_out_split/1"
SPLIT_FILE = "held_out_split.json"

_MASK64 = (1 << 64) - 1


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer on uint64 arrays (wrapping arithmetic, fixed forever)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def held_out_indices(num_examples: int, count: int, seed: int) -> np.ndarray:
    """The sorted indices of `count` of `num_examples` examples, chosen by `seed`.

    Each index is ranked by a hash of (seed, index) and the `count` lowest are kept, so the
    choice is uniform-looking and needs no random generator state.
    """
    if not 0 <= count <= num_examples:
        raise ValueError(f"held-out count: {count} is not in [0, {num_examples}]")
    salt = _splitmix64(np.array([(seed + 0x9E3779B97F4A7C15) & _MASK64], dtype=np.uint64))
    indices = np.arange(num_examples, dtype=np.uint64)
    keys = _splitmix64(indices ^ salt)
    # lexsort breaks (astronomically unlikely) key ties by index, keeping the choice total.
    order = np.lexsort((indices, keys))
    return np.sort(order[:count]).astype(np.int64)


def fingerprint(ids: Sequence[str]) -> str:
    """sha256 of the held-out example ids, one per line, in pool order."""
    digest = hashlib.sha256()
    for example_id in ids:
        digest.update(example_id.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True, kw_only=True)
class HeldOutSplit:
    """Which held-out split a run uses.

    `dataset` names the data and the order its training examples are numbered in (for
    TFDS: name, version and read order); `num_examples` is the training set before the
    split; `fingerprint` hashes the held-out ids (file paths for image folders, indices
    otherwise).
    """

    dataset: str
    seed: int
    num_examples: int
    num_held_out: int
    num_train: int
    fingerprint: str

    def to_json(self) -> dict:
        return {"format": FORMAT, **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, data: dict) -> "HeldOutSplit":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            got = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"held-out split: format {got!r} is not {FORMAT!r}")
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in data]
        if missing:
            raise ValueError(f"held-out split: fields {missing} are missing")
        return cls(**{n: data[n] for n in names})


def _split_path(directory) -> pathlib.Path:
    return pathlib.Path(directory) / SPLIT_FILE


def write_split(directory, split: HeldOutSplit) -> pathlib.Path:
    """Write `split` to DIRECTORY/held_out_split.json atomically; returns the path."""
    path = _split_path(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written under a temporary name and renamed, so a crash never leaves half a record.
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(split.to_json(), f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
    return path


def read_split(directory) -> HeldOutSplit:
    path = _split_path(directory)
    if not path.exists():
        raise ValueError(
            f"held-out split: {path} does not exist; a work directory records its split "
            "with write_split() when it is created"
        )
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"held-out split: {path} is not valid JSON ({err})") from err
    return HeldOutSplit.from_json(data)


def check_split(directory, split: HeldOutSplit) -> None:
    """Raise ValueError unless DIRECTORY was made with this same held-out split."""
    recorded = read_split(directory)
    if recorded == split:
        return
    differences = ", ".join(
        f"{f.name} {getattr(recorded, f.name)!r} (this run: {getattr(split, f.name)!r})"
        for f in dataclasses.fields(HeldOutSplit)
        if getattr(recorded, f.name) != getattr(split, f.name)
    )
    raise ValueError(
        f"held-out split: work directory {directory} was made with a different held-out "
        f"split: {differences}. Training on would mix held-out images into training; use "
        "the data config the directory was made with, or a new work directory"
    )


def record_split(directory, split: HeldOutSplit) -> pathlib.Path:
    """Write the split into a new work directory, or check it against a resumed one."""
    path = _split_path(directory)
    if path.exists():
        check_split(directory, split)
        return path
    return write_split(directory, split)
