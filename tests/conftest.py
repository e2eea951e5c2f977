"""Shared test set-up: quiet TensorFlow, small networks, weight randomization."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from netadapt_tf import builders  # noqa: E402
from netadapt_tf.space.arch import full_arch  # noqa: E402
from netadapt_tf.supernet.layers import MaskedBatchNormalization  # noqa: E402
from netadapt_tf.supernet.network import SuperNetwork, arch_inputs  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _seeded_module():
    """Every test file starts from the same random state, whichever files its xdist worker
    ran before (module-scoped fixtures such as a shared super-network draw from it)."""
    keras.utils.set_random_seed(0)


@pytest.fixture(autouse=True)
def _seeded_test():
    """Every test starts from the same random state (Python, NumPy, TensorFlow, Keras), so
    a result does not depend on which tests ran before it on the same worker."""
    keras.utils.set_random_seed(0)


SMALL = {"input_size": 32, "num_classes": 10, "width_multiplier": 0.25}

# The builders whose per-builder checks (export, sliced forward, TFLite, QAT rebuild parity)
# run in the quick tier: the paper's initial network (inverted-residual blocks, SE, h-swish,
# channel bypass, superkernels) and FastDepth (plain layers as MobileNetV1 has them, decoder,
# upsampling, skips). The other builders add no node type of their own; their runs of the
# same checks are in the slow tier, which CI runs too.
QUICK_BUILDERS = ("fastdepth", "netadaptv2_mobilenet_v3")


def per_builder(names=None):
    """pytest params over `names` (default: every builder), the ones outside
    QUICK_BUILDERS marked slow."""
    names = sorted(builders.BUILDERS) if names is None else names
    return [
        pytest.param(name, marks=() if name in QUICK_BUILDERS else pytest.mark.slow)
        for name in names
    ]


def small_spec(name: str, **options):
    """A tiny super-network of builder `name` (8-32 channels, 32 px; dense-prediction
    builders get no classes)."""
    small = {**SMALL, "num_classes": None} if name in builders.DENSE_BUILDERS else SMALL
    return builders.build(name, **{**small, **options})


def randomize_non_kernel_weights(model, seed: int = 0) -> None:
    """Weights under which a parity test checks every layer: random BN scales, offsets and
    biases, and BN statistics that fit the network's own activations, so that the outputs
    are of order one and depend on the input image.

    With Keras's initial kernels each depthwise layer shrinks its activations about C/2
    times, so an untrained network's outputs are about 1e-8. Random BN statistics alone do
    not cure that: the BN offsets then swamp the signal, and the outputs (about 0.3) no
    longer depend on the image or on any early layer. So the moving statistics are the
    moments of each BN's input on random images (one training-mode pass of the full network
    with momentum 0, each BN normalizing with the batch's moments): every BN then gives its
    channels about gamma times a unit spread plus beta. (Perturbing the measured statistics
    compounds through the layers: outputs of about 1e3 on MobileNetV3.) `model` is a
    SuperNetwork or a plain Keras model.
    """
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if w.path.endswith("kernel") or "moving" in w.path:
            continue
        if "gamma" in w.path:
            value = rng.uniform(0.5, 1.5, size=w.shape)
        else:
            value = rng.normal(scale=0.1, size=w.shape)
        w.assign(value.astype("float32"))
    _measure_batch_norm_statistics(model, rng)


def random_bn_offsets(model, seed: int = 0) -> None:
    """Random BN statistics, scales, offsets and biases, with no regard to the activations
    (what randomize_non_kernel_weights did before it measured the statistics): the outputs
    are of order 0.3 but hardly depend on the image. Only for a test that needs activations
    of the network's (constant) scale rather than a parity check."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if w.path.endswith("kernel"):
            continue
        if "variance" in w.path or "gamma" in w.path:
            value = rng.uniform(0.5, 1.5, size=w.shape)
        else:
            value = rng.normal(scale=0.1, size=w.shape)
        w.assign(value.astype("float32"))


def _batch_norms(model):
    kinds = (keras.layers.BatchNormalization, MaskedBatchNormalization)
    return [layer for layer in model._flatten_layers() if isinstance(layer, kinds)]


def _measure_batch_norm_statistics(model, rng, count: int = 64) -> None:
    """Sets every BN's moving statistics to its input's moments over `count` random
    standard-normal images, run through the full network in training mode."""
    if isinstance(model, SuperNetwork):
        spec = model.spec
        shape = (count, spec.input_size, spec.input_size, spec.input_channels)
        inputs = arch_inputs(spec, [full_arch(spec)] * count)
        inputs["image"] = rng.standard_normal(shape).astype("float32")
    else:
        inputs = rng.standard_normal((count, *model.inputs[0].shape[1:])).astype("float32")
    layers = _batch_norms(model)
    saved = [layer.momentum for layer in layers]
    try:
        for layer in layers:
            layer.momentum = 0.0
        model(inputs, training=True)
    finally:
        for layer, momentum in zip(layers, saved, strict=True):
            layer.momentum = momentum


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
