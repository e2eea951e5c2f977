"""Runs a pipeline's steps as separate programs, once each, and records what they took.

Each stage is a tool run as its own process (argument lists, no shell), so that one
stage's imports (TFMOT sets TF_USE_LEGACY_KERAS for its whole process) cannot break the
next. A finished stage is recorded in `stages.json` (seconds, command) and skipped when the
pipeline is run again; an interrupted stage is rerun, and the tools themselves resume
from their work directories, so a killed pipeline loses little.
"""

import json
import os
import pathlib
import subprocess
import sys
import time


class StageFailedError(RuntimeError):
    pass


class StageRunner:
    def __init__(self, workdir, log=print):
        self.workdir = pathlib.Path(workdir)
        self.path = self.workdir / "stages.json"
        self.log = log
        self.stages = json.loads(self.path.read_text()) if self.path.exists() else {}

    def _save(self) -> None:
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(self.stages, indent=1, sort_keys=True))
        tmp.replace(self.path)

    def done(self, name: str) -> bool:
        return name in self.stages

    def record(self, name: str, seconds: float, command: list[str] | None = None) -> None:
        self.stages[name] = {"seconds": round(seconds, 1), "command": command}
        self._save()

    def run_tool(self, name: str, tool: str, *flags: str) -> None:
        """Runs tools/<tool>.py with `flags` unless stage `name` is done."""
        if self.done(name):
            self.log(f"  {name}: done before ({self.stages[name]['seconds']:.0f} s), skipped")
            return
        script = pathlib.Path(__file__).resolve().parent.parent / "tools" / f"{tool}.py"
        command = [sys.executable, str(script), *flags]
        log_path = self.workdir / f"{name}.log"
        self.log(f"  {name}: tools/{tool}.py (log: {log_path})")
        start = time.perf_counter()
        with open(log_path, "w") as log_file:
            done = subprocess.run(command, stdout=log_file, stderr=subprocess.STDOUT, check=False)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            tail = log_path.read_text().strip().splitlines()[-5:]
            raise StageFailedError(
                f"stage {name} failed (exit {done.returncode}) after {seconds:.0f} s; "
                f"last lines of {log_path}:\n" + "\n".join(tail)
            )
        self.record(name, seconds, command[1:])
        self.log(f"  {name}: {seconds:.0f} s")
