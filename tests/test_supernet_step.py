"""benchmarks/supernet_step.py on a tiny network: every variant timed, the one-core figures
taken in a second process pinned to one CPU and set up for one core, and the reported
ratios computed from the reported step times."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "benchmarks", "supernet_step.py")
TINY = [
    "--width_multiplier=0.25",
    "--input_size=16",
    "--batch_size=4",
    "--steps=1",
    "--rounds=2",
]


def _run(*flags) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": REPO}
    return subprocess.run(
        [sys.executable, SCRIPT, *TINY, *flags], capture_output=True, text=True, env=env
    )


@pytest.mark.slow
def test_one_core_figures_come_from_a_process_pinned_to_one_cpu():
    done = _run("--json")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    every, one = result["all_cores"], result["one_core"]
    assert set(every["step_ms"]) == {"plain", "od", "od_bypass", "full"}
    assert set(one["step_ms"]) == {"plain", "od_bypass", "full"}
    assert len(one["cpus"]) == 1 and one["replicas"] == 1
    assert result["replicas"] == len(os.sched_getaffinity(0))
    for figures in (every, one):
        assert all(ms > 0 for ms in figures["step_ms"].values())
        for name, (low, high) in figures["spread_ms"].items():
            assert low <= figures["step_ms"][name] <= high
    # The printed ratios are those of the printed step times (to their rounding).
    speedup = one["step_ms"]["plain"] / every["step_ms"]["plain"]
    assert result["cores_speedup"] == pytest.approx(speedup, rel=0.01)
    ratio = every["step_ms"]["full"] / every["step_ms"]["plain"]
    assert result["ratio"] == pytest.approx(ratio, rel=0.01)
