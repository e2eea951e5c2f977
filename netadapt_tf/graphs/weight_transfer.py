"""Copying the overlapping weights of one exported sub-network into another.

Trajectory knowledge transfer (paper, Appendix A.2) shrinks a trained network step by step
and reuses "the overlapped weights from the previous architecture". In this project channel
i of every tensor of every sub-network is channel i of the super-network's tensor (kept
filters first, then bypassed input channels), and a smaller kernel is the centred window of
a larger one (the superkernel). So the weights two sub-networks share are the leading
filters and input channels of each layer and the centred part of each kernel window: the
same weights the super-network would have shared between them.
"""

import keras
import numpy as np

from netadapt_tf.space.arch import Arch
from netadapt_tf.space.keras_names import layer_name, weight_parts
from netadapt_tf.space.spec import NetworkSpec
from netadapt_tf.space.subnet import ResolvedLayer, resolve


def overlap_copy(source, target, spatial_axes: int = 0) -> np.ndarray:
    """`target` with the part it shares with `source` replaced by `source`'s values.

    Along the first `spatial_axes` axes (kernel height and width) the two arrays are aligned
    at their centres; along every other axis at index 0 (leading filters and channels).
    Whatever of `target` lies outside `source` keeps its value. Returns a new array.
    """
    source = np.asarray(source)
    result = np.array(target, copy=True)
    if source.ndim != result.ndim:
        raise ValueError(
            f"overlap_copy: source has shape {source.shape} and target {result.shape}; "
            "the arrays must have the same number of axes"
        )
    source_index, target_index = [], []
    for axis, (a, b) in enumerate(zip(source.shape, result.shape, strict=True)):
        n = min(a, b)
        if axis < spatial_axes:
            if (a - n) % 2 or (b - n) % 2:
                raise ValueError(
                    f"overlap_copy: axis {axis} has sizes {a} and {b}, which cannot be aligned "
                    "at their centres (kernel sizes must both be odd or both even)"
                )
            a0, b0 = (a - n) // 2, (b - n) // 2
        else:
            a0 = b0 = 0
        source_index.append(slice(a0, a0 + n))
        target_index.append(slice(b0, b0 + n))
    result[tuple(target_index)] = source[tuple(source_index)]
    return result


def keras_layer_names(layer: ResolvedLayer) -> tuple[str, ...]:
    """The Keras layers with weights that export.export_subnetwork makes for `layer`."""
    return tuple(f"{layer_name(layer.name)}__{part}" for part in weight_parts(layer.spec))


def copy_overlapping_weights(
    spec: NetworkSpec,
    source_arch: Arch,
    source_model: keras.Model,
    target_arch: Arch,
    target_model: keras.Model,
) -> tuple[str, ...]:
    """Copies into `target_model` (the export of `target_arch`) every weight it shares with
    `source_model` (the export of `source_arch`); returns the names of the layers copied.

    A layer is copied when it keeps filters in both archs (a removed block, a layer that
    only bypasses and a switched-off SE gate have no weights). The rest of the target keeps
    its values. Copying a model onto an export of the same arch copies it exactly.
    """
    source = {r.name: r for r in resolve(spec, source_arch).layers()}
    copied = []
    for r in resolve(spec, target_arch).layers():
        s = source.get(r.name)
        if r.width == 0 or s is None or s.width == 0:
            continue
        for name in keras_layer_names(r):
            try:
                a, b = source_model.get_layer(name), target_model.get_layer(name)
            except ValueError:
                raise ValueError(
                    f"copy_overlapping_weights: layer {name!r} of {r.name!r} is missing from a "
                    "model; both models must be exports (export_subnetwork) of their archs"
                ) from None
            weights = [
                overlap_copy(x, y, spatial_axes=2 if np.ndim(x) == 4 else 0)
                for x, y in zip(a.get_weights(), b.get_weights(), strict=True)
            ]
            b.set_weights(weights)
        copied.append(r.name)
    return tuple(copied)
