"""The graph of a sub-network: its rules written once, for every way it is computed.

A sub-network follows the rules of its NetworkSpec and arch (sizes from subnet.resolve): a
layer keeps its first M filters (convolution -> batch norm -> activation) and passes input
channels [M, M + bypassed) through after them (average-pooled when the layer is strided); a
layer keeping no filter is a pure bypass; a squeeze-and-excitation layer of width 0 is the
identity; a residual block whose projection keeps no filter is the identity, otherwise its
add zero-pads the narrower tensor; an upsampling node repeats each pixel 2x2 (nearest
neighbour); a skip adds the kept output of its source layer (equal widths by the tie).
`build_graph` walks the spec with those rules and leaves each step to an `ops` object:

* `KerasOps` builds Keras layers, of Keras 3 or tf_keras (a `Flavour`), named as exported
  models are named, with weights from a weight source: copied from the super-network
  (supernet.slices.SupernetWeights: export.export_subnetwork) or fresh (`FreshWeights`: a
  network to train, or the quantization-aware-training process, which then loads trained
  weights by layer name). `build_network` makes the Keras model.
* sliced_forward's ops compute with TensorFlow directly on the super-network's variables,
  sliced on the fly to sizes that are tensors, so that one trace serves every arch. There a
  layer's sizes are tensors, so `if_computes` is a tf.cond (only where the spec allows width
  0), and the bypass is a slice that may be empty rather than a branch.

The steps an ops object provides (`r` has `spec`, `in_channels`, `width`, `bypassed` and
`kernel_size`, as subnet.ResolvedLayer; sizes are ints or scalar tensors):
  conv_path(r, x)          the first M filters: conv (or dense) -> BN -> activation
  bypass(r, x)             input channels [M, M + bypassed), pooled if strided (None: none)
  concat(r, parts)         the parts side by side on the channel axis (None parts left out)
  squeeze_excite(r, x)     x scaled by its SE gate of r.width squeeze channels
  add(name, x, y)          x + y, zero-padding the narrower
  global_pool(node, x)     global average pool, keeping the spatial axes (1 x 1)
  upsample(node, x)        nearest-neighbour upsampling x2
  if_computes(r, then, otherwise, covers)   then() when r keeps filters, else otherwise();
                           `covers`: the LayerSpecs the two branches compute

A new kind of node is one rule in `NODE_RULES` made of these steps, plus the steps it needs
that no rule used before. Rules get `kept`, the outputs the walk keeps by node name for the
skips that read them: node outputs, not layers inside a block, since a block may be a
tf.cond branch whose insides do not exist outside it. Nothing here imports a Keras: the
caller passes the one it uses, so this module is safe in the quantization-aware-training
process, which must not import Keras 3.
"""

import dataclasses
from collections.abc import Callable, Mapping

import numpy as np

from netadapt_tf.space.keras_names import layer_name
from netadapt_tf.space.spec import (
    BlockSpec,
    LayerSpec,
    NetworkSpec,
    PoolSpec,
    SkipSpec,
    UpsampleSpec,
)
from netadapt_tf.space.subnet import SubNetwork

# Keras's BatchNormalization defaults, which the super-network's layers use as well.
DEFAULT_BATCH_NORM = {"epsilon": 1e-3, "momentum": 0.99}
# The squeeze-and-excitation gate's activation (layers.SqueezeExcite's default).
SE_GATE = "hard_sigmoid"


# The rules ---------------------------------------------------------------------------------


def layer_rule(ops, node: LayerSpec, sizes: Mapping, x, kept: Mapping | None = None):
    r = sizes[node.name]
    if node.kind == "se":
        return ops.if_computes(r, lambda: ops.squeeze_excite(r, x), lambda: x)

    def compute():
        y = ops.conv_path(r, x)
        if node.bypass_limit == 0:
            return y
        return ops.concat(r, [y, ops.bypass(r, x)])

    # A layer keeping no filter runs no convolution: it is its bypass alone.
    return ops.if_computes(r, compute, lambda: ops.bypass(r, x))


