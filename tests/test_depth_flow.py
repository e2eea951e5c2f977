"""The depth flow's pieces on a tiny FastDepth (width 0.25, 32x32) and procedural rooms: the
distillation loss, the trainer's depth step, the judge's depth metrics (sliced and masked
forward, BN recalibration) and the checks that refuse data, checkpoints and flags of the
other task before any work."""

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf
from training_helpers import shallow_depth_spec

from netadapt_tf import builders, data, depth
from netadapt_tf.configs import search as search_presets
from netadapt_tf.configs import supernet as supernet_presets
from netadapt_tf.judge.evaluation import SubnetEvaluator
from netadapt_tf.search.held_out_accuracy import EvalSettings
from netadapt_tf.space.arch import full_arch, random_arch, smallest_arch
from netadapt_tf.space.task import check_depth_metric, check_task, task_of
from netadapt_tf.supernet.network import arch_inputs, build_supernet
from netadapt_tf.training.supernet_trainer import SupernetTrainer, TrainConfig

SPEC = builders.build("fastdepth", input_size=32, width_multiplier=0.25)
# The judge and trainer tests trace every layer: they run on FastDepth cut to half its layers
# (every node type kept); the full tiny FastDepth runs the sliced forward and the export in
# test_sliced_forward.py and test_export.py.
SHALLOW = shallow_depth_spec()
CLASSIFIER = builders.build("mobilenet_v1", input_size=16, num_classes=4, width_multiplier=0.25)
ROOMS = data.DataConfig(
    name="procedural_depth",
    image_size=32,
    channels=3,
    batch_size=8,
    held_out=16,
    synthetic_examples=64,
)


@pytest.fixture(scope="module")
def rooms():
    return data.load(ROOMS, task="depth")


def test_distillation_l1_counts_every_pixel_and_holds_the_teacher():
    teacher = tf.constant([[[[1.0], [2.0]], [[0.0], [4.0]]]])
    prediction = tf.Variable([[[[1.5], [2.0]], [[1.0], [2.0]]]])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(teacher)
        loss = depth.distillation_l1(teacher, prediction)
    assert float(loss) == pytest.approx((0.5 + 0 + 1 + 2) / 4)
    assert tape.gradient(loss, teacher) is None
    np.testing.assert_allclose(
        tape.gradient(loss, prediction).numpy().ravel(), [0.25, 0.0, 0.25, -0.25]
    )
    with pytest.raises(ValueError, match=r"prediction shape \(1, 2\) differs from the teacher"):
        depth.distillation_l1(teacher, tf.zeros([1, 2]))


def test_task_is_read_off_the_spec_and_checked():
    assert task_of(SPEC) == "depth" and task_of(CLASSIFIER) == "classification"
    check_task(SPEC, "depth", "--preset=depth_quick")
    with pytest.raises(
        ValueError,
        match=r"^--preset=depth_quick is for depth, but mobilenet_v1 is a classifier "
        r"\(num_classes 4\); allowed: a depth network$",
    ):
        check_task(CLASSIFIER, "depth", "--preset=depth_quick")
    with pytest.raises(ValueError, match=r"is for classification, but fastdepth is a depth net"):
        check_task(SPEC, "classification", "--preset=demo")
    assert check_depth_metric(SPEC, None, "depth_metric") == "delta1"
    assert check_depth_metric(SPEC, "rmse", "depth_metric") == "rmse"
    assert check_depth_metric(CLASSIFIER, None, "depth_metric") is None
    with pytest.raises(
        ValueError,
        match=r"^--depth_metric: 'rmse' is not allowed for mobilenet_v1, a classifier "
        r"\(num_classes 4\), judged by top-1 accuracy; allowed: only for a depth network",
    ):
        check_depth_metric(CLASSIFIER, "rmse", "--depth_metric")
    with pytest.raises(ValueError, match=r"depth_metric: 'mae' is not one of \('delta1', 'rmse'\)"):
        check_depth_metric(SPEC, "mae", "depth_metric")
    with pytest.raises(ValueError, match=r"EvalSettings.depth_metric: 'mae' is not allowed"):
        EvalSettings(depth_metric="mae")
    # A classification search's record is what it was before depth existed.
    assert "depth_metric" not in EvalSettings().to_json()
    assert EvalSettings(depth_metric="rmse").to_json()["depth_metric"] == "rmse"


def test_presets_of_the_depth_flow():
    paper = supernet_presets.get_config("nyu_fastdepth_paper")
    assert paper.model.build().dense_channels == 1 and paper.data.held_out == 2000
    train = paper.train
    assert (train.epochs, train.batch_size, train.lr_decay, train.lr_decay_epochs) == (
        50,
        16,
        0.9,
        1,
    )
    assert train.learning_rate * train.batch_size / 1024 == pytest.approx(0.025)
    quick = supernet_presets.get_config("depth_quick")
    assert quick.data.name == "procedural_depth" and quick.model.input_size == 32
    assert task_of(quick.model.build()) == "depth"
    search = search_presets.get_config("nyu_fastdepth_paper")
    assert search.task == "depth" and search.evaluation.depth_metric == "delta1"
    assert (search.search.samples_per_iteration, search.search.decay) == (150, 0.98)
    assert search.search.initial_reduction == 0.015
    assert search_presets.get_config("depth_quick").task == "depth"
    by_macs = search_presets.get_config("depth_quick")
    by_latency = search_presets.get_config("depth_quick_latency")
    assert (by_macs.metric, by_latency.metric) == ("macs", "table")
    assert (by_latency.search.initial_reduction, by_latency.search.decay) == (0.03, 0.98)
    assert by_latency.search.max_iterations == 20
    # Everything else is depth_quick's.
    assert (
        dataclasses.replace(by_latency.search, initial_reduction=0.1, decay=0.9, max_iterations=6)
        == by_macs.search
    )
    assert (by_latency.evaluation, by_latency.task) == (by_macs.evaluation, "depth")
    assert search_presets.get_config("demo").task == "classification"


