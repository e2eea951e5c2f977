"""One sub-network's forward pass on the super-network's weights, sliced to its sizes.

The masked super-network computes every layer at full width and zeros what a sub-network
lacks; judging one arch on thousands of images that way costs a full-network forward per
image. `SlicedForward` instead cuts each kernel, bias and batch-norm vector to the
sub-network's sizes (`netadapt_tf.space.subnet.resolve`, the account the exporter builds from) and
convolves only what the sub-network has, so a forward costs about what the exported plain
model costs. The sizes are an int32 input tensor ([num_layers, 4]: input channels, kept
filters, bypassed channels, kernel size) and every channel dimension is unknown to the
graph, so one trace serves every arch: nothing is rebuilt or retraced per sample.

The graph is the exporter's: subnet_graph.build_graph walks the spec with the same rules
(a layer keeps its first M filters and passes input channels [M, M + bypassed) through,
average-pooled for strided layers; a layer keeping no filter is its bypass; an SE layer of
width 0 and a residual block whose projection keeps nothing are the identity; a residual add
zero-pads the narrower tensor), and the weights are the exporter's slices
(supernet.slices.weight_slices), read here as tensors. Only the steps differ: they are
TensorFlow ops on tensor sizes rather than Keras layers, so a layer that may keep no filter
is a `tf.cond` (no zero-size convolution runs), and a bypass that may be empty is an empty
slice rather than a branch.

Batch norm reads the super-network's moving statistics, or statistics given as a [2, S]
tensor (means, variances; each BN layer has its full width's slot in S), or, for
recalibration, the batch's own statistics, which `batch_statistics` returns in that layout.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from netadapt_tf.graphs.subnet_graph import build_graph
from netadapt_tf.space.arch import Arch
from netadapt_tf.space.spec import LayerSpec, NetworkSpec
from netadapt_tf.space.subnet import resolve
from netadapt_tf.supernet.network import SuperNetwork
from netadapt_tf.supernet.slices import weight_slices

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
        weights = self.recalibration_weights(len(batches), cumulative)
        total = np.zeros((2, self.statistics_size), np.float64)
        for weight, images in zip(weights, batches, strict=True):
            total += weight * np.asarray(self.batch_statistics(images, sizes), np.float64)
        return tf.constant(total.astype(np.float32))

    def recalibration_weights(self, n: int, cumulative: bool) -> np.ndarray:
        """[n, S] float64: the weight of batch i's statistics in each BN slot (see
        recalibrated_statistics)."""
        if n == 0:
            raise ValueError("recalibrated_statistics: no batches to estimate statistics on")
        momentum = np.zeros(self.statistics_size, np.float32)
        for name, (offset, width) in self.slots.items():
            momentum[offset : offset + width] = self.supernet.super_layers[name].bn.momentum
        rows = [
            np.full(self.statistics_size, 1 / n)
            if cumulative
            else (1 - momentum) * momentum ** (n - 1 - i) / (1 - momentum**n)
            for i in range(n)
        ]
        return np.asarray(rows, np.float64)

    def forward(self, images, sizes, statistics=None, batch_statistics=False):
        """Logits of the arch `sizes` (see class doc); with batch_statistics, BN normalizes
        with each batch's statistics and (logits, [2, S] statistics) is returned."""
        self.traces += 1
        mode = _BATCH if batch_statistics else (_MOVING if statistics is None else _GIVEN)
        ops = _SlicedOps(self, mode, statistics)
        rows = tf.unstack(sizes)
        layers = {
            layer.name: SizedLayer(layer, *tf.unstack(rows[i]))
            for i, layer in enumerate(self.spec.layers())
        }
        # Convolutions of an empty batch return wrong shapes or garbage gradients on some
        # CPU paths of TensorFlow (oneDNN), and batch statistics of no image are NaN.
        check = tf.debugging.assert_positive(
            tf.shape(images)[0], message="SlicedForward: the batch of images is empty"
        )
        with tf.control_dependencies([check]):
            images = tf.identity(images)
        x = build_graph(self.spec, layers, ops, images)
        if self.spec.num_classes is not None:
            x = tf.ensure_shape(x, [None, self.spec.num_classes])
        elif self.spec.dense_channels is not None:
            size = self.spec.input_size
            x = tf.ensure_shape(x, [None, size, size, self.spec.dense_channels])
        if mode != _BATCH:
            return x
        means = [ops.found[name][0] for name in self.slots]
        variances = [ops.found[name][1] for name in self.slots]
        return x, tf.stack([tf.concat(means, 0), tf.concat(variances, 0)])


@dataclasses.dataclass(frozen=True)
class SizedLayer:
    """A layer's sizes inside the traced graph (one row of `sizes`): scalar int32 tensors
    with the meaning of subnet.ResolvedLayer's fields."""

    spec: LayerSpec
    in_channels: tf.Tensor
    width: tf.Tensor
    bypassed: tf.Tensor
    kernel_size: tf.Tensor

    @property
    def name(self) -> str:
        return self.spec.name


