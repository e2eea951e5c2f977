"""MACs and parameters of sub-networks as reports: per layer, in total, and over samples.

Per-layer rows come from subnet.resolve and macs.layer_counts, totals from macs.count, so a
report shows the same numbers as the MAC counter the search uses. `sample_counts` shows the
spread of a search space: the costs of random archs drawn as tools/sample_arch.py draws them
(random_arch with np.random.default_rng(seed); the first draw is sample_arch's arch).
"""

import dataclasses
import statistics

import numpy as np

from netadapt_tf.space.arch import Arch, random_arch
from netadapt_tf.space.macs import Counts, count, layer_counts
from netadapt_tf.space.spec import NetworkSpec
from netadapt_tf.space.subnet import (
    ResolvedBlock,
    ResolvedLayer,
    ResolvedSkip,
    ResolvedUpsample,
    resolve,
)


@dataclasses.dataclass(frozen=True)
class LayerCost:
    """One layer of a sub-network. `kept` is the number of filters that exist (depthwise:
    min(M, C); SE: the squeeze width), `bypassed` the input channels passed through, `note`
    says why a layer costs nothing ('bypass only', 'SE off', 'block removed'). A
    dense-prediction network's upsampling and skip adds get rows of their own (kind
    'upsample' or 'skip', no MACs counted: macs.py), so the table shows where the resolution
    doubles and which layers a skip joins."""

    name: str
    kind: str
    in_channels: int
    kept: int
    bypassed: int
    out_channels: int
    kernel_size: int
    macs: int
    params: int
    note: str = ""


@dataclasses.dataclass(frozen=True)
class CostReport:
    network: str
    fingerprint: str
    macs: int
    params: int
    layers: tuple[LayerCost, ...]

    def to_json(self) -> dict:
        return {
            "network": self.network,
            "fingerprint": self.fingerprint,
            "macs": self.macs,
            "params": self.params,
            "layers": [dataclasses.asdict(row) for row in self.layers],
        }


def _note(r, removed: bool) -> str:
    if removed:
        return "block removed"
    if r.width == 0:
        return "SE off" if r.spec.kind == "se" else "bypass only"
    return ""


def cost_report(spec: NetworkSpec, arch: Arch) -> CostReport:
    """Per-layer and total MACs and (BN-folded) parameters of `arch`; validates it."""
    sub = resolve(spec, arch)
    rows = []
    for node in sub.nodes:
        if isinstance(node, ResolvedUpsample):
            c = node.out_channels
            note = f"nearest x2: {node.in_size}x{node.in_size} -> {node.out_size}x{node.out_size}"
            rows.append(LayerCost(node.spec.name, "upsample", c, 0, 0, c, 0, 0, 0, note))
        elif isinstance(node, ResolvedSkip):
            c = node.out_channels
            note = f"adds {node.spec.source} to {node.spec.target}"
            rows.append(LayerCost(node.spec.name, "skip", c, 0, 0, c, 0, 0, 0, note))
        elif isinstance(node, ResolvedLayer | ResolvedBlock):
            block = isinstance(node, ResolvedBlock)
            rows += [
                _layer_row(r, block and node.removed) for r in (node.layers if block else (node,))
            ]
    total = count(spec, arch)
    return CostReport(spec.name, spec.fingerprint(), total.macs, total.params, tuple(rows))


def _layer_row(r: ResolvedLayer, is_removed: bool) -> LayerCost:
    cost = Counts(0, 0) if is_removed else layer_counts(r)
    return LayerCost(
        name=r.name,
        kind=r.spec.kind,
        in_channels=r.in_channels,
        kept=r.width,
        bypassed=r.bypassed,
        out_channels=r.out_channels,
        kernel_size=r.kernel_size,
        macs=cost.macs,
        params=cost.params,
        note=_note(r, is_removed),
    )


_COLUMNS = (
    ("layer", "name"),
    ("kind", "kind"),
    ("in", "in_channels"),
    ("kept", "kept"),
    ("bypassed", "bypassed"),
    ("out", "out_channels"),
    ("kernel", "kernel_size"),
    ("MACs", "macs"),
    ("params", "params"),
    ("note", "note"),
)


def format_table(report: CostReport) -> str:
    """The per-layer rows as an aligned text table (names left, numbers right)."""
    cells = [[title for title, _ in _COLUMNS]]
    for row in report.layers:
        cells.append([str(getattr(row, field)) for _, field in _COLUMNS])
    widths = [max(len(line[i]) for line in cells) for i in range(len(_COLUMNS))]
    lines = []
    for line in cells:
        parts = []
        for i, cell in enumerate(line):
            text_column = _COLUMNS[i][1] in ("name", "kind", "note")
            parts.append(cell.ljust(widths[i]) if text_column else cell.rjust(widths[i]))
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def sample_archs(spec: NetworkSpec, num_samples: int, seed: int) -> list[Arch]:
    """`num_samples` random archs of `spec` from one np.random.default_rng(seed)."""
    if num_samples < 0:
        raise ValueError(f"num_samples: {num_samples} must be >= 0")
    rng = np.random.default_rng(seed)
    return [random_arch(spec, rng) for _ in range(num_samples)]


def sample_counts(spec: NetworkSpec, num_samples: int, seed: int) -> list[Counts]:
    """MACs and parameters of `sample_archs(spec, num_samples, seed)`."""
    return [count(spec, arch) for arch in sample_archs(spec, num_samples, seed)]


def spread(counts: list[Counts]) -> dict:
    """min/median/max of MACs and of parameters over `counts` (non-empty)."""
    if not counts:
        raise ValueError("spread: no samples")

    def summary(values):
        return {"min": min(values), "median": statistics.median(values), "max": max(values)}

    return {
        "macs": summary([c.macs for c in counts]),
        "params": summary([c.params for c in counts]),
    }


def millions(value: float) -> str:
    """A count for people: 568740352 -> '568.74 M'."""
    return f"{value / 1e6:,.2f} M"
