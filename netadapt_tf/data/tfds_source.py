"""Datasets prepared with TensorFlow Datasets: cifar10, imagenet2012, nyu_depth_v2, tfds:NAME.

Data is read from `data_dir` (TFDS's default, ~/tensorflow_datasets or $TFDS_DATA_DIR, when
None) and never downloaded at run time; an unprepared dataset is a ValueError that says how
to prepare it. Training examples are numbered in TFDS's read order with the shard files in
order and a pinned interleave (READ_ORDER), which is recorded in the split's `dataset`
field: an example's index means the same example on every run and worker.

imagenet2012 images stay JPEG bytes until after the shuffle and the held-out filter, and
are decoded only inside their crop window. nyu_depth_v2 (and any set with an "image" and a
"depth" feature) yields (image, depth [H, W, 1]) pairs for the depth task, preprocessed as
FastDepth does (data/nyu_depth.py). Other datasets must have an "image" and a ClassLabel
"label".
"""

import numpy as np
import tensorflow as tf

from netadapt_tf.data import nyu_depth, preprocess, source
from netadapt_tf.data.config import DataConfig

# Pinned so that a TFDS release that changes its defaults cannot renumber the examples.
INTERLEAVE = 16
READ_ORDER = f"shard files in order, interleave {INTERLEAVE}x{INTERLEAVE}"
# The split each dataset is validated on (never seen by the search).
VALIDATION_SPLITS = {"cifar10": "test", "imagenet2012": "validation", "nyu_depth_v2": "validation"}


def _tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:
        raise ImportError(
            "TFDS datasets need tensorflow-datasets: pip install tensorflow-datasets"
        ) from err
    return tfds


def _how_to_prepare(name: str, data_dir) -> str:
    where = data_dir or "~/tensorflow_datasets (or $TFDS_DATA_DIR)"
    build = f"`tfds build {name} --data_dir={data_dir or '~/tensorflow_datasets'}`"
    if name.startswith("imagenet2012"):
        return (
            f"ImageNet cannot be downloaded by TFDS: put ILSVRC2012_img_train.tar and "
            f"ILSVRC2012_img_val.tar in {where}/downloads/manual and run {build} once"
        )
    return f"prepare it once with {build} on a machine with internet access (data in {where})"


def _load(name: str, split: str, data_dir, decoders=None):
    tfds = _tfds()
    try:
        return tfds.load(
            name,
            split=split,
            data_dir=None if data_dir is None else str(data_dir),
            download=False,
            shuffle_files=False,
            decoders=decoders,
            read_config=tfds.ReadConfig(
                interleave_cycle_length=INTERLEAVE, interleave_block_length=INTERLEAVE
            ),
            with_info=True,
        )
    except tfds.core.DatasetNotFoundError as err:
        raise ValueError(
            f"DataConfig.name: TFDS has no dataset {name!r} (tensorflow-datasets "
            f"{tfds.__version__}); see `tfds.list_builders()`"
        ) from err
    except AssertionError as err:
        # TFDS reports a dataset that was never prepared with an AssertionError.
        raise ValueError(
            f"{name}: not prepared in {data_dir or 'the TFDS data directory'} and downloads "
            f"are off; {_how_to_prepare(name, data_dir)}"
        ) from err


def _num_examples(ds: tf.data.Dataset, info, split: str) -> int:
    count = int(ds.cardinality())
    if count >= 0:
        return count
    if split in info.splits:
        return info.splits[split].num_examples
    raise ValueError(f"{info.full_name}: the size of split {split!r} is unknown")


def _validation_split(base: str, info) -> str:
    if base in VALIDATION_SPLITS:
        return VALIDATION_SPLITS[base]
    splits = list(info.splits.keys())
    for candidate in ("validation", "test"):
        if candidate in splits:
            return candidate
    if not splits:
        return "test"  # The metadata names no splits (a mocked dataset); assume the usual one.
    raise ValueError(
        f"{info.full_name}: has splits {splits} but neither 'validation' nor 'test' to validate on"
    )


def _select_by_index(ds: tf.data.Dataset, num_examples: int):
    """`Source.select` for a dataset read in order: keep the examples at the given indices."""

    def select(indices: np.ndarray) -> tf.data.Dataset:
        if len(indices) == num_examples:
            return ds
        if len(indices) == 0:
            return ds.take(0)
        mask = np.zeros(num_examples, bool)
        mask[indices] = True
        mask = tf.constant(mask)
        picked = ds.enumerate().filter(lambda i, example: tf.gather(mask, i))
        picked = picked.map(lambda i, example: example)
        return picked.apply(tf.data.experimental.assert_cardinality(len(indices)))

    return select


