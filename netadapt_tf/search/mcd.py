"""The multi-layer coordinate descent (MCD) optimizer of NetAdaptV2 (Sec. 2.4).

The optimizer works on archs and two callables: accuracy(arch) -> float (higher is better)
and resource(arch) -> float (MACs, latency, ...; lower is cheaper). It starts from the full
network (or a given arch) and shrinks it step by step:

* Target schedule. Iteration i (from 0) targets max(R_prev - r_i, R_final), where R_prev is
  the resource of the previous iteration's best sample, r_0 = initial_reduction *
  R(initial) and r_i = r_0 * decay^i. The search stops once the best sample meets R_final
  (`target`, or `target_fraction` * R(initial)), or after `max_iterations` iterations.
* Samples. Each iteration makes J samples from the previous best. Sampler "mcd" picks L
  search units (units.py: layers, or tie groups of residual-stream layers) at random among
  those that can still shrink, in a random order, and shrinks them round-robin one notch
  at a time (a notch: the next smaller width, or the next smaller kernel size, chosen at
  random when both are possible) until the sample meets the target: just enough, since
  the resource is checked after every notch. If all L units reach their bottom first, the
  draw is discarded and L new units are drawn, up to `max_draws` draws; a sample that
  never meets the target is "infeasible". Fewer than L shrinkable units left: all of them.
* "single_layer" is NetAdaptV1's optimizer: J is the number of units and sample j shrinks
  unit j alone (L = 1); the configured J and L are not used. "random" is the random-search
  baseline: one iteration aimed straight at the final target, whose J samples are uniformly
  random archs of the whole space that meet it (rejection sampling, up to `max_draws`
  draws each). To compare with an MCD search at the same sample count, set J to the number
  of samples that search made (summary.json).
* Choice. The most accurate "ok" sample is kept (ties: lower resource, then lower index).
  A sample whose making or judging raises is tried again, up to `max_attempts` times in all
  (the retry policy), and is otherwise recorded as "failed" with the error. Failed and
  infeasible samples are never chosen; an iteration without any "ok" sample stops the
  search with SearchStalledError (nothing is recorded for it, so a rerun retries it).
* Randomness. Sample j of iteration i draws from np.random.default_rng((seed, i, j)) and
  nothing else, so it does not depend on the other samples, and a resumed search makes the
  same samples as an uninterrupted one.
* Parallel samples. With `workers` > 1 the samples of an iteration are made by that many
  threads at once (one per phone when the resource is measured on phones), and recorded as
  they finish. The resource callable must then be safe to call from several threads; the
  accuracy callable is called under `judge_lock`, one sample at a time (pass the same lock to
  a resource that does TensorFlow work of its own). An arch that several samples reach is
  still measured once: the others wait for its number. Since every sample depends only on
  its own generator and on numbers that depend only on the arch, the history is the same as
  with one worker (for deterministic callables).
"""

import concurrent.futures
import dataclasses
import math
import threading
from collections.abc import Callable, Mapping

import numpy as np

from netadapt_tf.search.records import InitialRecord, IterationRecord, SampleRecord
from netadapt_tf.search.units import SearchUnit, available_moves, search_units, shrink_one_notch
from netadapt_tf.space.arch import Arch, full_arch, random_arch, smallest_arch, validate_arch
from netadapt_tf.space.spec import NetworkSpec

