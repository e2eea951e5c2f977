"""The export invariant: the plain exported model computes what the masked super-network
computes for that arch, in inference mode, within 1e-4; and the reverse, a plain model of an
arch loaded into the super-network's slices."""

import contextlib

import keras
import numpy as np
import pytest
from conftest import per_builder, randomize_non_kernel_weights, small_spec

from netadapt_tf.graphs.export import export_subnetwork, max_abs_diff
from netadapt_tf.space.arch import full_arch, random_arch, smallest_arch
from netadapt_tf.space.spec import BlockSpec
from netadapt_tf.space.subnet import resolve
from netadapt_tf.supernet.network import arch_inputs, build_supernet
from netadapt_tf.supernet.slices import load_into_supernet

TOLERANCE = 1e-4


_SUPERNETS = {}


def shared_supernet(name):
    """This module's super-network of builder `name`, weights of order one (built once)."""
    if name not in _SUPERNETS:
        model = build_supernet(small_spec(name))
        randomize_non_kernel_weights(model, seed=7)
        _SUPERNETS[name] = model
    return _SUPERNETS[name]


@contextlib.contextmanager
def restored(supernet):
    """The super-network's weights as they were before the block (for tests that load)."""
    saved = [np.asarray(w).copy() for w in supernet.weights]
    try:
        yield saved
    finally:
        for w, value in zip(supernet.weights, saved, strict=True):
            w.assign(value)


@pytest.fixture(scope="module", params=per_builder())
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
    spec = supernet.spec
    model = _check(supernet, smallest_arch(spec), images)
    # Only the layers that cannot reach width 0 keep filters (the classifier; for FastDepth
    # also the skip-tied layers and the output); every other layer is bypassed or removed.
    kept = [layer.name.replace("/", "__") for layer in spec.layers() if layer.widths[0] > 0]
    assert [layer.name.rsplit("__", 1)[0] for layer in _convs(model)] == kept
    if spec.num_classes is not None:
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


@pytest.mark.parametrize(
    "name", per_builder(["mobilenet_v2", "mobilenet_v3_large", "netadaptv2_mobilenet_v3"])
)
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


def _trained_alone(supernet, arch, seed):
    """A plain model of `arch` with weights of its own (as if trained without the
    super-network): an export whose kernels are scaled per entry and whose BN and biases
    are randomized afresh."""
    model = export_subnetwork(supernet, arch)
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if w.path.endswith("kernel"):
            w.assign(np.asarray(w) * rng.uniform(0.5, 1.5, w.shape).astype("float32"))
    randomize_non_kernel_weights(model, seed=seed)
    return model


def _masked_outputs(supernet, arch, images):
    inputs = arch_inputs(supernet.spec, [arch] * len(images))
    inputs["image"] = images
    return np.asarray(supernet(inputs, training=False))


def test_a_plain_model_loads_into_the_supernet_and_exports_back(supernet, images):
    spec = supernet.spec
    for arch in (random_arch(spec, np.random.default_rng(21)), full_arch(spec)):
        model = _trained_alone(supernet, arch, seed=4)
        with restored(supernet) as before:
            _check_loaded(supernet, model, arch, images, before)


def _check_loaded(target, model, arch, images, before):
    spec = target.spec
    copied = load_into_supernet(target, model, arch)

    assert copied == tuple(r.name for r in resolve(spec, arch).layers() if r.width > 0)
    again = export_subnetwork(target, arch)
    assert [w.path for w in again.weights] == [w.path for w in model.weights]
    for got, want in zip(again.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    expected = np.asarray(model(images, training=False))
    assert np.max(np.abs(expected)) > 0.1 and np.max(np.std(expected, axis=0)) > 0.01
    assert np.max(np.abs(_masked_outputs(target, arch, images) - expected)) <= TOLERANCE
    # Only the arch's slices changed: no more entries than the model has.
    changed = sum(
        int(np.sum(np.asarray(w) != b)) for w, b in zip(target.weights, before, strict=True)
    )
    assert 0 < changed <= sum(int(np.size(w)) for w in model.get_weights())


def test_loading_keeps_what_the_arch_does_not_use():
    supernet = shared_supernet("netadaptv2_mobilenet_v3")
    with restored(supernet):
        _check_untouched(supernet)


def _check_untouched(supernet):
    spec = supernet.spec
    arch = full_arch(spec).with_layer("block4/depthwise", kernel_size=3)
    arch = arch.with_layer("block4/expansion", width=spec.layer("block4/expansion").widths[2])
    expansion = supernet.super_layers["block4/expansion"]
    depthwise = supernet.super_layers["block4/depthwise"]
    kernel, mean = expansion.conv.kernel.numpy(), expansion.bn.moving_mean.numpy()
    superkernel = depthwise.conv.kernel.numpy()
    model = _trained_alone(supernet, arch, seed=2)
    load_into_supernet(supernet, model, arch)

    kept = arch.choice("block4/expansion").width
    conv = model.get_layer("block4__expansion__conv").get_weights()[0]
    np.testing.assert_array_equal(expansion.conv.kernel.numpy()[..., :kept], conv)
    np.testing.assert_array_equal(expansion.conv.kernel.numpy()[..., kept:], kernel[..., kept:])
    np.testing.assert_array_equal(expansion.bn.moving_mean.numpy()[kept:], mean[kept:])
    # The 3x3 kernel lands in the centre of the 7x7 superkernel; the ring keeps its values.
    window = model.get_layer("block4__depthwise__conv").get_weights()[0]
    loaded = depthwise.conv.kernel.numpy()
    np.testing.assert_array_equal(loaded[2:5, 2:5, : window.shape[2]], window)
    ring = np.ones(loaded.shape[:2], bool)
    ring[2:5, 2:5] = False
    np.testing.assert_array_equal(loaded[ring], superkernel[ring])


def test_loading_a_model_of_another_arch_fails_and_changes_nothing():
    supernet = shared_supernet("mobilenet_v2")
    spec = supernet.spec
    before = [np.asarray(w).copy() for w in supernet.weights]
    full = full_arch(spec)
    narrow = full.with_layer("block2/expansion", width=spec.layer("block2/expansion").widths[1])
    model = export_subnetwork(supernet, narrow)
    with pytest.raises(ValueError) as error:
        load_into_supernet(supernet, model, full)
    assert str(error.value) == (
        "load_into_supernet: layer 'block2__expansion__conv' of model "
        f"'{model.name}' has weights of shapes [(1, 1, 8, 6)]; the arch needs [(1, 1, 8, 48)]"
    )
    gone = full.with_layer("block3/projection", width=0)  # block 3 removed: no weights
    with pytest.raises(ValueError, match=r"layers \['block3__depthwise__bn', 'block3__depthwise"):
        load_into_supernet(supernet, export_subnetwork(supernet, full), gone)
    with pytest.raises(ValueError, match="has no layer 'block3__expansion__conv', which layer"):
        load_into_supernet(supernet, export_subnetwork(supernet, gone), full)
    model = export_subnetwork(supernet, full)
    bn = model.get_layer("stem__bn")
    bn.epsilon = 1e-5
    with pytest.raises(ValueError, match="'stem__bn' .* has epsilon 1e-05; the super-network's"):
        load_into_supernet(supernet, model, full)
    for w, b in zip(supernet.weights, before, strict=True):
        np.testing.assert_array_equal(np.asarray(w), b)
