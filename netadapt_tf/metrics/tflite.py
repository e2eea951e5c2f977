"""Conversion of exported sub-networks to TensorFlow Lite, and running them on the host.

`convert(model, quantization)` turns a plain Keras model (what graphs/export.py writes) into
TFLite flatbuffer bytes: float32, float16 weights, or full int8 post-training quantization
calibrated on a representative dataset. The input batch is fixed to 1, as on a phone.

Two routes reach the same MLIR converter:

- "saved_model" (the default, the documented route): `model.export()` writes a SavedModel
  and `TFLiteConverter.from_saved_model` reads it back.
- "frozen_function": the model is traced into a batch-1 `tf.function` whose variables are
  folded into constants, and `from_concrete_functions` converts that. It skips writing and
  re-reading the SavedModel and is 2.5-4x faster (about 7 s against 18 s for a 300-layer
  sub-network on our 2-core machine, 0.25 s against 0.9 s for one layer), which matters to
  latency backends that convert thousands of models. tests/test_tflite.py checks that both
  routes give the same operators and the same outputs.

`run_tflite` runs a model with `ai_edge_litert.interpreter.Interpreter` (the maintained
runtime; `tf.lite.Interpreter` is deprecated), quantizing int8 inputs and dequantizing int8
outputs, so that `parity` compares any variant with the Keras model on float inputs.
"""

import collections
import contextlib
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from tensorflow.python.framework.convert_to_constants import (
    convert_variables_to_constants_v2,
)

from netadapt_tf.common import atomic_files

QUANTIZATIONS = ("float32", "float16", "int8")
ROUTES = ("saved_model", "frozen_function")

RepresentativeData = Iterable[np.ndarray] | Callable[[], Iterable[np.ndarray]]


def _input_specs(model: keras.Model) -> list[tf.TensorSpec]:
    specs = []
    for tensor in model.inputs:
        shape = tuple(tensor.shape[1:])
        if any(dim is None for dim in shape):
            raise ValueError(
                f"model {model.name!r}: input {tensor.name!r} has shape {tensor.shape}; TFLite "
                "conversion needs a fixed height, width and channels"
            )
        specs.append(tf.TensorSpec((1, *shape), tf.float32, name=tensor.name))
    return specs


def _batch_one_function(model: keras.Model, specs: list[tf.TensorSpec]):
    if len(specs) == 1:
        return tf.function(lambda x: model(x, training=False), input_signature=specs)
    return tf.function(lambda *xs: model(list(xs), training=False), input_signature=specs)


