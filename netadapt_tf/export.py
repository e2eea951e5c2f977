"""Export of a sub-network as a plain, smaller Keras model with inherited weights, and back.

Only kept filters and kernels are built (weights sliced from the super-network); bypassed
channels become channel slices and concatenations; a layer that keeps no filter adds no
convolution, and a removed residual block adds nothing. In inference mode the exported
model computes what the masked super-network computes for that arch (tested to 1e-4).
`load_into_supernet` is the reverse: a plain model of an arch (trained alone, say) written
into the super-network's slices for that arch, to warm-start super-network training.
"""

import keras
import numpy as np

from netadapt_tf.arch import Arch
from netadapt_tf.layers import ChannelSlice
from netadapt_tf.subnet import ResolvedLayer, ResolvedPool, resolve
from netadapt_tf.supernet import SuperNetwork, arch_inputs, keras_name
from netadapt_tf.supernet_slices import (
    SupernetWeights,
    assign_slices,
    weight_parts,
    weight_slices,
)


def _apply(layer, x, weights):
    """Calls a new Keras layer on x (which builds it) and gives it `weights`."""
    y = layer(x)
    layer.set_weights([np.asarray(w) for w in weights])
    return y


def _conv_path(source: SupernetWeights, r: ResolvedLayer, x, name: str):
    spec, m, c = r.spec, r.width, r.in_channels
    if spec.kind == "depthwise":
        if m < c:
            x = ChannelSlice(0, m, name=f"{name}__inputs")(x)
        part = "conv"
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
        part = "dense"
        layer = keras.layers.Dense(m, use_bias=spec.use_bias, name=f"{name}__dense")
    else:
        part = "conv"
        layer = keras.layers.Conv2D(
            m,
            spec.kernel_size,
            spec.strides,
            padding="same",
            use_bias=spec.use_bias,
            name=f"{name}__conv",
        )
    y = _apply(layer, x, source.weights(r, part))
    if spec.batch_norm:
        layer = keras.layers.BatchNormalization(**source.batch_norm_settings(r), name=f"{name}__bn")
        y = _apply(layer, y, source.weights(r, "bn"))
    return keras.layers.Activation(spec.activation, name=f"{name}__act")(y)


def _squeeze_excite(source: SupernetWeights, r: ResolvedLayer, x, name: str):
    se = source.supernet.super_layers[r.name].conv
    g = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}__pool")(x)
    squeeze = keras.layers.Conv2D(r.width, 1, activation=se.activation, name=f"{name}__squeeze")
    g = _apply(squeeze, g, source.weights(r, "squeeze"))
    excite = keras.layers.Conv2D(r.in_channels, 1, name=f"{name}__excite")
    g = _apply(excite, g, source.weights(r, "excite"))
    g = keras.layers.Activation(se.gate, name=f"{name}__gate")(g)
    return keras.layers.Multiply(name=f"{name}__scale")([x, g])


def _layer(source: SupernetWeights, r: ResolvedLayer, x):
    name = keras_name(r.name)
    if r.spec.kind == "se":
        return x if r.width == 0 else _squeeze_excite(source, r, x, name)
    parts = []
    if r.width > 0:
        parts.append(_conv_path(source, r, x, name))
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
    source = SupernetWeights(supernet)
    image = keras.Input((spec.input_size, spec.input_size, spec.input_channels), name="image")
    x = image
    for node in sub.nodes:
        if isinstance(node, ResolvedPool):
            x = keras.layers.GlobalAveragePooling2D(keepdims=True, name=node.spec.name)(x)
        elif isinstance(node, ResolvedLayer):
            x = _layer(source, node, x)
        elif not node.removed:
            y = x
            for r in node.layers:
                y = _layer(source, r, y)
            if node.spec.residual:
                last = node.layers[-1].out_channels
                y = _residual_add(x, y, node.in_channels, last, keras_name(node.name))
            x = y
    return keras.Model(image, x, name=name or f"{spec.name}_subnet")


def _model_layer(model: keras.Model, name: str, r: ResolvedLayer):
    try:
        return model.get_layer(name)
    except ValueError:
        raise ValueError(
            f"load_into_supernet: model {model.name!r} has no layer {name!r}, which layer "
            f"{r.name!r} of the arch needs; give a model of this arch (an export_subnetwork "
            "of it, trained or not)"
        ) from None


def load_into_supernet(supernet: SuperNetwork, model: keras.Model, arch: Arch) -> tuple[str, ...]:
    """Copies the weights of `model`, a plain model of `arch` (made by export_subnetwork and
    trained alone, for example), into the slices of `supernet` that `arch` uses: the reverse
    of export_subnetwork. Returns the names of the layers copied.

    Afterwards exporting `arch` gives `model`'s weights exactly and the super-network computes
    for `arch` what `model` computes (inference); every other entry of the super-network keeps
    its value. Batch-norm momentum is not copied (it is a training setting). Raises
    ValueError, changing nothing, when the model lacks a layer the arch needs, has weights
    the arch does not describe, has a weight of another shape or a batch norm with another
    epsilon.
    """
    expected, updates, copied = set(), [], []
    for r in resolve(supernet.spec, arch).layers():
        if r.width == 0:  # a pure bypass or a switched-off SE gate has no weights
            continue
        for part in weight_parts(r.spec):
            name = f"{keras_name(r.name)}__{part}"
            expected.add(name)
            layer = _model_layer(model, name, r)
            values = layer.get_weights()
            slices = weight_slices(supernet, r, part)
            want = [tuple(np.shape(v.numpy()[index])) for v, index in slices]
            got = [tuple(np.shape(w)) for w in values]
            if got != want:
                raise ValueError(
                    f"load_into_supernet: layer {name!r} of model {model.name!r} has weights "
                    f"of shapes {got}; the arch needs {want}"
                )
            if part == "bn":
                epsilon = float(supernet.super_layers[r.name].bn.epsilon)
                if not np.isclose(float(layer.epsilon), epsilon, rtol=1e-6, atol=0):
                    raise ValueError(
                        f"load_into_supernet: layer {name!r} of model {model.name!r} has "
                        f"epsilon {layer.epsilon}; the super-network's batch norm has {epsilon}"
                    )
            updates.extend((v, index, w) for (v, index), w in zip(slices, values, strict=True))
        copied.append(r.name)
    extra = sorted(
        layer.name for layer in model.layers if layer.weights and layer.name not in expected
    )
    if extra:
        raise ValueError(
            f"load_into_supernet: layers {extra} of model {model.name!r} have weights but are "
            "not in the network the arch describes; give a model of this arch"
        )
    assign_slices(updates)
    return tuple(copied)


def max_abs_diff(supernet: SuperNetwork, model: keras.Model, arch: Arch, images) -> float:
    """Largest difference between the exported model and the masked super-network."""
    images = np.asarray(images, np.float32)
    inputs = arch_inputs(supernet.spec, [arch] * len(images))
    inputs["image"] = images
    expected = np.asarray(supernet(inputs, training=False))
    got = np.asarray(model(images, training=False))
    return float(np.max(np.abs(expected - got)))
