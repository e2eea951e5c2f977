"""FastDepth (Wofk et al., ICRA 2019) as a super-network: the paper's depth network (Sec. 4.2).

Encoder: MobileNetV1 without pool and classifier (224x224 in, 7x7x1024 out). Decoder
NNConv5: five stages of 5x5 depthwise + pointwise (BN, ReLU each), each followed by
nearest-neighbour x2 upsampling (1024 -> 512 -> 256 -> 128 -> 64 -> 32), then a pointwise
32 -> 1 (BN, ReLU) at the input resolution. Additive skips after the upsampling: encoder
block 1 (112x112) after decoder stage 4, block 3 (56x56) after stage 3, block 5 (28x28) after
stage 2.

T follows the resolution of a layer's output as in the classification builders
(bypass_base 16 at width 1: 16/32/64/128/256 at 112/56/28/14/7, Table 10); a decoder
pointwise layer works before its upsampling, so decoder stage 1's has the 7x7 T. The
layers a skip joins share their widths (the tie) and never bypass: their widths are the
uniform ones from the larger T of the pair up (Table 10's 48, 112 and 192 are among them).
The output layer keeps its one filter (T = 0).
"""

import dataclasses

from netadapt_tf.builders.common import (
    BuilderOptions,
    LayerFactory,
    builder_origin,
    layer_factory,
    out_channels,
)
from netadapt_tf.builders.mobilenet_v1 import BLOCKS
from netadapt_tf.space.spec import NetworkSpec, SkipSpec, UpsampleSpec

# Output filters of the decoder stages' pointwise layers (before the width multiplier).
DECODER = (512, 256, 128, 64, 32)
# Decoder stage -> the encoder block whose pointwise output is added after its upsampling.
SKIPS = {2: 5, 3: 3, 4: 1}
DECODER_KERNEL = 5
DOWNSAMPLING = 32  # the encoder halves the input five times; the decoder doubles it back


DEFAULTS = BuilderOptions(num_classes=None)


def build(options: BuilderOptions = DEFAULTS) -> NetworkSpec:
    """Channels are int(filters * width_multiplier), as in MobileNetV1's reference code;
    the output map has one channel. `num_classes` exists for builders.rebuild and must be
    None; there is no classifier, so no dropout."""
    _check_arguments(options)
    width_multiplier = options.width_multiplier
    stem = int(32 * width_multiplier)
    f = layer_factory(options, stem // 2)
    nodes, channels, total = _encoder(f, stem, width_multiplier)
    decoder, total = _decoder(f, channels, total, width_multiplier)
    nodes += decoder
    nodes.append(
        f.layer("output", "pointwise", 1, total, bypass_limit=0, activation="relu"),
    )
    nodes = _tie(nodes)
    return NetworkSpec(
        name="fastdepth",
        input_size=options.input_size,
        nodes=tuple(nodes),
        dense_channels=1,
        origin=builder_origin("fastdepth", options, f.bypass_base, dropout=False),
    )


def _check_arguments(options: BuilderOptions) -> None:
    input_size, num_classes = options.input_size, options.num_classes
    if options.dropout != DEFAULTS.dropout:
        raise TypeError(
            f"dropout: {options.dropout!r} is not an option of fastdepth, a dense-prediction "
            "network without a classifier"
        )
    if num_classes is not None:
        raise ValueError(
            f"num_classes: {num_classes!r} is not allowed for fastdepth, a dense-prediction "
            "network (one depth channel per pixel); allowed: None"
        )
    if input_size % DOWNSAMPLING:
        raise ValueError(
            f"input_size: {input_size} is not allowed for fastdepth; allowed: a multiple of "
            f"{DOWNSAMPLING} (the encoder halves it five times and the decoder doubles it back)"
        )


def _encoder(f: LayerFactory, stem: int, width_multiplier: float) -> tuple[list, int, int]:
    """MobileNetV1 without pool and classifier: (nodes, output channels at full width,
    total stride)."""
    total = 2
    nodes = [f.layer("stem", "conv", stem, total, kernel_size=3, strides=2, activation="relu")]
    channels = stem
    for i, (filters, stride) in enumerate(BLOCKS, start=1):
        total *= stride
        nodes.append(f.depthwise(f"block{i}/depthwise", channels, 3, stride, "relu"))
        filters = int(filters * width_multiplier)
        pw = f.layer(f"block{i}/pointwise", "pointwise", filters, total, activation="relu")
        nodes.append(pw)
        channels = out_channels(pw, channels)
    return nodes, channels, total


def _decoder(f: LayerFactory, channels: int, total: int, width_multiplier: float):
    """The NNConv5 stages, with their skips, after the encoder's output (`channels`
    channels, total stride `total`): (nodes, total stride after them)."""
    nodes = []
    for stage, filters in enumerate(DECODER, start=1):
        name = f"decode{stage}"
        nodes.append(f.depthwise(f"{name}/depthwise", channels, DECODER_KERNEL, 1, "relu"))
        filters = int(filters * width_multiplier)
        pw = f.layer(f"{name}/pointwise", "pointwise", filters, total, activation="relu")
        channels = out_channels(pw, channels)
        nodes += [pw, UpsampleSpec(f"{name}/upsample")]
        total //= 2
        if stage in SKIPS:
            nodes.append(SkipSpec(f"{name}/skip", f"block{SKIPS[stage]}/pointwise", pw.name))
    return nodes, total


def _tie(nodes: list) -> list:
    """The layers each skip joins get the widths both can take without bypassing: the
    shared uniform widths from the larger of their two T up."""
    index = {node.name: i for i, node in enumerate(nodes)}
    for skip in [node for node in nodes if isinstance(node, SkipSpec)]:
        pair = [nodes[index[name]] for name in skip.tied]
        floor = max(layer.bypass_limit for layer in pair)
        widths = tuple(w for w in pair[0].widths if w >= floor and w > 0)
        for layer in pair:
            nodes[index[layer.name]] = dataclasses.replace(layer, widths=widths)
    return nodes
