"""The record and the plot of benchmarks/pareto.py, from the files its stages wrote
(pareto.py): per network its measured latency and accuracy per seed, the margins with 95%
intervals (pareto_stats.py), the judge's quality against the converged accuracies, the
budget and its learning curve, the machine, the commands and the stage times."""

import pathlib
import time

import numpy as np

from netadapt_tf.common import atomic_files
from netadapt_tf.configs.pareto import ParetoConfig
from netadapt_tf.pipeline import comparison, pareto, pareto_stats
from netadapt_tf.pipeline import judge_quality as quality
from netadapt_tf.pipeline.comparison_measure import read_measured
from netadapt_tf.pipeline.stage_runner import STAGES_FILE, read_stages

# The keys of the record that change from one run of the same stages to the next.
TIME_KEYS = ("date", "seconds", "total_seconds", "run_seconds")


def _accuracies(w: pathlib.Path) -> dict[str, list[float]]:
    runs = []
    parts = [pareto.part_dir(part) for part in range(pareto.TRAIN_PARTS)]
    for column in ("train_initial", *parts):
        runs += comparison.read_results(w / column / comparison.RESULTS_FILE)[1]
    return comparison.accuracies_by_network(runs)


def _readings(search_dir: pathlib.Path, iteration: int, limit: int) -> list[float]:
    import json

    from netadapt_tf.search.records import IterationRecord

    line = (search_dir / "history.jsonl").read_text().splitlines()[iteration]
    record = IterationRecord.from_json(json.loads(line), f"iteration {iteration}")
    return [s.accuracy for s in record.samples if s.ok][:limit]


def margins(config: ParetoConfig, networks: dict, variance: float, dof: int) -> dict:
    """Per target: the discovered network over the uniform curve and over the random pick,
    and the random pick over the curve (accuracy points, 95% interval)."""
    curve = [
        (name, n["latency_ms"], n["accuracies"])
        for name, n in networks.items()
        if n["kind"] == "uniform"
    ]
    found = {}
    for target in config.targets:
        key = pareto.target_key(target)
        disc, rand = networks[f"discovered_{key}"], networks[f"random_{key}"]
        entry = {}
        for label, net in (("uniform", disc), ("random_over_uniform", rand)):
            m = pareto_stats.margin_over_curve(
                curve, net["latency_ms"], net["accuracies"], variance, dof
            )
            entry[label] = None if m is None else m.to_json()
        diff = pareto_stats.difference(
            disc["accuracies"], rand["accuracies"], variance, dof, f"random_{key}"
        )
        entry["random"] = {
            **diff.to_json(),
            "latency_ms": [disc["latency_ms"], rand["latency_ms"]],
        }
        found[key] = entry
    return found


def judge_quality(config: ParetoConfig, w: pathlib.Path, networks: dict) -> dict:
    """Kendall tau and read gap of the judge's readings on the compared networks, and the
    decision regret on one MCD iteration's candidates against a random pick."""
    compared = [n for name, n in networks.items() if not name.startswith("candidate_")]
    reads = [n["read_accuracy"] for n in compared]
    means = [comparison.mean(n["accuracies"]) for n in compared]
    first = w / f"search_{pareto.target_key(config.targets[0])}"
    candidates = sorted(
        (name for name in networks if name.startswith("candidate_")),
        key=lambda name: int(name.split("_")[1]),
    )
    readings = _readings(first, config.decision_iteration, config.decision_candidates)
    standalone = np.array([networks[name]["accuracies"] for name in candidates]).T
    decision = quality.decision_report(readings[: len(candidates)], standalone)
    return {
        "compared": {
            "networks": len(compared),
            "tau": quality.kendall_tau(reads, means),
            "read_gap": float(np.mean(np.abs(np.subtract(reads, means))) * 100),
        },
        "decision": {
            "iteration": config.decision_iteration,
            "candidates": len(candidates),
            **decision,
        },
    }


def build_record(config: ParetoConfig, w: pathlib.Path, commands: dict | None = None) -> dict:
    """The record of a finished run in work directory `w`."""
    from netadapt_tf.pipeline.comparison import read_networks

    plan = read_networks(w / pareto.PLANS[3], require_discovered=False)
    measured = read_measured(w / pareto.MEASURED_FILE)
    accuracies = _accuracies(w)
    budget = pareto.read_budget(w)
    networks = {}
    for n in plan:
        target = None
        if n.kind != "uniform" and not n.name.startswith("candidate_"):
            target = int(n.name.split("_")[1]) / 100
        networks[n.name] = {
            "kind": "candidate" if n.name.startswith("candidate_") else n.kind,
            "ratio": n.ratio,
            "target": target,
            "latency_ms": measured[n.name].host_ms,
            "table_ms": n.table_ms,
            "macs": n.macs,
            "params": n.params,
            "seeds": list(n.seeds),
            "accuracies": accuracies[n.name],
            "mean": comparison.mean(accuracies[n.name]),
            "read_accuracy": measured[n.name].read_accuracy,
        }
    variance, dof = pareto_stats.pooled_variance(
        {name: n["accuracies"] for name, n in networks.items()}
    )
    stages = read_stages(w / STAGES_FILE)
    initial_ms = networks[pareto.INITIAL]["latency_ms"]
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": pareto.machine(),
        "quick": config.quick,
        "budget_epochs": budget["epochs"],
        "budget": {
            "plateau": budget["plateau"],
            "gain_points": 100 * budget["gain"],
            "probes": budget["probes"],
            "learning_curve": budget["curve"],
            "steps_per_epoch": config.steps_per_epoch,
        },
        "seeds": list(config.seeds),
        "targets": {
            pareto.target_key(t): {"fraction": t, "initial_ms": initial_ms} for t in config.targets
        },
        "networks": networks,
        "noise": {"run_sd_points": 100 * variance**0.5, "dof": dof},
        "margins": margins(config, networks, variance, dof),
        "judge": judge_quality(config, w, networks),
        "config": config.to_json(),
        "commands": commands
        if commands is not None
        else {name: list(r.command or ()) for name, r in stages.items()},
        "seconds": {name: r.seconds for name, r in stages.items()},
        "total_seconds": round(sum(r.seconds or 0 for r in stages.values()), 1),
    }