class _DropAbslNotice(logging.Filter):
    """Keeps the converter's warnings, drops its per-conversion chatter: INFO lines ("Using new
    converter") and the notice that the frozen route passes no trackable object (its graph
    has no variables left)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING and "trackable_obj" not in record.getMessage()


@contextlib.contextmanager
def _quiet_converter():
    logger = logging.getLogger("absl")
    notice = _DropAbslNotice()
    logger.addFilter(notice)
    try:
        with warnings.catch_warnings():
            # int8: the converter asks for input statistics that full-integer
            # quantization computes itself from the representative data.
            warnings.filterwarnings("ignore", "Statistics for quantized inputs")
            yield
    finally:
        logger.removeFilter(notice)


def representative_examples(data: RepresentativeData, num_inputs: int) -> Callable[[], Iterator]:
    """The converter's `representative_dataset`: one batch-1 example per step.

    `data` yields arrays of one example [H, W, C] or a batch [N, H, W, C] (for several model
    inputs: a tuple with one such array per input), or is a function returning such an
    iterable.
    """

    def examples():
        source = data() if callable(data) else data
        count = 0
        for item in source:
            arrays = list(item) if num_inputs > 1 else [item]
            if len(arrays) != num_inputs:
                raise ValueError(
                    f"representative data: an item has {len(arrays)} arrays, the model has "
                    f"{num_inputs} inputs"
                )
            arrays = [np.asarray(a, np.float32) for a in arrays]
            arrays = [a if a.ndim == 4 else a[None] for a in arrays]
            for i in range(arrays[0].shape[0]):
                count += 1
                yield [a[i : i + 1] for a in arrays]
        if count == 0:
            raise ValueError("representative data: it yielded no example")

    return examples


def random_representative_data(
    model: keras.Model, num_examples: int = 8, seed: int = 0
) -> list[np.ndarray]:
    """Standard-normal examples for int8 calibration when only latency matters (the scales
    they give are meaningless for accuracy; use training images for a model to deploy)."""
    rng = np.random.default_rng(seed)
    shapes = [tuple(spec.shape[1:]) for spec in _input_specs(model)]
    items = []
    for _ in range(num_examples):
        arrays = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
        items.append(arrays[0] if len(arrays) == 1 else tuple(arrays))
    return items


def _converter(model: keras.Model, route: str, directory: str) -> tf.lite.TFLiteConverter:
    specs = _input_specs(model)
    if route == "saved_model":
        model.export(directory, format="tf_saved_model", verbose=False, input_signature=specs)
        return tf.lite.TFLiteConverter.from_saved_model(directory)
    concrete = _batch_one_function(model, specs).get_concrete_function()
    frozen = convert_variables_to_constants_v2(concrete)
    return tf.lite.TFLiteConverter.from_concrete_functions([frozen])


def convert(
    model: keras.Model,
    quantization: str = "float32",
    representative_data: RepresentativeData | None = None,
    route: str = "saved_model",
) -> bytes:
    """The TFLite flatbuffer of `model` (batch 1).

    quantization: "float32"; "float16" (weights stored as float16, computed in float32 on
    CPUs); "int8" (weights and activations int8, int8 input and output; needs
    `representative_data`, see `representative_examples`).
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization: {quantization!r} is not one of {QUANTIZATIONS}")
    if route not in ROUTES:
        raise ValueError(f"route: {route!r} is not one of {ROUTES}")
    if quantization == "int8" and representative_data is None:
        raise ValueError(
            "quantization 'int8' needs representative_data (training images, or "
            "random_representative_data(model) when only latency matters)"
        )
    if quantization != "int8" and representative_data is not None:
        raise ValueError(f"representative_data is only used by 'int8', not {quantization!r}")
    with tempfile.TemporaryDirectory(prefix="netadapt_tflite_") as directory, _quiet_converter():
        converter = _converter(model, route, os.path.join(directory, "saved_model"))
        if quantization == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif quantization == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative_examples(
                representative_data, len(model.inputs)
            )
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        return converter.convert()


def write_tflite(model_bytes: bytes, path: str | os.PathLike) -> None:
    """Writes `model_bytes` to `path` atomically (atomic_files), so a reader never sees half a
    model, even if this process is killed."""
    atomic_files.write_bytes(path, model_bytes)


_SMALLEST_NORMAL = float(np.finfo(np.float32).tiny)


def unusable_scales(tensor_details: list[dict]) -> list[tuple[str, float]]:
    """(tensor name, scale) of every quantized tensor whose scale XNNPACK refuses: one that is
    not finite, not positive or below float32's smallest normal number (it requires finite,
    normal, positive scales). A tensor that is zero on every calibration example gets a tiny
    scale from the converter; one that small appears where activations vanish, e.g. in a
    barely trained network."""
    found = []
    for detail in tensor_details:
        for scale in np.asarray(detail["quantization_parameters"]["scales"], np.float64):
            if not np.isfinite(scale) or scale < _SMALLEST_NORMAL:
                found.append((detail["name"], float(scale)))
                break
    return found


def make_interpreter(model_bytes: bytes, num_threads: int = 1) -> Interpreter:
    """An allocated LiteRT interpreter (with its default XNNPACK delegate) for the model.

    When that fails, a ValueError says why where it can: quantization scales that XNNPACK
    refuses (unusable_scales), named, with what to do; otherwise it carries LiteRT's error.
    """
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"num_threads: {num_threads!r} must be an integer >= 1")
    try:
        interpreter = Interpreter(model_content=bytes(model_bytes), num_threads=num_threads)
        interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as error:
        raise ValueError(_refusal(model_bytes, error)) from error
    return interpreter


