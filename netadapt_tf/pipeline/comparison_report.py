"""The comparison section of the demo's report.md: table, plot and verdict in words.

Reads the comparison's records (comparison.py: networks.json, each column's results.json,
measured.json); whatever a stage has not written yet shows as "-" or a sentence saying so.
The plot (comparison.png) draws test accuracy against measured host latency per column: the
uniform curve, the discovered network, the random-search pick and the initial network. The
verdict per column: the discovered network's accuracy minus the uniform curve's, linearly
interpolated at the discovered network's measured latency, next to the standard deviation
of that difference from the seed-to-seed noise; a margin under NOISE_SDS of those is said to
be inside the noise. Where the curve starts to fall is measured on the scratch column (the
stand-alone accuracy the issue asks about): the first width fraction whose accuracy is more
than a drop below the initial network's, the drop being NOISE_SDS standard deviations of
the difference of two single runs (1 point when no noise was measured).
"""

import math
import pathlib
import statistics

from netadapt_tf.pipeline import comparison
from netadapt_tf.pipeline.comparison_measure import read_measured

PLOT_FILE = "comparison.png"
DEFAULT_DROP = 0.01  # when no seed-to-seed noise was measured
# The initial network's table / host this far off the others' median is said in the report.
INITIAL_APART = 0.1


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _points(value) -> str:
    return f"{100 * value:+.2f} points"


def _cell(values: list[float] | None) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return _pct(values[0])
    runs = ", ".join(f"{100 * v:.2f}" for v in values)
    return f"{_pct(comparison.mean(values))} ({runs})"


def load(directory: pathlib.Path) -> dict:
    """Every record of the comparison that exists: networks, columns (name -> accuracies per
    network), measured (name -> Measured)."""
    found = {"networks": [], "columns": {}, "measured": {}}
    if (directory / comparison.NETWORKS_FILE).exists():
        found["networks"] = comparison.read_networks(directory / comparison.NETWORKS_FILE)
    for column in comparison.COLUMNS:
        path = directory / column / comparison.RESULTS_FILE
        if path.exists():
            _, runs = comparison.read_results(path)
            found["columns"][column] = comparison.accuracies_by_network(runs)
    if (directory / comparison.MEASURED_FILE).exists():
        found["measured"] = read_measured(directory / comparison.MEASURED_FILE)
    return found


