"""What a per-layer latency lookup table of a search space must hold, and the models to time.

The unit of the table is one layer of an exported sub-network *with its channel bypass*: the
convolution (BN folded, activation fused) plus the slices, the average pool of a strided
bypass and the concatenation that graphs/export.py adds around it, because those copies cost time
too. A residual block's add (with the slices and concatenation that align tensors of
different widths), the global pool, an upsampling and a skip's add are entries of their
own. A removed residual block and a layer that computes nothing (SE switched off, a
stride-1 layer that keeps no filter and bypasses every channel) are free.

A layer's cost depends on its input channels C, its chosen width M (for depthwise layers the
chosen width, of which min(M, C) filters exist), its kernel size k and its fixed attributes
(kind, spatial size, stride, activation, T...). Layers with identical fixed attributes (e.g.
blocks 9-11 of the paper's network) share one *group* of entries. For each group the
possible C are found by propagating the set of channel counts through the network; widths
and kernel sizes are measured exhaustively, and C on a grid of at most `max_x_points` values
chosen from the possible ones (evenly spaced in value, always including the smallest and
largest), between which the table interpolates linearly. For residual adds x is the block's
input channels and y the projection's output channels; for a skip's add x is the channels
of the tensor added to and y those of the skip's source; for the pool and an upsampling x is
the channels.
"""

import dataclasses
import functools

import keras

from netadapt_tf.graphs.export import exporter_ops
from netadapt_tf.graphs.subnet_graph import layer_rule
from netadapt_tf.space.arch import Arch
from netadapt_tf.space.spec import (
    BlockSpec,
    LayerSpec,
    NetworkSpec,
    PoolSpec,
    SkipSpec,
    UpsampleSpec,
)
from netadapt_tf.space.subnet import (
    ResolvedBlock,
    ResolvedLayer,
    ResolvedPool,
    ResolvedSkip,
    ResolvedUpsample,
    resolve,
    resolve_layer,
)
from netadapt_tf.supernet.network import SuperNetwork, full_out_channels

_AXES = {
    "layer": ("in_channels", "width"),
    "residual": ("in_channels", "branch_channels"),
    "pool": ("channels", "none"),
    "upsample": ("channels", "none"),
    "skip": ("in_channels", "source_channels"),
}


@dataclasses.dataclass(frozen=True)
class Group:
    """Configurations that share one cost function, measured at (k, x, y) points."""

    key: str
    op: str
    in_size: int
    attrs: tuple[tuple[str, object], ...]
    members: tuple[str, ...]
    x_values: tuple[int, ...]
    y_values: tuple[int, ...]
    k_values: tuple[int, ...]
    layer: LayerSpec | None = None

    @property
    def axes(self) -> tuple[str, str]:
        return _AXES[self.op]

    def x_grid(self, max_x_points: int) -> tuple[int, ...]:
        return grid_points(self.x_values, max_x_points)

    def x_points(self, max_x_points: int, y: int, at_width: bool = True) -> tuple[int, ...]:
        """The x values measured for width y: the grid, and with `at_width` y itself when it
        lies inside the grid's range. A layer's cost is not linear in x across x = y: below
        it a depthwise layer has x filters, above it y filters and x - y bypassed channels
        (slices and a concatenation); a layer with a bypass, a residual add or a skip starts
        copying channels there. Uniform shrinks put every layer at that kink (x = y), where
        interpolating between the grid's ends under-predicted the demo network's uniform
        curve by 20% (docs/benchmarks.md)."""
        grid = self.x_grid(max_x_points)
        if at_width and grid[0] < y < grid[-1] and y not in grid:
            return tuple(sorted((*grid, y)))
        return grid

    def points(self, max_x_points: int, at_width: bool = True):
        """Every (k, x, y) this group measures."""
        for k in self.k_values:
            for y in self.y_values:
                for x in self.x_points(max_x_points, y, at_width):
                    yield k, x, y


