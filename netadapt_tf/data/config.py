"""What data a run trains and searches on (`DataConfig`), and what `load` hands back (`Datasets`).

A config is a value: it is checked when it is made, so a bad field fails before any file is
read, and `to_json()` is what a run writes into its work directory.
"""

import dataclasses
import os
from collections.abc import Callable

import tensorflow as tf

from netadapt_tf.data.held_out import HeldOutSplit

# Names that pick a source; "tfds:NAME" and "image_folder:PATH" take an argument.
NAMED_SOURCES = (
    "synthetic",
    "fashion_mnist",
    "cifar10",
    "imagenet2012",
    "nyu_depth_v2",
    "procedural_depth",
)
PREFIXED_SOURCES = ("tfds:NAME", "image_folder:PATH")
# Sources made in memory, which read no files (a data_dir is refused for them).
GENERATED_SOURCES = ("synthetic", "procedural_depth")
TFDS_SHORT_NAMES = ("cifar10", "imagenet2012", "nyu_depth_v2")

# What a dataset is for: its Source.task and Datasets.task.
TASKS = ("classification", "depth")

# How images reach image_size x image_size; see DataConfig.
FITS = ("auto", "pad", "crop_or_pad", "resize")
CHANNELS = (1, 3)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_name(name: str) -> tuple[str, str]:
    """(source kind, argument), e.g. ("tfds", "cifar10") or ("image_folder", "/data/x")."""
    if not isinstance(name, str):
        raise TypeError(f"DataConfig.name: {name!r} is not a string")
    if name in TFDS_SHORT_NAMES:
        return "tfds", name
    if name in NAMED_SOURCES:
        return name, ""
    kind, colon, argument = name.partition(":")
    if colon and kind in ("tfds", "image_folder"):
        if not argument:
            raise ValueError(f"DataConfig.name: {name!r} lacks the part after ':'")
        return kind, argument
    allowed = ", ".join(NAMED_SOURCES + PREFIXED_SOURCES)
    raise ValueError(f"DataConfig.name: unknown dataset {name!r}; allowed: {allowed}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Which dataset, at what size, and how the held-out split is drawn.

    Images come out as float32 [image_size, image_size, channels] scaled to [0, 1] (not
    standardized: the network sees raw intensities). Gray images are repeated to 3 channels,
    colour ones averaged to 1 (`channels`).

    `held_out`: how many training examples are kept out of `train` for comparing samples
    during the search (the paper keeps 10K ImageNet and 2K NYU Depth V2 images): a count,
    or a fraction of the training set in [0, 1). 0 trains on every training example.
    The split depends on (dataset, held_out, held_out_seed) only.

    `fit`: how an image reaches image_size. "pad" zero-pads around the centre and keeps
    every pixel exact (Fashion-MNIST 28 -> 32); images larger than image_size are an error,
    since that would crop. "crop_or_pad" crops or pads around the centre. "resize" scales
    the shorter side to image_size and crops the centre (ImageNet: the Inception crop for
    training, a centre crop of image_size/(image_size+32) for evaluation). "auto" is "pad"
    for the small fixed-size sets (synthetic, fashion_mnist, cifar10, other fixed-size
    TFDS sets) and "resize" for photographs (imagenet2012, image_folder, variable-size TFDS
    sets).

    `shuffle_seed` seeds the training order and the augmentation; `shuffle_buffer` is how
    many raw (still encoded) training examples the shuffle holds. `augment` adds random
    flips and shifts (random-resized crops for ImageNet) to `train` only.
    `synthetic_examples` / `synthetic_classes` size the "synthetic" source;
    `synthetic_examples` also sizes "procedural_depth" (generated rooms, task "depth").
    The depth sets (nyu_depth_v2, procedural_depth) take only fit "auto": NYU images go
    through FastDepth's preprocessing, procedural scenes are rendered at image_size.
    """

    name: str
    data_dir: str | os.PathLike | None = None
    image_size: int
    channels: int
    batch_size: int
    held_out: int | float = 10_000
    held_out_seed: int = 0
    shuffle_seed: int = 0
    shuffle_buffer: int = 10_000
    augment: bool = True
    fit: str = "auto"
    synthetic_examples: int = 1024
    synthetic_classes: int = 10

    def __post_init__(self):
        parse_name(self.name)
        if self.data_dir is not None and not isinstance(self.data_dir, str | os.PathLike):
            raise TypeError(f"DataConfig.data_dir: {self.data_dir!r} is not a path or None")
        if self.data_dir is not None and self.name in GENERATED_SOURCES:
            raise ValueError(
                f"--data_dir={os.fspath(self.data_dir)}: not read by dataset {self.name!r}, "
                "which is generated; allowed: only with a dataset read from files"
            )
        positive = ("image_size", "batch_size", "shuffle_buffer", "synthetic_examples")
        for field in positive:
            value = getattr(self, field)
            if not _is_int(value) or value <= 0:
                raise ValueError(f"DataConfig.{field}: {value!r} is not a positive integer")
        if not _is_int(self.channels) or self.channels not in CHANNELS:
            raise ValueError(f"DataConfig.channels: {self.channels!r} is not one of {CHANNELS}")
        for field in ("held_out_seed", "shuffle_seed"):
            value = getattr(self, field)
            if not _is_int(value) or not 0 <= value < 2**63:
                raise ValueError(f"DataConfig.{field}: {value!r} is not an integer in [0, 2**63)")
        _check_held_out(self.held_out)
        if not isinstance(self.augment, bool):
            raise TypeError(f"DataConfig.augment: {self.augment!r} is not a bool")
        if self.fit not in FITS:
            raise ValueError(f"DataConfig.fit: {self.fit!r} is not one of {FITS}")
        if not _is_int(self.synthetic_classes) or self.synthetic_classes < 2:
            raise ValueError(
                f"DataConfig.synthetic_classes: {self.synthetic_classes!r} is not an integer >= 2"
            )

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        if self.data_dir is not None:
            data["data_dir"] = os.fspath(self.data_dir)
        return data


def _check_held_out(value) -> None:
    if _is_int(value):
        if value < 0:
            raise ValueError(f"DataConfig.held_out: {value} is negative; a count must be >= 0")
    elif isinstance(value, float):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"DataConfig.held_out: {value} is not a fraction in [0, 1)")
    else:
        raise TypeError(
            f"DataConfig.held_out: {value!r} is neither a count (int) nor a fraction (float)"
        )


def held_out_count(held_out: int | float, num_examples: int, dataset: str) -> int:
    """How many of `num_examples` training examples `held_out` keeps out of training."""
    if isinstance(held_out, float):
        count = round(held_out * num_examples)
        # A non-zero fraction asks for a held-out set; rounding must not take it away.
        count = max(count, 1) if held_out > 0 else 0
    else:
        count = held_out
    if count >= num_examples:
        raise ValueError(
            f"DataConfig.held_out: {held_out!r} leaves no training examples: {dataset} has "
            f"{num_examples} training examples and held_out must keep fewer than that"
        )
    return count


@dataclasses.dataclass(frozen=True, kw_only=True)
class Datasets:
    """The three unbatched datasets of a run and what the trainer needs to know about them.

    Elements are (image float32 [H, W, C] in [0, 1], label int32) for classification and
    (image, depth float32 [H, W, 1] in metres) for task "depth", where `num_classes` is None.
    `train` is shuffled and augmented (when the config says so) anew on every pass, for
    loops that `.repeat()` it. `train_for_epoch(e)` is the same data with the order and
    augmentation of epoch e fixed by (shuffle_seed, e): a resumed run reads exactly what the
    interrupted one would have, and every worker reads the same. `held_out` (drawn from the
    training set, never in `train`) and `validation` (the dataset's own validation/test
    split, never used by the search) are in a fixed order.
    """

    train: tf.data.Dataset
    train_for_epoch: Callable[[int], tf.data.Dataset]
    held_out: tf.data.Dataset
    validation: tf.data.Dataset
    num_classes: int | None
    image_shape: tuple[int, int, int]
    num_train: int
    num_held_out: int
    num_validation: int
    split: HeldOutSplit
    task: str = "classification"
