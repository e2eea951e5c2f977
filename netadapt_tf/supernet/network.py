"""The super-network: one Keras model holding every sub-network of a NetworkSpec.

Its inputs are a dict: `image` [batch, H, W, C], and per example and per layer (in
`spec.layer_names()` order) `widths` and `kernel_sizes` [batch, num_layers] int32. Each
example runs the sub-network those rows describe: ordered dropout zeros the last channels
of every layer, the complementary masks bypass input channels, depthwise layers cut their
superkernel. Upsampling nodes repeat pixels (nearest neighbour x2) and skips add a named
layer's output (the tie gives both tensors the same zeroed channels). `arch_inputs` turns
Arch records into those rows.
"""

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from netadapt_tf.space import channel_math
from netadapt_tf.space.arch import Arch, full_arch, validate_arch
from netadapt_tf.space.keras_names import layer_name
from netadapt_tf.space.spec import (
    BlockSpec,
    LayerSpec,
    NetworkSpec,
    PoolSpec,
    SkipSpec,
    UpsampleSpec,
)
from netadapt_tf.supernet.layers import (
    PACKAGE,
    ChannelBypass,
    MaskedBatchNormalization,
    MatmulConv2D,
    OrderedDropout,
    SqueezeExcite,
    SuperkernelDepthwiseConv2D,
)


def full_out_channels(layer: LayerSpec, in_channels: int) -> int:
    """Channels of the layer's output tensor in the super-network (its widest case)."""
    if layer.kind in ("depthwise", "se"):
        return in_channels
    return channel_math.bypass_output_width(in_channels, layer.bypass_limit, layer.filters)


