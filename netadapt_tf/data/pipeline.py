"""`load`: a DataConfig to train / held-out / validation datasets; `batched` for the trainer.

The order of work matters for cost: the training examples are shuffled while still raw
(uint8 arrays, JPEG bytes or file paths), then decoded and augmented, so the shuffle buffer
never holds decoded images. The held-out examples are cached raw after their first pass,
because the search reads them once per evaluated sample and, for TFDS sets, picking them
out means reading the whole training split.
"""

import hashlib

import numpy as np
import tensorflow as tf

from netadapt_tf.data import (
    fashion_mnist,
    image_folder,
    procedural_depth,
    synthetic,
    tfds_source,
)
from netadapt_tf.data.config import TASKS, DataConfig, Datasets, held_out_count, parse_name
from netadapt_tf.data.held_out import HeldOutSplit, fingerprint, held_out_indices
from netadapt_tf.data.source import Source

AUTOTUNE = tf.data.AUTOTUNE


def open_source(config: DataConfig) -> Source:
    """The source `config.name` picks, opened (files found and checked, nothing decoded)."""
    kind, argument = parse_name(config.name)
    if kind == "synthetic":
        return synthetic.open_source(config)
    if kind == "procedural_depth":
        return procedural_depth.open_source(config)
    if kind == "fashion_mnist":
        return fashion_mnist.open_source(config)
    if kind == "image_folder":
        return image_folder.open_source(config, argument)
    return tfds_source.open_source(config, argument)


def _derived_seed(seed: int, purpose: str) -> int:
    """An independent seed per random stream, so shuffling and augmentation do not share one."""
    digest = hashlib.sha256(f"{purpose}:{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _training_set(src: Source, indices: np.ndarray, config: DataConfig, epoch: int | None):
    """The training examples, shuffled raw, then decoded and (maybe) augmented.

    epoch None: a new order and new augmentations on every pass. An epoch number: order and
    augmentation fixed by (shuffle_seed, epoch), the same on every pass, run and worker.
    tf.data combines these seeds with TensorFlow's global seed, which a trainer sets to the
    same value on every worker (keras.utils.set_random_seed).
    """
    if epoch is not None and (isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0):
        raise ValueError(f"train_for_epoch: epoch {epoch!r} is not an integer >= 0")
    stream = "" if epoch is None else f"/epoch{epoch}"
    again = epoch is None
    ds = src.select(indices).shuffle(
        min(config.shuffle_buffer, len(indices)),
        seed=_derived_seed(config.shuffle_seed, "shuffle" + stream),
        reshuffle_each_iteration=again,
    )
    if not config.augment:
        return ds.map(src.eval_map, num_parallel_calls=AUTOTUNE)
    # One stateless seed pair per example, drawn from a seeded stream.
    seeds = tf.data.Dataset.random(
        seed=_derived_seed(config.shuffle_seed, "augment" + stream),
        rerandomize_each_iteration=again,
    ).batch(2)
    return tf.data.Dataset.zip(ds, seeds).map(src.train_map, num_parallel_calls=AUTOTUNE)


def load(config: DataConfig, task: str | None = None) -> Datasets:
    """Open the dataset of `config`, draw the held-out split and build the three datasets.

    `task` ("classification" or "depth"), when given, is what the caller trains: a dataset
    of another task is a ValueError before any example is read.
    """
    if not isinstance(config, DataConfig):
        raise TypeError(f"load: config is a {type(config).__name__}, not a DataConfig")
    if task is not None and task not in TASKS:
        raise ValueError(f"load: task {task!r} is not one of {TASKS}")
    src = open_source(config)
    if task is not None and src.task != task:
        raise ValueError(_wrong_task(config.name, src.task, task))
    count = held_out_count(config.held_out, src.num_examples, src.dataset)
    held = held_out_indices(src.num_examples, count, config.held_out_seed)
    train_indices = np.setdiff1d(np.arange(src.num_examples), held, assume_unique=True)
    ids = [str(i) for i in held] if src.ids is None else [src.ids[i] for i in held]
    split = HeldOutSplit(
        dataset=src.dataset,
        seed=config.held_out_seed,
        num_examples=src.num_examples,
        num_held_out=count,
        num_train=len(train_indices),
        fingerprint=fingerprint(ids),
    )

    def train_for_epoch(epoch: int | None) -> tf.data.Dataset:
        return _training_set(src, train_indices, config, epoch)

    held_out = src.select(held).cache().map(src.eval_map, num_parallel_calls=AUTOTUNE)
    validation = src.validation.map(src.eval_map, num_parallel_calls=AUTOTUNE)
    return Datasets(
        train=train_for_epoch(None),
        train_for_epoch=train_for_epoch,
        held_out=held_out,
        validation=validation,
        num_classes=src.num_classes,
        image_shape=(config.image_size, config.image_size, config.channels),
        num_train=len(train_indices),
        num_held_out=count,
        num_validation=src.num_validation,
        split=split,
        task=src.task,
    )


def _wrong_task(name: str, have: str, want: str) -> str:
    if want == "depth":
        return (
            f"DataConfig.name: {name!r} is a {have} dataset without depth maps; the depth "
            "pipeline needs nyu_depth_v2, procedural_depth or a tfds:NAME set with an "
            "'image' and a 'depth' feature"
        )
    return (
        f"DataConfig.name: {name!r} is a {have} dataset, not a {want} one; allowed: "
        "synthetic, fashion_mnist, cifar10, imagenet2012, image_folder:PATH or a tfds:NAME "
        "set with an 'image' and a ClassLabel 'label'"
    )


def batched(
    ds: tf.data.Dataset,
    batch_size: int,
    *,
    training: bool,
    drop_remainder: bool | None = None,
    shuffle_buffer: int = 0,
    seed: int = 0,
) -> tf.data.Dataset:
    """Batch and prefetch an unbatched dataset; repeating is left to the caller.

    `drop_remainder` defaults to `training` (equal batches for training, every example for
    evaluation). `load` already shuffles `train` before decoding, so `shuffle_buffer`
    defaults to 0; a positive one adds a seeded shuffle (reshuffled each pass) when training.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batched: batch_size {batch_size!r} is not a positive integer")
    if isinstance(shuffle_buffer, bool) or not isinstance(shuffle_buffer, int):
        raise TypeError(f"batched: shuffle_buffer {shuffle_buffer!r} is not an integer")
    if shuffle_buffer < 0:
        raise ValueError(f"batched: shuffle_buffer {shuffle_buffer} is negative; 0 means none")
    if training and shuffle_buffer:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if drop_remainder is None:
        drop_remainder = training
    ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)