def block_rule(ops, node: BlockSpec, sizes: Mapping, x, kept: Mapping):
    def run():
        y = x
        for layer in node.layers:
            y = layer_rule(ops, layer, sizes, y)
        return ops.add(node.name, x, y) if node.residual else y

    if not node.residual:
        return run()
    # The residual connection is the projection's bypass: a projection keeping no filter
    # turns the block into the identity (how the paper removes a block).
    return ops.if_computes(sizes[node.projection.name], run, lambda: x, covers=node.layers)


def pool_rule(ops, node: PoolSpec, sizes: Mapping, x, kept: Mapping):
    return ops.global_pool(node, x)


def upsample_rule(ops, node: UpsampleSpec, sizes: Mapping, x, kept: Mapping):
    return ops.upsample(node, x)


def skip_rule(ops, node: SkipSpec, sizes: Mapping, x, kept: Mapping):
    return ops.add(node.name, x, kept[node.source])


NODE_RULES = {
    LayerSpec: layer_rule,
    BlockSpec: block_rule,
    PoolSpec: pool_rule,
    UpsampleSpec: upsample_rule,
    SkipSpec: skip_rule,
}


def build_graph(spec: NetworkSpec, sizes: Mapping, ops, x):
    """x through the sub-network whose layer sizes are `sizes` (spec layer name -> record,
    layers of removed blocks included), each step computed by `ops`."""
    sources = {skip.source for skip in spec.skips()}
    kept = {}
    for node in spec.nodes:
        x = NODE_RULES[type(node)](ops, node, sizes, x, kept)
        if node.name in sources:
            kept[node.name] = x
    return x


# Keras layers ------------------------------------------------------------------------------


def _same_name(name: str) -> str:
    return name


@dataclasses.dataclass(frozen=True)
class Flavour:
    """Which Keras the graph is built with.

    `keras`: the module (keras or tf_keras) whose `layers`, `Input` and `Model` are used.
    `channel_slice(start, stop, name)`: a layer computing x[..., start:stop].
    `activation(name)`: what `layers.Activation` gets for a spec activation name (tf_keras
    lacks hard_swish and defines hard_sigmoid differently from Keras 3).
    `conv2d`: the convolution layer class (its arguments are keras.layers.Conv2D's); None
    for `keras.layers.Conv2D`.
    """

    keras: object
    channel_slice: Callable[[int, int, str], object]
    activation: Callable[[str], object] = _same_name
    conv2d: Callable[..., object] | None = None

    @property
    def conv_class(self):
        return self.conv2d or self.keras.layers.Conv2D


class FreshWeights:
    """Keras's initial values for every layer; batch norms with the super-network's
    defaults, or per Keras layer name the {"epsilon", "momentum"} given in `batch_norm`
    (read from a trained model)."""

    def __init__(self, batch_norm: Mapping[str, dict] | None = None):
        self.batch_norm = dict(batch_norm or {})

    def weights(self, r, part: str):
        return None

    def batch_norm_settings(self, r) -> dict:
        return {**DEFAULT_BATCH_NORM, **self.batch_norm.get(f"{layer_name(r.name)}__bn", {})}


