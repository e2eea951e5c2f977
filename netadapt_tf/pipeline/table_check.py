"""Does a latency table predict the networks the search and the comparison make?

A lookup table is only as good as its predictions on the sub-networks it is used on, and
random archs (half their layers bypassed, widths all over the place) are not those: the
demo's comparison measures the initial network shrunk uniformly, and the search walks a
trajectory of shrinks of the previous best. `check_sets` makes the three sets, `measure`
times them on any latency backend with `measure_tflite(bytes)` (the host, a phone over adb,
the harness app), and `set_figures` says per set how the table agrees with the measurement
and how well the measurement agrees with itself:

- uniform: `uniform_arch` at each ratio of UNIFORM_RATIOS (the comparison's width curve);
- trajectory: one MCD search guided by the table, every sample of every iteration (the
  chosen ones are the trajectory, the others its candidates). Its accuracy stand-in is the
  sample's MACs: it keeps, among samples that meet a target, the one the table thinks
  cheapest for its computation, which is where a table that bends its axis is exploited
  most (docs/benchmarks.md: the demo's search chose twice the MACs of uniform 0.375 at a
  lower table latency);
- random: `random_arch` from a seed, as the accuracy benchmark drew before.

A network's measured latency is the fastest of `rounds` interleaved round medians (what the
demo's comparison reports). Repeatability: the fastest of the even rounds against the
fastest of the odd rounds, the same figures as for the table: the ceiling of any predictor.
"""

import dataclasses
from collections.abc import Callable

import numpy as np

from netadapt_tf.metrics.agreement import share_within, spearman
from netadapt_tf.search.mcd import MCDConfig, MCDOptimizer
from netadapt_tf.space import macs
from netadapt_tf.space.arch import Arch, full_arch, random_arch, smallest_arch, uniform_arch
from netadapt_tf.space.spec import NetworkSpec

UNIFORM_RATIOS = (0.125, 0.1875, 0.25, 0.3125, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0)
SETS = ("uniform", "trajectory", "random")


@dataclasses.dataclass(frozen=True, kw_only=True)
class CheckSettings:
    """What the sets hold. The trajectory is an MCD search of `samples` samples of `layers`
    layers per iteration, steps of `initial_reduction` decayed by `decay`, down to
    `target_fraction` of the initial prediction (the demo's search uses 0.35 and 0.15)."""

    ratios: tuple[float, ...] = UNIFORM_RATIOS
    num_random: int = 16
    random_seed: int = 2024
    target_fraction: float = 0.35
    samples: int = 4
    layers: int = 4
    initial_reduction: float = 0.15
    decay: float = 0.9
    max_iterations: int = 30
    search_seed: int = 0

    def __post_init__(self):
        if len(self.ratios) < 2 or not all(0 < r <= 1 for r in self.ratios):
            raise ValueError(f"CheckSettings.ratios: {self.ratios!r}; at least 2 in (0, 1]")
        if self.num_random < 2:
            raise ValueError(f"CheckSettings.num_random: {self.num_random} must be >= 2")

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "ratios": list(self.ratios)}


def uniform_set(spec: NetworkSpec, ratios) -> list[tuple[str, Arch]]:
    """The uniform width curve, one network per distinct arch (small spaces repeat)."""
    found, seen = [], set()
    for ratio in sorted(ratios):
        arch = uniform_arch(spec, ratio)
        if arch not in seen:
            seen.add(arch)
            found.append((f"uniform_{ratio:g}", arch))
    return found


def trajectory_target(spec: NetworkSpec, predict, fraction: float) -> float:
    """`fraction` of the initial prediction, or half-way down to the smallest network's
    where that is out of reach (small spaces)."""
    initial, smallest = predict(full_arch(spec)), predict(smallest_arch(spec))
    return max(fraction * initial, (initial + smallest) / 2 if fraction * initial < smallest else 0)


def trajectory_set(
    spec: NetworkSpec, predict: Callable[[Arch], float], settings: CheckSettings
) -> list[tuple[str, Arch]]:
    """Every sample an MCD search guided by `predict` makes (see the module doc); the
    chosen sample of iteration i is named `mcd_<i>_best`, the others `mcd_<i>_<j>`."""
    config = MCDConfig(
        target=trajectory_target(spec, predict, settings.target_fraction),
        samples_per_iteration=settings.samples,
        layers_per_sample=settings.layers,
        initial_reduction=settings.initial_reduction,
        decay=settings.decay,
        max_iterations=settings.max_iterations,
        seed=settings.search_seed,
    )
    search = MCDOptimizer(
        spec, config, accuracy=lambda a: float(macs.count(spec, a).macs), resource=predict
    )
    state = search.run().state
    found, seen = [], set()
    for it in state.iterations:
        for s in it.samples:
            if s.ok and s.arch not in seen:
                seen.add(s.arch)
                suffix = "best" if s.index == it.chosen else str(s.index)
                found.append((f"mcd_{it.iteration}_{suffix}", s.arch))
    return found


