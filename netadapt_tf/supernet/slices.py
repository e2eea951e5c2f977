"""Where each weight of a sub-network lives in the super-network.

Every weight of a sub-network's layer is one slice of one super-network variable: the first
M filters of a kernel over its first C input channels, the centred k x k window of a
superkernel, the first M entries of a bias or batch-norm vector. `weight_slices` gives those
slices for one layer part, with sizes that are Python ints (the exporter,
`load_into_supernet`) or scalar int32 tensors (the sliced forward), so the three agree by
construction:

* copied out: `SupernetWeights` reads them as numpy arrays (export.export_subnetwork);
* copied in: `assign_slices` writes a plain model's weights into them
  (`load_into_supernet`, the reverse direction, to warm-start super-network training);
* sliced on the fly: sliced_forward reads them as tensors (`WeightSlice.tensor`) inside one
  traced graph.

A part is a sub-network layer's Keras layer with weights, named by its suffix
(keras_names.weight_parts): "conv", "dense" and "bn" for convolution-like layers,
"squeeze" and "excite" for squeeze-and-excitation. Weights come in Keras's `get_weights`
order (kernel, bias; gamma, beta, moving mean, moving variance). Nothing here imports a
Keras: the variables are read through the super-network the caller passes.
"""

import dataclasses
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from netadapt_tf.space.arch import Arch
from netadapt_tf.space.keras_names import layer_name, weight_parts
from netadapt_tf.space.subnet import ResolvedLayer, resolve

ALL = (0, -1)  # (begin, size) of a whole axis


@dataclasses.dataclass(frozen=True)
class WeightSlice:
    """The part of `variable` that is a sub-network's weight: along each axis, `size`
    entries from `begin` (size -1: to the end). Bounds are ints, or scalar tensors inside
    the sliced forward's graph."""

    variable: object
    axes: tuple[tuple[object, object], ...]

    @property
    def index(self) -> tuple[slice, ...]:
        """The numpy index (int bounds only)."""
        return tuple(slice(b, None if n == -1 else b + n) for b, n in self.axes)

    def numpy(self) -> np.ndarray:
        return np.asarray(self.variable.numpy()[self.index])

    def tensor(self) -> tf.Tensor:
        """The slice as a graph tensor (one tf.slice, bounds may be tensors)."""
        return tf.slice(self.variable, [b for b, _ in self.axes], [n for _, n in self.axes])


