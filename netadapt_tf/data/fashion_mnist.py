"""Fashion-MNIST from its four IDX files, found on disk (never downloaded at run time).

With `data_dir` set, only that directory is read. Otherwise the Keras download cache
($KERAS_HOME or ~/.keras, then datasets/fashion-mnist, where
keras.datasets.fashion_mnist.load_data() puts the files) and the Debian/Ubuntu package
dataset-fashion-mnist (/usr/share/datasets/fashion-mnist) are searched, in that order.
Each file may be plain or gzip-compressed (NAME or NAME.gz).
"""

import os
import pathlib

import numpy as np

from netadapt_tf.data import idx, preprocess, source
from netadapt_tf.data.config import DataConfig

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
SYSTEM_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")
NUM_CLASSES = 10


def keras_cache_dir() -> pathlib.Path:
    home = os.environ.get("KERAS_HOME") or pathlib.Path.home() / ".keras"
    return pathlib.Path(home) / "datasets" / "fashion-mnist"


def search_dirs(data_dir) -> list[pathlib.Path]:
    if data_dir is not None:
        return [pathlib.Path(data_dir)]
    return [keras_cache_dir(), SYSTEM_DIR]


def _find_in(directory: pathlib.Path) -> tuple[dict[str, pathlib.Path], list[str]]:
    """(found files by role, names of the missing ones) in one directory."""
    found, missing = {}, []
    for role, name in FILES.items():
        for candidate in (directory / name, directory / f"{name}.gz"):
            if candidate.is_file():
                found[role] = candidate
                break
        else:
            missing.append(name)
    return found, missing


def find_files(data_dir=None) -> dict[str, pathlib.Path]:
    """The four files from the first searched directory that has them all."""
    searched = []
    for directory in search_dirs(data_dir):
        found, missing = _find_in(directory)
        if not missing:
            return found
        state = "does not exist" if not directory.is_dir() else f"lacks {', '.join(missing)}"
        searched.append(f"{directory} ({state})")
    raise ValueError(
        "fashion_mnist: the IDX files (" + ", ".join(FILES.values()) + ", plain or .gz) were "
        "not found; searched " + "; ".join(searched) + ". Get them with "
        "`apt-get install dataset-fashion-mnist` (Debian/Ubuntu, into "
        f"{SYSTEM_DIR}), or with internet access run keras.datasets.fashion_mnist.load_data() "
        "once (into the Keras cache), or pass data_dir= a directory that holds them"
    )


def _read_pair(images_path, labels_path) -> tuple[np.ndarray, np.ndarray]:
    images = idx.read_idx(images_path, ndim=3)
    labels = idx.read_idx(labels_path, ndim=1)
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise ValueError(
            f"fashion_mnist: {images_path} and {labels_path} must hold uint8 values, not "
            f"{images.dtype} and {labels.dtype}"
        )
    if len(images) != len(labels):
        raise ValueError(
            f"fashion_mnist: {images_path} has {len(images)} images but {labels_path} has "
            f"{len(labels)} labels"
        )
    if labels.size and labels.max() >= NUM_CLASSES:
        raise ValueError(f"fashion_mnist: {labels_path} has label {labels.max()}; labels are 0..9")
    return images[..., None], labels.astype(np.int32)


def read_arrays(data_dir=None) -> dict[str, np.ndarray]:
    """{"train_images": uint8 [N, H, W, 1], "train_labels": int32 [N], "test_…": …}."""
    files = find_files(data_dir)
    train_images, train_labels = _read_pair(files["train_images"], files["train_labels"])
    test_images, test_labels = _read_pair(files["test_images"], files["test_labels"])
    if train_images.shape[1:] != test_images.shape[1:]:
        raise ValueError(
            f"fashion_mnist: training images are {train_images.shape[1:3]} but test images "
            f"are {test_images.shape[1:3]}"
        )
    return {
        "train_images": train_images,
        "train_labels": train_labels,
        "test_images": test_images,
        "test_labels": test_labels,
    }


def open_source(config: DataConfig) -> source.Source:
    """The training set is the pool for the held-out split; the t10k set is validation."""
    arrays = read_arrays(config.data_dir)
    height, width = arrays["train_images"].shape[1:3]
    fit = source.resolve_fit(config.fit, photographs=False)
    preprocess.check_fixed_size("fashion_mnist", height, width, config.image_size, fit)
    train_map, eval_map = source.small_image_maps(config.image_size, config.channels, fit)
    num_validation = len(arrays["test_labels"])
    validation = source.select_arrays(
        {"image": arrays["test_images"], "label": arrays["test_labels"]}
    )(np.arange(num_validation))
    return source.Source(
        dataset="fashion_mnist",
        num_examples=len(arrays["train_labels"]),
        select=source.select_arrays(
            {"image": arrays["train_images"], "label": arrays["train_labels"]}
        ),
        validation=validation,
        num_validation=num_validation,
        num_classes=NUM_CLASSES,
        train_map=train_map,
        eval_map=eval_map,
    )
