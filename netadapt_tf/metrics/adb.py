"""Latency of sub-networks on an Android phone: arch -> TFLite file -> `benchmark_model`.

The models are written to a temporary directory (atomically, then deleted) and measured by
an `AdbBenchmarkBackend` (netadapt_tf/latency/adb.py, docs/on_device.md), which pushes them,
runs the benchmark and removes them from the phone. `measure_many` hands every model to the
backend at once, so that several phones of one kind measure in parallel.
"""

import os
import tempfile
from collections.abc import Iterable

from netadapt_tf import tflite
from netadapt_tf.arch import Arch
from netadapt_tf.latency.adb import AdbBenchmarkBackend, LatencyMeasurement
from netadapt_tf.metrics.base import ResourceMetric, library_versions
from netadapt_tf.metrics.cached import arch_digest
from netadapt_tf.metrics.subnet_tflite import SubnetConverter
from netadapt_tf.spec import NetworkSpec


class AdbLatencyMetric(ResourceMetric):
    """Latency (ms, the benchmark's median) of archs of `spec` on the backend's phones."""

    name = "latency"
    unit = "ms"

    def __init__(
        self,
        spec: NetworkSpec,
        backend: AdbBenchmarkBackend,
        quantization: str = "float32",
        route: str = "frozen_function",
    ):
        if not isinstance(backend, AdbBenchmarkBackend):
            raise TypeError(
                f"AdbLatencyMetric: backend must be an AdbBenchmarkBackend, got "
                f"{type(backend).__name__}"
            )
        self.spec = spec
        self.backend = backend
        self.converter = SubnetConverter(spec, quantization, route)

    def _write(self, directory: str, name: str, model_bytes: bytes) -> str:
        path = os.path.join(directory, f"{name}.tflite")
        tflite.write_tflite(model_bytes, path)
        return path

    def measure_tflite(self, model_bytes: bytes, name: str = "model") -> LatencyMeasurement:
        with tempfile.TemporaryDirectory(prefix="netadapt_adb_") as directory:
            return self.backend.measure(self._write(directory, name, model_bytes))

    def measure(self, arch: Arch) -> LatencyMeasurement:
        name = f"{self.spec.name}_{arch_digest(arch)[:12]}"
        return self.measure_tflite(self.converter.tflite(arch), name)

    def __call__(self, arch: Arch) -> float:
        return self.measure(arch).latency_ms

    def measure_many(self, archs: Iterable[Arch]) -> list[float]:
        archs = list(archs)
        with tempfile.TemporaryDirectory(prefix="netadapt_adb_") as directory:
            paths = [
                self._write(
                    directory, f"{i:05d}_{arch_digest(arch)[:12]}", self.converter.tflite(arch)
                )
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
