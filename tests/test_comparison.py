"""The demo's comparison: the plan, its records, the verdict's arithmetic and the report
section (the whole flow with --quick: test_tools.py)."""

import json
import math

import pytest

from netadapt_tf import builders
from netadapt_tf.common import strict_json as sj
from netadapt_tf.discovered.uniform_baseline import uniform_arch
from netadapt_tf.pipeline import comparison, comparison_report
from netadapt_tf.pipeline.comparison_measure import Measured, read_measured, write_measured
from netadapt_tf.space import macs
from netadapt_tf.space.arch import full_arch, load_arch

SPEC = builders.build("mobilenet_v1", input_size=16, num_classes=4, width_multiplier=0.25)


def _macs_latency(arch):  # a stand-in table latency: MACs in millions
    return macs.count(SPEC, arch).macs / 1e6


def _plan(tmp_path, fractions=(0.25, 0.5, 0.75), seeds=(3, 4)):
    discovered = uniform_arch(SPEC, 0.6)
    random_pick = uniform_arch(SPEC, 0.3)
    return comparison.plan_networks(
        SPEC, _macs_latency, discovered, random_pick, fractions, seeds, tmp_path
    )


def test_plan_has_the_curve_with_the_initial_network_and_repeats_the_nearest_point(tmp_path):
    networks = _plan(tmp_path)
    names = [n.name for n in networks]
    assert names == [
        "uniform_1",
        "uniform_0.75",
        "uniform_0.5",
        "uniform_0.25",
        "discovered",
        "random",
    ]
    by_name = {n.name: n for n in networks}
    assert by_name["uniform_1"].is_initial and by_name["uniform_1"].label().startswith("initial")
    # The discovered network (0.6 of every width) is nearest to the 0.5 point in latency.
    latency = {n.name: n.table_ms for n in networks}
    nearest = min(
        (n for n in networks if n.kind == "uniform"),
        key=lambda n: abs(n.table_ms - latency["discovered"]),
    )
    assert nearest.name == "uniform_0.5"
    assert {n.name for n in networks if n.seeds == (3, 4)} == {"discovered", "uniform_0.5"}
    assert all(n.seeds == (3,) for n in networks if n.name not in ("discovered", "uniform_0.5"))
    # Arch files, costs and latencies belong to the archs.
    for n in networks:
        arch = load_arch(tmp_path / n.arch, SPEC)
        assert n.macs == macs.count(SPEC, arch).macs and n.params == macs.count(SPEC, arch).params
        assert n.table_ms == pytest.approx(_macs_latency(arch))
    assert load_arch(tmp_path / "archs" / "uniform_1.json", SPEC) == full_arch(SPEC)
    assert load_arch(tmp_path / "archs" / "discovered.json", SPEC) == uniform_arch(SPEC, 0.6)


def test_plan_drops_fractions_that_give_the_same_arch_and_checks_its_inputs(tmp_path):
    # In this tiny network (widths in eighths) 0.3 and 0.375 round to the same widths.
    assert uniform_arch(SPEC, 0.3) == uniform_arch(SPEC, 0.375)
    networks = comparison.plan_networks(
        SPEC, _macs_latency, full_arch(SPEC), None, (0.3, 0.375, 1.0), (0,), tmp_path
    )
    assert [n.name for n in networks] == ["uniform_1", "uniform_0.375", "discovered"]
    with pytest.raises(ValueError, match=r"fractions: 1.5 is not in \(0, 1\]"):
        comparison.plan_networks(SPEC, _macs_latency, full_arch(SPEC), None, (1.5,), (0,), tmp_path)
    with pytest.raises(ValueError, match="seeds: empty"):
        comparison.plan_networks(SPEC, _macs_latency, full_arch(SPEC), None, (0.5,), (), tmp_path)


def test_networks_round_trip_and_bad_records_name_the_field(tmp_path):
    networks = _plan(tmp_path)
    path = comparison.write_networks(tmp_path, networks)
    assert comparison.read_networks(path) == networks
    data = json.loads(path.read_text())
    data["networks"][1]["ratio"] = None  # a uniform network needs its ratio
    path.write_text(json.dumps(data))
    with pytest.raises(sj.RecordError, match=r"networks\[1\]: Network 'uniform_0.75': ratio"):
        comparison.read_networks(path)
    data["networks"][1]["ratio"] = 0.75
    data["networks"][4]["seeds"] = [1, 1]
    path.write_text(json.dumps(data))
    with pytest.raises(sj.RecordError, match=r"seeds: \(1, 1\); allowed: distinct seeds"):
        comparison.read_networks(path)
    data["networks"][4]["seeds"] = [1]
    data["networks"][4]["name"] = "other"
    path.write_text(json.dumps(data))
    with pytest.raises(sj.RecordError, match="one of them 'discovered'"):
        comparison.read_networks(path)


