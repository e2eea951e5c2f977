"""Resource metrics of sub-networks: MACs, host and phone latency, lookup tables, any callable.

See docs/metrics.md. Every metric is a `ResourceMetric`: metric(arch) -> float, with `name`,
`unit` and a `fingerprint()` of what it measures and how.

The measurements are kept on disk by measurement_cache (`MeasurementCache`: keyed by what
was measured and how, safe with concurrent writers and crashes); it is not re-exported here.
"""

from netadapt_tf.metrics.adb import AdbLatencyMetric
from netadapt_tf.metrics.base import CallableMetric, MacsMetric, ResourceMetric
from netadapt_tf.metrics.cached import CachedMetric, arch_key
from netadapt_tf.metrics.host import HostLatencyMeasurement, HostLatencyMetric, HostSettings
from netadapt_tf.metrics.lookup_table import (
    GridSettings,
    LookupTable,
    LookupTableMetric,
    TableMismatchError,
    build_table,
)

__all__ = [
    "AdbLatencyMetric",
    "CachedMetric",
    "CallableMetric",
    "GridSettings",
    "HostLatencyMeasurement",
    "HostLatencyMetric",
    "HostSettings",
    "LookupTable",
    "LookupTableMetric",
    "MacsMetric",
    "ResourceMetric",
    "TableMismatchError",
    "arch_key",
    "build_table",
]
