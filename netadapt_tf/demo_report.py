"""`report.md` of the end-to-end demo (tools/demo.py), from the files its stages wrote.

Reads only what is on disk in the demo's work directory, so a report can be rewritten after
any stage: the stage times (`stages.json`), the search's `summary.json` and `progress.png`,
each trained network's `result.json` and `architecture.md`, and each export's
`export_summary.json`. A file a stage has not written yet shows as "-"; a file that is there
but malformed is a strict_json.RecordError naming it. The time breakdown follows the paper's
Table 1 (super-network training, evaluating samples, training the discovered network).
"""

import json
import pathlib
import platform

from netadapt_tf import atomic_files
from netadapt_tf import strict_json as sj
from netadapt_tf.search.driver import read_summary as read_search_summary
from netadapt_tf.shipping.pipeline import read_summary as read_export_summary
from netadapt_tf.stage_runner import STAGES_FILE, read_stages

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


def _if_written(path: pathlib.Path, read):
    """read(path), or None when the stage that writes `path` has not run yet."""
    return read(path) if path.exists() else None


def _parse_result(data) -> dict:
    sj.obj(data, "result", ("validation_accuracy", "validation_examples"))
    sj.number(data["validation_accuracy"], "validation_accuracy", minimum=0, maximum=1)
    sj.integer(data["validation_examples"], "validation_examples", minimum=1)
    return data


def _parse_latencies(data) -> dict:
    sj.obj(data, "table_latency", [key for key, _ in NETWORKS])
    return sj.mapping(data, "table_latency", lambda v, f: sj.number(v, f, minimum=0))


def _parse_ratio(data) -> dict:
    sj.obj(data, "baseline_ratio", ("ratio",))
    sj.number(data["ratio"], "ratio", minimum=0, maximum=1)
    return data


def _read(parse):
    return lambda path: sj.read(path, parse)


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
        seconds = [stages[n].seconds for n in names if n in stages and stages[n].done]
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
        result = _if_written(workdir / key / "result.json", _read(_parse_result)) or {}
        summary = _if_written(
            workdir / f"export_{key}" / "export_summary.json", read_export_summary
        )
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
    stages = _if_written(workdir / STAGES_FILE, read_stages) or {}
    search = _if_written(workdir / "search" / "summary.json", read_search_summary) or {}
    predicted = _if_written(workdir / "table_latency.json", _read(_parse_latencies)) or {}
    baseline = _if_written(workdir / "baseline_ratio.json", _read(_parse_ratio)) or {}
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
    return atomic_files.write_text(workdir / "report.md", "\n".join(lines))
