"""A tiny learnable dataset and super-network for training tests."""

import dataclasses

import numpy as np
import tensorflow as tf

from netadapt_tf import builders

NUM_CLASSES = 4
SIZE = 16


def tiny_spec():
    return builders.build(
        "mobilenet_v1",
        input_size=SIZE,
        num_classes=NUM_CLASSES,
        width_multiplier=0.25,
        dropout=0.0,
    )


def shallow_spec():
    """tiny_spec cut to its stem, two separable blocks and the classifier: for tests of one
    training step, whose cost is tracing the step (forward and gradient) of every layer."""
    spec = tiny_spec()
    nodes = [n for n in spec.nodes if n.name.split("/")[0] in ("stem", "block1", "block2")]
    return dataclasses.replace(
        spec, name="shallow_mobilenet_v1", nodes=(*nodes, *spec.nodes[-2:]), origin=()
    )


def tiny_data(n: int = 256, seed: int = 0):
    """Images whose colour tells the class."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, NUM_CLASSES, n).astype("int32")
    images = rng.normal(size=(n, SIZE, SIZE, 3)).astype("float32") * 0.3
    for c in range(NUM_CLASSES):
        images[labels == c, :, :, c % 3] += 1.0 + c // 3
    return tf.data.Dataset.from_tensor_slices((images, labels))
