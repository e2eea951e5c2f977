"""Keras layers of the super-network: ordered dropout, channel-level bypass, superkernel.

Every per-example choice (width, input width, kernel size) is an explicit input tensor of
shape [batch]; the layers hold no notion of an "active" sub-network, so one compiled graph
serves every sub-network and one batch can hold many. The arithmetic lives in channel_math.
`ChannelSlice` is the one non-standard layer of exported (plain) models.
"""

import keras
import tensorflow as tf

from netadapt_tf.space import channel_math

PACKAGE = "netadapt_tf"


def _broadcast(mask, x):
    """[batch, C] mask -> shape broadcastable against x ([batch, ..., C])."""
    extra = len(x.shape) - 2
    return tf.reshape(mask, [-1] + [1] * extra + [mask.shape[-1]])


@keras.saving.register_keras_serializable(package=PACKAGE)
class OrderedDropout(keras.layers.Layer):
    """Zeros the last channels: example b keeps its first width[b] channels (paper Sec. 2.3)."""

    def call(self, x, width):
        mask = channel_math.ordered_mask(tf.cast(width, tf.int32), x.shape[-1], x.dtype)
        return x * _broadcast(mask, x)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ChannelBypass(keras.layers.Layer):
    """Merges a layer's output with its bypassed input channels (paper Sec. 2.2, Fig. 5).

    Output channel i is the layer's channel i when i < M (ordered dropout on the conv path),
    else input channel i when i < min(C, T) (the complementary ordered dropout on the
    bypass path), else 0; so the sub-network has Z = max(min(C, T), M) channels.
    A layer of stride s bypasses its input through an s x s average pool ('same' padding),
    so that the bypassed channels match the output resolution.
    """

    def __init__(self, bypass_limit, strides=1, **kwargs):
        super().__init__(**kwargs)
        if bypass_limit == "inf":
            bypass_limit = float("inf")
        self.bypass_limit = float(bypass_limit)
        self.strides = int(strides)
        self.pool = None
        if self.strides > 1:
            self.pool = keras.layers.AveragePooling2D(self.strides, self.strides, padding="same")

    def call(self, conv_out, x, width, in_width):
        size = conv_out.shape[-1]
        width = tf.cast(width, tf.int32)
        in_width = tf.cast(in_width, tf.int32)
        limit = channel_math.bypass_limit_channels(in_width, self.bypass_limit)
        if self.pool is not None:
            x = self.pool(x)
        static = min(int(x.shape[-1]), size, int(min(x.shape[-1], self.bypass_limit)))
        if static < int(x.shape[-1]):  # a no-op slice would still cost a slice and its gradient
            x = x[..., :static]
        bypass = channel_math.pad_channels(x, size)
        keep = channel_math.ordered_mask(width, size, conv_out.dtype)
        passed = channel_math.bypass_mask(width, limit, size, conv_out.dtype)
        return conv_out * _broadcast(keep, conv_out) + bypass * _broadcast(passed, conv_out)

    def get_config(self):
        limit = "inf" if self.bypass_limit == float("inf") else self.bypass_limit
        return {**super().get_config(), "bypass_limit": limit, "strides": self.strides}


@keras.saving.register_keras_serializable(package=PACKAGE)
class MatmulConv2D(keras.layers.Conv2D):
    """keras.layers.Conv2D whose training pass, for a 1x1 kernel of stride 1, is a matmul.

    TensorFlow's CPU gradient of a convolution with respect to its input
    (Conv2DBackpropInput) has a cost that grows with in x out channels whatever the
    image size: on the head's 1x1 convolution after the global pool (240 -> 1280 channels,
    64 images) it takes 24 ms where the same product as a matmul takes 4 ms, and in the
    demo's network that gradient was 43% of a training step's op time (docs/benchmarks.md,
    "Where a training step goes"). A matmul over the pixels computes the same sums. Inference
    (judging, export, TFLite conversion) keeps the convolution, so shipped graphs are
    unchanged; the weights are Conv2D's, so checkpoints and exports read them as before.
    """

    def build(self, input_shape):
        super().build(input_shape)
        self.as_matmul = (
            tuple(self.kernel_size) == (1, 1)
            and tuple(self.strides) == (1, 1)
            and tuple(self.dilation_rate) == (1, 1)
            and self.groups == 1
            and self.data_format == "channels_last"
        )

    def call(self, inputs, training=None):
        if not (training and self.as_matmul):
            return super().call(inputs)
        channels = int(self.kernel.shape[2])
        flat = tf.matmul(
            tf.reshape(inputs, [-1, channels]), tf.reshape(self.kernel, [channels, self.filters])
        )
        if self.use_bias:
            flat = tf.nn.bias_add(flat, self.bias)
        y = tf.reshape(flat, tf.concat([tf.shape(inputs)[:-1], [self.filters]], 0))
        y.set_shape(inputs.shape[:-1].concatenate([self.filters]))
        return y if self.activation is None else self.activation(y)


