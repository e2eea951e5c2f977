"""The per-layer latency lookup table: enumeration, entry models, building, resuming, loading.

Building uses a fake backend (no TFLite conversion: its "model bytes" describe the Keras
model and its "latency" is a fixed function of them), so these tests check the bookkeeping
exactly; one slow test builds a real table on the host.
"""

import itertools
import json

import numpy as np
import pytest
from conftest import small_spec
from lookup_table_helpers import GRID, FakeBackend, tiny_spec

from netadapt_tf import builders
from netadapt_tf.common.strict_json import RecordError
from netadapt_tf.metrics import (
    GridSettings,
    HostLatencyMetric,
    LookupTable,
    LookupTableMetric,
    TableMismatchError,
    build_table,
)
from netadapt_tf.metrics.lut_space import configurations, entry_model, grid_points, plan_space
from netadapt_tf.search import MCDConfig, MCDOptimizer
from netadapt_tf.space.arch import Arch, LayerChoice, full_arch, random_arch, smallest_arch
from netadapt_tf.space.spec import SkipSpec, UpsampleSpec
from netadapt_tf.space.subnet import resolve
from netadapt_tf.supernet.network import build_supernet


@pytest.fixture(scope="module")
def tiny():
    return tiny_spec()


def _all_archs(spec):
    layers = list(spec.layers())
    options = [list(itertools.product(layer.widths, layer.kernel_sizes)) for layer in layers]
    for picks in itertools.product(*options):
        choices = [
            LayerChoice(layer.name, w, k) for layer, (w, k) in zip(layers, picks, strict=True)
        ]
        yield Arch(spec.name, spec.fingerprint(), tuple(choices))


def test_grid_points_keep_the_ends_and_at_most_n_values():
    values = (3, 4, 6, 8, 16, 32, 48, 64, 128)
    assert grid_points(values, 2) == (3, 128)
    assert grid_points(values, 3) == (3, 64, 128)
    assert grid_points(values, 20) == values
    with pytest.raises(ValueError, match="max_x_points: 1 must be >= 2"):
        grid_points(values, 1)


def test_enumeration_is_exactly_what_some_arch_produces(tiny):
    plan = plan_space(tiny)
    seen = {g.key: set() for g in plan.groups}
    for arch in _all_archs(tiny):
        for c in configurations(plan, tiny, arch):
            seen[c.key].add((c.k, c.x, c.y))
    for g in plan.groups:
        possible = set(itertools.product(g.k_values, g.x_values, g.y_values))
        assert seen[g.key] == possible, g.key


@pytest.mark.parametrize("name", sorted(builders.BUILDERS))
def test_every_layer_of_random_archs_is_covered(name):
    spec = small_spec(name)
    plan = plan_space(spec)
    groups = {g.key: g for g in plan.groups}
    rng = np.random.default_rng(0)
    for arch in [full_arch(spec), smallest_arch(spec)] + [
        random_arch(spec, rng) for _ in range(20)
    ]:
        found = {c.member: c for c in configurations(plan, spec, arch)}
        for r in resolve(spec, arch).layers():
            c, g = found[r.name], groups[found[r.name].key]
            assert (c.x, c.y, c.k) == (
                r.in_channels,
                arch.choice(r.name).width,
                arch.choice(r.name).kernel_size,
            )
            grid = g.x_grid(4)
            assert c.x in g.x_values and grid[0] <= c.x <= grid[-1]
            assert c.y in g.y_values and c.k in g.k_values


def test_identical_layers_share_a_group():
    spec = builders.build("netadaptv2_mobilenet_v3")
    member_of = plan_space(spec).group_of
    assert member_of["block10/expansion"] == member_of["block9/expansion"]
    assert member_of["block12/expansion"] != member_of["block9/expansion"]


