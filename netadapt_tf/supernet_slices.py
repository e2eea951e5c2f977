"""Where each weight of a sub-network lives in the super-network.

Every weight of a sub-network's layer is one slice of one super-network variable: the first
M filters of a kernel over its first C input channels, the centred k x k window of a
superkernel, the first M entries of a bias or batch-norm vector. `weight_slices` names those
(variable, index) pairs for one layer part, with sizes that are Python ints (the exporter,
`load_into_supernet`) or scalar int32 tensors (the sliced forward), so the three agree by
construction:

* copied out: `SupernetWeights` reads them as numpy arrays (export.export_subnetwork);
* copied in: `assign_slices` writes a plain model's weights into them
  (export.load_into_supernet, the reverse direction);
* sliced on the fly: sliced_forward reads them as tensors inside one traced graph.

A part is a sub-network layer's Keras layer with weights, named by its suffix
(`weight_parts`): "conv", "dense" and "bn" for convolution-like layers,
"squeeze" and "excite" for squeeze-and-excitation. Weights come in Keras's `get_weights`
order (kernel, bias; gamma, beta, moving mean, moving variance). Nothing here imports a
Keras: the variables are read through the super-network the caller passes.
"""

from collections.abc import Sequence

import numpy as np

ALL = slice(None)


def _first(count) -> slice:
    return slice(0, count)


def _kernel_window(layer, kernel_size):
    """The spatial index of a depthwise kernel: the centred window of the superkernel (a
    slice with static bounds when the layer has one kernel size, so shapes stay known)."""
    if len(layer.kernel_sizes) == 1:
        return ALL
    start = (layer.kernel_size - kernel_size) // 2
    return slice(start, start + kernel_size)


def weight_slices(supernet, r, part: str) -> tuple[tuple[object, tuple], ...]:
    """The (variable, index) pairs of `part` of layer `r` in `supernet`.

    `r` has `spec` (the LayerSpec), `in_channels` C, `width` M (for depthwise layers
    min(M, C); for SE layers the squeeze width) and `kernel_size`, as subnet.ResolvedLayer
    does; the sizes may be ints or scalar tensors. `variable[index]` is the sub-network's
    weight.
    """
    module = supernet.super_layers[r.spec.name]
    spec, c, m = r.spec, r.in_channels, r.width
    if spec.kind == "se" and part in ("squeeze", "excite"):
        se = module.conv
        if part == "squeeze":
            return (
                (se.squeeze.kernel, (ALL, ALL, _first(c), _first(m))),
                (se.squeeze.bias, (_first(m),)),
            )
        return (
            (se.excite.kernel, (ALL, ALL, _first(m), _first(c))),
            (se.excite.bias, (_first(c),)),
        )
    if part == "bn" and module.bn is not None:
        bn = module.bn
        params = (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance)
        return tuple((p, (_first(m),)) for p in params)
    conv = module.conv
    if spec.kind == "fc" and part == "dense":
        kernel = (conv.kernel, (_first(c), _first(m)))
    elif spec.kind == "depthwise" and part == "conv":
        window = _kernel_window(spec, r.kernel_size)
        kernel = (conv.kernel, (window, window, _first(m), ALL))
    elif spec.kind not in ("se", "fc", "depthwise") and part == "conv":
        kernel = (conv.kernel, (ALL, ALL, _first(c), _first(m)))
    else:
        raise ValueError(
            f"{spec.name}: a {spec.kind} layer has no weight part {part!r}; "
            f"allowed are {list(weight_parts(spec))}"
        )
    if spec.use_bias:
        return (kernel, (conv.bias, (_first(m),)))
    return (kernel,)


def weight_parts(spec) -> tuple[str, ...]:
    """The parts with weights of a layer (LayerSpec) that keeps filters: the suffixes of
    its Keras layers' names in an exported model."""
    if spec.kind == "se":
        return ("squeeze", "excite")
    if spec.kind == "fc":
        return ("dense",)
    return ("conv", "bn") if spec.batch_norm else ("conv",)


class SupernetWeights:
    """Weights copied out of a super-network: numpy slices of its variables, and its batch
    normalizations' epsilon and momentum."""

    def __init__(self, supernet):
        self.supernet = supernet

    def weights(self, r, part: str) -> list[np.ndarray]:
        return [np.asarray(v.numpy()[index]) for v, index in weight_slices(self.supernet, r, part)]

    def batch_norm_settings(self, r) -> dict:
        bn = self.supernet.super_layers[r.spec.name].bn
        return {"epsilon": float(bn.epsilon), "momentum": float(bn.momentum)}


def assign_slices(updates: Sequence[tuple[object, tuple, np.ndarray]]) -> None:
    """Writes each value into its slice of its variable: (variable, index, value) triples.

    Every variable is read once and assigned once, after all values have been placed, so
    that slices of one variable given in several triples all land.
    """
    staged = {}
    for variable, index, value in updates:
        key = id(variable)
        if key not in staged:
            staged[key] = (variable, np.array(variable.numpy(), copy=True))
        staged[key][1][index] = value
    for variable, array in staged.values():
        variable.assign(array)
