"""The one interface of resource metrics, and the simplest metrics.

A `ResourceMetric` maps a sub-network (an Arch of one super-network) to a number: its MACs,
its latency on a phone or on this host, a latency predicted from a lookup table, an energy
estimate. The search only compares these numbers, so nothing here needs to be
differentiable. `fingerprint()` says what is measured and how (backend, settings, machine or
phone, library versions); two metrics with equal fingerprints are interchangeable, which is
what CachedMetric keys its entries on.
"""

import abc
import json
import os
import platform
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata

from netadapt_tf.space import macs
from netadapt_tf.space.arch import Arch
from netadapt_tf.space.spec import NetworkSpec


class ResourceMetric(abc.ABC):
    """`metric(arch)` is the resource of `arch` in `metric.unit`."""

    name: str
    unit: str

    @abc.abstractmethod
    def __call__(self, arch: Arch) -> float:
        """The resource of `arch`; raises (never returns a guess) when it cannot be measured."""

    @abc.abstractmethod
    def fingerprint(self) -> dict:
        """A JSON-able description of what is measured and how."""

    def measure_many(self, archs: Iterable[Arch]) -> list[float]:
        """The resource of each arch, in order (backends that can batch override this)."""
        return [self(arch) for arch in archs]


def library_versions() -> dict[str, str | None]:
    """Versions of the libraries that shape a converted model and how it runs."""
    versions = {"python": platform.python_version()}
    for package in ("tensorflow", "keras", "ai-edge-litert", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def host_identity() -> dict[str, object]:
    """The machine this process runs on: CPU model and count, OS and host name."""
    cpu = platform.processor() or None
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "node": platform.node(),
    }


class MacsMetric(ResourceMetric):
    """Multiply-accumulates counted from the architecture description (macs.count)."""

    name = "macs"
    unit = "MACs"

    def __init__(self, spec: NetworkSpec):
        self.spec = spec

    def __call__(self, arch: Arch) -> float:
        return float(macs.count(self.spec, arch).macs)

    def fingerprint(self) -> dict:
        return {"metric": "macs", "counter": "netadapt_tf.macs/1", "spec": self.spec.fingerprint()}


class CallableMetric(ResourceMetric):
    """Any function of an arch as a metric: an energy model, peak memory, a custom proxy.

    `fingerprint` must describe the function well enough that a cached value is reused only
    for the same function (a version string, its parameters); it is copied at construction.
    """

    def __init__(self, fn: Callable[[Arch], float], name: str, unit: str, fingerprint: Mapping):
        if not callable(fn):
            raise TypeError(f"CallableMetric: fn must be callable, got {type(fn).__name__}")
        for field, value in (("name", name), ("unit", unit)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"CallableMetric.{field}: {value!r} must be a non-empty string")
        if not isinstance(fingerprint, Mapping):
            raise TypeError(
                f"CallableMetric.fingerprint: expected a dict, got {type(fingerprint).__name__}"
            )
        try:
            self._fingerprint = json.loads(json.dumps(dict(fingerprint), sort_keys=True))
        except (TypeError, ValueError) as error:
            raise ValueError(f"CallableMetric.fingerprint: not JSON-able ({error})") from None
        self.fn = fn
        self.name = name
        self.unit = unit

    def __call__(self, arch: Arch) -> float:
        value = self.fn(arch)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(
                f"metric {self.name!r}: the function returned {type(value).__name__} "
                f"{value!r}, not a number"
            )
        return float(value)

    def fingerprint(self) -> dict:
        return {
            "metric": "callable",
            "name": self.name,
            "unit": self.unit,
            "function": self._fingerprint,
        }