def grid_points(values: tuple[int, ...], max_points: int) -> tuple[int, ...]:
    """At most `max_points` of the sorted `values`: the ones nearest to evenly spaced targets
    from the smallest to the largest value (both always included)."""
    if max_points < 2:
        raise ValueError(f"max_x_points: {max_points} must be >= 2 (the ends of the range)")
    values = tuple(sorted(values))
    if len(values) <= max_points:
        return values
    low, high = values[0], values[-1]
    chosen = set()
    for i in range(max_points):
        target = low + (high - low) * i / (max_points - 1)
        chosen.add(min(values, key=lambda v: (abs(v - target), v)))
    return tuple(sorted(chosen))


def _layer_attrs(layer: LayerSpec, in_size: int, super_in: int) -> tuple:
    fixed = layer.to_json()
    for name in ("name", "widths", "kernel_sizes", "dropout"):
        fixed.pop(name)
    return tuple(sorted({**fixed, "in_size": in_size, "super_in_channels": super_in}.items()))


class _Collector:
    def __init__(self):
        self.groups: dict[tuple, dict] = {}
        self.member_of: dict[str, str] = {}

    def add(self, identity, op, in_size, attrs, member, xs, ys, ks, layer=None):
        g = self.groups.get(identity)
        if g is None:
            key = f"{op}:{member}"
            g = self.groups[identity] = dict(
                key=key,
                op=op,
                in_size=in_size,
                attrs=attrs,
                members=[],
                xs=set(),
                ys=set(),
                ks=set(),
                layer=layer,
            )
        g["members"].append(member)
        g["xs"] |= set(xs)
        g["ys"] |= set(ys)
        g["ks"] |= set(ks)
        self.member_of[member] = g["key"]

    def groups_out(self) -> tuple[Group, ...]:
        return tuple(
            Group(
                key=g["key"],
                op=g["op"],
                in_size=g["in_size"],
                attrs=g["attrs"],
                members=tuple(g["members"]),
                x_values=tuple(sorted(g["xs"])),
                y_values=tuple(sorted(g["ys"])),
                k_values=tuple(sorted(g["ks"])),
                layer=g["layer"],
            )
            for g in self.groups.values()
        )


@dataclasses.dataclass(frozen=True)
class SpacePlan:
    """The groups of a space and which group serves each layer, block add and pool."""

    groups: tuple[Group, ...]
    member_of: tuple[tuple[str, str], ...]

    @functools.cached_property
    def group_of(self) -> dict[str, str]:
        """Layer, block or pool name -> the key of the group that serves it."""
        return dict(self.member_of)

    @functools.cached_property
    def _by_key(self) -> dict[str, Group]:
        return {g.key: g for g in self.groups}

    def group(self, key: str) -> Group:
        try:
            return self._by_key[key]
        except KeyError:
            raise KeyError(f"no lookup-table group {key!r}") from None


def plan_space(spec: NetworkSpec) -> SpacePlan:
    """Every configuration `spec` can produce, as groups (see the module docstring)."""
    out = _Collector()
    channels, size = {spec.input_channels}, spec.input_size
    full = spec.input_channels
    outputs = {}  # a top-level layer's possible output channels, for the skips reading it
    for node in spec.nodes:
        if isinstance(node, PoolSpec):
            out.add(("pool", size), "pool", size, (), node.name, channels, {0}, {1})
            size = 1
            continue
        if isinstance(node, UpsampleSpec):
            out.add(("upsample", size), "upsample", size, (), node.name, channels, {0}, {1})
            size *= 2
            continue
        if isinstance(node, SkipSpec):
            source = outputs[node.source]
            out.add(("skip", size), "skip", size, (), node.name, channels, source, {1})
            channels = {max(a, b) for a in channels for b in source}
            continue
        layers = node.layers if isinstance(node, BlockSpec) else (node,)
        block_in, block_in_full, branch = channels, full, set()
        for layer in layers:
            attrs = _layer_attrs(layer, size, full)
            widths = layer.widths
            residual_projection = (
                isinstance(node, BlockSpec) and node.residual and layer is node.projection
            )
            if residual_projection:
                widths = tuple(w for w in widths if w > 0)  # width 0 removes the block
            out.add(
                ("layer", attrs),
                "layer",
                size,
                attrs,
                layer.name,
                channels,
                widths,
                layer.kernel_sizes,
                layer,
            )
            k = layer.kernel_sizes[-1]
            shapes = [resolve_layer(layer, m, k, c, size) for c in channels for m in layer.widths]
            if residual_projection:
                branch = {r.out_channels for r in shapes if r.width > 0}
            channels = {r.out_channels for r in shapes}
            size = shapes[0].out_size
            full = full_out_channels(layer, full)
        if isinstance(node, BlockSpec) and node.residual:
            out.add(("residual", size), "residual", size, (), node.name, block_in, branch, {1})
            channels = {max(a, b) for a in block_in for b in branch}
            if 0 in node.projection.widths:
                channels |= block_in  # the removed block is the identity
            full = max(full, block_in_full)
        if isinstance(node, LayerSpec):
            outputs[node.name] = channels
    return SpacePlan(out.groups_out(), tuple(out.member_of.items()))


