"""The layer graph of an exported sub-network, built from its arch description alone.

`build_network(resolve(spec, arch), backend)` makes the model netadapt_tf.export writes
(same layers, same names, same order of weights), but without a super-network and with
untrained weights, for either Keras 3 or tf_keras. Keras 3 uses it to check that a trained
model's weights fit its arch; the quantization-aware-training process uses it to rebuild
the network in tf_keras and load the trained weights by layer name. Nothing here imports a
Keras: the caller passes the one it uses, so this module is safe in both processes.
"""

import dataclasses
from collections.abc import Callable, Mapping

from netadapt_tf.subnet import ResolvedLayer, ResolvedPool, SubNetwork

# Keras's BatchNormalization defaults, which the super-network's layers use as well.
DEFAULT_BATCH_NORM = {"epsilon": 1e-3, "momentum": 0.99}
# The squeeze-and-excitation gate's activation (layers.SqueezeExcite's default).
SE_GATE = "hard_sigmoid"


def layer_name(path: str) -> str:
    """Keras layer names may not hold '/' (as supernet.keras_name)."""
    return path.replace("/", "__")


@dataclasses.dataclass(frozen=True)
class Backend:
    """What the graph is built with.

    `keras`: the module (keras or tf_keras) whose `layers`, `Input` and `Model` are used.
    `channel_slice(start, stop, name)`: a layer computing x[..., start:stop].
    `activation(name)`: what to give `layers.Activation` for a spec activation name (tf_keras
    lacks hard_swish and defines hard_sigmoid differently from Keras 3).
    `batch_norm`: per Keras layer name, {"epsilon": .., "momentum": ..} overriding the
    defaults (read from the trained model).
    """

    keras: object
    channel_slice: Callable[[int, int, str], object]
    activation: Callable[[str], object] = lambda name: name
    batch_norm: Mapping[str, dict] = dataclasses.field(default_factory=dict)


def _conv_path(b: Backend, r: ResolvedLayer, x, name: str):
    layers = b.keras.layers
    spec, m, c = r.spec, r.width, r.in_channels
    if spec.kind == "depthwise":
        if m < c:
            x = b.channel_slice(0, m, f"{name}__inputs")(x)
        layer = layers.DepthwiseConv2D(
            r.kernel_size,
            spec.strides,
            padding="same",
            use_bias=spec.use_bias,
            name=f"{name}__conv",
        )
    elif spec.kind == "fc":
        x = layers.Flatten(name=f"{name}__flatten")(x)
        if spec.dropout:
            x = layers.Dropout(spec.dropout, name=f"{name}__dropout")(x)
        layer = layers.Dense(m, use_bias=spec.use_bias, name=f"{name}__dense")
    else:
        layer = layers.Conv2D(
            m,
            spec.kernel_size,
            spec.strides,
            padding="same",
            use_bias=spec.use_bias,
            name=f"{name}__conv",
        )
    y = layer(x)
    if spec.batch_norm:
        settings = {**DEFAULT_BATCH_NORM, **b.batch_norm.get(f"{name}__bn", {})}
        y = layers.BatchNormalization(**settings, name=f"{name}__bn")(y)
    return layers.Activation(b.activation(spec.activation), name=f"{name}__act")(y)


def _squeeze_excite(b: Backend, r: ResolvedLayer, x, name: str):
    layers = b.keras.layers
    g = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}__pool")(x)
    squeeze = layers.Conv2D(
        r.width, 1, activation=b.activation(r.spec.activation), name=f"{name}__squeeze"
    )
    g = layers.Conv2D(r.in_channels, 1, name=f"{name}__excite")(squeeze(g))
    g = layers.Activation(b.activation(SE_GATE), name=f"{name}__gate")(g)
    return layers.Multiply(name=f"{name}__scale")([x, g])


def _layer(b: Backend, r: ResolvedLayer, x):
    name = layer_name(r.name)
    if r.spec.kind == "se":
        return x if r.width == 0 else _squeeze_excite(b, r, x, name)
    parts = []
    if r.width > 0:
        parts.append(_conv_path(b, r, x, name))
    if r.bypassed > 0:
        source = x
        if r.spec.strides > 1:
            pool = b.keras.layers.AveragePooling2D(
                r.spec.strides, r.spec.strides, padding="same", name=f"{name}__bypass_pool"
            )
            source = pool(x)
        if r.width == 0 and r.bypassed == r.in_channels:
            parts.append(source)
        else:
            stop = r.width + r.bypassed
            parts.append(b.channel_slice(r.width, stop, f"{name}__bypass")(source))
    if len(parts) == 1:
        return parts[0]
    return b.keras.layers.Concatenate(name=f"{name}__concat")(parts)


def _residual_add(b: Backend, x, y, in_channels: int, out_channels: int, name: str):
    """x + y, zero-padding the narrower (as export._residual_add)."""
    layers = b.keras.layers
    if in_channels == out_channels:
        return layers.Add(name=f"{name}__add")([x, y])
    k = min(in_channels, out_channels)
    wide, wide_channels = (x, in_channels) if in_channels > out_channels else (y, out_channels)
    head = layers.Add(name=f"{name}__add")(
        [b.channel_slice(0, k, f"{name}__add_x")(x), b.channel_slice(0, k, f"{name}__add_y")(y)]
    )
    rest = b.channel_slice(k, wide_channels, f"{name}__add_rest")(wide)
    return layers.Concatenate(name=f"{name}__add_concat")([head, rest])


def build_network(sub: SubNetwork, backend: Backend, name: str | None = None):
    """The plain model of the resolved sub-network `sub`, with fresh weights."""
    spec = sub.spec
    shape = (spec.input_size, spec.input_size, spec.input_channels)
    image = backend.keras.Input(shape, name="image")
    x = image
    for node in sub.nodes:
        if isinstance(node, ResolvedPool):
            pool = backend.keras.layers.GlobalAveragePooling2D(keepdims=True, name=node.spec.name)
            x = pool(x)
        elif isinstance(node, ResolvedLayer):
            x = _layer(backend, node, x)
        elif not node.removed:
            y = x
            for r in node.layers:
                y = _layer(backend, r, y)
            if node.spec.residual:
                last = node.layers[-1].out_channels
                y = _residual_add(backend, x, y, node.in_channels, last, layer_name(node.name))
            x = y
    return backend.keras.Model(image, x, name=name or f"{spec.name}_subnet")
