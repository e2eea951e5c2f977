"""The import report: every Keras operation, the spec node it became, its search unit,
what is searchable and what is pinned and why.

Coupled channels are the spec's search units (search/units.py): the projections writing
into one residual stream shrink together; a depthwise layer keeps min(its width, the
channels its feeder keeps) and an SE gate scales exactly the channels of its block, so
neither adds channels of its own to couple. The input's channels and the classifier's
outputs are never searched.
"""

import math

from netadapt_tf.search.units import search_units


def _why_pinned(layer, pinned: dict) -> str | None:
    if layer.name in pinned:
        return pinned[layer.name]
    if layer.kind == "fc":
        return "the classifier's outputs are the classes"
    if len(layer.widths) == 1 and len(layer.kernel_sizes) == 1:
        return "one width and one kernel size (search options)"
    return None


def _search(layer) -> dict:
    limit = layer.bypass_limit
    return {
        "widths": list(layer.widths),
        "kernel_sizes": list(layer.kernel_sizes),
        "bypass_limit": "inf" if math.isinf(limit) else int(limit),
    }


def build_report(result) -> dict:
    spec, mapped, assembled = result.spec, result.mapped, result.assembled
    units = search_units(spec)
    unit_of = {name: unit.name for unit in units for name in unit.layers}
    layers = {layer.name: layer for layer in spec.layers()}
    pinned = {}
    for layer in spec.layers():
        why = _why_pinned(layer, assembled.pinned)
        if why:
            pinned[layer.name] = why
    rows = []
    for path, cls in mapped.classes.items():
        what = mapped.notes.get(path, "folded into the layer before it")
        row = {"path": path, "class": cls}
        if isinstance(what, int):
            name = assembled.names[what]
            row["node"] = name
            row["unit"] = unit_of.get(name, "")
            row["search"] = f"pinned: {pinned[name]}" if name in pinned else _search(layers[name])
        else:
            row["node"] = what
        rows.append(row)
    m = mapped
    return {
        "source": result.source,
        "spec": spec.name,
        "fingerprint": spec.fingerprint(),
        "macs": result.counts.macs,
        "params": result.counts.params,
        "keras_macs": result.keras_counts.macs,
        "keras_folded_params": result.keras_counts.params,
        "keras_params": result.keras_params,
        "relative_diff": result.relative_diff,
        "input_size": spec.input_size,
        "num_classes": spec.num_classes,
        "preprocessing": {
            "scale": [float(v) for v in m.scale],
            "offset": [float(v) for v in m.offset],
            "note": "x * scale + offset per channel, applied before the imported network",
        },
        "search_units": [unit.to_json() for unit in units],
        "pinned": pinned,
        "layers": rows,
    }