def _imagenet_maps(size: int, channels: int, fit: str):
    if fit == "pad":
        raise ValueError(
            "DataConfig.fit: 'pad' needs images of one known size, but imagenet2012 images "
            "differ in size; use 'auto', 'resize' or 'crop_or_pad'"
        )

    def eval_map(raw):
        label = tf.cast(raw["label"], tf.int32)
        if fit == "crop_or_pad":
            image = preprocess.to_unit_float(tf.io.decode_jpeg(raw["image"], channels=channels))
            return preprocess.fit_image(image, size, fit), label
        window = preprocess.centre_crop_window(tf.image.extract_jpeg_shape(raw["image"]), size)
        return preprocess.decode_jpeg_crop(raw["image"], window, size, channels), label

    def train_map(raw, seed):
        if fit == "crop_or_pad":
            image, label = eval_map(raw)
            return preprocess.flip_and_shift(image, seed), label
        crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        window = preprocess.random_crop_window(tf.image.extract_jpeg_shape(raw["image"]), crop_seed)
        image = preprocess.decode_jpeg_crop(raw["image"], window, size, channels)
        image = tf.image.stateless_random_flip_left_right(image, flip_seed)
        return image, tf.cast(raw["label"], tf.int32)

    return train_map, eval_map


def _depth_maps(name: str, features, config: DataConfig):
    """FastDepth's preprocessing (data/nyu_depth.py), for nyu_depth_v2 and any TFDS set
    with an "image" and a "depth" feature."""
    if config.fit != "auto":
        raise ValueError(
            f"DataConfig.fit: {config.fit!r} does not apply to the depth set {name}, which "
            "is always brought to image_size by FastDepth's preprocessing (resize to 250 rows, "
            "centre crop 228x304, resize); allowed: 'auto'"
        )
    height, width = features["image"].shape[:2]
    nyu_depth.check_raw_shape(name, height, width)
    return nyu_depth.depth_maps(config.image_size, config.channels)


def _classification_maps(name: str, base: str, features, config: DataConfig):
    tfds = _tfds()
    if not {"image", "label"} <= set(features.keys()) or not isinstance(
        features["label"], tfds.features.ClassLabel
    ):
        raise ValueError(
            f"{name}: features {sorted(features.keys())} lack an 'image' and a ClassLabel "
            "'label' (classification) or an 'image' and a 'depth' (depth estimation)"
        )
    size, channels = config.image_size, config.channels
    if base == "imagenet2012":
        return _imagenet_maps(size, channels, source.resolve_fit(config.fit, photographs=True))
    height, width, _ = features["image"].shape
    fixed = height is not None and width is not None
    fit = source.resolve_fit(config.fit, photographs=not fixed)
    if fixed:
        preprocess.check_fixed_size(name, height, width, size, fit)
    elif fit == "pad":
        raise ValueError(
            f"DataConfig.fit: 'pad' needs images of one known size, but {name} images "
            "differ in size; use 'auto', 'resize' or 'crop_or_pad'"
        )
    return source.small_image_maps(size, channels, fit)


def open_source(config: DataConfig, name: str) -> source.Source:
    base = name.split("/")[0].split(":")[0]
    decoders = {"image": _tfds().decode.SkipDecoding()} if base == "imagenet2012" else None
    train, info = _load(name, "train", config.data_dir, decoders)
    if {"image", "depth"} <= set(info.features.keys()):
        num_classes, task = None, "depth"
        train_map, eval_map = _depth_maps(name, info.features, config)
    else:
        train_map, eval_map = _classification_maps(name, base, info.features, config)
        num_classes, task = info.features["label"].num_classes, "classification"
    validation_split = _validation_split(base, info)
    validation, _ = _load(name, validation_split, config.data_dir, decoders)
    num_examples = _num_examples(train, info, "train")
    return source.Source(
        dataset=f"tfds:{info.full_name} (train split, {READ_ORDER})",
        num_examples=num_examples,
        select=_select_by_index(train, num_examples),
        validation=validation,
        num_validation=_num_examples(validation, info, validation_split),
        num_classes=num_classes,
        train_map=train_map,
        eval_map=eval_map,
        task=task,
    )
