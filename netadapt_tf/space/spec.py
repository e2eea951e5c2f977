"""The declarative architecture description of a super-network (the search space).

A `NetworkSpec` is an ordered tuple of nodes: `LayerSpec` (one convolution-like layer),
`BlockSpec` (a MobileNetV2/V3 inverted-residual block), `PoolSpec` (global average pool),
and for dense prediction `UpsampleSpec` (nearest-neighbour x2) and `SkipSpec` (adds an
earlier layer's output, the two layers' widths tied). Each layer carries its maximum number
of filters, the widths and kernel sizes a sub-network may choose, and T (the channel-bypass
limit). The builders write these records; the super-network, the exporter, the MAC counter
and the latency tables only read them.
The JSON format is documented in docs/architecture_format.md.
"""

import dataclasses
import functools
import hashlib
import json
import math
import os
from collections.abc import Iterator

from netadapt_tf.common import strict_json as sj

FORMAT = "netadapt_tf.network_spec/1"

LAYER_KINDS = ("conv", "depthwise", "pointwise", "expansion", "projection", "se", "fc")
ACTIVATIONS = ("linear", "relu", "relu6", "hard_swish", "hard_sigmoid", "swish", "sigmoid")
STRIDES = (1, 2)


def uniform_widths(filters: int, count: int = 9) -> tuple[int, ...]:
    """`count` uniformly spaced widths from 0 to `filters` (the paper uses 9, or 11)."""
    if count < 2:
        raise ValueError(f"num_widths: {count} is too small; at least 2 (0 and full)")
    return tuple(sorted({round(filters * i / (count - 1)) for i in range(count)}))


def odd_kernel_sizes(kernel_size: int) -> tuple[int, ...]:
    """The odd kernel sizes from 3 to the full size (the full size alone when it is 1)."""
    return tuple(range(3 if kernel_size >= 3 else kernel_size, kernel_size + 1, 2))


def _encode_limit(value: float):
    return "inf" if math.isinf(value) else value


