"""Export of a sub-network as a plain, smaller Keras model with inherited weights.

The graph is subnet_graph's, built in Keras 3 with weights copied out of the super-network
(supernet/slices.py): only kept filters and kernels are built; bypassed channels become channel
slices and concatenations; a layer that keeps no filter adds no convolution, and a removed
residual block adds nothing. In inference mode the exported model computes what the masked
super-network computes for that arch (tested to 1e-4).
The reverse, a plain model of an arch written into the super-network's slices for that arch,
is supernet.slices.load_into_supernet.
"""

import keras
import numpy as np

from netadapt_tf.graphs.subnet_graph import Flavour, KerasOps, build_network
from netadapt_tf.space.arch import Arch
from netadapt_tf.space.subnet import resolve
from netadapt_tf.supernet.layers import ChannelSlice, MatmulConv2D
from netadapt_tf.supernet.network import SuperNetwork, arch_inputs
from netadapt_tf.supernet.slices import SupernetWeights


def _channel_slice(start: int, stop: int, name: str) -> ChannelSlice:
    return ChannelSlice(start, stop, name=name)


# The graph builder's Keras 3 flavour (exported models, trained discovered networks); its
# convolutions train 1x1 kernels as matmuls and are plain Conv2D in inference.
KERAS3 = Flavour(keras=keras, channel_slice=_channel_slice, conv2d=MatmulConv2D)


def exporter_ops(supernet: SuperNetwork) -> KerasOps:
    """The exporter's steps: Keras 3 layers with weights copied out of `supernet` (the latency
    table times single layers built with them)."""
    return KerasOps(KERAS3, SupernetWeights(supernet))


def export_subnetwork(supernet: SuperNetwork, arch: Arch, name: str | None = None) -> keras.Model:
    """The plain Keras model of `arch` with weights inherited from `supernet`."""
    sub = resolve(supernet.spec, arch)
    return build_network(sub, KERAS3, SupernetWeights(supernet), name)


def max_abs_diff(supernet: SuperNetwork, model: keras.Model, arch: Arch, images) -> float:
    """Largest difference between the exported model and the masked super-network."""
    images = np.asarray(images, np.float32)
    inputs = arch_inputs(supernet.spec, [arch] * len(images))
    inputs["image"] = images
    expected = np.asarray(supernet(inputs, training=False))
    got = np.asarray(model(images, training=False))
    return float(np.max(np.abs(expected - got)))
