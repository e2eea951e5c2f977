"""Training on every CPU core (supernet/distribute.use_cores): the replicas give the training
of one replica, up to float rounding, and the cores are chosen and refused as documented."""

import os
import subprocess
import sys

import numpy as np
import pytest

from netadapt_tf.supernet import distribute

HERE = os.path.dirname(os.path.abspath(__file__))


def _train(cores: int, tmp_path) -> dict:
    out = tmp_path / f"cores{cores}.npz"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([os.path.dirname(HERE), HERE]),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    worker = os.path.join(HERE, "workers", "train_on_cores.py")
    proc = subprocess.run(
        [sys.executable, worker, str(cores), str(out), str(tmp_path / f"work{cores}")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(np.load(out))


@pytest.mark.slow  # two TensorFlow processes training; quick tier under 10 minutes
def test_two_replicas_train_what_one_trains(tmp_path):
    # Sub-networks drawn for the global batch (replica_rows), BN statistics summed across
    # replicas (the super-network's masked BN and the plain network's synchronized BN) and
    # losses over the global batch: two replicas take the steps one replica takes.
    one, two = _train(1, tmp_path), _train(2, tmp_path)
    assert int(one.pop("replicas")) == 1 and int(two.pop("replicas")) == 2
    assert one.keys() == two.keys()
    assert any(k.startswith("plain") for k in one) and any(k.startswith("super") for k in one)
    moved = 0
    for key in one:
        scale = max(float(np.abs(one[key]).max()), 1e-3)
        assert np.abs(one[key] - two[key]).max() <= 1e-4 * scale, key
        moved += not np.allclose(one[key], 0)
    assert moved > len(one) // 2


def test_bad_core_counts_are_refused():
    with pytest.raises(ValueError, match=r"cores: -1 must be an integer >= 0"):
        distribute.use_cores(-1)
    with pytest.raises(ValueError, match=r"cores: True must be an integer"):
        distribute.use_cores(True)


def test_cores_after_the_runtime_started_is_a_clear_error(tmp_path):
    code = (
        "import tensorflow as tf; tf.constant(1.0) + 1\n"
        "from netadapt_tf.supernet import distribute\n"
        "try:\n"
        "    distribute.use_cores(2)\n"
        "except ValueError as error:\n"
        "    print(error)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.path.dirname(HERE), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "TensorFlow's runtime already started" in proc.stdout