@dataclasses.dataclass(frozen=True)
class Lookup:
    """One configuration of a sub-network: group `key` at (k, x, y)."""

    key: str
    member: str
    k: int
    x: int
    y: int


def configurations(plan: SpacePlan, spec: NetworkSpec, arch: Arch) -> list[Lookup]:
    """The table configurations a sub-network consists of (free ones included)."""
    member_of = plan.group_of
    choices = arch.as_dict()

    def layer(r: ResolvedLayer) -> Lookup:
        c = choices[r.name]
        return Lookup(member_of[r.name], r.name, c.kernel_size, r.in_channels, c.width)

    found = []
    for node in resolve(spec, arch).nodes:
        if isinstance(node, ResolvedPool):
            found.append(Lookup(member_of[node.spec.name], node.spec.name, 1, node.channels, 0))
        elif isinstance(node, ResolvedUpsample):
            name = node.spec.name
            found.append(Lookup(member_of[name], name, 1, node.out_channels, 0))
        elif isinstance(node, ResolvedSkip):  # the tie: both summed tensors have one width
            channels = node.out_channels
            found.append(Lookup(member_of[node.spec.name], node.spec.name, 1, channels, channels))
        elif isinstance(node, ResolvedLayer):
            found.append(layer(node))
        elif isinstance(node, ResolvedBlock) and not node.removed:
            found.extend(layer(r) for r in node.layers)
            if node.spec.residual:
                branch = node.layers[-1].out_channels
                found.append(Lookup(member_of[node.name], node.name, 1, node.in_channels, branch))
    return found


def entry_model(group: Group, supernet: SuperNetwork, k: int, x: int, y: int) -> keras.Model | None:
    """The Keras model timed for one entry, built with the exporter's own steps and rules (so
    it holds exactly the operators the exported sub-network holds); None when it computes
    nothing."""
    s = group.in_size
    if group.op == "pool":
        inputs = keras.Input((s, s, x), batch_size=1)
        pooled = keras.layers.GlobalAveragePooling2D(keepdims=True)(inputs)
        return keras.Model(inputs, pooled)
    if group.op == "upsample":
        inputs = keras.Input((s, s, x), batch_size=1)
        return keras.Model(inputs, exporter_ops(supernet).upsample(UpsampleSpec("up"), inputs))
    if group.op in ("residual", "skip"):
        a = keras.Input((s, s, x), batch_size=1)
        b = keras.Input((s, s, y), batch_size=1)
        return keras.Model([a, b], exporter_ops(supernet).add(group.op, a, b))
    r = resolve_layer(group.layer, y, k, x, s)
    inputs = keras.Input((s, s, x), batch_size=1)
    outputs = layer_rule(exporter_ops(supernet), group.layer, {r.name: r}, inputs)
    if outputs is inputs:
        return None
    return keras.Model(inputs, outputs)
