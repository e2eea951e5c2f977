"""One measurement as a report: what tools/measure_latency.py prints.

`measure_tflite_file` times a .tflite file on the host or a phone; `measure_arch` measures an
arch with any backend (host, adb, android_app, table, macs), optionally through a
MeasurementCache. Both return a JSON-able dict with the value, its unit, the spread when the
backend reports one, the full measurement record and the fingerprint of what was measured
and how.
"""

import hashlib

from netadapt_tf.metrics import backend_flags
from netadapt_tf.metrics.base import MacsMetric, ResourceMetric
from netadapt_tf.metrics.cached import CachedMetric
from netadapt_tf.metrics.host import host_fingerprint, time_tflite
from netadapt_tf.metrics.lookup_table import LookupTable, LookupTableMetric
from netadapt_tf.metrics.measurement_cache import MeasurementCache
from netadapt_tf.space.arch import Arch
from netadapt_tf.space.spec import NetworkSpec


def _latency_report(measurement, fingerprint: dict) -> dict:
    return {
        "value": measurement.latency_ms,
        "unit": "ms",
        "latency_ms": measurement.latency_ms,
        "statistic": measurement.statistic,
        "spread_ms": measurement.spread_ms,
        "measurement": measurement.to_json(),
        "fingerprint": fingerprint,
        "cache": None,
    }


def measure_tflite_file(path: str, backend: str) -> dict:
    """Times the model in `path` with the host or phone backend the flags configure."""
    with open(path, "rb") as handle:
        model_bytes = handle.read()
    model = {"file": path, "sha256": hashlib.sha256(model_bytes).hexdigest()}
    if backend == "host":
        settings = backend_flags.host_settings_from_flags()
        fingerprint = {**host_fingerprint(settings), "model": model}
        return _latency_report(time_tflite(model_bytes, settings), fingerprint)
    if backend in ("adb", "android_app"):
        kind = "benchmark_model" if backend == "adb" else "android_app"
        phones = backend_flags.phone_backend_from_flags(kind)
        measurement = phones.measure_any(path)
        return _latency_report(measurement, {**phones.fingerprint(), "model": model})
    raise ValueError(
        f"--backend={backend} cannot measure a .tflite file; use host, adb or android_app"
    )


def metric_for(spec: NetworkSpec, backend: str, table_path: str | None) -> ResourceMetric:
    if backend == "macs":
        return MacsMetric(spec)
    if backend == "table":
        return LookupTableMetric(LookupTable.load(table_path, spec))
    return backend_flags.latency_metric_from_flags(spec)


def measure_arch(
    spec: NetworkSpec,
    arch: Arch,
    backend: str,
    table_path: str | None = None,
    cache: MeasurementCache | None = None,
) -> dict:
    """Measures `arch` with `backend`; with `cache`, reuses and stores the value."""
    metric = metric_for(spec, backend, table_path)
    if cache is None and backend in ("host", "adb", "android_app"):
        return _latency_report(metric.measure(arch), metric.fingerprint())
    state = None
    if cache is None:
        value = metric(arch)
    else:
        cached = CachedMetric(metric, cache)
        value = cached(arch)
        state = "hit" if cached.hits else "miss"
    report = {
        "value": value,
        "unit": metric.unit,
        "statistic": None,
        "spread_ms": None,
        "measurement": None,
        "fingerprint": metric.fingerprint(),
        "cache": state,
    }
    if metric.unit == "ms":
        report["latency_ms"] = value
    return report


def describe(report: dict) -> str:
    """The report as a few lines of text."""
    value, unit = report["value"], report["unit"]
    text = f"{value:,.0f} {unit}" if unit == "MACs" else f"{value:.4g} {unit}"
    lines = [f"source       {report.get('source')}", f"value        {text}"]
    if report.get("spread_ms") is not None:
        lines.append(f"spread       {report['spread_ms']:.4g} ms ({report.get('statistic')})")
    if report.get("cache"):
        lines.append(f"cache        {report['cache']}")
    fingerprint = report["fingerprint"]
    backend = fingerprint.get("backend", fingerprint.get("metric"))
    if isinstance(backend, dict):  # an adb metric nests the phone backend's fingerprint
        backend = backend.get("backend")
    lines.append(f"backend      {backend}")
    return "\n".join(lines)
