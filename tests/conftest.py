"""Shared test set-up: quiet TensorFlow, small networks, weight randomization."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from netadapt_tf import builders  # noqa: E402

SMALL = {"input_size": 32, "num_classes": 10, "width_multiplier": 0.25}


def small_spec(name: str, **options):
    """A tiny super-network of builder `name` (8-32 channels, 32 px)."""
    return builders.build(name, **{**SMALL, **options})


def randomize_non_kernel_weights(model, seed: int = 0) -> None:
    """Random BN statistics, scales and biases, so parity tests do not pass on identity BN."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if w.path.endswith("kernel"):
            continue
        if "variance" in w.path or "gamma" in w.path:
            value = rng.uniform(0.5, 1.5, size=w.shape)
        else:
            value = rng.normal(scale=0.1, size=w.shape)
        w.assign(value.astype("float32"))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
