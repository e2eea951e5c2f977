"""Damaged files are refused by name, never read: checksum manifests and HDF5 stamps
(common/checksums.py), a training run's checkpoints falling back to the previous good one
(supernet/resume.py), and a damaged super-network refused before any weight is built."""

import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from training_helpers import shallow_spec

from netadapt_tf.common import checksums
from netadapt_tf.common.strict_json import RecordError
from netadapt_tf.supernet import checkpoint, resume
from netadapt_tf.supernet.network import build_supernet


def _truncate(path: pathlib.Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip(path: pathlib.Path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x40
    path.write_bytes(bytes(data))


def _zero(path: pathlib.Path, start: int, length: int = 4096) -> None:
    data = bytearray(path.read_bytes())
    data[start : start + length] = bytes(min(length, len(data) - start))
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _flip])
def test_a_manifest_names_the_damaged_file(tmp_path, damage):
    files = [tmp_path / "a.index", tmp_path / "a.data-00000-of-00001"]
    files[0].write_bytes(b"index" * 10)
    files[1].write_bytes(np.arange(1000, dtype=np.float32).tobytes())
    checksums.write_manifest(tmp_path / "a.sha256", files)
    checksums.verify_manifest(tmp_path / "a.sha256")
    damage(files[1])
    with pytest.raises(
        RecordError, match=r"a\.data-00000-of-00001: (\d+ bytes, 4000 when|checksum)"
    ):
        checksums.verify_manifest(tmp_path / "a.sha256")
    with pytest.raises(RecordError, match=r"b\.sha256: no such file .*killed while saving"):
        checksums.verify_manifest(tmp_path / "b.sha256")


@pytest.fixture(scope="module")
def saved_supernet(tmp_path_factory):
    keras.utils.set_random_seed(0)
    return checkpoint.save_supernet(
        build_supernet(shallow_spec()), tmp_path_factory.mktemp("s") / "supernet"
    )


@pytest.mark.parametrize(
    ("damage", "error"),
    [
        (_truncate, r"damaged HDF5 file"),
        (lambda p: _zero(p, p.stat().st_size // 2), r"(checksum mismatch|damaged HDF5 file)"),
        (lambda p: _zero(p, p.stat().st_size - 6000), r"(checksum mismatch|damaged HDF5 file)"),
    ],
)
def test_a_damaged_supernet_is_refused_by_name(tmp_path, saved_supernet, damage, error):
    copy = tmp_path / "supernet"
    copy.mkdir()
    for name in (checkpoint.SPEC_FILE, checkpoint.WEIGHTS_FILE):
        (copy / name).write_bytes((saved_supernet / name).read_bytes())
    checkpoint.load_supernet(copy)  # intact: loads
    damage(copy / checkpoint.WEIGHTS_FILE)
    with pytest.raises(RecordError, match=str(copy / checkpoint.WEIGHTS_FILE) + ": " + error):
        checkpoint.load_supernet(copy)


@pytest.mark.parametrize("damage", [_truncate, _flip])
def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_good_one(tmp_path, damage):
    variable = tf.Variable(np.zeros(256, np.float32))
    said = []
    saver = resume.TrainingCheckpoints(str(tmp_path), said.append, v=variable)
    for step in (2, 4, 6):
        variable.assign(np.full(256, step, np.float32))
        saver.save(step, (step * 1.5, step * 2.5))
    assert sorted(p.name for p in tmp_path.glob("*.sha256")) == ["ckpt-4.sha256", "ckpt-6.sha256"]
    [data] = tmp_path.glob("ckpt-6.data-*")
    damage(data)
    variable.assign(np.zeros(256, np.float32))
    restorer = resume.TrainingCheckpoints(str(tmp_path), said.append, v=variable)
    assert restorer.restore() == (4, (6.0, 10.0))
    assert variable.numpy()[0] == 4
    assert said[0].startswith(f"checkpoint {tmp_path / 'ckpt-6'} is damaged, not resuming")
    assert str(data) in said[0] and said[1] == f"resumed from {tmp_path / 'ckpt-4'}"
    [data4] = tmp_path.glob("ckpt-4.data-*")
    damage(data4)
    with pytest.raises(RecordError, match=r"every checkpoint is damaged .*--overwrite"):
        resume.TrainingCheckpoints(str(tmp_path), said.append, v=variable).restore()


def test_trim_journal_drops_the_lines_after_the_checkpoint(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"step": 4}\n{"step": 8}\n{"step": 12, "x": 1')
    assert resume.trim_journal(str(path), 4) == [{"step": 4}]
    assert path.read_text() == '{"step":4}\n'
