"""The resource a search minimizes, chosen by name (tools/search.py --metric).

"macs" is always available. "host_latency" (TFLite on this host's CPU, through a
measurement cache, since the search measures every notch it tries) and "table" (a latency
lookup table from tools/build_latency_table.py) come from netadapt_tf.metrics when that
package is present. Every choice comes with the fingerprint that search.json records.
"""

import dataclasses
import importlib.util
import os
from collections.abc import Callable

from netadapt_tf import macs
from netadapt_tf.arch import Arch
from netadapt_tf.spec import NetworkSpec

METRICS = ("macs", "host_latency", "table")
MACS_COUNTER = "netadapt_tf.macs/1"


@dataclasses.dataclass(frozen=True)
class Resource:
    """A resource callable with what search.json records about it."""

    measure: Callable[[Arch], float]
    fingerprint: dict
    unit: str


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
) -> Resource:
    """The resource `name` of `spec`; `table_path` for "table", `cache_dir` for measured
    latency (measurements are kept there and reused by a resumed search)."""
    if name not in METRICS:
        raise ValueError(f"metric: {name!r} is not one of {METRICS}")
    if name == "table" and not table_path:
        raise ValueError("metric: 'table' needs a latency table file (--latency_table)")
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
    from netadapt_tf.measurement_cache import MeasurementCache

    if name == "table":
        metric = metrics.LookupTableMetric(metrics.LookupTable.load(table_path, spec))
    else:
        if cache_dir is None:
            raise ValueError("metric: 'host_latency' needs a measurement cache directory")
        metric = metrics.CachedMetric(metrics.HostLatencyMetric(spec), MeasurementCache(cache_dir))
    return Resource(metric, metric.fingerprint(), metric.unit)
