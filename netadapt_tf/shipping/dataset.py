"""The images shipping needs, as arrays: training images for int8 calibration and
quantization-aware training, validation images and labels for accuracy.

They come from netadapt_tf.data as training does (same sources, same preprocessing, at the
network's input size and channels), without augmentation: the training examples in the
order of epoch 0 of `shuffle_seed`, the validation split in its fixed order.
"""

import numpy as np
import tensorflow as tf

from netadapt_tf import data
from netadapt_tf.shipping.pipeline import ShippingData
from netadapt_tf.space.spec import NetworkSpec
from netadapt_tf.space.task import task_of


def _arrays(dataset: tf.data.Dataset, count: int | None) -> tuple[np.ndarray, np.ndarray]:
    if count is not None:
        dataset = dataset.take(count)
    images, labels = [], []
    for x, y in dataset.batch(512).as_numpy_iterator():
        images.append(x)
        labels.append(y)
    if not images:
        return np.zeros((0,), np.float32), np.zeros((0,), np.int32)
    labels = np.concatenate(labels)
    kind = np.int32 if np.issubdtype(labels.dtype, np.integer) else np.float32  # depth maps
    return np.concatenate(images).astype(np.float32), labels.astype(kind)


def load_shipping_data(
    spec: NetworkSpec,
    name: str,
    data_dir: str | None = None,
    calibration_examples: int = 200,
    train_examples: int = 0,
    validation_examples: int | None = None,
    shuffle_seed: int = 0,
    synthetic_examples: int = 1024,
) -> ShippingData:
    """Arrays of dataset `name` for `spec` (validation_examples None: the whole split); a
    depth network takes a depth dataset, whose labels are depth maps."""
    config = data.DataConfig(
        name=name,
        data_dir=data_dir,
        image_size=spec.input_size,
        channels=spec.input_channels,
        batch_size=256,
        held_out=0,
        augment=False,
        shuffle_seed=shuffle_seed,
        synthetic_examples=synthetic_examples,
        synthetic_classes=max(2, spec.num_classes or 2),
    )
    datasets = data.load(config, task=task_of(spec))
    if datasets.num_classes != spec.num_classes:
        raise ValueError(
            f"dataset: {name!r} has {datasets.num_classes} classes but network "
            f"{spec.name!r} has {spec.num_classes}"
        )
    train_count = max(calibration_examples, train_examples)
    train_images, train_labels = _arrays(datasets.train_for_epoch(0), train_count)
    validation_images, validation_labels = _arrays(datasets.validation, validation_examples)
    return ShippingData(
        calibration=train_images[:calibration_examples] if calibration_examples else None,
        validation_images=validation_images,
        validation_labels=validation_labels,
        train_images=train_images[:train_examples] if train_examples else None,
        train_labels=train_labels[:train_examples] if train_examples else None,
        dataset=datasets.split.dataset,
    )
