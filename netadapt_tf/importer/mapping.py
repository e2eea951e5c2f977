"""From a walked Keras graph to the layers of a network spec (before search settings).

`map_graph(graph)` follows each tensor's state through the operations: a convolution opens
a layer, batch normalization and an activation (a layer, an activation argument, or the
composite hard sigmoid ReLU(6.)(x + 3.) * (1/6) and hard swish x * hard_sigmoid(x)) close
it, ZeroPadding2D must be the 'same' padding of the strided convolution after it, a
global pool followed by two 1x1 convolutions whose gate multiplies the pooled tensor is a
squeeze-and-excitation gate, an Add of the main path and an earlier tensor of it is a
residual connection, and after the global pool come 1x1 convolutions or Dense layers, the
last one the classifier. What the spec cannot express is refused by name.
"""

import dataclasses

import keras
import numpy as np
from keras.src.ops import numpy as knp

from netadapt_tf.importer.graph import Graph, Op, refuse

L = keras.layers
ACTIVATION_NAMES = {
    "relu": "relu",
    "relu6": "relu6",
    "hard_silu": "hard_swish",
    "hard_swish": "hard_swish",
    "silu": "swish",
    "swish": "swish",
    "sigmoid": "sigmoid",
    "hard_sigmoid": "hard_sigmoid",
    "linear": "linear",
}


@dataclasses.dataclass
class Found:
    """One spec layer found in the graph: its Keras layers and attributes."""

    kind: str  # conv, depthwise, pointwise (1x1), se, fc
    path: str  # the Keras path of its (first) convolution
    filters: int
    in_channels: int
    kernel_size: int = 1
    strides: int = 1
    activation: str | None = None
    use_bias: bool = False
    conv: object = None  # Conv2D, DepthwiseConv2D or Dense (se: the squeeze conv)
    bn: object = None
    excite: object = None
    dropout: float = 0.0
    pooled: bool = False
    paths: list = dataclasses.field(default_factory=list)  # every op folded into it


@dataclasses.dataclass
class Mapped:
    """The graph as spec layers: `layers` in order, `residual` spans (first, last, add
    path), the pool's position, the preprocessing (x * scale + offset per channel) and
    what became of every op (path -> index into layers, or a note)."""

    input_size: int
    input_channels: int
    layers: list
    residual: list
    pool_at: int | None
    scale: np.ndarray
    offset: np.ndarray
    notes: dict
    classes: dict  # every op's path -> its class name, in graph order


