"""The names a spec's layers take in Keras: one rule shared by the super-network, the
exported sub-network, the sliced forward and every weight copy between them.

A spec path ("block2/expansion") becomes a Keras name by `layer_name` ("block2__expansion");
a layer that keeps filters owns the Keras layers with weights that `weight_parts` lists, named
f"{layer_name(path)}__{part}".
"""

from netadapt_tf.space.spec import LayerSpec


def layer_name(path: str) -> str:
    """The Keras name of a spec layer or block: Keras layer names may not hold '/'."""
    return path.replace("/", "__")


def weight_parts(layer: LayerSpec) -> tuple[str, ...]:
    """The Keras layers with weights of a layer that keeps filters, by their name suffix
    (f"{layer_name(layer.name)}__{part}"), in the order the graph creates them."""
    if layer.kind == "se":
        return ("squeeze", "excite")
    if layer.kind == "fc":
        return ("dense",)
    return ("conv", "bn") if layer.batch_norm else ("conv",)