def test_judge_reads_depth_metrics_alike_through_both_forwards(rooms):
    tf.keras.utils.set_random_seed(0)
    supernet = build_supernet(SHALLOW)
    arch = random_arch(SHALLOW, np.random.default_rng(3))
    masked = SubnetEvaluator(supernet, rooms.held_out, batch_size=8)
    fast = SubnetEvaluator(supernet, rooms.held_out, batch_size=8, fast=True)
    assert masked.num_examples == 16
    for a in (full_arch(SHALLOW), arch):
        want = masked.depth_metrics(a)
        got = fast.depth_metrics(a)
        assert want.num_images == 16 and got.num_images == 16
        for name in depth.METRIC_NAMES:
            assert getattr(got, name) == pytest.approx(getattr(want, name), rel=1e-4, abs=1e-5)
    # The masked judge's figures are the task layer's, on the super-network's depth maps.
    rows = arch_inputs(SHALLOW, [arch])

    def predict(images):
        n = len(images)
        batch = {k: np.repeat(v, n, axis=0) for k, v in rows.items()}
        return supernet({"image": images, **batch}, training=False)

    expected = depth.evaluate(
        predict, data.batched(rooms.held_out, 8, training=False).as_numpy_iterator()
    )
    assert masked.depth_metrics(arch).rmse == pytest.approx(expected.rmse, rel=1e-5)
    assert masked.accuracy(arch) == pytest.approx(expected.delta1, abs=1e-6)
    by_rmse = SubnetEvaluator(supernet, rooms.held_out, batch_size=8, depth_metric="rmse")
    assert by_rmse.accuracy(arch) == pytest.approx(-expected.rmse, rel=1e-5)


def test_judge_recalibrates_depth_networks_alike_through_both_forwards(rooms):
    tf.keras.utils.set_random_seed(1)
    supernet = build_supernet(SHALLOW)
    kw = {
        "batch_size": 8,
        "recalibration_data": rooms.train_for_epoch(0),
        "recalibration_batches": 2,
        "recalibration_average": "cumulative",
    }
    masked = SubnetEvaluator(supernet, rooms.held_out, **kw)
    fast = SubnetEvaluator(supernet, rooms.held_out, fast=True, **kw)
    arch = smallest_arch(SHALLOW)
    plain = masked.depth_metrics(arch, recalibrate=False)
    recalibrated = masked.depth_metrics(arch)
    assert recalibrated.rmse != pytest.approx(plain.rmse, rel=1e-3)
    assert fast.depth_metrics(arch).rmse == pytest.approx(recalibrated.rmse, rel=1e-4)
    # The shared statistics are restored after judging.
    assert masked.depth_metrics(arch, recalibrate=False).rmse == pytest.approx(plain.rmse)


def test_a_classifier_judge_takes_no_depth_metric(rooms):
    supernet = build_supernet(CLASSIFIER)
    with pytest.raises(ValueError, match=r"^depth_metric: 'delta1' is not allowed for mobilenet"):
        SubnetEvaluator(supernet, rooms.held_out, batch_size=8, depth_metric="delta1")


def test_trainer_takes_depth_steps_with_distillation(rooms, tmp_path):
    config = TrainConfig(
        epochs=1,
        steps_per_epoch=2,
        batch_size=8,
        learning_rate=0.5,
        optimizer="adam",
        ema_decay=0.0,
        full_network=True,
        distill=True,
        width_correlation=1.0,
        monitor_archs=1,
        eval_batch_size=8,
        max_eval_examples=16,
    )
    trainer = SupernetTrainer(
        SHALLOW,
        rooms.train_for_epoch,
        rooms.held_out,
        rooms.num_train,
        config,
        str(tmp_path),
        tf.distribute.OneDeviceStrategy("/cpu:0"),
        progress=False,
        log=lambda *a: None,
    )
    before = [w.numpy().copy() for w in trainer.model.trainable_weights]
    result = trainer.run()
    assert result.steps == 2
    assert set(result.monitor) == {"full", "smallest", "random0"}
    assert all(0.0 <= v <= 1.0 for v in result.monitor.values())
    changed = [
        not np.allclose(b, w.numpy())
        for b, w in zip(before, trainer.model.trainable_weights, strict=True)
    ]
    assert any(changed)
    entry = json.loads((tmp_path / "train_log.jsonl").read_text().splitlines()[-1])
    assert set(entry) >= {"loss", "train_delta1", "held_out_delta1"}
    assert np.isfinite(entry["loss"]) and entry["loss"] > 0
    assert 0.0 <= entry["train_delta1"] <= 1.0
