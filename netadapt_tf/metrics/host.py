"""Latency of TFLite models on this machine's CPU, measured with the LiteRT interpreter.

Each measurement creates an interpreter (with its default XNNPACK delegate) for the model,
fills its inputs with random values, runs `warmup_runs` untimed invocations and then times
`num_runs` calls of `interpreter.invoke()` one by one. It reports the median with the
inter-quartile range as spread (also the standard deviation, min and max).

Two clocks: "wall" (time.perf_counter_ns, what a user waits) and "thread_cpu"
(time.thread_time_ns, the CPU time of the calling thread). With one interpreter thread all
work runs in the calling thread, so "thread_cpu" leaves out the time the thread waited for
a CPU; on a machine shared with other jobs the wall-clock median of a 10 ms model was 2x its
CPU time and varied by 13% between repeats, the CPU-time median by 4%. It is only allowed
with threads=1. `pin_cpus` restricts the calling thread (and the interpreter's worker
threads, which inherit it) to those CPUs during the measurement and restores the previous
affinity afterwards.
"""

import contextlib
import dataclasses
import os
import time

import numpy as np

from netadapt_tf.metrics import tflite
from netadapt_tf.metrics.base import ResourceMetric, host_identity, library_versions
from netadapt_tf.metrics.subnet_tflite import SubnetConverter
from netadapt_tf.space.arch import Arch
from netadapt_tf.space.spec import NetworkSpec

CLOCKS = ("wall", "thread_cpu")
MIN_RUNS = 5
_CLOCK_FUNCTIONS = {"wall": time.perf_counter_ns, "thread_cpu": time.thread_time_ns}


def _positive_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"HostSettings.{name}: {value!r} must be an integer >= {minimum}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class HostSettings:
    """How host latency is measured (all of it goes into the fingerprint)."""

    threads: int = 1
    warmup_runs: int = 5
    num_runs: int = 50
    pin_cpus: tuple[int, ...] | None = None
    clock: str = "wall"

    def __post_init__(self):
        _positive_int("threads", self.threads, 1)
        _positive_int("warmup_runs", self.warmup_runs, 0)
        _positive_int("num_runs", self.num_runs, MIN_RUNS)
        if self.clock not in CLOCKS:
            raise ValueError(f"HostSettings.clock: {self.clock!r} is not one of {CLOCKS}")
        if self.clock == "thread_cpu" and self.threads != 1:
            raise ValueError(
                f"HostSettings.clock: 'thread_cpu' counts only the calling thread, so it needs "
                f"threads=1, got threads={self.threads}"
            )
        if self.pin_cpus is not None:
            cpus = tuple(sorted(set(self.pin_cpus)))
            if not hasattr(os, "sched_setaffinity"):
                raise ValueError("HostSettings.pin_cpus: this platform cannot pin threads")
            allowed = os.sched_getaffinity(0)
            if not cpus or not set(cpus) <= allowed:
                raise ValueError(
                    f"HostSettings.pin_cpus: {self.pin_cpus!r} must be a non-empty subset of the "
                    f"CPUs this process may use, {sorted(allowed)}"
                )
            object.__setattr__(self, "pin_cpus", cpus)

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["pin_cpus"] = None if self.pin_cpus is None else list(self.pin_cpus)
        return d


@dataclasses.dataclass(frozen=True, kw_only=True)
class HostLatencyMeasurement:
    """One model's latency on this host: `latency_ms` is the median of the timed runs,
    `spread_ms` their inter-quartile range."""

    latency_ms: float
    statistic: str
    spread_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    num_runs: int
    clock: str

    @classmethod
    def from_samples(cls, samples_ns, clock: str) -> "HostLatencyMeasurement":
        ms = np.asarray(samples_ns, np.float64) / 1e6
        q1, median, q3 = np.percentile(ms, [25, 50, 75])
        return cls(
            latency_ms=float(median),
            statistic="median",
            spread_ms=float(q3 - q1),
            std_ms=float(ms.std()),
            min_ms=float(ms.min()),
            max_ms=float(ms.max()),
            num_runs=int(ms.size),
            clock=clock,
        )

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "spread": "iqr"}


@contextlib.contextmanager
def pinned(cpus: tuple[int, ...] | None):
    """Runs the body with the calling thread restricted to `cpus` (no-op for None)."""
    if cpus is None:
        yield
        return
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)


def time_tflite(
    model_bytes: bytes, settings: HostSettings, seed: int = 0
) -> HostLatencyMeasurement:
    """Times `interpreter.invoke()` of the model as `settings` say (inputs: random values)."""
    clock = _CLOCK_FUNCTIONS[settings.clock]
    rng = np.random.default_rng(seed)
    with pinned(settings.pin_cpus):
        interpreter = tflite.make_interpreter(model_bytes, settings.threads)
        for detail in interpreter.get_input_details():
            shape, dtype = detail["shape"], detail["dtype"]
            if np.issubdtype(dtype, np.integer):
                info = np.iinfo(dtype)
                values = rng.integers(info.min, info.max, size=shape, endpoint=True)
            else:
                values = rng.standard_normal(shape)
            interpreter.set_tensor(detail["index"], values.astype(dtype))
        for _ in range(settings.warmup_runs):
            interpreter.invoke()
        samples = np.empty(settings.num_runs, np.int64)
        invoke = interpreter.invoke
        for i in range(settings.num_runs):
            start = clock()
            invoke()
            samples[i] = clock() - start
    return HostLatencyMeasurement.from_samples(samples, settings.clock)


def host_fingerprint(settings: HostSettings) -> dict:
    """What a host measurement depends on, short of the model: settings, machine, libraries."""
    return {
        "metric": "latency",
        "backend": "host_litert",
        "statistic": "median_ms",
        "settings": settings.to_json(),
        "host": host_identity(),
        "libraries": library_versions(),
    }


class HostLatencyMetric(ResourceMetric):
    """Latency (ms) of a sub-network converted to TFLite and run on this host's CPU."""

    name = "latency"
    unit = "ms"

    def __init__(
        self,
        spec: NetworkSpec,
        threads: int = 1,
        warmup_runs: int = 5,
        num_runs: int = 50,
        pin_cpus: tuple[int, ...] | None = None,
        clock: str = "wall",
        quantization: str = "float32",
        route: str = "frozen_function",
    ):
        self.spec = spec
        self.settings = HostSettings(
            threads=threads,
            warmup_runs=warmup_runs,
            num_runs=num_runs,
            pin_cpus=None if pin_cpus is None else tuple(pin_cpus),
            clock=clock,
        )
        self.converter = SubnetConverter(spec, quantization, route)
        self._fingerprint: dict | None = None

    def measure_tflite(self, model_bytes: bytes) -> HostLatencyMeasurement:
        return time_tflite(model_bytes, self.settings)

    def measure(self, arch: Arch) -> HostLatencyMeasurement:
        return self.measure_tflite(self.converter.tflite(arch))

    def __call__(self, arch: Arch) -> float:
        return self.measure(arch).latency_ms

    def fingerprint(self) -> dict:
        if self._fingerprint is None:
            self._fingerprint = {
                **host_fingerprint(self.settings),
                "model": self.converter.settings(),
            }
        return dict(self._fingerprint)
