"""Export of a sub-network as a plain, smaller Keras model with inherited weights.

Only kept filters and kernels are built (weights sliced from the super-network); bypassed
channels become channel slices and concatenations; a layer that keeps no filter adds no
convolution, and a removed residual block adds nothing. In inference mode the exported
model computes what the masked super-network computes for that arch (tested to 1e-4).
"""

import keras
import numpy as np

from netadapt_tf import channel_math
from netadapt_tf.arch import Arch
from netadapt_tf.layers import ChannelSlice
from netadapt_tf.subnet import ResolvedLayer, ResolvedPool, resolve
from netadapt_tf.supernet import SuperLayer, SuperNetwork, arch_inputs, keras_name


def _apply(layer, x, weights):
    """Calls a new Keras layer on x (which builds it) and gives it `weights`."""
    y = layer(x)
    layer.set_weights([np.asarray(w) for w in weights])
    return y


def _conv_path(module: SuperLayer, r: ResolvedLayer, x, name: str):
    spec, m, c = r.spec, r.width, r.in_channels
    conv = module.conv
    if spec.kind == "depthwise":
        if m < c:
            x = ChannelSlice(0, m, name=f"{name}__inputs")(x)
        kernel = channel_math.superkernel_crop(conv.kernel.numpy(), r.kernel_size)[:, :, :m]
        weights = [kernel] + ([conv.bias.numpy()[:m]] if spec.use_bias else [])
        layer = keras.layers.DepthwiseConv2D(
            r.kernel_size,
            spec.strides,
            padding="same",
            use_bias=spec.use_bias,
            name=f"{name}__conv",
        )
    elif spec.kind == "fc":
        x = keras.layers.Flatten(name=f"{name}__flatten")(x)
        if spec.dropout:
            x = keras.layers.Dropout(spec.dropout, name=f"{name}__dropout")(x)
        weights = [conv.kernel.numpy()[:c, :m]] + ([conv.bias.numpy()[:m]] if spec.use_bias else [])
        layer = keras.layers.Dense(m, use_bias=spec.use_bias, name=f"{name}__dense")
    else:
        kernel = conv.kernel.numpy()[:, :, :c, :m]
        weights = [kernel] + ([conv.bias.numpy()[:m]] if spec.use_bias else [])
        layer = keras.layers.Conv2D(
            m,
            spec.kernel_size,
            spec.strides,
            padding="same",
            use_bias=spec.use_bias,
            name=f"{name}__conv",
        )
    y = _apply(layer, x, weights)
    if module.bn is not None:
        bn = module.bn
        params = [bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance]
        layer = keras.layers.BatchNormalization(
            epsilon=bn.epsilon, momentum=bn.momentum, name=f"{name}__bn"
        )
        y = _apply(layer, y, [p.numpy()[:m] for p in params])
    return keras.layers.Activation(spec.activation, name=f"{name}__act")(y)


def _squeeze_excite(module: SuperLayer, r: ResolvedLayer, x, name: str):
    se, s, c = module.conv, r.width, r.in_channels
    g = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}__pool")(x)
    squeeze = keras.layers.Conv2D(s, 1, activation=se.activation, name=f"{name}__squeeze")
    g = _apply(squeeze, g, [se.squeeze.kernel.numpy()[:, :, :c, :s], se.squeeze.bias.numpy()[:s]])
    excite = keras.layers.Conv2D(c, 1, name=f"{name}__excite")
    g = _apply(excite, g, [se.excite.kernel.numpy()[:, :, :s, :c], se.excite.bias.numpy()[:c]])
    g = keras.layers.Activation(se.gate, name=f"{name}__gate")(g)
    return keras.layers.Multiply(name=f"{name}__scale")([x, g])


def _layer(supernet: SuperNetwork, r: ResolvedLayer, x):
    module = supernet.super_layers[r.name]
    name = keras_name(r.name)
    if r.spec.kind == "se":
        return x if r.width == 0 else _squeeze_excite(module, r, x, name)
    parts = []
    if r.width > 0:
        parts.append(_conv_path(module, r, x, name))
    if r.bypassed > 0:
        source = x
        if r.spec.strides > 1:
            pool = keras.layers.AveragePooling2D(
                r.spec.strides, r.spec.strides, padding="same", name=f"{name}__bypass_pool"
            )
            source = pool(x)
        if r.width == 0 and r.bypassed == r.in_channels:
            parts.append(source)
        else:
            stop = r.width + r.bypassed
            parts.append(ChannelSlice(r.width, stop, name=f"{name}__bypass")(source))
    if len(parts) == 1:
        return parts[0]
    return keras.layers.Concatenate(name=f"{name}__concat")(parts)


def _residual_add(x, y, in_channels: int, out_channels: int, name: str):
    """x + y, zero-padding the narrower (as the super-network's padded tensors add)."""
    if in_channels == out_channels:
        return keras.layers.Add(name=f"{name}__add")([x, y])
    k = min(in_channels, out_channels)
    wide, wide_channels = (x, in_channels) if in_channels > out_channels else (y, out_channels)
    head = keras.layers.Add(name=f"{name}__add")(
        [ChannelSlice(0, k, name=f"{name}__add_x")(x), ChannelSlice(0, k, name=f"{name}__add_y")(y)]
    )
    rest = ChannelSlice(k, wide_channels, name=f"{name}__add_rest")(wide)
    return keras.layers.Concatenate(name=f"{name}__add_concat")([head, rest])


def export_subnetwork(supernet: SuperNetwork, arch: Arch, name: str | None = None) -> keras.Model:
    """The plain Keras model of `arch` with weights inherited from `supernet`."""
    spec = supernet.spec
    sub = resolve(spec, arch)
    image = keras.Input((spec.input_size, spec.input_size, spec.input_channels), name="image")
    x = image
    for node in sub.nodes:
        if isinstance(node, ResolvedPool):
            x = keras.layers.GlobalAveragePooling2D(keepdims=True, name=node.spec.name)(x)
        elif isinstance(node, ResolvedLayer):
            x = _layer(supernet, node, x)
        elif not node.removed:
            y = x
            for r in node.layers:
                y = _layer(supernet, r, y)
            if node.spec.residual:
                last = node.layers[-1].out_channels
                y = _residual_add(x, y, node.in_channels, last, keras_name(node.name))
            x = y
    return keras.Model(image, x, name=name or f"{spec.name}_subnet")


def max_abs_diff(supernet: SuperNetwork, model: keras.Model, arch: Arch, images) -> float:
    """Largest difference between the exported model and the masked super-network."""
    images = np.asarray(images, np.float32)
    inputs = arch_inputs(supernet.spec, [arch] * len(images))
    inputs["image"] = images
    expected = np.asarray(supernet(inputs, training=False))
    got = np.asarray(model(images, training=False))
    return float(np.max(np.abs(expected - got)))
