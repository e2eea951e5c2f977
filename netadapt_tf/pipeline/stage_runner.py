"""Runs a pipeline's stages in order, each once for its command, and records what made them.

Each stage is a tool run as its own process (argument lists, no shell), so that one
stage's imports (TFMOT sets TF_USE_LEGACY_KERAS for its whole process) cannot break the
next; a few cheap steps run in-process (`run_step`). `stages.json` records, per stage, the
command that made it, its outputs (paths in the work directory), its time, and the order in
which it finished. Run again, a stage is skipped when it finished with the same command and
no stage before it ran since. Otherwise it runs, and says why on the console and at the top
of its part of `<stage>.log`:

* it never ran, or did not finish (killed): the tool resumes from its work directory;
* its command changed since it ran (other flags, another seed): its recorded outputs are
  removed first, so the tool starts afresh instead of refusing a work directory of other
  settings or resuming the old run;
* a stage before it ran since it finished (the pipeline is a chain, so its inputs may have
  changed): its outputs are removed too, and it runs afresh.

Stages that do not read each other's outputs can run at the same time
(`run_tools_together`): each still gets its own record and log, and the records' `started`
times let a report count their wall time once.

A stage whose tool fails is not recorded as finished. The logs are appended to (a rerun
ends a line torn by a kill first), so an interrupted run's output stays readable.
"""

import dataclasses
import os
import pathlib
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

from netadapt_tf.common import atomic_files
from netadapt_tf.common import strict_json as sj

STAGES_FILE = "stages.json"


