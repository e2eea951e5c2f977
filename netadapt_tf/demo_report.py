"""`report.md` of the end-to-end demo (tools/demo.py), from the files its stages wrote.

Reads only what is on disk in the demo's work directory, so a report can be rewritten after
any stage: the stage times (`stages.json`), the search's `summary.json` and `progress.png`,
each trained network's `result.json` and `architecture.md`, and each export's
`export_summary.json`. The time breakdown follows the paper's Table 1 (super-network
training, evaluating samples, training the discovered network).
"""

import json
import pathlib
import platform

# The networks the demo compares, in report order: (key, what it is).
NETWORKS = (
    ("initial", "initial network (the full super-network arch), trained from scratch"),
    ("discovered", "discovered network, weights inherited from the super-network"),
    ("baseline", "initial network shrunk uniformly to the discovered latency, from scratch"),
)

# Table 1's rows: (row, stages whose seconds it sums).
TIME_ROWS = (
    ("super-network training", ("train_supernet",)),
    ("latency lookup table (host)", ("latency_table",)),
    ("evaluating samples (MCD search)", ("search",)),
    ("training the discovered network", ("train_discovered",)),
    ("exporting the discovered network (TFLite, int8 QAT)", ("export_discovered",)),
    (
        "comparison only: training and exporting the initial and baseline networks",
        ("train_initial", "train_baseline", "export_initial", "export_baseline"),
    ),
)


def _read_json(path: pathlib.Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _minutes(seconds) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


def _num(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _ms(value) -> str:
    return "-" if value is None else f"{value:.3f} ms"


def time_breakdown(stages: dict) -> list[str]:
    lines = ["| step | time |", "| --- | --- |"]
    total = 0.0
    for row, names in TIME_ROWS:
        seconds = [stages[n]["seconds"] for n in names if n in stages]
        value = sum(seconds) if seconds else None
        if value is not None and not row.startswith("comparison"):
            total += value
        lines.append(f"| {row} | {_minutes(value)} |")
    lines.append(f"| **NetAdaptV2 total (without the comparison row)** | {_minutes(total)} |")
    return lines


def _variant(summary: dict | None, name: str) -> dict:
    for row in (summary or {}).get("models", []):
        if row["variant"] == name:
            return row
    return {}


def results_table(workdir: pathlib.Path, predicted: dict) -> list[str]:
    lines = [
        "| network | table latency | Keras accuracy | float32 TFLite accuracy / latency / size "
        "| int8 TFLite accuracy / latency / size | int8 QAT accuracy / latency |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for key, label in NETWORKS:
        result = _read_json(workdir / key / "result.json") or {}
        summary = _read_json(workdir / f"export_{key}" / "export_summary.json")
        cells = [label, _ms(predicted.get(key)), _pct(result.get("validation_accuracy"))]
        for variant in ("float32", "int8"):
            row = _variant(summary, variant)
            if row:
                size = f"{row['size_bytes'] / 1024:.0f} KB"
                cells.append(f"{_pct(row['accuracy'])} / {_ms(row['latency_ms'])} / {size}")
            else:
                cells.append("-")
        row = _variant(summary, "int8_qat")
        cells.append(f"{_pct(row['accuracy'])} / {_ms(row['latency_ms'])}" if row else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def write_report(workdir, settings: dict) -> pathlib.Path:
    """Writes workdir/report.md from what the stages left; returns its path."""
    workdir = pathlib.Path(workdir)
    stages = _read_json(workdir / "stages.json") or {}
    search = _read_json(workdir / "search" / "summary.json") or {}
    predicted = _read_json(workdir / "table_latency.json") or {}
    baseline = _read_json(workdir / "baseline_ratio.json") or {}
    lines = [
        "# NetAdaptV2 demo report",
        "",
        f"Machine: {platform.node()}, {platform.machine()}, Python {platform.python_version()}"
        f", {platform.platform()}.",
        "",
        "Settings: `" + json.dumps(settings, sort_keys=True) + "`",
        "",
        "## Search time (as the paper's Table 1)",
        "",
        *time_breakdown(stages),
        "",
        "## Search",
        "",
    ]
    if search:
        initial, found = search.get("initial", {}), search.get("discovered", {})
        lines += [
            f"Stopped: {search.get('stop_reason')} after {search.get('iterations')} iterations "
            f"(target met: {search.get('target_met')}). Resource ({search.get('unit')}): "
            f"initial {_num(initial.get('resource'))}, discovered "
            f"{_num(found.get('resource'))}, final target {_num(search.get('final_target'))}. "
            "Held-out accuracy read from the "
            f"super-network: initial {_pct(initial.get('accuracy'))}, discovered "
            f"{_pct(found.get('accuracy'))}.",
            "",
            "![accuracy against latency along the trajectory](search/progress.png)",
            "",
        ]
    else:
        lines += ["The search has not finished.", ""]
    lines += ["## Accuracy and latency", ""]
    lines += [
        "Accuracy on the dataset's validation split (never seen by the search); latency: host "
        "LiteRT, 1 thread, median. Table latency: the lookup table's prediction (float32)."
    ]
    if baseline:
        lines += [
            f"The baseline keeps {100 * baseline['ratio']:.1f}% of every layer's width (the "
            "largest uniform shrink whose table latency is at most the discovered network's)."
        ]
    lines += ["", *results_table(workdir, predicted), ""]
    table = workdir / "discovered" / "architecture.md"
    lines += ["## Discovered architecture", ""]
    if table.exists():  # its headings go one level down, under this section
        text = table.read_text().strip()
        lines += ["##" + line if line.startswith("#") else line for line in text.splitlines()]
    else:
        lines += ["Not trained yet."]
    lines += [""]
    path = workdir / "report.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines))
    tmp.replace(path)
    return path