def table(found: dict) -> list[str]:
    lines = [
        "| network | MACs | parameters | table latency | host latency (LiteRT) | table / host "
        "| read from super-network | accuracy, inherited weights | accuracy, from scratch |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for n in found["networks"]:
        m = found["measured"].get(n.name)
        cells = [
            n.label(),
            f"{n.macs:,}",
            f"{n.params:,}",
            f"{n.table_ms:.3f} ms",
            "-" if m is None else f"{m.host_ms:.3f} ms",
            "-" if m is None else f"{n.table_ms / m.host_ms:.2f}",
            "-" if m is None else _pct(m.read_accuracy),
        ]
        cells += [_cell(found["columns"].get(c, {}).get(n.name)) for c in comparison.COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _curve(found: dict, column: str) -> list[tuple[float, float, float, int]]:
    """(ratio, host latency, mean accuracy, seeds) of the curve points trained and measured."""
    accuracies = found["columns"].get(column, {})
    points = []
    for n in found["networks"]:
        m = found["measured"].get(n.name)
        if n.kind == "uniform" and m is not None and accuracies.get(n.name):
            values = accuracies[n.name]
            points.append((n.ratio, m.host_ms, comparison.mean(values), len(values)))
    return points


def noise(found: dict, column: str) -> tuple[float | None, int]:
    groups = found["columns"].get(column, {}).values()
    return comparison.pooled_sd([g for g in groups if len(g) > 1])


def verdict(found: dict, column: str) -> str:
    """The margin of the discovered network over the curve in `column`, in words."""
    accuracies = found["columns"].get(column, {})
    discovered = found["measured"].get("discovered")
    if discovered is None or not accuracies.get("discovered"):
        return f"{column}: not trained and measured yet."
    values = accuracies["discovered"]
    run_sd, dof = noise(found, column)
    curve = [(x, y, k) for _, x, y, k in _curve(found, column)]
    result = comparison.margin(
        curve, discovered.host_ms, comparison.mean(values), len(values), run_sd
    )
    head = f"**{column}**: the discovered network ({_pct(comparison.mean(values))}"
    head += f" over {len(values)} seed{'s' if len(values) > 1 else ''}) "
    if result.value is None:
        return (
            head + f"at {discovered.host_ms:.3f} ms is slower than every point of the uniform "
            "curve, so no margin at equal latency can be given."
        )
    if result.bound:
        fastest = min(_curve(found, column), key=lambda p: p[1])
        text = head + (
            f"at {discovered.host_ms:.3f} ms is faster than every point of the uniform curve; "
            f"against the fastest (width {fastest[0]:g}, {fastest[1]:.3f} ms, "
            f"{_pct(fastest[2])}) it is {_points(result.value)}, a lower bound of the margin "
            "at equal latency if the curve does not gain accuracy as latency falls. "
        )
    else:
        text = head + (
            f"is {_points(result.value)} over the uniform curve at its measured latency "
            f"({discovered.host_ms:.3f} ms, linear interpolation between the curve's frontier "
            "points: a width slower and no more accurate than another is left out). "
        )
    if result.sd is None:
        return text + "No network was trained on two seeds, so the noise is unknown."
    text += (
        f"Seed-to-seed noise: one training run varies by {100 * run_sd:.2f} points (standard "
        f"deviation pooled over the networks trained on several seeds, {dof} degree"
        f"{'s' if dof > 1 else ''} of freedom), so the margin has a standard deviation of "
        f"{100 * result.sd:.2f} points. "
    )
    if result.inside_noise:
        return text + (
            f"The margin is inside the noise (at most {comparison.NOISE_SDS:g} standard "
            "deviations): in this column the discovered network cannot be told apart from "
            "the uniform curve."
        )
    side = "above" if result.value > 0 else "below"
    if result.bound and result.value < 0:
        return text + (
            "The difference is outside the noise, but as a lower bound it does not place the "
            "network below the curve."
        )
    return text + (
        f"The margin is outside the noise (more than {comparison.NOISE_SDS:g} standard "
        f"deviations): in this column the discovered network lies {side} the uniform curve."
    )


def random_line(found: dict, column: str) -> str | None:
    accuracies = found["columns"].get(column, {})
    if not accuracies.get("random") or not accuracies.get("discovered"):
        return None
    gap = comparison.mean(accuracies["discovered"]) - comparison.mean(accuracies["random"])
    return f"{column}: discovered minus random-search pick {_points(gap)}."


def _where_target_lies(target: float, flat: float, fallen: float | None) -> str:
    """Where the target (a share of the initial table latency) lies against the curve."""
    if target > flat:
        return "above the narrowest flat point: there every network may tie"
    if fallen is None:
        return "at or below the narrowest point measured, where the curve had not fallen yet"
    if target >= fallen:
        return "between the last flat point and the first fallen one, where the curve falls"
    return "below the first fallen point, where the curve has fallen"


def falls_line(found: dict, target_fraction: float | None) -> str:
    """Where the scratch curve starts to fall, and the search's target against it."""
    curve = _curve(found, "scratch")
    initial = next((p for p in curve if p[0] == 1.0), None)
    if initial is None or len(curve) < 2:
        return "Where the uniform curve falls: not measured yet (scratch column)."
    run_sd, _ = noise(found, "scratch")
    drop = DEFAULT_DROP if run_sd is None else comparison.NOISE_SDS * math.sqrt(2) * run_sd
    flat, fallen = comparison.where_curve_falls([p[:3] for p in curve], drop)
    table = {n.ratio: n.table_ms for n in found["networks"] if n.kind == "uniform"}

    def where(point) -> str:
        host = 100 * point[1] / initial[1]
        share = 100 * table[point[0]] / table[1.0]
        return (
            f"width {point[0]:g}: {share:.0f}% of the initial table latency, {host:.0f}% of "
            f"the measured one, {_pct(point[2])}"
        )

    text = (
        f"Where the uniform curve falls (from scratch; a fall is a drop of more than "
        f"{100 * drop:.2f} points below the initial network's {_pct(initial[2])}): "
    )
    if fallen is None:
        text += f"it does not fall down to the narrowest point measured ({where(flat)})."
    else:
        text += f"flat down to {where(flat)}; fallen at {where(fallen)}."
    if target_fraction is not None:
        lies = _where_target_lies(
            target_fraction,
            table[flat[0]] / table[1.0],
            None if fallen is None else table[fallen[0]] / table[1.0],
        )
        text += (
            f" The search's target, {100 * target_fraction:.0f}% of the initial table latency, "
            f"lies {lies}. It is put where the curve is expected to fall because above it "
            "stand-alone accuracy barely moves at these budgets, so a better search could "
            "not show."
        )
    return text


def target_line(found: dict, target_fraction: float | None) -> str | None:
    """Where the search was asked to land and where it landed, in table and measured terms:
    a table that bends its axis shows here as a discovered network off its target."""
    by_name = {n.name: n for n in found["networks"]}
    initial = next((n for n in found["networks"] if n.is_initial), None)
    discovered = next((n for n in found["networks"] if n.kind == "discovered"), None)
    if target_fraction is None or initial is None or discovered is None:
        return None
    measured = {name: found["measured"].get(name) for name in (initial.name, discovered.name)}
    text = (
        f"The search's target: {100 * target_fraction:.0f}% of the initial network's table "
        f"latency ({target_fraction * initial.table_ms:.3f} ms of {initial.table_ms:.3f} ms). "
        f"The discovered network: {discovered.table_ms:.3f} ms on the table "
        f"({100 * discovered.table_ms / initial.table_ms:.0f}% of the initial)"
    )
    if any(m is None for m in measured.values()):
        return text + "; not measured yet."
    share = measured[discovered.name].host_ms / measured[initial.name].host_ms
    off = share / target_fraction - 1
    ratios = {
        name: n.table_ms / m.host_ms
        for name, n in by_name.items()
        if (m := found["measured"].get(name)) is not None
    }
    text += (
        f", {measured[discovered.name].host_ms:.3f} ms measured, "
        f"{100 * share:.0f}% of the initial network's measured "
        f"{measured[initial.name].host_ms:.3f} ms: {100 * off:+.0f}% off the target in "
        f"measured terms. Table / host latency over the {len(ratios)} networks: "
        f"{min(ratios.values()):.2f} to {max(ratios.values()):.2f} (the table's scale is the "
        "host's at 1.00 only where the two clocks agree; what matters is that the ratio is "
        "the same for every network)."
    )
    return text + _initial_apart(
        initial, ratios, measured[discovered.name].host_ms, target_fraction
    )


def _initial_apart(initial, ratios: dict, discovered_ms: float, target_fraction: float) -> str:
    """A sentence when the initial network's table / host ratio is more than 10% off the
    others' median: a fraction of it then carries that network's error alone. On a shared
    machine a slow spell can slow a large network and not the small ones (docs/benchmarks.md,
    issue 22), so the sentence says what the fraction would be at the others' ratio."""
    others = [r for name, r in ratios.items() if name != initial.name]
    if initial.name not in ratios or len(others) < 2:
        return ""
    usual = statistics.median(others)
    apart = ratios[initial.name] / usual - 1
    if abs(apart) <= INITIAL_APART:
        return ""
    host = initial.table_ms / usual
    share = discovered_ms / host
    return (
        f" The initial network's table / host, {ratios[initial.name]:.2f}, is "
        f"{100 * apart:+.0f}% off the other networks' median ({usual:.2f}): at their ratio it "
        f"would measure {host:.3f} ms and the discovered network be at {100 * share:.0f}% of "
        f"it ({100 * (share / target_fraction - 1):+.0f}% off the target). Either the table "
        "misjudges the initial network or its measurement fell in a slow spell of a shared "
        "machine, which can slow a large network alone (docs/benchmarks.md, issue 22); "
        "measuring again (tools/measure_comparison.py) tells which."
    )


def plot(found: dict, path: pathlib.Path) -> pathlib.Path | None:
    """Test accuracy against measured latency, one panel per trained column."""
    columns = [c for c in comparison.COLUMNS if found["columns"].get(c)]
    if not columns or not found["measured"]:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5 * len(columns), 4))
    FigureCanvasAgg(figure)
    for i, column in enumerate(columns, start=1):
        axes = figure.add_subplot(1, len(columns), i)
        _plot_curve(axes, sorted(_curve(found, column), key=lambda p: p[1]))
        _plot_networks(axes, found["measured"], found["columns"][column])
        axes.set_xlabel("host latency, LiteRT 1 thread (ms)")
        axes.set_ylabel("test accuracy (%)")
        axes.set_title(
            {"inherit": "all from the super-network's weights", "scratch": "all from scratch"}[
                column
            ],
            fontsize=10,
        )
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path


