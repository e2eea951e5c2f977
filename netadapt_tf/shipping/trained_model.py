"""A discovered network to ship: its trained Keras model, its arch and its super-network.

`load_discovered` reads the three files and checks that they belong together: the arch is a
sub-network of the spec (same fingerprint), and the model has exactly the layers, weight
shapes and connections that the arch describes (subnet_graph.build_network rebuilds that
network from the description and must compute what the model computes with the model's
weights).
Every problem is a ValueError that names the file, the field and the value.
"""

import dataclasses
import pathlib

import keras
import numpy as np

from netadapt_tf.common.strict_json import RecordError
from netadapt_tf.graphs.export import KERAS3
from netadapt_tf.graphs.subnet_graph import FreshWeights, build_network
from netadapt_tf.space import spec as spec_file
from netadapt_tf.space.arch import Arch, load_arch
from netadapt_tf.space.spec import NetworkSpec
from netadapt_tf.space.subnet import SubNetwork, resolve
from netadapt_tf.supernet import checkpoint

# The model and the network its arch describes, with the same weights, must agree this well
# (relative to the largest output when that is above 1).
REBUILD_TOLERANCE = 1e-4


@dataclasses.dataclass(frozen=True)
class Discovered:
    """A trained sub-network and the description it was built from."""

    model: keras.Model
    spec: NetworkSpec
    arch: Arch
    model_path: str = "model"

    @property
    def subnetwork(self) -> SubNetwork:
        return resolve(self.spec, self.arch)


def load_spec(path) -> NetworkSpec:
    """A super-network spec from a checkpoint directory (its spec.json) or a spec JSON file."""
    path = pathlib.Path(path)
    if path.is_dir():
        return checkpoint.read_spec(path)
    if not path.exists():
        raise RecordError(
            f"{path}: no such file; allowed: a super-network checkpoint directory or its "
            f"{checkpoint.SPEC_FILE}"
        )
    return spec_file.load_spec(path)


def batch_norm_settings(model: keras.Model) -> dict[str, dict]:
    """{layer name: {"epsilon", "momentum"}} of the model's batch normalizations."""
    return {
        layer.name: {"epsilon": float(layer.epsilon), "momentum": float(layer.momentum)}
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    }


def layer_weights(model: keras.Model) -> dict[str, np.ndarray]:
    """Every weight of the model keyed "layer name:index" (get_weights order)."""
    return {
        f"{layer.name}:{i}": np.asarray(w)
        for layer in model.layers
        for i, w in enumerate(layer.get_weights())
    }


def _shapes(layer) -> list[tuple[int, ...]]:
    return [tuple(int(d) for d in w.shape) for w in layer.weights]


def check_model(model: keras.Model, spec: NetworkSpec, arch: Arch, label: str = "model") -> float:
    """Raises ValueError unless `model` is the network `arch` describes; returns the largest
    output difference between the two with the model's weights."""
    fresh = FreshWeights(batch_norm_settings(model))
    expected = build_network(resolve(spec, arch), KERAS3, fresh)
    found = {layer.name: layer for layer in model.layers if layer.weights}
    for layer in expected.layers:
        if not layer.weights:
            continue
        want = _shapes(layer)
        if layer.name not in found:
            raise ValueError(
                f"{label}: layer {layer.name!r} is missing; the arch needs it with weights of "
                f"shapes {want}. Export the model from this arch (tools/export_subnet.py)"
            )
        got = _shapes(found.pop(layer.name))
        if got != want:
            raise ValueError(
                f"{label}: layer {layer.name!r} has weights of shapes {got}; the arch needs "
                f"{want}. Export the model from this arch (tools/export_subnet.py)"
            )
    if found:
        raise ValueError(
            f"{label}: layers {sorted(found)} have weights but are not in the network the arch "
            "describes. Export the model from this arch (tools/export_subnet.py)"
        )
    for layer in expected.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    shape = (4, spec.input_size, spec.input_size, spec.input_channels)
    images = np.random.default_rng(0).uniform(0, 1, shape).astype(np.float32)
    want = np.asarray(expected(images, training=False))
    got = np.asarray(model(images, training=False))
    if got.shape != want.shape:
        raise ValueError(
            f"{label}: outputs have shape {got.shape[1:]}; the arch's network gives "
            f"{want.shape[1:]}"
        )
    diff = float(np.max(np.abs(got - want)))
    allowed = REBUILD_TOLERANCE * max(1.0, float(np.max(np.abs(want))))
    if not diff <= allowed:
        raise ValueError(
            f"{label}: with the same weights its outputs differ from the network the arch "
            f"describes by {diff:.3g} (allowed {allowed:.3g}); its layers are connected "
            "differently. Export the model from this arch (tools/export_subnet.py)"
        )
    return diff


def load_discovered(model_path, arch_path, spec_path) -> Discovered:
    """Reads and cross-checks a trained model (.keras), its arch JSON and its spec."""
    spec = load_spec(spec_path)
    arch = load_arch(str(arch_path), spec)
    model_path = str(model_path)
    if not pathlib.Path(model_path).is_file():
        raise ValueError(f"{model_path}: no such model file (a .keras file from model.save)")
    try:
        model = keras.saving.load_model(model_path)
    except (OSError, ValueError, TypeError) as e:
        raise ValueError(f"{model_path}: cannot load the Keras model ({e})") from None
    check_model(model, spec, arch, model_path)
    return Discovered(model=model, spec=spec, arch=arch, model_path=model_path)
