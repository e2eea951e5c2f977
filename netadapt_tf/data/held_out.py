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
import pathlib
from collections.abc import Sequence

import numpy as np

from netadapt_tf.common import atomic_files
from netadapt_tf.common import strict_json as sj

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
    def from_json(cls, data: dict, field: str = "split") -> "HeldOutSplit":
        """The split of a JSON object; RecordError naming the field and the value."""
        names = [f.name for f in dataclasses.fields(cls)]
        sj.obj(data, field, ["format", *names])
        sj.constant(data["format"], f"{field}.format", FORMAT)
        counts = {
            name: sj.integer(data[name], f"{field}.{name}", minimum=0)
            for name in ("seed", "num_examples", "num_held_out", "num_train")
        }
        if counts["num_held_out"] + counts["num_train"] != counts["num_examples"]:
            raise sj.fail(
                f"{field}.num_train",
                counts["num_train"],
                f"num_examples - num_held_out = {counts['num_examples'] - counts['num_held_out']}",
            )
        digest = sj.string(data["fingerprint"], f"{field}.fingerprint")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise sj.fail(f"{field}.fingerprint", digest, "a sha256 digest (64 hex digits)")
        return cls(
            dataset=sj.string(data["dataset"], f"{field}.dataset"), fingerprint=digest, **counts
        )


def _split_path(directory) -> pathlib.Path:
    return pathlib.Path(directory) / SPLIT_FILE


def write_split(directory, split: HeldOutSplit) -> pathlib.Path:
    """Write `split` to DIRECTORY/held_out_split.json atomically; returns the path."""
    path = _split_path(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_files.write_json(path, split.to_json(), sort_keys=True)


def read_split(directory) -> HeldOutSplit:
    """The split recorded in DIRECTORY; RecordError naming the file when it is missing or
    not a valid record."""
    path = _split_path(directory)
    if not path.exists():
        raise sj.RecordError(
            f"held-out split: {path} does not exist; a work directory records its split "
            "with write_split() when it is created"
        )
    return sj.read(path, HeldOutSplit.from_json)


def check_split(directory, split: HeldOutSplit) -> None:
    """Raise RecordError unless DIRECTORY was made with this same held-out split."""
    recorded = read_split(directory)
    if recorded == split:
        return
    differences = ", ".join(
        f"{f.name} {getattr(recorded, f.name)!r} (this run: {getattr(split, f.name)!r})"
        for f in dataclasses.fields(HeldOutSplit)
        if getattr(recorded, f.name) != getattr(split, f.name)
    )
    raise sj.RecordError(
        f"held-out split: work directory {directory} was made with a different held-out "
        f"split: {differences} (recorded in {_split_path(directory)}). Training on would mix "
        "held-out images into training; use the data config the directory was made with, "
        "or a new work directory"
    )


def record_split(directory, split: HeldOutSplit) -> pathlib.Path:
    """Write the split into a new work directory, or check it against a resumed one."""
    path = _split_path(directory)
    if path.exists():
        check_split(directory, split)
        return path
    return write_split(directory, split)
