"""Checking a latency table on the networks the project makes (pipeline/table_check.py), the
calibration on those kinds of network and the fit with a parameter term
(metrics/lookup_table.py), on a fake backend and on stand-in phones (tests/fake_adb/)."""

import json

import numpy as np
import pytest
from lookup_table_helpers import GRID, FakeBackend, tiny_spec
from phone_helpers import FakePhones

from netadapt_tf.latency.adb import AdbBenchmarkBackend, AdbSettings
from netadapt_tf.metrics import AdbLatencyMetric, GridSettings, LookupTable, build_table
from netadapt_tf.metrics.lookup_table import calibration_set
from netadapt_tf.pipeline import table_check
from netadapt_tf.space import macs
from netadapt_tf.space.arch import full_arch, smallest_arch, uniform_arch


@pytest.fixture(scope="module")
def tiny():
    return tiny_spec()


def test_the_calibration_holds_uniform_shrinks_and_random_archs(tiny):
    grid = GridSettings(max_x_points=2, calibration_archs=6)
    archs = calibration_set(tiny, grid)
    assert len(archs) == 6 and archs[:2] == [full_arch(tiny), smallest_arch(tiny)]
    assert uniform_arch(tiny, 0.5) in archs  # tiny's widths are 0, 4, 8
    assert calibration_set(tiny, grid) == archs  # a seed of its own


def test_the_params_fit_is_solved_stored_and_read_back(tiny, tmp_path):
    grid = GridSettings(max_x_points=2, calibration_archs=5, fit="affine_params")
    table = build_table(tiny, FakeBackend(tiny), tmp_path / "t.json", grid)
    fit = table.calibration["fit"]
    assert set(fit) == {
        "kind", "offset_ms", "scale", "per_entry_ms", "per_mparam_ms", "rms_residual_ms"
    }  # fmt: skip
    assert fit["per_entry_ms"] == 0.0
    arch = uniform_arch(tiny, 0.5)
    total, _ = table.features(arch)
    params = macs.count(tiny, arch).params / 1e6
    expected = fit["offset_ms"] + fit["scale"] * total + fit["per_mparam_ms"] * params
    loaded = LookupTable.load(tmp_path / "t.json", tiny)
    assert loaded.predict(arch) == pytest.approx(expected)
    # The fake's latency is nearly linear in the weights: the fit explains every network.
    assert fit["rms_residual_ms"] < 0.05 * min(table.calibration["measured_ms"])


def test_sets_hold_the_uniform_curve_an_mcd_trajectory_and_random_archs(tiny, tmp_path):
    table = build_table(tiny, FakeBackend(tiny), tmp_path / "t.json", GRID)
    settings = table_check.CheckSettings(num_random=3, samples=2, layers=2)
    sets = table_check.check_sets(tiny, table.predict, settings)
    assert list(sets) == ["uniform", "trajectory", "random"]
    uniform = [arch for _, arch in sets["uniform"]]
    assert uniform[-1] == full_arch(tiny) and len(set(uniform)) == len(uniform)
    names = [name for name, _ in sets["trajectory"]]
    assert names[0].startswith("mcd_0_") and any(n.endswith("_best") for n in names)
    best = [arch for name, arch in sets["trajectory"] if name.endswith("_best")]
    target = table_check.trajectory_target(tiny, table.predict, 0.35)
    assert table.predict(best[-1]) <= target < table.predict(full_arch(tiny))
    assert len(sets["random"]) == 3


def test_set_figures_compare_with_the_fastest_round_and_the_rounds_with_each_other():
    rounds = np.array([[1.0, 2.0, 4.0], [1.2, 2.0, 3.0]])
    figures = table_check.set_figures([1.0, 2.1, 3.0], rounds)
    assert figures["measured_ms"] == [1.0, 2.0, 3.0]
    assert figures["median_ratio"] == pytest.approx(1.0)
    assert figures["within_10pct"] == 1.0 and figures["spearman"] == pytest.approx(1.0)
    rep = figures["repeatability"]  # round 0 against round 1
    assert rep["median_ratio"] == pytest.approx(1.0) and rep["within_10pct"] == pytest.approx(1 / 3)
    assert table_check.set_figures([1.0], np.array([[1.0]]))["repeatability"] is None


def test_a_table_is_checked_on_a_stand_in_phone(tiny, tmp_path, monkeypatch):
    """The user's check before a search (docs/on_device.md): the table built on the phone,
    then the benchmark's sets measured on it. The stand-in phone's latency is 0.5 us per
    byte of the model, so the whole network costs its entries' bytes plus one model's."""
    phones = FakePhones(tmp_path, monkeypatch)
    phone = AdbLatencyMetric(tiny, AdbBenchmarkBackend(AdbSettings(serials=("SER1",))))
    table = build_table(tiny, phone, tmp_path / "phone.json", GRID)
    settings = table_check.CheckSettings(num_random=4, samples=2, layers=2)
    found = table_check.check_table(table, phone, settings, rounds=2)
    assert set(found["sets"]) == {"uniform", "trajectory", "random"}
    for figures in found["sets"].values():
        assert figures["n"] == len(figures["names"]) == len(figures["measured_ms"])
        assert len(figures["rounds_ms"]) == 2 and figures["median_ratio"] > 0
        assert figures["repeatability"]["within_10pct"] == 1.0  # the stand-in is exact
    assert found["sets"]["uniform"]["spearman"] > 0.9  # wider is larger, and slower
    assert phones.files_on_phone() == []  # every model pushed was removed


def test_widths_are_measured_at_the_kink_x_equals_y_and_old_tables_read_as_before(tiny, tmp_path):
    table = build_table(tiny, FakeBackend(tiny), tmp_path / "t.json", GRID)
    group = table.plan.group(table.plan.group_of["pw2"])
    lo, hi = group.x_grid(GRID.max_x_points)[0], group.x_grid(GRID.max_x_points)[-1]
    inside = [y for y in group.y_values if lo < y < hi]
    assert inside, "the tiny spec has a width inside pw2's x range"
    y = inside[0]
    assert group.x_points(GRID.max_x_points, y) == (lo, y, hi)
    assert (1, y, y) in table.entries[group.key]  # measured, not interpolated
    assert table.entry_features(group.key, 1, y, y)[0] == pytest.approx(
        table.entries[group.key][(1, y, y)] - table.overhead_ms
    )
    # A table written before x_at_width existed: the grid alone, still complete.
    old = GridSettings(**{**GRID.to_json(), "x_at_width": False})
    build_table(tiny, FakeBackend(tiny), tmp_path / "old.json", old)
    data = json.loads((tmp_path / "old.json").read_text())
    del data["grid"]["x_at_width"]
    (tmp_path / "old.json").write_text(json.dumps(data))
    loaded = LookupTable.load(tmp_path / "old.json", tiny)
    assert loaded.complete and loaded.grid == old
    assert (1, y, y) not in loaded.entries[group.key]
