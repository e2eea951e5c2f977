"""MobileNetV2 (Sandler et al. 2018) as a super-network."""

from netadapt_tf.builders.common import (
    BuilderOptions,
    LayerFactory,
    classifier_spec,
    layer_factory,
    make_divisible,
    out_channels,
)
from netadapt_tf.space.spec import NetworkSpec, PoolSpec

# (expansion ratio t, output channels c, repeats n, first stride s), Table 2 of the paper.
_STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


DEFAULTS = BuilderOptions(dropout=0.0)


def build(options: BuilderOptions = DEFAULTS) -> NetworkSpec:
    """Channel rounding as the reference implementation: make_divisible(c * alpha, 8), the
    expansion t * input channels, and the last conv 1280 unless alpha > 1."""
    width_multiplier = options.width_multiplier
    stem = make_divisible(32 * width_multiplier, 8)
    f = layer_factory(options, stem // 2)
    total = 2
    layer = f.layer("stem", "conv", stem, total, kernel_size=3, strides=2, activation="relu6")
    blocks, total = _blocks(f, out_channels(layer, 3), total, width_multiplier)
    nodes = [layer, *blocks]
    last = 1280 if width_multiplier <= 1.0 else make_divisible(1280 * width_multiplier, 8)
    nodes += [
        f.layer("last_conv", "pointwise", last, total, activation="relu6"),
        PoolSpec("pool"),
        f.classifier("logits", options.num_classes, options.dropout),
    ]
    return classifier_spec("mobilenet_v2", options, nodes, f.bypass_base)


def _blocks(f: LayerFactory, channels: int, total: int, width_multiplier: float):
    """The inverted residual blocks of _STAGES after the stem (`channels` output channels
    at full width, total stride `total`): (blocks, total stride after them)."""
    blocks, index = [], 0
    for t, c, n, s in _STAGES:
        filters = make_divisible(int(c * width_multiplier), 8)
        for r in range(n):
            index += 1
            stride = s if r == 0 else 1
            total *= stride
            block = f.inverted_residual(
                f"block{index}",
                channels,
                None if t == 1 else t * channels,
                filters,
                3,
                stride,
                "relu6",
                None,
                total,
            )
            blocks.append(block)
            channels = out_channels(block.projection, block.depthwise.filters)
            if block.residual:
                channels = max(channels, block.projection.filters)
    return blocks, total
