"""Do a model's outputs on the phone agree with LiteRT on this host for the same inputs?

`make_inputs` draws inputs for a .tflite model (float inputs standard normal, integer inputs
uniform over their range, from a seed), `inputs_file` lays them out as the harness reads them
(every input tensor's bytes back to back, little-endian as on every Android ABI), and
`compare_outputs` runs the model on the host with `ai_edge_litert` and reports the largest
absolute difference from the phone's outputs, per output and overall. Integer outputs
(quantized models) are compared in their own units: a difference of 1 is one quantization
step. Only LiteRT and numpy are imported, not TensorFlow.
"""

import dataclasses

import numpy as np
from ai_edge_litert.interpreter import Interpreter

__all__ = ["ParityReport", "compare_outputs", "host_outputs", "inputs_file", "make_inputs"]


@dataclasses.dataclass(frozen=True)
class ParityReport:
    """Largest |phone - host| per output and overall; `unit` says what a difference counts."""

    max_abs_diff: float
    per_output: tuple[float, ...]
    unit: str

    def to_json(self) -> dict:
        return {
            "max_abs_diff": self.max_abs_diff,
            "per_output": list(self.per_output),
            "unit": self.unit,
        }


def _interpreter(model_bytes: bytes) -> Interpreter:
    interpreter = Interpreter(model_content=bytes(model_bytes), num_threads=1)
    interpreter.allocate_tensors()
    return interpreter


def make_inputs(model_bytes: bytes, seed: int = 0) -> list[np.ndarray]:
    """One array per model input, of its shape and dtype, drawn from `seed`."""
    rng = np.random.default_rng(seed)
    arrays = []
    for detail in _interpreter(model_bytes).get_input_details():
        shape, dtype = tuple(detail["shape"]), np.dtype(detail["dtype"])
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            arrays.append(rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype))
        elif np.issubdtype(dtype, np.floating):
            arrays.append(rng.standard_normal(shape).astype(dtype))
        else:
            raise ValueError(
                f"model input {detail['name']!r} has dtype {dtype}; parity needs numbers"
            )
    return arrays


def inputs_file(arrays: list[np.ndarray]) -> bytes:
    """The inputs as the harness reads them: each array's little-endian bytes, in order."""
    return b"".join(
        np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes() for a in arrays
    )


def host_outputs(model_bytes: bytes, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """The model's outputs on this host (LiteRT, one thread) for exactly these inputs."""
    interpreter = _interpreter(model_bytes)
    details = interpreter.get_input_details()
    if len(details) != len(inputs):
        raise ValueError(f"the model has {len(details)} inputs, got {len(inputs)} arrays")
    for detail, array in zip(details, inputs, strict=True):
        interpreter.set_tensor(detail["index"], array)
    interpreter.invoke()
    return [interpreter.get_tensor(d["index"]).copy() for d in interpreter.get_output_details()]


def compare_outputs(
    model_bytes: bytes, inputs: list[np.ndarray], phone: list[np.ndarray], where: str
) -> ParityReport:
    """Runs the model on the host and compares with `phone`'s outputs; ValueError (naming
    `where`) when their number, shapes or dtypes differ, or the phone's hold NaN."""
    host = host_outputs(model_bytes, inputs)
    if len(host) != len(phone):
        raise ValueError(f"{where}: the phone returned {len(phone)} outputs, the host {len(host)}")
    diffs = []
    for index, (ours, theirs) in enumerate(zip(host, phone, strict=True)):
        if ours.shape != theirs.shape or ours.dtype != theirs.dtype:
            raise ValueError(
                f"{where}: output {index} is {theirs.dtype}{list(theirs.shape)} on the phone but "
                f"{ours.dtype}{list(ours.shape)} on the host"
            )
        if not np.all(np.isfinite(theirs.astype(np.float64))):
            raise ValueError(f"{where}: output {index} on the phone holds NaN or infinity")
        diffs.append(float(np.max(np.abs(ours.astype(np.float64) - theirs.astype(np.float64)))))
    integer = [np.issubdtype(array.dtype, np.integer) for array in host]
    if all(integer):
        unit = "quantization steps"
    elif any(integer):
        unit = "output units (quantization steps for integer outputs)"
    else:
        unit = "output units"
    return ParityReport(max(diffs, default=0.0), tuple(diffs), unit)
