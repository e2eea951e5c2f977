"""Dense prediction in the spec (upsampling, skips with tied widths, a dense head) and the
FastDepth builder: published counts, the paper's Table 10 network, the errors bad specs get."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from conftest import randomize_non_kernel_weights
from fastdepth_helpers import table_10_arch
from macs_helpers import folded_params, keras_macs

from netadapt_tf import builders
from netadapt_tf.graphs.export import export_subnetwork, max_abs_diff
from netadapt_tf.search.units import apply_move, search_units
from netadapt_tf.space import macs
from netadapt_tf.space.arch import full_arch, random_arch, validate_arch
from netadapt_tf.space.spec import LayerSpec, NetworkSpec, PoolSpec, SkipSpec, UpsampleSpec
from netadapt_tf.supernet.network import build_supernet
from netadapt_tf.supernet.sampling import OrderedDropoutSampler

# FastDepth (Wofk et al. 2019), MobileNet-NNConv5(depthwise) with additive skips, unpruned:
# 0.74 GMACs and 3.93M weights; the pruned model has 0.37 GMACs (the repository's README).
PUBLISHED_MACS, PUBLISHED_PARAMS = 737e6, 3.93e6


@pytest.fixture(scope="module")
def tiny():
    """FastDepth at width 0.25 and 32 px, weights of order-one outputs."""
    spec = builders.build("fastdepth", input_size=32, width_multiplier=0.25)
    supernet = build_supernet(spec)
    randomize_non_kernel_weights(supernet, seed=3)
    return supernet


def test_full_network_matches_the_published_counts():
    spec = builders.build("fastdepth")
    counts = macs.count(spec, full_arch(spec))
    # Pinned: any change to the builder or the counter shows up.
    assert (counts.macs, counts.params) == (736_658_944, 3_947_009)
    assert abs(counts.macs / PUBLISHED_MACS - 1) < 0.01
    # Our parameters fold BN into one bias per filter; FastDepth's 3.93M are the
    # convolution weights alone (its convolutions have no bias): 3,933,088.
    filters = sum(layer.filters for layer in spec.layers())
    assert counts.params - filters == 3_933_088
    assert abs((counts.params - filters) / PUBLISHED_PARAMS - 1) < 0.01
    assert abs(counts.params / PUBLISHED_PARAMS - 1) < 0.01


def test_shape_and_t_per_resolution():
    spec = builders.build("fastdepth")
    assert spec.dense_channels == 1 and spec.num_classes is None
    t = {layer.name: layer.bypass_limit for layer in spec.layers()}
    # Table 10's T: 16/32/64/128/256 at 112/56/28/14/7, a decoder pointwise at the
    # resolution before its upsampling, the output without bypass.
    assert [t["stem"], t["block2/pointwise"], t["block4/pointwise"]] == [16, 32, 64]
    assert [t["block6/pointwise"], t["block12/pointwise"], t["decode1/pointwise"]] == [
        128,
        256,
        256,
    ]
    decoder = [t[f"decode{i}/pointwise"] for i in range(2, 6)]
    assert decoder == [128, 64, 32, 16] and t["output"] == 0
    assert spec.layer("decode1/depthwise").kernel_sizes == (3, 5)
    assert spec.tie_groups() == (
        ("block1/pointwise", "decode4/pointwise"),
        ("block3/pointwise", "decode3/pointwise"),
        ("block5/pointwise", "decode2/pointwise"),
    )
    assert spec.layer("block1/pointwise").widths == (32, 40, 48, 56, 64)
    assert spec.layer("decode2/pointwise").widths == (128, 160, 192, 224, 256)


def test_table_10_network_is_an_arch():
    # Table 10's decode5/depthwise keeps 28 of 64 filters, which the paper's nine widths
    # (multiples of 8) do not offer; every other width is among them. Seventeen widths per
    # layer (a finer ladder holding the nine) express the whole table.
    nine = builders.build("fastdepth")
    arch = table_10_arch(nine)
    with pytest.raises(ValueError, match=r"decode5/depthwise\.width: 28 is not allowed"):
        validate_arch(nine, arch)
    validate_arch(nine, arch.with_layer("decode5/depthwise", width=32))

    spec = builders.build("fastdepth", num_widths=17)
    arch = table_10_arch(spec)
    validate_arch(spec, arch)
    # The paper gives its latency (86.7 ms, Pixel 1), not its MACs: pinned as counted here.
    counts = macs.count(spec, arch)
    assert (counts.macs, counts.params) == (459_050_816, 2_059_057)


def test_table_10_network_exports_and_maps_images_to_depth():
    # Full widths (Table 10's are absolute), at 32 px so that it runs quickly.
    spec = builders.build("fastdepth", input_size=32, num_widths=17)
    supernet = build_supernet(spec)
    randomize_non_kernel_weights(supernet, seed=1)
    arch = table_10_arch(spec)
    model = export_subnetwork(supernet, arch)
    images = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype(np.float32)
    depth = np.asarray(model(images))
    assert depth.shape == (2, 32, 32, 1)
    assert np.max(np.abs(depth)) > 0.1 and np.max(np.std(depth, axis=0)) > 0.01
    assert max_abs_diff(supernet, model, arch, images) <= 1e-4 * np.max(np.abs(depth))
    counts = macs.count(spec, arch)
    assert (counts.macs, counts.params) == (keras_macs(model), folded_params(model))


def test_exported_subnetworks_map_a_batch_to_one_channel_maps(tiny):
    spec = tiny.spec
    rng = np.random.default_rng(4)
    images = rng.normal(size=(5, 32, 32, 3)).astype(np.float32)
    for arch in [random_arch(spec, rng) for _ in range(2)]:
        model = export_subnetwork(tiny, arch)
        depth = np.asarray(model(images, training=False))
        assert depth.shape == (5, 32, 32, 1)
        assert max_abs_diff(tiny, model, arch, images) <= 1e-4 * np.max(np.abs(depth))
        names = {layer.name for layer in model.layers}
        assert {"decode2__skip__add", "decode5__upsample"} <= names


def test_every_sampler_respects_the_tie(tiny):
    spec = tiny.spec
    rng = np.random.default_rng(0)
    for _ in range(20):
        arch = random_arch(spec, rng)
        validate_arch(spec, arch)
        for group in spec.tie_groups():
            assert len({arch.choice(name).width for name in group}) == 1
    sampled = OrderedDropoutSampler(spec).sample(32, tf.constant([0, 1], tf.int64))
    widths = np.asarray(sampled["widths"])
    column = {name: j for j, name in enumerate(spec.layer_names())}
    for source, target in spec.tie_groups():
        np.testing.assert_array_equal(widths[:, column[source]], widths[:, column[target]])
        assert len(set(widths[:, column[source]])) > 1  # still searched
    units = {unit.name: unit for unit in search_units(spec)}
    unit = units["skip:block3/pointwise"]
    assert unit.layers == ("block3/pointwise", "decode3/pointwise")
    moved = apply_move(spec, unit, full_arch(spec), "width")
    validate_arch(spec, moved)
    assert moved.choice("decode3/pointwise").width == spec.layer("block3/pointwise").widths[-2]


def test_an_arch_breaking_the_tie_is_refused():
    spec = builders.build("fastdepth", input_size=32, width_multiplier=0.25)
    arch = full_arch(spec).with_layer("block5/pointwise", width=48)
    with pytest.raises(ValueError) as error:
        validate_arch(spec, arch)
    assert str(error.value) == (
        "decode2/skip: block5/pointwise.width 48 and decode2/pointwise.width 64 differ; the "
        "skip ties them, so a sub-network gives both the same width"
    )


# Bad specs --------------------------------------------------------------------------------


def _conv(name, filters, strides=1, widths=None, bypass_limit=0, kind="conv"):
    return LayerSpec(
        name,
        kind,
        filters,
        widths or (filters,),
        kernel_size=3 if kind == "conv" else 1,
        strides=strides,
        bypass_limit=bypass_limit,
    )


def _dense(nodes, **kw):
    return NetworkSpec("n", 8, tuple(nodes), dense_channels=1, **kw)


def _net(middle):
    """stem (8x8 -> 4x4) ... then upsample and the 1-channel output at 8x8."""
    return [
        _conv("a", 8, strides=2),
        *middle,
        UpsampleSpec("up"),
        _conv("out", 1, kind="pointwise"),
    ]


def test_a_valid_small_dense_spec_round_trips():
    nodes = [
        _conv("a", 8),
        _conv("b", 8, strides=2),
        UpsampleSpec("up"),
        SkipSpec("skip", "a", "b"),
        _conv("out", 1, kind="pointwise"),
    ]
    spec = _dense(nodes)
    again = NetworkSpec.from_json(spec.to_json())
    assert again == spec and again.fingerprint() == spec.fingerprint()
    assert spec.to_json()["nodes"][3] == {
        "type": "skip",
        "name": "skip",
        "source": "a",
        "target": "b",
    }


@pytest.mark.parametrize(
    "nodes, message",
    [
        (
            [_conv("a", 8), _conv("b", 8, strides=2), SkipSpec("skip", "a", "b")],
            r"^skip: adds 'a' \(8x8\) to 'b' \(4x4 at the skip\); a skip joins tensors of one "
            r"resolution$",
        ),
        (
            [_conv("a", 8), _conv("b", 8, widths=(4, 8), bypass_limit=0), SkipSpec("s", "a", "b")],
            r"^s: widths of 'a' \[8\] and of 'b' \[4, 8\] differ; a skip ties the widths of the "
            r"layers it joins, so they must offer the same widths$",
        ),
        (
            [
                _conv("a", 8, widths=(0, 4, 8), bypass_limit=4),
                _conv("b", 8, widths=(0, 4, 8), bypass_limit=4),
                SkipSpec("s", "a", "b"),
            ],
            r"^a\.bypass_limit: 4 is not allowed for a layer joined by skip 's'; allowed: 0 or "
            r"at most its smallest width 0",
        ),
        (
            [_conv("a", 8), _conv("b", 8), _conv("c", 8), SkipSpec("s", "a", "b")],
            r"^s\.target: 'b' is not allowed; allowed: the conv or pointwise layer right before "
            r"the skip \(only upsample nodes may lie between\), here 'c'$",
        ),
        (
            [_conv("a", 8), SkipSpec("s", "nope", "a")],
            r"^s\.source: 'nope' is not allowed; allowed: a conv or pointwise layer of its own",
        ),
        (
            [_conv("a", 4), _conv("b", 8), SkipSpec("s", "a", "b")],
            r"^s: adds 'a' \(4 channels\) to 'b' \(8 channels\); a skip joins tensors of one",
        ),
    ],
)
def test_bad_skips_name_the_field_value_and_allowed(nodes, message):
    with pytest.raises(ValueError, match=message):
        NetworkSpec("n", 8, tuple(nodes))


def test_an_upsample_in_a_classification_head_is_refused():
    fc = LayerSpec("fc", "fc", 10, (10,), batch_norm=False, use_bias=True, activation="linear")
    nodes = (_conv("a", 8), PoolSpec(), UpsampleSpec("up"), fc)
    with pytest.raises(ValueError) as error:
        NetworkSpec("n", 8, nodes, num_classes=10)
    assert str(error.value) == (
        "up: upsample after the global pool; the classification head allows only "
        "'pointwise' and 'fc' layers"
    )


def test_bad_dense_heads_are_refused():
    _dense(_net([]))  # the valid one
    with pytest.raises(ValueError, match=r"^n: the dense output is 4x4 but the input is 8x8; "):
        _dense(_net([])[:1] + _net([])[2:])
    wide = dataclasses.replace(_net([])[-1], name="out", filters=2, widths=(2,))
    with pytest.raises(ValueError, match=r"^out: filters 2, widths \[2\], bypass_limit 0; the "):
        _dense(_net([])[:2] + [wide])
    with pytest.raises(ValueError, match=r"^pool: a global pool in a dense-prediction network"):
        _dense([_conv("a", 8), PoolSpec(), _conv("out", 1, kind="pointwise")])
    with pytest.raises(ValueError, match=r"num_classes 3 and dense_channels 1 are both set"):
        fc = LayerSpec("fc", "fc", 3, (3,), batch_norm=False, use_bias=True)
        _dense([_conv("a", 8), PoolSpec(), fc], num_classes=3)


def test_builder_options_are_checked_before_any_work():
    with pytest.raises(ValueError, match=r"^input_size: 100 is not allowed for fastdepth; allow"):
        builders.build("fastdepth", input_size=100)
    with pytest.raises(ValueError, match=r"^num_classes: 10 is not allowed for fastdepth"):
        builders.build("fastdepth", num_classes=10)
    spec = builders.build("fastdepth", input_size=64, width_multiplier=0.5)
    again = builders.rebuild(dict(spec.origin), spec.input_size, spec.num_classes)
    assert again.fingerprint() == spec.fingerprint()