class KerasOps:
    """The steps as Keras layers of `flavour`, weights from `source` (an object with
    `weights(r, part)`, a list of arrays or None for fresh ones, and
    `batch_norm_settings(r)`). Layer r's Keras layers are named f"{layer_name(r.name)}__..."
    and made in the order the exported models have always had (their weights load by name).
    """

    def __init__(self, flavour: Flavour, source):
        self.flavour = flavour
        self.source = source
        self.layers = flavour.keras.layers

    def _weighted(self, layer, x, r, part: str):
        y = layer(x)  # builds the layer, so that its weights exist
        values = self.source.weights(r, part)
        if values is not None:
            layer.set_weights([np.asarray(v) for v in values])
        return y

    def conv_path(self, r, x):
        layers, spec, m, c = self.layers, r.spec, r.width, r.in_channels
        name = layer_name(r.name)
        if spec.kind == "depthwise":
            if m < c:
                x = self.flavour.channel_slice(0, m, f"{name}__inputs")(x)
            conv = layers.DepthwiseConv2D(
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
            conv = layers.Dense(m, use_bias=spec.use_bias, name=f"{name}__dense")
        else:
            conv = self.flavour.conv_class(
                m,
                spec.kernel_size,
                spec.strides,
                padding="same",
                use_bias=spec.use_bias,
                name=f"{name}__conv",
            )
        y = self._weighted(conv, x, r, "dense" if spec.kind == "fc" else "conv")
        if spec.batch_norm:
            settings = self.source.batch_norm_settings(r)
            bn = layers.BatchNormalization(**settings, name=f"{name}__bn")
            y = self._weighted(bn, y, r, "bn")
        return layers.Activation(self.flavour.activation(spec.activation), name=f"{name}__act")(y)

    def bypass(self, r, x):
        if r.bypassed == 0:
            return None
        name, strides = layer_name(r.name), r.spec.strides
        if strides > 1:
            pool = self.layers.AveragePooling2D(
                strides, strides, padding="same", name=f"{name}__bypass_pool"
            )
            x = pool(x)
        if r.width == 0 and r.bypassed == r.in_channels:
            return x
        return self.flavour.channel_slice(r.width, r.width + r.bypassed, f"{name}__bypass")(x)

    def concat(self, r, parts):
        parts = [p for p in parts if p is not None]
        if len(parts) == 1:
            return parts[0]
        return self.layers.Concatenate(name=f"{layer_name(r.name)}__concat")(parts)

    def squeeze_excite(self, r, x):
        layers, name, activation = self.layers, layer_name(r.name), self.flavour.activation
        g = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}__pool")(x)
        squeeze = self.flavour.conv_class(
            r.width, 1, activation=activation(r.spec.activation), name=f"{name}__squeeze"
        )
        g = self._weighted(squeeze, g, r, "squeeze")
        excite = self.flavour.conv_class(r.in_channels, 1, name=f"{name}__excite")
        g = self._weighted(excite, g, r, "excite")
        g = layers.Activation(activation(SE_GATE), name=f"{name}__gate")(g)
        return layers.Multiply(name=f"{name}__scale")([x, g])

    def add(self, name: str, x, y):
        layers, slice_, name = self.layers, self.flavour.channel_slice, layer_name(name)
        a, b = int(x.shape[-1]), int(y.shape[-1])
        if a == b:
            return layers.Add(name=f"{name}__add")([x, y])
        k = min(a, b)
        wide, wide_channels = (x, a) if a > b else (y, b)
        head = layers.Add(name=f"{name}__add")(
            [slice_(0, k, f"{name}__add_x")(x), slice_(0, k, f"{name}__add_y")(y)]
        )
        rest = slice_(k, wide_channels, f"{name}__add_rest")(wide)
        return layers.Concatenate(name=f"{name}__add_concat")([head, rest])

    def global_pool(self, node, x):
        return self.layers.GlobalAveragePooling2D(keepdims=True, name=node.name)(x)

    def upsample(self, node, x):
        name = layer_name(node.name)
        return self.layers.UpSampling2D(2, interpolation="nearest", name=name)(x)

    def if_computes(self, r, then, otherwise, covers=()):
        return then() if r.width > 0 else otherwise()


def build_network(sub: SubNetwork, flavour: Flavour, source=None, name: str | None = None):
    """The plain Keras model (of `flavour`) of the resolved sub-network `sub`, weights from
    `source` (fresh when None)."""
    spec = sub.spec
    keras = flavour.keras
    image = keras.Input((spec.input_size, spec.input_size, spec.input_channels), name="image")
    sizes = {r.name: r for r in sub.layers(include_removed=True)}
    x = build_graph(spec, sizes, KerasOps(flavour, source or FreshWeights()), image)
    return keras.Model(image, x, name=name or f"{spec.name}_subnet")
