"""The demo's comparison at equal training: which networks, their records, and the verdict.

The discovered network is compared with the networks a user would otherwise pick: the
initial network shrunk uniformly to several width fractions (the uniform curve; fraction 1
is the initial network itself) and the pick of a random search with as many judged samples.
Every network is trained with the same recipe and steps from the same start, in two
columns: all inheriting the super-network's weights, all from scratch (tools/
train_comparison.py). The discovered network and the curve point nearest to it in table
latency are trained with more than one seed, so the seed-to-seed noise is measured next to
the margin.

Records (each written atomically, read strictly):
  networks.json  the plan: per network its arch file, seeds, MACs, parameters and table
                 latency (`plan_networks`, written by the demo's comparison_archs step)
  <column>/results.json  per (network, seed) the test accuracy (train_comparison.py)
  measured.json  per network the host latency (LiteRT, interleaved rounds) and the accuracy
                 read from the super-network (tools/measure_comparison.py)

The arithmetic of the verdict is here as small pure functions: the curve's frontier (a
point slower and no more accurate than another is no choice a user would make, so the
margin is taken over the best uniform network at each latency), the frontier interpolated
at a latency, the pooled seed-to-seed standard deviation, the margin and whether it is inside the
noise, and where the curve starts to fall.
"""

import dataclasses
import math
import pathlib
from collections.abc import Callable, Iterable, Sequence

from netadapt_tf.common import atomic_files
from netadapt_tf.common import strict_json as sj
from netadapt_tf.discovered.uniform_baseline import uniform_arch
from netadapt_tf.space.arch import Arch, save_arch
from netadapt_tf.space.macs import count
from netadapt_tf.space.spec import NetworkSpec

KINDS = ("uniform", "discovered", "random")
COLUMNS = ("inherit", "scratch")
NETWORKS_FILE = "networks.json"
RESULTS_FILE = "results.json"
MEASURED_FILE = "measured.json"
# A margin is "outside the noise" when it is at least this many standard deviations of the
# margin away from zero (about 95% for a normal difference).
NOISE_SDS = 2.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class Network:
    """One network of the comparison. `ratio` is the uniform width fraction (None for the
    discovered and the random-search networks); `arch` the arch file's path relative to the
    comparison directory; `seeds` the training seeds of each column."""

    name: str
    kind: str
    ratio: float | None
    arch: str
    seeds: tuple[int, ...]
    macs: int
    params: int
    table_ms: float

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Network.kind: {self.kind!r} is not one of {KINDS}")
        if (self.ratio is None) != (self.kind != "uniform"):
            raise ValueError(
                f"Network {self.name!r}: ratio {self.ratio!r} is not allowed for kind "
                f"{self.kind!r}; allowed: a fraction in (0, 1] for 'uniform', None otherwise"
            )
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(
                f"Network {self.name!r}.seeds: {self.seeds!r}; allowed: distinct seeds, "
                "at least one"
            )

    @property
    def is_initial(self) -> bool:
        return self.kind == "uniform" and self.ratio == 1.0

    def label(self) -> str:
        if self.is_initial:
            return "initial network (uniform 1.0)"
        if self.kind == "uniform":
            return f"uniform {self.ratio:g}"
        return {"discovered": "discovered network", "random": "random-search pick"}[self.kind]

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "seeds": list(self.seeds)}

    @classmethod
    def from_json(cls, data, field: str) -> "Network":
        keys = ("name", "kind", "ratio", "arch", "seeds", "macs", "params", "table_ms")
        sj.obj(data, field, keys)
        seeds = sj.array(data["seeds"], f"{field}.seeds", lambda v, f: sj.integer(v, f, 0))
        try:
            return cls(
                name=sj.string(data["name"], f"{field}.name"),
                kind=sj.string(data["kind"], f"{field}.kind", KINDS),
                ratio=sj.optional(sj.number, data["ratio"], f"{field}.ratio", 0, 1),
                arch=sj.string(data["arch"], f"{field}.arch"),
                seeds=tuple(seeds),
                macs=sj.integer(data["macs"], f"{field}.macs", minimum=0),
                params=sj.integer(data["params"], f"{field}.params", minimum=0),
                table_ms=sj.number(data["table_ms"], f"{field}.table_ms", minimum=0),
            )
        except sj.RecordError:
            raise
        except ValueError as error:
            raise sj.RecordError(f"{field}: {error}") from None


def plan_directory(networks_json) -> pathlib.Path:
    """The comparison directory of a plan: its arch paths are relative to it."""
    return pathlib.Path(networks_json).parent


def curve_name(ratio: float) -> str:
    return f"uniform_{ratio:g}"