def write(record: dict, w: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    path = atomic_files.write_json(w / pareto.RECORD_FILE, record)
    return path, plot(record, w / pareto.PLOT_FILE)


def plot(record: dict, path: pathlib.Path) -> pathlib.Path:
    """Accuracy (seed mean, each seed faint) against measured latency."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    networks = record["networks"]
    curve = sorted(
        (n["latency_ms"], 100 * n["mean"], name)
        for name, n in networks.items()
        if n["kind"] == "uniform"
    )
    axes.plot(
        [c[0] for c in curve],
        [c[1] for c in curve],
        "o-",
        color="tab:gray",
        label="uniform width curve",
    )
    marks = {
        "discovered": ("*", "tab:red"),
        "random": ("^", "tab:green"),
        "candidate": (".", "tab:purple"),
        "uniform": ("o", "tab:gray"),
    }
    shown = set()
    for name, n in networks.items():
        marker, color = marks[n["kind"]]
        axes.plot(
            [n["latency_ms"]] * len(n["accuracies"]),
            [100 * a for a in n["accuracies"]],
            marker,
            color=color,
            alpha=0.3,
        )
        if n["kind"] in ("uniform",):
            continue
        label = (
            None
            if n["kind"] in shown
            else {
                "discovered": "MCD-discovered",
                "random": "random-search pick",
                "candidate": "one iteration's candidates",
            }[n["kind"]]
        )
        shown.add(n["kind"])
        axes.plot(
            [n["latency_ms"]],
            [100 * n["mean"]],
            marker,
            color=color,
            markersize=12 if marker == "*" else 8,
            label=label,
        )
        if n["target"] is not None:
            axes.annotate(
                f"{name}",
                (n["latency_ms"], 100 * n["mean"]),
                textcoords="offset points",
                xytext=(5, 5),
                fontsize=7,
            )
    axes.set_xlabel("host latency, LiteRT 1 thread (ms)")
    axes.set_ylabel("test accuracy (%), trained to the plateau")
    axes.set_title(f"{record['budget_epochs']} epochs, seeds {record['seeds']}, {record['date']}")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path


def _interval_text(m: dict | None) -> str:
    if m is None:
        return "none (slower than every curve point)"
    bound = " (lower bound)" if m["bound"] else ""
    return f"{m['points']:+.2f} points [{m['low']:+.2f}, {m['high']:+.2f}]{bound}"


def summary_lines(record: dict) -> list[str]:
    """The verdict in words, one line per fact."""
    noise = record["noise"]
    lines = [
        f"budget {record['budget_epochs']} epochs (plateau reached: "
        f"{record['budget']['plateau']}), seeds {record['seeds']}, one run's sd "
        f"{noise['run_sd_points']:.2f} points ({noise['dof']} dof)",
    ]
    for name, n in sorted(record["networks"].items(), key=lambda kv: kv[1]["latency_ms"]):
        lines.append(
            f"  {name:<16} {n['latency_ms']:.4f} ms  {100 * n['mean']:.2f}%  "
            f"(seeds {', '.join(f'{100 * a:.2f}' for a in n['accuracies'])}; "
            f"read {100 * n['read_accuracy']:.2f}%)"
        )
    for key, m in record["margins"].items():
        verdict = (
            "outside"
            if m["uniform"] and (m["uniform"]["low"] > 0 or m["uniform"]["high"] < 0)
            else "inside"
        )
        lines.append(
            f"target {key}%: discovered over the uniform curve {_interval_text(m['uniform'])} "
            f"({verdict} the interval's zero); over the random pick "
            f"{_interval_text(m['random'])}; random pick over the curve "
            f"{_interval_text(m['random_over_uniform'])}"
        )
    judge = record["judge"]
    lines.append(
        f"judge: tau {judge['compared']['tau']:.2f} and read gap "
        f"{judge['compared']['read_gap']:.2f} points on the {judge['compared']['networks']} "
        f"compared networks; decision regret {judge['decision']['regret']:.2f} points against "
        f"{judge['decision']['random_regret']:.2f} for a random pick"
    )
    return lines
