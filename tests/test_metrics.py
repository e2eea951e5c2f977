"""Resource metrics: MACs, callables, host latency, the adb metric, the cache, agreement."""

import json
import os
import pathlib

import numpy as np
import pytest
from conftest import small_spec
from phone_helpers import FakePhones

from netadapt_tf.latency.adb import AdbBenchmarkBackend, AdbSettings
from netadapt_tf.metrics import (
    AdbLatencyMetric,
    CachedMetric,
    CallableMetric,
    HostLatencyMeasurement,
    HostLatencyMetric,
    HostSettings,
    MacsMetric,
    ResourceMetric,
    arch_key,
)
from netadapt_tf.metrics.agreement import ranks, share_within, spearman
from netadapt_tf.metrics.host import time_tflite
from netadapt_tf.metrics.measurement_cache import MeasurementCache
from netadapt_tf.space import macs
from netadapt_tf.space.arch import full_arch, random_arch, smallest_arch

TESTS = pathlib.Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def spec():
    return small_spec("mobilenet_v1", input_size=16)


@pytest.fixture(scope="module")
def host(spec):
    return HostLatencyMetric(spec, num_runs=10, warmup_runs=2)


def test_macs_metric_is_the_mac_counter(spec):
    arch = random_arch(spec, np.random.default_rng(0))
    metric = MacsMetric(spec)
    assert isinstance(metric, ResourceMetric)
    assert metric(arch) == macs.count(spec, arch).macs
    assert (metric.name, metric.unit) == ("macs", "MACs")
    assert metric.fingerprint()["spec"] == spec.fingerprint()


def test_callable_metric_wraps_any_function(spec):
    energy = CallableMetric(
        lambda arch: 2.0 * macs.count(spec, arch).macs, "energy", "nJ", {"model": "2 nJ/MAC"}
    )
    arch = full_arch(spec)
    assert energy(arch) == 2.0 * macs.count(spec, arch).macs
    assert energy.measure_many([arch, arch]) == [energy(arch)] * 2
    assert energy.fingerprint() == {
        "metric": "callable",
        "name": "energy",
        "unit": "nJ",
        "function": {"model": "2 nJ/MAC"},
    }
    with pytest.raises(TypeError, match="returned str 'fast'"):
        CallableMetric(lambda arch: "fast", "speed", "x", {})(arch)
    with pytest.raises(ValueError, match="CallableMetric.unit: '' must be"):
        CallableMetric(len, "speed", "", {})
    with pytest.raises(ValueError, match="not JSON-able"):
        CallableMetric(len, "speed", "x", {"f": len})


def test_host_latency_is_positive_and_fingerprinted(spec, host):
    measurement = host.measure(full_arch(spec))
    assert isinstance(measurement, HostLatencyMeasurement)
    assert measurement.latency_ms > 0 and measurement.spread_ms >= 0
    assert measurement.min_ms <= measurement.latency_ms <= measurement.max_ms
    assert (measurement.num_runs, measurement.statistic) == (10, "median")
    assert host(smallest_arch(spec)) > 0
    fingerprint = host.fingerprint()
    assert fingerprint["backend"] == "host_litert"
    assert fingerprint["settings"]["num_runs"] == 10
    assert fingerprint["model"] == {
        "spec": spec.fingerprint(),
        "quantization": "float32",
        "route": "frozen_function",
        "batch": 1,
    }
    assert fingerprint["host"]["cpu_count"] == os.cpu_count()
    assert fingerprint["libraries"]["tensorflow"] and fingerprint["libraries"]["ai-edge-litert"]
    json.dumps(fingerprint)


def test_thread_cpu_clock_and_pinning_restore_the_affinity(spec, host):
    model_bytes = host.converter.tflite(full_arch(spec))
    before = os.sched_getaffinity(0)
    cpu = min(before)
    settings = HostSettings(num_runs=5, warmup_runs=1, clock="thread_cpu", pin_cpus=(cpu,))
    measurement = time_tflite(model_bytes, settings)
    assert measurement.latency_ms > 0 and measurement.clock == "thread_cpu"
    assert os.sched_getaffinity(0) == before


def test_host_settings_refuse_bad_values():
    with pytest.raises(ValueError, match="'thread_cpu' counts only the calling thread"):
        HostSettings(clock="thread_cpu", threads=2)
    with pytest.raises(ValueError, match="num_runs: 2 must be an integer >= 5"):
        HostSettings(num_runs=2)
    with pytest.raises(ValueError, match="pin_cpus: .* must be a non-empty subset"):
        HostSettings(pin_cpus=(10_000,))
    with pytest.raises(ValueError, match="clock: 'tsc'"):
        HostSettings(clock="tsc")