def test_entry_models_hold_the_exported_operators(tiny):
    plan = plan_space(tiny)
    supernet = build_supernet(tiny)
    pw = plan.group(plan.group_of["pw"])
    names = [type(layer).__name__ for layer in entry_model(pw, supernet, 1, 8, 2).layers]
    assert names[1:] == [
        "MatmulConv2D",  # exported models' Conv2D (a matmul only when training)
        "BatchNormalization",
        "Activation",
        "ChannelSlice",
        "Concatenate",
    ]
    # a stride-1 layer that keeps no filter and bypasses every channel computes nothing
    assert entry_model(pw, supernet, 1, 4, 0) is None
    stem = plan.group(plan.group_of["stem"])
    assert entry_model(stem, supernet, 3, 3, 0) is not None  # the strided bypass pools


def test_build_resumes_after_an_interruption(tiny, tmp_path):
    one_shot = build_table(tiny, FakeBackend(tiny), tmp_path / "one.json", GRID)
    assert one_shot.complete
    path = tmp_path / "resumed.json"
    with pytest.raises(KeyboardInterrupt):
        build_table(tiny, FakeBackend(tiny, fail_after=12), path, GRID, save_every=5)
    partial = LookupTable.load(path, tiny)
    assert 5 <= partial.num_entries < one_shot.num_entries and not partial.complete
    table = build_table(tiny, FakeBackend(tiny), path, GRID, save_every=5, max_entries=3)
    assert not table.complete and table.num_entries == partial.num_entries + 3
    backend = FakeBackend(tiny)
    finished = build_table(tiny, backend, path, GRID, save_every=5)
    assert finished.complete
    assert backend.calls < one_shot.num_entries + GRID.calibration_archs
    a, b = one_shot.to_json(), finished.to_json()
    a.pop("build_seconds"), b.pop("build_seconds")
    assert a == b


def test_prediction_interpolates_and_calibrates(tiny, tmp_path):
    table = build_table(tiny, FakeBackend(tiny), tmp_path / "t.json", GRID)
    metric = LookupTableMetric(LookupTable.load(tmp_path / "t.json", tiny))
    fit = table.calibration["fit"]
    arch = full_arch(tiny)
    total, count = table.features(arch)
    expected = fit["offset_ms"] + fit["scale"] * total + fit["per_entry_ms"] * count
    assert metric(arch) == pytest.approx(expected)
    assert metric.fingerprint()["measured_with"] == {"backend": "fake", "version": 1}
    group = table.plan.group(table.plan.group_of["pw2"])
    lo, hi = table._x_grids[group.key][:2]
    assert lo < 6 < hi
    mid = table.entry_features(group.key, 1, 6, 8)
    ends = [table.entry_features(group.key, 1, x, 8) for x in (lo, hi)]
    t = (6 - lo) / (hi - lo)
    assert np.array(mid) == pytest.approx((1 - t) * np.array(ends[0]) + t * np.array(ends[1]))


def test_a_table_of_another_spec_or_backend_is_refused(tiny, tmp_path):
    path = tmp_path / "t.json"
    build_table(tiny, FakeBackend(tiny), path, GRID)
    with pytest.raises(TableMismatchError, match=r"measured with another backend; .*\['backend'\]"):
        build_table(tiny, FakeBackend(tiny, name="pixel4"), path, GRID)
    with pytest.raises(TableMismatchError, match="built with grid"):
        build_table(
            tiny, FakeBackend(tiny), path, GridSettings(max_x_points=3, calibration_archs=4)
        )
    other = small_spec("mobilenet_v1")
    with pytest.raises(TableMismatchError, match="built for super-network 'tiny'"):
        LookupTable.load(path, other)
    data = json.loads(path.read_text())
    data["format"] = "something/9"
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError, match=r"t\.json: format: 'something/9' is not allowed"):
        LookupTable.load(path, tiny)


def test_an_incomplete_table_is_not_a_metric(tiny, tmp_path):
    table = build_table(tiny, FakeBackend(tiny), tmp_path / "t.json", GRID, max_entries=2)
    with pytest.raises(ValueError, match="incomplete"):
        LookupTableMetric(table)