def _decode_limit(value, field: str) -> float:
    if value == "inf":
        return math.inf
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise sj.fail(field, value, "an integer >= 0 or 'inf'")
    return value


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """One searchable convolution-like layer.

    `filters` is the full width (for a depthwise layer: its maximum input channels).
    `widths` are the widths a sub-network may choose, `kernel_sizes` the kernel sizes
    (several only for depthwise layers: the superkernel). `bypass_limit` is T; 0 means no
    bypass, math.inf means every input channel may be bypassed. For kind "se", `filters`
    is the squeeze width and width 0 switches the squeeze-and-excitation gate off.
    """

    name: str
    kind: str
    filters: int
    widths: tuple[int, ...]
    kernel_size: int = 1
    kernel_sizes: tuple[int, ...] = ()
    strides: int = 1
    activation: str = "relu"
    bypass_limit: float = 0
    batch_norm: bool = True
    use_bias: bool = False
    dropout: float = 0.0

    def __post_init__(self):
        if not self.kernel_sizes:
            object.__setattr__(self, "kernel_sizes", (self.kernel_size,))
        object.__setattr__(self, "widths", tuple(self.widths))
        object.__setattr__(self, "kernel_sizes", tuple(self.kernel_sizes))
        self._validate()

    def _validate(self):
        p = self.name
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"layer name {self.name!r} must be a non-empty string")
        if self.kind not in LAYER_KINDS:
            raise ValueError(f"{p}.kind: {self.kind!r} is not one of {LAYER_KINDS}")
        if not _is_int(self.filters) or self.filters < 1:
            raise ValueError(f"{p}.filters: {self.filters!r} must be a positive integer")
        ws = self.widths
        if not ws or any(not _is_int(w) or w < 0 or w > self.filters for w in ws):
            raise ValueError(
                f"{p}.widths: {ws} must be integers between 0 and filters={self.filters}"
            )
        if list(ws) != sorted(set(ws)) or ws[-1] != self.filters:
            raise ValueError(
                f"{p}.widths: {ws} must be strictly increasing and end at the full width "
                f"{self.filters}"
            )
        k = self.kernel_size
        if not _is_int(k) or k < 1 or k % 2 == 0:
            raise ValueError(f"{p}.kernel_size: {k!r} is not allowed; allowed are odd sizes >= 1")
        ks = self.kernel_sizes
        if any(not _is_int(s) or s % 2 == 0 or s < 1 or s > k for s in ks):
            raise ValueError(
                f"{p}.kernel_sizes: {ks} is not allowed; allowed are odd sizes from 1 to {k}"
            )
        if list(ks) != sorted(set(ks)) or ks[-1] != k:
            raise ValueError(
                f"{p}.kernel_sizes: {ks} must be strictly increasing and end at kernel_size={k}"
            )
        if len(ks) > 1 and self.kind != "depthwise":
            raise ValueError(
                f"{p}.kernel_sizes: {ks} has several sizes, which only depthwise layers allow "
                f"(this layer is {self.kind!r})"
            )
        if not _is_int(self.strides) or self.strides not in STRIDES:
            raise ValueError(f"{p}.strides: {self.strides!r} is not one of {STRIDES}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"{p}.activation: {self.activation!r} is not one of {ACTIVATIONS}")
        t = self.bypass_limit
        if isinstance(t, bool) or not isinstance(t, int | float) or t < 0 or math.isnan(t):
            raise ValueError(f"{p}.bypass_limit: {t!r} is not allowed; allowed are 0..inf")
        if not math.isinf(t) and t != int(t):
            raise ValueError(f"{p}.bypass_limit: {t!r} must be an integer or inf")
        if isinstance(self.dropout, bool) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"{p}.dropout: {self.dropout!r} must be in [0, 1)")
        if self.kind in ("se", "fc") and self.batch_norm:
            raise ValueError(f"{p}.batch_norm: {self.kind} layers have no batch normalization")
        if self.kind in ("se", "fc") and t != 0:
            raise ValueError(f"{p}.bypass_limit: {self.kind} layers have no bypass; must be 0")
        if self.kind != "conv" and self.kind != "depthwise" and k != 1:
            raise ValueError(f"{p}.kernel_size: {self.kind} layers are 1x1, got {k}")

    @property
    def searchable(self) -> bool:
        return len(self.widths) > 1 or len(self.kernel_sizes) > 1

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["widths"] = list(self.widths)
        d["kernel_sizes"] = list(self.kernel_sizes)
        d["bypass_limit"] = _encode_limit(self.bypass_limit)
        return d

    @classmethod
    def from_json(cls, d: dict, path: str = "layer") -> "LayerSpec":
        """The layer of a JSON object; RecordError naming `path`, the field and the value."""
        required = ("name", "kind", "filters", "widths")
        optional = tuple(f.name for f in dataclasses.fields(cls) if f.name not in required)
        sj.obj(d, path, required, optional)

        def odd_size(value, field):
            return sj.integer(value, field, minimum=1)

        def width(value, field):
            return sj.integer(value, field, minimum=0)

        checks = {
            "name": lambda v, f: sj.string(v, f),
            "kind": lambda v, f: sj.string(v, f, LAYER_KINDS),
            "filters": lambda v, f: sj.integer(v, f, minimum=1),
            "widths": lambda v, f: tuple(sj.array(v, f, width, min_length=1)),
            "kernel_size": odd_size,
            "kernel_sizes": lambda v, f: tuple(sj.array(v, f, odd_size)),
            "strides": lambda v, f: sj.integer(v, f, minimum=1),
            "activation": lambda v, f: sj.string(v, f, ACTIVATIONS),
            "bypass_limit": _decode_limit,
            "batch_norm": sj.boolean,
            "use_bias": sj.boolean,
            "dropout": lambda v, f: sj.number(v, f, minimum=0.0, maximum=1.0),
        }
        fields = {key: checks[key](value, f"{path}.{key}") for key, value in d.items()}
        try:
            return cls(**fields)
        except (TypeError, ValueError) as e:
            raise sj.RecordError(f"{path}: {e}") from None


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """A MobileNetV2/V3 inverted-residual block: [expansion] -> depthwise -> [SE] -> projection.

    With `residual`, the block's input is added to the projection's output. In a residual
    block the residual connection is the projection's bypass: the projection must have
    bypass_limit 0, so that zero projection filters turn the whole block into the identity
    (how the paper removes a block, Table 8 block 12). Tensors of different widths are added
    by zero-padding the narrower one.
    """

    name: str
    depthwise: LayerSpec
    projection: LayerSpec
    expansion: LayerSpec | None = None
    se: LayerSpec | None = None
    residual: bool = False

    def __post_init__(self):
        expected = {
            "expansion": "expansion",
            "depthwise": "depthwise",
            "se": "se",
            "projection": "projection",
        }
        for field in ("depthwise", "projection"):
            if getattr(self, field) is None:
                raise ValueError(f"{self.name}.{field}: a block needs a {field} layer")
        for field, kind in expected.items():
            layer = getattr(self, field)
            if layer is None:
                continue
            if not isinstance(layer, LayerSpec):
                raise TypeError(f"{self.name}.{field}: expected a LayerSpec, got {layer!r}")
            if layer.kind != kind:
                raise ValueError(f"{layer.name}.kind: {layer.kind!r} in block slot {field!r}")
        if self.residual:
            if self.depthwise.strides != 1:
                raise ValueError(
                    f"{self.name}.residual: a residual block needs stride 1, its depthwise "
                    f"layer has stride {self.depthwise.strides}"
                )
            if self.projection.bypass_limit != 0:
                raise ValueError(
                    f"{self.projection.name}.bypass_limit: {self.projection.bypass_limit} in a "
                    "residual block; must be 0 (the residual connection is the bypass)"
                )

    @property
    def layers(self) -> tuple[LayerSpec, ...]:
        found = (self.expansion, self.depthwise, self.se, self.projection)
        return tuple(layer for layer in found if layer is not None)

    def to_json(self) -> dict:
        d = {"type": "block", "name": self.name, "residual": self.residual}
        for field in ("expansion", "depthwise", "se", "projection"):
            layer = getattr(self, field)
            d[field] = None if layer is None else layer.to_json()
        return d


