"""MobileNetV3-Large (Howard et al. 2019) and the NetAdaptV2 paper's initial network.

The initial network of NetAdaptV2 (Appendix A.1, Table 8) as we read it: MobileNetV3-Large
with every layer width rounded up to a power of 2 (after the width multiplier), one more
block at the end of the 28x28 and of the 14x14 stage (for a 224 input; copies of the stage's
last block), depthwise kernels 2 larger, an expansion layer in every block and an SE gate in
every block (Table 8's discovered network has both in blocks where MobileNetV3-Large has
neither), SE squeeze = expansion / 4, T = 8, 16, 32, 64, 128 at strides 2..32 and T =
infinity for depthwise layers, and T = half the width for the conv after the global pool
(Table 8 row 21). Every stride-1 block whose width is kept is residual.
"""

from netadapt_tf.builders.common import (
    BuilderOptions,
    classifier_spec,
    layer_factory,
    make_divisible,
    next_power_of_two,
    out_channels,
)
from netadapt_tf.space.spec import NetworkSpec, PoolSpec

# MobileNetV3-Large: (kernel, expansion ratio, output channels, SE, activation, stride).
_LARGE = (
    (3, 1, 16, False, "relu", 1),
    (3, 4, 24, False, "relu", 2),
    (3, 3, 24, False, "relu", 1),
    (5, 3, 40, True, "relu", 2),
    (5, 3, 40, True, "relu", 1),
    (5, 3, 40, True, "relu", 1),
    (3, 6, 80, False, "hard_swish", 2),
    (3, 2.5, 80, False, "hard_swish", 1),
    (3, 2.3, 80, False, "hard_swish", 1),
    (3, 2.3, 80, False, "hard_swish", 1),
    (3, 6, 112, True, "hard_swish", 1),
    (3, 6, 112, True, "hard_swish", 1),
    (5, 6, 160, True, "hard_swish", 2),
    (5, 6, 160, True, "hard_swish", 1),
    (5, 6, 160, True, "hard_swish", 1),
)
# Where the paper's initial network repeats a block: after these 0-based rows (the last
# blocks of the 28x28 and 14x14 stages for a 224 input).
_REPEATED = (5, 11)


def _large_rows(width_multiplier):
    """MobileNetV3-Large's (kernel, exp, out, se_filters, all_se_filters, act, stride) with
    the reference rounding: the expansion is a ratio of the (rounded) input channels."""
    rows = []
    in_ch = 16
    for k, ratio, out, se, act, stride in _LARGE:
        out_ch = make_divisible(out * width_multiplier)
        exp_ch = make_divisible(in_ch * ratio)
        squeeze = make_divisible(exp_ch * 0.25)
        rows.append((k, exp_ch, out_ch, squeeze if se else None, squeeze, act, stride))
        in_ch = out_ch
    return rows


def _assemble(f, rows, stem, last, pre_logits, head_limit, options: BuilderOptions, all_exp):
    """Writes the nodes from rows of (kernel, exp, out, se_filters|None, act, stride)."""
    total = 2
    layer = f.layer("stem", "conv", stem, total, kernel_size=3, strides=2, activation="hard_swish")
    nodes = [layer]
    channels = out_channels(layer, 3)
    for index, (k, exp, out, se, act, stride) in enumerate(rows, start=1):
        total *= stride
        block = f.inverted_residual(
            f"block{index}",
            channels,
            exp if (all_exp or index > 1) else None,
            out,
            k,
            stride,
            act,
            se,
            total,
        )
        nodes.append(block)
        channels = out_channels(block.projection, block.depthwise.filters)
        if block.residual:
            channels = max(channels, block.projection.filters)
    nodes += [
        f.layer("last_conv", "pointwise", last, total, activation="hard_swish"),
        PoolSpec("pool"),
        f.layer(
            "pre_logits",
            "pointwise",
            pre_logits,
            bypass_limit=head_limit,
            activation="hard_swish",
            batch_norm=False,
            use_bias=True,
        ),
        f.classifier("logits", options.num_classes, options.dropout),
    ]
    return tuple(nodes)


DEFAULTS = BuilderOptions(dropout=0.2)


def build_large(options: BuilderOptions = DEFAULTS) -> NetworkSpec:
    """MobileNetV3-Large with the reference channel rounding (make_divisible(c * alpha, 8),
    SE squeeze make_divisible(expansion / 4), stem 16 and head 1280 unless alpha > 1)."""
    width_multiplier = options.width_multiplier
    f = layer_factory(options, 8)
    rows = [(k, e, o, se, a, st) for k, e, o, se, _, a, st in _large_rows(width_multiplier)]
    last = make_divisible(960 * width_multiplier)
    pre = 1280 if width_multiplier <= 1.0 else make_divisible(1280 * width_multiplier)
    nodes = _assemble(f, rows, 16, last, pre, pre // 2, options, all_exp=False)
    return classifier_spec("mobilenet_v3_large", options, nodes, f.bypass_base)


def build_netadaptv2(options: BuilderOptions = DEFAULTS) -> NetworkSpec:
    """The NetAdaptV2 paper's initial network for the latency-guided experiment."""
    width_multiplier = options.width_multiplier
    f = layer_factory(options, 8)
    p2 = next_power_of_two
    rows = []
    for index, (k, exp, out, _, squeeze, act, stride) in enumerate(_large_rows(width_multiplier)):
        row = (k + 2, p2(exp), p2(out), p2(squeeze), act, stride)
        rows.append(row)
        if index in _REPEATED:
            rows.append(row[:-1] + (1,))
    last = p2(make_divisible(960 * width_multiplier))
    pre = p2(1280 if width_multiplier <= 1.0 else make_divisible(1280 * width_multiplier))
    nodes = _assemble(f, rows, p2(16), last, pre, pre // 2, options, all_exp=True)
    return classifier_spec("netadaptv2_mobilenet_v3", options, nodes, f.bypass_base)
