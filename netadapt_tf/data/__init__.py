"""Input pipelines for super-network training and the search's held-out evaluation.

`load(DataConfig(...))` returns `Datasets`: `train` (shuffled, augmented), `held_out` (part
of the training set kept out of `train`, on which the search compares samples) and
`validation` (the dataset's own validation/test split, which the search never sees), with
the record of the held-out split. `batched` batches any of them.

Sources (DataConfig.name): "synthetic" (generated, for tests), "fashion_mnist" (IDX files
on disk), "cifar10", "imagenet2012", "nyu_depth_v2" and "tfds:NAME" (prepared TensorFlow
Datasets), "image_folder:PATH" (one sub-directory per class), "procedural_depth"
(generated rooms with depth maps, for tests and demos). Depth sets ("nyu_depth_v2",
"procedural_depth", TFDS sets with an image and a depth feature) give (image, depth)
pairs and `Datasets.task` "depth"; `load(config, task="depth")` refuses any other set.
"""

from netadapt_tf.data.config import FITS, NAMED_SOURCES, TASKS, DataConfig, Datasets
from netadapt_tf.data.held_out import (
    HeldOutSplit,
    check_split,
    read_split,
    record_split,
    write_split,
)
from netadapt_tf.data.pipeline import batched, load

__all__ = [
    "FITS",
    "NAMED_SOURCES",
    "TASKS",
    "DataConfig",
    "Datasets",
    "HeldOutSplit",
    "batched",
    "check_split",
    "load",
    "read_split",
    "record_split",
    "write_split",
]
