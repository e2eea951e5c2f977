"""MACs and parameters: published figures and a cross-check on exported Keras models."""

import keras
import numpy as np
import pytest
from conftest import small_spec
from macs_helpers import folded_params, keras_macs

from netadapt_tf import builders
from netadapt_tf.graphs.export import export_subnetwork
from netadapt_tf.space import macs
from netadapt_tf.space.arch import full_arch, random_arch, smallest_arch
from netadapt_tf.supernet.network import build_supernet


@pytest.mark.parametrize(
    "name, multiplier, published_macs, published_params",
    [
        ("mobilenet_v1", 1.0, 569e6, 4.24e6),
        ("mobilenet_v1", 0.5, 150e6, None),
        ("mobilenet_v2", 1.0, 300e6, 3.47e6),
        ("mobilenet_v3_large", 1.0, 217e6, 5.4e6),
    ],
)
def test_published_counts_within_1_5_percent(name, multiplier, published_macs, published_params):
    spec = builders.build(name, width_multiplier=multiplier)
    counts = macs.count(spec, full_arch(spec))
    assert abs(counts.macs / published_macs - 1) < 0.015
    if published_params:
        assert abs(counts.params / published_params - 1) < 0.015


def test_pinned_counts_of_reference_networks():
    # Exact values, so that any change to a builder or the counter shows up.
    expected = {
        "mobilenet_v1": (568_740_352, 4_221_032),
        "mobilenet_v2": (300_774_272, 3_487_816),
        "mobilenet_v3_large": (216_589_760, 5_470_832),
        "netadaptv2_mobilenet_v3": (475_364_608, 10_051_184),
    }
    for name, pinned in expected.items():
        spec = builders.build(name)
        counts = macs.count(spec, full_arch(spec))
        assert (counts.macs, counts.params) == pinned, name


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_large"])
def test_params_match_keras_applications(name):
    """BN-folded parameters = Keras' count minus three of BN's four per-channel values."""
    spec = builders.build(name)
    ours = macs.count(spec, full_arch(spec)).params
    if name == "mobilenet_v2":
        ref = keras.applications.MobileNetV2(weights=None)
    else:
        ref = keras.applications.MobileNetV3Large(weights=None)
    bn = sum(
        layer.gamma.shape[0]
        for layer in ref.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    )
    assert ours == ref.count_params() - 3 * bn


@pytest.mark.parametrize("name", sorted(builders.BUILDERS))
def test_counts_match_the_exported_model(name):
    spec = small_spec(name)
    supernet = build_supernet(spec)
    rng = np.random.default_rng(3)
    archs = [full_arch(spec), smallest_arch(spec), random_arch(spec, rng), random_arch(spec, rng)]
    for arch in archs:
        model = export_subnetwork(supernet, arch)
        counts = macs.count(spec, arch)
        assert counts.macs == keras_macs(model)
        assert counts.params == folded_params(model)


def test_smaller_widths_cost_fewer_macs():
    spec = small_spec("mobilenet_v1")
    full = full_arch(spec)
    narrower = full.with_layer("block5/pointwise", width=spec.layer("block5/pointwise").widths[3])
    assert macs.count(spec, narrower).macs < macs.count(spec, full).macs
    removed = full.with_layer("block5/pointwise", width=0)
    dw = macs.count(spec, full.with_layer("block5/depthwise", width=0))
    assert macs.count(spec, removed).macs < macs.count(spec, narrower).macs
    assert dw.macs < macs.count(spec, full).macs
