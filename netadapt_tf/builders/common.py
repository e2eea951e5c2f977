"""Shared pieces of the super-network builders: channel rounding and layer records.

Each builder writes a NetworkSpec; these helpers keep the conventions (names, default
widths and kernel sizes, T per resolution) identical across builders.
"""

import dataclasses
import math

from netadapt_tf.space import channel_math
from netadapt_tf.space.spec import (
    BlockSpec,
    LayerSpec,
    NetworkSpec,
    odd_kernel_sizes,
    uniform_widths,
)


def make_divisible(value: float, divisor: int = 8) -> int:
    """The channel rounding of the reference MobileNetV2/V3 implementations: nearest multiple
    of `divisor`, never below it, and never more than 10% below `value`."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def next_power_of_two(value: float) -> int:
    """Rounds up to a power of 2 (the paper's initial network, Appendix A.1)."""
    return 1 << max(0, math.ceil(math.log2(max(value, 1))))


@dataclasses.dataclass(frozen=True, kw_only=True)
class BuilderOptions:
    """What every builder is built with: the input, the classes (None: a dense-prediction
    network), the width multiplier, the search settings LayerFactory applies (`num_widths`,
    `channel_bypass`, `bypass_base`: T at stride 2, None for the builder's own rule;
    `tie_depthwise`) and the dropout before the classifier. Each builder module's DEFAULTS
    holds its own num_classes and dropout; builders.build replaces fields of it."""

    input_size: int = 224
    num_classes: int | None = 1000
    width_multiplier: float = 1.0
    num_widths: int = 9
    channel_bypass: bool = True
    bypass_base: int | None = None
    dropout: float = 0.0
    tie_depthwise: bool = False


def layer_factory(options: BuilderOptions, default_bypass_base: int) -> "LayerFactory":
    """The LayerFactory of `options`, T at stride 2 `default_bypass_base` unless set."""
    base = default_bypass_base if options.bypass_base is None else options.bypass_base
    return LayerFactory(options.num_widths, options.channel_bypass, base, options.tie_depthwise)


def builder_origin(name: str, options: BuilderOptions, bypass_base: int, dropout: bool = True):
    """The `origin` a builder records: its name and options with the T it used, enough to
    build it again (`dropout` False for a builder without a classifier; tie_depthwise only
    when set, so the paper's search spaces keep their records)."""
    origin = (
        ("builder", name),
        ("width_multiplier", options.width_multiplier),
        ("num_widths", options.num_widths),
        ("channel_bypass", options.channel_bypass),
        ("bypass_base", bypass_base),
    ) + ((("dropout", options.dropout),) if dropout else ())
    return origin + ((("tie_depthwise", True),) if options.tie_depthwise else ())


def classifier_spec(name: str, options: BuilderOptions, nodes, bypass_base: int) -> NetworkSpec:
    """The NetworkSpec a classifier builder returns: `nodes` with the input and the classes
    of `options`, and the origin that builds it again."""
    return NetworkSpec(
        name=name,
        input_size=options.input_size,
        num_classes=options.num_classes,
        nodes=tuple(nodes),
        origin=builder_origin(name, options, bypass_base),
    )


def out_channels(layer: LayerSpec, in_channels: int) -> int:
    """Output channels of `layer` at full width: Z = max(min(C, T), filters)."""
    if layer.kind in ("depthwise", "se"):
        return in_channels
    return channel_math.bypass_output_width(in_channels, layer.bypass_limit, layer.filters)


class LayerFactory:
    """Writes LayerSpecs with a builder's shared search settings.

    num_widths: widths per layer (uniform from 0 to full); channel_bypass: when False, no
    layer has a bypass (T = 0) and width 0 is left out except for SE gates and residual
    projections (removing a residual block needs no bypass). bypass_base: T at stride 2;
    T doubles with every further downsampling (one T per resolution, paper Appendix B).
    tie_depthwise: a depthwise layer keeps every channel its input has (its only width is
    the full one, and its real width min(M, C) = C follows the layer that feeds it), so
    training and search spend nothing on depthwise widths that change nothing but the
    input they can see; when False (the paper) they are searched like any layer.
    """

    def __init__(
        self,
        num_widths: int = 9,
        channel_bypass: bool = True,
        bypass_base: int = 8,
        tie_depthwise: bool = False,
    ):
        if bypass_base < 0:
            raise ValueError(f"bypass_base: {bypass_base} must be >= 0")
        if not isinstance(tie_depthwise, bool):
            raise TypeError(f"tie_depthwise: {tie_depthwise!r} is not a bool")
        self.num_widths = num_widths
        self.channel_bypass = channel_bypass
        self.bypass_base = bypass_base
        self.tie_depthwise = tie_depthwise

    def widths(self, filters: int, zero_allowed: bool) -> tuple[int, ...]:
        ws = uniform_widths(filters, self.num_widths)
        if not zero_allowed:
            ws = tuple(w for w in ws if w > 0)
        return ws

    def limit_at(self, total_stride: int) -> float:
        """T for a layer whose output is `total_stride` times smaller than the input."""
        if not self.channel_bypass:
            return 0
        level = max(1, round(math.log2(total_stride)))
        return self.bypass_base * 2 ** (level - 1)

    def layer(self, name, kind, filters, total_stride=1, bypass_limit=None, **kw) -> LayerSpec:
        """A layer with default widths; `bypass_limit` overrides the T-per-resolution rule."""
        if bypass_limit is None and kind in ("se", "fc"):
            bypass_limit = 0
        elif bypass_limit is None:
            # T <= filters keeps the full sub-network exactly the initial network (Z = filters).
            bypass_limit = min(self.limit_at(total_stride), filters)
        if not self.channel_bypass and kind not in ("se",):
            bypass_limit = 0
        residual_projection = kw.pop("residual_projection", False)
        zero = kind == "se" or bypass_limit > 0 or residual_projection
        return LayerSpec(
            name=name,
            kind=kind,
            filters=filters,
            widths=self.widths(filters, zero),
            bypass_limit=bypass_limit,
            **kw,
        )

    def depthwise(self, name, channels, kernel_size, strides, activation) -> LayerSpec:
        layer = self.layer(
            name,
            "depthwise",
            channels,
            bypass_limit=math.inf if self.channel_bypass else 0,
            kernel_size=kernel_size,
            kernel_sizes=odd_kernel_sizes(kernel_size),
            strides=strides,
            activation=activation,
        )
        if self.tie_depthwise:
            layer = dataclasses.replace(layer, widths=(channels,))
        return layer

    def classifier(self, name: str, num_classes: int, dropout: float = 0.0) -> LayerSpec:
        return LayerSpec(
            name=name,
            kind="fc",
            filters=num_classes,
            widths=(num_classes,),
            activation="linear",
            batch_norm=False,
            use_bias=True,
            dropout=dropout,
        )

    def inverted_residual(
        self,
        name: str,
        in_channels: int,
        expansion: int | None,
        filters: int,
        kernel_size: int,
        strides: int,
        activation: str,
        se_filters: int | None,
        total_stride: int,
    ) -> BlockSpec:
        """A MobileNetV2/V3 block; total_stride is the downsampling at its output."""
        residual = strides == 1 and in_channels == filters
        exp = None
        channels = in_channels
        if expansion is not None:
            exp = self.layer(
                f"{name}/expansion",
                "expansion",
                expansion,
                total_stride,
                activation=activation,
            )
            channels = out_channels(exp, in_channels)
        dw = self.depthwise(f"{name}/depthwise", channels, kernel_size, strides, activation)
        se = None
        if se_filters is not None:
            se = self.layer(
                f"{name}/se",
                "se",
                se_filters,
                activation="relu",
                batch_norm=False,
                use_bias=True,
            )
        proj = self.layer(
            f"{name}/projection",
            "projection",
            filters,
            total_stride,
            bypass_limit=0 if residual else None,
            activation="linear",
            residual_projection=residual,
        )
        return BlockSpec(
            name=name, expansion=exp, depthwise=dw, se=se, projection=proj, residual=residual
        )
