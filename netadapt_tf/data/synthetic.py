"""A generated image-classification set for tests and demos: deterministic and learnable.

Each class has a fixed pattern: stripes whose frequency and direction depend on the class,
on top of a class- and channel-dependent intensity, plus Gaussian noise. The patterns
survive flips and small shifts (the training augmentation), so a small network's loss goes
down within a few steps, while the noise keeps the task from being trivially solved.
"""

import numpy as np

from netadapt_tf.data import source
from netadapt_tf.data.config import DataConfig

NOISE = 0.12
TRAIN_SEED, VALIDATION_SEED = 0, 1


def class_patterns(size: int, channels: int, num_classes: int) -> np.ndarray:
    """float32 [num_classes, size, size, channels] in [0, 1]: the noise-free class means."""
    coordinate = (np.arange(size) + 0.5) / size
    patterns = np.empty((num_classes, size, size, channels), np.float32)
    for k in range(num_classes):
        frequency = 1 + k // 2
        wave = 0.2 * np.cos(2 * np.pi * frequency * coordinate)
        # Even classes vary down the image, odd classes across it.
        stripes = wave[:, None] if k % 2 == 0 else wave[None, :]
        for c in range(channels):
            level = 0.3 + 0.4 * ((k * (c + 3)) % num_classes) / max(1, num_classes - 1)
            patterns[k, :, :, c] = level + np.broadcast_to(stripes, (size, size))
    return np.clip(patterns, 0.0, 1.0)


def generate(
    count: int, size: int, channels: int, num_classes: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [count, size, size, channels], labels int32 [count]), a fixed function of
    the arguments. Labels cycle through the classes so every class is present."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(count) % num_classes).astype(np.int32)
    noise = rng.normal(0.0, NOISE, size=(count, size, size, channels)).astype(np.float32)
    images = class_patterns(size, channels, num_classes)[labels] + noise
    return np.round(np.clip(images, 0.0, 1.0) * 255).astype(np.uint8), labels


def open_source(config: DataConfig) -> source.Source:
    """`synthetic_examples` training examples and a fifth as many (at least one) validation
    examples, generated at image_size (so `fit` has nothing to do)."""
    size, channels = config.image_size, config.channels
    classes = config.synthetic_classes
    images, labels = generate(config.synthetic_examples, size, channels, classes, TRAIN_SEED)
    num_validation = max(1, config.synthetic_examples // 5)
    val_images, val_labels = generate(num_validation, size, channels, classes, VALIDATION_SEED)
    train_map, eval_map = source.small_image_maps(size, channels, "pad")
    dataset = f"synthetic:{config.synthetic_examples}x{size}x{size}x{channels}/{classes}"
    return source.Source(
        dataset=dataset,
        num_examples=len(labels),
        select=source.select_arrays({"image": images, "label": labels}),
        validation=source.select_arrays({"image": val_images, "label": val_labels})(
            np.arange(num_validation)
        ),
        num_validation=num_validation,
        num_classes=classes,
        train_map=train_map,
        eval_map=eval_map,
    )
