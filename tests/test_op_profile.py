"""common/op_profile on a real profiler trace of a small function."""

import numpy as np
import pytest
import tensorflow as tf

from netadapt_tf.common import op_profile


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    """Traces of 3 calls of a function with one matmul, and of one with four.

    The matmuls are 256 x 256 x 256 (about a millisecond each here), so that three more
    of them stand well above `compare`'s 0.01 ms rounding: at 32 x 64 x 64 a matmul
    took a few microseconds and the difference rounded to zero on one CI run."""
    root = tmp_path_factory.mktemp("traces")
    w = tf.constant(np.full((256, 256), 1.0 / 256, np.float32))
    x = tf.constant(np.ones((256, 256), np.float32))

    @tf.function
    def one(x):
        with tf.name_scope("net/block1__expansion/conv"):
            return tf.nn.relu(tf.matmul(x, w))

    @tf.function
    def four(x):
        with tf.name_scope("net/block1__expansion/conv"):
            for _ in range(4):
                x = tf.matmul(x, w)
            return tf.nn.relu(x)

    out = {}
    for name, fn in (("one", one), ("four", four)):
        fn(x)
        tf.profiler.experimental.start(str(root / name))
        for _ in range(3):
            y = fn(x)
        float(y[0, 0])
        tf.profiler.experimental.stop()
        out[name] = root / name
    return out


def test_op_types_and_parts_are_summed_per_step(traces):
    times = op_profile.op_seconds(traces["one"])
    assert times.ops >= 6  # a MatMul and a Relu in each of 3 calls
    assert times.by_type["MatMul"] > 0 and times.by_type["Relu"] > 0
    assert times.total == pytest.approx(sum(times.by_type.values()))
    assert times.total == pytest.approx(sum(times.by_part.values()))
    assert times.by_part["conv"] >= times.by_type["MatMul"]  # the matmul is in the conv scope
    assert times.backward == 0.0
    step = times.per_step(3)
    assert step.total == pytest.approx(times.total / 3)
    assert step.by_type["MatMul"] == pytest.approx(times.by_type["MatMul"] / 3)


def test_compare_names_what_the_other_trace_adds(traces):
    one = op_profile.op_seconds(traces["one"]).per_step(3)
    four = op_profile.op_seconds(traces["four"]).per_step(3)
    diff = op_profile.compare(one, four, top=1)
    assert diff["by_type"][0][0] == "MatMul"
    assert diff["by_type"][0][1] > 0
    assert diff["extra_ms"] == pytest.approx((four.total - one.total) * 1e3, abs=0.01)


@pytest.mark.parametrize(
    ("name", "part"),
    [
        ("replica_1/supernet_1/block2__depthwise_1/bn_1/Sub", "bn"),
        ("supernet_1/block2__depthwise_1/depthwise_1/cond_1/then/_10/depthwise", "depthwise"),
        ("gradient_tape/supernet_1/pre_logits_1/conv_1/convolution/Conv2DBackpropInput", "conv"),
        ("gradient_tape/replica_1/net/block3__expansion_1/bypass_1/mul", "bypass"),
        ("supernet_1/block1__se_1/se_1/squeeze_1/MatMul", "se"),
        ("model_1/pre_logits__conv_1/convolution/Conv2DBackpropInput", "conv"),
        ("model_1/block1__depthwise__conv_1/depthwise/DepthwiseConv2dNative", "conv"),
        ("model_1/block1__se__excite_1/BiasAdd", "excite"),
        ("rm_sprop/update_1_218/Cast/ReadVariableOp", "other"),
    ],
)
def test_layer_part(name, part):
    assert op_profile.layer_part(name) == part


def test_a_directory_without_one_trace_is_refused(tmp_path, traces):
    with pytest.raises(ValueError, match="0 \\*.xplane.pb files"):
        op_profile.op_seconds(tmp_path)
    with pytest.raises(ValueError, match="steps: 0 must be >= 1"):
        op_profile.op_seconds(traces["one"]).per_step(0)
