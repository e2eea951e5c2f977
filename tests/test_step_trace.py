"""benchmarks/step_trace.py on a small network: both optimizers traced and timed in each
round, the fused step has fewer ops, and the ratios are those of the reported medians."""

import json
import os
import statistics
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "benchmarks", "step_trace.py")


@pytest.mark.slow
def test_step_trace_reports_both_optimizers_and_their_ratios():
    flags = ["--input_size=16", "--batch_size=8", "--steps=1", "--rounds=2", "--json"]
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, SCRIPT, *flags], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    keras_figures, fused_figures = result["figures"]["keras"], result["figures"]["fused"]
    for figures in (keras_figures, fused_figures):
        assert len(figures["trace_s"]) == 2 and min(figures["trace_s"]) > 0
        assert min(figures["step_ms"]) > 0
    # One op per variable instead of Keras' 15-30: far fewer ops, every round.
    assert max(fused_figures["ops"]) < 0.8 * min(keras_figures["ops"])
    median = {k: statistics.median(f["trace_s"]) for k, f in result["figures"].items()}
    assert result["trace_ratio"] == round(median["fused"] / median["keras"], 3)
    assert result["replicas"] == 1 and result["optimizer"] == "adam"
