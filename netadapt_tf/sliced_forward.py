"""One sub-network's forward pass on the super-network's weights, sliced to its sizes.

The masked super-network computes every layer at full width and zeros what a sub-network
lacks; judging one arch on thousands of images that way costs a full-network forward per
image. `SlicedForward` instead cuts each kernel, bias and batch-norm vector to the
sub-network's sizes (`netadapt_tf.subnet.resolve`, the account the exporter builds from) and
convolves only what the sub-network has, so a forward costs about what the exported plain
model costs. The sizes are an int32 input tensor ([num_layers, 4]: input channels, kept
filters, bypassed channels, kernel size) and every channel dimension is unknown to the
graph, so one trace serves every arch: nothing is rebuilt or retraced per sample.

The rules mirror export.py: a layer keeps its first M filters and passes input channels
[M, M + bypassed) through (average-pooled for strided layers); a depthwise layer convolves
min(M, C) channels with the centred window of its superkernel; a layer keeping no filter
runs no convolution (a `tf.switch_case` picks the branch); an SE layer of width 0 is the
identity; a residual block whose projection keeps nothing is the identity, and otherwise its
add zero-pads the narrower tensor.

Batch norm reads the super-network's moving statistics, or statistics given as a [2, S]
tensor (means, variances; each BN layer has its full width's slot in S), or, for
recalibration, the batch's own statistics, which `batch_statistics` returns in that layout.
"""

import numpy as np
import tensorflow as tf

from netadapt_tf.arch import Arch
from netadapt_tf.spec import BlockSpec, LayerSpec, NetworkSpec, PoolSpec
from netadapt_tf.subnet import resolve
from netadapt_tf.supernet import SuperNetwork

IN, WIDTH, BYPASSED, KERNEL = range(4)

_MOVING, _GIVEN, _BATCH = "moving", "given", "batch"


def arch_sizes(spec: NetworkSpec, arch: Arch) -> np.ndarray:
    """[num_layers, 4] int32 rows (in_channels, width, bypassed, kernel_size) of `arch`, in
    `spec.layer_names()` order; layers of removed blocks are included (they are skipped)."""
    rows = [
        (r.in_channels, r.width, r.bypassed, r.kernel_size)
        for r in resolve(spec, arch).layers(include_removed=True)
    ]
    return np.asarray(rows, np.int32).reshape(len(rows), 4)


def _head(x, count):
    """The first `count` entries of the last axis of x (count: an int32 tensor of shape [1])."""
    rank = len(x.shape)
    if rank == 1:
        return tf.slice(x, [0], count)
    return tf.slice(x, [0] * rank, tf.concat([[-1] * (rank - 1), count], 0))


def _pad_last(x, size):
    """Zero-pads the last axis of x to `size` (a scalar tensor or int)."""
    extra = size - tf.shape(x)[-1]
    paddings = tf.concat([tf.zeros([len(x.shape) - 1, 2], tf.int32), [[0, extra]]], 0)
    return tf.pad(x, paddings)