def _plot_curve(axes, curve) -> None:
    """The uniform width curve, (ratio, latency, accuracy, _) points by latency, if any."""
    if not curve:
        return
    axes.plot(
        [p[1] for p in curve],
        [100 * p[2] for p in curve],
        "o-",
        color="tab:gray",
        label="uniform width curve",
    )
    for ratio, x, y, _ in curve:
        axes.annotate(
            f"{ratio:g}",
            (x, 100 * y),
            textcoords="offset points",
            xytext=(4, -10),
            fontsize=7,
        )


def _plot_networks(axes, measured: dict, accuracies: dict) -> None:
    """The initial, discovered and random-search networks: each run, faint, and their mean."""
    marks = (
        ("initial", "uniform_1", "s", "tab:blue"),
        ("discovered", "discovered", "*", "tab:red"),
        ("random-search pick", "random", "^", "tab:green"),
    )
    for label, name, marker, color in marks:
        m = measured.get(name)
        if m is None or not accuracies.get(name):
            continue
        values = accuracies[name]
        axes.plot(
            [m.host_ms] * len(values),
            [100 * v for v in values],
            marker,
            color=color,
            alpha=0.4,
            markersize=6,
        )
        axes.plot(
            [m.host_ms],
            [100 * comparison.mean(values)],
            marker,
            color=color,
            markersize=12 if marker == "*" else 8,
            label=label,
        )


