"""`report.md` of the end-to-end demo (tools/demo.py), from the files its stages wrote.

Reads only what is on disk in the demo's work directory, so a report can be rewritten after
any stage: the stage times (`stages.json`), the search's `summary.json` and `progress.png`,
the comparison's records (comparison_report.py: table, plot, verdict), the shipped
discovered network's `result.json` and `architecture.md`, and its export's
`export_summary.json`. A file a stage has not written yet shows as "-"; a file that is there
but malformed is a strict_json.RecordError naming it. The time breakdown follows the paper's
Table 1 (super-network training, evaluating samples, training the discovered network); the
comparison's stages are a row of their own.
"""

import json
import pathlib
import platform

from netadapt_tf.common import atomic_files
from netadapt_tf.common import strict_json as sj
from netadapt_tf.pipeline import comparison, comparison_report
from netadapt_tf.pipeline.stage_runner import STAGES_FILE, read_stages
from netadapt_tf.search.driver import read_summary as read_search_summary
from netadapt_tf.shipping.pipeline import read_summary as read_export_summary

COMPARISON_PLOT = comparison_report.PLOT_FILE
# The last full run of benchmarks/pareto.py, committed with its plot (docs/benchmarks.md).
PARETO_RECORD = pathlib.Path(__file__).resolve().parents[2] / "docs" / "results" / "pareto.json"

# Table 1's rows: (row, stages whose seconds it sums). The discovered network is trained
# inside the train_inherit stage; its own time comes from that column's results.json.
TIME_ROWS = (
    ("super-network training", ("train_supernet",)),
    ("latency lookup table (host)", ("latency_table",)),
    ("evaluating samples (MCD search)", ("search",)),
    ("training the discovered network", ()),
    ("exporting the discovered network (TFLite, int8 QAT)", ("export_discovered",)),
)
COMPARISON_STAGES = (
    "search_random",
    "comparison_archs",
    "train_inherit",
    "train_scratch",
    "measure_comparison",
)


def _if_written(path: pathlib.Path, read):
    """read(path), or None when the stage that writes `path` has not run yet."""
    return read(path) if path.exists() else None


def _parse_result(data) -> dict:
    sj.obj(data, "result", ("validation_accuracy", "validation_examples"))
    sj.number(data["validation_accuracy"], "validation_accuracy", minimum=0, maximum=1)
    sj.integer(data["validation_examples"], "validation_examples", minimum=1)
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


def _discovered_seconds(workdir: pathlib.Path, shipped: pathlib.Path) -> float | None:
    """Training time of the shipped discovered network (its run in the inherit column)."""
    path = workdir / "comparison" / "inherit" / comparison.RESULTS_FILE
    if not path.exists():
        return None
    _, runs = comparison.read_results(path)
    seed = shipped.name.removeprefix("seed")
    found = [r.seconds for r in runs if r.name == "discovered" and str(r.seed) == seed]
    return found[0] if found else None


def wall_seconds(records) -> float:
    """The wall time finished stages took: stages that ran at the same time (their start
    times recorded, e.g. the two training columns) count once; the seconds of a record
    without a start time are added."""
    timed = sorted((r.started, r.started + r.seconds) for r in records if r.started is not None)
    total = sum(r.seconds for r in records if r.started is None)
    end = None
    for begin, finish in timed:
        if end is None or begin >= end:
            total += finish - begin
            end = finish
        elif finish > end:
            total += finish - end
            end = finish
    return total


def time_breakdown(stages: dict, discovered_seconds: float | None) -> list[str]:
    lines = ["| step | time |", "| --- | --- |"]
    total = 0.0
    for row, names in TIME_ROWS:
        seconds = [stages[n].seconds for n in names if n in stages and stages[n].done]
        value = sum(seconds) if seconds else None
        if row == "training the discovered network":
            value = discovered_seconds
        total += value or 0.0
        lines.append(f"| {row} | {_minutes(value)} |")
    lines.append(f"| **NetAdaptV2 total** | {_minutes(total)} |")
    done = [stages[n] for n in COMPARISON_STAGES if n in stages and stages[n].done]
    comparison_total = wall_seconds(done) - (discovered_seconds or 0.0) if done else None
    lines.append(
        "| comparison only: random search, training every other network of both columns, "
        f"measuring them | {_minutes(comparison_total)} |"
    )
    initial = stages.get("train_initial")
    if initial is not None and initial.done:  # the flow starts from a trained network
        lines.append(
            "| before NetAdaptV2: training the initial network (a user has it trained) | "
            f"{_minutes(initial.seconds)} |"
        )
    return lines


def _variant(summary: dict | None, name: str) -> dict:
    for row in (summary or {}).get("models", []):
        if row["variant"] == name:
            return row
    return {}


def shipping_table(shipped: pathlib.Path, summary: dict | None) -> list[str]:
    lines = [
        "| network | Keras accuracy | float32 TFLite accuracy / latency / size "
        "| int8 TFLite accuracy / latency / size | int8 QAT accuracy / latency |",
        "| --- | --- | --- | --- | --- |",
    ]
    result = _if_written(shipped / "result.json", _read(_parse_result)) or {}
    cells = ["discovered network, inherited weights", _pct(result.get("validation_accuracy"))]
    for variant in ("float32", "int8"):
        row = _variant(summary, variant)
        if row:
            size = f"{row['size_bytes'] / 1024:.0f} KB"
            cells.append(f"{_pct(row['accuracy'])} / {_ms(row['latency_ms'])} / {size}")
        else:
            cells.append("-")
    row = _variant(summary, "int8_qat")
    cells.append(f"{_pct(row['accuracy'])} / {_ms(row['latency_ms'])}" if row else "-")
    return lines + ["| " + " | ".join(cells) + " |"]


