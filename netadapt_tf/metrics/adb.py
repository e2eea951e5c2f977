"""Latency of sub-networks on Android phones: arch -> TFLite file -> a phone backend.

The backend is either `AdbBenchmarkBackend` (TFLite's `benchmark_model` over adb) or
`AndroidAppBackend` (the android_benchmark/ harness app); both are `PhoneBackend`s
(netadapt_tf/latency/phones.py, docs/on_device.md) that push the model, measure it, parse the
result and remove it. Models are written to a temporary directory (atomically, then deleted).

Several threads may call `metric(arch)` at once (the search's samples, one thread per phone):
each call converts its arch while holding `lock` (TensorFlow work, which the search also does
while judging samples, runs one at a time) and then measures on whichever phone is idle, so
phones measure in parallel; a phone lost meanwhile hands its model to another
(`PhoneBackend.measure_any`). `measure_many` hands all models to the backend at once.
"""

import os
import tempfile
import threading
from collections.abc import Iterable

from netadapt_tf.latency.adb import LatencyMeasurement
from netadapt_tf.latency.phones import PhoneBackend
from netadapt_tf.metrics import tflite
from netadapt_tf.metrics.base import ResourceMetric, library_versions
from netadapt_tf.metrics.cached import arch_digest
from netadapt_tf.metrics.subnet_tflite import SubnetConverter
from netadapt_tf.space.arch import Arch
from netadapt_tf.space.spec import NetworkSpec


class AdbLatencyMetric(ResourceMetric):
    """Latency (ms, the median of the timed runs) of archs of `spec` on the backend's phones.

    `lock` is held while an arch is converted; pass the lock that guards the rest of the
    process's TensorFlow work (the search's judge) when calling from several threads.
    """

    name = "latency"
    unit = "ms"

    def __init__(
        self,
        spec: NetworkSpec,
        backend: PhoneBackend,
        quantization: str = "float32",
        route: str = "frozen_function",
        lock=None,
    ):
        if not isinstance(backend, PhoneBackend):
            raise TypeError(
                f"AdbLatencyMetric: backend must be an AdbBenchmarkBackend or AndroidAppBackend, "
                f"got {type(backend).__name__}"
            )
        self.spec = spec
        self.backend = backend
        self.converter = SubnetConverter(spec, quantization, route)
        self.lock = threading.Lock() if lock is None else lock

    def _write(self, directory: str, name: str, model_bytes: bytes) -> str:
        path = os.path.join(directory, f"{name}.tflite")
        tflite.write_tflite(model_bytes, path)
        return path

    def _convert(self, arch: Arch) -> bytes:
        with self.lock:
            return self.converter.tflite(arch)

    def measure_tflite(self, model_bytes: bytes, name: str = "model") -> LatencyMeasurement:
        with tempfile.TemporaryDirectory(prefix="netadapt_adb_") as directory:
            return self.backend.measure_any(self._write(directory, name, model_bytes))

    def measure(self, arch: Arch) -> LatencyMeasurement:
        name = f"{self.spec.name}_{arch_digest(arch)[:12]}"
        return self.measure_tflite(self._convert(arch), name)

    def __call__(self, arch: Arch) -> float:
        return self.measure(arch).latency_ms

    def measure_many(self, archs: Iterable[Arch]) -> list[float]:
        archs = list(archs)
        with tempfile.TemporaryDirectory(prefix="netadapt_adb_") as directory:
            paths = [
                self._write(directory, f"{i:05d}_{arch_digest(arch)[:12]}", self._convert(arch))
                for i, arch in enumerate(archs)
            ]
            return [m.latency_ms for m in self.backend.measure_many(paths)]

    def fingerprint(self) -> dict:
        return {
            "metric": "latency",
            "backend": self.backend.fingerprint(),
            "model": self.converter.settings(),
            "libraries": library_versions(),
        }
