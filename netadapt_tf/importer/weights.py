"""The user's weights into the super-network at full width, and what they cost.

`check_finite` refuses weights with NaN or infinity before any work. `transfer` writes each
mapped layer's kernels, biases and batch-norm parameters into its super-network layer (a
grouped Conv2D read as depthwise is reshaped, a 1x1 Conv2D classifier becomes the Dense
kernel). The super-network's batch norm has Keras's default epsilon 1e-3; a batch norm of
another epsilon is carried exactly by shifting its moving variance by the difference
(inference computes gamma / sqrt(variance + epsilon), which is unchanged).
`keras_counts` counts MACs and BN-folded parameters on the Keras layers themselves, the
reference the spec's counter (space/macs.py) must equal.
"""

import keras
import numpy as np

from netadapt_tf.graphs.subnet_graph import DEFAULT_BATCH_NORM
from netadapt_tf.importer.mapping import Found, Mapped
from netadapt_tf.space.macs import Counts
from netadapt_tf.supernet.network import SuperNetwork


def check_finite(model: keras.Model) -> None:
    """ValueError naming the first weight with NaN or infinity."""
    for w in model.weights:
        value = np.asarray(w)
        if not np.all(np.isfinite(value)):
            bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
            raise ValueError(
                f"{w.path}: {bad} of its {np.size(value)} values are NaN or infinite; "
                "a model to import must have finite weights"
            )


def _kernel(found: Found) -> np.ndarray:
    kernel = np.asarray(found.conv.kernel)
    if found.kind == "depthwise" and isinstance(found.conv, keras.layers.Conv2D):
        kernel = np.transpose(kernel, (0, 1, 3, 2))  # (k, k, 1, C) -> (k, k, C, 1)
    return kernel


def _bias(layer) -> list:
    return [np.asarray(layer.bias)] if layer.use_bias else []


def _batch_norm(bn, channels: int) -> list:
    ones, zeros = np.ones(channels, np.float32), np.zeros(channels, np.float32)
    gamma = np.asarray(bn.gamma) if bn.scale else ones
    beta = np.asarray(bn.beta) if bn.center else zeros
    shift = float(bn.epsilon) - DEFAULT_BATCH_NORM["epsilon"]
    variance = np.asarray(bn.moving_variance, np.float64) + shift
    return [gamma, beta, np.asarray(bn.moving_mean), variance.astype(np.float32)]


def transfer(mapped: Mapped, names, supernet: SuperNetwork) -> None:
    """Writes every mapped layer's weights into `supernet` (built from the mapped spec)."""
    for found, name in zip(mapped.layers, names, strict=True):
        module = supernet.super_layers[name]
        if found.kind == "se":
            se = module.conv
            se.squeeze.set_weights([np.asarray(found.conv.kernel), np.asarray(found.conv.bias)])
            se.excite.set_weights([np.asarray(found.excite.kernel), np.asarray(found.excite.bias)])
            continue
        kernel = _kernel(found)
        if module.layer.kind == "fc" or isinstance(module.conv, keras.layers.Dense):
            kernel = kernel.reshape(found.in_channels, found.filters)
        elif found.pooled:
            kernel = kernel.reshape(1, 1, found.in_channels, found.filters)
        module.conv.set_weights([kernel, *_bias(found.conv)])
        if found.bn is not None:
            module.bn.set_weights(_batch_norm(found.bn, int(module.bn.gamma.shape[0])))


def keras_counts(mapped: Mapped, size: int) -> Counts:
    """MACs and BN-folded parameters of the mapped Keras layers (biases of convolutions with
    batch norm counted once per filter, as the spec's counter folds them)."""
    total = Counts(0, 0)
    for found in mapped.layers:
        size = -(-size // found.strides) if not found.pooled else 1
        pixels = size * size
        if found.kind == "se":
            c, s = found.in_channels, found.filters
            total += Counts(2 * c * s, 2 * c * s + s + c)
            continue
        weights = int(np.size(found.conv.kernel))
        bias = found.filters if (found.use_bias or found.bn is not None) else 0
        total += Counts(pixels * weights, weights + bias)
    return total