class Counting(ResourceMetric):
    """A metric that counts its calls and can be told to fail."""

    name, unit = "count", "calls"

    def __init__(self):
        self.calls = 0
        self.fail = False

    def __call__(self, arch):
        self.calls += 1
        if self.fail:
            raise RuntimeError("phone unplugged")
        return float(len(arch.choices) + self.calls)

    def fingerprint(self):
        return {"metric": "counting", "version": 1}


def test_cached_metric_hits_the_cache_the_second_time(spec, tmp_path):
    inner = Counting()
    cached = CachedMetric(inner, MeasurementCache(tmp_path))
    arch = full_arch(spec)
    first = cached(arch)
    assert cached(arch) == first and inner.calls == 1
    assert (cached.hits, cached.misses) == (1, 1)
    # a new CachedMetric over the same directory reads what the first stored
    assert CachedMetric(inner, MeasurementCache(tmp_path))(arch) == first and inner.calls == 1
    other = smallest_arch(spec)
    assert cached.measure_many([arch, other, arch]) == [first, cached(other), first]
    assert inner.calls == 2


def test_cached_metric_never_stores_a_failure(spec, tmp_path):
    inner = Counting()
    cached = CachedMetric(inner, MeasurementCache(tmp_path))
    arch = full_arch(spec)
    inner.fail = True
    with pytest.raises(RuntimeError, match="unplugged"):
        cached(arch)
    inner.fail = False
    assert cached(arch) == len(arch.choices) + 2  # measured again, not read back


def test_cached_metric_recovers_from_a_corrupt_entry(spec, tmp_path):
    inner = Counting()
    cache = MeasurementCache(tmp_path)
    cached = CachedMetric(inner, cache)
    arch = full_arch(spec)
    cached(arch)
    entry = cache.entry_path(arch_key(arch), inner.fingerprint())
    entry.write_text('{"entry": {"value": 1e9}, "sha256": "0"}')
    assert cached(arch) == len(arch.choices) + 2
    assert inner.calls == 2
    assert cached(arch) == len(arch.choices) + 2 and inner.calls == 2


def test_arch_key_names_the_space_and_the_choices(spec):
    a, b = full_arch(spec), smallest_arch(spec)
    assert arch_key(a).startswith(f"arch:{spec.fingerprint()}:")
    assert arch_key(a) != arch_key(b) and arch_key(a) == arch_key(full_arch(spec))


def test_adb_metric_exports_pushes_and_parses(spec, tmp_path, monkeypatch):
    phones = FakePhones(tmp_path, monkeypatch)
    phones.update(
        props={"ro.product.cpu.abi": "arm64-v8a", "ro.product.model": "Pixel"},
        benchmark_output=str(TESTS / "fixtures/benchmark_model/android_adb_taskset_2020.txt"),
    )
    backend = AdbBenchmarkBackend(AdbSettings(serials=("SER1",), num_runs=7))
    metric = AdbLatencyMetric(spec, backend)
    archs = [full_arch(spec), smallest_arch(spec)]
    assert metric(archs[0]) == pytest.approx(33.2094)
    assert metric.measure_many(archs) == [pytest.approx(33.2094)] * 2
    pushes = phones.calls("push")
    assert len(pushes) == 3 and all(".tflite" in " ".join(c["argv"]) for c in pushes)
    assert list(phones.root.rglob("*.tflite")) == []  # removed from the phone
    fingerprint = metric.fingerprint()
    assert fingerprint["backend"]["device"]["model"] == "Pixel"
    assert fingerprint["backend"]["benchmark_flags"]["num_runs"] == 7
    assert fingerprint["model"]["quantization"] == "float32"


def test_spearman_and_share_within():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert list(ranks([5, 1, 5, 2])) == [3.5, 1.0, 3.5, 2.0]
    # textbook example with a tie: rho = Pearson of the average ranks
    a, b = [1, 2, 2, 3, 4], [2, 1, 4, 3, 5]
    ra, rb = ranks(a), ranks(b)
    assert spearman(a, b) == pytest.approx(np.corrcoef(ra, rb)[0, 1])
    assert share_within([1.05, 1.2, 0.95, 0.5], [1, 1, 1, 1]) == 0.5
    with pytest.raises(ValueError, match="length >= 2"):
        spearman([1], [1])