SAMPLERS = ("mcd", "single_layer", "random")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True, kw_only=True)
class MCDConfig:
    """Settings of one search. J = samples_per_iteration, L = layers_per_sample (units).

    Exactly one of `target` (absolute, in the resource's unit) and `target_fraction` (of the
    initial arch's resource, in (0, 1)) must be set before the search starts; a preset may
    leave both unset for a flag to fill in.
    """

    samples_per_iteration: int = 200
    layers_per_sample: int = 10
    initial_reduction: float = 0.03
    decay: float = 0.98
    target: float | None = None
    target_fraction: float | None = None
    max_iterations: int = 1000
    seed: int = 0
    sampler: str = "mcd"
    tie_residual_streams: bool = True
    max_draws: int = 20
    max_attempts: int = 2

    def __post_init__(self):
        for field in ("samples_per_iteration", "layers_per_sample", "max_iterations"):
            value = getattr(self, field)
            if not _is_int(value) or value < 1:
                raise ValueError(f"MCDConfig.{field}: {value!r} is not allowed; must be >= 1")
        for field in ("max_draws", "max_attempts"):
            value = getattr(self, field)
            if not _is_int(value) or value < 1:
                raise ValueError(f"MCDConfig.{field}: {value!r} is not allowed; must be >= 1")
        if not _is_int(self.seed) or not 0 <= self.seed < 2**63:
            raise ValueError(f"MCDConfig.seed: {self.seed!r} must be an integer in [0, 2**63)")
        if not 0 < self.initial_reduction < 1:
            raise ValueError(
                f"MCDConfig.initial_reduction: {self.initial_reduction!r} must be a fraction of "
                "the initial resource in (0, 1), e.g. 0.03 for 3%"
            )
        if not 0 < self.decay <= 1:
            raise ValueError(f"MCDConfig.decay: {self.decay!r} must be in (0, 1]")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"MCDConfig.sampler: {self.sampler!r} is not one of {SAMPLERS}")
        if self.target is not None and self.target_fraction is not None:
            raise ValueError(
                f"MCDConfig.target: {self.target!r} and target_fraction "
                f"{self.target_fraction!r} are both set; set one of them"
            )
        if self.target is not None and not (math.isfinite(self.target) and self.target > 0):
            raise ValueError(f"MCDConfig.target: {self.target!r} must be a positive number")
        fraction = self.target_fraction
        if fraction is not None and not 0 < fraction < 1:
            raise ValueError(f"MCDConfig.target_fraction: {fraction!r} must be in (0, 1)")
        if not isinstance(self.tie_residual_streams, bool):
            raise TypeError(
                f"MCDConfig.tie_residual_streams: {self.tie_residual_streams!r} is not a bool"
            )

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    def reduction(self, initial_resource: float, iteration: int) -> float:
        """r_i = initial_reduction * R(initial) * decay^i."""
        return self.initial_reduction * initial_resource * self.decay**iteration


class SearchStalledError(RuntimeError):
    """An iteration made no sample that met its target and could be judged."""


class StartFailedError(RuntimeError):
    """The initial or the smallest arch could not be measured (under the retry policy)."""


@dataclasses.dataclass(frozen=True)
class SearchState:
    """A search so far: where it started, its finished iterations, and the samples already
    made in the unfinished iteration (by index)."""

    initial: InitialRecord
    iterations: tuple[IterationRecord, ...] = ()
    pending: Mapping[int, SampleRecord] = dataclasses.field(default_factory=dict)

    @property
    def best_arch(self) -> Arch:
        return self.iterations[-1].best.arch if self.iterations else self.initial.arch

    @property
    def best_resource(self) -> float:
        return self.iterations[-1].best.resource if self.iterations else self.initial.resource

    @property
    def best_accuracy(self) -> float | None:
        return self.iterations[-1].best.accuracy if self.iterations else self.initial.accuracy

    @property
    def target_met(self) -> bool:
        return self.best_resource <= self.initial.final_target


@dataclasses.dataclass(frozen=True)
class SearchResult:
    state: SearchState
    stop_reason: str  # "target met" or "max_iterations"

    @property
    def arch(self) -> Arch:
        """The discovered arch: the best sample of the last iteration."""
        return self.state.best_arch

    @property
    def iterations(self) -> tuple[IterationRecord, ...]:
        return self.state.iterations


