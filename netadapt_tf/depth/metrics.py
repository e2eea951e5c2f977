"""Depth-estimation metrics: RMSE, delta1/2/3 and absolute relative error.

The definitions of the depth literature that FastDepth and NetAdaptV2 (Sec. 4.2) report:
over the valid pixels of an image (ground truth > 0; 0 marks a pixel the sensor did not
measure),

    rmse    = sqrt(mean((prediction - depth)^2))                metres
    deltaK  = mean(max(prediction / depth, depth / prediction) < 1.25^K)   K = 1, 2, 3
    abs_rel = mean(|prediction - depth| / depth)

each computed per image and then averaged over images (images without a valid pixel are
left out, and counted). A prediction <= 0 at a valid pixel is never within a delta
threshold: the ratio test is written without division (p < t*g and g < t*p, p > 0), so a
negative or zero prediction cannot pass it through a sign flip or an infinity.

`per_image_metrics` is the TensorFlow op (it runs in graphs, on batches); `DepthMetrics`
is the averaged record; `MetricsAccumulator` sums batches of a dataset; `compare_maps` is
the check-everything entry point of tools/evaluate_depth.py.
"""

import dataclasses
from collections.abc import Callable, Iterable

import numpy as np
import tensorflow as tf

METRIC_NAMES = ("rmse", "delta1", "delta2", "delta3", "abs_rel")
DELTA_BASE = 1.25


def per_image_metrics(prediction, depth, dtype=tf.float32) -> tuple[tf.Tensor, tf.Tensor]:
    """(metrics [N, 5] of `dtype` in METRIC_NAMES order, valid pixel counts int32 [N]).

    `prediction` and `depth` have one shape [N, ...] (e.g. [N, H, W, 1]); each of the N
    leading entries is one image. Rows of images without a valid pixel are 0.
    """
    prediction = tf.convert_to_tensor(prediction)
    depth = tf.convert_to_tensor(depth)
    if not prediction.shape.is_compatible_with(depth.shape):
        raise ValueError(
            f"per_image_metrics: prediction shape {prediction.shape} differs from the depth "
            f"shape {depth.shape}; they must be equal"
        )
    count = tf.shape(depth)[0]
    p = tf.reshape(tf.cast(prediction, dtype), [count, -1])
    g = tf.reshape(tf.cast(depth, dtype), [count, -1])
    valid = g > 0
    pixels = tf.reduce_sum(tf.cast(valid, tf.int32), axis=1)
    n = tf.cast(pixels, dtype)

    def mean(values):
        summed = tf.reduce_sum(tf.where(valid, values, tf.zeros_like(values)), axis=1)
        return tf.math.divide_no_nan(summed, n)

    diff = p - g
    rmse = tf.sqrt(mean(tf.square(diff)))
    abs_rel = mean(tf.math.divide_no_nan(tf.abs(diff), g))
    deltas = []
    for k in (1, 2, 3):
        threshold = DELTA_BASE**k
        within = (p > 0) & (p < threshold * g) & (g < threshold * p)
        deltas.append(mean(tf.cast(within, dtype)))
    return tf.stack([rmse, *deltas, abs_rel], axis=1), pixels


@dataclasses.dataclass(frozen=True, kw_only=True)
class DepthMetrics:
    """Metrics averaged over `num_images` images (those with at least one valid pixel);
    `num_skipped` images had none."""

    rmse: float
    delta1: float
    delta2: float
    delta3: float
    abs_rel: float
    num_images: int
    num_skipped: int = 0

    def values(self) -> dict[str, float]:
        """The five metrics by name (the keys tools/evaluate_depth.py prints)."""
        return {name: getattr(self, name) for name in METRIC_NAMES}

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


