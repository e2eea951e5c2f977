"""The resource a search minimizes, chosen by name (tools/search.py --metric).

"macs" is always available. "host_latency" (TFLite on this host's CPU), "adb_latency"
(TFLite on Android phones, through `benchmark_model` or the android_benchmark/ harness app:
a PhoneBackend) and "table" (a latency lookup table from tools/build_latency_table.py) come
from netadapt_tf.metrics when that package is present. Measured latency goes through a
measurement cache, since the search measures every notch it tries and a resumed search must
not measure again. Every choice comes with the fingerprint that search.json records, and
says how many samples can be made at once (`workers`: one per phone) and which lock guards
its TensorFlow work (the judge must hold it too).
"""

import dataclasses
import importlib.util
import os
import threading
from collections.abc import Callable

from netadapt_tf.space import macs
from netadapt_tf.space.arch import Arch
from netadapt_tf.space.spec import NetworkSpec

METRICS = ("macs", "host_latency", "table", "adb_latency")
MACS_COUNTER = "netadapt_tf.macs/1"


@dataclasses.dataclass(frozen=True)
class Resource:
    """A resource callable with what search.json records about it; `workers` samples may
    call it at once, with `lock` held around other TensorFlow work (None: one at a time).
    `host_timed`: it times models on this host's CPUs, so nothing else may run meanwhile."""

    measure: Callable[[Arch], float]
    fingerprint: dict
    unit: str
    workers: int = 1
    lock: object = None
    host_timed: bool = False


def metrics_available() -> bool:
    return importlib.util.find_spec("netadapt_tf.metrics") is not None


def macs_resource(spec: NetworkSpec) -> Resource:
    """MACs counted from the architecture description (the same fingerprint as
    netadapt_tf.metrics.MacsMetric, so either can resume the other's search)."""

    def count(arch: Arch) -> float:
        return float(macs.count(spec, arch).macs)

    fingerprint = {"metric": "macs", "counter": MACS_COUNTER, "spec": spec.fingerprint()}
    return Resource(count, fingerprint, "MACs")


def make_resource(
    name: str,
    spec: NetworkSpec,
    table_path: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    phones=None,
    quantization: str = "float32",
) -> Resource:
    """The resource `name` of `spec`; `table_path` for "table", `cache_dir` for measured
    latency (measurements are kept there and reused by a resumed search), `phones` (a
    netadapt_tf.latency PhoneBackend, checked here) and `quantization` for "adb_latency"."""
    if name not in METRICS:
        raise ValueError(f"metric: {name!r} is not one of {METRICS}")
    if name == "table" and not table_path:
        raise ValueError("metric: 'table' needs a latency table file (--latency_table)")
    if (name == "adb_latency") != (phones is not None):
        raise ValueError(
            "metric: 'adb_latency' needs phones (--serial, --adb_backend) and only it takes them; "
            f"got metric {name!r} with phones {phones!r}"
        )
    if name != "table" and table_path:
        raise ValueError(f"metric: a latency table is only read by metric 'table', not {name!r}")
    if name == "macs":
        return macs_resource(spec)
    if not metrics_available():
        raise ValueError(
            f"metric: {name!r} needs the netadapt_tf.metrics package, which this checkout "
            "lacks; allowed here: 'macs'"
        )
    from netadapt_tf import metrics
    from netadapt_tf.metrics.measurement_cache import MeasurementCache

    if name == "table":
        metric = metrics.LookupTableMetric(metrics.LookupTable.load(table_path, spec))
        return Resource(metric, metric.fingerprint(), metric.unit)
    if cache_dir is None:
        raise ValueError(f"metric: {name!r} needs a measurement cache directory")
    if name == "host_latency":
        # One at a time: parallel samples would time each other on the same CPUs.
        metric = metrics.CachedMetric(metrics.HostLatencyMetric(spec), MeasurementCache(cache_dir))
        return Resource(metric, metric.fingerprint(), metric.unit, host_timed=True)
    lock = threading.Lock()
    phone_metric = metrics.AdbLatencyMetric(spec, phones, quantization, lock=lock)
    metric = metrics.CachedMetric(phone_metric, MeasurementCache(cache_dir))
    # fingerprint() checks every phone (adb state, ABI, the binary or app) before the search.
    workers = len(phones.settings.serials)
    return Resource(metric, metric.fingerprint(), metric.unit, workers=workers, lock=lock)
