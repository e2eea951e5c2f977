"""Resource metrics of sub-networks: MACs, host and phone latency, lookup tables, any callable.

See docs/metrics.md. Every metric is a `ResourceMetric`: metric(arch) -> float, with `name`,
`unit` and a `fingerprint()` of what it measures and how.

The measurements are kept on disk by measurement_cache (`MeasurementCache`: keyed by what
was measured and how, safe with concurrent writers and crashes); it is not re-exported here.

The names below load their module on first use, so that importing one submodule (the
measurement cache, which writer processes import on their own) does not load TensorFlow.
"""

import importlib

# Exported name -> the submodule that defines it.
_EXPORTS = {
    "AdbLatencyMetric": "adb",
    "CachedMetric": "cached",
    "CallableMetric": "base",
    "GridSettings": "lookup_table",
    "HostLatencyMeasurement": "host",
    "HostLatencyMetric": "host",
    "HostSettings": "host",
    "LookupTable": "lookup_table",
    "LookupTableMetric": "lookup_table",
    "MacsMetric": "base",
    "ResourceMetric": "base",
    "TableMismatchError": "lookup_table",
    "arch_key": "cached",
    "build_table": "lookup_table",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