@pytest.mark.slow
def test_host_table_orders_clearly_different_networks(tmp_path):
    spec = builders.build(
        "mobilenet_v1", input_size=32, num_classes=10, width_multiplier=0.5, num_widths=2
    )
    host = HostLatencyMetric(spec, num_runs=20, warmup_runs=3, clock="thread_cpu")
    grid = GridSettings(max_x_points=2, calibration_archs=5, calibration_rounds=2)
    table = build_table(spec, host, tmp_path / "host.json", grid)
    full, small = full_arch(spec), smallest_arch(spec)
    names = [layer.name for layer in spec.layers()]
    # neither is a calibration network: the full network with its last half removed, and the
    # smallest with its first half restored
    big = full.with_choices({n: {"width": 0} for n in names[len(names) // 2 : -1]})
    little = small.with_choices({n: {"width": full.choice(n).width} for n in names[:4]})
    measured = {name: np.median([host(a) for _ in range(3)]) for name, a in
                (("big", big), ("little", little), ("full", full))}  # fmt: skip
    predicted = {
        "big": table.predict(big),
        "little": table.predict(little),
        "full": table.predict(full),
    }
    assert measured["full"] > 1.5 * measured["little"]
    assert predicted["full"] > predicted["little"] and predicted["big"] > predicted["little"]
    assert predicted["full"] == pytest.approx(measured["full"], rel=0.5)


@pytest.fixture(scope="module")
def depth_table(tmp_path_factory):
    """A complete fake-measured table of a tiny FastDepth (3 widths per layer)."""
    spec = small_spec("fastdepth", num_widths=3)
    path = tmp_path_factory.mktemp("depth") / "fastdepth.json"
    build_table(spec, FakeBackend(spec), path, GRID)
    return LookupTable.load(path, spec)


def test_a_fastdepth_table_covers_the_decoder_and_predicts(depth_table):
    spec = depth_table.spec
    group_of = depth_table.plan.group_of
    dense_nodes = [n.name for n in spec.nodes if isinstance(n, (UpsampleSpec, SkipSpec))]
    assert len(dense_nodes) == 8  # 5 upsamplings, 3 skips
    for name in dense_nodes:
        assert group_of[name] == f"{name.split('/')[-1]}:{name}"
    decoder = [layer.name for layer in spec.layers() if not layer.name.startswith(("stem", "b"))]
    assert len(decoder) == 11 and all(group_of[name].startswith("layer:") for name in decoder)
    metric = LookupTableMetric(depth_table)
    full = full_arch(spec)
    half_decoder = full.with_choices({n: {"width": spec.layer(n).widths[1]} for n in decoder[:-1]})
    members = {c.member for c in configurations(depth_table.plan, spec, half_decoder)}
    assert set(dense_nodes) <= members and set(decoder) <= members
    predicted = [metric(a) for a in (full, half_decoder, smallest_arch(spec))]
    assert all(np.isfinite(predicted)) and min(predicted) > 0
    assert predicted[0] > predicted[1] > predicted[2]


@pytest.mark.parametrize("sampler", ["mcd", "single_layer"])
def test_a_latency_guided_search_step_on_fastdepth(depth_table, sampler):
    spec = depth_table.spec
    metric = LookupTableMetric(depth_table)
    filters = {layer.name: layer.filters for layer in spec.layers()}

    def accuracy(arch):  # the share of filters kept, a stand-in for delta1
        return sum(c.width / filters[c.name] for c in arch.choices) / len(filters)

    fields = {} if sampler == "single_layer" else dict(samples_per_iteration=3, layers_per_sample=2)
    config = MCDConfig(
        initial_reduction=0.1, decay=0.9, target_fraction=0.5, max_iterations=1, seed=0,
        sampler=sampler, **fields,
    )  # fmt: skip
    optimizer = MCDOptimizer(spec, config, accuracy, metric)
    assert any(unit.name.startswith("skip:") for unit in optimizer.units)
    result = optimizer.run()
    (iteration,) = result.iterations
    start = result.state.initial.resource
    assert start == pytest.approx(metric(full_arch(spec)))
    assert iteration.count("ok") > 0
    assert result.state.best_resource <= 0.9 * start + 1e-12
    assert metric(result.arch) == pytest.approx(result.state.best_resource)