class _SlicedOps:
    """subnet_graph's steps in TensorFlow on the super-network's variables, sliced to the
    tensor sizes of one trace (see the module doc). In batch-statistics mode `found` collects
    each BN layer's (mean, variance), zero-padded to its full width."""

    def __init__(self, forward: SlicedForward, mode: str, statistics):
        self.supernet = forward.supernet
        self.slots = forward.slots
        self.mode = mode
        self.statistics = statistics
        self.found = {}

    def if_computes(self, r, then, otherwise, covers=()):
        if 0 not in r.spec.widths:
            return then()
        names = []
        if self.mode == _BATCH:
            names = [layer.name for layer in covers or (r.spec,) if layer.name in self.slots]
        if not names:
            return tf.cond(r.width > 0, then, otherwise)

        # Both branches return the statistics of every BN layer they cover (zeros for those
        # a branch skips), so that tf.cond sees one structure.
        def branch(fn):
            def run():
                outer, self.found = self.found, {}
                try:
                    y, found = fn(), self.found
                finally:
                    self.found = outer
                return y, tuple(found[n] if n in found else self._zeros(n) for n in names)

            return run

        y, stats = tf.cond(r.width > 0, branch(then), branch(otherwise))
        self.found.update(zip(names, stats, strict=True))
        return y

    def _zeros(self, name):
        full = self.slots[name][1]
        return tf.zeros([full]), tf.zeros([full])

    def global_pool(self, node, x):
        return tf.reduce_mean(x, [1, 2], keepdims=True)

    def upsample(self, node, x):
        return tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)  # Keras's nearest x2

    def bypass(self, r, x):
        # Slicing before pooling is the exporter's pool-then-slice (pooling is per channel);
        # a zero-width slice pools and concatenates as an empty tensor (its start must still
        # lie within x: M may exceed C when nothing is bypassed).
        c, m = r.in_channels, r.width
        source = tf.slice(x, [0, 0, 0, tf.minimum(m, c)], [-1, -1, -1, r.bypassed])
        if r.spec.strides > 1:
            s = r.spec.strides
            source = tf.nn.avg_pool2d(source, s, s, "SAME")
        return source

    def concat(self, r, parts):
        return tf.concat(parts, -1)

    def add(self, name, x, y):
        width = tf.maximum(tf.shape(x)[-1], tf.shape(y)[-1])
        return _pad_last(x, width) + _pad_last(y, width)

    def conv_path(self, r, x):
        """Conv (first m filters) -> BN -> activation."""
        layer, c, m = r.spec, r.in_channels, r.width
        module = self.supernet.super_layers[layer.name]
        part = "dense" if layer.kind == "fc" else "conv"
        kernel, *bias = weight_slices(self.supernet, r, part)
        kernel, s, m1 = kernel.tensor(), layer.strides, tf.reshape(m, [1])
        if layer.kind == "depthwise":
            y = tf.nn.depthwise_conv2d(_head(x, m1), kernel, [1, s, s, 1], "SAME")
        elif layer.kind == "fc":
            y = tf.matmul(tf.reshape(x, [-1, c]), kernel)
        else:
            y = tf.nn.conv2d(x, kernel, s, "SAME")
        if bias:
            y = y + bias[0].tensor()
        if module.bn is not None:
            y = self._batch_norm(r, module.bn, y, m1)
        return module.act.activation(y)

    def _batch_norm(self, r, bn, y, m):
        gamma, beta, moving_mean, moving_variance = weight_slices(self.supernet, r, "bn")
        if self.mode == _BATCH:
            axes = list(range(len(y.shape) - 1))
            mean = tf.reduce_mean(y, axes)
            variance = tf.maximum(tf.reduce_mean(tf.square(y), axes) - tf.square(mean), 0.0)
            full = self.slots[r.name][1]
            self.found[r.name] = (_pad_last(mean, full), _pad_last(variance, full))
        elif self.mode == _GIVEN:
            offset = self.slots[r.name][0]
            mean = tf.slice(self.statistics[0], [offset], m)
            variance = tf.slice(self.statistics[1], [offset], m)
        else:
            mean, variance = moving_mean.tensor(), moving_variance.tensor()
        inv = gamma.tensor() * tf.math.rsqrt(variance + bn.epsilon)
        return y * inv + (beta.tensor() - mean * inv)

    def squeeze_excite(self, r, x):
        se, c = self.supernet.super_layers[r.name].conv, r.in_channels
        (squeeze, squeeze_bias), (excite, excite_bias) = (
            weight_slices(self.supernet, r, part) for part in ("squeeze", "excite")
        )
        g = tf.reduce_mean(x, [1, 2])
        g = tf.matmul(g, tf.reshape(squeeze.tensor(), [c, -1])) + squeeze_bias.tensor()
        g = se.squeeze.activation(g)
        g = tf.matmul(g, tf.reshape(excite.tensor(), [-1, c])) + excite_bias.tensor()
        return x * se.gate_fn(g)[:, None, None, :]
