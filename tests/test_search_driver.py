"""The search driver's work directory: its files, kill -9 and resume, refused settings,
failed samples on record (torn journal lines: test_atomic_files.py).

Run as a program (`python tests/test_search_driver.py WORKDIR SAMPLES ITERATIONS`) it runs
the test search and kills itself with SIGKILL after that many samples or iterations.
"""

import json
import os
import signal
import subprocess
import sys

import pytest
from search_helpers import RESOURCE, SPEC, accuracy, make_driver, small_config

from netadapt_tf import builders
from netadapt_tf.common.strict_json import RecordError
from netadapt_tf.space.arch import full_arch, load_arch

FILES = ("history.jsonl", "trajectory.json", "discovered_arch.json")


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _run_killed(workdir, samples: int = 0, iterations: int = 0) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, __file__, str(workdir), str(samples), str(iterations)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]


@pytest.mark.slow
def test_kill_9_and_resume_give_the_history_of_an_uninterrupted_run(tmp_path):
    whole = tmp_path / "whole"
    expected = make_driver(whole).run()
    assert len(expected.iterations) == 5
    cut = tmp_path / "cut"
    _run_killed(cut, samples=6)  # iteration 0 and 2 of the 4 samples of iteration 1
    assert len(_lines(cut / "history.jsonl")) == 2
    assert [s["index"] for s in _lines(cut / "samples.jsonl")] == [0, 1]
    _run_killed(cut, iterations=1)  # resumes, finishes iteration 1, dies right after
    assert len(_lines(cut / "history.jsonl")) == 3
    with open(cut / "history.jsonl", "a") as f:  # what a kill during a write leaves
        f.write('{"kind": "iteration", "iteration": 2, "sam')
    logged = []
    resumed = make_driver(cut, log=logged.append).run()
    assert logged[0].startswith(f"search: resuming in {cut} at iteration 2 (0 of its samples")
    assert resumed.arch == expected.arch
    for name in FILES:
        assert (cut / name).read_bytes() == (whole / name).read_bytes(), name