def _refusal(model_bytes: bytes, error: Exception) -> str:
    """The message for a model that LiteRT with XNNPACK could not prepare."""
    reason = " ".join(str(error).split())[:600]
    try:
        plain = Interpreter(
            model_content=bytes(model_bytes),
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        bad = unusable_scales(plain.get_tensor_details())
    except (RuntimeError, ValueError):
        bad = []
    if not bad:
        return f"TFLite model: LiteRT (XNNPACK delegate) could not prepare it: {reason}"
    names = ", ".join(f"{name!r} (scale {scale:.3g})" for name, scale in bad[:3])
    more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
    return (
        f"TFLite model: XNNPACK refused it ({reason}); quantized tensors with scales it "
        f"cannot use (it needs finite, normal, positive ones): {names}{more}. Their values "
        "are (near) zero on every calibration example, as in a barely trained network; "
        "train the network longer, calibrate on other images, or export without int8 "
        "(e.g. --quantizations=float32,float16)"
    )


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = detail["dtype"]
    if dtype == np.float32:
        return x.astype(np.float32)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(dtype)


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] == np.float32:
        return y.astype(np.float32)
    scale, zero_point = detail["quantization"]
    return (y.astype(np.float32) - zero_point) * scale


def run_tflite(model_bytes: bytes, inputs: np.ndarray, num_threads: int = 1) -> np.ndarray:
    """Runs a single-input, single-output model on a batch [N, ...] of float inputs, one
    example at a time, and returns the float outputs [N, ...] (int8 models are quantized
    and dequantized with their own scales)."""
    interpreter = make_interpreter(model_bytes, num_threads)
    input_details = interpreter.get_input_details()
    output_details = interpreter.get_output_details()
    if len(input_details) != 1 or len(output_details) != 1:
        raise ValueError(
            f"run_tflite: the model has {len(input_details)} inputs and {len(output_details)} "
            "outputs; only single-input, single-output models are supported"
        )
    (source,), (sink,) = input_details, output_details
    inputs = np.asarray(inputs, np.float32)
    expected = tuple(source["shape"][1:])
    if inputs.ndim != len(expected) + 1 or tuple(inputs.shape[1:]) != expected:
        raise ValueError(
            f"run_tflite: inputs have shape {inputs.shape}; the model takes [N, "
            f"{', '.join(map(str, expected))}]"
        )
    outputs = []
    for example in inputs:
        interpreter.set_tensor(source["index"], _quantize(example[None], source))
        interpreter.invoke()
        outputs.append(_dequantize(interpreter.get_tensor(sink["index"]), sink)[0])
    return np.stack(outputs)


def parity(keras_model: keras.Model, model_bytes: bytes, inputs: np.ndarray) -> float:
    """Largest absolute difference between the Keras model and its TFLite conversion."""
    inputs = np.asarray(inputs, np.float32)
    expected = np.asarray(keras_model(inputs, training=False))
    got = run_tflite(model_bytes, inputs)
    return float(np.max(np.abs(expected.reshape(got.shape) - got)))


def operators(model_bytes: bytes) -> list[str]:
    """The model's operators in execution order (e.g. ['CONV_2D', 'HARD_SWISH', ...])."""
    interpreter = Interpreter(
        model_content=bytes(model_bytes),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    return [op["op_name"] for op in interpreter._get_ops_details()]


def delegation(model_bytes: bytes) -> tuple[int, dict[str, int]]:
    """(partitions, left out): how many pieces LiteRT's default XNNPACK delegate cuts the
    model into, and per operator type how many ops it left to LiteRT's builtin kernels.

    A model XNNPACK takes whole is (1, {}). Each op XNNPACK refuses runs on a builtin
    kernel and splits the graph. In LiteRT 2.3.0 that is int8 HARD_SWISH, whose builtin
    kernel, with int8 convolutions no faster than float ones at small sizes, makes the int8
    exports slower than float32 on a PC (docs/shipping.md). An op is left out when none of
    its outputs comes out of a partition and one of them goes into a partition, out of the
    model, or into an op left out (ops are read from the last, so chains of left-out ops
    are found); an op inside a partition feeds only its own partition.
    """
    interpreter = make_interpreter(model_bytes)
    ops = interpreter._get_ops_details()
    partitions = [op for op in ops if op["op_name"] == "DELEGATE"]
    originals = [op for op in ops if op["op_name"] != "DELEGATE"]
    if not partitions:
        return 0, dict(collections.Counter(op["op_name"] for op in originals))
    fed = {t for op in partitions for t in op["inputs"]}
    fed |= {detail["index"] for detail in interpreter.get_output_details()}
    made = {t for op in partitions for t in op["outputs"]}
    left = []
    for op in reversed(originals):
        outputs = set(op["outputs"])
        if not outputs & made and outputs & fed:
            left.append(op["op_name"])
            fed |= {t for t in op["inputs"] if t >= 0}
    return len(partitions), dict(collections.Counter(left))
