"""Super-network training: sampling balance, the step, resume, NaN, multi-worker."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from training_helpers import TRAIN_CONFIG, shallow_spec, tiny_data, tiny_spec

from netadapt_tf.supernet import checkpoint
from netadapt_tf.supernet.network import batch_norm_layers
from netadapt_tf.supernet.sampling import (
    OrderedDropoutSampler,
    SamplingConfig,
    shrinking_floor,
    width_counts,
)
from netadapt_tf.training.step import NonFiniteLossError
from netadapt_tf.training.supernet_trainer import (
    SupernetTrainer,
    TrainConfig,
    check_batch_size,
)

HERE = os.path.dirname(__file__)


def test_every_width_gets_about_the_same_number_of_images():
    spec = tiny_spec()
    sampler = OrderedDropoutSampler(spec)
    for step in range(3):
        rows = sampler.sample(22, tf.constant([1, step], tf.int64))
        widths = rows["widths"].numpy()
        for j, layer in enumerate(spec.layers()):
            counts = width_counts(widths[:, j], layer.widths)
            assert counts.sum() == 22
            assert counts.max() - counts.min() <= 1, (layer.name, counts)
    # Layers are sampled independently, and each step draws anew.
    a = sampler.sample(22, tf.constant([1, 0], tf.int64))["widths"].numpy()
    b = sampler.sample(22, tf.constant([1, 1], tf.int64))["widths"].numpy()
    assert not np.array_equal(a, b)
    assert not np.array_equal(a[:, 1], a[:, 3])


def test_sandwich_puts_the_full_and_smallest_first():
    spec = tiny_spec()
    rows = OrderedDropoutSampler(spec, SamplingConfig(sandwich=True)).sample(20, [0, 0])
    widths = rows["widths"].numpy()
    layers = list(spec.layers())
    assert widths[0].tolist() == [layer.widths[-1] for layer in layers]
    assert widths[1].tolist() == [layer.widths[0] for layer in layers]
    for j, layer in enumerate(layers):
        counts = width_counts(widths[2:, j], layer.widths)
        assert counts.max() - counts.min() <= 1


def test_progressive_shrinking_offers_only_the_wider_widths_balanced():
    spec = tiny_spec()
    sampler = OrderedDropoutSampler(spec)
    layers = list(spec.layers())
    for floor, step in ((1.0, 0), (0.5, 1), (0.3, 2), (0.0, 3)):
        widths = sampler.sample(36, tf.constant([1, step], tf.int64), floor)["widths"].numpy()
        for j, layer in enumerate(layers):
            offered = [w for w in layer.widths if w >= floor * layer.widths[-1] - 1e-6]
            assert set(widths[:, j]) <= set(offered), (layer.name, floor, widths[:, j])
            counts = width_counts(widths[:, j], offered)
            assert counts.sum() == 36 and counts.max() - counts.min() <= 1, (floor, counts)
    # The schedule: the full network only at first, every width after the fraction.
    assert float(shrinking_floor(0, 100, 0.5)) == 1.0
    assert float(shrinking_floor(25, 100, 0.5)) == 0.5
    assert float(shrinking_floor(80, 100, 0.5)) == 0.0
    assert shrinking_floor(10, 100, 0.0) is None


def _trainer(workdir, **overrides):
    config = TrainConfig(**{**TRAIN_CONFIG, **overrides})
    data = tiny_data(96)
    return SupernetTrainer(shallow_spec(), data.take(64), data.skip(64), 64, config, str(workdir))


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    tf.config.experimental.enable_op_determinism()
    workdir = tmp_path_factory.mktemp("straight")
    return workdir, _trainer(workdir).run()


def test_training_writes_logs_checkpoints_and_the_supernet(straight_run):
    workdir, result = straight_run
    assert result.steps == 8
    lines = (workdir / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    assert set(json.loads(lines[-1])["held_out_accuracy"]) == {"full", "smallest", "random0"}
    assert os.listdir(workdir / "tensorboard")
    assert json.loads((workdir / "run.json").read_text())["spec_fingerprint"] == (
        shallow_spec().fingerprint()
    )
    loaded = checkpoint.load_supernet(result.supernet_dir, shallow_spec())
    assert loaded.spec == shallow_spec()


@pytest.mark.slow
def test_killed_mid_epoch_resumes_and_ends_like_an_uninterrupted_run(tmp_path, straight_run):
    script = os.path.join(HERE, "workers", "train_until_killed.py")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([HERE, os.path.dirname(HERE)])}
    killed = subprocess.run(
        [sys.executable, script, str(tmp_path), "3"], env=env, capture_output=True, text=True
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    saved = sorted(os.listdir(tmp_path / "checkpoints"))
    assert any(name.startswith("ckpt-2.") for name in saved), saved
    # As if the kill had come while an epoch's log line was being written.
    (tmp_path / "train_log.jsonl").write_text('{"epoch": 1, "step": 4, "lo')
    finished = subprocess.run(
        [sys.executable, script, str(tmp_path), "0"], env=env, capture_output=True, text=True
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "resumed from" in finished.stdout and "ckpt-2" in finished.stdout
    assert json.loads(finished.stdout.strip().splitlines()[-1])["steps"] == 8
    lines = (tmp_path / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    straight = checkpoint.load_supernet(straight_run[1].supernet_dir).get_weights()
    resumed = checkpoint.load_supernet(tmp_path / "supernet").get_weights()
    for x, y in zip(straight, resumed, strict=True):
        np.testing.assert_allclose(x, y, atol=1e-5)


def test_sandwich_and_in_place_distillation_train(tmp_path):
    result = _trainer(tmp_path, epochs=1, steps_per_epoch=2, sandwich=True, distill=True).run()
    assert result.steps == 2 and np.isfinite(result.images_per_second)


def test_progressive_shrinking_trains_and_bn_momentum_is_applied(tmp_path):
    trainer = _trainer(
        tmp_path, epochs=1, steps_per_epoch=2, progressive_shrinking=0.5, bn_momentum=0.8
    )
    assert {bn.momentum for bn in batch_norm_layers(trainer.model)} == {0.8}
    assert trainer.run().steps == 2


def test_a_nan_loss_stops_the_run_with_a_clear_message(tmp_path):
    trainer = _trainer(tmp_path, learning_rate=1e30, optimizer="sgd", momentum=0.0)
    with pytest.raises(NonFiniteLossError, match=r"loss became nan at step \d+ \(epoch 0\)"):
        trainer.run()


def test_bad_settings_fail_before_training(tmp_path):
    with pytest.raises(ValueError, match=r"train\.batch_size: 100 is larger than the 64 train"):
        _trainer(tmp_path / "x", batch_size=100)
    with pytest.raises(ValueError, match=r"train\.optimizer: 'lion' is not one of"):
        TrainConfig(optimizer="lion")
    with pytest.raises(ValueError, match=r"train\.progressive_shrinking: 1\.5 must be in \[0, 1\]"):
        TrainConfig(progressive_shrinking=1.5)
    with pytest.raises(ValueError, match=r"train\.bn_momentum: 1\.0 must be in \(0, 1\)"):
        TrainConfig(bn_momentum=1.0)
    _trainer(tmp_path / "y")
    with pytest.raises(ValueError, match=r"holds a run with other settings \(differing: \['train'"):
        _trainer(tmp_path / "y", batch_size=8)
    (tmp_path / "y" / "checkpoints").mkdir()
    (tmp_path / "y" / "checkpoints" / "ckpt-1.index").write_text("old")
    data = tiny_data(96)
    config = TrainConfig(**{**TRAIN_CONFIG, "batch_size": 8})
    SupernetTrainer(shallow_spec(), data, data, 64, config, str(tmp_path / "y"), overwrite=True)
    assert not (tmp_path / "y" / "checkpoints" / "ckpt-1.index").exists()


def test_batch_size_must_divide_among_replicas():
    assert check_batch_size(16, 2) == 8
    with pytest.raises(ValueError, match=r"train\.batch_size: 15 does not divide among 2 replicas"):
        check_batch_size(15, 2)


@pytest.mark.slow
def test_two_workers_end_with_identical_weights(tmp_path):
    script = os.path.join(HERE, "workers", "multi_worker_train.py")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([HERE, os.path.dirname(HERE)])}
    ports = _free_ports(2)
    procs = []
    for index in range(2):
        cluster = {"cluster": {"worker": [f"localhost:{p}" for p in ports]}}
        tf_config = json.dumps({**cluster, "task": {"type": "worker", "index": index}})
        procs.append(
            subprocess.Popen(
                [sys.executable, script, str(tmp_path / "run"), str(tmp_path / f"w{index}.npz")],
                env={**env, "TF_CONFIG": tf_config},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    a = np.load(tmp_path / "w0.npz")
    b = np.load(tmp_path / "w1.npz")
    assert len(a.files) > 10
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert int(a["__steps__"]) == 4


def _free_ports(count):
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports
