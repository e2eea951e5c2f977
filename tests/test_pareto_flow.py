"""benchmarks/pareto.py --quick end to end (slow): the flow a user runs (initial network
first, the super-network from it, the searches, every network trained to the budget on
every seed), killed with SIGKILL in the middle of its trainings and run again: the finished
stages and trainings are skipped, the killed one resumes, and the record is complete; a
third run changes nothing in it but the times."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from netadapt_tf.pipeline import comparison, pareto_record

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "pareto.py"


def _command(workdir) -> list[str]:
    return [sys.executable, str(SCRIPT), "--quick", f"--workdir={workdir}", "--json"]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


def _kill_when_trained(workdir: pathlib.Path, runs: int) -> None:
    """Starts the quick run and kills its whole process group with SIGKILL once
    the first part of train_networks has recorded `runs` trainings."""
    process = subprocess.Popen(
        _command(workdir),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    results = workdir / "train_networks_0" / comparison.RESULTS_FILE
    try:
        while process.poll() is None:
            if results.exists() and len(comparison.read_results(results)[1]) >= runs:
                break
            time.sleep(0.5)
        assert process.poll() is None, "the quick run ended before it could be killed"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _without_times(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in pareto_record.TIME_KEYS}


@pytest.mark.slow
def test_quick_run_survives_kill_9_and_completes(tmp_path):
    workdir = tmp_path / "pareto"
    _kill_when_trained(workdir, runs=1)
    before = comparison.read_results(workdir / "train_networks_0" / comparison.RESULTS_FILE)[1]
    stages = json.loads((workdir / "stages.json").read_text())
    assert stages["train_initial"]["seconds"] is not None
    assert stages["train_networks_0"]["seconds"] is None  # killed while it ran

    done = subprocess.run(_command(workdir), env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    for stage in ("setup", "learning_curve", "train_initial", "train_supernet", "search_80"):
        assert f"{stage}: done before" in done.stderr
    record = json.loads(done.stdout)
    after = comparison.read_results(workdir / "train_networks_0" / comparison.RESULTS_FILE)[1]
    assert after[: len(before)] == before  # the runs finished before the kill were kept

    # The record: the keys the issue names, every network on every seed.
    assert record["seeds"] == [0, 1] and record["budget_epochs"] >= 1
    assert len(record["budget"]["learning_curve"]) == 4
    uniform = [n for n in record["networks"].values() if n["kind"] == "uniform"]
    assert len(uniform) >= 3
    for name in ("discovered_80", "random_80", "discovered_60", "random_60", "uniform_1"):
        network = record["networks"][name]
        assert network["latency_ms"] > 0 and len(network["accuracies"]) == 2
    for key in ("80", "60"):
        for baseline in ("uniform", "random", "random_over_uniform"):
            margin = record["margins"][key][baseline]
            if margin is not None:
                assert margin["low"] <= margin["points"] <= margin["high"]
        assert record["margins"][key]["random"] is not None
    assert record["judge"]["decision"]["candidates"] >= 2
    assert -1 <= record["judge"]["compared"]["tau"] <= 1
    assert record["machine"]["cores"] >= 1 and record["commands"]["train_networks_1"]
    assert (workdir / "pareto.png").stat().st_size > 0

    again = subprocess.run(_command(workdir), env=_env(), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "runs (" not in again.stderr  # every stage skipped
    assert _without_times(json.loads(again.stdout)) == _without_times(record)
