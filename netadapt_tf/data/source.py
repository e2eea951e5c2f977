"""The record every data source hands to `load`, and the small helpers sources share.

A source numbers its training examples 0..num_examples-1 in a fixed order and can read
any subset of them (`select`), so `load` can carve out the held-out split the same way for
every dataset. Its raw elements are dicts of still-cheap tensors (uint8 arrays, encoded
JPEG bytes, file paths); the `train_map`/`eval_map` functions decode and preprocess them
after shuffling, where decoded images would be costly to hold.
"""

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from netadapt_tf.data import preprocess


@dataclasses.dataclass(frozen=True, kw_only=True)
class Source:
    """One dataset, opened.

    `select(indices)`: the raw training examples at sorted `indices`, in index order.
    `ids`: per-example ids for the split fingerprint (None: the indices themselves).
    `train_map(raw, seed)` augments (seed: int64 [2]); `eval_map(raw)` does not. Both return
    (image, label) or (image, depth).
    """

    dataset: str
    num_examples: int
    select: Callable[[np.ndarray], tf.data.Dataset]
    validation: tf.data.Dataset
    num_validation: int
    num_classes: int | None
    train_map: Callable
    eval_map: Callable
    ids: Sequence[str] | None = None
    task: str = "classification"


def select_arrays(arrays: dict[str, np.ndarray]) -> Callable[[np.ndarray], tf.data.Dataset]:
    """`Source.select` for examples held in memory as equally long numpy arrays."""

    def select(indices: np.ndarray) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices({k: v[indices] for k, v in arrays.items()})

    return select


def small_image_maps(size: int, channels: int, fit: str) -> tuple[Callable, Callable]:
    """(train_map, eval_map) for {"image": uint8 [h, w, c], "label"} of small fixed-size sets.

    Evaluation: channels, [0, 1], fitted to size. Training adds a flip and a small shift.
    """

    def eval_map(raw):
        image = match_and_scale(raw["image"], channels)
        if image.shape[0] != size or image.shape[1] != size:
            image = preprocess.fit_image(image, size, fit)
        return image, tf.cast(raw["label"], tf.int32)

    def train_map(raw, seed):
        image, label = eval_map(raw)
        return preprocess.flip_and_shift(image, seed), label

    return train_map, eval_map


def match_and_scale(image: tf.Tensor, channels: int) -> tf.Tensor:
    return preprocess.match_channels(preprocess.to_unit_float(image), channels)


def resolve_fit(fit: str, photographs: bool) -> str:
    """The concrete fit of DataConfig.fit "auto" (see DataConfig)."""
    if fit != "auto":
        return fit
    return "resize" if photographs else "pad"
