"""The concrete shapes of a sub-network: channels, kept filters and bypasses per layer.

`resolve(spec, arch)` follows the channels through the network with the channel-bypass
arithmetic of channel_math, so that the MAC counter, the exporter and the latency tables all
read one account of what a sub-network computes.
"""

import dataclasses

from netadapt_tf.space import channel_math
from netadapt_tf.space.arch import Arch, validate_arch
from netadapt_tf.space.spec import (
    BlockSpec,
    LayerSpec,
    NetworkSpec,
    PoolSpec,
    SkipSpec,
    UpsampleSpec,
)


@dataclasses.dataclass(frozen=True)
class ResolvedLayer:
    """One layer of a sub-network.

    `width` is the number of filters that exist (for depthwise: min(M, C); for SE: the
    squeeze width), `bypassed` the number of input channels passed through, `out_channels`
    Z = max(min(C, T), M). `in_size`/`out_size` are the spatial sizes (square).
    """

    spec: LayerSpec
    in_channels: int
    width: int
    kernel_size: int
    bypassed: int
    out_channels: int
    in_size: int
    out_size: int

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def computes(self) -> bool:
        """False when the layer keeps no filter (it is a pure bypass, or an SE switched off)."""
        return self.width > 0


@dataclasses.dataclass(frozen=True)
class ResolvedBlock:
    spec: BlockSpec
    in_channels: int
    out_channels: int
    layers: tuple[ResolvedLayer, ...]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def removed(self) -> bool:
        """A residual block whose projection keeps no filter is the identity."""
        return self.spec.residual and self.layers[-1].width == 0


@dataclasses.dataclass(frozen=True)
class ResolvedPool:
    spec: PoolSpec
    channels: int
    in_size: int


@dataclasses.dataclass(frozen=True)
class ResolvedUpsample:
    """Nearest-neighbour x2: `out_channels` kept, `in_size` doubled."""

    spec: UpsampleSpec
    out_channels: int
    in_size: int

    @property
    def out_size(self) -> int:
        return 2 * self.in_size


@dataclasses.dataclass(frozen=True)
class ResolvedSkip:
    """The add of a skip: two tensors of `out_channels` channels (equal by the tie)."""

    spec: SkipSpec
    out_channels: int
    size: int


ResolvedNode = ResolvedLayer | ResolvedBlock | ResolvedPool | ResolvedUpsample | ResolvedSkip


@dataclasses.dataclass(frozen=True)
class SubNetwork:
    spec: NetworkSpec
    arch: Arch
    nodes: tuple[ResolvedNode, ...]

    def layers(self, include_removed: bool = False):
        """Layers in order; layers of removed blocks are left out unless asked for."""
        for node in self.nodes:
            if isinstance(node, ResolvedLayer):
                yield node
            elif isinstance(node, ResolvedBlock) and (include_removed or not node.removed):
                yield from node.layers

    @property
    def out_channels(self) -> int:
        last = self.nodes[-1]
        return last.channels if isinstance(last, ResolvedPool) else last.out_channels


def _out_size(size: int, strides: int) -> int:
    return -(-size // strides)  # 'same' padding


def resolve_layer(layer: LayerSpec, width: int, kernel_size: int, in_channels: int, size: int):
    """The concrete shape of one layer given its input channels and the chosen width."""
    out_size = _out_size(size, layer.strides)
    if layer.kind == "se":
        return ResolvedLayer(layer, in_channels, width, 1, 0, in_channels, size, size)
    if layer.kind == "depthwise":
        width = channel_math.depthwise_width(width, in_channels)
    limit = channel_math.bypass_limit_channels(in_channels, layer.bypass_limit)
    out = channel_math.bypass_output_width(in_channels, layer.bypass_limit, width)
    bypassed = max(0, limit - width)
    return ResolvedLayer(layer, in_channels, width, kernel_size, bypassed, out, size, out_size)


def resolve(spec: NetworkSpec, arch: Arch) -> SubNetwork:
    """Follows channels and spatial sizes through the sub-network `arch` of `spec`."""
    validate_arch(spec, arch)
    choices = arch.as_dict()
    channels, size = spec.input_channels, spec.input_size
    nodes, outputs = [], {}

    def step(layer, c, s):
        choice = choices[layer.name]
        return resolve_layer(layer, choice.width, choice.kernel_size, c, s)

    for node in spec.nodes:
        if isinstance(node, PoolSpec):
            nodes.append(ResolvedPool(node, channels, size))
            size = 1
        elif isinstance(node, UpsampleSpec):
            nodes.append(ResolvedUpsample(node, channels, size))
            size *= 2
        elif isinstance(node, SkipSpec):
            channels = channel_math.residual_output_width(outputs[node.source], channels)
            nodes.append(ResolvedSkip(node, channels, size))
        elif isinstance(node, LayerSpec):
            r = step(node, channels, size)
            nodes.append(r)
            channels, size = r.out_channels, r.out_size
            outputs[node.name] = channels
        else:
            c, s, rs = channels, size, []
            for layer in node.layers:
                r = step(layer, c, s)
                rs.append(r)
                c, s = r.out_channels, r.out_size
            if node.residual:
                c = channel_math.residual_output_width(channels, c)
            nodes.append(ResolvedBlock(node, channels, c, tuple(rs)))
            channels, size = c, s
    return SubNetwork(spec, arch, tuple(nodes))
