"""Exact resume: every stage that trains (the super-network, the discovered network, a
comparison column), killed with SIGKILL at several points (mid-epoch, between an epoch's
log line and its checkpoint, inside a checkpoint's save), ends with the same weights, byte
for byte, and the same log, line for line, as an uninterrupted run. The network has
dropout, whose random generator state must travel in the checkpoint
(tests/workers/train_stage_killed.py trains and kills)."""

import os
import signal
import subprocess
import sys

import keras
import pytest
from training_helpers import shallow_spec

from netadapt_tf.supernet import checkpoint
from netadapt_tf.supernet.network import build_supernet
from netadapt_tf.supernet.resume import model_state

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "workers", "train_stage_killed.py")
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([HERE, os.path.dirname(HERE)]),
    "TF_CPP_MIN_LOG_LEVEL": "3",
}


@pytest.fixture(scope="module")
def supernet_dir(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = build_supernet(shallow_spec(0.5))
    return str(checkpoint.save_supernet(model, tmp_path_factory.mktemp("ckpt") / "supernet"))


def _run(stage, workdir, point, supernet_dir):
    return subprocess.run(
        [sys.executable, WORKER, stage, str(workdir), point, supernet_dir],
        env=ENV,
        capture_output=True,
        text=True,
    )


def _outputs(stage, workdir):
    """(the final weights, the log's lines) a stage leaves."""
    if stage == "supernet":
        weights = checkpoint.load_supernet(workdir / "supernet").get_weights()
        return weights, (workdir / "train_log.jsonl").read_text().splitlines()
    if stage == "comparison":
        workdir = workdir / "column" / "a" / "seed0"
    model = keras.models.load_model(workdir / "model.keras", compile=False)
    return model.get_weights(), (workdir / "train_log.jsonl").read_text().splitlines()


def _killed_and_resumed_like_straight(stage, points, tmp_path, supernet_dir):
    straight = _run(stage, tmp_path / "straight", "none", supernet_dir)
    assert straight.returncode == 0, straight.stderr[-3000:]
    messages = []
    for point in points:
        killed = _run(stage, tmp_path / "killed", point, supernet_dir)
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr[-3000:])
        messages.append(killed.stdout + killed.stderr)
    finished = _run(stage, tmp_path / "killed", "none", supernet_dir)
    assert finished.returncode == 0, finished.stderr[-3000:]
    messages.append(finished.stdout + finished.stderr)
    want, want_log = _outputs(stage, tmp_path / "straight")
    got, got_log = _outputs(stage, tmp_path / "killed")
    assert got_log == want_log
    assert len(got) == len(want)
    for x, y in zip(want, got, strict=True):
        assert x.tobytes() == y.tobytes()
    return messages


@pytest.mark.slow
def test_the_supernet_killed_anywhere_ends_byte_identical(tmp_path, supernet_dir):
    # Saves at steps 2 (mid-epoch), 4 (epoch 1's end, after its log line), 6, 8. The first
    # process dies after epoch 1's log line, before its checkpoint; the second, resumed at
    # step 2, dies inside the save of step 6, before its checksums: the third resumes at 4.
    messages = _killed_and_resumed_like_straight(
        "supernet", ["before:2", "manifest:2"], tmp_path, supernet_dir
    )
    assert "resumed from" in messages[1] and "ckpt-2" in messages[1]
    assert "ckpt-6 is damaged" in messages[2] and "ckpt-6.sha256: no such file" in messages[2]
    assert "resumed from" in messages[2] and "ckpt-4" in messages[2]


@pytest.mark.slow
def test_the_discovered_network_killed_anywhere_ends_byte_identical(tmp_path, supernet_dir):
    messages = _killed_and_resumed_like_straight(
        "discovered", ["before:2", "manifest:2"], tmp_path, supernet_dir
    )
    assert "phase 0: checkpoint" in messages[2] and "ckpt-6 is damaged" in messages[2]


@pytest.mark.slow
def test_a_comparison_column_killed_between_log_and_checkpoint_ends_byte_identical(
    tmp_path, supernet_dir
):
    messages = _killed_and_resumed_like_straight("comparison", ["before:2"], tmp_path, supernet_dir)
    assert "resumed from" in messages[1]


def test_the_checkpoint_holds_the_dropout_generator_state_that_weights_leave_out():
    model = build_supernet(shallow_spec(0.5))
    extra = {v.path for v in model.variables} - {w.path for w in model.weights}
    assert extra and all("seed_generator_state" in path for path in extra), extra
    assert len(model_state(model)) == len(model.variables)
