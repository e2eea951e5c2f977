"""TFLite conversion of exported sub-networks: parity, quantized variants, routes, files."""

import os

import keras
import numpy as np
import pytest
from conftest import per_builder, random_bn_offsets, randomize_non_kernel_weights, small_spec

from netadapt_tf import builders
from netadapt_tf.graphs.export import export_subnetwork
from netadapt_tf.metrics import tflite
from netadapt_tf.space.arch import random_arch
from netadapt_tf.supernet.layers import MatmulConv2D
from netadapt_tf.supernet.network import build_supernet

# int8 with per-tensor activation scales from random calibration data: on these tiny nets the
# outputs agree with float32 to a few percent of their range; 10% of the largest output
# catches a wrong scale or zero point (which is off by the whole range) with margin.
INT8_TOLERANCE = 0.10


def _exported(name: str, seed: int = 0, randomize=randomize_non_kernel_weights):
    # FastDepth's encoder halves its input five times: 32 px is its smallest.
    spec = small_spec(name, input_size=32 if name in builders.DENSE_BUILDERS else 16)
    # Seeded kernels: FastDepth ends in a one-channel ReLU, and with unseeded kernels some
    # draws leave every output of this random sub-network at zero (seen in CI), where parity
    # checks nothing. Seed 0 gives 9.5% positive outputs up to 0.99 on this machine.
    keras.utils.set_random_seed(seed)
    supernet = build_supernet(spec)
    randomize(supernet, seed)
    return export_subnetwork(supernet, random_arch(spec, np.random.default_rng(seed)))


def _images(model, count=3, seed=0):
    shape = tuple(model.inputs[0].shape[1:])
    return np.random.default_rng(seed).standard_normal((count, *shape)).astype(np.float32)


@pytest.fixture(scope="module")
def v1_model():
    return _exported("mobilenet_v1", seed=1)


@pytest.fixture(scope="module")
def v1_model_constant_scale():
    # Not the parity weights: with activations that depend on the image (outputs of order
    # one), per-tensor int8 with random calibration data differs from float32 by 6% to 25%
    # of the largest output on this tiny random network (6 kernel seeds measured), its
    # sensitivity to quantization rather than a conversion fault. The int8 check below is
    # about the int8 input/output and its scales, so it runs on activations of the network's
    # constant scale (as the QAT closeness check does); float32 and float16 parity run on
    # order-one weights.
    return _exported("mobilenet_v1", seed=1, randomize=random_bn_offsets)


def _tiny_model():
    inputs = keras.Input((8, 8, 3), batch_size=1)
    return keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs))


@pytest.mark.parametrize("name", per_builder())
def test_float32_parity_for_every_builder(name):
    model = _exported(name)
    images = _images(model)
    model_bytes = tflite.convert(model, route="frozen_function")
    scale = float(np.max(np.abs(model(images))))
    assert scale > 1e-3  # randomized BN keeps the outputs away from zero
    assert tflite.parity(model, model_bytes, images) <= 1e-4


@pytest.mark.slow
def test_saved_model_route_matches_the_frozen_route(v1_model):
    images = _images(v1_model)
    documented = tflite.convert(v1_model, route="saved_model")
    frozen = tflite.convert(v1_model, route="frozen_function")
    assert tflite.operators(documented) == tflite.operators(frozen)
    assert tflite.parity(v1_model, documented, images) <= 1e-4
    assert (
        np.max(np.abs(tflite.run_tflite(documented, images) - tflite.run_tflite(frozen, images)))
        < 1e-5
    )


def test_float16_runs_and_stays_close(v1_model):
    images = _images(v1_model)
    model_bytes = tflite.convert(v1_model, "float16", route="frozen_function")
    scale = float(np.max(np.abs(v1_model(images))))
    assert "DEQUANTIZE" in tflite.operators(model_bytes)
    assert tflite.parity(v1_model, model_bytes, images) <= 1e-2 * scale


def test_int8_runs_with_int8_io_and_is_close_to_float(v1_model_constant_scale):
    v1_model = v1_model_constant_scale
    images = _images(v1_model, count=4, seed=3)
    data = tflite.random_representative_data(v1_model, num_examples=16, seed=5)
    model_bytes = tflite.convert(v1_model, "int8", data, route="frozen_function")
    interpreter = tflite.make_interpreter(model_bytes)
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8
    expected = np.asarray(v1_model(images))
    got = tflite.run_tflite(model_bytes, images)
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert np.max(np.abs(got - expected)) <= INT8_TOLERANCE * np.max(np.abs(expected))


def test_representative_examples_split_batches_and_reject_empty_data():
    batch = np.zeros((3, 4, 4, 2), np.float32)
    examples = list(tflite.representative_examples([batch, batch[0]], num_inputs=1)())
    assert len(examples) == 4
    assert all(len(e) == 1 and e[0].shape == (1, 4, 4, 2) for e in examples)
    with pytest.raises(ValueError, match="yielded no example"):
        list(tflite.representative_examples([], num_inputs=1)())


def test_conversion_errors_name_the_problem(v1_model):
    with pytest.raises(ValueError, match="quantization: 'int4' is not one of"):
        tflite.convert(v1_model, "int4")
    with pytest.raises(ValueError, match="'int8' needs representative_data"):
        tflite.convert(v1_model, "int8")
    with pytest.raises(ValueError, match="only used by 'int8'"):
        tflite.convert(v1_model, "float32", [np.zeros((16, 16, 3))])
    with pytest.raises(ValueError, match="route: 'onnx'"):
        tflite.convert(v1_model, route="onnx")


