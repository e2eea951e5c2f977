"""A metric whose values are kept on disk (MeasurementCache), keyed by arch and fingerprint.

The key is the spec fingerprint and the SHA-256 of the arch's JSON with sorted keys; the
cache's fingerprint is the wrapped metric's `fingerprint()`, so a value is reused only for
the same sub-network measured the same way. A measurement that raises is never stored, and
a corrupt entry is deleted by the cache and measured again. Safe to call from several
threads when the wrapped metric is (the cache's writes are atomic files).
"""

import hashlib
import json
import threading
from collections.abc import Iterable

from netadapt_tf.metrics.base import ResourceMetric
from netadapt_tf.metrics.measurement_cache import MeasurementCache
from netadapt_tf.space.arch import Arch


def arch_digest(arch: Arch) -> str:
    """SHA-256 (hex) of the arch's JSON with sorted keys."""
    text = json.dumps(arch.to_json(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def arch_key(arch: Arch) -> str:
    """The cache key of an arch: its super-network's fingerprint and its digest."""
    return f"arch:{arch.fingerprint}:{arch_digest(arch)}"


class CachedMetric(ResourceMetric):
    """`metric` with a disk cache in front of it."""

    def __init__(self, metric: ResourceMetric, cache: MeasurementCache):
        if not isinstance(metric, ResourceMetric):
            raise TypeError(f"CachedMetric: {type(metric).__name__} is not a ResourceMetric")
        if not isinstance(cache, MeasurementCache):
            raise TypeError(f"CachedMetric: {type(cache).__name__} is not a MeasurementCache")
        self.metric = metric
        self.cache = cache
        self.name = metric.name
        self.unit = metric.unit
        self.hits = 0
        self.misses = 0
        self._counting = threading.Lock()

    def _count(self, hits: int, misses: int) -> None:
        with self._counting:
            self.hits += hits
            self.misses += misses

    def __call__(self, arch: Arch) -> float:
        fingerprint = self.metric.fingerprint()
        key = arch_key(arch)
        cached = self.cache.get(key, fingerprint)
        if cached is not None:
            self._count(1, 0)
            return cached
        self._count(0, 1)
        value = self.metric(arch)
        self.cache.put(key, fingerprint, value)
        return float(value)

    def measure_many(self, archs: Iterable[Arch]) -> list[float]:
        """Cached values where present; the rest in one `metric.measure_many` call."""
        archs = list(archs)
        fingerprint = self.metric.fingerprint()
        values = [self.cache.get(arch_key(arch), fingerprint) for arch in archs]
        missing = [i for i, value in enumerate(values) if value is None]
        self._count(len(archs) - len(missing), len(missing))
        if missing:
            measured = self.metric.measure_many([archs[i] for i in missing])
            for i, value in zip(missing, measured, strict=True):
                self.cache.put(arch_key(archs[i]), fingerprint, value)
                values[i] = float(value)
        return values

    def fingerprint(self) -> dict:
        return self.metric.fingerprint()