def test_results_and_measurements_round_trip(tmp_path):
    runs = [
        comparison.Run(name="discovered", seed=1, accuracy=0.8, examples=100, seconds=3.0),
        comparison.Run(name="discovered", seed=0, accuracy=0.7, examples=100, seconds=2.0),
        comparison.Run(name="uniform_1", seed=0, accuracy=0.75, examples=100, seconds=4.0),
    ]
    path = comparison.write_results(tmp_path / "results.json", "scratch", runs)
    mode, read = comparison.read_results(path)
    assert mode == "scratch" and read == runs
    assert comparison.accuracies_by_network(read) == {
        "discovered": [0.7, 0.8],
        "uniform_1": [0.75],
    }
    path.write_text(json.dumps({"mode": "other", "runs": []}))
    with pytest.raises(sj.RecordError, match="mode: 'other'"):
        comparison.read_results(path)
    measured = [Measured(name="a", host_ms=0.2, rounds_ms=(0.1, 0.2, 0.3), read_accuracy=0.5)]
    path = write_measured(tmp_path / "measured.json", {"rounds": 3}, measured)
    assert read_measured(path) == {"a": measured[0]}


def test_interpolation_is_linear_between_neighbours_and_never_extrapolates():
    curve = [(2.0, 0.8), (1.0, 0.6), (4.0, 0.9)]  # any order
    assert comparison.interpolate(curve, 1.5) == pytest.approx(0.7)
    assert comparison.interpolate(curve, 3.0) == pytest.approx(0.85)
    assert comparison.interpolate(curve, 4.0) == pytest.approx(0.9)
    assert comparison.interpolate(curve, 0.5) is None
    assert comparison.interpolate(curve, 4.5) is None
    assert comparison.interpolate([], 1.0) is None


def test_pooled_noise_and_the_margin_against_it():
    sd, dof = comparison.pooled_sd([[0.70, 0.72], [0.80, 0.84], [0.9]])
    # Squares: 2 x 0.01^2 + 2 x 0.02^2 = 0.001; dof 2.
    assert dof == 2 and sd == pytest.approx(math.sqrt(0.001 / 2))
    assert comparison.pooled_sd([[0.5]]) == (None, 0)
    curve = [(1.0, 0.70, 2), (2.0, 0.80, 1), (3.0, 0.82, 1)]
    result = comparison.margin(curve, 1.5, 0.80, 2, 0.01)
    assert result.value == pytest.approx(0.05)
    # Neighbours with 2 and 1 seeds: the curve's value counts as one run.
    assert result.sd == pytest.approx(0.01 * math.sqrt(1 / 2 + 1))
    assert result.inside_noise is False
    close = comparison.margin(curve, 1.5, 0.76, 2, 0.01)
    assert close.value == pytest.approx(0.01) and close.inside_noise is True
    # Faster than every curve point: the margin over the fastest one, as a lower bound.
    faster = comparison.margin(curve, 0.5, 0.9, 2, 0.01)
    assert faster.bound and faster.value == pytest.approx(0.2) and faster.inside_noise is False
    assert faster.sd == pytest.approx(0.01 * math.sqrt(1 / 2 + 1 / 2))
    assert comparison.margin(curve, 3.5, 0.9, 2, 0.01) == comparison.Margin(None, None)
    assert comparison.margin(curve, 1.5, 0.9, 2, None).inside_noise is None