class StageFailedError(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class StageRecord:
    """One stage in stages.json. `command` is None for in-process steps; `seconds` and
    `finished` (1 for the first stage that finished, 2 for the next...) are None while the
    stage runs; `started` is when it started (seconds since the epoch). Records written before
    outputs, finishing order and start times were recorded read as outputs (), finished 0 and
    started None."""

    command: tuple[str, ...] | None
    outputs: tuple[str, ...] = ()
    seconds: float | None = None
    finished: int | None = None
    started: float | None = None

    @property
    def done(self) -> bool:
        return self.seconds is not None

    def to_json(self) -> dict:
        command = None if self.command is None else list(self.command)
        return {
            "command": command,
            "outputs": list(self.outputs),
            "seconds": self.seconds,
            "finished": self.finished,
            "started": self.started,
        }

    @classmethod
    def from_json(cls, data, field: str) -> "StageRecord":
        sj.obj(data, field, ("command", "seconds"), ("outputs", "finished", "started"))
        command = sj.optional(sj.array, data["command"], f"{field}.command", sj.string)
        outputs = sj.array(data.get("outputs", []), f"{field}.outputs", sj.string)
        seconds = sj.optional(sj.number, data["seconds"], f"{field}.seconds", minimum=0)
        finished = data.get("finished", None if seconds is None else 0)
        finished = sj.optional(sj.integer, finished, f"{field}.finished", minimum=0)
        started = sj.optional(sj.number, data.get("started"), f"{field}.started", minimum=0)
        if (seconds is None) != (finished is None):
            raise sj.fail(
                f"{field}.finished", finished, "null exactly when seconds is null (running)"
            )
        return cls(
            command=None if command is None else tuple(command),
            outputs=tuple(outputs),
            seconds=seconds,
            finished=finished,
            started=started,
        )


def _parse_stages(data) -> dict[str, StageRecord]:
    return {
        name: StageRecord.from_json(record, name)
        for name, record in sj.mapping(data, "stages").items()
    }


def read_stages(path) -> dict[str, StageRecord]:
    """The records of stages.json at `path` (RecordError naming the file and the field)."""
    return sj.read(path, _parse_stages)


def _changes(old: tuple[str, ...] | None, new: tuple[str, ...] | None) -> str:
    """What differs between two commands, e.g. "--seed=0 became --seed=1"."""
    old, new = list(old or ()), list(new or ())
    dropped = shlex.join(a for a in old if a not in new)
    added = shlex.join(a for a in new if a not in old)
    if dropped and added:
        return f"{dropped} became {added}"
    if dropped or added:
        return f"dropped {dropped}" if dropped else f"added {added}"
    return "the same arguments in another order"


class StageRunner:
    def __init__(self, workdir, log=print):
        self.workdir = pathlib.Path(workdir)
        self.path = self.workdir / STAGES_FILE
        self.log = log
        self.stages = read_stages(self.path) if self.path.exists() else {}
        # The latest finishing order among the stages met so far in this run: a stage that
        # finished before it is older than one of its inputs.
        self._latest = 0

    def _save(self) -> None:
        data = {name: record.to_json() for name, record in self.stages.items()}
        atomic_files.write_json(self.path, data, sort_keys=True)

    def done(self, name: str) -> bool:
        """Whether stage `name` finished (whatever its command)."""
        return name in self.stages and self.stages[name].done

    def why_run(self, name: str, command: tuple[str, ...] | None) -> tuple[str, bool] | None:
        """(why stage `name` must run, whether it must start afresh), or None when it is up
        to date with `command`."""
        record = self.stages.get(name)
        if record is None:
            return "first run", False
        if record.command != command:
            return f"its command changed since it ran ({_changes(record.command, command)})", True
        if not record.done:
            return "it did not finish; resuming", False
        if record.finished < self._latest:
            return "a stage before it ran since it finished", True
        return None

    def _relative(self, output) -> str:
        path = pathlib.Path(output)
        full = path if path.is_absolute() else pathlib.Path.cwd() / path
        try:
            return str(full.resolve().relative_to(self.workdir.resolve()))
        except ValueError:
            raise ValueError(
                f"outputs: {output} is outside the work directory {self.workdir}; allowed: "
                "paths inside it (a stage's outputs are removed when it runs afresh)"
            ) from None

    def _remove_outputs(self, names) -> list[str]:
        removed = []
        for name in names:
            target = self.workdir / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif os.path.lexists(target):
                target.unlink()
            else:
                continue
            removed.append(name)
        return removed

    def _begin(self, name: str, command, outputs) -> pathlib.Path | None:
        """Records stage `name` as running and returns its log, or None when it is up to
        date (skipped)."""
        reason = self.why_run(name, command)
        if reason is None:
            record = self.stages[name]
            self._latest = max(self._latest, record.finished)
            self.log(f"  {name}: done before ({record.seconds:.0f} s), skipped")
            return None
        why, afresh = reason
        log_path = self.workdir / f"{name}.log"
        if afresh:
            removed = self._remove_outputs(dict.fromkeys(self.stages[name].outputs + outputs))
            why += f"; removed {removed or 'no outputs'} to start afresh"
        self.log(f"  {name}: runs ({why}; log: {log_path})")
        self.stages[name] = StageRecord(command, outputs, started=round(time.time(), 1))
        self._save()
        _start_log_part(log_path, f"{name}: runs ({why}); command: {shlex.join(command or ())}")
        return log_path

    def _abandon(self, name: str) -> None:
        del self.stages[name]  # not finished: the next run starts it as new
        self._save()

    def _finish(self, name: str, seconds: float) -> int:
        """Records stage `name` as finished after `seconds`; returns its finishing order."""
        finished = 1 + max((r.finished or 0 for r in self.stages.values()), default=0)
        self.stages[name] = dataclasses.replace(
            self.stages[name], seconds=round(seconds, 1), finished=finished
        )
        self._save()
        self.log(f"  {name}: {seconds:.0f} s")
        return finished

    def _run(self, name: str, command, outputs, execute: Callable[[pathlib.Path], None]) -> None:
        outputs = tuple(self._relative(output) for output in outputs)
        log_path = self._begin(name, command, outputs)
        if log_path is None:
            return
        start = time.perf_counter()
        try:
            execute(log_path)
        except BaseException:
            self._abandon(name)
            raise
        self._latest = self._finish(name, time.perf_counter() - start)

    def run_tool(self, name: str, tool: str, *flags: str, outputs=()) -> None:
        """Runs tools/<tool>.py with `flags` as stage `name` unless it is up to date;
        `outputs` are the paths (in the work directory) it writes."""
        command = _tool_command(tool, flags)

        def execute(log_path: pathlib.Path) -> None:
            with open(log_path, "a") as log_file:
                done = subprocess.run(
                    [sys.executable, *command],
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    check=False,
                )
            _check_exit(name, done.returncode, log_path)

        self._run(name, command, outputs, execute)

    def run_tools_together(self, stages: Sequence["ToolStage"]) -> None:
        """Runs the tool stages that are not up to date at the same time, each as its own
        process with its own record and log. None of them may read another's outputs: each
        is judged against the stages before the group only. Every started tool runs to its
        end; then StageFailedError names the ones that failed (the others are recorded as
        finished)."""
        names = [stage.name for stage in stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stages: names {names} repeat; allowed: distinct names")
        latest = self._latest
        running = []
        try:
            for stage in stages:
                command = _tool_command(stage.tool, stage.flags)
                outputs = tuple(self._relative(output) for output in stage.outputs)
                self._latest = latest  # the group's stages do not depend on each other
                log_path = self._begin(stage.name, command, outputs)
                if log_path is None:
                    continue
                with open(log_path, "a") as log_file:
                    process = subprocess.Popen(
                        [sys.executable, *command], stdout=log_file, stderr=subprocess.STDOUT
                    )
                running.append((stage.name, process, log_path, time.perf_counter()))
            skipped = [self.stages[n].finished for n in names if n not in {r[0] for r in running}]
            self._latest = max([latest, *skipped])
            failures = []
            for name, process, log_path, start in running:
                code = process.wait()
                try:
                    _check_exit(name, code, log_path)
                except StageFailedError as error:
                    failures.append(str(error))
                    self._abandon(name)
                    continue
                self._latest = max(self._latest, self._finish(name, time.perf_counter() - start))
        except BaseException:
            for name, process, _, _ in running:
                if process.poll() is None:
                    process.kill()
                    process.wait()
                if name in self.stages and not self.stages[name].done:
                    self._abandon(name)
            raise
        if failures:
            raise StageFailedError("\n".join(failures))

    def run_step(self, name: str, step: Callable[[], object], outputs=(), settings=()) -> None:
        """Calls step() in this process as stage `name` unless it is up to date. `settings`
        (strings) are recorded as its command, so the step reruns when they change."""
        command = tuple(settings) or None
        self._run(name, command, outputs, lambda log_path: step())


@dataclasses.dataclass(frozen=True)
class ToolStage:
    """A tool stage for `StageRunner.run_tools_together`: stage `name` runs
    tools/<tool>.py with `flags` and writes `outputs` (paths in the work directory)."""

    name: str
    tool: str
    flags: tuple[str, ...]
    outputs: tuple = ()


def _tool_command(tool: str, flags) -> tuple[str, ...]:
    script = pathlib.Path(__file__).resolve().parents[2] / "tools" / f"{tool}.py"
    return (str(script), *flags)


def _check_exit(name: str, code: int, log_path: pathlib.Path) -> None:
    if code != 0:
        tail = log_path.read_text().strip().splitlines()[-5:]
        raise StageFailedError(
            f"stage {name} failed (exit {code}); last lines of {log_path}:\n" + "\n".join(tail)
        )


def _start_log_part(path: pathlib.Path, line: str) -> None:
    """Appends a header line to a stage's log, after ending a line a kill left torn."""
    with open(path, "ab") as log:
        if log.tell() and path.read_bytes()[-1:] != b"\n":
            log.write(b"\n")
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"=== {stamp} stage {line}\n".encode())