def plan_networks(
    spec: NetworkSpec,
    table_latency: Callable[[Arch], float],
    discovered: Arch,
    random_pick: Arch | None,
    fractions: Sequence[float],
    seeds: Sequence[int],
    directory,
) -> list[Network]:
    """Writes each network's arch into `directory`/archs and returns the plan: the uniform
    shrinks at `fractions` (1.0 is always added: the initial network; fractions whose arch
    equals a larger fraction's are dropped), the discovered network and the random pick.
    The discovered network and the curve point nearest to it in table latency get every seed
    of `seeds`, the others its first."""
    if not seeds:
        raise ValueError("seeds: empty; allowed: at least one training seed")
    for ratio in fractions:
        if not 0 < ratio <= 1:
            raise ValueError(f"fractions: {ratio} is not in (0, 1]")
    directory = pathlib.Path(directory)
    (directory / "archs").mkdir(parents=True, exist_ok=True)
    candidates: list[tuple[str, str, float | None, Arch]] = []
    kept: set[Arch] = set()
    for ratio in sorted(set(fractions) | {1.0}, reverse=True):
        arch = uniform_arch(spec, ratio)
        if arch not in kept:
            kept.add(arch)
            candidates.append((curve_name(ratio), "uniform", ratio, arch))
    candidates.append(("discovered", "discovered", None, discovered))
    if random_pick is not None:
        candidates.append(("random", "random", None, random_pick))
    latency = {name: float(table_latency(arch)) for name, _, _, arch in candidates}
    curve = [name for name, kind, _, _ in candidates if kind == "uniform"]
    nearest = min(curve, key=lambda name: abs(latency[name] - latency["discovered"]))
    networks = []
    for name, kind, ratio, arch in candidates:
        save_arch(arch, directory / "archs" / f"{name}.json")
        costs = count(spec, arch)
        repeated = name in ("discovered", nearest)
        networks.append(
            Network(
                name=name,
                kind=kind,
                ratio=ratio,
                arch=f"archs/{name}.json",
                seeds=tuple(seeds) if repeated else (seeds[0],),
                macs=costs.macs,
                params=costs.params,
                table_ms=latency[name],
            )
        )
    return networks


def write_networks(directory, networks: Iterable[Network]) -> pathlib.Path:
    data = {"networks": [n.to_json() for n in networks]}
    return atomic_files.write_json(pathlib.Path(directory) / NETWORKS_FILE, data)


def _parse_networks(data, require_discovered: bool = True) -> list[Network]:
    sj.obj(data, "networks.json", ("networks",))
    networks = sj.array(data["networks"], "networks", Network.from_json)
    names = [n.name for n in networks]
    if len(set(names)) != len(names):
        raise sj.fail("networks", names, "distinct names")
    if require_discovered and "discovered" not in names:
        raise sj.fail("networks", names, "distinct names, one of them 'discovered'")
    return networks


def read_networks(path, require_discovered: bool = True) -> list[Network]:
    """The plan at `path`; the demo's plan holds a network named 'discovered', the tools
    that train and measure any plan (benchmarks/pareto.py's too) pass False."""
    return sj.read(path, lambda data: _parse_networks(data, require_discovered))


@dataclasses.dataclass(frozen=True, kw_only=True)
class Run:
    """One trained (network, seed) of a column: test accuracy on `examples` images."""

    name: str
    seed: int
    accuracy: float
    examples: int
    seconds: float

    @classmethod
    def from_json(cls, data, field: str) -> "Run":
        sj.obj(data, field, ("name", "seed", "accuracy", "examples", "seconds"))
        return cls(
            name=sj.string(data["name"], f"{field}.name"),
            seed=sj.integer(data["seed"], f"{field}.seed", minimum=0),
            accuracy=sj.number(data["accuracy"], f"{field}.accuracy", 0, 1),
            examples=sj.integer(data["examples"], f"{field}.examples", minimum=1),
            seconds=sj.number(data["seconds"], f"{field}.seconds", minimum=0),
        )


def _parse_results(data) -> tuple[str, list[Run]]:
    sj.obj(data, "results.json", ("mode", "runs"))
    mode = sj.string(data["mode"], "mode", COLUMNS)
    return mode, sj.array(data["runs"], "runs", Run.from_json)


def read_results(path) -> tuple[str, list[Run]]:
    """(column, runs) of a results.json."""
    return sj.read(path, _parse_results)


def write_results(path, mode: str, runs: Iterable[Run]) -> pathlib.Path:
    data = {"mode": mode, "runs": [dataclasses.asdict(r) for r in runs]}
    return atomic_files.write_json(path, data)


