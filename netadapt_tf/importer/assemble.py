"""The network spec of mapped layers: blocks found, search settings applied.

Residual spans become residual blocks ([1x1 expansion] -> depthwise -> [SE] -> 1x1
projection); outside them, a depthwise layer followed by an optional SE gate and a linear
1x1 projection (with the 1x1 layer right before it as its expansion) is a block without
residual, as the builders write MobileNetV2/V3; every other layer is a layer of its own.
Widths, superkernels and T follow the builders' defaults (builders.common.LayerFactory);
layers matched by a pin pattern keep their full width, kernel and no bypass.
"""

import dataclasses
import math
import re

from netadapt_tf.builders.common import LayerFactory
from netadapt_tf.importer.mapping import Found, Mapped
from netadapt_tf.space.spec import BlockSpec, LayerSpec, NetworkSpec, PoolSpec


@dataclasses.dataclass(frozen=True)
class SearchOptions:
    """How the imported layers are searched (each a flag of tools/import_model.py)."""

    num_widths: int = 9
    channel_bypass: bool = True
    bypass_base: int = 8
    superkernel: bool = True
    tie_depthwise: bool = False
    pin: tuple[str, ...] = ()

    def origin(self, source: str) -> tuple:
        return (
            ("builder", "import"),
            ("source", source),
            ("num_widths", self.num_widths),
            ("channel_bypass", self.channel_bypass),
            ("bypass_base", self.bypass_base),
            ("superkernel", self.superkernel),
            ("tie_depthwise", self.tie_depthwise),
            ("pin", ",".join(self.pin)),
        )


@dataclasses.dataclass(frozen=True)
class Assembled:
    spec: NetworkSpec
    names: tuple[str, ...]  # the spec layer name of each mapped layer
    pinned: dict  # spec layer name -> why it is pinned


def _is_1x1(layer: Found) -> bool:
    return layer.kind == "pointwise" and not layer.pooled


def _groups(mapped: Mapped):
    """(slots, residual, add path) per node: slots maps block slots to mapped indices, or
    {"layer": i} for a layer of its own."""
    layers, n = mapped.layers, mapped.pool_at if mapped.pool_at is not None else len(mapped.layers)
    spans = {first: (last, path) for first, last, path in mapped.residual}
    starts = set(spans)
    i, out = 0, []
    while i < len(layers):
        if i in spans:
            last, path = spans[i]
            slots = _block_slots(layers, i, last)
            if slots is None:
                kinds = [layers[j].kind for j in range(i, last + 1)]
                raise ValueError(
                    f"{path}: a residual add around layers {kinds} "
                    f"({layers[i].path} .. {layers[last].path}); the spec's residual blocks "
                    "are [1x1 expansion] -> depthwise -> [SE] -> linear 1x1 projection"
                )
            out.append((slots, True, path))
            i = last + 1
            continue
        found = None
        if i < n:
            for last in range(i + 1, min(i + 4, n)):
                if any(j in starts for j in range(i + 1, last + 1)):
                    break
                slots = _block_slots(layers, i, last)
                if slots is not None:
                    found = (slots, last)
                    break
        if found:
            out.append((found[0], False, None))
            i = found[1] + 1
            continue
        if layers[i].kind == "se":
            raise ValueError(
                f"{layers[i].path}: an SE gate outside an inverted-residual block "
                "(depthwise -> SE -> 1x1 projection); the spec has SE gates only in blocks"
            )
        out.append(({"layer": i}, False, None))
        i += 1
    return out


def _block_slots(layers, first: int, last: int):
    part = layers[first : last + 1]
    slots = {}
    j = 0
    if len(part) > 2 and _is_1x1(part[0]) and part[1].kind == "depthwise":
        slots["expansion"] = first
        j = 1
    if j >= len(part) or part[j].kind != "depthwise":
        return None
    slots["depthwise"] = first + j
    j += 1
    if j < len(part) and part[j].kind == "se":
        slots["se"] = first + j
        j += 1
    if j != len(part) - 1 or not _is_1x1(part[j]) or part[j].activation != "linear":
        return None
    slots["projection"] = first + j
    return slots


