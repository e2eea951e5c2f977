"""A resumable search in a work directory: the MCD optimizer with its record on disk.

Files (formats in docs/search.md):
  search.json           the resolved settings, the spec, metric and accuracy fingerprints
  history.jsonl         line 1: the initial arch and its numbers; then one line per
                        iteration with every sample (arch, accuracy, resource, status)
  samples.jsonl         the samples finished so far in the unfinished iteration
  trajectory.json       the best arch of each iteration, starting with the initial arch
  discovered_arch.json  the discovered arch (at the end)
  summary.json          the outcome and where the files are (at the end)
  progress.png, tensorboard/   progress (progress.py)

Every line is appended and fsynced before the search goes on (atomic_files), whole files
are replaced atomically, and every file read back is checked field by field (a problem is
a strict_json.RecordError naming the file, the field and the value). Rerunning in the same
directory with the same settings resumes: the state is rebuilt from history.jsonl (a torn
last line is dropped) and the samples of samples.jsonl are reused, so at most the sample
being made when the process died is made again. Since sample j of iteration i depends only
on (seed, i, j) and the previous best, a resumed search writes the same history and finds the
same arch as an uninterrupted one (given deterministic accuracy and resource callables).
Other settings are refused unless `overwrite`, which starts afresh; `max_iterations` may
change, to extend a search that stopped there.
"""

import json
import pathlib
import shutil
import time
from collections.abc import Callable, Mapping

from netadapt_tf.common import atomic_files
from netadapt_tf.common import strict_json as sj
from netadapt_tf.search.mcd import (
    MCDConfig,
    MCDOptimizer,
    Recorder,
    SearchResult,
    SearchState,
)
from netadapt_tf.search.progress import PLOT_FILE, TENSORBOARD_DIR, Progress, reading_noise
from netadapt_tf.search.records import InitialRecord, IterationRecord, SampleRecord
from netadapt_tf.space.arch import Arch, save_arch, validate_arch
from netadapt_tf.space.spec import NetworkSpec

FORMAT = "netadapt_tf.search/1"
TRAJECTORY_FORMAT = "netadapt_tf.search_trajectory/1"
SETTINGS_FILE = "search.json"
HISTORY_FILE = "history.jsonl"
PENDING_FILE = "samples.jsonl"
TRAJECTORY_FILE = "trajectory.json"
DISCOVERED_FILE = "discovered_arch.json"
SUMMARY_FILE = "summary.json"
OUTPUTS = (HISTORY_FILE, PENDING_FILE, TRAJECTORY_FILE, DISCOVERED_FILE, SUMMARY_FILE, PLOT_FILE)
# Settings that may differ on a resume; "resolved" holds measured numbers, not settings.
MAY_CHANGE = (("config", "max_iterations"), ("resolved",))
RESOLVED = ("initial_resource", "smallest_resource", "final_target")
STATUS_COUNTS = ("ok", "failed", "infeasible")


def _jsonable(data: Mapping, what: str) -> dict:
    try:
        return json.loads(json.dumps(dict(data), sort_keys=True))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what}: not JSON-able ({error})") from None


def fingerprint_of(resource, fingerprint: Mapping | None) -> dict:
    """The given fingerprint, or the metric's own `fingerprint()`."""
    if fingerprint is not None:
        return _jsonable(fingerprint, "resource_fingerprint")
    method = getattr(resource, "fingerprint", None)
    if callable(method):
        return _jsonable(method(), "resource.fingerprint()")
    raise ValueError(
        "resource_fingerprint: missing; pass a dict that says what the resource callable "
        "measures and how (or a metric with a fingerprint() method), so a work directory "
        "is never resumed with another metric"
    )


def _comparable(record: dict) -> dict:
    record = json.loads(json.dumps(record))
    for path in MAY_CHANGE:
        holder = record
        for key in path[:-1]:
            holder = holder.get(key, {}) if isinstance(holder, dict) else {}
        if isinstance(holder, dict):
            holder.pop(path[-1], None)
    return record


def _differences(old: dict, new: dict, limit: int = 5) -> list[str]:
    """The first settings that differ, e.g. 'config.seed (0 vs 1)', and how many more."""
    found = sj.differences(old, new)
    return found[:limit] + ([f"{len(found) - limit} more"] if len(found) > limit else [])