def test_run_tflite_checks_the_input_shape():
    model_bytes = tflite.convert(_tiny_model(), route="frozen_function")
    with pytest.raises(ValueError, match=r"inputs have shape \(2, 16, 16, 3\)"):
        tflite.run_tflite(model_bytes, np.zeros((2, 16, 16, 3)))


def test_multi_input_models_convert():
    a, b = keras.Input((4, 4, 3), batch_size=1), keras.Input((4, 4, 3), batch_size=1)
    model = keras.Model([a, b], keras.layers.Add()([a, b]))
    assert tflite.operators(tflite.convert(model, route="frozen_function")) == ["ADD"]


def test_write_tflite_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "model.tflite"
    tflite.write_tflite(b"first", path)
    assert path.read_bytes() == b"first"

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        tflite.write_tflite(b"second", path)
    assert path.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tflite"]


def test_unusable_scales_are_the_ones_xnnpack_refuses():
    def tensor(name, *scales):
        return {"name": name, "quantization_parameters": {"scales": np.array(scales, np.float32)}}

    details = [
        tensor("float"),  # not quantized
        tensor("fine", 1e-8, 0.5),
        tensor("zero", 0.5, 0.0),
        tensor("subnormal", 1e-40),
        tensor("infinite", np.inf),
    ]
    found = tflite.unusable_scales(details)
    assert [name for name, _ in found] == ["zero", "subnormal", "infinite"]
    assert found[0][1] == 0.0 and 0 < found[1][1] < 1.2e-38


class _RefusingInterpreter:
    """LiteRT whose XNNPACK-delegated interpreter cannot be prepared; `scales` are what the
    delegate-free one reports."""

    scales = (0.0,)

    def __init__(self, model_content, num_threads=1, experimental_op_resolver_type=None):
        self.delegated = experimental_op_resolver_type is None

    def allocate_tensors(self):
        raise RuntimeError("failed to create XNNPACK runtime\nNode number 7 failed to prepare.")

    def get_tensor_details(self):
        scales = np.array(self.scales, np.float32)
        return [{"name": "decode5/act", "quantization_parameters": {"scales": scales}}]


def test_a_model_xnnpack_refuses_is_a_value_error_naming_the_cause(monkeypatch):
    monkeypatch.setattr(tflite, "Interpreter", _RefusingInterpreter)
    with pytest.raises(ValueError) as refused:
        tflite.make_interpreter(b"model")
    assert str(refused.value) == (
        "TFLite model: XNNPACK refused it (failed to create XNNPACK runtime Node number 7 "
        "failed to prepare.); quantized tensors with scales it cannot use (it needs finite, "
        "normal, positive ones): 'decode5/act' (scale 0). Their values are (near) zero on "
        "every calibration example, as in a barely trained network; train the network "
        "longer, calibrate on other images, or export without int8 (e.g. "
        "--quantizations=float32,float16)"
    )
    monkeypatch.setattr(_RefusingInterpreter, "scales", (0.5,))
    with pytest.raises(ValueError, match=r"^TFLite model: LiteRT \(XNNPACK delegate\) could not "):
        tflite.run_tflite(b"model", np.zeros((1, 4), np.float32))


def test_exported_convolutions_stay_convolutions_in_tflite():
    """Exported models train their 1x1 convolutions as matmuls (supernet.layers.MatmulConv2D);
    the shipped graph still holds one CONV_2D per convolution and one FULLY_CONNECTED per
    dense layer, as keras.layers.Conv2D gives."""
    model = _exported("mobilenet_v3_large")
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert any(isinstance(layer, MatmulConv2D) and layer.as_matmul for layer in convs)
    ops = tflite.operators(tflite.convert(model, route="frozen_function"))
    assert ops.count("CONV_2D") == len(convs)
    assert ops.count("FULLY_CONNECTED") == len(dense)


def _activations_model(activation: str) -> keras.Model:
    inputs = keras.Input((8, 8, 4), batch_size=1)
    x = keras.layers.Conv2D(8, 1, name="a")(inputs)
    x = keras.layers.Activation(activation)(x)
    x = keras.layers.Conv2D(8, 1, name="b")(x)
    x = keras.layers.Activation(activation)(x)
    return keras.Model(inputs, keras.layers.Conv2D(4, 1, name="c")(x))


def test_delegation_counts_xnnpack_partitions_and_the_ops_it_leaves_out():
    keras.utils.set_random_seed(0)
    relu = _activations_model("relu")
    swish = _activations_model("hard_swish")
    # float32: XNNPACK takes both whole.
    for model in (relu, swish):
        assert tflite.delegation(tflite.convert(model, route="frozen_function")) == (1, {})
    # int8: LiteRT 2.3.0's XNNPACK leaves int8 HARD_SWISH to the builtin kernels, each one
    # splitting the graph (docs/shipping.md); int8 relu is fused into the convolutions.
    data = tflite.random_representative_data(relu)
    assert tflite.delegation(tflite.convert(relu, "int8", data, route="frozen_function")) == (
        1,
        {},
    )
    int8 = tflite.convert(swish, "int8", data, route="frozen_function")
    assert tflite.operators(int8).count("HARD_SWISH") == 2
    assert tflite.delegation(int8) == (3, {"HARD_SWISH": 2})