def test_the_work_directory_holds_settings_history_trajectory_and_result(tmp_path):
    logged = []
    result = make_driver(tmp_path, log=logged.append, plot=True, tensorboard=True).run()
    settings = json.loads((tmp_path / "search.json").read_text())
    assert settings["spec_fingerprint"] == SPEC.fingerprint()
    assert settings["resource"] == RESOURCE
    assert settings["config"]["samples_per_iteration"] == 4
    assert settings["resolved"]["final_target"] == 0.5 * settings["resolved"]["initial_resource"]
    assert len(settings["units"]) == 27
    history = _lines(tmp_path / "history.jsonl")
    assert history[0]["kind"] == "initial" and history[0]["arch"] == full_arch(SPEC).to_json()
    assert [h["iteration"] for h in history[1:]] == list(range(len(result.iterations)))
    for line in history[1:]:
        assert len(line["samples"]) == 4
        chosen = line["samples"][line["chosen"]]
        assert chosen["status"] == "ok" and chosen["accuracy"] == line["best"]["accuracy"]
        assert all(s["arch"]["format"] == "netadapt_tf.arch/1" for s in line["samples"])
    trajectory = json.loads((tmp_path / "trajectory.json").read_text())["points"]
    assert trajectory[0]["iteration"] is None and trajectory[0]["arch"] == history[0]["arch"]
    assert len(trajectory) == len(result.iterations) + 1
    assert load_arch(str(tmp_path / "discovered_arch.json"), SPEC) == result.arch
    assert trajectory[-1]["arch"] == result.arch.to_json()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["stop_reason"] == "target met" and summary["target_met"]
    assert summary["files"]["discovered_arch"] == str(tmp_path / "discovered_arch.json")
    assert (tmp_path / "progress.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any(p.name.startswith("events.") for p in (tmp_path / "tensorboard").iterdir())
    assert logged[1].startswith("iteration 0: target 242570, best accuracy")
    assert "samples 4/4 (0 failed, 0 infeasible)" in logged[1] and "ETA" in logged[1]
    assert logged[-1].endswith("final target met")


class CountedJudge:
    """The synthetic judge with the number of images each reading uses (as HeldOutAccuracy)."""

    num_examples = 2500

    def __call__(self, arch):
        return accuracy(arch) / accuracy(full_arch(SPEC))  # a fraction, as accuracies are


def test_the_log_states_the_noise_of_a_reading_and_the_margin_of_each_choice(tmp_path):
    logged = []
    result = make_driver(tmp_path, judge=CountedJudge(), log=logged.append).run()
    first = result.state.initial.accuracy
    sd = 100 * (first * (1 - first) / 2500) ** 0.5
    assert logged[1] == (
        f"search: the initial arch reads {first:.4f} on 2500 held-out images (binomial sd of "
        f"one reading {sd:.2f} pts)"
    )
    record = result.iterations[0]
    readings = sorted((s.accuracy for s in record.samples), reverse=True)
    best_sd = 100 * (readings[0] * (1 - readings[0]) / 2500) ** 0.5
    assert (
        f"; margin over the runner-up {100 * (readings[0] - readings[1]):.2f} pts, readings "
        f"spread {100 * (readings[0] - readings[-1]):.2f} pts, noise of one reading "
        f"{best_sd:.2f} pts (binomial sd, 2500 images)"
    ) in logged[2]


def test_a_directory_of_other_settings_is_refused_unless_overwrite(tmp_path):
    make_driver(tmp_path, small_config(max_iterations=1)).run()
    first = _lines(tmp_path / "history.jsonl")
    with pytest.raises(ValueError, match=r"recorded vs now: config.seed \(3 vs 4\)\); use another"):
        make_driver(tmp_path, small_config(max_iterations=1, seed=4)).run()
    with pytest.raises(
        RecordError, match=r"other settings \(differing, recorded vs now: resource\.counter \("
    ):
        make_driver(tmp_path, small_config(max_iterations=1), resource_fingerprint={"m": 2}).run()
    other = builders.build("mobilenet_v1", input_size=16, num_classes=4, width_multiplier=0.5)
    with pytest.raises(ValueError, match=r"recorded vs now: spec_fingerprint"):
        make_driver(tmp_path, small_config(max_iterations=1), spec=other).run()
    # max_iterations may grow: the search goes on where it stopped.
    make_driver(tmp_path, small_config(max_iterations=2)).run()
    assert _lines(tmp_path / "history.jsonl")[:2] == first and len(first) == 2
    assert len(_lines(tmp_path / "history.jsonl")) == 3
    make_driver(tmp_path, small_config(max_iterations=1, seed=4), overwrite=True).run()
    assert json.loads((tmp_path / "search.json").read_text())["config"]["seed"] == 4
    assert len(_lines(tmp_path / "history.jsonl")) == 2
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "history.jsonl").write_text("{}\n")
    with pytest.raises(ValueError, match=r"holds search files \['history.jsonl'\] but no search"):
        make_driver(stray).run()


def test_failed_samples_are_on_record_and_never_chosen(tmp_path):
    full = full_arch(SPEC).as_dict()

    def judge(arch):
        if arch.choice("block13/pointwise") != full["block13/pointwise"]:
            raise RuntimeError("out of memory")
        return accuracy(arch)

    config = small_config(max_iterations=3, samples_per_iteration=6, layers_per_sample=6)
    make_driver(tmp_path, config, judge=judge).run()
    samples = [s for line in _lines(tmp_path / "history.jsonl")[1:] for s in line["samples"]]
    failed = [s for s in samples if s["status"] == "failed"]
    assert failed
    assert {(s["error"], s["attempts"], s["accuracy"]) for s in failed} == {
        ("RuntimeError: out of memory", 2, None)
    }
    for line in _lines(tmp_path / "history.jsonl")[1:]:
        assert line["samples"][line["chosen"]]["status"] == "ok"


if __name__ == "__main__":
    workdir, kill_after_samples, kill_after_iterations = sys.argv[1], *map(int, sys.argv[2:4])
    counts = {"samples": 0, "iterations": 0}

    def _count(kind: str, limit: int):
        def hook(_record):
            counts[kind] += 1
            if counts[kind] == limit:
                os.kill(os.getpid(), signal.SIGKILL)

        return hook

    make_driver(workdir).run(
        on_sample=_count("samples", kill_after_samples),
        on_iteration=_count("iterations", kill_after_iterations),
    )