class MetricsAccumulator:
    """Sums per-image metrics over batches; `result()` averages them over images."""

    def __init__(self):
        self._sums = np.zeros(len(METRIC_NAMES), np.float64)
        self._images = 0
        self._skipped = 0

    def add(self, prediction, depth, dtype=tf.float32) -> None:
        """One batch: prediction and depth of one shape [N, ...], compared in `dtype`."""
        metrics, pixels = per_image_metrics(prediction, depth, dtype)
        metrics, has_pixels = np.asarray(metrics, np.float64), np.asarray(pixels) > 0
        self._sums += metrics[has_pixels].sum(axis=0)
        self._images += int(has_pixels.sum())
        self._skipped += int((~has_pixels).sum())

    def result(self) -> DepthMetrics:
        if self._images == 0:
            raise ValueError(
                f"depth metrics: none of the {self._skipped} images has a valid pixel "
                "(ground truth > 0), so there is nothing to average"
            )
        means = self._sums / self._images
        return DepthMetrics(
            **{name: float(v) for name, v in zip(METRIC_NAMES, means, strict=True)},
            num_images=self._images,
            num_skipped=self._skipped,
        )


def evaluate(predict: Callable, batches: Iterable) -> DepthMetrics:
    """Metrics of `predict(images) -> depth predictions` over batches of (images, depth),
    e.g. a batched held-out split of a depth `Datasets`."""
    accumulator = MetricsAccumulator()
    for images, depth in batches:
        accumulator.add(predict(images), depth)
    return accumulator.result()


def align_prediction(
    prediction: np.ndarray,
    ground_truth: np.ndarray,
    names: tuple[str, str] = ("prediction", "ground_truth"),
) -> np.ndarray:
    """`prediction` without the extra leading axes of size 1 it may carry (a network's batch
    axis), so that its shape is the ground truth's; ValueError naming both otherwise."""
    pred_name, gt_name = names
    extra = prediction.ndim - ground_truth.ndim
    if (
        extra < 0
        or any(size != 1 for size in prediction.shape[:extra])
        or prediction.shape[extra:] != ground_truth.shape
    ):
        raise ValueError(
            f"{pred_name}: shape {prediction.shape} does not match {gt_name} shape "
            f"{ground_truth.shape}; allowed: the same shape, optionally with extra leading "
            "axes of size 1 on the prediction"
        )
    return prediction.reshape(ground_truth.shape)


def _numeric(array, name: str) -> np.ndarray:
    array = np.asarray(array)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise TypeError(f"{name}: dtype {array.dtype} is not a real number type")
    return array


def pixel_rule(ground_truth, name: str = "ground_truth") -> str:
    """Which pixels of `ground_truth` the metrics use, as one sentence: those > 0; 0 and
    NaN both mean no measurement (NYU's holes are 0, other sets' NaN) and are left out."""
    ground_truth = np.asarray(ground_truth, np.float64)
    valid = int((ground_truth > 0).sum())
    nan = int(np.isnan(ground_truth).sum())
    return (
        f"{name}: metrics over its {valid} pixels > 0; {ground_truth.size - valid - nan} "
        f"at <= 0 and {nan} NaN are no measurement and are left out"
    )


def compare_maps(
    prediction, ground_truth, names: tuple[str, str] = ("prediction", "ground_truth")
) -> DepthMetrics:
    """The metrics of one predicted depth map against its ground truth (both [H, W] or
    [H, W, 1] in metres; the prediction may carry extra leading axes of size 1), over the
    ground truth's pixels > 0 (pixel_rule: 0 and NaN are no measurement)."""
    pred_name, gt_name = names
    prediction, ground_truth = _numeric(prediction, pred_name), _numeric(ground_truth, gt_name)
    if ground_truth.ndim < 2:
        raise ValueError(
            f"{gt_name}: shape {ground_truth.shape} is not a depth map; allowed: [H, W] or "
            "[H, W, 1]"
        )
    prediction = align_prediction(prediction, ground_truth, names)
    valid = ground_truth > 0
    if not valid.any():
        raise ValueError(
            f"{gt_name}: none of its {ground_truth.size} pixels is a valid depth (> 0)"
        )
    if not np.isfinite(ground_truth[valid]).all():
        raise ValueError(f"{gt_name}: has infinite values among its valid pixels")
    if not np.isfinite(prediction[valid]).all():
        raise ValueError(f"{pred_name}: has NaN or infinite values at valid pixels")
    accumulator = MetricsAccumulator()
    accumulator.add(prediction[None], ground_truth[None], tf.float64)
    return accumulator.result()