@keras.saving.register_keras_serializable(package=PACKAGE)
class SuperkernelDepthwiseConv2D(keras.layers.Layer):
    """A depthwise convolution whose kernel size is chosen per example.

    One full kernel_size x kernel_size kernel is stored; size k uses its centred k x k
    window (the superkernel). With 'same' padding the centred window sees exactly the
    pixels a plain k x k depthwise convolution sees, so the exporter cuts the kernel.
    """

    def __init__(self, kernel_size, kernel_sizes=None, strides=1, use_bias=False, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = int(kernel_size)
        self.kernel_sizes = tuple(kernel_sizes or (self.kernel_size,))
        for k in self.kernel_sizes:
            channel_math.superkernel_offset(self.kernel_size, k)
        self.strides = int(strides)
        self.use_bias = bool(use_bias)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.kernel_size, self.kernel_size, channels, 1),
            initializer="he_normal",
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(channels,), initializer="zeros")

    def _conv(self, x, k):
        kernel = channel_math.superkernel_crop(self.kernel, k)
        y = tf.nn.depthwise_conv2d(
            x, kernel, strides=[1, self.strides, self.strides, 1], padding="SAME"
        )
        return y if self.bias is None else y + self.bias

    def _conv_part(self, part, k):
        """_conv on one kernel size's examples; an empty part runs no convolution.

        TensorFlow's convolutions are not to be trusted on an empty batch: with oneDNN (the
        default on x86 CPUs with AVX-512) a strided convolution of [0, H, W, C] returns
        [0, H, W, C] rather than [0, ceil(H/s), ceil(W/s), C]. An empty part is instead an
        explicit zero-size tensor of the strided shape, which also costs nothing.
        """

        def empty():
            shape = tf.shape(part)
            height = (shape[1] + self.strides - 1) // self.strides
            width = (shape[2] + self.strides - 1) // self.strides
            return tf.zeros(tf.stack([0, height, width, shape[3]]), part.dtype)

        return tf.cond(tf.shape(part)[0] > 0, lambda: self._conv(part, k), empty)

    def call(self, x, kernel_size=None):
        if len(self.kernel_sizes) == 1 or kernel_size is None:
            return self._conv(x, self.kernel_size)
        # Each example is convolved once, with its own size: the batch is split by kernel
        # size and stitched back, which costs less than every size on every example.
        kernel_size = tf.cast(kernel_size, tf.int32)
        index = tf.zeros_like(kernel_size)
        for i, k in enumerate(self.kernel_sizes):
            index += i * tf.cast(tf.equal(kernel_size, k), tf.int32)
        positions = tf.dynamic_partition(tf.range(tf.shape(x)[0]), index, len(self.kernel_sizes))
        parts = tf.dynamic_partition(x, index, len(self.kernel_sizes))
        outs = [self._conv_part(part, k) for part, k in zip(parts, self.kernel_sizes, strict=True)]
        return tf.dynamic_stitch(positions, outs)

    def get_config(self):
        return {
            **super().get_config(),
            "kernel_size": self.kernel_size,
            "kernel_sizes": list(self.kernel_sizes),
            "strides": self.strides,
            "use_bias": self.use_bias,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class SqueezeExcite(keras.layers.Layer):
    """Squeeze-and-excitation gate with an ordered-dropout squeeze width per example.

    width 0 switches the gate off (the sub-network has no SE), so the output is the input.
    """

    def __init__(self, filters, channels, activation="relu", gate="hard_sigmoid", **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.channels = int(channels)
        self.activation = activation
        self.gate = gate
        self.pool = keras.layers.GlobalAveragePooling2D(keepdims=True)
        self.squeeze = MatmulConv2D(self.filters, 1, activation=activation, name="squeeze")
        self.drop = OrderedDropout()
        self.gate_fn = keras.activations.get(gate)
        self.excite = MatmulConv2D(self.channels, 1, name="excite")

    def build(self, input_shape):
        self.squeeze.build((None, 1, 1, self.channels))
        self.excite.build((None, 1, 1, self.filters))

    def call(self, x, width=None, training=None):
        s = self.squeeze(self.pool(x), training=training)
        if width is not None:
            s = self.drop(s, width)
        g = self.gate_fn(self.excite(s, training=training))
        if width is not None:
            on = tf.cast(tf.cast(width, tf.int32) > 0, x.dtype)[:, None, None, None]
            g = on * g + (1.0 - on)
        return x * g

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "channels": self.channels,
            "activation": self.activation,
            "gate": self.gate,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedBatchNormalization(keras.layers.Layer):
    """Batch normalization whose training statistics of channel i come only from the examples
    whose sub-network has channel i (i < width[b]).

    Plain BN would average the zeros of the examples that dropped a channel into its
    statistics, so a channel's scale would depend on how many images of the batch happen to
    keep it. Statistics are summed across replicas (synchronized BN), so every replica and
    worker keeps the same moving averages. In inference it is ordinary BN, which is what the
    exporter writes.
    """

    def __init__(self, momentum=0.99, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        shape = (int(input_shape[-1]),)
        self.gamma = self.add_weight(name="gamma", shape=shape, initializer="ones")
        self.beta = self.add_weight(name="beta", shape=shape, initializer="zeros")
        stat = {"trainable": False, "aggregation": "only_first_replica"}
        self.moving_mean = self.add_weight(
            name="moving_mean", shape=shape, initializer="zeros", **stat
        )
        self.moving_variance = self.add_weight(
            name="moving_variance", shape=shape, initializer="ones", **stat
        )

    def _batch_moments(self, x, width):
        channels = x.shape[-1]
        if width is None:
            weight = tf.ones_like(x)
        else:
            mask = channel_math.ordered_mask(tf.cast(width, tf.int32), channels, x.dtype)
            weight = tf.broadcast_to(_broadcast(mask, x), tf.shape(x))
        axes = list(range(len(x.shape) - 1))
        sums = [
            tf.reduce_sum(weight * x, axes),
            tf.reduce_sum(weight * tf.square(x), axes),
            tf.reduce_sum(weight, axes),
        ]
        ctx = tf.distribute.get_replica_context()
        if ctx is not None and ctx.num_replicas_in_sync > 1:
            sums = ctx.all_reduce(tf.distribute.ReduceOp.SUM, sums)
        total, squares, count = sums
        seen = count > 0
        count = tf.maximum(count, 1.0)
        mean = total / count
        variance = tf.maximum(squares / count - tf.square(mean), 0.0)
        return mean, variance, seen

    def call(self, x, width=None, training=None):
        if training:
            mean, variance, seen = self._batch_moments(x, width)
            keep = self.momentum
            new_mean = self.moving_mean * keep + mean * (1 - keep)
            new_var = self.moving_variance * keep + variance * (1 - keep)
            self.moving_mean.assign(tf.where(seen, new_mean, self.moving_mean))
            self.moving_variance.assign(tf.where(seen, new_var, self.moving_variance))
        else:
            mean, variance = self.moving_mean, self.moving_variance
        inv = self.gamma * tf.math.rsqrt(variance + self.epsilon)
        return x * inv + (self.beta - mean * inv)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ChannelSlice(keras.layers.Layer):
    """x[..., start:stop]: how exported models pick bypassed channels."""

    def __init__(self, start, stop, **kwargs):
        super().__init__(**kwargs)
        self.start = int(start)
        self.stop = int(stop)

    def call(self, x):
        return x[..., self.start : self.stop]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.stop - self.start,)

    def get_config(self):
        return {**super().get_config(), "start": self.start, "stop": self.stop}