def section(directory: pathlib.Path, target_fraction: float | None) -> list[str]:
    """The report's comparison section (`directory`: the demo's comparison directory)."""
    found = load(directory)
    lines = ["## The comparison at equal training", ""]
    if not found["networks"]:
        return lines + ["The comparison has not started.", ""]
    lines += [
        "Every network below is trained with the same recipe and steps from the same start: "
        "in one column all start from the super-network's weights, in the other all from "
        "scratch. Accuracy: the test split (never seen by the search); a network trained on "
        "several seeds shows their mean, then each run. Host latency: float32 TFLite on "
        "LiteRT, 1 thread, CPU time of the thread, fastest of interleaved rounds (the same "
        "measurement for every network). Table latency: the lookup table the search used; "
        "table / host: their ratio, the same for every network when the table predicts "
        "what it is used on. "
        "Read from super-network: what the search's judge says of the network.",
        "",
        *table(found),
        "",
    ]
    path = plot(found, directory.parent / PLOT_FILE)
    if path is not None:
        lines += [f"![test accuracy against measured latency]({PLOT_FILE})", ""]
    lines += [verdict(found, column) for column in comparison.COLUMNS]
    lines += [""]
    lines += [line for c in comparison.COLUMNS if (line := random_line(found, c))]
    lines += ["", falls_line(found, target_fraction), ""]
    target = target_line(found, target_fraction)
    if target is not None:
        lines += [target, ""]
    return lines