def test_the_margin_is_over_the_curves_frontier():
    # Width b is slower than a and less accurate: no one would pick it, and a margin
    # interpolated through it would flatter the discovered network.
    curve = [(1.0, 0.50, 1), (1.5, 0.40, 2), (2.0, 0.70, 1)]
    assert comparison.frontier(curve) == [(1.0, 0.50, 1), (2.0, 0.70, 1)]
    # Equal accuracy at a higher latency is no better either.
    assert comparison.frontier([(2.0, 0.5, 1), (1.0, 0.5, 1)]) == [(1.0, 0.5, 1)]
    result = comparison.margin(curve, 1.25, 0.70, 2, 0.01)
    assert result.value == pytest.approx(0.70 - 0.55)  # not 0.70 - 0.45 through b
    assert result.sd == pytest.approx(0.01 * math.sqrt(1 / 2 + 1))  # neighbours: 1 seed each
    assert comparison.margin(curve, 0.5, 0.6, 1, 0.01).bound
    # Past the frontier's slowest point, inside the curve: that point's accuracy.
    flat = [(1.0, 0.80, 2), (2.0, 0.80, 1)]
    past = comparison.margin(flat, 1.5, 0.85, 2, 0.01)
    assert past.value == pytest.approx(0.05) and not past.bound
    assert past.sd == pytest.approx(0.01 * math.sqrt(1 / 2 + 1 / 2))
    assert comparison.margin(flat, 2.5, 0.85, 2, 0.01) == comparison.Margin(None, None)


def test_where_the_curve_falls():
    curve = [(1.0, 4.0, 0.80), (0.75, 3.0, 0.795), (0.5, 2.0, 0.79), (0.25, 1.0, 0.70)]
    flat, fallen = comparison.where_curve_falls(curve, 0.02)
    assert flat == (0.5, 2.0, 0.79) and fallen == (0.25, 1.0, 0.70)
    flat, fallen = comparison.where_curve_falls(curve, 0.2)
    assert flat == (0.25, 1.0, 0.70) and fallen is None


def _write_column(directory, column, accuracies):
    runs = [
        comparison.Run(name=name, seed=seed, accuracy=value, examples=1000, seconds=1.0)
        for name, values in accuracies.items()
        for seed, value in enumerate(values)
    ]
    (directory / column).mkdir()
    comparison.write_results(directory / column / comparison.RESULTS_FILE, column, runs)


def test_report_section_states_the_margin_and_the_noise_in_words(tmp_path):
    tmp_path = tmp_path / "comparison"  # the plot goes next to it, into the demo's workdir
    tmp_path.mkdir()
    networks = _plan(tmp_path, fractions=(0.5,), seeds=(0, 1))
    comparison.write_networks(tmp_path, networks)
    # Host latency: the table's, but the discovered network half-way between 0.5 and 1.
    latency = {n.name: n.table_ms for n in networks}
    latency["discovered"] = (latency["uniform_0.5"] + latency["uniform_1"]) / 2
    measured = [
        Measured(name=n, host_ms=ms, rounds_ms=(ms,), read_accuracy=0.5)
        for n, ms in latency.items()
    ]
    write_measured(tmp_path / comparison.MEASURED_FILE, {}, measured)
    # inherit: the discovered network 5 points over a flat curve, noise 0.5 points.
    _write_column(
        tmp_path,
        "inherit",
        {
            "uniform_1": [0.80],
            "uniform_0.5": [0.795, 0.805],
            "discovered": [0.845, 0.855],
            "random": [0.78],
        },
    )
    # scratch: the discovered network 1 point over, noise 2 points.
    _write_column(
        tmp_path,
        "scratch",
        {
            "uniform_1": [0.80],
            "uniform_0.5": [0.78, 0.82],
            "discovered": [0.79, 0.83],
            "random": [0.75],
        },
    )
    lines = comparison_report.section(tmp_path, 0.2)
    text = "\n".join(lines)
    assert "| discovered network |" in text and "| 85.00% (84.50, 85.50) |" in text
    assert "![test accuracy against measured latency](comparison.png)" in text
    assert (tmp_path.parent / "comparison.png").stat().st_size > 1000
    inherit = next(line for line in lines if line.startswith("**inherit**"))
    assert "+5.00 points over the uniform curve" in inherit
    assert "outside the noise" in inherit and "lies above the uniform curve" in inherit
    scratch = next(line for line in lines if line.startswith("**scratch**"))
    assert "+1.00 points over the uniform curve" in scratch
    assert "inside the noise" in scratch and "cannot be told apart" in scratch
    assert "inherit: discovered minus random-search pick +7.00 points." in lines
    falls = next(line for line in lines if line.startswith("Where the uniform curve falls"))
    assert "it does not fall down to the narrowest point measured (width 0.5: " in falls
    assert "target, 20% of the initial table latency, lies at or below the narrowest point" in falls
    # Table and host latency side by side with their ratio, and the target in measured terms.
    discovered = next(n for n in networks if n.kind == "discovered")
    assert f"| {discovered.table_ms:.3f} ms | {latency['discovered']:.3f} ms | " in text
    initial = next(n for n in networks if n.is_initial)
    share = latency["discovered"] / latency["uniform_1"]
    target = next(line for line in lines if line.startswith("The search's target: 20%"))
    assert f"{100 * share:.0f}% of the initial network's measured" in target
    assert f"{100 * (share / 0.2 - 1):+.0f}% off the target in measured terms" in target
    ratio = discovered.table_ms / latency["discovered"]
    assert f"| {ratio:.2f} |" in text and f"{initial.table_ms:.3f} ms)" in target