@dataclasses.dataclass(frozen=True)
class PoolSpec:
    """Global average pooling to 1x1 (channels kept)."""

    name: str = "pool"

    def to_json(self) -> dict:
        return {"type": "pool", "name": self.name}


@dataclasses.dataclass(frozen=True)
class UpsampleSpec:
    """Nearest-neighbour upsampling x2 (channels kept; a dense-prediction decoder's step)."""

    name: str

    def to_json(self) -> dict:
        return {"type": "upsample", "name": self.name}


@dataclasses.dataclass(frozen=True)
class SkipSpec:
    """An additive skip connection: the output of layer `source` is added to the current
    tensor, which is the output of layer `target` (possibly upsampled since).

    The two layers' widths are tied: they offer the same widths and every sub-network
    gives them the same one, and neither ever bypasses channels (bypass_limit 0 or at most
    its smallest width), so the two summed tensors have the same width in every
    sub-network. Both are layers of their own (not inside a block), of kind conv or
    pointwise, and their outputs have the same resolution.
    """

    name: str
    source: str
    target: str

    @property
    def tied(self) -> tuple[str, str]:
        return (self.source, self.target)

    def to_json(self) -> dict:
        return {"type": "skip", "name": self.name, "source": self.source, "target": self.target}


Node = LayerSpec | BlockSpec | PoolSpec | UpsampleSpec | SkipSpec


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
        _validate_network(self)

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
            _node_from_json(node, f"nodes[{i}]")
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
_NODE_TYPES = ("layer", "block", "pool", "upsample", "skip")
_BLOCK_LAYERS = ("expansion", "depthwise", "se", "projection")


def _node_from_json(data, path: str) -> Node:
    """One node of a spec's "nodes" list: a layer, a block, the pool, an upsample, a skip."""
    if not isinstance(data, dict):
        raise sj.fail(path, data, f"an object of one of the types {_NODE_TYPES}")
    node_type = sj.string(data.get("type", "layer"), f"{path}.type", _NODE_TYPES)
    fields = {key: value for key, value in data.items() if key != "type"}
    if node_type == "layer":
        return LayerSpec.from_json(fields, path)
    if node_type == "pool":
        sj.obj(fields, path, optional=("name",))
        return PoolSpec(name=sj.string(fields.get("name", "pool"), f"{path}.name"))
    if node_type == "upsample":
        sj.obj(fields, path, ("name",))
        return UpsampleSpec(name=sj.string(fields["name"], f"{path}.name"))
    if node_type == "skip":
        sj.obj(fields, path, ("name", "source", "target"))
        return SkipSpec(**{key: sj.string(fields[key], f"{path}.{key}") for key in fields})
    sj.obj(fields, path, ("name", "depthwise", "projection"), ("residual", "expansion", "se"))
    parts = {
        part: sj.optional(LayerSpec.from_json, fields.get(part), f"{path}.{part}")
        for part in _BLOCK_LAYERS
    }
    name = sj.string(fields["name"], f"{path}.name")
    residual = sj.boolean(fields.get("residual", False), f"{path}.residual")
    try:
        return BlockSpec(name=name, residual=residual, **parts)
    except (TypeError, ValueError) as e:
        raise sj.RecordError(f"{path}: {e}") from None


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