def assemble(mapped: Mapped, options: SearchOptions, source: str) -> Assembled:
    """The spec of `mapped` with `options`' search settings."""
    factory = LayerFactory(options.num_widths, options.channel_bypass, options.bypass_base)
    pins = [re.compile(p) for p in options.pin]
    layers = mapped.layers
    names = [None] * len(layers)
    pinned = {}
    strides = _total_strides(layers)
    nodes, block = [], 0
    for slots, residual, _ in _groups(mapped):
        if "layer" in slots:
            i = slots["layer"]
            if mapped.pool_at == i:
                nodes.append(PoolSpec("pool"))
            name = layers[i].path
            kind = "fc" if i == len(layers) - 1 else layers[i].kind
            spec = _layer(factory, options, layers[i], name, kind, strides[i], False)
            nodes.append(_pin(spec, layers[i], pins, pinned))
            names[i] = name
            continue
        if mapped.pool_at is not None and mapped.pool_at in slots.values():
            nodes.append(PoolSpec("pool"))
        block += 1
        parts = {}
        for slot, i in slots.items():
            name = f"block{block}/{slot}"
            kind = slot if slot in ("expansion", "projection", "se") else "depthwise"
            is_res_proj = residual and slot == "projection"
            spec = _layer(factory, options, layers[i], name, kind, strides[i], is_res_proj)
            parts[slot] = _pin(spec, layers[i], pins, pinned)
            names[i] = name
        nodes.append(BlockSpec(name=f"block{block}", residual=residual, **parts))
    if mapped.pool_at is not None and mapped.pool_at >= len(layers):
        raise ValueError("output: a global pool with no classifier after it")
    fc = layers[-1]
    spec = NetworkSpec(
        name=f"imported_{re.sub(r'[^A-Za-z0-9_]', '_', source)}",
        input_size=mapped.input_size,
        input_channels=mapped.input_channels,
        num_classes=fc.filters,
        nodes=tuple(nodes),
        origin=options.origin(source),
    )
    return Assembled(spec, tuple(names), pinned)


def _total_strides(layers) -> list[int]:
    total, out = 1, []
    for layer in layers:
        total *= layer.strides
        out.append(total)
    return out


def _layer(factory, options, found: Found, name, kind, total_stride, residual_projection):
    common = {
        "activation": found.activation or "linear",
        "use_bias": found.use_bias,
    }
    if kind == "fc":
        spec = factory.classifier(name, found.filters, found.dropout)
        return dataclasses.replace(spec, use_bias=found.use_bias)
    if kind == "se":
        return factory.layer(name, "se", found.filters, batch_norm=False, **common)
    if kind == "depthwise":
        spec = factory.depthwise(
            name, found.filters, found.kernel_size, found.strides, common["activation"]
        )
        if not options.superkernel:
            spec = dataclasses.replace(spec, kernel_sizes=(found.kernel_size,))
        if options.tie_depthwise:
            spec = dataclasses.replace(spec, widths=(found.filters,))
        return dataclasses.replace(spec, use_bias=found.use_bias, batch_norm=found.bn is not None)
    limit = 0 if residual_projection else None
    return factory.layer(
        name,
        kind,
        found.filters,
        total_stride,
        bypass_limit=limit,
        kernel_size=found.kernel_size,
        strides=found.strides,
        batch_norm=found.bn is not None,
        residual_projection=residual_projection,
        **common,
    )


def _pin(spec: LayerSpec, found: Found, pins, pinned: dict) -> LayerSpec:
    hit = next((p for p in pins if p.search(found.path) or p.search(spec.name)), None)
    if hit is None:
        return spec
    pinned[spec.name] = f"--pin={hit.pattern}"
    # A depthwise layer keeps passing through what it does not filter (T = inf).
    limit = math.inf if spec.kind == "depthwise" and spec.bypass_limit else 0
    return dataclasses.replace(
        spec, widths=(spec.filters,), kernel_sizes=(spec.kernel_size,), bypass_limit=limit
    )
