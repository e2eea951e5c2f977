"""benchmarks/demo_stages.py's report on recorded runs it did not make: stage seconds, their
ratio, and CPU use read off a /proc/stat log (synthetic files, no demo is run)."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "benchmarks", "demo_stages.py")
HZ = os.sysconf("SC_CLK_TCK")


def _stage(started, seconds):
    return {"command": ["x"], "finished": 1, "outputs": [], "seconds": seconds, "started": started}


def test_report_reads_stage_times_ratios_and_cpu_use(tmp_path):
    # The machine is busy at 1.5 cores from t=1000 to 1100, then at 2 cores to 1200.
    lines, busy = [], 0.0
    for t in range(1000, 1201):
        lines.append(f"{t} {busy:.0f} {t * 2 * HZ}")
        busy += (1.5 if t < 1100 else 2.0) * HZ
    (tmp_path / "cpu.log").write_text("\n".join(lines) + "\n")
    for run, stages in {
        "baseline": {"train": _stage(1000, 100), "search": _stage(1100, 50)},
        "current": {"train": _stage(1100, 50), "export": _stage(1150, 40), "late": _stage(1, None)},
    }.items():
        (tmp_path / run).mkdir()
        (tmp_path / run / "stages.json").write_text(json.dumps(stages))
    (tmp_path / "runs.json").write_text(
        json.dumps({"baseline": [1000, 1100], "current": [1100, 1200]})
    )
    done = subprocess.run(
        [sys.executable, SCRIPT, f"--workdir={tmp_path}", "--report_only", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    record = json.loads(done.stdout)
    train = record["stages"]["train"]
    assert train["baseline"] == {"seconds": 100.0, "cpu_percent": pytest.approx(150.0, abs=1)}
    assert train["current"] == {"seconds": 50.0, "cpu_percent": pytest.approx(200.0, abs=1)}
    assert train["ratio"] == 0.5
    assert (
        record["stages"]["search"]["current"] is None
        and record["stages"]["search"]["ratio"] is None
    )
    assert record["stages"]["export"]["baseline"] is None
    assert "late" not in record["stages"]  # not finished: no seconds
    assert record["whole"]["ratio"] == 1.0
    assert record["whole"]["current"]["cpu_percent"] == pytest.approx(200.0, abs=1)
    table = subprocess.run(
        [sys.executable, SCRIPT, f"--workdir={tmp_path}", "--report_only"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "train" in table and "0.50" in table and "whole run" in table


def test_without_report_only_a_baseline_tree_is_required(tmp_path):
    done = subprocess.run(
        [sys.executable, SCRIPT, f"--workdir={tmp_path}"], capture_output=True, text=True
    )
    assert done.returncode != 0 and "--baseline_tree" in done.stderr
