"""The baseline a user would otherwise pick: the initial network shrunk uniformly.

`uniform_arch(spec, ratio)` (in space/arch.py, since the latency table calibrates on it too)
keeps, in every layer, the smallest allowed width that is at least `ratio` of the full width
(kernel sizes stay full), so ratio 1 is the full network and every ratio > 0 keeps every
layer. `uniform_arch_for_resource` finds the largest such
network whose resource (any callable: MACs, a latency table, a phone) is at most a target,
e.g. the discovered network's latency, so the two are compared at the same cost.
"""

import dataclasses
import math
from collections.abc import Callable

from netadapt_tf.space.arch import Arch, uniform_arch
from netadapt_tf.space.spec import NetworkSpec


@dataclasses.dataclass(frozen=True)
class UniformBaseline:
    ratio: float
    arch: Arch
    resource: float


def uniform_arch_for_resource(
    spec: NetworkSpec,
    resource: Callable[[Arch], float],
    target: float,
    steps: int = 20,
) -> UniformBaseline:
    """The largest uniform shrink whose resource is <= target (bisection over the ratio;
    the resource of a uniform shrink does not grow as the ratio falls)."""
    if not math.isfinite(target) or target <= 0:
        raise ValueError(f"target: {target} must be a positive number")
    lo, hi = 0.0, 1.0
    best = None
    full = resource(uniform_arch(spec, 1.0))
    if full <= target:
        return UniformBaseline(1.0, uniform_arch(spec, 1.0), full)
    for _ in range(steps):
        mid = (lo + hi) / 2
        arch = uniform_arch(spec, mid)
        value = resource(arch)
        if value <= target:
            lo, best = mid, UniformBaseline(mid, arch, value)
        else:
            hi = mid
    if best is None:
        smallest = resource(uniform_arch(spec, 2.0**-steps))
        raise ValueError(
            f"target: {target} is below what any uniform shrink reaches "
            f"({smallest} at ratio {2.0**-steps:g})"
        )
    return best
