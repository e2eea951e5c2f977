"""Per-layer latency lookup table (NetAdaptV1-style): build, store, predict.

What an entry is and which entries a space needs: lut_space.py. Prediction for an arch:

    latency = offset_ms + scale * S + per_entry_ms * N

S is the sum over its configurations of net(entry): the entry's measured latency minus
`overhead_ms` (the latency of a model with one trivial operator, i.e. the cost of invoking a
model at all, which a whole network pays once, not once per layer), 0 for configurations that
compute nothing, linearly interpolated along x between the two nearest grid points. N is the
number of measured (non-free) entries, interpolated the same way. The coefficients are fitted
by least squares to the measured latency of calibration networks (the full and the smallest
sub-network and random ones from a seed of their own, each measured `calibration_rounds`
times, interleaved, and the median taken): fit "sum" (default) fits nothing (offset_ms is
overhead_ms, scale 1: the calibration networks are kept as a record of how well the sum
agrees), "offset" fits offset_ms alone (scale 1, per_entry_ms 0), "affine" offset_ms and
scale, "affine_count" all three, "affine_params" offset, scale and a per-parameter term.
The fitted forms rest on a dozen whole networks timed in a minute of the build, whose state
of the machine they carry into every prediction (docs/benchmarks.md, issue 22).

The JSON file (FORMAT) holds: `spec` (name, fingerprint), `backend` (the measuring backend's
fingerprint), `grid` (max_x_points, calibration settings), `overhead_ms`, `groups` (each with
its op, fixed attributes, the layers it serves, its possible x values, the measured x grid,
its y and k values and the entries [k, x, y, latency_ms or null for "computes nothing"]),
and `calibration` (the calibration archs, their measured latencies and sums, the fit).
Building saves the file atomically every `save_every` entries and continues from it when
run again, so an interrupted build loses at most `save_every` measurements.
"""

import bisect
import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable

import keras
import numpy as np

from netadapt_tf.common import atomic_files
from netadapt_tf.common import strict_json as sj
from netadapt_tf.metrics.base import ResourceMetric
from netadapt_tf.metrics.lut_space import (
    SpacePlan,
    configurations,
    entry_model,
    plan_space,
)
from netadapt_tf.space import macs
from netadapt_tf.space.arch import FORMAT as ARCH_FORMAT
from netadapt_tf.space.arch import (
    Arch,
    full_arch,
    random_arch,
    smallest_arch,
    uniform_arch,
    validate_arch,
)
from netadapt_tf.space.spec import NetworkSpec

FORMAT = "netadapt_tf.latency_table/1"
# fit -> number of fitted coefficients. "sum" fits none: the overhead measured once plus
# the net entries, which predicted the demo network's uniform curve, MCD trajectories and
# random archs within 5% in median where every fitted form bent them (docs/benchmarks.md).
FITS = {"sum": 0, "offset": 1, "affine": 2, "affine_count": 3, "affine_params": 3}

_log = logging.getLogger(__name__)


class TableMismatchError(sj.RecordError):
    """The table was built for another super-network, backend or grid."""


@dataclasses.dataclass(frozen=True)
class GridSettings:
    """How much to measure: `max_x_points` grid values along x per group (and, with
    `x_at_width`, x = y for each width y: lut_space.Group.x_points), and `calibration_archs`
    whole networks (calibration_set). A table file without `x_at_width` was built before it
    existed, with the grid alone, and is read as False."""

    max_x_points: int = 4
    calibration_archs: int = 12
    calibration_rounds: int = 3
    calibration_seed: int = 12345
    fit: str = "sum"
    x_at_width: bool = True

    def __post_init__(self):
        if self.max_x_points < 2:
            raise ValueError(f"max_x_points: {self.max_x_points} must be >= 2")
        if self.fit not in FITS:
            raise ValueError(f"fit: {self.fit!r} is not one of {sorted(FITS)}")
        if self.calibration_archs < FITS[self.fit] + 1:
            raise ValueError(
                f"calibration_archs: {self.calibration_archs} is too few for fit "
                f"{self.fit!r}; at least {FITS[self.fit] + 1}"
            )
        if self.calibration_rounds < 1:
            raise ValueError(f"calibration_rounds: {self.calibration_rounds} must be >= 1")

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


# The uniform shrinks of the calibration set, in the order they join it: the comparison's
# width curve, widest gaps first.
CALIBRATION_RATIOS = (0.5, 0.25, 0.75, 0.375, 0.125, 0.625, 0.875, 0.1875)


