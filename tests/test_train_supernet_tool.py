"""tools/train_supernet.py end to end on the synthetic preset, and its input errors."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "tools", "train_supernet.py")


def _run(*args):
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, TOOL, *args], capture_output=True, text=True, env=env, cwd=ROOT
    )


@pytest.mark.slow
def test_trains_the_test_preset_and_refuses_other_settings_in_its_workdir(tmp_path):
    done = _run("--preset=test", f"--workdir={tmp_path}")
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout[done.stdout.index("{") :])
    assert summary["steps"] == 6  # (128 - 32 held out) / 16
    assert set(summary["held_out_accuracy"]) == {"full", "smallest", "random0", "random1"}
    split = json.loads((tmp_path / "held_out_split.json").read_text())
    assert split["num_held_out"] == 32
    assert (tmp_path / "supernet" / "spec.json").exists()
    other = _run("--preset=test", f"--workdir={tmp_path}", "--batch_size=8")
    assert other.returncode != 0
    assert "holds a run with other settings (differing: ['data', 'train'])" in other.stderr


def test_unknown_dataset_and_stray_arguments_fail_before_training(tmp_path):
    bad = _run("--preset=test", f"--workdir={tmp_path}", "--dataset=mnist_typo")
    assert bad.returncode != 0
    assert "unknown dataset 'mnist_typo'" in bad.stderr
    assert not (tmp_path / "checkpoints").exists()
    stray = _run("--preset=test", f"--workdir={tmp_path}", "extra")
    assert stray.returncode != 0 and "unexpected arguments: ['extra']" in stray.stderr
