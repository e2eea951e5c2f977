"""Each super-network layer: behaviour, eager and tf.function agree, get_config round trip."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from netadapt_tf.supernet.layers import (
    ChannelBypass,
    ChannelSlice,
    MaskedBatchNormalization,
    MatmulConv2D,
    OrderedDropout,
    SqueezeExcite,
    SuperkernelDepthwiseConv2D,
)


def _roundtrip(layer):
    config = layer.get_config()
    clone = layer.__class__.from_config(config)
    assert clone.get_config() == config
    return clone


def _eager_and_traced(layer, *args):
    eager = layer(*args)
    traced = tf.function(lambda *a: layer(*a))(*args)
    np.testing.assert_allclose(np.asarray(eager), np.asarray(traced), atol=1e-6)
    return np.asarray(eager)


def test_ordered_dropout_zeros_the_last_channels_of_each_example(rng):
    x = rng.normal(size=(3, 4, 4, 6)).astype("float32")
    layer = OrderedDropout()
    y = _eager_and_traced(layer, x, tf.constant([6, 2, 0]))
    np.testing.assert_array_equal(y[0], x[0])
    np.testing.assert_array_equal(y[1, ..., :2], x[1, ..., :2])
    assert np.all(y[1, ..., 2:] == 0) and np.all(y[2] == 0)
    _roundtrip(layer)


def test_ordered_dropout_on_vectors(rng):
    x = rng.normal(size=(2, 5)).astype("float32")
    y = OrderedDropout()(x, tf.constant([1, 5]))
    np.testing.assert_array_equal(np.asarray(y), [[x[0, 0], 0, 0, 0, 0], x[1]])


def test_channel_bypass_merges_filters_and_input_channels(rng):
    # C = 4 input channels, conv path of 6 filters, T = 3.
    x = rng.normal(size=(3, 2, 2, 4)).astype("float32")
    conv = rng.normal(size=(3, 2, 2, 6)).astype("float32")
    layer = ChannelBypass(bypass_limit=3)
    width = tf.constant([6, 1, 0])
    in_width = tf.constant([4, 4, 2])
    y = _eager_and_traced(layer, conv, x, width, in_width)
    np.testing.assert_array_equal(y[0], conv[0])  # all filters kept
    np.testing.assert_array_equal(y[1, ..., :1], conv[1, ..., :1])
    np.testing.assert_array_equal(y[1, ..., 1:3], x[1, ..., 1:3])  # bypass up to T
    assert np.all(y[1, ..., 3:] == 0)
    np.testing.assert_array_equal(y[2, ..., :2], x[2, ..., :2])  # only 2 inputs exist
    assert np.all(y[2, ..., 2:] == 0)
    clone = _roundtrip(layer)
    np.testing.assert_array_equal(np.asarray(clone(conv, x, width, in_width)), y)


def test_channel_bypass_with_stride_pools_the_bypass(rng):
    x = rng.normal(size=(1, 4, 4, 2)).astype("float32")
    conv = np.zeros((1, 2, 2, 2), "float32")
    layer = ChannelBypass(bypass_limit=float("inf"), strides=2)
    y = np.asarray(layer(conv, x, tf.constant([0]), tf.constant([2])))
    expected = x.reshape(1, 2, 2, 2, 2, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(y, expected, atol=1e-6)
    assert _roundtrip(layer).get_config()["bypass_limit"] == "inf"


@pytest.mark.parametrize("strides, size", [(1, 9), (2, 8), (2, 9)])
def test_superkernel_equals_plain_depthwise_with_the_centre_kernel(rng, strides, size):
    x = rng.normal(size=(3, size, size, 4)).astype("float32")
    layer = SuperkernelDepthwiseConv2D(7, (3, 5, 7), strides=strides)
    layer.build(x.shape)
    kernel = layer.kernel.numpy()
    choice = tf.constant([3, 7, 5])
    y = _eager_and_traced(layer, x, choice)
    for b, k in enumerate([3, 7, 5]):
        plain = keras.layers.DepthwiseConv2D(k, strides, padding="same", use_bias=False)
        plain.build(x.shape)
        start = (7 - k) // 2
        plain.set_weights([kernel[start : start + k, start : start + k]])
        np.testing.assert_allclose(y[b], np.asarray(plain(x[b : b + 1]))[0], atol=1e-5)
    clone = _roundtrip(layer)
    assert clone.kernel_sizes == (3, 5, 7)


def test_superkernel_rejects_even_kernel_sizes():
    with pytest.raises(ValueError, match="kernel_size: 4 cannot be cut"):
        SuperkernelDepthwiseConv2D(7, (4, 7))


def test_squeeze_excite_width_zero_is_the_identity(rng):
    x = rng.normal(size=(3, 4, 4, 8)).astype("float32")
    layer = SqueezeExcite(filters=4, channels=8)
    y = _eager_and_traced(layer, x, tf.constant([4, 0, 2]))
    np.testing.assert_array_equal(y[1], x[1])
    assert not np.allclose(y[0], x[0])
    # Width 2 equals an SE whose squeeze keeps the first two filters only.
    w_sq, b_sq = layer.squeeze.kernel.numpy(), layer.squeeze.bias.numpy()
    w_ex, b_ex = layer.excite.kernel.numpy(), layer.excite.bias.numpy()
    pooled = x[2].mean(axis=(0, 1))
    s = np.maximum(pooled @ w_sq[0, 0, :, :2] + b_sq[:2], 0)
    gate = np.clip((s @ w_ex[0, 0, :2] + b_ex + 3) / 6, 0, 1)
    np.testing.assert_allclose(y[2], x[2] * gate, atol=1e-5)
    _roundtrip(layer)


def test_channel_slice(rng):
    x = rng.normal(size=(2, 3, 3, 6)).astype("float32")
    layer = ChannelSlice(2, 5)
    y = _eager_and_traced(layer, x)
    np.testing.assert_array_equal(y, x[..., 2:5])
    assert layer.compute_output_shape((None, 3, 3, 6)) == (None, 3, 3, 3)
    _roundtrip(layer)


def test_masked_batch_norm_takes_statistics_from_examples_that_keep_the_channel(rng):
    x = rng.normal(loc=2.0, size=(4, 3, 3, 3)).astype("float32")
    layer = MaskedBatchNormalization(momentum=0.0)
    width = tf.constant([3, 1, 1, 0])
    y = np.asarray(layer(x, width, training=True))
    mean = layer.moving_mean.numpy()
    np.testing.assert_allclose(mean[0], x[:3, ..., 0].mean(), atol=1e-5)  # 3 examples keep it
    np.testing.assert_allclose(mean[2], x[0, ..., 2].mean(), atol=1e-5)  # only example 0
    var = layer.moving_variance.numpy()
    np.testing.assert_allclose(var[1], x[0, ..., 1].var(), rtol=1e-4)
    np.testing.assert_allclose(
        y[0, ..., 2], (x[0, ..., 2] - mean[2]) / np.sqrt(var[2] + 1e-3), atol=1e-4
    )
    # A channel no example keeps leaves its moving statistics alone.
    layer(x, tf.constant([1, 1, 1, 1]), training=True)
    np.testing.assert_allclose(layer.moving_mean.numpy()[2], mean[2])
    # Inference is ordinary batch normalization with the moving statistics.
    eager = _eager_and_traced(layer, x)
    keras_bn = keras.layers.BatchNormalization(epsilon=1e-3)
    keras_bn.build(x.shape)
    keras_bn.set_weights(
        [w.numpy() for w in (layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance)]
    )
    np.testing.assert_allclose(eager, np.asarray(keras_bn(x)), atol=1e-5)
    clone = _roundtrip(layer)
    assert clone.momentum == 0.0


@pytest.mark.parametrize("size", [1, 4])
@pytest.mark.parametrize("activation", [None, "relu"])
def test_matmul_conv_trains_as_the_convolution_it_is(rng, size, activation):
    """A 1x1 MatmulConv2D's training pass (a matmul) equals keras.layers.Conv2D's, outputs
    and gradients, with the same weights; inference runs the convolution itself."""
    x = tf.constant(rng.normal(size=(5, size, size, 12)).astype(np.float32))
    fast = MatmulConv2D(7, 1, activation=activation)
    plain = keras.layers.Conv2D(7, 1, activation=activation)
    fast.build(x.shape)
    plain.build(x.shape)
    fast.set_weights([rng.normal(size=(1, 1, 12, 7)), rng.normal(size=(7,))])
    plain.set_weights(fast.get_weights())
    assert fast.as_matmul

    def grads(layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True) if layer is fast else layer(x)
            loss = tf.reduce_sum(tf.square(y) * tf.range(7, dtype=tf.float32))
        return [y, *tape.gradient(loss, [x, *layer.trainable_variables])]

    for got, want in zip(grads(fast), grads(plain), strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)
    traced = tf.function(lambda a: fast(a, training=True))(x)
    assert traced.shape == (5, size, size, 7)
    graph = tf.function(lambda a: fast(a, training=True)).get_concrete_function(x).graph
    ops = {op.type for op in graph.get_operations()}
    assert "MatMul" in ops and "Conv2D" not in ops
    graph = tf.function(lambda a: fast(a, training=False)).get_concrete_function(x).graph
    assert "Conv2D" in {op.type for op in graph.get_operations()}
    clone = _roundtrip(fast)
    assert isinstance(clone, MatmulConv2D)


@pytest.mark.parametrize("kwargs", [{"kernel_size": 3}, {"kernel_size": 1, "strides": 2}])
def test_matmul_conv_leaves_other_convolutions_alone(rng, kwargs):
    x = tf.constant(rng.normal(size=(2, 6, 6, 4)).astype(np.float32))
    layer = MatmulConv2D(3, padding="same", **kwargs)
    layer.build(x.shape)
    assert not layer.as_matmul
    graph = tf.function(lambda a: layer(a, training=True)).get_concrete_function(x).graph
    assert "Conv2D" in {op.type for op in graph.get_operations()}
