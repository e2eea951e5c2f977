"""`make demo` stage by stage: a baseline checkout against this one, one after the other on
the same machine, with the whole machine's CPU use during each stage.

  python benchmarks/demo_stages.py --baseline_tree=/path/to/old/checkout --workdir=W [--json]

runs `tools/demo.py` of the baseline tree (its own code first on PYTHONPATH, this
environment's packages) into W/baseline, then this tree's into W/current, while a sampler
thread reads /proc/stat once a second into W/cpu.log. It then prints, for every stage either
run recorded in its stages.json, the seconds of each, their ratio (current over baseline) and
the CPU use over the stage (busy time of all cores over wall time: 200% is both cores of a
2-core machine; the whole machine's, so nothing else should run), and the same for the
whole run. A run already complete in W is not run again (delete its directory to rerun);
`--report_only` only reads W. --json prints {"stages": {name: {"baseline": {"seconds",
"cpu_percent"}, "current": {...}, "ratio"}}, "whole": {...}, "cpu_flags": [...]}.

Stages that run side by side (the two training columns) each get the CPU use of their
shared interval. Ratios, not absolute times, carry across machines (docs/benchmarks.md).
"""

import bisect
import json
import os
import pathlib
import subprocess
import sys
import threading
import time

from absl import app, flags

REPO = pathlib.Path(__file__).resolve().parents[1]
RUNS = ("baseline", "current")

_BASELINE = flags.DEFINE_string("baseline_tree", None, "Checkout of the baseline commit.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where both demos and the CPU log go.")
_REPORT_ONLY = flags.DEFINE_bool("report_only", False, "Only read an earlier run's files.")
_JSON = flags.DEFINE_bool("json", False, "Print the figures as one JSON object.")
flags.mark_flag_as_required("workdir")


def read_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    return sum(values) - idle, sum(values)


def sample_cpu(path: pathlib.Path, stop: threading.Event, every: float = 1.0) -> None:
    with open(path, "a", buffering=1) as out:
        while not stop.is_set():
            busy, total = read_busy()
            out.write(f"{time.time():.2f} {busy} {total}\n")
            stop.wait(every)


class CpuLog:
    """Busy core-seconds between two times, interpolated between the samples of cpu.log
    (`t busy total` per line, jiffies of USER_HZ = 100 per second)."""

    HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self, lines: list[str]):
        self.rows = [tuple(float(v) for v in line.split()) for line in lines if line.strip()]
        self.times = [row[0] for row in self.rows]
        if len(self.rows) < 2:
            raise ValueError(f"cpu log: {len(self.rows)} samples; at least 2 are needed")

    def _busy_at(self, t: float) -> float:
        i = min(max(bisect.bisect_left(self.times, t), 1), len(self.rows) - 1)
        (t0, b0, _), (t1, b1, _) = self.rows[i - 1], self.rows[i]
        return b0 + (b1 - b0) * (t - t0) / (t1 - t0)

    def percent(self, start: float, seconds: float) -> float:
        """Busy time of all cores over [start, start + seconds] as % of one core."""
        busy = self._busy_at(start + seconds) - self._busy_at(start)
        return 100.0 * busy / self.HZ / seconds


def stage_figures(stages: dict, cpu: CpuLog | None) -> dict:
    """{stage: {"seconds", "cpu_percent"}} of a demo's stages.json (finished stages)."""
    figures = {}
    for name, record in sorted(stages.items(), key=lambda kv: kv[1].get("started") or 0):
        seconds, started = record.get("seconds"), record.get("started")
        if not seconds:
            continue
        percent = cpu.percent(started, seconds) if cpu and started else None
        figures[name] = {
            "seconds": round(seconds, 1),
            "cpu_percent": None if percent is None else round(percent, 1),
        }
    return figures


def compare(runs: dict, wholes: dict, cpu: CpuLog | None) -> dict:
    """The record --json prints, from each run's stage figures and its (start, end)."""
    names = list(dict.fromkeys(n for figures in runs.values() for n in figures))
    stages = {}
    for name in names:
        entry = {run: runs[run].get(name) for run in RUNS}
        b, c = entry["baseline"], entry["current"]
        entry["ratio"] = round(c["seconds"] / b["seconds"], 3) if b and c else None
        stages[name] = entry
    whole = {}
    for run, (start, end) in wholes.items():
        seconds = end - start
        percent = cpu.percent(start, seconds) if cpu else None
        whole[run] = {
            "seconds": round(seconds, 1),
            "cpu_percent": None if percent is None else round(percent, 1),
        }
    if len(whole) == 2:
        whole["ratio"] = round(whole["current"]["seconds"] / whole["baseline"]["seconds"], 3)
    return {"stages": stages, "whole": whole}


def cpu_flags() -> list[str]:
    try:
        text = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return sorted(f for f in line.split(":")[-1].split() if f.startswith(("avx", "fma")))


def run_demo(tree: pathlib.Path, workdir: pathlib.Path, log: pathlib.Path) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.time()
    with open(log, "w") as out:
        done = subprocess.run(
            [sys.executable, str(tree / "tools" / "demo.py"), f"--workdir={workdir}"],
            cwd=tree,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if done.returncode:
        raise RuntimeError(f"demo in {tree} failed (exit {done.returncode}); see {log}")
    return start, time.time()


def main(argv):
    del argv
    work = pathlib.Path(_WORKDIR.value)
    work.mkdir(parents=True, exist_ok=True)
    times_path = work / "runs.json"
    wholes = json.loads(times_path.read_text()) if times_path.exists() else {}
    if not _REPORT_ONLY.value:
        if not _BASELINE.value:
            raise app.UsageError("--baseline_tree: required unless --report_only")
        stop = threading.Event()
        sampler = threading.Thread(target=sample_cpu, args=(work / "cpu.log", stop))
        sampler.start()
        try:
            trees = {"baseline": pathlib.Path(_BASELINE.value).resolve(), "current": REPO}
            for run in RUNS:
                if run in wholes:
                    continue
                wholes[run] = run_demo(trees[run], work / run, work / f"{run}.log")
                times_path.write_text(json.dumps(wholes))
        finally:
            stop.set()
            sampler.join()
    cpu_path = work / "cpu.log"
    cpu = CpuLog(cpu_path.read_text().splitlines()) if cpu_path.exists() else None
    runs = {}
    for run in RUNS:
        path = work / run / "stages.json"
        runs[run] = stage_figures(json.loads(path.read_text()), cpu) if path.exists() else {}
    record = {
        **compare(runs, {k: tuple(v) for k, v in wholes.items()}, cpu),
        "cpu_flags": cpu_flags(),
    }
    if _JSON.value:
        print(json.dumps(record, indent=1))
        return
    print(
        f"{'stage':<22} {'baseline s':>11} {'cpu%':>6} {'current s':>10} {'cpu%':>6} {'ratio':>6}"
    )
    rows = [*record["stages"].items(), ("whole run", record["whole"])]
    for name, entry in rows:
        cells = []
        for run in RUNS:
            figures = entry.get(run) or {}
            cells += [figures.get("seconds"), figures.get("cpu_percent")]
        text = ["-" if v is None else f"{v:.1f}" for v in cells]
        ratio = "-" if entry.get("ratio") is None else f"{entry['ratio']:.2f}"
        print(f"{name:<22} {text[0]:>11} {text[1]:>6} {text[2]:>10} {text[3]:>6} {ratio:>6}")


if __name__ == "__main__":
    app.run(main)