def _out_size(size: int, strides: int) -> int:
    return -(-size // strides)  # 'same' padding


def _validate_network(spec: NetworkSpec) -> None:
    """Checks that follow the channels and the resolution through the network: names,
    depthwise filters, zero widths that would disconnect the network, residual shapes,
    skips, the classifier and the dense head."""
    if spec.input_size < 1 or spec.input_channels < 1:
        raise ValueError(
            f"{spec.name}: input_size {spec.input_size} and input_channels "
            f"{spec.input_channels} must be positive"
        )
    seen = set()
    channels, size = spec.input_channels, spec.input_size
    pooled = None
    outputs = {}  # skip sources: a top-level conv/pointwise layer -> (channels, size)
    target = None  # the layer whose output the current tensor is (upsampled or not)
    for index, node in enumerate(spec.nodes):
        _check_node_type(index, node)
        if isinstance(node, PoolSpec):
            if pooled:
                raise ValueError(f"{node.name}: the network pools twice")
            pooled, size, target = node, 1, None
        elif isinstance(node, UpsampleSpec | SkipSpec):
            _check_upsample_or_skip(node, seen, pooled)
            if isinstance(node, UpsampleSpec):
                size *= 2
            else:
                _check_skip(spec, node, target, outputs, channels, size)
                target = None
        else:
            channels, size = _walk_layers(node, seen, channels, size, pooled)
            target = None
            if isinstance(node, LayerSpec) and node.kind in SKIP_KINDS and not pooled:
                outputs[node.name] = (channels, size)
                target = node.name
    last = spec.nodes[-1] if spec.nodes else None
    if spec.num_classes is not None:
        _check_classifier(spec, last)
    if spec.dense_channels is not None:
        _check_dense_head(spec, last, pooled, size)


def _check_node_type(index: int, node) -> None:
    if not isinstance(node, LayerSpec | BlockSpec | PoolSpec | UpsampleSpec | SkipSpec):
        raise TypeError(
            f"nodes[{index}]: {node!r} is not a LayerSpec, BlockSpec, PoolSpec, "
            "UpsampleSpec or SkipSpec"
        )


def _check_upsample_or_skip(node: UpsampleSpec | SkipSpec, seen: set, pooled) -> None:
    """An upsample or a skip: a name of its own (added to `seen`), before the global pool."""
    if node.name in seen:
        raise ValueError(f"{node.name}: duplicate name (layer, upsample and skip names)")
    seen.add(node.name)
    if pooled:
        raise ValueError(
            f"{node.name}: {node.to_json()['type']} after the global pool; the "
            "classification head allows only 'pointwise' and 'fc' layers"
        )


def _walk_layers(node: LayerSpec | BlockSpec, seen: set, channels: int, size: int, pooled):
    """Checks the layers of `node` (a layer or a block), adding their names to `seen`;
    returns the (channels, size) of the node's output at full width."""
    block_in = channels
    layers = node.layers if isinstance(node, BlockSpec) else (node,)
    for layer in layers:
        if layer.name in seen:
            raise ValueError(f"{layer.name}: duplicate layer name")
        seen.add(layer.name)
        _check_layer(node, layer, channels, pooled)
        if layer.kind not in ("se", "depthwise"):
            channels = int(max(min(channels, layer.bypass_limit), layer.filters))
        if layer.kind != "fc":
            size = _out_size(size, layer.strides)
    if isinstance(node, BlockSpec) and node.residual and node.projection.filters != block_in:
        raise ValueError(
            f"{node.name}.residual: the block's input has {block_in} channels but its "
            f"projection has {node.projection.filters} filters; a residual block must "
            "keep the width"
        )
    return channels, size


def _check_layer(node: LayerSpec | BlockSpec, layer: LayerSpec, channels: int, pooled) -> None:
    """One layer of `node` whose input has `channels` channels."""
    residual_projection = isinstance(node, BlockSpec) and node.residual and layer is node.projection
    if layer.kind == "depthwise" and layer.filters != channels:
        raise ValueError(
            f"{layer.name}.filters: {layer.filters}, but a depthwise layer has one "
            f"filter per input channel and its input has {channels} channels"
        )
    if (
        0 in layer.widths
        and layer.kind != "se"
        and layer.bypass_limit == 0
        and not residual_projection
    ):
        raise ValueError(
            f"{layer.name}.widths: width 0 is allowed but bypass_limit is 0, so removing "
            "every filter would disconnect the network; give it a bypass limit > 0"
        )
    if layer.kind == "fc" and not pooled:
        raise ValueError(f"{layer.name}: an fc layer must follow the global pool")
    if pooled and (layer.kind != "fc" and layer.kind != "pointwise"):
        raise ValueError(
            f"{layer.name}.kind: {layer.kind!r} after the global pool; allowed are "
            "'pointwise' and 'fc'"
        )


def _check_classifier(spec: NetworkSpec, last) -> None:
    if spec.dense_channels is not None:
        raise ValueError(
            f"{spec.name}: num_classes {spec.num_classes} and dense_channels "
            f"{spec.dense_channels} are both set; a network is a classifier or a "
            "dense predictor"
        )
    if not (isinstance(last, LayerSpec) and last.kind == "fc"):
        raise ValueError(f"{spec.name}: num_classes is set but the last node is not an fc")
    if last.widths != (spec.num_classes,) or last.filters != spec.num_classes:
        raise ValueError(
            f"{last.name}.widths: {last.widths}; the classifier must keep all "
            f"{spec.num_classes} classes"
        )


SKIP_KINDS = ("conv", "pointwise")


def _check_skip(spec, skip: SkipSpec, target, outputs, channels: int, size: int) -> None:
    """A skip joins two top-level conv/pointwise layers of one resolution and one full
    width whose widths are tied and never bypass (so the summed widths stay equal)."""
    if skip.target != target:
        here = f"here {target!r}" if target else "here none"
        raise ValueError(
            f"{skip.name}.target: {skip.target!r} is not allowed; allowed: the conv or "
            f"pointwise layer right before the skip (only upsample nodes may lie between), {here}"
        )
    if skip.source not in outputs or skip.source == skip.target:
        raise ValueError(
            f"{skip.name}.source: {skip.source!r} is not allowed; allowed: a conv or pointwise "
            "layer of its own (not inside a block) before the skip's target"
        )
    source_channels, source_size = outputs[skip.source]
    if source_size != size:
        raise ValueError(
            f"{skip.name}: adds {skip.source!r} ({source_size}x{source_size}) to "
            f"{skip.target!r} ({size}x{size} at the skip); a skip joins tensors of one "
            "resolution"
        )
    if source_channels != channels:
        raise ValueError(
            f"{skip.name}: adds {skip.source!r} ({source_channels} channels) to "
            f"{skip.target!r} ({channels} channels); a skip joins tensors of one width"
        )
    source, joined = spec.layer(skip.source), spec.layer(skip.target)
    if source.widths != joined.widths:
        raise ValueError(
            f"{skip.name}: widths of {source.name!r} {list(source.widths)} and of "
            f"{joined.name!r} {list(joined.widths)} differ; a skip ties the widths of the "
            "layers it joins, so they must offer the same widths"
        )
    for layer in (source, joined):
        if layer.bypass_limit != 0 and layer.bypass_limit > layer.widths[0]:
            raise ValueError(
                f"{layer.name}.bypass_limit: {_encode_limit(layer.bypass_limit)} is not allowed "
                f"for a layer joined by skip {skip.name!r}; allowed: 0 or at most its smallest "
                f"width {layer.widths[0]} (it must output exactly its width in every sub-network)"
            )


def _check_dense_head(spec: NetworkSpec, last, pooled, size: int) -> None:
    d = spec.dense_channels
    if pooled:
        raise ValueError(
            f"{pooled.name}: a global pool in a dense-prediction network (dense_channels {d}); "
            "its output is a map at the input resolution"
        )
    if not (isinstance(last, LayerSpec) and last.kind in SKIP_KINDS):
        name = getattr(last, "name", None)
        raise ValueError(
            f"{spec.name}: the last node {name!r} is not a conv or pointwise layer; a dense "
            f"head ends with one that outputs the {d}-channel map"
        )
    if last.widths != (d,) or last.filters != d or last.bypass_limit != 0:
        raise ValueError(
            f"{last.name}: filters {last.filters}, widths {list(last.widths)}, bypass_limit "
            f"{_encode_limit(last.bypass_limit)}; the dense head must output exactly "
            f"dense_channels={d} channels: filters {d}, widths [{d}], bypass_limit 0"
        )
    if size != spec.input_size:
        raise ValueError(
            f"{spec.name}: the dense output is {size}x{size} but the input is "
            f"{spec.input_size}x{spec.input_size}; a dense head outputs a map at the input "
            "resolution"
        )
