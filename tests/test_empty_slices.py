"""Ops on slices that can be empty give the right shapes on both CPU paths of TensorFlow.

With oneDNN on (the default on x86 CPUs with AVX-512), a strided convolution of an empty
batch returns the input's spatial shape instead of the strided one, and a convolution with
zero channels fails. The superkernel splits its batch by kernel size, so a part is empty
whenever no example drew some size (every single-arch call). These checks run in this
process (whatever path this CPU takes) and in subprocesses with oneDNN forced off and on.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import small_spec

from netadapt_tf.judge.sliced_forward import SlicedForward
from netadapt_tf.space.arch import full_arch
from netadapt_tf.supernet.layers import MaskedBatchNormalization, SuperkernelDepthwiseConv2D
from netadapt_tf.supernet.network import build_supernet


def _plain_depthwise(x, kernel, k, strides):
    start = (kernel.shape[0] - k) // 2
    plain = keras.layers.DepthwiseConv2D(k, strides, padding="same", use_bias=False)
    plain.build(x.shape)
    plain.set_weights([kernel[start : start + k, start : start + k]])
    return np.asarray(plain(x))


def check_superkernel_with_empty_parts():
    """Strided superkernel on batches missing some kernel sizes: eager, traced (the batch
    size unknown to the graph) and the gradient, against plain depthwise convolutions."""
    rng = np.random.default_rng(7)
    layer = SuperkernelDepthwiseConv2D(7, (3, 5, 7), strides=2)
    layer.build((None, 16, 16, 8))
    kernel = layer.kernel.numpy()
    traced = tf.function(
        lambda x, k: layer(x, k),
        input_signature=[
            tf.TensorSpec([None, 16, 16, 8], tf.float32),
            tf.TensorSpec([None], tf.int32),
        ],
    )
    for choice in ([3, 3, 7], [5], [7, 7], [3, 7, 3, 7]):
        x = rng.normal(size=(len(choice), 16, 16, 8)).astype("float32")
        want = np.concatenate(
            [_plain_depthwise(x[b : b + 1], kernel, k, 2) for b, k in enumerate(choice)]
        )
        for y in (layer(x, tf.constant(choice)), traced(x, tf.constant(choice))):
            assert tuple(y.shape) == (len(choice), 8, 8, 8), choice
            np.testing.assert_allclose(np.asarray(y), want, atol=1e-5)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(layer(x, tf.constant(choice))))
        grad = tape.gradient(loss, layer.kernel).numpy()
        used = {3: slice(2, 5), 5: slice(1, 6), 7: slice(0, 7)}[max(choice)]
        outside = np.ones(7, bool)
        outside[used] = False
        assert np.all(np.isfinite(grad)) and np.abs(grad[used, used]).sum() > 0
        # Taps outside every chosen window get no gradient.
        assert np.all(grad[outside] == 0) and np.all(grad[:, outside] == 0)


def check_masked_batch_norm_with_empty_masks():
    """A channel no example keeps, and an empty batch, leave the moving statistics alone."""
    layer = MaskedBatchNormalization(momentum=0.5)
    layer.build((None, 4, 4, 6))
    x = np.random.default_rng(3).normal(2.0, 3.0, size=(2, 4, 4, 6)).astype("float32")
    y = layer(x, tf.constant([2, 3]), training=True)
    mean = layer.moving_mean.numpy()
    assert np.all(np.isfinite(np.asarray(y)))
    assert np.all(mean[:3] != 0) and np.all(mean[3:] == 0)
    np.testing.assert_array_equal(layer.moving_variance.numpy()[3:], 1.0)
    empty = layer(np.zeros((0, 4, 4, 6), "float32"), tf.constant([], tf.int32), training=True)
    assert tuple(empty.shape) == (0, 4, 4, 6)
    np.testing.assert_array_equal(layer.moving_mean.numpy(), mean)


def test_superkernel_with_empty_parts_on_this_cpu():
    check_superkernel_with_empty_parts()


def test_masked_batch_norm_with_empty_masks_on_this_cpu():
    check_masked_batch_norm_with_empty_masks()


def test_sliced_forward_refuses_an_empty_batch():
    spec = small_spec("netadaptv2_mobilenet_v3")
    sliced = SlicedForward(build_supernet(spec))
    sizes = sliced.sizes(full_arch(spec))
    empty = tf.zeros([0, spec.input_size, spec.input_size, spec.input_channels])
    with pytest.raises(tf.errors.InvalidArgumentError, match="the batch of images is empty"):
        sliced.logits(empty, sizes)
    one = tf.zeros([1, spec.input_size, spec.input_size, spec.input_channels])
    assert tuple(sliced.logits(one, sizes).shape) == (1, spec.num_classes)


@pytest.mark.parametrize("onednn", ["0", "1"])
def test_empty_slices_with_onednn_forced(onednn):
    here = os.path.dirname(os.path.abspath(__file__))
    code = (
        f"import sys; sys.path.insert(0, {here!r}); import test_empty_slices as t; "
        "t.check_superkernel_with_empty_parts(); t.check_masked_batch_norm_with_empty_masks()"
    )
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