class _FileRecorder(Recorder):
    """Appends the optimizer's records to the journals, then reports and calls the hooks."""

    def __init__(self, driver: "SearchDriver", progress: Progress, on_sample, on_iteration):
        self.driver, self.progress = driver, progress
        self.on_sample, self.on_iteration = on_sample, on_iteration

    def sample(self, record: SampleRecord) -> None:
        atomic_files.append_line(self.driver.path(PENDING_FILE), record.to_json())
        self.progress.sample_done(record)
        if self.on_sample is not None:
            self.on_sample(record)

    def iteration(self, record: IterationRecord, state: SearchState) -> None:
        atomic_files.append_line(self.driver.path(HISTORY_FILE), record.to_json())
        atomic_files.clear(self.driver.path(PENDING_FILE))
        self.driver.write_trajectory(state)
        self.progress.iteration_done(record, state)
        if self.on_iteration is not None:
            self.on_iteration(record)


class SearchDriver:
    """Runs (or resumes) an MCD search of `spec` in `workdir`.

    `resource_fingerprint` says what `resource` measures (defaults to its `fingerprint()`),
    `accuracy_fingerprint` what `accuracy` judges with (checkpoint, data split, settings);
    both go into search.json, so a directory is never resumed with other callables.
    `workers` > 1 makes that many samples of an iteration at once, with `accuracy` called
    under `judge_lock` (MCDOptimizer); it does not change the history, so it is not a setting
    of the work directory.
    """

    def __init__(
        self,
        spec: NetworkSpec,
        config: MCDConfig,
        accuracy: Callable[[Arch], float],
        resource: Callable[[Arch], float],
        workdir,
        *,
        resource_fingerprint: Mapping | None = None,
        accuracy_fingerprint: Mapping | None = None,
        initial_arch: Arch | None = None,
        overwrite: bool = False,
        log=print,
        tensorboard: bool = True,
        plot: bool = True,
        resource_unit: str | None = None,
        workers: int = 1,
        judge_lock=None,
    ):
        self.spec, self.config = spec, config
        self.optimizer = MCDOptimizer(spec, config, accuracy, resource, workers, judge_lock)
        if initial_arch is not None:
            validate_arch(spec, initial_arch)
        self.initial_arch, self.overwrite, self.log = initial_arch, overwrite, log
        self.workdir = pathlib.Path(workdir)
        self.tensorboard, self.plot, self.resource_unit = tensorboard, plot, resource_unit
        self.settings = {
            "format": FORMAT,
            "config": config.to_json(),
            "samples_per_iteration": self.optimizer.samples_per_iteration,
            "layers_per_sample": self.optimizer.layers_per_sample,
            "spec_name": spec.name,
            "spec_fingerprint": spec.fingerprint(),
            "units": [u.to_json() for u in self.optimizer.units],
            "initial_arch": None if initial_arch is None else initial_arch.to_json(),
            "resource": fingerprint_of(resource, resource_fingerprint),
            "accuracy": _jsonable(accuracy_fingerprint or {}, "accuracy_fingerprint"),
        }

    def path(self, name: str) -> pathlib.Path:
        return self.workdir / name

    # -- the work directory ---------------------------------------------------------------

    def check_workdir(self) -> bool:
        """Raises unless the directory is new, holds this search, or `overwrite`.
        Returns whether it holds this search (to resume)."""
        settings = self.path(SETTINGS_FILE)
        if self.overwrite:
            return False
        if settings.exists():
            old = sj.read(settings, self._parse_settings)
            if not sj.same(_comparable(old), _comparable(self.settings)):
                changed = _differences(_comparable(old), _comparable(self.settings))
                raise sj.RecordError(
                    f"{settings}: workdir {self.workdir} holds a search with other settings "
                    f"(differing, recorded vs now: {', '.join(changed)}); use another work "
                    "directory or --overwrite to start afresh"
                )
            return True
        leftovers = [name for name in OUTPUTS if self.path(name).exists()]
        if leftovers:
            raise ValueError(
                f"workdir: {self.workdir} holds search files {leftovers} but no "
                f"{SETTINGS_FILE}, so they cannot be checked; use another work directory or "
                "--overwrite"
            )
        return False

    def _parse_settings(self, data) -> dict:
        """search.json: the keys this driver writes, its format, the resolved numbers (the
        other values are compared with this driver's settings)."""
        sj.obj(data, "search", ("format", "config", "spec_fingerprint", "resolved"), self.settings)
        sj.constant(data["format"], "format", FORMAT)
        sj.dataclass_record(data["config"], "config", MCDConfig)
        sj.obj(data["resolved"], "resolved", RESOLVED)
        for key in RESOLVED:
            sj.number(data["resolved"][key], f"resolved.{key}")
        return data

    def _reset(self) -> None:
        for name in (*OUTPUTS, SETTINGS_FILE):
            self.path(name).unlink(missing_ok=True)
        shutil.rmtree(self.path(TENSORBOARD_DIR), ignore_errors=True)

    def _check_arch(self, arch: Arch | None, field: str) -> None:
        if arch is not None:
            try:
                validate_arch(self.spec, arch)
            except ValueError as error:
                raise sj.RecordError(f"{field}: {error}") from None

    def _read_history(self) -> tuple[InitialRecord | None, list[IterationRecord]]:
        where = self.path(HISTORY_FILE)
        with sj.source(where):
            lines = atomic_files.read_journal(where)
            if not lines:
                return None, []
            initial = InitialRecord.from_json(lines[0], "line 1")
            self._check_arch(initial.arch, "line 1.arch")
            iterations = []
            for number, line in enumerate(lines[1:], start=2):
                record = IterationRecord.from_json(line, f"line {number}")
                if record.iteration != len(iterations):
                    raise sj.fail(
                        f"line {number}.iteration", record.iteration, str(len(iterations))
                    )
                for i, sample in enumerate(record.samples):
                    self._check_arch(sample.arch, f"line {number}.samples[{i}].arch")
                iterations.append(record)
        return initial, iterations

    def load_state(self) -> SearchState | None:
        """The search so far from history.jsonl and samples.jsonl (None before the start)."""
        initial, iterations = self._read_history()
        if initial is None:
            return None
        where = self.path(PENDING_FILE)
        with sj.source(where):
            samples = [
                SampleRecord.from_json(line, f"line {number}")
                for number, line in enumerate(atomic_files.read_journal(where), start=1)
            ]
            for number, sample in enumerate(samples, start=1):
                self._check_arch(sample.arch, f"line {number}.arch")
        pending = {
            s.index: s
            for s in samples
            if s.iteration == len(iterations) and s.index < self.optimizer.samples_per_iteration
        }
        return SearchState(initial, tuple(iterations), pending)

    def write_trajectory(self, state: SearchState) -> None:
        points = [
            {
                "iteration": None,
                "target": None,
                "accuracy": state.initial.accuracy,
                "resource": state.initial.resource,
                "arch": state.initial.arch.to_json(),
            }
        ]
        points += [
            {
                "iteration": it.iteration,
                "target": it.target,
                "accuracy": it.best.accuracy,
                "resource": it.best.resource,
                "arch": it.best.arch.to_json(),
            }
            for it in state.iterations
        ]
        atomic_files.write_json(
            self.path(TRAJECTORY_FILE),
            {"format": TRAJECTORY_FORMAT, "unit": self.resource_unit, "points": points},
        )

    # -- the run --------------------------------------------------------------------------

    def _start(self) -> SearchState:
        """Measures the start, then (re)creates the work directory's record."""
        initial = self.optimizer.start(self.initial_arch)
        if self.overwrite:
            self._reset()
        self.workdir.mkdir(parents=True, exist_ok=True)
        atomic_files.clear(self.path(HISTORY_FILE))
        atomic_files.clear(self.path(PENDING_FILE))
        resolved = {
            "initial_resource": initial.resource,
            "smallest_resource": initial.smallest_resource,
            "final_target": initial.final_target,
        }
        atomic_files.write_json(self.path(SETTINGS_FILE), {**self.settings, "resolved": resolved})
        atomic_files.append_line(self.path(HISTORY_FILE), initial.to_json())
        return SearchState(initial)

    def run(
        self,
        on_sample: Callable[[SampleRecord], None] | None = None,
        on_iteration: Callable[[IterationRecord], None] | None = None,
    ) -> SearchResult:
        """Searches (or resumes) to the end; on_sample / on_iteration are called after each
        record is on disk (progress hooks, tests)."""
        started = time.perf_counter()
        resume = self.check_workdir()
        state = self.load_state() if resume else None
        if state is None:
            state = self._start()
            optimizer = self.optimizer
            self.log(
                f"search: starting in {self.workdir}: initial resource "
                f"{state.initial.resource:.6g}, final target {state.initial.final_target:.6g}, "
                f"{len(optimizer.units)} search units, J={optimizer.samples_per_iteration}, "
                f"L={optimizer.layers_per_sample}, sampler {self.config.sampler}"
                + (f", {optimizer.workers} samples at a time" if optimizer.workers > 1 else "")
            )
            examples = getattr(optimizer.accuracy, "num_examples", None)
            if examples and state.initial.accuracy is not None:
                noise = reading_noise(state.initial.accuracy, examples)
                self.log(
                    f"search: the initial arch reads {state.initial.accuracy:.4f} on {examples} "
                    f"held-out images (binomial sd of one reading {noise:.2f} pts)"
                )
        else:
            self.log(
                f"search: resuming in {self.workdir} at iteration {len(state.iterations)} "
                f"({len(state.pending)} of its samples already made)"
            )
        self.write_trajectory(state)
        progress = Progress(
            self.workdir,
            self.optimizer,
            self.log,
            tensorboard=self.tensorboard,
            plot=self.plot,
            unit=self.resource_unit,
            judge_examples=getattr(self.optimizer.accuracy, "num_examples", None),
        )
        recorder = _FileRecorder(self, progress, on_sample, on_iteration)
        result = self.optimizer.run(state=state, recorder=recorder)
        if self.plot:
            progress.draw(result.state)
        save_arch(result.arch, str(self.path(DISCOVERED_FILE)))
        atomic_files.write_json(self.path(SUMMARY_FILE), self.summary(result, started))
        return result

    def read_summary(self) -> dict:
        """summary.json of the finished search, checked (read_summary)."""
        return read_summary(self.path(SUMMARY_FILE))

    def summary(self, result: SearchResult, started: float) -> dict:
        state, initial = result.state, result.state.initial
        samples = [s for it in state.iterations for s in it.samples]
        files = {
            "settings": SETTINGS_FILE,
            "history": HISTORY_FILE,
            "trajectory": TRAJECTORY_FILE,
            "discovered_arch": DISCOVERED_FILE,
            "plot": PLOT_FILE if self.plot else None,
            "tensorboard": TENSORBOARD_DIR if self.tensorboard else None,
        }
        return {
            "workdir": str(self.workdir.resolve()),
            "stop_reason": result.stop_reason,
            "target_met": state.target_met,
            "final_target": initial.final_target,
            "unit": self.resource_unit,
            "iterations": len(state.iterations),
            "initial": {"accuracy": initial.accuracy, "resource": initial.resource},
            "discovered": {
                "accuracy": state.best_accuracy,
                "resource": state.best_resource,
                "fraction_of_initial": state.best_resource / initial.resource,
            },
            "samples": {
                status: sum(s.status == status for s in samples)
                for status in ("ok", "failed", "infeasible")
            },
            "seconds_this_run": round(time.perf_counter() - started, 3),
            "files": {k: None if v is None else str(self.path(v)) for k, v in files.items()},
        }


