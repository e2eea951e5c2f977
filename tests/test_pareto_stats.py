"""The statistics of benchmarks/pareto.py on synthetic numbers (netadapt_tf/pipeline/
pareto_stats.py): the budget rule, the pooled noise, the margins and their intervals."""

import json
import math

import pytest
import scipy.stats

from netadapt_tf.configs import pareto as pareto_config
from netadapt_tf.pipeline import pareto_stats as ps


@pytest.mark.parametrize("dof", [1, 2, 3, 4, 5, 6, 10, 30, 200])
def test_t_quantile_matches_scipy(dof):
    assert ps.t_quantile_975(dof) == pytest.approx(scipy.stats.t.ppf(0.975, dof), abs=2e-3)


def test_t_quantile_rejects_no_dof():
    with pytest.raises(ValueError, match="dof: 0 must be >= 1"):
        ps.t_quantile_975(0)


def test_budget_is_the_first_whose_doubling_adds_under_half_a_point():
    curve = [(1, 0.70), (2, 0.78), (3, 0.80), (4, 0.83), (5, 0.83), (6, 0.832), (7, 0.833)]
    curve += [(8, 0.834)]
    found = ps.choose_budget(curve)
    # 1 -> 2: +8 points, 2 -> 4: +5, 4 -> 8: +0.4 (under 0.5): the budget is 4 epochs.
    assert found["epochs"] == 4 and found["plateau"]
    assert [p[0] for p in found["probes"]] == [1, 2, 4]


def test_budget_without_plateau_is_the_longest_probe():
    found = ps.choose_budget([(e, 0.1 * e) for e in range(1, 5)])
    assert found == {"epochs": 4, "plateau": False, "probes": [(1, 0.1, 0.2), (2, 0.2, 0.4)]}
    with pytest.raises(ValueError, match="no budget and its double"):
        ps.choose_budget([(1, 0.5)])


def test_pooled_variance_pools_every_network():
    variance, dof = ps.pooled_variance({"a": [0.80, 0.82, 0.84], "b": [0.5, 0.5], "c": [0.9]})
    # squares: a 0.0008, b 0; dof 2 + 1.
    assert dof == 3 and variance == pytest.approx(0.0008 / 3)
    with pytest.raises(ValueError, match="no network has two seeds"):
        ps.pooled_variance({"a": [0.8]})


CURVE = [
    ("uniform_1", 10.0, [0.90, 0.90, 0.90]),
    ("uniform_0.5", 6.0, [0.86, 0.86, 0.86]),
    ("uniform_0.25", 4.0, [0.80, 0.80, 0.80]),
    # slower than uniform_0.5 and less accurate: off the frontier.
    ("uniform_0.4", 7.0, [0.70, 0.70, 0.70]),
]


def test_margin_interpolates_the_frontier_and_carries_its_noise():
    variance, dof = 0.0001, 12  # one run's sd: 1 point
    m = ps.margin_over_curve(CURVE, 5.0, [0.85, 0.86, 0.87], variance, dof)
    # halfway between 0.80 (4 ms) and 0.86 (6 ms): 0.83; the 7 ms point is skipped.
    assert m.points == pytest.approx(3.0)
    w = 0.5
    se = math.sqrt(variance * (1 / 3 + (1 - w) ** 2 / 3 + w**2 / 3))
    half = 100 * scipy.stats.t.ppf(0.975, dof) * se
    assert m.high - m.points == pytest.approx(half, rel=1e-3)
    assert m.points - m.low == pytest.approx(half, rel=1e-3)
    assert m.outside_zero and not m.bound
    assert m.against == "uniform_0.25..uniform_0.5 at w=0.50"


def test_margin_inside_the_noise_straddles_zero():
    m = ps.margin_over_curve(CURVE, 6.0, [0.85, 0.87, 0.86], 0.0004, 4)
    assert m.points == pytest.approx(0.0, abs=1e-9)
    assert m.low < 0 < m.high and not m.outside_zero


def test_margin_below_and_above_the_curve():
    faster = ps.margin_over_curve(CURVE, 3.0, [0.78, 0.78], 0.0001, 10)
    assert faster.bound and faster.points == pytest.approx(-2.0)
    assert faster.against == "uniform_0.25"
    # between the frontier's slowest point and the slowest width: that point's accuracy.
    slower = ps.margin_over_curve(CURVE, 10.0, [0.91, 0.91], 0.0001, 10)
    assert slower.points == pytest.approx(1.0) and not slower.bound
    assert ps.margin_over_curve(CURVE, 11.0, [0.9], 0.0001, 10) is None


def test_difference_to_the_random_pick():
    d = ps.difference([0.86, 0.88], [0.84, 0.84, 0.84], 0.0001, 8, "random_30")
    half = 100 * scipy.stats.t.ppf(0.975, 8) * math.sqrt(0.0001 * (1 / 2 + 1 / 3))
    assert d.points == pytest.approx(3.0)
    assert (d.low, d.high) == pytest.approx((3.0 - half, 3.0 + half), rel=1e-3)
    assert d.to_json()["against"] == "random_30"


def test_config_wants_three_seeds_and_five_widths_outside_quick():
    with pytest.raises(ValueError, match="at least 3 distinct seeds"):
        pareto_config.ParetoConfig(seeds=(0, 1))
    with pytest.raises(ValueError, match="at least 5 widths"):
        pareto_config.ParetoConfig(curve_fractions=(0.5, 1.0))
    assert pareto_config.quick().seeds == (0, 1)


def test_demo_report_calls_its_comparison_a_preview_and_quotes_the_record(tmp_path):
    from netadapt_tf.pipeline import demo_report

    missing = "\n".join(demo_report.converged_section(tmp_path / "pareto.json"))
    assert "short-budget preview" in missing and "no recorded result yet" in missing
    interval = {"points": 2.5, "low": 0.4, "high": 4.6, "bound": False, "against": "x"}
    record = {
        "date": "2026-12-08 01:00 UTC",
        "machine": {"cpu": "AMD EPYC", "cores": 2, "cpu_flags": ["avx2", "fma"]},
        "budget_epochs": 4,
        "seeds": [0, 1, 2],
        "margins": {"50": {"uniform": interval, "random": {**interval, "points": -0.5}}},
    }
    (tmp_path / "pareto.json").write_text(json.dumps(record))
    text = "\n".join(demo_report.converged_section(tmp_path / "pareto.json"))
    assert "2026-12-08 01:00 UTC on AMD EPYC (2 cores, avx2 fma), 4 epochs" in text
    assert "at 50% of the initial latency" in text
    assert "+2.50 points (95% interval +0.40 to +4.60)" in text
    assert "random-search pick: -0.50 points" in text
