"""The operations of a Keras 3 functional model, flattened into one list in graph order.

`walk(model)` reads the model through its operations (layers and keras.ops calls on
symbolic tensors alike): a nested functional model is flattened (its layers get the path
`outer/inner`), a Sequential is read through its functional graph. Every operation becomes
an `Op` naming its inputs and outputs by tensor ids; scalar arguments of keras.ops calls
(`x + 3.0`, `x * (1 / 6)`) are kept. Classes the importer cannot map are refused here,
before any work, with the operation's path, its class, why and what is supported.
"""

import dataclasses

import keras
from keras.src.ops import numpy as knp

# The classes the mapper reads, by type (keras.layers.Add and keras.ops' Add share a name).
L = keras.layers
SUPPORTED_LAYERS = (
    L.InputLayer,
    L.Rescaling,
    L.Normalization,
    L.Conv2D,
    L.DepthwiseConv2D,
    L.BatchNormalization,
    L.ReLU,
    L.Activation,
    L.ZeroPadding2D,
    L.Dropout,
    L.GlobalAveragePooling2D,
    L.Reshape,
    L.Flatten,
    L.Add,
    L.Multiply,
    L.Dense,
)
SCALAR_OPS = (knp.Add, knp.Multiply, knp.TrueDivide)
SUPPORTED_TEXT = (
    "Input, Rescaling/Normalization on the input, Conv2D (groups 1 or depthwise), "
    "DepthwiseConv2D (depth multiplier 1), BatchNormalization, ReLU/ReLU6 and the "
    "activations relu, relu6, hard_swish, swish, sigmoid, hard_sigmoid (also written as "
    "keras.ops scalars: ReLU(6.)(x + 3.) * (1/6)), ZeroPadding2D before a strided conv, "
    "Dropout, GlobalAveragePooling2D, Reshape, Flatten, Add, Multiply, Dense"
)


class UnsupportedModelError(ValueError):
    """A model the importer refuses (a ValueError; the message says what and why)."""


def refuse(path: str, obj, why: str) -> UnsupportedModelError:
    return UnsupportedModelError(
        f"{path} ({type(obj).__name__}): {why}; supported: {SUPPORTED_TEXT} (see docs/import.md)"
    )


@dataclasses.dataclass(frozen=True)
class Op:
    """One operation: `obj` (a layer or a keras.ops operation) at `path`, reading tensors
    `inputs` and writing `outputs` (ids), with the scalar arguments `scalars`."""

    path: str
    obj: object
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    scalars: tuple[float, ...]
    out_shapes: tuple[tuple, ...]
    in_shapes: tuple[tuple, ...]


@dataclasses.dataclass(frozen=True)
class Graph:
    input_id: int
    input_shape: tuple
    ops: tuple[Op, ...]
    output_id: int

    def consumers(self, tensor: int) -> tuple[Op, ...]:
        return tuple(op for op in self.ops if tensor in op.inputs)


def _functional(model, path: str):
    if isinstance(model, keras.Sequential):
        inner = getattr(model, "_functional", None)
        if inner is None:
            raise refuse(path, model, "a Sequential without an input shape has no graph")
        return inner
    if not isinstance(model, keras.Model):
        raise refuse(path, model, "not a Keras model")
    if not hasattr(model, "_nodes_by_depth"):
        raise refuse(
            path, model, "a subclassed model has no graph to read; rebuild it as a functional model"
        )
    return model


def walk(model) -> Graph:
    """The flattened graph of `model` (one image input, one output)."""
    root = _functional(model, model.name)
    if len(root.inputs) != 1 or len(root.outputs) != 1:
        raise refuse(
            model.name,
            model,
            f"{len(root.inputs)} inputs and {len(root.outputs)} outputs; one image in, one out",
        )
    ids: dict[int, int] = {}
    ops: list[Op] = []

    def tid(tensor) -> int:
        return ids.setdefault(id(tensor), len(ids))

    def visit(fn, prefix: str, outer_inputs) -> list[int]:
        for inner, outer in zip(fn.inputs, outer_inputs, strict=True):
            ids[id(inner)] = outer
        nodes = [
            node
            for depth in sorted(fn._nodes_by_depth, reverse=True)
            for node in fn._nodes_by_depth[depth]
            if node.operation is not None and not node.is_input
        ]
        calls: dict[int, int] = {}
        for node in nodes:
            calls[id(node.operation)] = calls.get(id(node.operation), 0) + 1
        for node in nodes:
            op = node.operation
            path = f"{prefix}{op.name}"
            if isinstance(op, L.InputLayer):
                continue
            if calls[id(op)] != 1:
                raise refuse(path, op, f"called {calls[id(op)]} times (a shared layer)")
            inputs = [tid(t) for t in node.input_tensors]
            if isinstance(op, keras.Model):
                inner = _functional(op, path)
                results = visit(inner, f"{path}/", inputs)
                for t, r in zip(node.output_tensors, results, strict=True):
                    ids[id(t)] = r
                continue
            _check_class(path, op)
            scalars = tuple(
                float(a)
                for a in node.arguments.args
                if isinstance(a, int | float) and not isinstance(a, bool)
            )
            ops.append(
                Op(
                    path=path,
                    obj=op,
                    inputs=tuple(inputs),
                    outputs=tuple(tid(t) for t in node.output_tensors),
                    scalars=scalars,
                    out_shapes=tuple(tuple(t.shape) for t in node.output_tensors),
                    in_shapes=tuple(tuple(t.shape) for t in node.input_tensors),
                )
            )
        return [tid(t) for t in fn.outputs]

    first = tid(root.inputs[0])
    (out,) = visit(root, "", [first])
    return Graph(first, tuple(root.inputs[0].shape), tuple(ops), out)


def _check_class(path: str, op) -> None:
    if isinstance(op, L.Lambda):
        raise refuse(path, op, "a Lambda layer's function cannot be read")
    if type(op) in SCALAR_OPS or isinstance(op, SUPPORTED_LAYERS):
        return
    if isinstance(op, keras.layers.Layer):
        raise refuse(path, op, "this layer class has no place in a network spec")
    raise refuse(path, op, "this keras.ops operation has no place in a network spec")
