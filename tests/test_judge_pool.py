"""Judging in worker processes (search/judge_pool.py) and on a localhost cluster
(search/cluster_judge.py, tools/judge_server.py): the readings are the serial judge's, a
worker killed mid-search is replaced (or its work moved to the other worker) and its arch
judged again, the search's history does not depend on where samples are judged, and a
timing on this host never overlaps judging (HostTimingGate)."""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from search_helpers import SMALL_SEARCH_FLAGS, SPEC
from training_helpers import trainer_workdir

from netadapt_tf import data
from netadapt_tf.search.held_out_accuracy import EvalSettings, held_out_accuracy
from netadapt_tf.search.judge_pool import HostTimingGate, JudgePool
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


@pytest.mark.slow  # a pool of TensorFlow processes, started twice
def test_pool_reads_what_the_serial_judge_reads_and_survives_a_killed_worker(trained):
    serial = held_out_accuracy(str(trained), SETTINGS)
    archs = _archs()
    expected = [serial(arch) for arch in archs]
    assert len(set(expected)) > 1  # the archs are read apart, so equality means something
    with JudgePool((str(trained), SETTINGS, None, False), 2, num_examples=7) as pool:
        assert pool.num_examples == 7
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


def _search_history(trained, workdir, judging: list[str], env: dict) -> list:
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "search.py"),
            f"--supernet_checkpoint={trained}",
            f"--workdir={workdir}",
            *judging,
            *SMALL_SEARCH_FLAGS,
            "--recalibration_batches=1",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # Each iteration's line says how clear its choice was, however the samples are judged.
    iterations = [line for line in done.stdout.splitlines() if line.startswith("iteration ")]
    assert iterations and all("margin over the runner-up" in line for line in iterations)
    lines = (workdir / "history.jsonl").read_text().splitlines()
    return [_without_times(json.loads(line)) for line in lines]


@pytest.mark.slow
def test_search_history_is_the_same_with_two_judging_processes(trained, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    histories = [
        _search_history(trained, tmp_path / f"search{w}", [f"--judge_workers={w}"], env)
        for w in (1, 2)
    ]
    assert len(histories[0]) > 2
    assert histories[0] == histories[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


class _Cluster:
    """A chief address and two workers and one parameter server, tools/judge_server.py
    processes on localhost; `env(job, index)` is a task's environment."""

    def __init__(self):
        self.spec = {
            job: [f"localhost:{_free_port()}" for _ in range(count)]
            for job, count in (("chief", 1), ("worker", 2), ("ps", 1))
        }
        self.servers = {}
        for job in ("worker", "ps"):
            for index in range(len(self.spec[job])):
                self.servers[(job, index)] = subprocess.Popen(
                    [sys.executable, str(REPO / "tools" / "judge_server.py"), "--threads=1"],
                    env=self.env(job, index),
                    cwd=REPO,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
        for (job, index), server in self.servers.items():
            line = server.stdout.readline()
            assert f"judge_server: {job} {index} serving" in line, (job, index, line)

    def env(self, job: str, index: int) -> dict:
        config = {"cluster": self.spec, "task": {"type": job, "index": index}}
        return {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "TF_CONFIG": json.dumps(config),
        }

    def stop(self):
        for server in self.servers.values():
            server.kill()
            server.wait()


@pytest.fixture
def cluster():
    running = _Cluster()
    yield running
    running.stop()


@pytest.mark.slow
def test_cluster_reads_what_the_serial_judge_reads_and_survives_a_killed_worker(
    trained, cluster, tmp_path
):
    archs = tmp_path / "archs.json"
    archs.write_text(json.dumps([arch.to_json() for arch in _archs()]))
    out = tmp_path / "readings.json"
    settings = {"batch_size": 16, "recalibration_batches": 2}
    victim = cluster.servers[("worker", 0)].pid
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "tests" / "workers" / "cluster_readings.py"),
            str(trained),
            json.dumps(settings),
            str(archs),
            str(victim),
            str(out),
        ],
        env={**cluster.env("chief", 0), "PYTHONPATH": f"{REPO}:{REPO / 'tests'}"},
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    readings = json.loads(out.read_text())
    assert readings["workers"] == 2
    assert cluster.servers[("worker", 0)].poll() is not None  # the worker was killed
    assert len(set(readings["serial"])) > 1  # the archs are read apart
    # Top-1 counts: the same to the example whichever worker summed them.
    assert readings["cluster"] == readings["serial"]


@pytest.mark.slow
def test_search_history_is_the_same_judged_on_a_cluster(trained, cluster, tmp_path):
    serial = _search_history(
        trained,
        tmp_path / "serial",
        ["--judge_workers=1"],
        {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    judged = _search_history(
        trained, tmp_path / "cluster", ["--judge_cluster"], cluster.env("chief", 0)
    )
    assert len(serial) > 2
    assert judged == serial


def test_judge_server_and_cluster_judge_refuse_a_bad_tf_config(monkeypatch):
    from netadapt_tf.search.cluster_judge import cluster_resolver

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG: not set"):
        cluster_resolver()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:1"]}}))
    with pytest.raises(ValueError, match="no 'ps' task"):
        cluster_resolver()
    both = {"chief": ["a:1"], "worker": ["b:1"], "ps": ["c:1"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": both, "task": {"type": "worker"}}))
    with pytest.raises(ValueError, match="must be its 'chief'"):
        cluster_resolver()
    config = json.dumps({"cluster": both, "task": {"type": "chief", "index": 0}})
    done = subprocess.run(
        [sys.executable, str(REPO / "tools" / "judge_server.py")],
        env={**os.environ, "PYTHONPATH": str(REPO), "TF_CONFIG": config},
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "TF_CONFIG: task type 'chief'; allowed: 'worker' or 'ps'" in done.stderr


def test_a_host_timing_never_overlaps_judging():
    gate = HostTimingGate()
    events, lock = [], threading.Lock()

    def note(kind, start):
        with lock:
            events.append((kind, start, time.monotonic()))

    def judge(arch):
        start = time.monotonic()
        time.sleep(0.02)
        note("judge", start)
        return arch

    def measure(arch):
        start = time.monotonic()
        time.sleep(0.02)
        note("time", start)
        return arch

    judge.num_examples = 100
    judged, measured = gate.judge(judge), gate.measure(measure)
    assert judged.num_examples == 100  # the search's log reads it off the judge

    def sample(i):
        measured(i)
        judged(i)

    threads = [threading.Thread(target=sample, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    timings = [e for e in events if e[0] == "time"]
    judgings = [e for e in events if e[0] == "judge"]
    assert len(timings) == len(judgings) == 6
    for _, start, end in timings:  # nothing ran while a timing ran
        others = [e for e in events if e[1:] != (start, end)]
        assert all(o_end <= start or o_start >= end for _, o_start, o_end in others)
    # Judging overlapped judging: the gate does not make the pool serial.
    assert any(
        a[1] < b[2] and b[1] < a[2] for i, a in enumerate(judgings) for b in judgings[i + 1 :]
    )


def _without_times(record):
    if isinstance(record, dict):
        return {k: _without_times(v) for k, v in record.items() if "second" not in k}
    if isinstance(record, list):
        return [_without_times(v) for v in record]
    return record
