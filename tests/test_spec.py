"""The architecture description: JSON round trips and the errors bad input gets."""

import json
import math

import numpy as np
import pytest
from conftest import small_spec

from netadapt_tf import builders
from netadapt_tf.common.strict_json import RecordError
from netadapt_tf.space.arch import (
    Arch,
    full_arch,
    load_arch,
    random_arch,
    save_arch,
    smallest_arch,
    validate_arch,
)
from netadapt_tf.space.spec import BlockSpec, LayerSpec, NetworkSpec, PoolSpec, uniform_widths


@pytest.mark.parametrize("name", sorted(builders.BUILDERS))
def test_network_spec_json_round_trip(name):
    spec = builders.build(name)
    text = json.dumps(spec.to_json())
    again = NetworkSpec.from_json(json.loads(text))
    assert again == spec
    assert again.fingerprint() == spec.fingerprint()


def test_rebuild_from_origin_gives_the_same_spec():
    spec = small_spec("netadaptv2_mobilenet_v3")
    again = builders.rebuild(dict(spec.origin), spec.input_size, spec.num_classes)
    assert again.fingerprint() == spec.fingerprint()


def test_paper_default_widths():
    assert uniform_widths(16) == (0, 2, 4, 6, 8, 10, 12, 14, 16)
    assert len(uniform_widths(1024)) == 9 and uniform_widths(1024)[1] == 128
    assert uniform_widths(40, 11) == tuple(range(0, 41, 4))


def test_paper_initial_network_matches_appendix_a1():
    spec = builders.build("netadaptv2_mobilenet_v3")
    blocks = [n for n in spec.nodes if isinstance(n, BlockSpec)]
    assert len(blocks) == 17  # MobileNetV3-Large's 15 blocks and two more
    assert spec.layer("stem").bypass_limit == 8
    # T per output resolution, Table 8: 112 -> 8, 56 -> 16, 28 -> 32, 14 -> 64, 7 -> 128.
    limits = {b.name: b.expansion.bypass_limit for b in blocks}
    assert [limits[f"block{i}"] for i in (1, 2, 4, 8, 15, 17)] == [8, 16, 32, 64, 128, 128]
    assert all(b.depthwise.bypass_limit == math.inf for b in blocks)
    assert spec.layer("block4/depthwise").kernel_sizes == (3, 5, 7)  # MobileNetV3 5 -> 7
    assert spec.layer("block1/depthwise").kernel_sizes == (3, 5)
    for layer in spec.layers():
        if layer.kind != "fc":
            assert layer.filters & (layer.filters - 1) == 0, layer.name  # powers of 2
            assert len(layer.widths) == 9
    assert spec.layer("pre_logits").filters == 2048
    assert spec.layer("pre_logits").bypass_limit == 1024
    # Every stride-1 block of unchanged width is residual, with no projection bypass.
    for b in blocks:
        if b.residual:
            assert b.projection.bypass_limit == 0 and 0 in b.projection.widths


def _layer(**kw):
    base = dict(name="l", kind="conv", filters=8, widths=(4, 8), kernel_size=3)
    return LayerSpec(**{**base, **kw})


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"widths": (4, 12)}, r"l\.widths: \(4, 12\) must be integers between 0 and filters=8"),
        ({"widths": (8, 4)}, r"l\.widths: \(8, 4\) must be strictly increasing"),
        ({"kernel_size": 4}, r"l\.kernel_size: 4 is not allowed; allowed are odd sizes >= 1"),
        ({"kernel_sizes": (1, 3)}, r"several sizes, which only depthwise layers allow"),
        (
            {"kind": "depthwise", "kernel_sizes": (3, 5)},
            r"l\.kernel_sizes: \(3, 5\) is not allowed; allowed are odd sizes from 1 to 3",
        ),
        ({"bypass_limit": -1}, r"l\.bypass_limit: -1 is not allowed; allowed are 0\.\.inf"),
        ({"kind": "dense"}, r"l\.kind: 'dense' is not one of"),
        ({"strides": 3}, r"l\.strides: 3 is not one of \(1, 2\)"),
        ({"activation": "gelu"}, r"l\.activation: 'gelu' is not one of"),
    ],
)
def test_layer_errors_name_the_field_value_and_allowed(kw, message):
    with pytest.raises(ValueError, match=message):
        _layer(**kw)


def test_zero_width_without_bypass_is_rejected():
    layer = _layer(widths=(0, 4, 8))
    with pytest.raises(ValueError, match=r"l\.widths: width 0 is allowed but bypass_limit is 0"):
        NetworkSpec("n", 8, (layer,))


def test_mismatched_residual_is_rejected():
    dw = LayerSpec("b/depthwise", "depthwise", 8, (8,), kernel_size=3, bypass_limit=math.inf)
    proj = LayerSpec("b/projection", "projection", 16, (16,), activation="linear")
    block = BlockSpec("b", depthwise=dw, projection=proj, residual=True)
    stem = _layer(name="stem", widths=(8,))
    with pytest.raises(ValueError, match=r"b\.residual: the block's input has 8 channels but its"):
        NetworkSpec("n", 8, (stem, block))
    strided = LayerSpec("b/depthwise", "depthwise", 8, (8,), kernel_size=3, strides=2)
    with pytest.raises(ValueError, match=r"b\.residual: a residual block needs stride 1"):
        BlockSpec("b", depthwise=strided, projection=proj, residual=True)
    bypassing = LayerSpec("b/projection", "projection", 8, (8,), bypass_limit=4)
    with pytest.raises(ValueError, match=r"b/projection\.bypass_limit: 4 in a residual block"):
        BlockSpec("b", depthwise=dw, projection=bypassing, residual=True)


