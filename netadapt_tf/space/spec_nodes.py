"""The nodes of a NetworkSpec, as records with their JSON: `LayerSpec` (one convolution-like
layer), `BlockSpec` (a MobileNetV2/V3 inverted-residual block), `PoolSpec` (global average
pool), `UpsampleSpec` (nearest-neighbour x2) and `SkipSpec` (adds an earlier layer's output,
the two layers' widths tied), each checking its own fields; `node_from_json` reads any of
them. The checks that follow channels and resolution through a whole network are
network_checks.py's; the network itself is spec.py's `NetworkSpec`.
"""

import dataclasses
import math

from netadapt_tf.common import strict_json as sj

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


def encode_limit(value: float):
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
        d["bypass_limit"] = encode_limit(self.bypass_limit)
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


_NODE_TYPES = ("layer", "block", "pool", "upsample", "skip")
_BLOCK_LAYERS = ("expansion", "depthwise", "se", "projection")


def node_from_json(data, path: str) -> Node:
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
