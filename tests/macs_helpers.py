"""MACs and BN-folded parameters read independently from a plain Keras model, to check the
spec's counter against exported sub-networks."""

import keras


def keras_macs(model: keras.Model) -> int:
    """MACs read independently from the layers and shapes of a plain Keras model."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            _, h, w, c = layer.output.shape
            total += h * w * layer.kernel_size[0] * layer.kernel_size[1] * c
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, m = layer.output.shape
            c = layer.input.shape[-1]
            total += h * w * layer.kernel_size[0] * layer.kernel_size[1] * c * m
        elif isinstance(layer, keras.layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return total


def folded_params(model: keras.Model) -> int:
    """Keras' parameter count with BN folded: one bias per channel, not four values."""
    bn = sum(
        layer.gamma.shape[0]
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    )
    return model.count_params() - 3 * bn
