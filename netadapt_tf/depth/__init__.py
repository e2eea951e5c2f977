"""The depth-estimation task layer (NetAdaptV2 Sec. 4.2, FastDepth on NYU Depth V2).

`masked_l1` is the training loss, `distillation_l1` that of in-place distillation;
`per_image_metrics`, `MetricsAccumulator`, `evaluate` and `compare_maps` compute RMSE,
delta1/2/3 and the absolute relative error. The data sources (NYU Depth V2 with FastDepth's
preprocessing, the procedural scenes) are in netadapt_tf/data/ next to the classification
ones: `data.load(config, task="depth")`. See docs/depth.md.
"""

from netadapt_tf.depth.loss import distillation_l1, masked_l1
from netadapt_tf.depth.metrics import (
    DELTA_BASE,
    METRIC_NAMES,
    DepthMetrics,
    MetricsAccumulator,
    align_prediction,
    compare_maps,
    evaluate,
    per_image_metrics,
)

__all__ = [
    "DELTA_BASE",
    "METRIC_NAMES",
    "DepthMetrics",
    "MetricsAccumulator",
    "align_prediction",
    "compare_maps",
    "distillation_l1",
    "evaluate",
    "masked_l1",
    "per_image_metrics",
]
