"""atomic_files: whole files, directory swaps and journals, in process and killed with SIGKILL
mid-write (tests/workers/killed_writer.py stops at a chosen point and is killed there)."""

import json
import os
import pathlib
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest

from netadapt_tf import builders
from netadapt_tf.common import atomic_files
from netadapt_tf.common.strict_json import RecordError
from netadapt_tf.supernet import checkpoint
from netadapt_tf.supernet.network import build_supernet

HERE = pathlib.Path(__file__).resolve().parent
WORKER = HERE / "workers" / "killed_writer.py"


def _hidden(directory) -> list[str]:
    return sorted(p.name for p in pathlib.Path(directory).iterdir() if p.name.startswith("."))


def _kill_when_ready(mode: str, target) -> None:
    """Runs the worker until it says it stopped at its point, then SIGKILLs it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE)])}
    child = subprocess.Popen(
        [sys.executable, str(WORKER), mode, str(target)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        line = child.stdout.readline()
        assert line == b"ready\n", (line, child.stderr.read()[-3000:])
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait() == -signal.SIGKILL
    finally:
        child.stdout.close()
        child.stderr.close()
        if child.poll() is None:
            child.kill()


def test_whole_files_are_written_and_a_failed_write_leaves_the_old_one(tmp_path):
    path = tmp_path / "record.json"
    atomic_files.write_json(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1} and path.read_text().endswith("\n")
    atomic_files.write_bytes(tmp_path / "m.bin", b"\x00\x01")
    assert (tmp_path / "m.bin").read_bytes() == b"\x00\x01"

    def broken(name):
        pathlib.Path(name).write_text('{"a": 2, "b"')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_files.write_with(path, broken)
    assert json.loads(path.read_text()) == {"a": 1}
    assert _hidden(tmp_path) == []
    # Keras checks the suffix of the name it is given: temporaries keep it.
    names = []

    def weights(name):
        names.append(name)
        pathlib.Path(name).write_bytes(b"w")

    atomic_files.write_with(tmp_path / "w.weights.h5", weights)
    assert (tmp_path / "w.weights.h5").read_bytes() == b"w"
    assert names[0].endswith("-w.weights.h5") and pathlib.Path(names[0]).name.startswith(".tmp-")


def test_a_writer_killed_mid_file_leaves_the_old_file(tmp_path):
    path = tmp_path / "record.json"
    atomic_files.write_json(path, {"generation": "old"})
    _kill_when_ready("file", path)
    assert json.loads(path.read_text()) == {"generation": "old"}
    [leftover] = _hidden(tmp_path)  # the killed writer's temporary, never read
    assert leftover.endswith("-record.json")
    atomic_files.write_json(path, {"generation": "next"})
    assert json.loads(path.read_text()) == {"generation": "next"}


def test_a_torn_journal_line_is_dropped_and_the_next_append_starts_afresh(tmp_path):
    path = tmp_path / "log.jsonl"
    atomic_files.append_line(path, {"line": 1})
    atomic_files.append_line(path, {"line": 2})
    _kill_when_ready("journal", path)
    assert path.read_text().endswith('{"line": 4, "pad')
    assert atomic_files.read_journal(path) == [{"line": 1}, {"line": 2}, {"line": 3}]
    atomic_files.append_line(path, {"line": 4})
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        {"line": n} for n in (1, 2, 3, 4)
    ]
    # A whole object without its newline did not finish either.
    with open(path, "a") as f:
        f.write('{"line": 5}')
    assert len(atomic_files.read_journal(path)) == 4
    path.write_text('{"a":1}\nnot json\n{"a":2}\n')
    with pytest.raises(RecordError, match=r"log\.jsonl:2: damaged line .*allowed: one JSON"):
        atomic_files.read_journal(path)


def test_replace_directory_swaps_whole_directories(tmp_path, monkeypatch):
    target = tmp_path / "pair"

    def fill(text):
        def write(new):
            (new / "a.txt").write_text(text)
            (new / "b.txt").write_text(text)

        return write

    atomic_files.replace_directory(target, fill("1"))
    atomic_files.replace_directory(target, fill("2"))
    assert [(target / n).read_text() for n in ("a.txt", "b.txt")] == ["2", "2"]
    with pytest.raises(RuntimeError, match="failed fill"):
        atomic_files.replace_directory(
            target, lambda new: (_ for _ in ()).throw(RuntimeError("failed fill"))
        )
    assert [(target / n).read_text() for n in ("a.txt", "b.txt")] == ["2", "2"]
    assert _hidden(tmp_path) == []
    # Where the system has no atomic swap, two renames do the same job.
    monkeypatch.setattr(atomic_files, "_swap_in_one_call", lambda a, b: False)
    atomic_files.replace_directory(target, fill("3"))
    assert [(target / n).read_text() for n in ("a.txt", "b.txt")] == ["3", "3"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pair"]


def _old_checkpoint(directory):
    keras.utils.set_random_seed(1)
    spec = builders.build("mobilenet_v1", input_size=16, num_classes=4, width_multiplier=0.25)
    model = build_supernet(spec)
    checkpoint.save_supernet(model, directory)
    return model


@pytest.mark.slow  # a TensorFlow process per point, killed
@pytest.mark.parametrize(
    ("point", "left"),
    [("weights", "old"), ("before_swap", "old"), ("after_swap", "new")],
)
def test_a_checkpoint_writer_killed_anywhere_leaves_the_old_pair_or_the_new(tmp_path, point, left):
    directory = tmp_path / "supernet"
    old = _old_checkpoint(directory)
    _kill_when_ready(f"pair:{point}", directory)
    loaded = checkpoint.load_supernet(directory)
    if left == "old":
        assert loaded.spec == old.spec
        expected = old.get_weights()
    else:
        assert loaded.spec.num_classes == 5
        with np.load(f"{directory}.npz") as saved:
            expected = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    got = loaded.get_weights()
    assert len(got) == len(expected)
    for x, y in zip(got, expected, strict=True):
        np.testing.assert_array_equal(x, y)
    # The killed writer's directory is left next to the checkpoint; the next save removes it.
    assert len(_hidden(tmp_path)) == 1
    checkpoint.save_supernet(old, directory)
    assert _hidden(tmp_path) == []
    assert checkpoint.read_spec(directory) == old.spec
