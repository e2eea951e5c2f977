"""Accuracy of sub-networks read from the super-network's shared weights.

Classifiers are judged by top-1 accuracy; depth networks (netadapt_tf.space.task) by the depth
metrics over the valid pixels (netadapt_tf.depth), their `accuracy` being delta1 or, for
`depth_metric="rmse"`, minus the RMSE (the search maximizes it).

The held-out images are batched once and kept in memory; one traced forward function serves
every sub-network (the arch is an input tensor), so judging thousands of samples costs no
graph building. Optional batch-norm recalibration re-estimates the BN statistics of each
sub-network on a few training batches before judging it, and restores them afterwards.

Two forward paths give the same accuracies: the masked super-network (full-width compute,
what the trainer's monitor uses) and, with `fast=True`, the sliced forward
(netadapt_tf.judge.sliced_forward: kernels cut to the arch's sizes, about the cost of the exported
sub-network), which the search uses. The fast path recalibrates into a statistics tensor
and never touches the super-network's variables.
"""

import contextlib

import numpy as np
import tensorflow as tf

from netadapt_tf.depth import METRIC_NAMES, DepthMetrics, per_image_metrics
from netadapt_tf.judge.sliced_forward import SlicedForward
from netadapt_tf.space.arch import Arch
from netadapt_tf.space.task import check_depth_metric, task_of
from netadapt_tf.supernet.network import SuperNetwork, arch_inputs, batch_norm_layers

RECALIBRATION_AVERAGES = ("momentum", "cumulative")


def _materialize(dataset: tf.data.Dataset, batch_size: int, max_examples: int | None):
    """Fixed-size batches (the last padded, with a validity mask) as numpy arrays; integer
    labels become int32, depth maps float32."""
    if max_examples is not None:
        dataset = dataset.take(max_examples)
    batches = []
    for images, labels in dataset.batch(batch_size).as_numpy_iterator():
        n = len(images)
        valid = np.zeros(batch_size, np.float32)
        valid[:n] = 1
        if n < batch_size:
            pad = batch_size - n
            images = np.concatenate([images, np.repeat(images[-1:], pad, axis=0)])
            labels = np.concatenate([labels, np.repeat(labels[-1:], pad, axis=0)])
        kind = np.int32 if np.issubdtype(labels.dtype, np.integer) else np.float32
        batches.append((images.astype(np.float32), labels.astype(kind), valid))
    if not batches:
        raise ValueError("held-out dataset: it holds no examples to judge sub-networks on")
    return batches


def _recalibration_images(dataset: tf.data.Dataset, num_batches: int, batch_size: int):
    """The full batches of images among the first `num_batches` batches of `dataset`."""
    data = dataset.take(num_batches * batch_size)
    images = [
        batch.astype(np.float32)
        for batch, _, valid in _materialize(data, batch_size, None)
        if valid.all()
    ]
    if not images:
        raise ValueError(
            f"recalibration_data: fewer than batch_size={batch_size} images, so no "
            "full batch to recalibrate BN on; lower batch_size or give more images"
        )
    return images