def _kernel_window(layer, kernel_size):
    """The spatial (begin, size) of a depthwise kernel: the centred window of the
    superkernel (static when the layer has one kernel size, so shapes stay known)."""
    if len(layer.kernel_sizes) == 1:
        return ALL
    return ((layer.kernel_size - kernel_size) // 2, kernel_size)


def weight_slices(supernet, r, part: str) -> tuple[WeightSlice, ...]:
    """The weights of `part` of layer `r` as slices of `supernet`'s variables, in Keras's
    get_weights order.

    `r` has `spec` (the LayerSpec), `in_channels` C, `width` M (for depthwise layers
    min(M, C); for SE layers the squeeze width) and `kernel_size`, as subnet.ResolvedLayer
    does; the sizes may be ints or scalar tensors.
    """
    module = supernet.super_layers[r.spec.name]
    spec, c, m = r.spec, (0, r.in_channels), (0, r.width)
    if spec.kind == "se" and part in ("squeeze", "excite"):
        se = module.conv
        if part == "squeeze":
            return (
                WeightSlice(se.squeeze.kernel, (ALL, ALL, c, m)),
                WeightSlice(se.squeeze.bias, (m,)),
            )
        return (
            WeightSlice(se.excite.kernel, (ALL, ALL, m, c)),
            WeightSlice(se.excite.bias, (c,)),
        )
    if part == "bn" and module.bn is not None:
        bn = module.bn
        params = (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance)
        return tuple(WeightSlice(p, (m,)) for p in params)
    conv = module.conv
    if spec.kind == "fc" and part == "dense":
        kernel = WeightSlice(conv.kernel, (c, m))
    elif spec.kind == "depthwise" and part == "conv":
        window = _kernel_window(spec, r.kernel_size)
        kernel = WeightSlice(conv.kernel, (window, window, m, ALL))
    elif spec.kind not in ("se", "fc", "depthwise") and part == "conv":
        kernel = WeightSlice(conv.kernel, (ALL, ALL, c, m))
    else:
        raise ValueError(
            f"{spec.name}: a {spec.kind} layer has no weight part {part!r}; "
            f"allowed are {list(weight_parts(spec))}"
        )
    if spec.use_bias:
        return (kernel, WeightSlice(conv.bias, (m,)))
    return (kernel,)


class SupernetWeights:
    """Weights copied out of a super-network: numpy slices of its variables, and its batch
    normalizations' epsilon and momentum."""

    def __init__(self, supernet):
        self.supernet = supernet

    def weights(self, r, part: str) -> list[np.ndarray]:
        return [w.numpy() for w in weight_slices(self.supernet, r, part)]

    def batch_norm_settings(self, r) -> dict:
        bn = self.supernet.super_layers[r.spec.name].bn
        return {"epsilon": float(bn.epsilon), "momentum": float(bn.momentum)}


def assign_slices(updates: Sequence[tuple[WeightSlice, np.ndarray]]) -> None:
    """Writes each value into its slice. Every variable is read once and assigned once,
    after all its values have been placed."""
    staged = {}
    for target, value in updates:
        key = id(target.variable)
        if key not in staged:
            staged[key] = (target.variable, np.array(target.variable.numpy(), copy=True))
        staged[key][1][target.index] = value
    for variable, array in staged.values():
        variable.assign(array)


def _model_layer(model, name: str, r: ResolvedLayer):
    try:
        return model.get_layer(name)
    except ValueError:
        raise ValueError(
            f"load_into_supernet: model {model.name!r} has no layer {name!r}, which layer "
            f"{r.name!r} of the arch needs; give a model of this arch (an export_subnetwork "
            "of it, trained or not)"
        ) from None


def load_into_supernet(supernet, model, arch: Arch) -> tuple[str, ...]:
    """Copies the weights of `model`, a plain Keras model of `arch` (made by
    export.export_subnetwork and trained alone, for example), into the slices of `supernet`
    that `arch` uses: the reverse of export_subnetwork. Returns the names of the layers copied.

    Afterwards exporting `arch` gives `model`'s weights exactly and the super-network computes
    for `arch` what `model` computes (inference); every other entry of the super-network keeps
    its value. Batch-norm momentum is not copied (it is a training setting). Raises
    ValueError, changing nothing, when the model lacks a layer the arch needs, has weights
    the arch does not describe, has a weight of another shape or a batch norm with another
    epsilon.
    """
    expected, updates, copied = set(), [], []
    for r in resolve(supernet.spec, arch).layers():
        if r.width == 0:  # a pure bypass or a switched-off SE gate has no weights
            continue
        for part in weight_parts(r.spec):
            name = f"{layer_name(r.name)}__{part}"
            expected.add(name)
            layer = _model_layer(model, name, r)
            values = layer.get_weights()
            slices = weight_slices(supernet, r, part)
            want = [w.numpy().shape for w in slices]
            got = [tuple(np.shape(w)) for w in values]
            if got != want:
                raise ValueError(
                    f"load_into_supernet: layer {name!r} of model {model.name!r} has weights "
                    f"of shapes {got}; the arch needs {want}"
                )
            if part == "bn":
                epsilon = float(supernet.super_layers[r.name].bn.epsilon)
                if not np.isclose(float(layer.epsilon), epsilon, rtol=1e-6, atol=0):
                    raise ValueError(
                        f"load_into_supernet: layer {name!r} of model {model.name!r} has "
                        f"epsilon {layer.epsilon}; the super-network's batch norm has {epsilon}"
                    )
            updates.extend(zip(slices, values, strict=True))
        copied.append(r.name)
    extra = sorted(
        layer.name for layer in model.layers if layer.weights and layer.name not in expected
    )
    if extra:
        raise ValueError(
            f"load_into_supernet: layers {extra} of model {model.name!r} have weights but are "
            "not in the network the arch describes; give a model of this arch"
        )
    assign_slices(updates)
    return tuple(copied)