def _parse_summary(data) -> dict:
    keys = ("workdir", "stop_reason", "target_met", "final_target", "unit", "iterations")
    keys += ("initial", "discovered", "samples", "seconds_this_run", "files")
    sj.obj(data, "summary", keys)
    sj.string(data["workdir"], "workdir")
    sj.string(data["stop_reason"], "stop_reason")
    sj.boolean(data["target_met"], "target_met")
    sj.number(data["final_target"], "final_target")
    sj.optional(sj.string, data["unit"], "unit")
    sj.integer(data["iterations"], "iterations", minimum=0)
    for key, fields in (("initial", ()), ("discovered", ("fraction_of_initial",))):
        sj.obj(data[key], key, ("accuracy", "resource", *fields))
        sj.optional(sj.number, data[key]["accuracy"], f"{key}.accuracy")
        for field in ("resource", *fields):
            sj.number(data[key][field], f"{key}.{field}")
    sj.obj(data["samples"], "samples", STATUS_COUNTS)
    for status in STATUS_COUNTS:
        sj.integer(data["samples"][status], f"samples.{status}", minimum=0)
    sj.number(data["seconds_this_run"], "seconds_this_run", minimum=0)
    sj.mapping(data["files"], "files", lambda v, f: sj.optional(sj.string, v, f))
    return data


def read_summary(path) -> dict:
    """summary.json of a finished search, checked field by field."""
    return sj.read(path, _parse_summary)
