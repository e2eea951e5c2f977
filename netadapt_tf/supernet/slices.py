"""Where each weight of a sub-network lives in the super-network.

Every weight of a sub-network's layer is one slice of one super-network variable: the first
M filters of a kernel over its first C input channels, the centred k x k window of a
superkernel, the first M entries of a bias or batch-norm vector. `weight_slices` gives those
slices for one layer part, with sizes that are Python ints (the exporter,
`load_into_supernet`) or scalar int32 tensors (the sliced forward), so the three agree by
construction:

* copied out: `SupernetWeights` reads them as numpy arrays (export.export_subnetwork);
* copied in: `assign_slices` writes a plain model's weights into them
  (export.load_into_supernet, the reverse direction);
* sliced on the fly: sliced_forward reads them as tensors (`WeightSlice.tensor`) inside one
  traced graph.

A part is a sub-network layer's Keras layer with weights, named by its suffix
(subnet_graph.weight_parts): "conv", "dense" and "bn" for convolution-like layers,
"squeeze" and "excite" for squeeze-and-excitation. Weights come in Keras's `get_weights`
order (kernel, bias; gamma, beta, moving mean, moving variance). Nothing here imports a
Keras: the variables are read through the super-network the caller passes.
"""

import dataclasses
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from netadapt_tf.graphs.subnet_graph import weight_parts

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
