"""Judging sub-networks from the super-network: accuracy, no retracing, BN recalibration."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import randomize_non_kernel_weights
from training_helpers import tiny_data, tiny_spec

from netadapt_tf.graphs.export import export_subnetwork
from netadapt_tf.judge.evaluation import SubnetEvaluator
from netadapt_tf.space.arch import full_arch, random_arch, smallest_arch
from netadapt_tf.supernet.network import build_supernet


@pytest.fixture(scope="module")
def supernet():
    model = build_supernet(tiny_spec())
    randomize_non_kernel_weights(model, seed=2)
    return model


def test_accuracy_equals_the_exported_models_and_one_trace_serves_all(supernet):
    spec = supernet.spec
    held_out = tiny_data(40, seed=9)
    evaluator = SubnetEvaluator(supernet, held_out, batch_size=16)
    images = np.stack([x for x, _ in held_out.as_numpy_iterator()])
    labels = np.array([y for _, y in held_out.as_numpy_iterator()])
    rng = np.random.default_rng(0)
    archs = [full_arch(spec), smallest_arch(spec)] + [random_arch(spec, rng) for _ in range(3)]
    for arch in archs:
        model = export_subnetwork(supernet, arch)
        expected = float(np.mean(np.argmax(model.predict(images, verbose=0), -1) == labels))
        assert evaluator.accuracy(arch) == pytest.approx(expected)
    assert evaluator.num_examples == 40  # the padded last batch does not count
    assert evaluator.traces == 1


def test_recalibration_uses_the_subnetworks_own_statistics_and_restores(supernet):
    spec = supernet.spec
    train = tiny_data(16, seed=4)
    evaluator = SubnetEvaluator(
        supernet,
        tiny_data(16, seed=5),
        batch_size=16,
        recalibration_data=train,
        recalibration_batches=1,
    )
    stem = supernet.super_layers["stem"]
    before = stem.bn.moving_mean.numpy().copy()
    images = np.stack([x for x, _ in train.as_numpy_iterator()])
    conv = np.asarray(stem.conv(images))
    arch = random_arch(spec, np.random.default_rng(1)).with_layer("stem", width=6)
    with evaluator.recalibrated(arch):
        # The stem's first 6 channels get the sub-network's statistics; the others, which
        # this sub-network lacks, are left at the reset value.
        mean, var = stem.bn.moving_mean.numpy(), stem.bn.moving_variance.numpy()
        np.testing.assert_allclose(mean[:6], conv.mean((0, 1, 2))[:6], atol=1e-4)
        np.testing.assert_allclose(var[:6], conv.var((0, 1, 2))[:6], rtol=1e-3, atol=1e-5)
        np.testing.assert_array_equal(mean[6:], 0)
    np.testing.assert_array_equal(stem.bn.moving_mean.numpy(), before)
    a = evaluator.accuracy(full_arch(spec), recalibrate=True)
    b = evaluator.accuracy(full_arch(spec), recalibrate=True)
    assert a == b  # recalibration is repeatable and leaves nothing behind
    assert evaluator.traces == 2  # one forward trace and one recalibration trace


def test_evaluator_errors(supernet):
    with pytest.raises(ValueError, match="recalibration_batches > 0 needs recalibration_data"):
        SubnetEvaluator(supernet, tiny_data(8), recalibration_batches=2)
    with pytest.raises(ValueError, match="held-out dataset: it holds no examples"):
        SubnetEvaluator(supernet, tiny_data(8).take(0))
    assert tf.executing_eagerly()


def test_recalibration_without_a_full_batch_is_refused(supernet):
    with pytest.raises(ValueError, match="fewer than batch_size=16 images, so no full batch"):
        SubnetEvaluator(
            supernet,
            tiny_data(16, seed=5),
            batch_size=16,
            recalibration_data=tiny_data(10, seed=4),
            recalibration_batches=1,
        )
