"""What tools/android_benchmark.py reports: models timed in the harness app, with parity.

`benchmark_files` runs each .tflite file in the harness (android_app.py) with every delegate
and thread count asked for, on inputs drawn from a seed, and compares the phone's outputs
with LiteRT on this host for the same inputs (output_parity.py). The report is JSON-able;
`describe` prints it as a table.
"""

import hashlib
import os
from collections.abc import Sequence

from netadapt_tf.latency.android_app import AndroidAppBackend
from netadapt_tf.latency.output_parity import compare_outputs, inputs_file, make_inputs

__all__ = ["benchmark_files", "describe"]


def benchmark_files(
    backend: AndroidAppBackend,
    paths: Sequence[str | os.PathLike],
    *,
    delegates: Sequence[str],
    threads: Sequence[int],
    parity: bool = True,
    seed: int = 0,
) -> dict:
    """Runs every model on the backend's phones; with `parity`, on inputs drawn from `seed`
    and with the largest |phone - host| output difference per run."""
    paths = [os.fspath(path) for path in paths]
    models, arrays = [], []
    for path in paths:
        with open(path, "rb") as handle:
            models.append(handle.read())
        arrays.append(make_inputs(models[-1], seed) if parity else None)
    files = [None if a is None else inputs_file(a) for a in arrays]
    results = backend.run_models(paths, delegates=delegates, threads=threads, inputs=files)
    report = []
    for path, model, inputs, runs in zip(paths, models, arrays, results, strict=True):
        entries = []
        for run in runs:
            entry = run.to_json()
            if parity:
                where = f"{path} ({run.delegate}, {run.threads} threads)"
                entry["parity"] = compare_outputs(model, inputs, list(run.outputs), where).to_json()
            entries.append(entry)
        report.append(
            {
                "file": path,
                "bytes": len(model),
                "sha256": hashlib.sha256(model).hexdigest(),
                "runs": entries,
            }
        )
    return {
        "fingerprint": backend.fingerprint(),
        "lost_phones": backend.lost_phones,
        "parity_seed": seed if parity else None,
        "models": report,
    }


def _number(value, digits: str = ".4g") -> str:
    return "-" if value is None else format(value, digits)


def describe(report: dict) -> str:
    """The report as a fixed-width table, one row per model, delegate and thread count."""
    device = report["fingerprint"]["device"]
    lines = [
        f"phone        {device.get('manufacturer')} {device['model']} ({device['abi']}), "
        f"harness {device['harness_version']}"
    ]
    header = ("model", "delegate", "threads", "median ms", "p90 ms", "init ms", "peak MB", "parity")
    rows = [header]
    for model in report["models"]:
        for run in model["runs"]:
            peak = run["memory"].get("peak_rss_kb")
            parity = run.get("parity")
            rows.append(
                (
                    os.path.basename(model["file"]),
                    run["delegate"],
                    str(run["threads"]),
                    _number(run["latency_ms"]),
                    _number(run["p90_ms"]),
                    _number(run["init_ms"]),
                    _number(None if peak is None else peak / 1024),
                    "-" if parity is None else _number(parity["max_abs_diff"], ".3g"),
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    if report["lost_phones"]:
        lines.append(f"lost phones  {report['lost_phones']}")
    return "\n".join(lines)