def calibration_set(spec: NetworkSpec, grid: GridSettings) -> list[Arch]:
    """The full and the smallest network, then uniform shrinks (CALIBRATION_RATIOS) and
    random archs from `calibration_seed` in turn: the kinds of network the search and the
    comparison make, so that the fit is not drawn towards random archs alone."""
    archs = [full_arch(spec), smallest_arch(spec)]
    rng = np.random.default_rng(grid.calibration_seed)
    ratios = iter(CALIBRATION_RATIOS)
    while len(archs) < grid.calibration_archs:
        ratio = next(ratios, None) if len(archs) % 2 == 0 else None
        while ratio is not None and uniform_arch(spec, ratio) in archs:  # small spaces
            ratio = next(ratios, None)
        archs.append(random_arch(spec, rng) if ratio is None else uniform_arch(spec, ratio))
    return archs


def _diff_keys(a: dict, b: dict) -> list[str]:
    return sorted(k for k in set(a) | set(b) if not sj.same(a.get(k), b.get(k)))


class LookupTable:
    """A latency table of one super-network measured with one backend (see module doc)."""

    def __init__(self, spec: NetworkSpec, backend: dict, grid: GridSettings):
        self.spec = spec
        self.backend = json.loads(json.dumps(backend, sort_keys=True))
        self.grid = grid
        self.plan: SpacePlan = plan_space(spec)
        self.overhead_ms: float | None = None
        self.entries: dict[str, dict[tuple[int, int, int], float | None]] = {
            g.key: {} for g in self.plan.groups
        }
        self.calibration: dict | None = None
        self.build_seconds = 0.0
        self._x_grids = {g.key: g.x_grid(grid.max_x_points) for g in self.plan.groups}
        self._x_points: dict[tuple[str, int], tuple[int, ...]] = {}

    # -- contents ----------------------------------------------------------------------

    def missing(self) -> list[tuple[str, int, int, int]]:
        """(group key, k, x, y) of every grid point not measured yet, in build order.

        The order is a fixed shuffle of all points: a machine whose speed drifts over minutes
        (other jobs, temperature) then adds independent noise to every layer's entries
        instead of biasing all entries of the layers measured during a slow spell.
        """
        points = [(g.key, *p) for g in self.plan.groups for p in self._points(g)]
        order = np.random.default_rng(0).permutation(len(points))
        return [points[i] for i in order if points[i][1:] not in self.entries[points[i][0]]]

    def _points(self, g):
        return g.points(self.grid.max_x_points, self.grid.x_at_width)

    @property
    def num_entries(self) -> int:
        return sum(len(e) for e in self.entries.values())

    @property
    def complete(self) -> bool:
        return self.overhead_ms is not None and not self.missing() and self.calibration is not None

    def _net(self, key: str, k: int, x: int, y: int) -> tuple[float, float]:
        """(net latency, 1 if measured else 0) of a grid point."""
        try:
            raw = self.entries[key][(k, x, y)]
        except KeyError:
            raise KeyError(f"latency table has no entry {key} k={k} x={x} y={y}") from None
        if raw is None:
            return 0.0, 0.0
        return max(raw - self.overhead_ms, 0.0), 1.0

    def entry_features(self, key: str, k: int, x: int, y: int) -> tuple[float, float]:
        """(net latency, measured indicator) of one configuration, interpolated along x
        between the measured x values of width y."""
        grid = self._x_points.get((key, y))
        if grid is None:
            group = self.plan.group(key)
            grid = group.x_points(self.grid.max_x_points, y, self.grid.x_at_width)
            self._x_points[(key, y)] = grid
        if x in grid:
            return self._net(key, k, x, y)
        i = bisect.bisect_left(grid, x)
        if i == 0 or i == len(grid):
            raise KeyError(
                f"latency table group {key}: x={x} is outside its grid {list(grid)}; the "
                "table was built for another search space"
            )
        lo, hi = grid[i - 1], grid[i]
        t = (x - lo) / (hi - lo)
        (a, m), (b, n) = self._net(key, k, lo, y), self._net(key, k, hi, y)
        return (1 - t) * a + t * b, (1 - t) * m + t * n

    def features(self, arch: Arch) -> tuple[float, float]:
        """(S, N) of `arch`: the sum of its net entries and how many are measured."""
        if self.overhead_ms is None:
            raise ValueError("latency table: the overhead has not been measured yet")
        total = count = 0.0
        for c in configurations(self.plan, self.spec, arch):
            value, measured = self.entry_features(c.key, c.k, c.x, c.y)
            total += value
            count += measured
        return total, count

    def design(self, arch: Arch) -> tuple[float, float, float]:
        """(S, N, P) of `arch`: the sum of its net entries, how many are measured, and its
        parameters in millions (macs.count), the features the fits combine."""
        total, count = self.features(arch)
        return total, count, macs.count(self.spec, arch).params / 1e6

    def table_sum(self, arch: Arch) -> float:
        """Sum of the net entries of `arch` (before calibration)."""
        return self.features(arch)[0]

    def predict(self, arch: Arch) -> float:
        if self.calibration is None:
            raise ValueError("latency table: not calibrated yet; finish building it")
        fit = self.calibration["fit"]
        total, count = self.features(arch)
        predicted = fit["offset_ms"] + fit["scale"] * total + fit["per_entry_ms"] * count
        if "per_mparam_ms" in fit:
            predicted += fit["per_mparam_ms"] * macs.count(self.spec, arch).params / 1e6
        return predicted

    def calibrate(self, archs: list[Arch], measured_ms: list[float]) -> dict:
        """Fits the coefficients of `grid.fit` by least squares; stores and returns them."""
        kind = self.grid.fit
        features = np.array([self.design(a) for a in archs])
        measured = np.asarray(measured_ms, np.float64)
        # Columns of the design matrix each fit solves for (offset, scale, per entry, per
        # million parameters); "offset" keeps the table's own scale.
        columns = {
            "sum": None,
            "offset": [],
            "affine": [0],
            "affine_count": [0, 1],
            "affine_params": [0, 2],
        }[kind]
        coefficients = np.zeros(4)
        if columns is None:  # "sum": the invocation overhead once, the entries as measured
            coefficients[:2] = self.overhead_ms, 1.0
        else:
            design = np.c_[np.ones(len(archs)), features[:, columns]]
            target = measured - (features[:, 0] if kind == "offset" else 0.0)
            solved, *_ = np.linalg.lstsq(design, target, rcond=None)
            coefficients[1] = 1.0 if kind == "offset" else 0.0
            coefficients[[0] + [c + 1 for c in columns]] = solved
        offset, scale, per_entry, per_mparam = coefficients
        predicted = offset + features @ coefficients[1:]
        fit = {
            "kind": kind,
            "offset_ms": float(offset),
            "scale": float(scale),
            "per_entry_ms": float(per_entry),
            "rms_residual_ms": float(np.sqrt(np.mean((measured - predicted) ** 2))),
        }
        if kind == "affine_params":
            fit["per_mparam_ms"] = float(per_mparam)
        self.calibration = {
            "archs": [a.to_json()["layers"] for a in archs],
            "measured_ms": measured.tolist(),
            "table_sum_ms": features[:, 0].tolist(),
            "entry_count": features[:, 1].tolist(),
            "fit": fit,
        }
        return self.calibration

    # -- JSON --------------------------------------------------------------------------

    def _group_json(self, g) -> dict:
        """What the file says about group `g` besides its entries."""
        return {
            "key": g.key,
            "op": g.op,
            "axes": list(g.axes),
            "in_size": g.in_size,
            "attrs": dict(g.attrs),
            "members": list(g.members),
            "x_values": list(g.x_values),
            "x_grid": list(self._x_grids[g.key]),
            "y_values": list(g.y_values),
            "k_values": list(g.k_values),
        }

    def to_json(self) -> dict:
        groups = [
            {
                **self._group_json(g),
                "entries": [[k, x, y, ms] for (k, x, y), ms in sorted(self.entries[g.key].items())],
            }
            for g in self.plan.groups
        ]
        return {
            "format": FORMAT,
            "spec": {"name": self.spec.name, "fingerprint": self.spec.fingerprint()},
            "backend": self.backend,
            "grid": self.grid.to_json(),
            "overhead_ms": self.overhead_ms,
            "build_seconds": round(self.build_seconds, 1),
            "complete": self.complete,
            "num_entries": self.num_entries,
            "groups": groups,
            "calibration": self.calibration,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Writes the table atomically (atomic_files: a kill leaves the old or the new)."""
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        atomic_files.write_json(path, self.to_json(), indent=None, separators=(",", ":"))

    @classmethod
    def from_json(
        cls,
        data: dict,
        spec: NetworkSpec,
        backend: dict | None = None,
        grid: GridSettings | None = None,
        source: str = "latency table",
    ) -> "LookupTable":
        """Reads a table, checking every field, and refusing one built for another spec (or,
        when given, another backend fingerprint or grid): RecordError (TableMismatchError
        for the other spec, backend or grid) naming `source`, the field and the value."""
        with sj.source(source):
            return cls._parse(data, spec, backend, grid)

    @classmethod
    def _parse(cls, data, spec, backend, grid) -> "LookupTable":
        sj.obj(data, "table", _TABLE_FIELDS)
        sj.constant(data["format"], "format", FORMAT)
        built_for = sj.obj(data["spec"], "spec", ("name", "fingerprint"))
        name = sj.string(built_for["name"], "spec.name")
        if sj.string(built_for["fingerprint"], "spec.fingerprint") != spec.fingerprint():
            raise TableMismatchError(
                f"spec: built for super-network {name!r} (fingerprint "
                f"{built_for['fingerprint']}), not for {spec.name!r} (fingerprint "
                f"{spec.fingerprint()}); build a table for this model and options"
            )
        stored_backend = sj.mapping(data["backend"], "backend")
        if backend is not None:
            expected = json.loads(json.dumps(backend, sort_keys=True))
            if not sj.same(stored_backend, expected):
                raise TableMismatchError(
                    f"backend: measured with another backend; fingerprints differ in "
                    f"{_diff_keys(stored_backend, expected)}: table has "
                    f"{json.dumps(stored_backend, sort_keys=True)[:400]}"
                )
        stored = sj.mapping(data["grid"], "grid")
        stored = {"x_at_width": False, **stored}  # built before x_at_width: the grid alone
        stored_grid = sj.dataclass_record(stored, "grid", GridSettings)
        if grid is not None and grid != stored_grid:
            raise TableMismatchError(
                f"grid: built with grid {stored_grid.to_json()}, not {grid.to_json()}"
            )
        table = cls(spec, stored_backend, stored_grid)
        groups = sj.array(data["groups"], "groups", length=len(table.plan.groups))
        for i, (stored, g) in enumerate(zip(groups, table.plan.groups, strict=True)):
            table.entries[g.key] = table._parse_group(stored, g, f"groups[{i}]")
        table.overhead_ms = sj.optional(sj.number, data["overhead_ms"], "overhead_ms", minimum=0)
        table.calibration = sj.optional(
            table._check_calibration, data["calibration"], "calibration"
        )
        table.build_seconds = float(sj.number(data["build_seconds"], "build_seconds", minimum=0))
        for key, value in (("complete", table.complete), ("num_entries", table.num_entries)):
            if data[key] != value or type(data[key]) is not type(value):
                raise sj.fail(key, data[key], f"{value!r}, what the table's entries say")
        return table

    def _parse_group(self, stored, g, field: str) -> dict:
        """The entries of group `g` from its JSON object; the rest must describe `g`."""
        sj.obj(stored, field, _GROUP_FIELDS)
        expected = self._group_json(g)
        found = sj.differences({k: stored[k] for k in expected}, expected, field)
        if found:
            error = TableMismatchError if stored["key"] != g.key else sj.RecordError
            raise error(
                f"{', '.join(found[:3])} (file vs this super-network and grid); allowed: what "
                "this super-network and grid give (the table was built for another search "
                "space, or edited)"
            )
        points = set(self._points(g))
        entries = {}
        for j, entry in enumerate(sj.array(stored["entries"], f"{field}.entries")):
            where = f"{field}.entries[{j}]"
            sj.array(entry, where, length=4)
            point = tuple(sj.integer(entry[n], f"{where}[{n}]") for n in range(3))
            if point not in points:
                raise sj.fail(where, entry, f"[k, x, y, ms] with (k, x, y) a grid point of {g.key}")
            ms = sj.optional(sj.number, entry[3], f"{where}[3]", minimum=0)
            entries[point] = None if ms is None else float(ms)
        return entries

    def _check_calibration(self, value, field: str) -> dict:
        sj.obj(value, field, ("archs", "measured_ms", "table_sum_ms", "entry_count", "fit"))
        count = self.grid.calibration_archs
        for i, layers in enumerate(sj.array(value["archs"], f"{field}.archs", length=count)):
            where = f"{field}.archs[{i}]"
            arch = {"format": ARCH_FORMAT, "space": self.spec.name, "layers": layers}
            arch = Arch.from_json({**arch, "fingerprint": self.spec.fingerprint()}, where)
            try:
                validate_arch(self.spec, arch)
            except ValueError as error:
                raise sj.RecordError(f"{where}: {error}") from None
        for key in ("measured_ms", "table_sum_ms", "entry_count"):
            sj.array(value[key], f"{field}.{key}", sj.number, length=count)
        params = ("per_mparam_ms",) if self.grid.fit == "affine_params" else ()
        fit = sj.obj(value["fit"], f"{field}.fit", _FIT_FIELDS + params)
        sj.constant(fit["kind"], f"{field}.fit.kind", self.grid.fit)
        for key in _FIT_FIELDS[1:] + params:
            sj.number(fit[key], f"{field}.fit.{key}")
        return value

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        spec: NetworkSpec,
        backend: dict | None = None,
        grid: GridSettings | None = None,
    ) -> "LookupTable":
        path = os.fspath(path)
        return cls.from_json(sj.load(path), spec, backend, grid, source=path)


_TABLE_FIELDS = ("format", "spec", "backend", "grid", "overhead_ms", "build_seconds")
_TABLE_FIELDS += ("complete", "num_entries", "groups", "calibration")
_GROUP_FIELDS = ("key", "op", "axes", "in_size", "attrs", "members", "x_values", "x_grid")
_GROUP_FIELDS += ("y_values", "k_values", "entries")
_FIT_FIELDS = ("kind", "offset_ms", "scale", "per_entry_ms", "rms_residual_ms")


def _overhead_model() -> keras.Model:
    inputs = keras.Input((1, 1, 1), batch_size=1)
    return keras.Model(inputs, keras.layers.Add()([inputs, inputs]))


def build_table(
    spec: NetworkSpec,
    backend,
    path: str | os.PathLike,
    grid: GridSettings | None = None,
    save_every: int = 25,
    max_entries: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> LookupTable:
    """Builds (or continues) the table of `spec` at `path`, measuring with `backend`.

    `backend` is a latency metric with `measure_tflite(bytes)` (returning a record with
    `latency_ms`), `fingerprint()` and a `converter` (SubnetConverter): HostLatencyMetric or
    AdbLatencyMetric. `max_entries` stops after that many new measurements (tests use it to
    simulate an interruption); the table is then saved incomplete.
    """
    grid = grid or GridSettings()
    fingerprint = backend.fingerprint()
    if os.path.exists(path):
        table = LookupTable.load(path, spec, fingerprint, grid)
    else:
        table = LookupTable(spec, fingerprint, grid)
    say = progress or _log.info
    converter = backend.converter
    started = time.monotonic()
    spent_before = table.build_seconds

    def measure(model_bytes: bytes) -> float:
        return float(backend.measure_tflite(model_bytes).latency_ms)

    def save() -> None:
        table.build_seconds = spent_before + time.monotonic() - started
        table.save(path)

    if table.overhead_ms is None:
        table.overhead_ms = measure(converter.convert_model(_overhead_model()))
        save()
    todo = table.missing()
    if max_entries is not None:
        todo = todo[:max_entries]
    say(f"{table.num_entries} entries measured, {len(todo)} to go")
    for done, (key, k, x, y) in enumerate(todo, start=1):
        model = entry_model(table.plan.group(key), converter.supernet, k, x, y)
        table.entries[key][(k, x, y)] = (
            None if model is None else measure(converter.convert_model(model))
        )
        if done % save_every == 0:
            save()
            rate = (time.monotonic() - started) / done
            say(f"{done}/{len(todo)} entries, {rate:.2f} s each")
    save()
    if table.missing() or table.calibration is not None:
        return table
    archs = calibration_set(spec, grid)
    say(f"calibrating on {len(archs)} whole networks, {grid.calibration_rounds} rounds")
    models = [converter.tflite(a) for a in archs]
    rounds = [[measure(m) for m in models] for _ in range(grid.calibration_rounds)]
    table.calibrate(archs, np.median(rounds, axis=0).tolist())
    save()
    return table


class LookupTableMetric(ResourceMetric):
    """Latency (ms) predicted by a complete lookup table."""

    name = "latency"
    unit = "ms"

    def __init__(self, table: LookupTable):
        if not table.complete:
            raise ValueError(
                f"latency table: incomplete ({len(table.missing())} entries missing or not "
                "calibrated); run the build again to finish it"
            )
        self.table = table
        self.spec = table.spec

    def __call__(self, arch: Arch) -> float:
        return self.table.predict(arch)

    def fingerprint(self) -> dict:
        return {
            "metric": "latency",
            "backend": "lookup_table",
            "format": FORMAT,
            "spec": self.spec.fingerprint(),
            "measured_with": self.table.backend,
            "grid": self.table.grid.to_json(),
            "calibration": self.table.calibration["fit"],
        }
