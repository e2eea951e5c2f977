"""MobileNetV1 (Howard et al. 2017) as a super-network: the paper's ablation network."""

from netadapt_tf.builders.common import LayerFactory, builder_origin, out_channels
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


def build(
    input_size: int = 224,
    num_classes: int = 1000,
    width_multiplier: float = 1.0,
    num_widths: int = 9,
    channel_bypass: bool = True,
    bypass_base: int | None = None,
    dropout: float = 1e-3,
    tie_depthwise: bool = False,
) -> NetworkSpec:
    """Channels are int(filters * width_multiplier), as in the reference implementation."""
    stem = int(32 * width_multiplier)
    f = LayerFactory(
        num_widths, channel_bypass, stem // 2 if bypass_base is None else bypass_base, tie_depthwise
    )
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
    nodes += [PoolSpec("pool"), f.classifier("logits", num_classes, dropout)]
    return NetworkSpec(
        name="mobilenet_v1",
        input_size=input_size,
        num_classes=num_classes,
        nodes=tuple(nodes),
        origin=builder_origin(
            "mobilenet_v1",
            width_multiplier,
            num_widths,
            channel_bypass,
            f.bypass_base,
            dropout,
            tie_depthwise,
        ),
    )
