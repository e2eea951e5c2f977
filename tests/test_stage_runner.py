"""The demo's stage runner: a stage runs once per command, reruns afresh when its command
changed or a stage before it ran since, resumes after a kill, and says why in its log."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from netadapt_tf.common.strict_json import RecordError
from netadapt_tf.pipeline.demo_report import wall_seconds
from netadapt_tf.pipeline.stage_runner import (
    StageFailedError,
    StageRecord,
    StageRunner,
    ToolStage,
    read_stages,
)

HERE = pathlib.Path(__file__).resolve().parent
LOG = HERE / "fixtures" / "benchmark_model" / "info_prefix_cpu_and_gpu.txt"
MODEL = ["--model=mobilenet_v1", "--input_size=16", "--num_classes=4", "--width_multiplier=0.25"]


def _pipeline(workdir: pathlib.Path, seed: int, lines: list) -> StageRunner:
    """Two stages: a tool writes an arch, an in-process step copies it into a directory."""
    runner = StageRunner(workdir, log=lines.append)
    arch = workdir / "arch.json"
    runner.run_tool(
        "sample", "sample_arch", *MODEL, f"--seed={seed}", f"--output={arch}", outputs=[arch]
    )

    def copy():
        (workdir / "copies").mkdir()
        (workdir / "copies" / "arch.json").write_text(arch.read_text())

    runner.run_step("copy", copy, outputs=[workdir / "copies"])
    return runner


def _said(lines, name: str) -> str:
    """What the runner last said about whether stage `name` runs."""
    starts = (f"  {name}: runs", f"  {name}: done before")
    return next(line for line in reversed(lines) if line.startswith(starts))


def test_a_stage_reruns_afresh_when_its_command_changed_and_so_do_the_stages_after_it(tmp_path):
    lines = []
    _pipeline(tmp_path, 0, lines)
    first = (tmp_path / "copies" / "arch.json").read_text()
    assert first == (tmp_path / "arch.json").read_text()
    stages = json.loads((tmp_path / "stages.json").read_text())
    assert stages["sample"]["outputs"] == ["arch.json"] and stages["copy"]["outputs"] == ["copies"]
    assert stages["sample"]["command"][-2:] == ["--seed=0", f"--output={tmp_path / 'arch.json'}"]
    assert (stages["sample"]["finished"], stages["copy"]["finished"]) == (1, 2)
    # The same command: both skipped.
    _pipeline(tmp_path, 0, lines)
    assert _said(lines, "sample").startswith("  sample: done before")
    assert _said(lines, "copy").startswith("  copy: done before")
    # Another seed: the tool's stage reruns from scratch; the copy after it too.
    (tmp_path / "copies" / "stale").write_text("from the old run")
    _pipeline(tmp_path, 1, lines)
    assert _said(lines, "sample").startswith(
        "  sample: runs (its command changed since it ran (--seed=0 became --seed=1); "
        "removed ['arch.json'] to start afresh; log: "
    )
    assert _said(lines, "copy").startswith(
        "  copy: runs (a stage before it ran since it finished; removed ['copies'] to start "
        "afresh; log: "
    )
    assert not (tmp_path / "copies" / "stale").exists()
    second = (tmp_path / "copies" / "arch.json").read_text()
    assert second == (tmp_path / "arch.json").read_text() != first
    # The stage's log says so, after the first run's output.
    log = (tmp_path / "sample.log").read_text().splitlines()
    headers = [line for line in log if line.startswith("=== ")]
    assert len(headers) == 2
    assert "stage sample: runs (first run); command: " in headers[0]
    assert (
        "stage sample: runs (its command changed since it ran (--seed=0 became --seed=1)"
        in (headers[1])
    )
    assert sum(line.startswith("wrote ") for line in log) == 2
    _pipeline(tmp_path, 1, lines)
    assert _said(lines, "copy").startswith("  copy: done before")


_KILLED_STEP = """
import os, pathlib, signal, sys
from netadapt_tf.pipeline.stage_runner import StageRunner
workdir = pathlib.Path(sys.argv[1])
def step():
    (workdir / "partial").write_text("half of the work")
    os.kill(os.getpid(), signal.SIGKILL)
