"""Images in a folder with one sub-directory per class (.png, .jpg, .jpeg files).

"image_folder:PATH" reads PATH/CLASS/FILE. Classes are the sub-directory names in sorted
order (label 0 is the first). The validation set is the sibling folder PATH/../val when it
exists (same layout; its classes must be among PATH's); otherwise a tenth of PATH's images
(at least one), chosen by a fixed seed that does not depend on held_out_seed, is set aside
as validation first, and the held-out split is drawn from the rest. Example ids for the
split fingerprint are the paths relative to PATH, so an edited folder changes the
fingerprint.
"""

import pathlib

import numpy as np
import tensorflow as tf

from netadapt_tf.data import held_out, preprocess, source
from netadapt_tf.data.config import DataConfig

EXTENSIONS = (".png", ".jpg", ".jpeg")
VALIDATION_FRACTION = 0.1
# Fixed, so changing held_out_seed never moves images between validation and training.
VALIDATION_SEED = 0x7A11D


def list_images(root: pathlib.Path, classes: list[str] | None = None):
    """(relative paths, labels, class names) of root/CLASS/FILE in sorted order."""
    if not root.is_dir():
        raise ValueError(f"image_folder: {root} is not a directory")
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if classes is None:
        classes = found
        if len(classes) < 2:
            raise ValueError(
                f"image_folder: {root} has {len(classes)} class sub-directories "
                f"({classes}); a classification folder needs at least 2"
            )
    elif set(found) - set(classes):
        raise ValueError(
            f"image_folder: {root} has classes {sorted(set(found) - set(classes))} that the "
            f"training folder lacks; its classes are {classes}"
        )
    paths, labels = [], []
    for label, name in enumerate(classes):
        directory = root / name
        if not directory.is_dir():
            continue
        files = sorted(
            p.name
            for p in directory.iterdir()
            if p.is_file() and p.suffix.lower() in EXTENSIONS and not p.name.startswith(".")
        )
        paths += [f"{name}/{f}" for f in files]
        labels += [label] * len(files)
    if not paths:
        raise ValueError(f"image_folder: {root} has no {'/'.join(EXTENSIONS)} images")
    return paths, np.array(labels, np.int32), classes


def _select_files(root: pathlib.Path, paths: list[str], labels: np.ndarray):
    files = np.array([str(root / p) for p in paths])

    def select(indices: np.ndarray) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices(
            {"path": files[indices], "label": labels[indices]}
        )

    return select


def open_source(config: DataConfig, path: str) -> source.Source:
    root = pathlib.Path(path).expanduser().resolve()
    paths, labels, classes = list_images(root)
    val_root = root.parent / "val"
    if val_root.is_dir() and val_root != root:
        val_paths, val_labels, _ = list_images(val_root, classes)
        num_validation = len(val_paths)
        validation = _select_files(val_root, val_paths, val_labels)(np.arange(num_validation))
        validation_note = f"validation {val_root}"
    else:
        if len(paths) < 2:
            raise ValueError(f"image_folder: {root} has 1 image; a validation split needs 2")
        num_validation = max(1, round(VALIDATION_FRACTION * len(paths)))
        val_indices = held_out.held_out_indices(len(paths), num_validation, VALIDATION_SEED)
        validation = _select_files(root, paths, labels)(val_indices)
        validation_note = f"validation {num_validation} of {len(paths)} images"
        keep = np.setdiff1d(np.arange(len(paths)), val_indices)
        paths, labels = [paths[i] for i in keep], labels[keep]

    fit = source.resolve_fit(config.fit, photographs=True)
    if fit == "pad":
        raise ValueError(
            "DataConfig.fit: 'pad' needs images of one known size, but image_folder images "
            "may differ in size; use 'auto', 'resize' or 'crop_or_pad'"
        )
    size, channels = config.image_size, config.channels

    def eval_map(raw):
        # decode_image also reads gray and RGBA PNGs and converts them to `channels`.
        encoded = tf.io.read_file(raw["path"])
        image = tf.io.decode_image(encoded, channels=channels, expand_animations=False)
        image = preprocess.fit_image(preprocess.to_unit_float(image), size, fit)
        return image, raw["label"]

    def train_map(raw, seed):
        image, label = eval_map(raw)
        return preprocess.flip_and_shift(image, seed), label

    return source.Source(
        dataset=f"image_folder:{root} ({validation_note})",
        num_examples=len(paths),
        select=_select_files(root, paths, labels),
        validation=validation,
        num_validation=num_validation,
        num_classes=len(classes),
        train_map=train_map,
        eval_map=eval_map,
        ids=paths,
    )
