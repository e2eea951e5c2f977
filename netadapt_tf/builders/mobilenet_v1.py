"""MobileNetV1 (Howard et al. 2017) as a super-network: the paper's ablation network."""

from netadapt_tf.builders.common import (
    BuilderOptions,
    classifier_spec,
    layer_factory,
    out_channels,
)
from netadapt_tf.space.spec import NetworkSpec, PoolSpec

# (pointwise filters, stride of the depthwise layer) of the 13 separable blocks.
BLOCKS = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)


DEFAULTS = BuilderOptions(dropout=1e-3)


def build(options: BuilderOptions = DEFAULTS) -> NetworkSpec:
    """Channels are int(filters * width_multiplier), as in the reference implementation."""
    width_multiplier, num_classes = options.width_multiplier, options.num_classes
    stem = int(32 * width_multiplier)
    f = layer_factory(options, stem // 2)
    total = 2
    nodes = [
        f.layer("stem", "conv", stem, total, kernel_size=3, strides=2, activation="relu"),
    ]
    channels = stem
    for i, (filters, stride) in enumerate(BLOCKS, start=1):
        total *= stride
        nodes.append(f.depthwise(f"block{i}/depthwise", channels, 3, stride, "relu"))
        filters = int(filters * width_multiplier)
        pw = f.layer(f"block{i}/pointwise", "pointwise", filters, total, activation="relu")
        nodes.append(pw)
        channels = out_channels(pw, channels)
    nodes += [PoolSpec("pool"), f.classifier("logits", num_classes, options.dropout)]
    return classifier_spec("mobilenet_v1", options, nodes, f.bypass_base)
