"""Export of a sub-network as a plain, smaller Keras model with inherited weights, and back.

The graph is subnet_graph's, built in Keras 3 with weights copied out of the super-network
(supernet/slices.py): only kept filters and kernels are built; bypassed channels become channel
slices and concatenations; a layer that keeps no filter adds no convolution, and a removed
residual block adds nothing. In inference mode the exported model computes what the masked
super-network computes for that arch (tested to 1e-4).
`load_into_supernet` is the reverse: a plain model of an arch (trained alone, say) written
into the super-network's slices for that arch, to warm-start super-network training.
"""

import keras
import numpy as np

from netadapt_tf.graphs.subnet_graph import (
    Flavour,
    KerasOps,
    build_network,
    layer_name,
    weight_parts,
)
from netadapt_tf.space.arch import Arch
from netadapt_tf.space.subnet import ResolvedLayer, resolve
from netadapt_tf.supernet.layers import ChannelSlice
from netadapt_tf.supernet.network import SuperNetwork, arch_inputs
from netadapt_tf.supernet.slices import SupernetWeights, assign_slices, weight_slices


def _channel_slice(start: int, stop: int, name: str) -> ChannelSlice:
    return ChannelSlice(start, stop, name=name)


# The graph builder's Keras 3 flavour (exported models, trained discovered networks).
KERAS3 = Flavour(keras=keras, channel_slice=_channel_slice)


def exporter_ops(supernet: SuperNetwork) -> KerasOps:
    """The exporter's steps: Keras 3 layers with weights copied out of `supernet` (the latency
    table times single layers built with them)."""
    return KerasOps(KERAS3, SupernetWeights(supernet))


def export_subnetwork(supernet: SuperNetwork, arch: Arch, name: str | None = None) -> keras.Model:
    """The plain Keras model of `arch` with weights inherited from `supernet`."""
    sub = resolve(supernet.spec, arch)
    return build_network(sub, KERAS3, SupernetWeights(supernet), name)


def _model_layer(model: keras.Model, name: str, r: ResolvedLayer):
    try:
        return model.get_layer(name)
    except ValueError:
        raise ValueError(
            f"load_into_supernet: model {model.name!r} has no layer {name!r}, which layer "
            f"{r.name!r} of the arch needs; give a model of this arch (an export_subnetwork "
            "of it, trained or not)"
        ) from None


def load_into_supernet(supernet: SuperNetwork, model: keras.Model, arch: Arch) -> tuple[str, ...]:
    """Copies the weights of `model`, a plain model of `arch` (made by export_subnetwork and
    trained alone, for example), into the slices of `supernet` that `arch` uses: the reverse
    of export_subnetwork. Returns the names of the layers copied.

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


def max_abs_diff(supernet: SuperNetwork, model: keras.Model, arch: Arch, images) -> float:
    """Largest difference between the exported model and the masked super-network."""
    images = np.asarray(images, np.float32)
    inputs = arch_inputs(supernet.spec, [arch] * len(images))
    inputs["image"] = images
    expected = np.asarray(supernet(inputs, training=False))
    got = np.asarray(model(images, training=False))
    return float(np.max(np.abs(expected - got)))
