"""Tests for the on-disk measurement cache: round trips, corruption, concurrency, SIGKILL."""

import concurrent.futures
import json
import math
import multiprocessing
import os
import pathlib
import signal
import subprocess
import sys

import pytest

from netadapt_tf.metrics.measurement_cache import MeasurementCache

REPO = pathlib.Path(__file__).resolve().parent.parent
FINGERPRINT = {"backend": "adb_benchmark_model", "device": {"model": "Pixel", "abi": "arm64-v8a"}}


def _entries(directory):
    return sorted(path for path in pathlib.Path(directory).glob("*/*.json"))


def _temp_files(directory):
    return sorted(pathlib.Path(directory).glob("*/.tmp-*"))


def test_round_trip_by_bytes_and_by_key(tmp_path):
    cache = MeasurementCache(tmp_path / "cache")
    assert cache.get(b"model bytes", FINGERPRINT) is None
    cache.put(b"model bytes", FINGERPRINT, 12.5)
    cache.put("mobilenet_v3/seed=0", FINGERPRINT, 7)
    # A reordered but equal fingerprint is the same key.
    reordered = {"device": {"abi": "arm64-v8a", "model": "Pixel"}, "backend": "adb_benchmark_model"}
    assert cache.get(bytearray(b"model bytes"), reordered) == 12.5
    assert cache.get("mobilenet_v3/seed=0", FINGERPRINT) == 7.0
    assert cache.get(b"other bytes", FINGERPRINT) is None
    assert cache.get(b"model bytes", {**FINGERPRINT, "benchmark_flags": {"num_threads": 4}}) is None
    # A fresh cache object on the same directory sees the same entries.
    assert MeasurementCache(tmp_path / "cache").get(b"model bytes", FINGERPRINT) == 12.5
    assert len(_entries(tmp_path / "cache")) == 2
    assert _temp_files(tmp_path / "cache") == []


def test_entry_file_layout(tmp_path):
    cache = MeasurementCache(tmp_path)
    cache.put(b"abc", FINGERPRINT, 3.25)
    path = cache.entry_path(b"abc", FINGERPRINT)
    assert path.parent.name == path.name[:2]
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["entry"] == {
        "format": 1,
        "model_key": "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "fingerprint": FINGERPRINT,
        "value": 3.25,
    }
    assert len(document["sha256"]) == 64


def test_overwrite_keeps_last_value(tmp_path):
    cache = MeasurementCache(tmp_path)
    cache.put("k", FINGERPRINT, 1.0)
    cache.put("k", FINGERPRINT, 2.0)
    assert cache.get("k", FINGERPRINT) == 2.0
    assert len(_entries(tmp_path)) == 1


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -0.5])
def test_put_refuses_bad_numbers(tmp_path, value):
    cache = MeasurementCache(tmp_path)
    with pytest.raises(ValueError, match="must be finite and >= 0"):
        cache.put("k", FINGERPRINT, value)
    assert _entries(tmp_path) == [] and _temp_files(tmp_path) == []


@pytest.mark.parametrize("value", [True, "3.0", None])
def test_put_refuses_non_numbers(tmp_path, value):
    with pytest.raises(TypeError, match="must be a real number"):
        MeasurementCache(tmp_path).put("k", FINGERPRINT, value)


def test_bad_keys_and_fingerprints(tmp_path):
    cache = MeasurementCache(tmp_path)
    with pytest.raises(ValueError, match="non-empty str"):
        cache.get("", FINGERPRINT)
    with pytest.raises(TypeError, match="got int"):
        cache.get(5, FINGERPRINT)
    with pytest.raises(TypeError, match="fingerprint must be a dict, got list"):
        cache.get("k", ["adb"])
    with pytest.raises(TypeError, match="fingerprint must be JSON-able"):
        cache.put("k", {"when": object()}, 1.0)
    with pytest.raises(TypeError, match="fingerprint must be JSON-able"):
        cache.put("k", {"ratio": math.nan}, 1.0)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda text: text.replace("3.25", "9.25"), id="value-changed"),
        pytest.param(lambda text: text.replace('"format":1', '"format":2'), id="format-changed"),
        pytest.param(lambda text: text[: len(text) // 2], id="truncated"),
        pytest.param(lambda text: "", id="empty"),
        pytest.param(lambda text: "\x00\x00\x00\x00", id="zeros"),
        pytest.param(lambda text: '{"entry": 1}', id="wrong-shape"),
    ],
)
def test_corrupt_entry_is_deleted_and_missed(tmp_path, damage, caplog):
    cache = MeasurementCache(tmp_path)
    cache.put(b"model", FINGERPRINT, 3.25)
    path = cache.entry_path(b"model", FINGERPRINT)
    path.write_text(damage(path.read_text(encoding="utf-8")), encoding="utf-8")
    assert cache.get(b"model", FINGERPRINT) is None
    assert not path.exists()
    assert "deleting corrupt measurement cache entry" in caplog.text
    # The miss is then measured again and stored.
    assert cache.get_or_measure(b"model", FINGERPRINT, lambda: 4.5) == 4.5
    assert cache.get(b"model", FINGERPRINT) == 4.5


def test_entry_under_the_wrong_name_is_not_trusted(tmp_path):
    # A valid entry copied to another key's file name (say, by a bad sync) is not that key's.
    cache = MeasurementCache(tmp_path)
    cache.put("a", FINGERPRINT, 1.0)
    wrong = cache.entry_path("b", FINGERPRINT)
    wrong.parent.mkdir(exist_ok=True)
    wrong.write_bytes(cache.entry_path("a", FINGERPRINT).read_bytes())
    assert cache.get("b", FINGERPRINT) is None
    assert not wrong.exists()
    assert cache.get("a", FINGERPRINT) == 1.0