class SubnetEvaluator:
    """Top-1 accuracy (classifiers) or depth metrics (depth networks) of archs on a
    held-out set, from the super-network's weights.

    recalibration_data: an unbatched (image, label) training dataset; with
    recalibration_batches > 0 every judged arch first gets its own BN statistics.
    fast: judge through the sliced forward (one arch at a time, at the exported
    sub-network's cost) instead of the masked super-network; the accuracies are the same.
    recalibration_average: how the recalibration batches' statistics are combined:
    "cumulative" weighs every batch alike (the statistics of the whole fixed subset),
    "momentum" as BN's moving average (debiased), which favours the last batches.
    depth_metric: what `accuracy` returns for a depth network, "delta1" (the default) or
    "rmse" (as minus the RMSE, so that higher is better); refused for a classifier.
    """

    def __init__(
        self,
        supernet: SuperNetwork,
        held_out: tf.data.Dataset,
        batch_size: int = 256,
        max_examples: int | None = None,
        recalibration_data: tf.data.Dataset | None = None,
        recalibration_batches: int = 0,
        fast: bool = False,
        recalibration_average: str = "momentum",
        depth_metric: str | None = None,
    ):
        self.task = task_of(supernet.spec)
        self.depth_metric = check_depth_metric(supernet.spec, depth_metric, "depth_metric")
        if recalibration_batches and recalibration_data is None:
            raise ValueError("recalibration_batches > 0 needs recalibration_data")
        if recalibration_average not in RECALIBRATION_AVERAGES:
            raise ValueError(
                f"recalibration_average: {recalibration_average!r} is not one of "
                f"{RECALIBRATION_AVERAGES}"
            )
        self.recalibration_average = recalibration_average
        self.supernet = supernet
        self.batch_size = batch_size
        self.batches = _materialize(held_out, batch_size, max_examples)
        self.num_examples = int(sum(v.sum() for _, _, v in self.batches))
        self.recal_batches = []
        if recalibration_batches:
            self.recal_batches = _recalibration_images(
                recalibration_data, recalibration_batches, batch_size
            )
        self._bn = batch_norm_layers(supernet)
        self.traces = 0
        self.fast = bool(fast)
        self.sliced = SlicedForward(supernet) if self.fast else None
        self._make_forward_functions()

    def _make_forward_functions(self) -> None:
        """The traced functions over fixed-size batches: the masked super-network's
        forward and BN recalibration step and, when `fast`, the sliced forward's."""
        spec, batch_size = self.supernet.spec, self.batch_size
        size, channels = spec.input_size, spec.input_channels
        num_layers = len(spec.layer_names())
        image_spec = tf.TensorSpec([batch_size, size, size, channels], tf.float32)
        if self.task == "depth":
            label_spec = tf.TensorSpec([batch_size, size, size, spec.dense_channels], tf.float32)
        else:
            label_spec = tf.TensorSpec([batch_size], tf.int32)
        valid_spec = tf.TensorSpec([batch_size], tf.float32)
        row_spec = tf.TensorSpec([batch_size, num_layers], tf.int32)
        self._correct = tf.function(
            self._correct_impl,
            input_signature=[image_spec, label_spec, valid_spec, row_spec, row_spec],
        )
        self._recalibrate_step = tf.function(
            self._recalibrate_impl, input_signature=[image_spec, row_spec, row_spec]
        )
        if self.fast:
            sizes_spec = tf.TensorSpec([num_layers, 4], tf.int32)
            stats_spec = tf.TensorSpec([2, self.sliced.statistics_size], tf.float32)
            batch = [image_spec, label_spec, valid_spec, sizes_spec]
            # autograph=False: the sliced forward is plain graph code (its branches are tf.cond).
            self._correct_sliced = tf.function(
                self._correct_sliced_impl, input_signature=batch, autograph=False
            )
            self._correct_sliced_stats = tf.function(
                self._correct_sliced_impl, input_signature=[*batch, stats_spec], autograph=False
            )

    def _sums(self, outputs, labels, valid):
        """A batch's [hits, examples] (classification) or [the five depth metrics summed
        over its images with a valid pixel, those images] (depth, METRIC_NAMES order)."""
        if self.task == "classification":
            predicted = tf.argmax(outputs, -1, output_type=tf.int32)
            hit = tf.cast(tf.equal(predicted, labels), tf.float32)
            return tf.stack([tf.reduce_sum(hit * valid), tf.reduce_sum(valid)])
        metrics, pixels = per_image_metrics(outputs, labels)
        weight = valid * tf.cast(pixels > 0, tf.float32)
        summed = tf.reduce_sum(metrics * weight[:, None], axis=0)
        return tf.concat([summed, [tf.reduce_sum(weight)]], axis=0)

    def _correct_sliced_impl(self, images, labels, valid, sizes, statistics=None):
        self.traces += 1
        return self._sums(self.sliced.forward(images, sizes, statistics), labels, valid)

    def _correct_impl(self, images, labels, valid, widths, kernels):
        self.traces += 1
        inputs = {"image": images, "widths": widths, "kernel_sizes": kernels}
        return self._sums(self.supernet(inputs, training=False), labels, valid)

    def _recalibrate_impl(self, images, widths, kernels):
        self.traces += 1
        self.supernet({"image": images, "widths": widths, "kernel_sizes": kernels}, training=True)
        return tf.constant(0)

    def _rows(self, arch: Arch):
        rows = arch_inputs(self.supernet.spec, [arch])
        return [tf.constant(np.repeat(rows[k], self.batch_size, axis=0)) for k in rows]

    @contextlib.contextmanager
    def recalibrated(self, arch: Arch):
        """BN statistics of `arch` inside the block; the shared ones restored after.

        Moving averages start at zero and are debiased by 1 - momentum^n, which makes them
        a (momentum-weighted) average of the n batches' statistics.
        """
        saved = [(bn.moving_mean.numpy(), bn.moving_variance.numpy()) for bn in self._bn]
        try:
            if self.recal_batches:
                self._recalibrate(arch)
            yield
        finally:
            for bn, (mean, var) in zip(self._bn, saved, strict=True):
                bn.moving_mean.assign(mean)
                bn.moving_variance.assign(var)

    def _reset_statistics(self):
        for bn in self._bn:
            bn.moving_mean.assign(tf.zeros_like(bn.moving_mean))
            bn.moving_variance.assign(tf.zeros_like(bn.moving_variance))

    def _recalibrate(self, arch: Arch):
        """Sets every BN layer's moving statistics to those of `arch` on the fixed
        recalibration batches (see recalibration_average)."""
        widths, kernels = self._rows(arch)
        n = len(self.recal_batches)
        if self.recalibration_average == "momentum":
            self._reset_statistics()
            for images in self.recal_batches:
                self._recalibrate_step(images, widths, kernels)
            for bn in self._bn:
                debias = 1.0 - bn.momentum**n
                bn.moving_mean.assign(bn.moving_mean / debias)
                bn.moving_variance.assign(bn.moving_variance / debias)
            return
        # Cumulative: from zero, one update leaves (1 - momentum) x the batch's statistics.
        sums = [[np.zeros(bn.moving_mean.shape), np.zeros(bn.moving_mean.shape)] for bn in self._bn]
        for images in self.recal_batches:
            self._reset_statistics()
            self._recalibrate_step(images, widths, kernels)
            for total, bn in zip(sums, self._bn, strict=True):
                total[0] += bn.moving_mean.numpy() / (1.0 - bn.momentum)
                total[1] += bn.moving_variance.numpy() / (1.0 - bn.momentum)
        for (mean, variance), bn in zip(sums, self._bn, strict=True):
            bn.moving_mean.assign((mean / n).astype(np.float32))
            bn.moving_variance.assign((variance / n).astype(np.float32))

    def _totals(self, arch: Arch, recalibrate: bool | None) -> np.ndarray:
        """`_sums` over every held-out batch."""
        recalibrate = bool(self.recal_batches) if recalibrate is None else recalibrate
        if self.fast:
            return self._fast_totals(arch, recalibrate and bool(self.recal_batches))
        context = self.recalibrated(arch) if recalibrate else contextlib.nullcontext()
        with context:
            widths, kernels = self._rows(arch)
            total = 0.0
            for images, labels, valid in self.batches:
                total += self._correct(images, labels, valid, widths, kernels).numpy()
        return np.asarray(total, np.float64)

    def _fast_totals(self, arch: Arch, recalibrate: bool) -> np.ndarray:
        sizes = self.sliced.sizes(arch)
        extra = ()
        if recalibrate:
            before = self.sliced.traces
            cumulative = self.recalibration_average == "cumulative"
            extra = (self.sliced.recalibrated_statistics(self.recal_batches, sizes, cumulative),)
            self.traces += self.sliced.traces - before
        count = self._correct_sliced_stats if extra else self._correct_sliced
        total = 0.0
        for images, labels, valid in self.batches:
            total += count(images, labels, valid, sizes, *extra).numpy()
        return np.asarray(total, np.float64)

    def depth_metrics(self, arch: Arch, recalibrate: bool | None = None) -> DepthMetrics:
        """The depth metrics of `arch` on the held-out images (a depth network only)."""
        if self.task != "depth":
            raise ValueError(
                f"depth_metrics: {self.supernet.spec.name} is a {self.task} network; depth "
                "metrics need a depth network (dense_channels)"
            )
        return self.depth_metrics_of(self._totals(arch, recalibrate))

    def depth_metrics_of(self, totals: np.ndarray) -> DepthMetrics:
        """The depth metrics of the held-out `totals` (`_sums` over every batch), however
        they were summed (here, or by search.cluster_judge on a cluster's workers)."""
        images = int(totals[-1])
        if images == 0:
            raise ValueError("held-out dataset: none of its depth maps has a valid pixel")
        means = totals[:-1] / images
        values = {name: float(v) for name, v in zip(METRIC_NAMES, means, strict=True)}
        return DepthMetrics(**values, num_images=images, num_skipped=self.num_examples - images)

    def accuracy(self, arch: Arch, recalibrate: bool | None = None) -> float:
        """Top-1 accuracy of a classifier `arch` on the held-out examples; for a depth
        network its delta1, or minus its RMSE (depth_metric "rmse")."""
        return self.accuracy_of(self._totals(arch, recalibrate))

    def accuracy_of(self, totals: np.ndarray) -> float:
        """`accuracy` from the held-out `totals` (see depth_metrics_of)."""
        if self.task == "depth":
            metrics = self.depth_metrics_of(totals)
            return metrics.delta1 if self.depth_metric == "delta1" else -metrics.rmse
        return float(totals[0]) / self.num_examples

    def accuracies(self, archs, recalibrate: bool | None = None) -> list[float]:
        return [self.accuracy(arch, recalibrate) for arch in archs]