def accuracies_by_network(runs: Iterable[Run]) -> dict[str, list[float]]:
    by_name: dict[str, list[float]] = {}
    for run in sorted(runs, key=lambda r: (r.name, r.seed)):
        by_name.setdefault(run.name, []).append(run.accuracy)
    return by_name


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def pooled_sd(groups: Iterable[Sequence[float]]) -> tuple[float | None, int]:
    """(standard deviation of one training run, degrees of freedom), pooled over the groups
    of repeated runs (one group per network, its seeds); (None, 0) without repeats."""
    squares, dof = 0.0, 0
    for values in groups:
        if len(values) > 1:
            m = mean(values)
            squares += sum((v - m) ** 2 for v in values)
            dof += len(values) - 1
    return (math.sqrt(squares / dof), dof) if dof else (None, 0)


def interpolate(curve: Sequence[tuple[float, float]], x: float) -> float | None:
    """The curve's y at `x`, linear between the two points around it ((x, y) points in any
    order); None outside the curve's x range (no extrapolation)."""
    points = sorted(curve)
    if not points or not points[0][0] <= x <= points[-1][0]:
        return None
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[0][1]  # a single point at x


@dataclasses.dataclass(frozen=True)
class Margin:
    """The discovered network's accuracy over the uniform curve at its latency (in accuracy
    units), with the standard deviation of that difference from the seed-to-seed noise."""

    value: float | None
    sd: float | None
    # True when `value` is a lower bound: the network is faster than every curve point and
    # compared with the fastest one (a curve that does not gain accuracy as latency falls
    # is at most that accurate below it).
    bound: bool = False

    @property
    def inside_noise(self) -> bool | None:
        if self.value is None or self.sd is None:
            return None
        return abs(self.value) <= NOISE_SDS * self.sd


def frontier(curve: Sequence[tuple]) -> list[tuple]:
    """The points of `curve` ((latency, accuracy, ...) in any order) that no other point
    beats: each is more accurate than every faster point. Sorted by latency."""
    kept = []
    for point in sorted(curve):
        if not kept or point[1] > kept[-1][1]:
            kept.append(point)
    return kept


def margin(
    curve: Sequence[tuple[float, float, int]],
    latency: float,
    accuracy: float,
    runs: int,
    run_sd: float | None,
) -> Margin:
    """`curve`: (latency, mean accuracy, number of seeds) per curve point; `accuracy` the
    discovered network's mean over `runs` seeds at `latency`. The margin is over the curve's
    frontier (points slower and no more accurate than another are left out). The curve
    value at `latency` mixes its two neighbours, so its noise is taken as that of the
    neighbour with fewer seeds (the larger of the two); past the frontier's slowest point
    (the slower widths being no more accurate) the curve value is that point's. Faster than
    every curve point, the margin over the fastest point is returned as a lower bound;
    slower than every point, there is none."""
    points = frontier(curve)
    at = interpolate([(x, y) for x, y, _ in points], latency)
    if at is None and points and points[-1][0] < latency <= max(x for x, _, _ in curve):
        # Beyond the frontier's slowest point but inside the curve: the slower widths are no
        # more accurate, so the best uniform network at this latency is that point.
        last = points[-1]
        sd = None if run_sd is None else run_sd * math.sqrt(1 / runs + 1 / last[2])
        return Margin(accuracy - last[1], sd)
    if at is None:
        if not points or latency > points[0][0]:
            return Margin(None, None)
        fastest = points[0]
        sd = None if run_sd is None else run_sd * math.sqrt(1 / runs + 1 / fastest[2])
        return Margin(accuracy - fastest[1], sd, bound=True)
    curve_runs = points[0][2]  # a curve of one point at exactly `latency`
    for (x0, _, n0), (x1, _, n1) in zip(points, points[1:], strict=False):
        if x0 <= latency <= x1:
            curve_runs = min(n0, n1)
            break
    sd = None if run_sd is None else run_sd * math.sqrt(1 / runs + 1 / curve_runs)
    return Margin(accuracy - at, sd)


def where_curve_falls(
    curve: Sequence[tuple[float, float, float]], drop: float
) -> tuple[tuple[float, float, float] | None, tuple[float, float, float] | None]:
    """(the smallest point still within `drop` of the widest one, the first point below
    it): walking the (ratio, latency, accuracy) points from the widest network down, the
    first whose accuracy is more than `drop` below the widest's is where the curve falls."""
    points = sorted(curve, reverse=True)
    if not points:
        return None, None
    top = points[0][2]
    flat = points[0]
    for point in points[1:]:
        if point[2] < top - drop:
            return flat, point
        flat = point
    return flat, None
