"""The arithmetic of the converged comparison (benchmarks/pareto.py): the training budget
read off a learning curve, and margins with 95% intervals.

Budget: the initial network's validation accuracy after each epoch of one run (the recipe's
learning rate decays per epoch, not over a total, so the first b epochs of a long run are a
b-epoch run); the budget is the smallest probed b whose doubling adds under `gain` (0.5
points by default).

Margins: every network is trained on several seeds, and the seed-to-seed noise is pooled
over all of them (one variance, the sum of every network's squared deviations over the sum
of its seeds less one), so a 3-seed network borrows the degrees of freedom of the others.
The margin over the uniform curve is taken at the network's measured latency, against the
curve's frontier (a width slower and no more accurate than another is no choice a user would
make) interpolated linearly between its two neighbours with weights (1 - w, w). The curve's
own seed noise enters through that interpolation: the variance of the difference is
s^2 (1/n + (1 - w)^2 / n0 + w^2 / n1), s^2 the pooled variance, n, n0, n1 the seeds of the
network and of the two curve points. Faster than every curve point, the margin over the
fastest point is a lower bound (`bound`): the curve does not gain accuracy as latency falls.
The interval is Student's t at the pooled degrees of freedom.
"""

import dataclasses
import math
from collections.abc import Mapping, Sequence

from netadapt_tf.pipeline.comparison import frontier, mean

# Learning-curve rule: doubling the budget adds under this much accuracy (0.5 points).
PLATEAU_GAIN = 0.005


def t_quantile_975(dof: int) -> float:
    """The 97.5% quantile of Student's t with `dof` degrees of freedom (the two-sided 95%
    interval's half-width in standard errors): the Cornish-Fisher expansion of Abramowitz
    and Stegun 26.7.5, within 0.002 of the exact value from 5 degrees of freedom up; 1 to 4
    degrees are exact (the expansion is 0.004 off at 3)."""
    if dof < 1:
        raise ValueError(f"dof: {dof} must be >= 1")
    exact = {1: 12.706204736174694, 2: 4.302652729749464, 3: 3.182446305284263}
    if dof in {*exact, 4}:
        return exact.get(dof, 2.7764451051977987)
    z = 1.959963984540054
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / dof + g2 / dof**2 + g3 / dof**3 + g4 / dof**4


def choose_budget(curve: Sequence[tuple[int, float]], gain: float = PLATEAU_GAIN) -> dict:
    """`curve`: (epochs, validation accuracy) after each epoch of one run. Probes the
    budgets 1, 2, 4, ... up to half the run and returns {"epochs": the first budget b whose
    doubling adds under `gain`, "plateau": whether one did, "probes": [(b, acc(b),
    acc(2b))]}; without a plateau the epochs are the run's last probed doubling."""
    by_epoch = dict(curve)
    if not by_epoch:
        raise ValueError("learning curve: empty; allowed: (epochs, accuracy) per epoch")
    probes, budget = [], 1
    while 2 * budget in by_epoch and budget in by_epoch:
        probes.append((budget, by_epoch[budget], by_epoch[2 * budget]))
        if by_epoch[2 * budget] - by_epoch[budget] < gain:
            return {"epochs": budget, "plateau": True, "probes": probes}
        budget *= 2
    if not probes:
        raise ValueError(
            f"learning curve: epochs {sorted(by_epoch)} hold no budget and its double; "
            "allowed: every epoch from 1 to at least 2"
        )
    return {"epochs": probes[-1][0] * 2, "plateau": False, "probes": probes}


def pooled_variance(groups: Mapping[str, Sequence[float]]) -> tuple[float, int]:
    """(variance of one training run, degrees of freedom) pooled over every network's
    seeds; ValueError when no network has two seeds."""
    squares, dof = 0.0, 0
    for values in groups.values():
        if len(values) > 1:
            m = mean(values)
            squares += sum((v - m) ** 2 for v in values)
            dof += len(values) - 1
    if not dof:
        raise ValueError("seeds: no network has two seeds; allowed: at least one with >= 2")
    return squares / dof, dof


@dataclasses.dataclass(frozen=True)
class Interval:
    """A difference in accuracy points with its 95% interval [low, high]; `bound`: the
    difference is a lower bound (see the module docstring); `against`: what was compared."""

    points: float
    low: float
    high: float
    bound: bool = False
    against: str = ""

    @property
    def outside_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def to_json(self) -> dict:
        return {
            "points": round(self.points, 3),
            "low": round(self.low, 3),
            "high": round(self.high, 3),
            "bound": self.bound,
            "against": self.against,
        }


def _interval(diff: float, weight_sum: float, variance: float, dof: int, **kw) -> Interval:
    half = t_quantile_975(dof) * math.sqrt(variance * weight_sum)
    return Interval(100 * diff, 100 * (diff - half), 100 * (diff + half), **kw)


def margin_over_curve(
    curve: Sequence[tuple[str, float, Sequence[float]]],
    latency: float,
    accuracies: Sequence[float],
    variance: float,
    dof: int,
) -> Interval | None:
    """The margin of a network (`accuracies` per seed, at measured `latency`) over the
    curve ((name, latency, accuracies per seed) per point), None when it is slower than
    every curve point."""
    points = frontier([(ms, mean(accs), len(accs), name) for name, ms, accs in curve])
    n = len(accuracies)
    own = mean(accuracies)
    if not points or latency > max(ms for _, ms, _ in curve):
        return None
    if latency <= points[0][0]:
        ms, acc, k, name = points[0]
        return _interval(own - acc, 1 / n + 1 / k, variance, dof, bound=latency < ms, against=name)
    if latency >= points[-1][0]:  # slower widths are no more accurate than this one
        ms, acc, k, name = points[-1]
        return _interval(own - acc, 1 / n + 1 / k, variance, dof, against=name)
    for (x0, y0, n0, a), (x1, y1, n1, b) in zip(points, points[1:], strict=False):
        if x0 <= latency <= x1:
            w = (latency - x0) / (x1 - x0)
            at = (1 - w) * y0 + w * y1
            weights = 1 / n + (1 - w) ** 2 / n0 + w**2 / n1
            return _interval(own - at, weights, variance, dof, against=f"{a}..{b} at w={w:.2f}")
    raise AssertionError("unreachable: latency inside the frontier")


def difference(
    accuracies: Sequence[float], other: Sequence[float], variance: float, dof: int, name: str
) -> Interval:
    """mean(accuracies) - mean(other) with its interval (the pooled variance)."""
    weights = 1 / len(accuracies) + 1 / len(other)
    return _interval(mean(accuracies) - mean(other), weights, variance, dof, against=name)