@keras.saving.register_keras_serializable(package=PACKAGE)
class SuperLayer(keras.layers.Layer):
    """One LayerSpec in the super-network: conv -> BN -> activation -> ordered dropout and
    channel bypass. call(x, in_width, width, kernel_size) returns (y, out_width)."""

    def __init__(self, layer, in_channels, **kwargs):
        super().__init__(**kwargs)
        self.layer = layer if isinstance(layer, LayerSpec) else LayerSpec.from_json(layer)
        spec = self.layer
        self.in_channels = int(in_channels)
        self.out_channels = full_out_channels(spec, self.in_channels)
        self.conv = self.bn = self.act = self.merge = self.dropout = None
        if spec.kind == "se":
            self.conv = SqueezeExcite(spec.filters, self.in_channels, spec.activation, name="se")
            return
        if spec.kind == "fc":
            self.flatten = keras.layers.Flatten()
            self.dropout = keras.layers.Dropout(spec.dropout) if spec.dropout else None
            self.conv = keras.layers.Dense(spec.filters, use_bias=spec.use_bias, name="dense")
        elif spec.kind == "depthwise":
            self.conv = SuperkernelDepthwiseConv2D(
                spec.kernel_size,
                spec.kernel_sizes,
                spec.strides,
                use_bias=spec.use_bias,
                name="depthwise",
            )
        else:
            self.conv = MatmulConv2D(
                spec.filters,
                spec.kernel_size,
                spec.strides,
                padding="same",
                use_bias=spec.use_bias,
                name="conv",
            )
        if spec.batch_norm:
            self.bn = MaskedBatchNormalization(name="bn")
        self.act = keras.layers.Activation(spec.activation, name="act")
        if spec.bypass_limit > 0:
            self.merge = ChannelBypass(spec.bypass_limit, spec.strides, name="bypass")
        else:
            self.merge = OrderedDropout(name="ordered_dropout")

    def build(self, input_shape):
        """Creates the weights from the channel counts the spec fixes. Without a build,
        Keras traces the layer symbolically to find them: 4x the time of building a
        super-network (an fc layer follows the global pool, so its input is 1x1)."""
        spec = self.layer
        shape = (None, None, None, self.in_channels)
        if spec.kind == "fc":
            self.conv.build((None, self.in_channels))
        else:
            self.conv.build(shape)
        if self.bn is not None:
            out = self.in_channels if spec.kind == "depthwise" else spec.filters
            self.bn.build((None, None, None, out))

    def call(self, x, in_width, width, kernel_size=None, training=None):
        spec = self.layer
        if spec.kind == "se":
            return self.conv(x, width, training=training), in_width
        if spec.kind == "fc":
            x = self.flatten(x)
            if self.dropout is not None:
                x = self.dropout(x, training=training)
        if spec.kind == "depthwise":
            y = self.conv(x, kernel_size)
            width = channel_math.depthwise_width(width, in_width)
        elif spec.kind == "fc":
            y = self.conv(x)
        else:
            y = self.conv(x, training=training)
        if self.bn is not None:
            y = self.bn(y, width, training=training)
        y = self.act(y)
        if isinstance(self.merge, ChannelBypass):
            y = channel_math.pad_channels(y, self.out_channels)
            out_width = channel_math.bypass_output_width(in_width, spec.bypass_limit, width)
            return self.merge(y, x, width, in_width), out_width
        return self.merge(y, width), width

    def get_config(self):
        return {
            **super().get_config(),
            "layer": self.layer.to_json(),
            "in_channels": self.in_channels,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class SuperNetwork(keras.Model):
    """The super-network of `spec` (a NetworkSpec or its JSON)."""

    def __init__(self, spec, **kwargs):
        kwargs.setdefault("name", "supernet")
        super().__init__(**kwargs)
        self.spec = spec if isinstance(spec, NetworkSpec) else NetworkSpec.from_json(spec)
        self.layer_names = self.spec.layer_names()
        self.column = {name: i for i, name in enumerate(self.layer_names)}
        self.super_layers = {}
        channels = self.spec.input_channels
        self.pool = None
        self.upsamples = {}
        for node in self.spec.nodes:
            if isinstance(node, PoolSpec):
                self.pool = keras.layers.GlobalAveragePooling2D(keepdims=True, name=node.name)
                continue
            if isinstance(node, UpsampleSpec):
                self.upsamples[node.name] = keras.layers.UpSampling2D(
                    2, interpolation="nearest", name=layer_name(node.name)
                )
                continue
            if isinstance(node, SkipSpec):
                continue
            block_in = channels
            layers = node.layers if isinstance(node, BlockSpec) else (node,)
            for layer in layers:
                module = SuperLayer(layer, channels, name=layer_name(layer.name))
                self.super_layers[layer.name] = module
                channels = module.out_channels
            if isinstance(node, BlockSpec) and node.residual:
                channels = max(channels, block_in)

    def build(self, input_shape):
        """Builds every layer from the spec (no symbolic trace of the whole network)."""
        for module in self.super_layers.values():
            if not module.built:
                module.build(None)

    def _run_layer(self, layer, x, in_width, widths, kernel_sizes, training):
        j = self.column[layer.name]
        return self.super_layers[layer.name](
            x, in_width, widths[:, j], kernel_sizes[:, j], training=training
        )

    def call(self, inputs, training=None):
        x = inputs["image"]
        widths = tf.cast(inputs["widths"], tf.int32)
        kernel_sizes = tf.cast(inputs["kernel_sizes"], tf.int32)
        width = tf.fill(tf.shape(x)[:1], self.spec.input_channels)
        skip_sources = {skip.source for skip in self.spec.skips()}
        kept = {}  # outputs of skip sources, by layer name
        for node in self.spec.nodes:
            if isinstance(node, PoolSpec):
                x = self.pool(x)
            elif isinstance(node, UpsampleSpec):
                x = self.upsamples[node.name](x)
            elif isinstance(node, SkipSpec):
                # Same full width by validation; the tie zeros the same channels in both.
                source, source_width = kept[node.source]
                x = x + source
                width = channel_math.residual_output_width(width, source_width)
            elif isinstance(node, LayerSpec):
                x, width = self._run_layer(node, x, width, widths, kernel_sizes, training)
                if node.name in skip_sources:
                    kept[node.name] = (x, width)
            else:
                y, w = x, width
                for layer in node.layers:
                    y, w = self._run_layer(layer, y, w, widths, kernel_sizes, training)
                if node.residual:
                    y = x + y  # same full width by validation; narrower parts are zeros
                    w = channel_math.residual_output_width(width, w)
                x, width = y, w
        return x

    def build_weights(self) -> None:
        """Creates every weight by running the full network once on a dummy batch."""
        size, channels = self.spec.input_size, self.spec.input_channels
        inputs = arch_inputs(self.spec, [full_arch(self.spec)])
        inputs["image"] = np.zeros((1, size, size, channels), np.float32)
        self(inputs, training=False)

    def get_config(self):
        return {"spec": self.spec.to_json(), "name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def arch_inputs(spec: NetworkSpec, archs: Sequence[Arch]) -> dict[str, np.ndarray]:
    """The `widths` and `kernel_sizes` rows [len(archs), num_layers] for the super-network."""
    widths, kernels = [], []
    for arch in archs:
        validate_arch(spec, arch)
        widths.append([c.width for c in arch.choices])
        kernels.append([c.kernel_size for c in arch.choices])
    return {
        "widths": np.asarray(widths, np.int32).reshape(len(archs), -1),
        "kernel_sizes": np.asarray(kernels, np.int32).reshape(len(archs), -1),
    }


def batch_norm_layers(supernet: SuperNetwork) -> list[keras.layers.BatchNormalization]:
    """The super-network's batch normalizations, one per layer that has one (the judge
    recalibrates them, the trainer sets their momentum)."""
    return [m.bn for m in supernet.super_layers.values() if m.bn is not None]


def build_supernet(spec: NetworkSpec) -> SuperNetwork:
    """A SuperNetwork with all its weights created."""
    model = SuperNetwork(spec)
    model.build_weights()
    return model
