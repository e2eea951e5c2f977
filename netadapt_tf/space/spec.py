"""The declarative architecture description of a super-network (the search space).

A `NetworkSpec` is an ordered tuple of nodes: `LayerSpec` (one convolution-like layer),
`BlockSpec` (a MobileNetV2/V3 inverted-residual block), `PoolSpec` (global average pool),
and for dense prediction `UpsampleSpec` (nearest-neighbour x2) and `SkipSpec` (adds an
earlier layer's output, the two layers' widths tied). Each layer carries its maximum number
of filters, the widths and kernel sizes a sub-network may choose, and T (the channel-bypass
limit). The builders write these records; the super-network, the exporter, the MAC counter
and the latency tables only read them.
The JSON format is documented in docs/architecture_format.md. The node records are
spec_nodes.py's (imported here too), the whole-network checks network_checks.py's.
"""

import dataclasses
import functools
import hashlib
import json
import os
from collections.abc import Iterator

from netadapt_tf.common import strict_json as sj
from netadapt_tf.space.network_checks import validate_network
from netadapt_tf.space.spec_nodes import (
    ACTIVATIONS,
    LAYER_KINDS,
    STRIDES,
    BlockSpec,
    LayerSpec,
    Node,
    PoolSpec,
    SkipSpec,
    UpsampleSpec,
    node_from_json,
    odd_kernel_sizes,
    uniform_widths,
)

__all__ = [
    "ACTIVATIONS",
    "FORMAT",
    "LAYER_KINDS",
    "STRIDES",
    "BlockSpec",
    "LayerSpec",
    "NetworkSpec",
    "Node",
    "PoolSpec",
    "SkipSpec",
    "UpsampleSpec",
    "load_spec",
    "merge_groups",
    "odd_kernel_sizes",
    "uniform_widths",
]

FORMAT = "netadapt_tf.network_spec/1"


@dataclasses.dataclass(frozen=True)
class NetworkSpec:
    """A super-network: its input, its nodes in order, and how it was built (`origin`).

    `num_classes` makes it a classifier (the last node an fc layer); `dense_channels` a
    dense-prediction network (no pool, no fc; the output is a map of that many channels at
    the input resolution). A network with neither outputs its last node's features.
    """

    name: str
    input_size: int
    nodes: tuple[Node, ...]
    input_channels: int = 3
    num_classes: int | None = None
    origin: tuple[tuple[str, object], ...] = ()
    dense_channels: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "nodes", tuple(self.nodes))
        object.__setattr__(self, "origin", tuple(sorted(dict(self.origin).items())))
        validate_network(self)

    def layers(self) -> Iterator[LayerSpec]:
        """Every layer, in network order (block layers in block order)."""
        for node in self.nodes:
            if isinstance(node, LayerSpec):
                yield node
            elif isinstance(node, BlockSpec):
                yield from node.layers

    def layer(self, name: str) -> LayerSpec:
        for layer in self.layers():
            if layer.name == name:
                return layer
        raise KeyError(f"no layer named {name!r} in network {self.name!r}")

    def layer_names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers())

    def skips(self) -> tuple[SkipSpec, ...]:
        return tuple(node for node in self.nodes if isinstance(node, SkipSpec))

    def tie_groups(self) -> tuple[tuple[str, ...], ...]:
        """The layers whose widths skips tie, one group per set of joined layers (a layer
        joined by two skips ties all three), each in network order."""
        return merge_groups([skip.tied for skip in self.skips()], self.layer_names())

    def to_json(self) -> dict:
        d = {
            "format": FORMAT,
            "name": self.name,
            "input_size": self.input_size,
            "input_channels": self.input_channels,
            "num_classes": self.num_classes,
        }
        if self.dense_channels is not None:  # written only when set: older fingerprints hold
            d["dense_channels"] = self.dense_channels
        return {**d, "origin": dict(self.origin), "nodes": [n.to_json() for n in self.nodes]}

    @classmethod
    def from_json(cls, d: dict) -> "NetworkSpec":
        """The spec of a JSON object (to_json's format); RecordError naming the field."""
        sj.obj(d, "spec", ("format", "name", "input_size", "nodes"), _NETWORK_OPTIONAL)
        sj.constant(d["format"], "format", FORMAT)
        nodes = tuple(
            node_from_json(node, f"nodes[{i}]")
            for i, node in enumerate(sj.array(d["nodes"], "nodes", min_length=1))
        )
        fields = {
            "name": sj.string(d["name"], "name"),
            "input_size": sj.integer(d["input_size"], "input_size", minimum=1),
            "input_channels": sj.integer(d.get("input_channels", 3), "input_channels", minimum=1),
            "num_classes": sj.optional(sj.integer, d.get("num_classes"), "num_classes", minimum=1),
            "dense_channels": sj.optional(
                sj.integer, d.get("dense_channels"), "dense_channels", minimum=1
            ),
            "origin": tuple(sj.mapping(d.get("origin", {}), "origin", sj.scalar).items()),
        }
        try:
            return cls(nodes=nodes, **fields)
        except (TypeError, ValueError) as e:
            raise sj.RecordError(f"spec: {e}") from None

    def fingerprint(self) -> str:
        """A short hash of the whole description: archs carry it to name their space."""
        return self._fingerprint

    @functools.cached_property
    def _fingerprint(self) -> str:
        # Computed once: the search checks archs against the spec thousands of times.
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


_NETWORK_OPTIONAL = ("input_channels", "num_classes", "dense_channels", "origin")


def load_spec(path: str | os.PathLike) -> NetworkSpec:
    """The NetworkSpec in JSON file `path`; RecordError naming the file and the field."""
    return sj.read(path, NetworkSpec.from_json)


def merge_groups(pairs, order) -> tuple[tuple[str, ...], ...]:
    """Groups of names joined by `pairs` (transitively), members and groups in `order`."""
    group_of = {}
    for pair in pairs:
        merged = set(pair).union(*(group_of.get(name, ()) for name in pair))
        for name in merged:
            group_of[name] = merged
    rank = {name: i for i, name in enumerate(order)}
    groups = {frozenset(g) for g in group_of.values()}
    ordered = sorted((sorted(g, key=rank.__getitem__) for g in groups), key=lambda g: rank[g[0]])
    return tuple(tuple(g) for g in ordered)