def test_depthwise_filters_must_match_input_channels():
    stem = _layer(name="stem", widths=(8,))
    dw = LayerSpec("dw", "depthwise", 16, (16,), kernel_size=3)
    with pytest.raises(ValueError, match=r"dw\.filters: 16, but a depthwise layer has one filter"):
        NetworkSpec("n", 8, (stem, dw))


def test_classifier_must_keep_all_classes():
    stem = _layer(name="stem", widths=(8,))
    fc = LayerSpec("fc", "fc", 10, (5, 10), batch_norm=False, use_bias=True)
    with pytest.raises(ValueError, match=r"fc\.widths: \(5, 10\); the classifier must keep all"):
        NetworkSpec("n", 8, (stem, PoolSpec(), fc), num_classes=10)


def test_malformed_spec_json_fields():
    spec = small_spec("mobilenet_v1").to_json()
    spec["nodes"][0]["bypass_limit"] = "lots"
    with pytest.raises(
        RecordError, match=r"nodes\[0\]\.bypass_limit: 'lots' is not allowed; allowed: an int"
    ):
        NetworkSpec.from_json(spec)
    spec = small_spec("mobilenet_v1").to_json()
    spec["nodes"][0]["colour"] = 1
    with pytest.raises(RecordError, match=r"nodes\[0\]: unknown fields \['colour'\]; allowed"):
        NetworkSpec.from_json(spec)
    with pytest.raises(RecordError, match=r"format: None is not allowed; allowed: 'netadapt_tf\."):
        NetworkSpec.from_json({"format": None, "name": "x", "input_size": 8, "nodes": []})
    spec = small_spec("mobilenet_v2").to_json()
    del spec["nodes"][1]["depthwise"]
    with pytest.raises(RecordError, match=r"nodes\[1\]: fields \['depthwise'\] are missing"):
        NetworkSpec.from_json(spec)
    spec = small_spec("mobilenet_v2").to_json()
    spec["nodes"][1]["depthwise"] = None
    with pytest.raises(RecordError, match=r"block1\.depthwise: a block needs a depthwise layer"):
        NetworkSpec.from_json(spec)
    spec = small_spec("mobilenet_v2").to_json()
    spec["nodes"][-2]["size"] = 3
    with pytest.raises(RecordError, match=r"nodes\[\d+\]: unknown fields \['size'\]"):
        NetworkSpec.from_json(spec)
    spec = small_spec("mobilenet_v2").to_json()
    spec["input_size"] = "32"
    with pytest.raises(RecordError, match=r"input_size: '32' is not allowed; allowed: an integer"):
        NetworkSpec.from_json(spec)
    # Booleans are not integers, though Python compares True == 1.
    spec = small_spec("mobilenet_v1").to_json()
    spec["nodes"][0]["widths"][1] = True
    with pytest.raises(RecordError, match=r"nodes\[0\]\.widths\[1\]: True is not allowed"):
        NetworkSpec.from_json(spec)
    with pytest.raises(ValueError, match=r"stem\.filters: True must be a positive integer"):
        LayerSpec("stem", "conv", True, (1,), kernel_size=3)


def test_arch_json_round_trip_and_sampling(tmp_path):
    spec = small_spec("mobilenet_v2")
    arch = random_arch(spec, np.random.default_rng(0))
    validate_arch(spec, arch)
    path = tmp_path / "arch.json"
    save_arch(arch, str(path))
    assert load_arch(str(path), spec) == arch
    assert random_arch(spec, np.random.default_rng(0)) == arch
    assert full_arch(spec).choice("block2/expansion").width == 48
    assert smallest_arch(spec).choice("block2/expansion").width == 0


def test_arch_errors():
    spec = small_spec("mobilenet_v1")
    arch = full_arch(spec)
    bad = arch.with_layer("block3/pointwise", width=5)
    with pytest.raises(ValueError, match=r"block3/pointwise\.width: 5 is not allowed; allowed wid"):
        validate_arch(spec, bad)
    bad = arch.with_layer("block3/depthwise", kernel_size=5)
    with pytest.raises(ValueError, match=r"block3/depthwise\.kernel_size: 5 is not allowed"):
        validate_arch(spec, bad)
    other = full_arch(small_spec("mobilenet_v2"))
    with pytest.raises(ValueError, match=r"made for super-network 'mobilenet_v2' .* not for 'mob"):
        validate_arch(spec, other)
    same_name = full_arch(small_spec("mobilenet_v1", width_multiplier=0.5))
    with pytest.raises(ValueError, match="fingerprint"):
        validate_arch(spec, same_name)


def test_malformed_arch_files(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"a\.json: malformed JSON"):
        load_arch(str(path))
    with pytest.raises(RecordError, match=r"missing\.json: no such file"):
        load_arch(str(tmp_path / "missing.json"))
    path.write_text(json.dumps({"format": "netadapt_tf.arch/1", "space": "x", "fingerprint": "y"}))
    with pytest.raises(RecordError, match=r"a\.json: arch: fields \['layers'\] are missing"):
        load_arch(str(path))
    data = {
        "format": "netadapt_tf.arch/1",
        "space": "x",
        "fingerprint": "y",
        "layers": {"stem": {"width": "8", "kernel_size": 3}},
    }
    with pytest.raises(RecordError, match=r"arch\.layers\['stem'\]\.width: '8' is not allowed"):
        Arch.from_json(data)