class SlicedForward:
    """The forward pass of one arch at a time through `supernet`'s weights (inference).

    `logits(images, sizes)`, `logits_with_statistics(images, sizes, statistics)` and
    `batch_statistics(images, sizes)` are tf.functions traced once each; `forward` is the
    untraced graph builder, for callers that wrap it in their own tf.function.
    `traces` counts the times a graph was built.
    """

    def __init__(self, supernet: SuperNetwork):
        self.supernet = supernet
        self.spec = spec = supernet.spec
        self.row = {name: i for i, name in enumerate(spec.layer_names())}
        self.slots = {}  # BN layer name -> (offset, full width) in the statistics vector
        offset = 0
        for name, module in supernet.super_layers.items():
            if module.bn is not None:
                width = int(module.bn.gamma.shape[0])
                self.slots[name] = (offset, width)
                offset += width
        self.statistics_size = offset
        self.traces = 0
        size, channels = spec.input_size, spec.input_channels
        image = tf.TensorSpec([None, size, size, channels], tf.float32)
        sizes = tf.TensorSpec([len(self.row), 4], tf.int32)
        stats = tf.TensorSpec([2, offset], tf.float32)
        self.logits = tf.function(self.forward, input_signature=[image, sizes], autograph=False)
        self.logits_with_statistics = tf.function(
            self.forward, input_signature=[image, sizes, stats], autograph=False
        )
        self.batch_statistics = tf.function(
            lambda images, sizes: self.forward(images, sizes, batch_statistics=True)[1],
            input_signature=[image, sizes],
            autograph=False,
        )

    def sizes(self, arch: Arch) -> tf.Tensor:
        return tf.constant(arch_sizes(self.spec, arch))

    def recalibrated_statistics(self, batches, sizes, cumulative: bool = False) -> tf.Tensor:
        """[2, S] BN statistics of the arch `sizes` over `batches` of training images: the
        debiased moving average SubnetEvaluator.recalibrated forms (momentum m per BN layer,
        started at zero), i.e. batch i of n weighs (1 - m) m^(n-1-i) / (1 - m^n); with
        `cumulative`, every batch weighs 1/n."""
        momentum = np.zeros(self.statistics_size, np.float32)
        for name, (offset, width) in self.slots.items():
            momentum[offset : offset + width] = self.supernet.super_layers[name].bn.momentum
        n = len(batches)
        if n == 0:
            raise ValueError("recalibrated_statistics: no batches to estimate statistics on")
        total = np.zeros((2, self.statistics_size), np.float64)
        for i, images in enumerate(batches):
            weight = (
                1 / n
                if cumulative
                else (1 - momentum) * momentum ** (n - 1 - i) / (1 - momentum**n)
            )
            total += weight * np.asarray(self.batch_statistics(images, sizes), np.float64)
        return tf.constant(total.astype(np.float32))

    def forward(self, images, sizes, statistics=None, batch_statistics=False):
        """Logits of the arch `sizes` (see class doc); with batch_statistics, BN normalizes
        with each batch's statistics and (logits, [2, S] statistics) is returned."""
        self.traces += 1
        mode = _BATCH if batch_statistics else (_MOVING if statistics is None else _GIVEN)
        self._mode, self._statistics = mode, statistics
        self._rows = [tf.unstack(row) for row in tf.unstack(sizes)]
        # Convolutions of an empty batch return wrong shapes or garbage gradients on some
        # CPU paths of TensorFlow (oneDNN), and batch statistics of no image are NaN.
        check = tf.debugging.assert_positive(
            tf.shape(images)[0], message="SlicedForward: the batch of images is empty"
        )
        with tf.control_dependencies([check]):
            images = tf.identity(images)
        x, found = images, {}
        for node in self.spec.nodes:
            if isinstance(node, PoolSpec):
                x = tf.reduce_mean(x, [1, 2], keepdims=True)
            elif isinstance(node, LayerSpec):
                x, stats = self._layer(node, x)
                found.update(zip(self._bn_names([node]), stats, strict=True))
            else:
                x, stats = self._block(node, x)
                found.update(zip(self._bn_names(node.layers), stats, strict=True))
        if self.spec.num_classes is not None:
            x = tf.ensure_shape(x, [None, self.spec.num_classes])
        if mode != _BATCH:
            return x
        means = [found[name][0] for name in self.slots]
        variances = [found[name][1] for name in self.slots]
        return x, tf.stack([tf.concat(means, 0), tf.concat(variances, 0)])

    def _bn_names(self, layers):
        if self._mode != _BATCH:
            return []
        return [layer.name for layer in layers if layer.name in self.slots]

    def _no_statistics(self, layers):
        """Zero statistics of the BN layers in `layers` (for branches that skip them)."""
        names = self._bn_names(layers)
        return tuple((tf.zeros([self.slots[n][1]]), tf.zeros([self.slots[n][1]])) for n in names)

    def _block(self, block: BlockSpec, x):
        def run():
            y, stats = x, ()
            for layer in block.layers:
                y, s = self._layer(layer, y)
                stats += s
            if block.residual:
                width = tf.maximum(tf.shape(x)[-1], tf.shape(y)[-1])
                y = _pad_last(x, width) + _pad_last(y, width)
            return y, stats

        projection = block.layers[-1]
        if not (block.residual and 0 in projection.widths):
            return run()
        removed = tf.equal(self._rows[self.row[projection.name]][WIDTH], 0)
        return tf.cond(removed, lambda: (x, self._no_statistics(block.layers)), run)

    def _layer(self, layer: LayerSpec, x):
        """(output, BN statistics as a tuple of (mean, variance) when collecting them)."""
        c, m, p, k = self._rows[self.row[layer.name]]
        if layer.kind == "se":
            if 0 not in layer.widths:
                return self._squeeze_excite(layer, x, c, m), ()
            return tf.cond(m > 0, lambda: self._squeeze_excite(layer, x, c, m), lambda: x), ()

        def bypass():
            # Slicing before pooling is the exporter's pool-then-slice (pooling is per
            # channel); a zero-width slice pools and concatenates as an empty tensor (its
            # start must still lie within x: M may exceed C when nothing is bypassed).
            source = tf.slice(x, [0, 0, 0, tf.minimum(m, c)], [-1, -1, -1, p])
            if layer.strides > 1:
                s = layer.strides
                source = tf.nn.avg_pool2d(source, s, s, "SAME")
            return source

        def conv():
            y, stats = self._conv_path(layer, x, c, m, k)
            if layer.bypass_limit > 0:
                y = tf.concat([y, bypass()], -1)
            return y, stats

        if 0 not in layer.widths:
            return conv()
        # A layer keeping no filter is a pure bypass (or, for a residual projection, its
        # block is skipped before this): no zero-width convolution runs.
        return tf.cond(m > 0, conv, lambda: (bypass(), self._no_statistics([layer])))

    def _conv_path(self, layer, x, c, m, k):
        """Conv (first m filters) -> BN -> activation; returns (y, statistics tuple)."""
        module = self.supernet.super_layers[layer.name]
        conv, s, m1 = module.conv, layer.strides, tf.reshape(m, [1])
        if layer.kind == "depthwise":
            x = _head(x, m1)
            full = layer.kernel_size
            if len(layer.kernel_sizes) == 1:
                kernel = tf.slice(conv.kernel, [0, 0, 0, 0], [full, full, m, 1])
            else:
                start = (full - k) // 2
                kernel = tf.slice(conv.kernel, [start, start, 0, 0], [k, k, m, 1])
            y = tf.nn.depthwise_conv2d(x, kernel, [1, s, s, 1], "SAME")
        elif layer.kind == "fc":
            x = tf.reshape(x, [-1, c])
            y = tf.matmul(x, tf.slice(conv.kernel, [0, 0], [c, m]))
        else:
            kh, kw = conv.kernel.shape[:2]
            kernel = tf.slice(conv.kernel, [0, 0, 0, 0], tf.stack([kh, kw, c, m]))
            y = tf.nn.conv2d(x, kernel, s, "SAME")
        if layer.use_bias:
            y = y + _head(conv.bias, m1)
        stats = ()
        if module.bn is not None:
            y, stats = self._batch_norm(layer.name, module.bn, y, m1)
        return module.act.activation(y), stats

    def _batch_norm(self, name, bn, y, m):
        stats = ()
        if self._mode == _BATCH:
            axes = list(range(len(y.shape) - 1))
            mean = tf.reduce_mean(y, axes)
            variance = tf.maximum(tf.reduce_mean(tf.square(y), axes) - tf.square(mean), 0.0)
            full = self.slots[name][1]
            stats = ((_pad_last(mean, full), _pad_last(variance, full)),)
        elif self._mode == _GIVEN:
            offset = self.slots[name][0]
            mean = tf.slice(self._statistics[0], [offset], m)
            variance = tf.slice(self._statistics[1], [offset], m)
        else:
            mean, variance = _head(bn.moving_mean, m), _head(bn.moving_variance, m)
        inv = _head(bn.gamma, m) * tf.math.rsqrt(variance + bn.epsilon)
        return y * inv + (_head(bn.beta, m) - mean * inv), stats

    def _squeeze_excite(self, layer, x, c, width):
        se = self.supernet.super_layers[layer.name].conv
        g = tf.reduce_mean(x, [1, 2])
        squeeze = tf.reshape(tf.slice(se.squeeze.kernel, [0, 0, 0, 0], [1, 1, c, width]), [c, -1])
        g = se.squeeze.activation(tf.matmul(g, squeeze) + _head(se.squeeze.bias, width[None]))
        excite = tf.reshape(tf.slice(se.excite.kernel, [0, 0, 0, 0], [1, 1, width, c]), [-1, c])
        g = se.gate_fn(tf.matmul(g, excite) + _head(se.excite.bias, c[None]))
        return x * g[:, None, None, :]