class Recorder:
    """Where the optimizer reports progress; the driver writes it to disk. No-op here."""

    def initial(self, record: InitialRecord) -> None:
        pass

    def sample(self, record: SampleRecord) -> None:
        pass

    def iteration(self, record: IterationRecord, state: SearchState) -> None:
        pass


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise TypeError(f"{what} returned {type(value).__name__} {value!r}, not a number")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{what} returned {value}")
    return value


def _error(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def check_config(spec: NetworkSpec, config: MCDConfig) -> tuple[SearchUnit, ...]:
    """Raises unless `config` can search `spec` (a target is set, L fits the units);
    returns the search units. Cheap: tools call it before loading any data."""
    if config.target is None and config.target_fraction is None:
        raise ValueError(
            "MCDConfig.target: no target; set target (absolute, in the resource's unit) or "
            "target_fraction (of the initial arch's resource)"
        )
    units = search_units(spec, config.tie_residual_streams)
    if not units:
        raise ValueError(f"{spec.name}: no layer has more than one width or kernel size")
    if config.sampler == "mcd" and config.layers_per_sample > len(units):
        raise ValueError(
            f"MCDConfig.layers_per_sample: {config.layers_per_sample} is more than the "
            f"{len(units)} search units of {spec.name!r} (searchable layers, tied layers "
            f"counted once); allowed are 1..{len(units)}"
        )
    return units


class MCDOptimizer:
    """MCD search over the archs of `spec`, judged by `accuracy` and `resource` callables."""

    def __init__(
        self,
        spec: NetworkSpec,
        config: MCDConfig,
        accuracy: Callable[[Arch], float],
        resource: Callable[[Arch], float],
        workers: int = 1,
        judge_lock=None,
    ):
        if not isinstance(config, MCDConfig):
            raise TypeError(f"config: expected an MCDConfig, got {type(config).__name__}")
        if not _is_int(workers) or workers < 1:
            raise ValueError(f"workers: {workers!r} is not allowed; must be an integer >= 1")
        for name, fn in (("accuracy", accuracy), ("resource", resource)):
            if not callable(fn):
                raise TypeError(f"{name}: expected a callable arch -> float, got {fn!r}")
        self.spec, self.config = spec, config
        self.accuracy, self.resource = accuracy, resource
        self.units = check_config(spec, config)
        self._shrinkable: tuple[Arch | None, list[SearchUnit]] = (None, [])
        # Resources measured in the current iteration: an arch that several samples pass
        # through is measured once and gets one number (cleared every iteration). A future,
        # so that parallel samples reaching one arch wait for the one measurement.
        self._measured: dict[Arch, concurrent.futures.Future] = {}
        self._measured_lock = threading.Lock()
        self.workers = workers
        self.judge_lock = threading.Lock() if judge_lock is None else judge_lock

    @property
    def samples_per_iteration(self) -> int:
        """J as used: the number of units for the single-layer sampler."""
        if self.config.sampler == "single_layer":
            return len(self.units)
        return self.config.samples_per_iteration

    @property
    def layers_per_sample(self) -> int | None:
        """L as used: 1 for the single-layer sampler, none for the random one."""
        return {"single_layer": 1, "random": None}.get(
            self.config.sampler, self.config.layers_per_sample
        )

    # -- the start ------------------------------------------------------------------------

    def final_target(self, initial_resource: float) -> float:
        config = self.config
        if config.target is not None:
            return float(config.target)
        return config.target_fraction * initial_resource

    def _retry(self, fn, what: str):
        """fn() under the retry policy; the last error is raised if every attempt fails."""
        attempts = self.config.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                return fn()
            except Exception as error:
                if attempt == attempts:
                    raise StartFailedError(
                        f"{what} failed {attempts} times: {_error(error)}"
                    ) from error
        return None  # not reached: the last attempt returns or raises

    def start(self, initial_arch: Arch | None = None) -> InitialRecord:
        """Measures the initial and the smallest arch and checks the target against them."""
        arch = full_arch(self.spec) if initial_arch is None else initial_arch
        validate_arch(self.spec, arch)
        resource = self._retry(
            lambda: _number(self.resource(arch), "resource"), "resource of the initial arch"
        )
        smallest = smallest_arch(self.spec)
        smallest_resource = self._retry(
            lambda: _number(self.resource(smallest), "resource"), "resource of the smallest arch"
        )
        target = self.final_target(resource)
        if target < smallest_resource:
            raise ValueError(
                f"MCDConfig.target: {target:.6g} is below what the smallest sub-network "
                f"reaches ({smallest_resource:.6g}); allowed targets are >= "
                f"{smallest_resource:.6g} (the initial arch has {resource:.6g})"
            )
        try:
            accuracy = self._retry(lambda: self._judge(arch), "accuracy of the initial arch")
            accuracy_error = None
        except StartFailedError as error:
            accuracy, accuracy_error = None, str(error)
        return InitialRecord(
            arch=arch,
            resource=resource,
            accuracy=accuracy,
            accuracy_error=accuracy_error,
            smallest_resource=smallest_resource,
            final_target=target,
        )

    def iteration_target(self, initial: InitialRecord, iteration: int, previous: float):
        """(target, reduction) of `iteration` given the previous best's resource. Random
        search aims at the final target at once."""
        if self.config.sampler == "random":
            return initial.final_target, previous - initial.final_target
        reduction = self.config.reduction(initial.resource, iteration)
        return max(previous - reduction, initial.final_target), reduction

    # -- samples --------------------------------------------------------------------------

    def sample_rng(self, iteration: int, index: int) -> np.random.Generator:
        return np.random.default_rng((self.config.seed, iteration, index))

    def shrinkable_units(self, arch: Arch) -> list[SearchUnit]:
        """Units of `arch` with a notch left (cached for the arch of the last call)."""
        cached_arch, units = self._shrinkable
        if cached_arch != arch:
            units = [u for u in self.units if available_moves(self.spec, u, arch)]
            self._shrinkable = (arch, units)
        return units

    def _measure(self, arch: Arch) -> float:
        with self._measured_lock:
            pending = self._measured.get(arch)
            owner = pending is None
            if owner:
                pending = self._measured[arch] = concurrent.futures.Future()
        if owner:
            try:
                pending.set_result(_number(self.resource(arch), "resource"))
            except Exception as error:
                with self._measured_lock:  # not kept: a retry measures again
                    del self._measured[arch]
                pending.set_exception(error)
        return pending.result()

    def _judge(self, arch: Arch) -> float:
        with self.judge_lock:
            return _number(self.accuracy(arch), "accuracy")

    def shrink_to_target(self, units, arch: Arch, target: float, rng: np.random.Generator):
        """Round-robin over `units`, one notch at a time, until the resource meets `target`.
        Returns (arch, resource), or None when every unit bottoms out first."""
        while True:
            moved = False
            for unit in units:
                smaller = shrink_one_notch(self.spec, unit, arch, rng)
                if smaller is None:
                    continue
                arch, moved = smaller, True
                value = self._measure(arch)
                if value <= target:
                    return arch, value
            if not moved:
                return None

    def _draw(self, rng, index: int, previous: Arch, target: float):
        """(arch, resource, units, draws) of a sample meeting `target`, or (None, draws)."""
        config = self.config
        if config.sampler == "single_layer":
            unit = self.units[index]
            found = self.shrink_to_target([unit], previous, target, rng)
            return (None, (unit.name,), 1) if found is None else (*found, (unit.name,), 1)
        for draw in range(1, config.max_draws + 1):
            if config.sampler == "random":
                arch = random_arch(self.spec, rng)
                value = self._measure(arch)
                if value <= target:
                    return arch, value, (), draw
                continue
            candidates = self.shrinkable_units(previous)
            if not candidates:
                return None, (), draw
            count = min(config.layers_per_sample, len(candidates))
            units = [candidates[int(k)] for k in rng.choice(len(candidates), count, False)]
            found = self.shrink_to_target(units, previous, target, rng)
            if found is not None:
                return (*found, tuple(u.name for u in units), draw)
        return None, (), config.max_draws

    def make_sample(self, iteration: int, index: int, previous: Arch, target: float):
        """Sample `index` of `iteration`, judged, under the retry policy."""
        error, arch = None, None
        for attempt in range(1, self.config.max_attempts + 1):
            rng = self.sample_rng(iteration, index)
            arch = None
            try:
                drawn = self._draw(rng, index, previous, target)
                if drawn[0] is None:
                    _, units, draws = drawn
                    return SampleRecord(
                        iteration=iteration,
                        index=index,
                        status="infeasible",
                        units=units,
                        draws=draws,
                        attempts=attempt,
                    )
                arch, resource, units, draws = drawn
                accuracy = self._judge(arch)
                return SampleRecord(
                    iteration=iteration,
                    index=index,
                    status="ok",
                    arch=arch,
                    accuracy=accuracy,
                    resource=resource,
                    units=units,
                    draws=draws,
                    attempts=attempt,
                )
            except Exception as caught:  # any failure of a callable marks the sample failed
                error = _error(caught)
        return SampleRecord(
            iteration=iteration,
            index=index,
            status="failed",
            arch=arch,
            attempts=self.config.max_attempts,
            error=error,
        )

    # -- the loop -------------------------------------------------------------------------

    def choose(self, samples) -> int:
        ok = [s for s in samples if s.ok]
        return max(ok, key=lambda s: (s.accuracy, -s.resource, -s.index)).index

    def run_iteration(self, state: SearchState, recorder: Recorder) -> IterationRecord:
        iteration = len(state.iterations)
        previous = state.best_resource
        target, reduction = self.iteration_target(state.initial, iteration, previous)
        self._measured.clear()
        made = dict(state.pending)
        missing = [i for i in range(self.samples_per_iteration) if i not in made]
        if self.workers == 1:
            for index in missing:
                made[index] = self.make_sample(iteration, index, state.best_arch, target)
                recorder.sample(made[index])
        else:
            with concurrent.futures.ThreadPoolExecutor(
                self.workers, thread_name_prefix="mcd-sample"
            ) as pool:
                futures = [
                    pool.submit(self.make_sample, iteration, index, state.best_arch, target)
                    for index in missing
                ]
                # Recorded here, in this thread, as each sample finishes.
                for future in concurrent.futures.as_completed(futures):
                    record = future.result()
                    made[record.index] = record
                    recorder.sample(record)
        samples = [made[index] for index in range(self.samples_per_iteration)]
        if not any(s.ok for s in samples):
            errors = [s.error for s in samples if s.error]
            raise SearchStalledError(
                f"iteration {iteration}: none of the {len(samples)} samples met the target "
                f"{target:.6g} and was judged ({sum(s.status == 'infeasible' for s in samples)} "
                f"infeasible, {len(errors)} failed"
                + (f"; first error: {errors[0]}" if errors else "")
                + "). Try a larger layers_per_sample or max_draws, or a smaller "
                "initial_reduction"
            )
        return IterationRecord(
            iteration=iteration,
            previous_resource=previous,
            reduction=reduction,
            target=target,
            samples=tuple(samples),
            chosen=self.choose(samples),
        )

    def run(
        self,
        initial_arch: Arch | None = None,
        state: SearchState | None = None,
        recorder: Recorder | None = None,
    ) -> SearchResult:
        """Searches until the target is met or `max_iterations`; `state` resumes a search."""
        recorder = recorder or Recorder()
        if state is None:
            initial = self.start(initial_arch)
            recorder.initial(initial)
            state = SearchState(initial)
        while not state.target_met:
            if len(state.iterations) >= self.config.max_iterations:
                return SearchResult(state, "max_iterations")
            record = self.run_iteration(state, recorder)
            state = SearchState(state.initial, (*state.iterations, record))
            recorder.iteration(record, state)
        return SearchResult(state, "target met")