def _target_fraction(search: dict) -> float | None:
    initial = search.get("initial", {}).get("resource")
    return search["final_target"] / initial if search and initial else None


def write_report(workdir, settings: dict, shipped) -> pathlib.Path:
    """Writes workdir/report.md (and the comparison plot) from what the stages left;
    `shipped` is the training directory of the discovered network that is exported."""
    workdir, shipped = pathlib.Path(workdir), pathlib.Path(shipped)
    stages = _if_written(workdir / STAGES_FILE, read_stages) or {}
    search = _if_written(workdir / "search" / "summary.json", read_search_summary) or {}
    random = _if_written(workdir / "search_random" / "summary.json", read_search_summary)
    exported = _if_written(
        workdir / "export_discovered" / "export_summary.json", read_export_summary
    )
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
        *time_breakdown(stages, _discovered_seconds(workdir, shipped)),
        "",
        *_search_section(search, random),
        *comparison_report.section(workdir / "comparison", _target_fraction(search)),
        *converged_section(),
        *_shipped_section(shipped, exported),
        *_architecture_section(shipped),
    ]
    return atomic_files.write_text(workdir / "report.md", "\n".join(lines))


def _search_section(search: dict, random: dict | None) -> list[str]:
    """The report's search section: the search's summary and the random search's."""
    lines = ["## Search", ""]
    if search:
        initial, found = search.get("initial", {}), search.get("discovered", {})
        lines += [
            f"Stopped: {search.get('stop_reason')} after {search.get('iterations')} iterations "
            f"(target met: {search.get('target_met')}). Resource ({search.get('unit')}): "
            f"initial {_num(initial.get('resource'))}, discovered "
            f"{_num(found.get('resource'))}, final target {_num(search.get('final_target'))}. "
            "Held-out accuracy read from the "
            f"super-network: initial {_pct(initial.get('accuracy'))}, discovered "
            f"{_pct(found.get('accuracy'))}; {search['samples']['ok']} samples judged.",
            "",
            "![accuracy against latency along the trajectory](search/progress.png)",
            "",
        ]
    else:
        lines += ["The search has not finished.", ""]
    if random:
        lines += [
            f"Random search (the baseline): {random['samples']['ok']} samples judged "
            f"({random['samples']['infeasible']} samples found no arch within the target); its "
            f"pick reads {_pct(random['discovered']['accuracy'])} at "
            f"{_num(random['discovered']['resource'])} {random.get('unit')}.",
            "",
        ]
    return lines


def _margin_text(margin: dict | None) -> str:
    if margin is None:
        return "none (slower than every width)"
    bound = ", a lower bound" if margin["bound"] else ""
    return (
        f"{margin['points']:+.2f} points (95% interval {margin['low']:+.2f} to "
        f"{margin['high']:+.2f}{bound})"
    )


def converged_section(record_path=PARETO_RECORD) -> list[str]:
    """Says in words that the comparison above is a short-budget preview, and quotes the
    last recorded result of benchmarks/pareto.py (its date and machine), if any."""
    lines = [
        "## At convergence",
        "",
        "The comparison above is a short-budget preview: every network trains for the "
        "demo's few steps, where training and not capacity sets the accuracy, so it cannot "
        "say whether the search helps. The verdict with every network trained to its "
        "plateau is benchmarks/pareto.py's (docs/benchmarks.md).",
        "",
    ]
    record_path = pathlib.Path(record_path)
    if not record_path.exists():
        return lines + [f"It has no recorded result yet ({record_path.name} is not there).", ""]
    record = json.loads(record_path.read_text())
    machine = record["machine"]
    lines.append(
        f"Its last recorded result, {record['date']} on {machine['cpu']} ({machine['cores']} "
        f"cores, {' '.join(machine['cpu_flags'])}), {record['budget_epochs']} epochs per "
        f"network, seeds {record['seeds']}:"
    )
    for key, margin in record["margins"].items():
        lines.append(
            f"- at {key}% of the initial latency the discovered network over the uniform "
            f"curve: {_margin_text(margin['uniform'])}; over the random-search pick: "
            f"{_margin_text(margin['random'])}."
        )
    return lines + [""]


def _shipped_section(shipped: pathlib.Path, exported: dict | None) -> list[str]:
    """The report's section on the exported discovered network (`shipped`: its training
    directory; `exported`: the export summary, if written)."""
    return [
        "## The shipped discovered network",
        "",
        "The inherit column's discovered network (seed "
        f"{shipped.name.removeprefix('seed')}), exported to TFLite; accuracy on the test "
        "split, latency: host LiteRT, 1 thread, wall-clock median.",
        "",
        *shipping_table(shipped, exported),
        "",
    ]


def _architecture_section(shipped: pathlib.Path) -> list[str]:
    """The report's section with the discovered network's architecture.md, if trained."""
    table = shipped / "architecture.md"
    lines = ["## Discovered architecture", ""]
    if table.exists():  # its headings go one level down, under this section
        text = table.read_text().strip()
        lines += ["##" + line if line.startswith("#") else line for line in text.splitlines()]
    else:
        lines += ["Not trained yet."]
    return lines + [""]
