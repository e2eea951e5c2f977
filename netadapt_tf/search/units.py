"""What the search shrinks: search units, residual tie groups and one-notch moves.

A *search unit* is what the optimizer picks when the paper says "shrink a layer": one
searchable layer, or a *tie group* of layers that always shrink together.

Tie groups come from the residual streams of the spec. A stream starts at the layer that
writes a new tensor (a plain layer, or the projection of a block without a residual) and
runs through the residual blocks that add their projection's output into it. The
projections writing into one stream form a group. In this project a residual add
zero-pads the narrower tensor, so tied layers need not have equal widths for the network to
be valid: ties are a search rule, which keeps the channels a stream carries consistent
(every writer of the stream keeps the same share of its filters), as in pruning methods
that must prune residual-added layers together. The price is that a residual block is only
removed (its projection at width 0) together with its whole stream.

Skips tie layers too (NetworkSpec.tie_groups): there the tie is a validity rule (the two
summed tensors must keep one width), so skip ties hold whatever `tie_residual_streams` says.
A layer in both kinds of group joins them into one unit.

A *notch* is one step down a ladder: a width notch moves every member of a unit to the next
smaller width of its own `widths`; a kernel notch moves every member to its next smaller
kernel size. Members already at their smallest value stay.
"""

import dataclasses

import numpy as np

from netadapt_tf.space.arch import Arch
from netadapt_tf.space.spec import BlockSpec, LayerSpec, NetworkSpec, merge_groups

MOVES = ("width", "kernel_size")


@dataclasses.dataclass(frozen=True)
class SearchUnit:
    """One thing the optimizer can shrink: a layer, or a tie group (several layers)."""

    name: str
    layers: tuple[str, ...]

    @property
    def tied(self) -> bool:
        return len(self.layers) > 1

    def to_json(self) -> dict:
        return {"name": self.name, "layers": list(self.layers)}


def residual_streams(spec: NetworkSpec) -> tuple[tuple[str, ...], ...]:
    """The layers that write into each residual stream, for streams with a residual add.

    Only searchable layers are listed; a stream with fewer than two searchable writers
    forms no group.
    """
    streams, current = [], []

    def close():
        writers = [name for name in current if spec.layer(name).searchable]
        if len(writers) > 1:
            streams.append(tuple(writers))

    for node in spec.nodes:
        if not isinstance(node, LayerSpec | BlockSpec):
            continue  # pools, upsamplings and skips keep the channels (skips tie on their own)
        if isinstance(node, LayerSpec):
            if node.kind == "se":
                continue
            close()
            current = [node.name]
        elif isinstance(node, BlockSpec):
            if node.residual:
                current.append(node.projection.name)
            else:
                close()
                current = [node.projection.name]
    close()
    return tuple(streams)


def search_units(spec: NetworkSpec, tie_residual_streams: bool = True) -> tuple[SearchUnit, ...]:
    """Every searchable layer as a unit, tied layers merged into one unit per group.

    Units are in network order of their first layer. A group holding a residual stream is
    named "stream:<first layer>", one of skip ties only "skip:<first layer>"; a single layer
    by its own name.
    """
    streams = residual_streams(spec) if tie_residual_streams else ()
    in_stream = {name for stream in streams for name in stream}
    groups = merge_groups([*streams, *spec.tie_groups()], spec.layer_names())
    group_of = {name: group for group in groups for name in group}
    units, seen = [], set()
    for layer in spec.layers():
        if not layer.searchable or layer.name in seen:
            continue
        group = group_of.get(layer.name, (layer.name,))
        seen.update(group)
        kind = "stream" if in_stream.intersection(group) else "skip"
        name = f"{kind}:{group[0]}" if len(group) > 1 else group[0]
        units.append(SearchUnit(name, group))
    return tuple(units)


def _lower(values: tuple[int, ...], current: int) -> int | None:
    """The next smaller allowed value, or None at the bottom."""
    smaller = [v for v in values if v < current]
    return smaller[-1] if smaller else None


def _options(layer: LayerSpec, move: str) -> tuple[int, ...]:
    return layer.widths if move == "width" else layer.kernel_sizes


def available_moves(spec: NetworkSpec, unit: SearchUnit, arch: Arch) -> tuple[str, ...]:
    """The moves ("width", "kernel_size") that lower at least one member of `unit`."""
    choices = arch.as_dict()
    return tuple(
        move
        for move in MOVES
        if any(
            _lower(_options(spec.layer(n), move), getattr(choices[n], move)) is not None
            for n in unit.layers
        )
    )


def apply_move(spec: NetworkSpec, unit: SearchUnit, arch: Arch, move: str) -> Arch:
    """`arch` with every member of `unit` one notch lower in `move` (bottom members stay)."""
    if move not in MOVES:
        raise ValueError(f"move: {move!r} is not one of {MOVES}")
    choices = arch.as_dict()
    changes = {}
    for name in unit.layers:
        lower = _lower(_options(spec.layer(name), move), getattr(choices[name], move))
        if lower is not None:
            changes[name] = {move: lower}
    if not changes:
        raise ValueError(f"{unit.name}: no member can lower its {move}; it is at the bottom")
    return arch.with_choices(changes)


def shrink_one_notch(
    spec: NetworkSpec, unit: SearchUnit, arch: Arch, rng: np.random.Generator
) -> Arch | None:
    """One notch of `unit`: fewer filters or a smaller kernel, chosen at random when both
    are possible (so over several notches a layer loses filters, kernel size or both).
    None when the unit is at the bottom of both ladders."""
    moves = available_moves(spec, unit, arch)
    if not moves:
        return None
    move = moves[0] if len(moves) == 1 else moves[int(rng.integers(len(moves)))]
    return apply_move(spec, unit, arch, move)
