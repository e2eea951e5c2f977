"""Judging in worker processes (search/judge_pool.py): the readings are the serial judge's,
a worker killed mid-search is replaced and its arch judged again, and the search's history
does not depend on the number of judging processes."""

import json
import os
import pathlib
import signal
import subprocess
import sys

import numpy as np
import pytest
from search_helpers import SMALL_SEARCH_FLAGS, SPEC
from training_helpers import trainer_workdir

from netadapt_tf import data
from netadapt_tf.search.held_out_accuracy import EvalSettings, held_out_accuracy
from netadapt_tf.search.judge_pool import JudgePool
from netadapt_tf.space.arch import full_arch, random_arch, smallest_arch
from netadapt_tf.supernet.checkpoint import save_supernet
from netadapt_tf.supernet.network import build_supernet

REPO = pathlib.Path(__file__).resolve().parent.parent
DATA = data.DataConfig(
    name="synthetic",
    image_size=16,
    channels=3,
    batch_size=16,
    held_out=48,
    synthetic_examples=128,
    synthetic_classes=4,
)
# No BN recalibration here: its training batches are augmented by ops whose stream follows
# the process's global TensorFlow seed (which the test fixtures set and a fresh process does
# not), so the in-process serial reading would differ from every fresh process's. The search
# test below, fresh processes both, recalibrates.
SETTINGS = EvalSettings(batch_size=16)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> pathlib.Path:
    """A trainer's work directory whose super-network reads archs apart: random kernels,
    BN statistics and scales of order one (an untrained one outputs about 1e-8)."""
    root = trainer_workdir(tmp_path_factory.mktemp("train"), SPEC, DATA)
    model = build_supernet(SPEC)
    rng = np.random.default_rng(0)
    for variable in model.weights:
        shape = tuple(variable.shape)
        if "moving_variance" in variable.path or "gamma" in variable.path:
            variable.assign(rng.uniform(0.5, 1.5, shape).astype("float32"))
        elif "moving_mean" in variable.path or "beta" in variable.path:
            variable.assign(rng.normal(0, 0.2, shape).astype("float32"))
    save_supernet(model, root / "supernet")
    return root / "supernet"


def _archs():
    rng = np.random.default_rng(1)
    return [full_arch(SPEC), smallest_arch(SPEC)] + [random_arch(SPEC, rng) for _ in range(4)]


def test_pool_reads_what_the_serial_judge_reads_and_survives_a_killed_worker(trained):
    serial = held_out_accuracy(str(trained), SETTINGS)
    archs = _archs()
    expected = [serial(arch) for arch in archs]
    assert len(set(expected)) > 1  # the archs are read apart, so equality means something
    with JudgePool((str(trained), SETTINGS, None, False), workers=2) as pool:
        assert [pool(arch) for arch in archs[:3]] == expected[:3]
        victims = list(pool._pool._processes)
        assert len(victims) >= 1
        os.kill(victims[0], signal.SIGKILL)
        # The broken pool is replaced and the arch judged again, in a fresh worker.
        assert [pool(arch) for arch in archs[3:]] == expected[3:]
        assert pool.restarts == 1


def test_pool_refuses_a_bad_worker_count(trained):
    with pytest.raises(ValueError, match=r"judge_workers: 0 must be an integer >= 1"):
        JudgePool((str(trained), SETTINGS, None, False), workers=0)


@pytest.mark.slow
def test_search_history_is_the_same_with_two_judging_processes(trained, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    histories = []
    for workers in (1, 2):
        workdir = tmp_path / f"search{workers}"
        done = subprocess.run(
            [
                sys.executable,
                str(REPO / "tools" / "search.py"),
                f"--supernet_checkpoint={trained}",
                f"--workdir={workdir}",
                f"--judge_workers={workers}",
                *SMALL_SEARCH_FLAGS,
                "--recalibration_batches=1",
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        lines = (workdir / "history.jsonl").read_text().splitlines()
        histories.append([_without_times(json.loads(line)) for line in lines])
    assert len(histories[0]) > 2
    assert histories[0] == histories[1]


def _without_times(record):
    if isinstance(record, dict):
        return {k: _without_times(v) for k, v in record.items() if "second" not in k}
    if isinstance(record, list):
        return [_without_times(v) for v in record]
    return record
