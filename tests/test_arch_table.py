"""The architecture table (paper Tables 8-10 layout) of known archs, row by row."""

from fastdepth_helpers import table_10_arch

from netadapt_tf import builders
from netadapt_tf.space.arch import full_arch
from netadapt_tf.space.arch_table import architecture_markdown, architecture_table, table_rows


def _v3():
    return builders.build(
        "netadaptv2_mobilenet_v3", input_size=16, num_classes=4, width_multiplier=0.25
    )


def _v1():
    return builders.build("mobilenet_v1", input_size=16, num_classes=4, width_multiplier=0.25)


def test_blocks_get_the_exp_dw_pw_se_columns_and_a_removed_block_shows_as_identity():
    spec = _v3()
    arch = full_arch(spec).with_choices(
        {
            "stem": {"width": 12},
            "block2/se": {"width": 0},
            "block3/projection": {"width": 0},
            "block4/depthwise": {"width": 16, "kernel_size": 3},
        }
    )
    lines = architecture_table(spec, arch).splitlines()
    assert lines[0] == (
        "| Index | Name | Type | T | Kernel Size | Stride | BN | Act | Exp | DW | PW | SE | Note |"
    )
    assert lines[2] == "| 1 | stem | conv | 8 | 3 | 2 | ✓ | HS | 12 | - | - | - |  |"
    assert lines[3] == "| 2 | block1 | mnv3 block | 8 | 5 | 1 | ✓ | RE | 16 | 16 | 8 | 8 |  |"
    assert lines[4] == "| 3 | block2 | mnv3 block | 16 | 5 | 2 | ✓ | RE | 32 | 32 | 8 | 0 |  |"
    assert lines[5] == (
        "| 4 | block3 | mnv3 block | 16 | 0 | 1 | ✓ | RE | 0 | 0 | 0 | 0 | removed (identity) |"
    )
    assert lines[6] == "| 5 | block4 | mnv3 block | 32 | 3 | 2 | ✓ | RE | 32 | 16 | 16 | 8 |  |"
    assert lines[-4] == "| 19 | last_conv | pw | 128 | 1 | 1 | ✓ | HS | 256 | - | - | - |  |"
    assert lines[-3] == "| 20 | pool | global avg pool | - | - | - | - | - | - | - | - | - |  |"
    assert lines[-2] == "| 21 | pre_logits | pw | 1024 | 1 | 1 | - | HS | 2048 | - | - | - |  |"
    assert lines[-1] == "| 22 | logits | fc | - | 1 | 1 | - | - | 4 | - | - | - |  |"
    assert len(table_rows(spec, arch)) == len(spec.nodes)


def test_single_layers_get_one_filters_column_and_a_bypassed_layer_is_noted():
    spec = _v1()
    arch = full_arch(spec).with_layer("block3/pointwise", width=0)
    lines = architecture_table(spec, arch).splitlines()
    assert (
        lines[0] == "| Index | Name | Type | T | Kernel Size | Stride | BN | Act | Filters | Note |"
    )
    assert lines[2] == "| 1 | stem | conv | 4 | 3 | 2 | ✓ | RE | 8 |  |"
    assert lines[3] == "| 2 | block1/depthwise | dw | ∞ | 3 | 1 | ✓ | RE | 8 |  |"
    assert lines[8] == "| 7 | block3/pointwise | pw | 8 | 1 | 1 | ✓ | RE | 0 | bypass only |"
    # The next depthwise layer sees the 8 bypassed channels only: one filter per channel.
    assert lines[9] == "| 8 | block4/depthwise | dw | ∞ | 3 | 2 | ✓ | RE | 8 |  |"
    assert lines[-1] == "| 29 | logits | fc | - | 1 | 1 | - | - | 4 |  |"


def test_markdown_document_names_the_super_network():
    spec = _v1()
    text = architecture_markdown(spec, full_arch(spec), "The discovered network")
    assert text.startswith("# The discovered network\n\n")
    assert f"`{spec.fingerprint()}`" in text
    assert text.endswith(architecture_table(spec, full_arch(spec)))


# The paper's Table 10 (Index, Type, T, Kernel Size, Stride, Filter), as printed.
PAPER_TABLE_10 = """
1 conv 16 3 2 24|2 dw ∞ 3 1 20|3 pw 16 1 1 48|4 dw ∞ 3 2 48|5 pw 32 1 1 96|6 dw ∞ 3 1 96
7 pw 32 1 1 112|8 dw ∞ 3 2 112|9 pw 64 1 1 256|10 dw ∞ 3 1 256|11 pw 64 1 1 192
12 dw ∞ 3 2 192|13 pw 128 1 1 448|14 dw ∞ 3 1 448|15 pw 128 1 1 448|16 dw ∞ 3 1 448
17 pw 128 1 1 384|18 dw ∞ 3 1 384|19 pw 128 1 1 512|20 dw ∞ 3 1 512|21 pw 128 1 1 384
22 dw ∞ 3 1 384|23 pw 128 1 1 448|24 dw ∞ 3 2 448|25 pw 256 1 1 384|26 dw ∞ 3 1 384
27 pw 256 1 1 768|28 dw ∞ 5 1 768|29 pw 256 1 1 384|30 upsample - - - -|31 dw ∞ 5 1 320
32 pw 128 1 1 192|33 upsample - - - -|34 dw ∞ 5 1 160|35 pw 64 1 1 112|36 upsample - - - -
37 dw ∞ 3 1 112|38 pw 32 1 1 48|39 upsample - - - -|40 dw ∞ 3 1 28|41 pw 16 1 1 24
42 upsample - - - -|43 pw 0 1 1 1
"""


def test_the_table_10_network_gives_the_papers_table_10_row_for_row():
    spec = builders.build("fastdepth", num_widths=17)  # 17 widths hold Table 10's 28
    rows = table_rows(spec, table_10_arch(spec))
    numbered = [r for r in rows if r.index is not None]
    got = [
        " ".join([str(r.index), r.type, r.t, r.kernel, r.stride, r.filters["Filters"]])
        for r in numbered
    ]
    assert got == PAPER_TABLE_10.replace("\n", "|").strip("|").split("|")
    # Every layer has BN and ReLU, upsamplings neither (the table's caption).
    assert all(
        (r.bn, r.act) == (("-", "-") if r.type == "upsample" else ("✓", "RE")) for r in numbered
    )
    # The skips, which Table 10 leaves out, are unnumbered add rows after their upsampling.
    adds = [(rows[i - 1].name, r.name, r.note) for i, r in enumerate(rows) if r.index is None]
    assert adds == [
        ("decode2/upsample", "decode2/skip", "adds block5/pointwise (192 channels)"),
        ("decode3/upsample", "decode3/skip", "adds block3/pointwise (112 channels)"),
        ("decode4/upsample", "decode4/skip", "adds block1/pointwise (48 channels)"),
    ]
    table = architecture_table(spec, table_10_arch(spec)).splitlines()
    assert (
        table[0] == "| Index | Name | Type | T | Kernel Size | Stride | BN | Act | Filters | Note |"
    )
    assert "| 30 | decode1/upsample | upsample | - | - | - | - | - | - |  |" in table
    assert (
        "|  | decode2/skip | add | - | - | - | - | - | - | adds block5/pointwise (192 channels) |"
        in table
    )