StageRunner(workdir).run_step("work", step, outputs=[workdir / "partial"])
"""


def test_a_killed_stage_resumes_with_its_outputs_and_a_failed_one_is_not_recorded(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    done = subprocess.run([sys.executable, "-c", _KILLED_STEP, str(tmp_path)], env=env)
    assert done.returncode == -9
    record = json.loads((tmp_path / "stages.json").read_text())["work"]
    assert record["seconds"] is None and record["finished"] is None
    lines = []
    runner = StageRunner(tmp_path, log=lines.append)
    runner.run_step(
        "work", lambda: (tmp_path / "partial").write_text("done"), [tmp_path / "partial"]
    )
    assert _said(lines, "work").startswith("  work: runs (it did not finish; resuming; log: ")
    assert (tmp_path / "partial").read_text() == "done"
    with pytest.raises(StageFailedError, match=r"stage broken failed \(exit 1\); .*broken\.log"):
        runner.run_tool("broken", "parse_benchmark_log", str(tmp_path / "missing.log"))
    assert "broken" not in json.loads((tmp_path / "stages.json").read_text())
    # Its log part starts on a line of its own, even after a line a kill tore.
    with open(tmp_path / "broken.log", "a") as log:
        log.write("half a line")
    with pytest.raises(StageFailedError):
        runner.run_tool("broken", "parse_benchmark_log", str(tmp_path / "missing.log"))
    text = (tmp_path / "broken.log").read_text()
    assert "half a line\n=== " in text and text.count("stage broken: runs (first run)") == 2
    with pytest.raises(ValueError, match=r"outputs: /elsewhere is outside the work directory"):
        runner.run_step("out", lambda: None, outputs=["/elsewhere"])


def test_a_recorded_tool_run_is_skipped_and_stages_json_is_read_strictly(tmp_path):
    lines = []
    StageRunner(tmp_path, log=lines.append).run_tool("parse", "parse_benchmark_log", str(LOG))
    assert '"runs"' not in (tmp_path / "parse.log").read_text()
    runner = StageRunner(tmp_path, log=lines.append)
    runner.run_tool("parse", "parse_benchmark_log", str(LOG), "--json")
    assert _said(lines, "parse").startswith("  parse: runs (its command changed since it ran")
    assert "(added --json)" in _said(lines, "parse")
    assert '"runs"' in (tmp_path / "parse.log").read_text()
    # A record written before outputs and finishing order were recorded is still read.
    stages = json.loads((tmp_path / "stages.json").read_text())
    old = {"parse": {"seconds": 1.0, "command": stages["parse"]["command"]}}
    (tmp_path / "stages.json").write_text(json.dumps(old))
    again = StageRunner(tmp_path, log=lines.append)
    again.run_tool("parse", "parse_benchmark_log", str(LOG), "--json")
    assert _said(lines, "parse").startswith("  parse: done before")
    for bad, field in (
        ({"parse": {"seconds": "1", "command": None}}, "parse.seconds: '1' is not allowed"),
        ({"parse": {"seconds": 1, "command": [True]}}, r"parse.command\[0\]: True is not"),
        ({"parse": {"seconds": None, "command": None, "finished": 3}}, "parse.finished: 3"),
        (
            {"parse": {"seconds": 1, "command": None, "log": "x"}},
            r"parse: unknown fields \['log'\]",
        ),
    ):
        (tmp_path / "stages.json").write_text(json.dumps(bad))
        with pytest.raises(RecordError, match=rf"stages\.json: {field}"):
            StageRunner(tmp_path)
    (tmp_path / "stages.json").write_text('{"parse": {"seconds": 1')
    with pytest.raises(RecordError, match=r"stages\.json: malformed JSON"):
        StageRunner(tmp_path)


def test_an_in_process_step_reruns_when_its_settings_change(tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    calls = []

    def step():
        calls.append(1)
        (workdir / "plan.txt").write_text(str(len(calls)))

    for settings in (("--a=1",), ("--a=1",), ("--a=2",)):
        StageRunner(workdir, log=lambda *a: None).run_step(
            "plan", step, outputs=[workdir / "plan.txt"], settings=settings
        )
    assert len(calls) == 2 and (workdir / "plan.txt").read_text() == "2"
    assert read_stages(workdir / "stages.json")["plan"].command == ("--a=2",)


def test_tools_run_together_each_with_its_own_record_and_log(tmp_path):
    lines = []
    plain = ToolStage("plain", "parse_benchmark_log", (str(LOG),))
    as_json = ToolStage("as_json", "parse_benchmark_log", (str(LOG), "--json"))
    StageRunner(tmp_path, log=lines.append).run_tools_together([plain, as_json])
    stages = read_stages(tmp_path / "stages.json")
    a, b = stages["plain"], stages["as_json"]
    assert a.done and b.done and a.started is not None and b.started is not None
    # Side by side: each started before the other finished (one after the other could not).
    assert b.started < a.started + a.seconds and a.started < b.started + b.seconds
    assert '"runs"' in (tmp_path / "as_json.log").read_text()
    assert '"runs"' not in (tmp_path / "plain.log").read_text()
    # Rerun: both up to date. A step after the group is judged against the group.
    runner = StageRunner(tmp_path, log=lines.append)
    runner.run_tools_together([plain, as_json])
    runner.run_step("after", lambda: None)
    assert _said(lines, "plain").startswith("  plain: done before")
    assert _said(lines, "as_json").startswith("  as_json: done before")
    # One changed command: only it reruns afresh, the other in the group is not judged
    # against it, and the step after the group reruns.
    changed = ToolStage("as_json", "parse_benchmark_log", (str(LOG), "--json=true"))
    runner = StageRunner(tmp_path, log=lines.append)
    runner.run_tools_together([plain, changed])
    runner.run_step("after", lambda: None)
    assert _said(lines, "plain").startswith("  plain: done before")
    assert "its command changed since it ran (--json became --json=true)" in _said(lines, "as_json")
    assert _said(lines, "after").startswith("  after: runs (a stage before it ran since")


def test_a_failing_tool_in_a_group_is_named_and_the_others_are_recorded(tmp_path):
    plain = ToolStage("plain", "parse_benchmark_log", (str(LOG),))
    broken = ToolStage("broken", "parse_benchmark_log", (str(tmp_path / "missing.log"),))
    runner = StageRunner(tmp_path, log=lambda *a: None)
    with pytest.raises(StageFailedError, match=r"stage broken failed \(exit 1\); .*broken\.log"):
        runner.run_tools_together([broken, plain])
    stages = read_stages(tmp_path / "stages.json")
    assert "broken" not in stages and stages["plain"].done
    with pytest.raises(ValueError, match=r"stages: names \['plain', 'plain'\] repeat"):
        runner.run_tools_together([plain, plain])


def test_the_wall_time_of_stages_run_side_by_side_counts_once():
    side_by_side = [
        StageRecord(None, seconds=10.0, finished=1, started=100.0),
        StageRecord(None, seconds=4.0, finished=2, started=103.0),  # inside the first
        StageRecord(None, seconds=5.0, finished=3, started=108.0),  # overlaps its end
        StageRecord(None, seconds=2.0, finished=4, started=120.0),  # after a gap
        StageRecord(None, seconds=7.0, finished=0),  # an old record: no start time
    ]
    assert wall_seconds(side_by_side) == pytest.approx(13.0 + 2.0 + 7.0)
