"""A sub-network as a Markdown table, in the layout of the paper's Tables 8-10.

One row per node of the spec: a single layer, an inverted-residual block or the global pool.
The numbers come from subnet.resolve, so they are what the exported model holds: filters
kept (for depthwise layers min(M, C)), the chosen kernel size, the spec's T, stride, batch
normalization and activation. Networks with blocks get the columns of Tables 8 and 9 (Exp,
DW, PW, SE; a single layer's filters go under Exp, as in the paper); networks of single
layers the one Filters column of Table 10. "-" marks what the network does not have; 0 a
layer that keeps no filter. A residual block whose projection keeps no filter is the
identity and is shown with kernel 0 and 0 filters, noted "removed (identity)".

Dense-prediction networks (Table 10) add an `upsample` row per nearest-neighbour x2
upsampling ("-" in every other column, as in the paper) and an `add` row per skip
connection, noting the layer it adds; Table 10 leaves the skips out, so `add` rows take no
index and the indices stay the paper's.
"""

import dataclasses
import math

from netadapt_tf.space.arch import Arch
from netadapt_tf.space.spec import BlockSpec, NetworkSpec
from netadapt_tf.space.subnet import (
    ResolvedBlock,
    ResolvedLayer,
    ResolvedPool,
    ResolvedSkip,
    ResolvedUpsample,
    resolve,
)

ACTIVATIONS = {
    "linear": "-",
    "relu": "RE",
    "relu6": "RE6",
    "hard_swish": "HS",
    "hard_sigmoid": "HSIG",
    "swish": "SW",
    "sigmoid": "SIG",
}
KINDS = {"conv": "conv", "depthwise": "dw", "pointwise": "pw", "fc": "fc"}
BLOCK_COLUMNS = ("Exp", "DW", "PW", "SE")


@dataclasses.dataclass(frozen=True)
class TableRow:
    """One row; `filters` maps the filter columns (Exp/DW/PW/SE or Filters) to cells;
    `index` None: a row outside the paper's numbering (a skip's add)."""

    index: int | None
    name: str
    type: str
    t: str
    kernel: str
    stride: str
    bn: str
    act: str
    filters: dict
    note: str = ""


def _t(value: float) -> str:
    return "∞" if math.isinf(value) else str(int(value))


def _layer_row(index: int, r: ResolvedLayer, column: str) -> TableRow:
    spec = r.spec
    return TableRow(
        index=index,
        name=spec.name,
        type=KINDS.get(spec.kind, spec.kind),
        t="-" if spec.kind == "fc" else _t(spec.bypass_limit),
        kernel=str(r.kernel_size),
        stride=str(spec.strides),
        bn="✓" if spec.batch_norm else "-",
        act=ACTIVATIONS[spec.activation],
        filters={column: str(r.width)},
        note="bypass only" if r.width == 0 else "",
    )


def _block_row(index: int, r: ResolvedBlock) -> TableRow:
    block: BlockSpec = r.spec
    resolved = {layer.spec.name: layer for layer in r.layers}
    cells = {}
    for column, layer in zip(
        BLOCK_COLUMNS, (block.expansion, block.depthwise, block.projection, block.se), strict=True
    ):
        if layer is None:
            cells[column] = "-"
        else:
            cells[column] = "0" if r.removed else str(resolved[layer.name].width)
    # One T per block, as in the paper: the one of its 1x1 layers (depthwise layers have
    # T = inf, and a residual projection 0).
    limits = [x.bypass_limit for x in (block.expansion, block.projection) if x is not None]
    depthwise = resolved[block.depthwise.name]
    return TableRow(
        index=index,
        name=block.name,
        type="mnv3 block" if block.se is not None else "mnv2 block",
        t=_t(max(limits)),
        kernel="0" if r.removed else str(depthwise.kernel_size),
        stride=str(block.depthwise.strides),
        bn="✓" if block.depthwise.batch_norm else "-",
        act=ACTIVATIONS[block.depthwise.activation],
        filters=cells,
        note="removed (identity)" if r.removed else "",
    )


def table_rows(spec: NetworkSpec, arch: Arch) -> tuple[TableRow, ...]:
    """The rows of the table of `arch` (validated against `spec`), in network order."""
    sub = resolve(spec, arch)
    has_blocks = any(isinstance(node, BlockSpec) for node in spec.nodes)
    column = "Exp" if has_blocks else "Filters"
    columns = BLOCK_COLUMNS if has_blocks else ("Filters",)
    rows, index = [], 0
    dash = dict.fromkeys(columns, "-")
    for node in sub.nodes:
        if isinstance(node, ResolvedSkip):
            note = f"adds {node.spec.source} ({node.out_channels} channels)"
            rows.append(TableRow(None, node.spec.name, "add", *"-----", dash, note))
            continue
        index += 1
        if isinstance(node, ResolvedPool):
            rows.append(TableRow(index, node.spec.name, "global avg pool", *"-----", dash))
        elif isinstance(node, ResolvedUpsample):
            rows.append(TableRow(index, node.spec.name, "upsample", *"-----", dash))
        elif isinstance(node, ResolvedLayer):
            row = _layer_row(index, node, column)
            rows.append(dataclasses.replace(row, filters={c: "-" for c in columns} | row.filters))
        else:
            rows.append(_block_row(index, node))
    return tuple(rows)


def architecture_table(spec: NetworkSpec, arch: Arch) -> str:
    """The Markdown table of `arch` (a sub-network of `spec`), ending with a newline."""
    rows = table_rows(spec, arch)
    columns = list(rows[0].filters) if rows else []
    header = ["Index", "Name", "Type", "T", "Kernel Size", "Stride", "BN", "Act", *columns]
    header.append("Note")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        number = "" if row.index is None else str(row.index)
        cells = [number, row.name, row.type, row.t, row.kernel, row.stride, row.bn]
        cells += [row.act, *(row.filters[c] for c in columns), row.note]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def architecture_markdown(spec: NetworkSpec, arch: Arch, title: str | None = None) -> str:
    """A small Markdown document: a title, what the arch belongs to, and its table."""
    title = title or f"Architecture of a sub-network of {spec.name}"
    return (
        f"# {title}\n\n"
        f"Super-network `{spec.name}` (fingerprint `{spec.fingerprint()}`), input "
        f"{spec.input_size}x{spec.input_size}x{spec.input_channels}. T: channel-bypass limit; "
        'kernel and filters as kept by the arch ("-": not in the network, 0: no filter '
        "kept).\n\n" + architecture_table(spec, arch)
    )
