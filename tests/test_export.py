"""The export invariant: the plain exported model computes what the masked super-network
computes for that arch, in inference mode, within 1e-4."""

import keras
import numpy as np
import pytest
from conftest import randomize_non_kernel_weights, small_spec

from netadapt_tf import builders
from netadapt_tf.arch import full_arch, random_arch, smallest_arch
from netadapt_tf.export import export_subnetwork, max_abs_diff
from netadapt_tf.spec import BlockSpec
from netadapt_tf.supernet import build_supernet

TOLERANCE = 1e-4


_SUPERNETS = {}


def shared_supernet(name):
    """This module's super-network of builder `name`, weights of order one (built once)."""
    if name not in _SUPERNETS:
        model = build_supernet(small_spec(name))
        randomize_non_kernel_weights(model, seed=7)
        _SUPERNETS[name] = model
    return _SUPERNETS[name]


@pytest.fixture(scope="module", params=sorted(builders.BUILDERS))
def supernet(request):
    return shared_supernet(request.param)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(5).normal(size=(3, 32, 32, 3)).astype("float32")


def _convs(model):
    kinds = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)
    return [layer for layer in model.layers if isinstance(layer, kinds)]


def _check(supernet, arch, images):
    model = export_subnetwork(supernet, arch)
    assert max_abs_diff(supernet, model, arch, images) <= TOLERANCE
    return model


def test_full_network(supernet, images):
    model = _check(supernet, full_arch(supernet.spec), images)
    assert len(_convs(model)) == len(list(supernet.spec.layers())) + sum(
        1 for layer in supernet.spec.layers() if layer.kind == "se"
    )


def test_random_subnetworks(supernet, images):
    rng = np.random.default_rng(11)
    for _ in range(3):
        _check(supernet, random_arch(supernet.spec, rng), images)


def test_every_layer_at_its_smallest(supernet, images):
    model = _check(supernet, smallest_arch(supernet.spec), images)
    # Only the classifier keeps filters; every other layer is bypassed or removed.
    assert [type(layer).__name__ for layer in _convs(model)] == ["Dense"]


def test_a_layer_at_width_zero_adds_no_convolution(supernet, images):
    spec = supernet.spec
    full = full_arch(spec)
    candidates = [
        layer for layer in spec.layers() if 0 in layer.widths and layer.kind not in ("se",)
    ]
    for layer in candidates[1:3] + candidates[-1:]:
        arch = full.with_layer(layer.name, width=0)
        model = _check(supernet, arch, images)
        names = {c.name.split("__conv")[0] for c in _convs(model)}
        assert layer.name.replace("/", "__") not in names


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_large", "netadaptv2_mobilenet_v3"])
def test_a_whole_block_at_width_zero_adds_nothing(name, images):
    supernet = shared_supernet(name)
    spec = supernet.spec
    residual = [n for n in spec.nodes if isinstance(n, BlockSpec) and n.residual]
    block = residual[-1]
    arch = full_arch(spec).with_choices({layer.name: {"width": 0} for layer in block.layers})
    model = _check(supernet, arch, images)
    prefix = block.name + "__"
    assert not [layer for layer in model.layers if layer.name.startswith(prefix)]
    # The projection alone at zero removes the block too (the residual carries the input).
    arch = full_arch(spec).with_layer(block.projection.name, width=0)
    model = _check(supernet, arch, images)
    assert not [layer for layer in model.layers if layer.name.startswith(prefix)]


def test_kernel_choices_are_exported_cut(images):
    supernet = shared_supernet("netadaptv2_mobilenet_v3")
    spec = supernet.spec
    arch = full_arch(spec).with_layer("block4/depthwise", kernel_size=3)
    arch = arch.with_layer("block5/depthwise", kernel_size=5)
    model = _check(supernet, arch, images)
    assert model.get_layer("block4__depthwise__conv").kernel_size == (3, 3)
    assert model.get_layer("block5__depthwise__conv").kernel_size == (5, 5)
    assert model.get_layer("block6__depthwise__conv").kernel_size == (7, 7)


def test_exported_model_round_trips_through_keras_files(tmp_path, images):
    supernet = shared_supernet("mobilenet_v3_large")
    arch = random_arch(supernet.spec, np.random.default_rng(2))
    model = export_subnetwork(supernet, arch)
    path = tmp_path / "sub.keras"
    model.save(path)
    again = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(again(images)), np.asarray(model(images)), atol=1e-6)