class _Mapper:
    def __init__(self, graph: Graph):
        self.graph = graph
        shape = graph.input_shape
        if len(shape) != 4 or shape[1] is None or shape[1] != shape[2] or shape[3] is None:
            raise ValueError(
                f"input: shape {shape} is not allowed; allowed: a fixed square image "
                "(None, S, S, C); pass --input_size for a model built without one"
            )
        self.size, self.channels = int(shape[1]), int(shape[3])
        self.scale = np.ones(self.channels, np.float64)
        self.offset = np.zeros(self.channels, np.float64)
        self.layers: list[Found] = []
        self.residual = []
        self.pool_at = None
        self.notes: dict[str, object] = {}
        self.classes = {op.path: type(op.obj).__name__ for op in graph.ops}
        self.state = {graph.input_id: ("image",)}
        self.main = graph.input_id  # the main path's latest tensor
        self.main_layer = {graph.input_id: -1}  # main-path tensors -> last layer before them
        self.pending_dropout = 0.0

    # -- helpers ------------------------------------------------------------------------

    def fail(self, op: Op, why: str):
        return refuse(op.path, op.obj, why)

    def note(self, op: Op, what):
        self.notes[op.path] = what

    def close(self, tensor: int, op: Op) -> int:
        """The layer whose output `tensor` is, its activation settled (linear if none)."""
        st = self.state.get(tensor)
        if st is None or st[0] not in ("layer", "sum"):
            raise self.fail(op, f"its input is not the output of a layer ({st and st[0]})")
        if st[0] == "layer" and st[2] != "act":
            layer = self.layers[st[1]]
            if layer.activation is None:
                layer.activation = "linear"
            self.state[tensor] = ("layer", st[1], "act")
        return self.state[tensor][1]

    def on_main(self, tensor: int, op: Op) -> None:
        if tensor != self.main:
            raise self.fail(
                op,
                "it reads a tensor other than the main path's latest one; the spec is a "
                "chain of layers with residual adds, SE gates and skips only",
            )

    def activate(self, tensor: int, name: str, op: Op, out: int) -> None:
        st = self.state.get(tensor)
        if st is None:
            raise self.fail(op, "its input is not a layer's output")
        if st[0] == "hs+3":
            if name != "relu6":
                raise self.fail(op, f"{name} of x + 3 (a hard sigmoid needs relu6)")
            self.state[out] = ("hs+3r6", st[1], st[2] + [op.path])
            return
        if st[0] == "layer" and st[2] in ("conv", "bn"):
            layer = self.layers[st[1]]
            layer.activation = name
            layer.paths.append(op.path)
            self.note(op, st[1])
            self.state[out] = ("layer", st[1], "act")
            if tensor == self.main:
                self.main = out
                self.main_layer[out] = st[1]
            return
        if st[0] == "se" and st[2] == "squeeze":
            st[3]["squeeze_act"] = name
            st[3]["paths"].append(op.path)
            self.state[out] = ("se", st[1], "squeeze_act", st[3])
            return
        if st[0] == "se" and st[2] == "excite":
            if name != "hard_sigmoid":
                raise self.fail(
                    op,
                    f"an SE gate of {name}; the spec's SE gate is a hard sigmoid "
                    "(relu6(x + 3) / 6)",
                )
            st[3]["paths"].append(op.path)
            self.state[out] = ("se", st[1], "gate", st[3])
            return
        if st[0] in ("layer", "sum"):
            raise self.fail(
                op,
                "an activation after a layer's activation, or after a residual add; the "
                "spec has one activation per layer and none after an add",
            )
        raise self.fail(op, f"an activation on a {st[0]} tensor")

    # -- the walk -----------------------------------------------------------------------

    def run(self) -> Mapped:
        for op in self.graph.ops:
            self.step(op)
        out = self.graph.output_id
        st = self.state.get(out)
        if not self.layers or not self.layers[-1].pooled or st is None or st[0] != "flat":
            raise ValueError(
                "output: the model does not end with a classifier (a Dense or 1x1 Conv2D "
                "after the global average pool, then flattened); only classifiers import"
            )
        last = self.layers[-1]
        if last.activation not in (None, "linear"):
            raise ValueError(
                f"{last.path}: the classifier's activation is {last.activation}; the "
                "imported network outputs logits, so give the model a linear output"
            )
        last.activation = "linear"
        return Mapped(
            self.size,
            self.channels,
            self.layers,
            self.residual,
            self.pool_at,
            self.scale,
            self.offset,
            self.notes,
            self.classes,
        )

    def step(self, op: Op) -> None:
        obj = op.obj
        x = op.inputs[0] if op.inputs else None
        (out,) = op.outputs
        if isinstance(obj, L.Rescaling | L.Normalization):
            return self.preprocess(op, x, out)
        if isinstance(obj, L.Conv2D | L.DepthwiseConv2D):
            return self.convolution(op, x, out)
        if isinstance(obj, L.Dense):
            return self.dense(op, x, out)
        if isinstance(obj, L.BatchNormalization):
            return self.batch_norm(op, x, out)
        if isinstance(obj, L.ReLU):
            return self.activate(x, self.relu_name(op), op, out)
        if isinstance(obj, L.Activation):
            name = getattr(obj.activation, "__name__", str(obj.activation))
            if name == "softmax":
                raise self.fail(
                    op,
                    "the output is already a softmax; the imported network outputs logits, "
                    "so its output would mean something else. Build the model with "
                    "classifier_activation=None (keras.applications) or drop the softmax",
                )
            if name not in ACTIVATION_NAMES:
                raise self.fail(op, f"activation {name!r} is not supported")
            if ACTIVATION_NAMES[name] == "linear":
                self.state[out] = self.state[x]
                self.main = out if x == self.main else self.main
                self.main_layer[out] = self.main_layer.get(x)
                return None
            return self.activate(x, ACTIVATION_NAMES[name], op, out)
        if isinstance(obj, L.ZeroPadding2D):
            self.on_main(x, op)
            self.close(x, op) if self.state[x][0] != "image" else None
            self.state[out] = ("pad", x, tuple(map(tuple, obj.padding)), int(op.in_shapes[0][1]))
            self.note(op, "padding of the next convolution")
            return None
        if isinstance(obj, L.Dropout):
            self.state[out] = self.state[x]
            if x == self.main:
                self.main = out
                self.main_layer[out] = self.main_layer.get(x)
            self.pending_dropout = float(obj.rate)
            self.note(op, "dropout (identity in inference)")
            return None
        if isinstance(obj, L.GlobalAveragePooling2D):
            return self.pool(op, x, out)
        if isinstance(obj, L.Reshape | L.Flatten):
            return self.reshape(op, x, out)
        if isinstance(obj, L.Add):
            return self.add(op, out)
        if isinstance(obj, L.Multiply):
            return self.multiply(op, out)
        return self.scalar_op(op, x, out)

    def relu_name(self, op: Op) -> str:
        obj = op.obj
        if float(obj.negative_slope) != 0.0 or float(obj.threshold) != 0.0:
            raise self.fail(op, "a leaky or thresholded ReLU")
        if obj.max_value is None:
            return "relu"
        if float(obj.max_value) == 6.0:
            return "relu6"
        raise self.fail(op, f"ReLU with max_value {obj.max_value}; allowed: none or 6")

    def preprocess(self, op: Op, x: int, out: int) -> None:
        if self.state.get(x) != ("image",) or self.layers:
            raise self.fail(op, "preprocessing is supported only on the input, before any layer")
        obj = op.obj
        if isinstance(obj, L.Rescaling):
            scale = np.broadcast_to(np.asarray(obj.scale, np.float64), (self.channels,))
            offset = np.broadcast_to(np.asarray(obj.offset, np.float64), (self.channels,))
        else:
            if obj.invert or tuple(obj.axis) not in ((-1,), (3,)):
                raise self.fail(op, "a Normalization other than per channel, not inverted")
            mean = np.asarray(obj.mean, np.float64).reshape(-1)
            std = np.maximum(np.sqrt(np.asarray(obj.variance, np.float64).reshape(-1)), 1e-7)
            scale = np.broadcast_to(1.0 / std, (self.channels,))
            offset = np.broadcast_to(-mean / std, (self.channels,))
        self.scale, self.offset = self.scale * scale, self.offset * scale + offset
        self.state[out] = ("image",)
        self.main = out
        self.main_layer[out] = -1
        self.note(op, "preprocessing (kept outside the spec)")

    def convolution(self, op: Op, x: int, out: int) -> None:
        obj = op.obj
        st = self.state.get(x)
        if st is not None and st[0] == "se":
            return self.se_conv(op, st, out)
        padding, size = None, int(op.in_shapes[0][1])
        if st is not None and st[0] == "pad":
            padding, x, size = st[2], st[1], st[3]
            st = self.state[x]
        self.on_main(x, op)
        pooled = self.pool_at is not None
        if st[0] == "pooled":
            st = ("flat_map",)
        elif st[0] != "image":
            self.close(x, op)
        in_shape, out_shape = op.in_shapes[0], op.out_shapes[0]
        channels = int(in_shape[-1])
        depthwise = isinstance(obj, L.DepthwiseConv2D)
        if depthwise and int(obj.depth_multiplier) != 1:
            raise self.fail(op, f"depth_multiplier {obj.depth_multiplier}; allowed: 1")
        groups = 1 if depthwise else int(obj.groups)
        if groups not in (1, channels):
            raise self.fail(op, f"groups {groups}; allowed: 1, or the input channels (depthwise)")
        depthwise = depthwise or (groups == channels and channels > 1)
        if obj.data_format != "channels_last" or tuple(obj.dilation_rate) != (1, 1):
            raise self.fail(op, "allowed: channels_last data and dilation 1")
        k, s = tuple(obj.kernel_size), tuple(obj.strides)
        if k[0] != k[1] or k[0] % 2 == 0 or s[0] != s[1] or s[0] not in (1, 2):
            raise self.fail(
                op, f"kernel {k} and strides {s}; allowed: square odd kernels, stride 1 or 2"
            )
        k, s = k[0], s[0]
        self.check_padding(op, padding, size, k, s)
        filters = channels if depthwise else int(out_shape[-1])
        kind = "depthwise" if depthwise else ("pointwise" if k == 1 else "conv")
        if pooled and kind != "pointwise":
            raise self.fail(op, "after the global pool only 1x1 convolutions and Dense layers")
        layer = Found(
            kind=kind,
            path=op.path,
            filters=filters,
            in_channels=channels,
            kernel_size=k,
            strides=s,
            use_bias=bool(obj.use_bias),
            conv=obj,
            pooled=pooled,
            paths=[op.path],
        )
        self.open_layer(op, layer, out, x)

    def open_layer(self, op: Op, layer: Found, out: int, x: int) -> None:
        act = getattr(layer.conv, "activation", None)
        name = getattr(act, "__name__", "linear")
        if name == "softmax":
            raise self.fail(
                op,
                "the output is already a softmax; the imported network outputs logits, so "
                "its output would mean something else. Build the model with "
                "classifier_activation=None (keras.applications) or drop the softmax",
            )
        if name not in ACTIVATION_NAMES:
            raise self.fail(op, f"activation {name!r} is not supported")
        if layer.pooled or layer.kind == "fc":
            layer.dropout, self.pending_dropout = self.pending_dropout, 0.0
        self.pending_dropout = 0.0
        self.layers.append(layer)
        index = len(self.layers) - 1
        stage = "conv"
        if name != "linear":
            layer.activation = ACTIVATION_NAMES[name]
            stage = "act"
        self.state[out] = ("layer", index, stage)
        self.main = out
        self.main_layer[out] = index
        self.note(op, index)

    def check_padding(self, op: Op, padding, size: int, k: int, s: int) -> None:
        obj = op.obj
        if padding is None:
            if obj.padding == "same" or k == 1:
                return
            raise self.fail(
                op, "'valid' padding without a ZeroPadding2D; the spec's layers pad 'same'"
            )
        if obj.padding != "valid":
            raise self.fail(op, "ZeroPadding2D before a 'same' convolution")
        out = -(-size // s)
        total = max((out - 1) * s + k - size, 0)
        want = ((total // 2, total - total // 2),) * 2
        if tuple(padding) != want:
            raise self.fail(
                op,
                f"its ZeroPadding2D pads {padding} but 'same' padding of a {k}x{k} stride-{s} "
                f"convolution of a {size}x{size} input pads {want}",
            )

    def batch_norm(self, op: Op, x: int, out: int) -> None:
        st = self.state.get(x)
        obj = op.obj
        axis = obj.axis if isinstance(obj.axis, int) else tuple(obj.axis)
        if axis not in (-1, 3, (-1,), (3,)):
            raise self.fail(op, f"axis {obj.axis}; allowed: the channel axis -1")
        if st is None or st[0] != "layer" or st[2] != "conv" or self.layers[st[1]].pooled:
            raise self.fail(op, "batch normalization is supported right after a convolution")
        layer = self.layers[st[1]]
        layer.bn = obj
        layer.paths.append(op.path)
        self.note(op, st[1])
        self.state[out] = ("layer", st[1], "bn")
        if x == self.main:
            self.main = out
            self.main_layer[out] = st[1]

    def pool(self, op: Op, x: int, out: int) -> None:
        self.on_main(x, op)
        st = self.state[x]
        if st[0] == "image":
            raise self.fail(op, "a global pool of the input image")
        multiplies = [c for c in self.graph.consumers(x) if isinstance(c.obj, L.Multiply)]
        keep = bool(op.obj.keepdims)
        self.close(x, op)
        if multiplies:
            record = {"source": x, "paths": [op.path], "keepdims": keep}
            self.state[out] = ("se", x, "pool" if keep else "pool_flat", record)
            self.note(op, "se")
            return
        if self.pool_at is not None:
            raise self.fail(op, "a second global pool")
        self.pool_at = len(self.layers)
        self.state[out] = ("pooled",) if keep else ("flat",)
        self.main = out
        self.note(op, "pool")

    def reshape(self, op: Op, x: int, out: int) -> None:
        st = self.state.get(x)
        target = tuple(op.out_shapes[0][1:])
        if st is not None and st[0] == "se" and st[2] == "pool_flat" and len(target) == 3:
            self.state[out] = ("se", st[1], "pool", st[3])
            st[3]["paths"].append(op.path)
            self.note(op, "se")
            return
        if st is not None and self.pool_at is not None and len(target) == 1 and x == self.main:
            if st[0] == "pooled":
                self.state[out] = ("flat",)
            else:
                self.close(x, op)
                self.state[out] = ("flat", self.state[x][1])
            self.main = out
            self.note(op, "flatten (1x1 map to vector)")
            return
        raise self.fail(
            op,
            f"reshape to {target}; allowed: (1, 1, C) inside an SE gate and a flatten after "
            "the global pool",
        )

    def dense(self, op: Op, x: int, out: int) -> None:
        st = self.state.get(x)
        self.on_main(x, op)
        if st is None or st[0] != "flat":
            raise self.fail(op, "a Dense layer is supported after the global pool (flattened)")
        if len(st) > 1:
            self.close_flat(st[1])
        obj = op.obj
        layer = Found(
            kind="pointwise",
            path=op.path,
            filters=int(obj.units),
            in_channels=int(op.in_shapes[0][-1]),
            use_bias=bool(obj.use_bias),
            conv=obj,
            pooled=True,
            paths=[op.path],
        )
        self.open_layer(op, layer, out, x)
        self.state[out] = ("flat", len(self.layers) - 1)

    def close_flat(self, index: int) -> None:
        layer = self.layers[index]
        if layer.activation is None:
            layer.activation = "linear"

    def se_conv(self, op: Op, st, out: int) -> None:
        obj = op.obj
        record = st[3]
        if (
            isinstance(obj, L.DepthwiseConv2D)
            or tuple(obj.kernel_size) != (1, 1)
            or not obj.use_bias
        ):
            raise self.fail(op, "an SE gate's convolutions are 1x1 with a bias")
        act = getattr(getattr(obj, "activation", None), "__name__", "linear")
        if st[2] == "pool":
            record["squeeze"] = obj
            record["paths"].append(op.path)
            if act != "linear":
                if act not in ACTIVATION_NAMES:
                    raise self.fail(op, f"activation {act!r} is not supported")
                record["squeeze_act"] = ACTIVATION_NAMES[act]
                self.state[out] = ("se", st[1], "squeeze_act", record)
            else:
                self.state[out] = ("se", st[1], "squeeze", record)
        elif st[2] in ("squeeze_act",):
            record["excite"] = obj
            record["paths"].append(op.path)
            if act == "linear":
                self.state[out] = ("se", st[1], "excite", record)
            elif act == "hard_sigmoid":
                self.state[out] = ("se", st[1], "gate", record)
            else:
                raise self.fail(
                    op,
                    f"an SE gate of {act}; the spec's SE gate is a hard sigmoid (relu6(x + 3) / 6)",
                )
        else:
            raise self.fail(op, "an SE gate is pool -> 1x1 conv -> activation -> 1x1 conv -> gate")
        self.note(op, "se")

    def add(self, op: Op, out: int) -> None:
        if len(op.inputs) != 2:
            raise self.fail(op, f"an add of {len(op.inputs)} tensors; a residual adds two")
        a, b = op.inputs
        if b == self.main:
            a, b = b, a
        if a != self.main or b not in self.main_layer:
            raise self.fail(op, "an add that is not the main path plus an earlier tensor of it")
        last = self.close(a, op)
        first = self.main_layer[b] + 1
        if self.state[b][0] not in ("layer", "sum", "image"):
            raise self.fail(op, "a residual add of a tensor that is not a layer's output")
        if self.state[b][0] == "layer":
            self.close(b, op)
        self.residual.append((first, last, op.path))
        self.state[out] = ("sum", last)
        self.main = out
        self.main_layer[out] = last
        self.note(op, f"residual add of layers {first}..{last}")

    def multiply(self, op: Op, out: int) -> None:
        if len(op.inputs) != 2:
            raise self.fail(op, "a multiply of more than two tensors")
        a, b = op.inputs
        sa, sb = self.state.get(a), self.state.get(b)
        if sa is not None and sa[0] in ("se", "hsig"):
            a, b, sa, sb = b, a, sb, sa
        if sb is not None and sb[0] == "se" and sb[2] == "gate" and sb[1] == a:
            return self.finish_se(op, a, sb[3], out)
        if sb is not None and sb[0] == "hsig" and sb[1] == a:
            st = self.state[a]
            uses = len(self.graph.consumers(a))
            if st[0] != "layer" or st[2] not in ("conv", "bn") or uses != 2:
                raise self.fail(op, "x * hard_sigmoid(x) of a tensor that is not a layer's output")
            self.layers[st[1]].paths.extend(sb[2] + [op.path])
            for path in sb[2]:
                self.notes[path] = st[1]
            return self.activate(a, "hard_swish", op, out)
        raise self.fail(
            op,
            "a multiply other than an SE gate (x * gate(pool(x))) or a hard swish "
            "(x * hard_sigmoid(x))",
        )

    def finish_se(self, op: Op, x: int, record: dict, out: int) -> None:
        self.on_main(x, op)
        if "excite" not in record:
            raise self.fail(op, "an SE gate without its two 1x1 convolutions")
        squeeze = record["squeeze"]
        layer = Found(
            kind="se",
            path=squeeze.name if not record["paths"] else record["paths"][1],
            filters=int(squeeze.filters),
            in_channels=int(op.out_shapes[0][-1]),
            activation=record.get("squeeze_act", "linear"),
            use_bias=True,
            conv=squeeze,
            excite=record["excite"],
            paths=record["paths"] + [op.path],
        )
        self.layers.append(layer)
        index = len(self.layers) - 1
        for path in layer.paths:
            self.notes[path] = index
        self.state[out] = ("layer", index, "act")
        self.main = out
        self.main_layer[out] = index

    def scalar_op(self, op: Op, x: int, out: int) -> None:
        """keras.ops on a symbolic tensor and a scalar: the composite hard sigmoid."""
        obj = op.obj
        if len(op.inputs) != 1 or len(op.scalars) != 1:
            raise self.fail(op, "a keras.ops call other than a tensor and a scalar")
        value = op.scalars[0]
        st = self.state.get(x)
        pre_act = st is not None and (
            (st[0] == "layer" and st[2] in ("conv", "bn")) or (st[0] == "se" and st[2] == "excite")
        )
        if type(obj) is knp.Add and value == 3.0 and pre_act:
            self.state[out] = ("hs+3", x, [op.path])
            return
        sixth = (type(obj) is knp.Multiply and abs(value - 1 / 6) < 1e-7) or (
            type(obj) is knp.TrueDivide and value == 6.0
        )
        if st is not None and st[0] == "hs+3r6" and sixth:
            base = self.state[st[1]]
            paths = st[2] + [op.path]
            if base[0] == "se":
                base[3]["paths"].extend(paths)
                for path in paths:
                    self.notes[path] = "se"
                self.state[out] = ("se", base[1], "gate", base[3])
            else:
                self.state[out] = ("hsig", st[1], paths)
            return
        raise self.fail(
            op,
            f"{type(obj).__name__} with {value}; keras.ops scalars are supported only as the "
            "hard sigmoid ReLU(6.)(x + 3.) * (1. / 6.)",
        )


def map_graph(graph: Graph) -> Mapped:
    """The spec layers of `graph` (ValueError naming the op it cannot map)."""
    mapper = _Mapper(graph)
    return mapper.run()
