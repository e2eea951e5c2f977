"""Cost reports agree with the MAC counter; parity verdicts read differences against scale."""

import math

import numpy as np
import pytest
from conftest import small_spec

from netadapt_tf.graphs.parity import Parity
from netadapt_tf.space import cost_report
from netadapt_tf.space.arch import full_arch, random_arch
from netadapt_tf.space.macs import count


@pytest.fixture(scope="module")
def spec():
    return small_spec("netadaptv2_mobilenet_v3")


def test_rows_add_up_to_the_mac_counter(spec):
    rng = np.random.default_rng(0)
    for arch in [full_arch(spec)] + [random_arch(spec, rng) for _ in range(5)]:
        report = cost_report.cost_report(spec, arch)
        total = count(spec, arch)
        assert (report.macs, report.params) == (total.macs, total.params)
        assert sum(row.macs for row in report.layers) == total.macs
        assert sum(row.params for row in report.layers) == total.params
        assert [row.name for row in report.layers] == list(spec.layer_names())


def test_removed_block_costs_nothing_and_says_why(spec):
    block = next(node for node in spec.nodes if getattr(node, "residual", False))
    arch = full_arch(spec).with_choices({block.projection.name: {"width": 0}})
    rows = {row.name: row for row in cost_report.cost_report(spec, arch).layers}
    for layer in block.layers:
        assert (rows[layer.name].macs, rows[layer.name].note) == (0, "block removed")
    assert count(spec, arch).macs < count(spec, full_arch(spec)).macs


def test_switched_off_se_and_bypass_only_layers_are_noted(spec):
    block = next(node for node in spec.nodes if getattr(node, "se", None) is not None)
    expansion = block.expansion.name
    arch = full_arch(spec).with_choices({block.se.name: {"width": 0}, expansion: {"width": 0}})
    rows = {row.name: row for row in cost_report.cost_report(spec, arch).layers}
    assert (rows[block.se.name].note, rows[block.se.name].macs) == ("SE off", 0)
    assert rows[expansion].note == "bypass only"
    assert rows[expansion].bypassed == rows[expansion].out_channels


def test_table_has_a_header_and_a_line_per_layer(spec):
    report = cost_report.cost_report(spec, full_arch(spec))
    lines = cost_report.format_table(report).splitlines()
    assert lines[0].split() == [
        "layer",
        "kind",
        "in",
        "kept",
        "bypassed",
        "out",
        "kernel",
        "MACs",
        "params",
        "note",
    ]
    assert len(lines) == 1 + len(report.layers)
    assert lines[1].split()[:2] == ["stem", "conv"]


def test_upsampling_and_skips_of_a_dense_network_get_rows_in_order():
    spec = small_spec("fastdepth")
    arch = random_arch(spec, np.random.default_rng(3))
    report = cost_report.cost_report(spec, arch)
    total = count(spec, arch)
    assert sum(row.macs for row in report.layers) == total.macs
    assert sum(row.params for row in report.layers) == total.params
    upsamples = [row for row in report.layers if row.kind == "upsample"]
    skips = [row for row in report.layers if row.kind == "skip"]
    assert len(upsamples) == 5 and len(skips) == 3
    assert all((row.macs, row.params) == (0, 0) for row in upsamples + skips)
    # The 32 px input is halved five times to 1 px; the decoder doubles it back.
    sizes = [row.note.split(": ")[1] for row in upsamples]
    assert sizes == ["1x1 -> 2x2", "2x2 -> 4x4", "4x4 -> 8x8", "8x8 -> 16x16", "16x16 -> 32x32"]
    names = [row.name for row in report.layers]
    by_name = {row.name: row for row in report.layers}
    for node in spec.nodes:
        if type(node).__name__ == "SkipSpec":
            row = by_name[node.name]
            assert row.note == f"adds {node.source} to {node.target}"
            # after the target layer; both summands have the row's width (the tie)
            assert names.index(node.name) > names.index(node.target)
            assert row.out_channels == by_name[node.target].out_channels
            assert row.out_channels == by_name[node.source].out_channels
    layer_rows = [row.name for row in report.layers if row.kind not in ("upsample", "skip")]
    assert layer_rows == list(spec.layer_names())


def test_samples_are_the_draws_of_one_seeded_generator(spec):
    archs = cost_report.sample_archs(spec, 3, seed=7)
    rng = np.random.default_rng(7)
    assert archs == [random_arch(spec, rng) for _ in range(3)]
    counts = cost_report.sample_counts(spec, 3, seed=7)
    summary = cost_report.spread(counts)
    assert summary["macs"]["min"] == min(c.macs for c in counts)
    assert summary["params"]["max"] == max(c.params for c in counts)
    with pytest.raises(ValueError, match="num_samples: -1 must be >= 0"):
        cost_report.sample_archs(spec, -1, seed=0)


def test_parity_reads_the_difference_against_the_output_scale():
    assert Parity(max_abs_diff=1e-7, max_abs_output=2.0).ok
    assert not Parity(max_abs_diff=2e-4, max_abs_output=2.0).ok  # over the absolute bar
    tiny = Parity(max_abs_diff=1e-11, max_abs_output=1e-10)  # passes 1e-4, but 10% off
    assert not tiny.ok and math.isclose(tiny.relative_diff, 0.1)
    assert Parity(0.0, 0.0).ok and Parity(1e-9, 0.0).relative_diff == math.inf