def test_report_section_before_anything_ran(tmp_path):
    tmp_path = tmp_path / "comparison"
    tmp_path.mkdir()
    assert "The comparison has not started." in comparison_report.section(tmp_path, None)
    comparison.write_networks(tmp_path, _plan(tmp_path))
    text = "\n".join(comparison_report.section(tmp_path, None))
    assert "| uniform 0.5 |" in text and "not trained and measured yet" in text
    assert "not measured yet (scratch column)" in text
    assert not (tmp_path.parent / "comparison.png").exists()


def _found(networks, host_ms):
    measured = {
        n: Measured(name=n, host_ms=ms, rounds_ms=(ms,), read_accuracy=0.5)
        for n, ms in host_ms.items()
    }
    return {"networks": networks, "measured": measured}


def test_the_target_line_says_when_the_initial_networks_ratio_stands_apart(tmp_path):
    networks = _plan(tmp_path)
    table = {n.name: n.table_ms for n in networks}
    initial = next(n for n in networks if n.is_initial)
    discovered = next(n for n in networks if n.kind == "discovered")
    # Every network at table / host 0.8, as a table on another clock reads: nothing added.
    host = {name: ms / 0.8 for name, ms in table.items()}
    line = comparison_report.target_line(_found(networks, host), 0.3)
    assert "off the other networks' median" not in line
    # The initial network measured 1.25x slower than the others' ratio says (0.64).
    host[initial.name] = table[initial.name] / 0.64
    line = comparison_report.target_line(_found(networks, host), 0.3)
    share = host[discovered.name] / host[initial.name]
    assert f"{100 * share:.0f}% of the initial network's measured" in line
    assert "The initial network's table / host, 0.64, is -20% off the other networks' median" in (
        line
    )
    # At the others' ratio the fraction is the table's fraction.
    at_usual = table[discovered.name] / table[initial.name]
    assert f"would measure {table[initial.name] / 0.8:.3f} ms" in line
    assert f"the discovered network be at {100 * at_usual:.0f}% of it" in line
    assert f"({100 * (at_usual / 0.3 - 1):+.0f}% off the target)" in line
    # Within 10% of the others: nothing added.
    host[initial.name] = table[initial.name] / 0.75
    line = comparison_report.target_line(_found(networks, host), 0.3)
    assert "off the other networks' median" not in line


def test_where_the_target_lies_against_the_curve():
    lies = comparison_report._where_target_lies
    assert lies(0.5, 0.3, 0.15).startswith("above the narrowest flat point")
    assert lies(0.2, 0.3, 0.15).startswith("between the last flat point and the first fallen")
    assert lies(0.1, 0.3, 0.15).startswith("below the first fallen point")
    assert lies(0.2, 0.3, None).startswith("at or below the narrowest point measured")


def test_report_gives_a_lower_bound_when_the_discovered_network_is_faster_than_the_curve(
    tmp_path,
):
    tmp_path = tmp_path / "comparison"
    tmp_path.mkdir()
    networks = _plan(tmp_path, fractions=(0.5,), seeds=(0, 1))
    comparison.write_networks(tmp_path, networks)
    latency = {n.name: n.table_ms for n in networks}
    latency["discovered"] = latency["uniform_0.5"] / 2
    measured = [
        Measured(name=n, host_ms=ms, rounds_ms=(ms,), read_accuracy=0.5)
        for n, ms in latency.items()
    ]
    write_measured(tmp_path / comparison.MEASURED_FILE, {}, measured)
    _write_column(
        tmp_path,
        "inherit",
        {"uniform_1": [0.80], "uniform_0.5": [0.70, 0.71], "discovered": [0.78, 0.79]},
    )
    lines = comparison_report.section(tmp_path, None)
    inherit = next(line for line in lines if line.startswith("**inherit**"))
    assert "is faster than every point of the uniform curve" in inherit
    assert "(width 0.5, " in inherit and "it is +8.00 points, a lower bound" in inherit
    assert "outside the noise" in inherit and "lies above the uniform curve" in inherit