def test_get_or_measure(tmp_path):
    cache = MeasurementCache(tmp_path)
    calls = []

    def measure():
        calls.append(1)
        return 8.0

    assert cache.get_or_measure("k", FINGERPRINT, measure) == 8.0
    assert cache.get_or_measure("k", FINGERPRINT, measure) == 8.0
    assert len(calls) == 1


def test_failed_measurement_is_not_cached(tmp_path):
    cache = MeasurementCache(tmp_path)

    def broken():
        raise RuntimeError("phone fell off the desk")

    with pytest.raises(RuntimeError, match="phone fell off the desk"):
        cache.get_or_measure("k", FINGERPRINT, broken)
    with pytest.raises(ValueError, match="finite"):
        cache.get_or_measure("k", FINGERPRINT, lambda: math.nan)
    assert cache.get("k", FINGERPRINT) is None
    assert _entries(tmp_path) == [] and _temp_files(tmp_path) == []


def test_concurrent_threads_same_key(tmp_path):
    cache = MeasurementCache(tmp_path)
    values = [float(i) for i in range(1, 9)]

    def write_and_read(value):
        seen = []
        for _ in range(20):
            cache.put("shared", FINGERPRINT, value)
            seen.append(cache.get("shared", FINGERPRINT))
        return seen

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        seen = [v for result in pool.map(write_and_read, values) for v in result]
    assert set(seen) <= set(values)
    assert cache.get("shared", FINGERPRINT) in values
    assert len(_entries(tmp_path)) == 1 and _temp_files(tmp_path) == []


# Run in child processes started with "spawn" (no inherited locks or threads), so these live
# at module level where the children can import them.
def _hammer_same_key(directory, value, rounds):
    cache = MeasurementCache(directory)
    seen = []
    for _ in range(rounds):
        cache.put("shared", FINGERPRINT, value)
        seen.append(cache.get("shared", FINGERPRINT))
    return seen


def _write_own_keys(directory, worker, count):
    cache = MeasurementCache(directory)
    for i in range(count):
        cache.put(f"worker{worker}/model{i}", FINGERPRINT, worker * 1000 + i)
    return worker


def test_concurrent_processes_same_key(tmp_path):
    values = [1.5, 2.5, 3.5, 4.5]
    context = multiprocessing.get_context("spawn")
    with context.Pool(len(values)) as pool:
        results = pool.starmap(_hammer_same_key, [(str(tmp_path), v, 25) for v in values])
    # Every read, in every process, saw one complete entry: never None, never a torn value.
    assert {v for seen in results for v in seen} <= set(values)
    assert MeasurementCache(tmp_path).get("shared", FINGERPRINT) in values
    assert len(_entries(tmp_path)) == 1 and _temp_files(tmp_path) == []


def test_concurrent_processes_different_keys(tmp_path):
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        assert pool.starmap(_write_own_keys, [(str(tmp_path), w, 30) for w in range(4)]) == [
            0,
            1,
            2,
            3,
        ]
    cache = MeasurementCache(tmp_path)
    for worker in range(4):
        for i in range(30):
            assert cache.get(f"worker{worker}/model{i}", FINGERPRINT) == worker * 1000 + i
    assert len(_entries(tmp_path)) == 120 and _temp_files(tmp_path) == []


# The child blocks inside `put` at the given step (after writing the temporary file, or after
# fsync but before the rename), says so, and is then killed with SIGKILL.
def test_a_writer_process_imports_the_cache_without_tensorflow():
    """Writer processes (the concurrent tests above, phone workers) import the cache alone:
    `netadapt_tf.metrics` loads its metrics on first use, so no TensorFlow comes with it."""
    code = (
        "import sys; import netadapt_tf.metrics.measurement_cache; "
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    import netadapt_tf.metrics as metrics

    assert metrics.MacsMetric.__module__ == "netadapt_tf.metrics.base"
    assert sorted(metrics.__all__) == sorted(set(metrics.__all__)) and len(metrics.__all__) == 14
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        metrics.Nope  # noqa: B018


_KILLED_WRITER = """
import os, sys, time
from netadapt_tf.metrics import measurement_cache

def stuck(*args, **kwargs):
    print("blocked", flush=True)
    time.sleep(60)

setattr(measurement_cache.os, sys.argv[2], stuck)
measurement_cache.MeasurementCache(sys.argv[1]).put("model", {"backend": "adb"}, 99.0)
"""


@pytest.mark.parametrize("blocked_at", ["fsync", "replace"])
@pytest.mark.parametrize("had_entry", [False, True])
def test_writer_killed_mid_write(tmp_path, blocked_at, had_entry):
    cache = MeasurementCache(tmp_path)
    fingerprint = {"backend": "adb"}
    if had_entry:
        cache.put("model", fingerprint, 5.0)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(tmp_path), blocked_at],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert child.stdout.readline() == b"blocked\n"
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        child.stdout.close()
        if child.poll() is None:
            child.kill()
    leftovers = _temp_files(tmp_path)
    assert len(leftovers) == 1
    assert b"99.0" in leftovers[0].read_bytes()
    # The half-done write is invisible: the old entry (or nothing) is still what is read.
    assert cache.get("model", fingerprint) == (5.0 if had_entry else None)
    cache.put("model", fingerprint, 6.0)
    assert cache.get("model", fingerprint) == 6.0
    # Fresh temporary files might belong to live writers; only stale ones are purged.
    assert cache.purge_temp_files(older_than_s=3600) == 0
    assert cache.purge_temp_files(older_than_s=0) == 1
    assert _temp_files(tmp_path) == []
    assert cache.get("model", fingerprint) == 6.0