def random_set(spec: NetworkSpec, count: int, seed: int) -> list[tuple[str, Arch]]:
    rng = np.random.default_rng(seed)
    return [(f"random_{i}", random_arch(spec, rng)) for i in range(count)]


def check_sets(
    spec: NetworkSpec, predict: Callable[[Arch], float], settings: CheckSettings
) -> dict[str, list[tuple[str, Arch]]]:
    """name -> [(network name, arch)] for SETS."""
    return {
        "uniform": uniform_set(spec, settings.ratios),
        "trajectory": trajectory_set(spec, predict, settings),
        "random": random_set(spec, settings.num_random, settings.random_seed),
    }


def measure(backend, models: list[bytes], rounds: int, seed: int = 0) -> np.ndarray:
    """[rounds, models] latencies (ms): each round times every model once, in a shuffled
    order, with `backend.measure_tflite` (the host or a phone backend)."""
    if rounds < 1:
        raise ValueError(f"rounds: {rounds} must be >= 1")
    rng = np.random.default_rng(seed)
    timed = np.zeros((rounds, len(models)))
    for r in range(rounds):
        for i in rng.permutation(len(models)):
            timed[r, i] = float(backend.measure_tflite(models[int(i)]).latency_ms)
    return timed


def _agreement(predicted: np.ndarray, measured: np.ndarray) -> dict:
    ratio = predicted / measured
    return {
        "median_ratio": float(np.median(ratio)),
        "within_10pct": share_within(predicted, measured),
        "spearman": spearman(predicted, measured) if len(measured) > 1 else None,
        "max_abs_rel_error": float(np.max(np.abs(ratio - 1))),
    }


def set_figures(predicted, rounds: np.ndarray) -> dict:
    """The table against the measurement (fastest round) of one set, and the measurement
    against itself (`repeatability`: the fastest of the even rounds as the prediction of
    the fastest of the odd ones; None with one round)."""
    predicted = np.asarray(predicted, np.float64)
    rounds = np.asarray(rounds, np.float64)
    measured = rounds.min(axis=0)
    figures = {"n": int(len(measured)), **_agreement(predicted, measured)}
    figures["repeatability"] = (
        _agreement(rounds[0::2].min(axis=0), rounds[1::2].min(axis=0)) if len(rounds) > 1 else None
    )
    figures["predicted_ms"] = predicted.tolist()
    figures["measured_ms"] = measured.tolist()
    return figures


def check_table(
    table,
    backend,
    settings: CheckSettings | None = None,
    rounds: int = 6,
    convert: Callable[[list[Arch]], list[bytes]] | None = None,
    extra: list[tuple[str, Arch]] = (),
) -> dict:
    """`set_figures` of each of SETS for `table` (a complete LookupTable) measured on
    `backend` (anything with `measure_tflite` and a `converter`), all networks timed in the
    same interleaved rounds. `convert` turns archs into TFLite models (default: the
    backend's converter; the benchmark keeps them on disk). `extra` networks are timed in
    the same rounds and returned under "extra" (the benchmark's calibration networks).
    Returns {"settings", "rounds", "sets": {name: figures with "names"}, "extra"}."""
    settings = settings or CheckSettings()
    sets = check_sets(table.spec, table.predict, settings)
    named = [(s, n, a) for s, items in sets.items() for n, a in items]
    named += [("extra", n, a) for n, a in extra]
    archs = [a for _, _, a in named]
    models = convert(archs) if convert else [backend.converter.tflite(a) for a in archs]
    timed = measure(backend, models, rounds)
    predicted = np.array([table.predict(a) for a in archs])
    found = {"settings": settings.to_json(), "rounds": rounds, "sets": {}, "extra": None}
    for name in (*SETS, "extra"):
        where = [i for i, (s, _, _) in enumerate(named) if s == name]
        if not where:
            continue
        figures = set_figures(predicted[where], timed[:, where])
        figures["names"] = [named[i][1] for i in where]
        figures["rounds_ms"] = timed[:, where].tolist()
        if name == "extra":
            found["extra"] = figures
        else:
            found["sets"][name] = figures
    return found
