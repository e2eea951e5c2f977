"""tools/search.py on an untrained tiny super-network and synthetic data, and the checks that
refuse a checkpoint, dataset or metric that does not fit before any search starts."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
from search_helpers import SMALL_SEARCH_FLAGS
from training_helpers import trainer_workdir

from netadapt_tf import builders, data
from netadapt_tf.search.held_out_accuracy import EvalSettings, held_out_accuracy
from netadapt_tf.search.resources import make_resource
from netadapt_tf.space.arch import full_arch, load_arch
from netadapt_tf.supernet.checkpoint import save_supernet
from netadapt_tf.supernet.network import build_supernet

REPO = pathlib.Path(__file__).resolve().parent.parent
TOOL = REPO / "tools" / "search.py"
SPEC = builders.build("mobilenet_v1", input_size=16, num_classes=4, width_multiplier=0.25)
DATA = data.DataConfig(
    name="synthetic",
    image_size=16,
    channels=3,
    batch_size=16,
    held_out=32,
    synthetic_examples=128,
    synthetic_classes=4,
)


def _run(*args) -> subprocess.CompletedProcess:
    """The tool, judging in its own process (the judge pool's tests: test_judge_pool.py)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, str(TOOL), "--judge_workers=1", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> pathlib.Path:
    """A trainer's work directory, as tools/train_supernet.py leaves it (weights untrained)."""
    return trainer_workdir(tmp_path_factory.mktemp("train"), SPEC, DATA)


@pytest.mark.slow
def test_searches_a_checkpoint_and_refuses_other_settings_in_its_workdir(trained, tmp_path):
    workdir = tmp_path / "search"
    flags = [f"--supernet_checkpoint={trained / 'supernet'}", f"--workdir={workdir}"]
    done = _run(*flags, *SMALL_SEARCH_FLAGS)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("search: starting in ")
    summary = json.loads(done.stdout[done.stdout.index("\n{") :])
    assert summary["stop_reason"] == "target met" and summary["unit"] == "MACs"
    assert summary["discovered"]["fraction_of_initial"] <= 0.5
    arch = load_arch(summary["files"]["discovered_arch"], SPEC)
    points = json.loads(pathlib.Path(summary["files"]["trajectory"]).read_text())["points"]
    assert points[-1]["arch"] == arch.to_json() and len(points) == summary["iterations"] + 1
    settings = json.loads((workdir / "search.json").read_text())
    assert settings["accuracy"]["split"] == data.read_split(trained).to_json()
    assert settings["resource"]["metric"] == "macs"
    history = (workdir / "history.jsonl").read_bytes()
    other = _run(*flags, *SMALL_SEARCH_FLAGS, "--seed=1")
    assert other.returncode == 1
    assert "holds a search with other settings (differing, recorded vs now: config.seed " in (
        other.stderr
    )
    assert (workdir / "history.jsonl").read_bytes() == history


def test_conflicting_target_flags_fail_at_parsing(trained, tmp_path):
    done = _run(
        f"--supernet_checkpoint={trained / 'supernet'}",
        f"--workdir={tmp_path}",
        "--target=1000",
        "--target_fraction=0.5",
    )
    assert done.returncode != 0
    assert "--target and --target_fraction exclude each other" in done.stderr
    assert not (tmp_path / "search.json").exists()


def test_a_dataset_that_does_not_fit_the_checkpoint_is_refused(trained, tmp_path):
    checkpoint = trained / "supernet"
    settings = EvalSettings(batch_size=16)
    with pytest.raises(ValueError, match=r"has 10 classes but the super-network in .* classifie"):
        held_out_accuracy(checkpoint, settings, {"synthetic_classes": 10})
    with pytest.raises(ValueError, match=r"was made with a different held-out split: .*num_held"):
        held_out_accuracy(checkpoint, settings, {"held_out": 16})
    bare = tmp_path / "bare"  # a checkpoint without the trainer's records next to it
    save_supernet(build_supernet(SPEC), bare)
    with pytest.raises(ValueError, match=r"no record of the split .*--allow_unrecorded_split"):
        held_out_accuracy(bare, settings)
    with pytest.raises(ValueError, match=r"has no trainer record \(run.json\) .* pass --dataset"):
        held_out_accuracy(bare, settings, allow_unrecorded_split=True)
    overrides = {"name": "synthetic", "held_out": 32, "synthetic_examples": 128}
    judge = held_out_accuracy(
        bare, settings, {**overrides, "synthetic_classes": 4}, allow_unrecorded_split=True
    )
    assert judge.fingerprint["split_unrecorded"] is True
    assert "split_unrecorded" not in held_out_accuracy(checkpoint, settings).fingerprint


@pytest.mark.slow
def test_the_tool_refuses_a_checkpoint_without_a_split_before_writing(tmp_path):
    bare = tmp_path / "bare"  # a checkpoint without the trainer's records next to it
    save_supernet(build_supernet(SPEC), bare)
    done = _run(
        f"--supernet_checkpoint={bare}", f"--workdir={tmp_path / 's'}", "--dataset=synthetic"
    )
    assert done.returncode == 1
    assert "search: held-out split: no record of the split" in done.stderr
    assert not (tmp_path / "s").exists()


def test_the_judge_recalibrates_with_the_settings_average(trained):
    with pytest.raises(ValueError, match=r"recalibration_average: 'mean' is not allowed; one of"):
        EvalSettings(recalibration_average="mean")
    checkpoint = trained / "supernet"
    for average in ("cumulative", "momentum"):
        settings = EvalSettings(
            batch_size=16, recalibration_batches=2, recalibration_average=average
        )
        judge = held_out_accuracy(checkpoint, settings)
        assert judge.judge.recalibration_average == average
        assert judge.fingerprint["settings"]["recalibration_average"] == average
    assert EvalSettings().recalibration_average == "cumulative"


def test_unknown_or_incomplete_metrics_are_refused():
    with pytest.raises(ValueError, match=r"metric: 'energy' is not one of \('macs', 'host_lat"):
        make_resource("energy", SPEC)
    with pytest.raises(ValueError, match=r"metric: 'table' needs a latency table file"):
        make_resource("table", SPEC)
    with pytest.raises(ValueError, match=r"latency table is only read by metric 'table'"):
        make_resource("macs", SPEC, table_path="table.json")
    macs = make_resource("macs", SPEC)
    assert macs.unit == "MACs" and macs.measure(full_arch(SPEC)) == 285376.0


@pytest.mark.slow
def test_the_tool_refuses_a_damaged_supernet_and_a_data_dir_of_generated_data(trained, tmp_path):
    copy = tmp_path / "train"
    shutil.copytree(trained, copy)
    weights = copy / "supernet" / "supernet.weights.h5"
    flags = [f"--supernet_checkpoint={copy / 'supernet'}", *SMALL_SEARCH_FLAGS]
    ignored = _run(*flags, f"--workdir={tmp_path / 'a'}", "--data_dir=/nonexistent")
    assert ignored.returncode == 2, ignored.stderr[-2000:]
    assert ignored.stderr.strip().splitlines()[-1] == (
        "search: --data_dir=/nonexistent: not read by dataset 'synthetic', which is "
        "generated; allowed: only with a dataset read from files"
    )
    raw = bytearray(weights.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 4096] = bytes(len(raw[middle : middle + 4096]))  # 4 KiB zeroed
    weights.write_bytes(bytes(raw))
    done = _run(*flags, f"--workdir={tmp_path / 'b'}")
    assert done.returncode == 1, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"search: {weights}: ")
    assert "checksum mismatch" in last or "damaged HDF5 file" in last
    assert not (tmp_path / "b" / "history.jsonl").exists()
