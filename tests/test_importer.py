"""Importing a Keras functional model: exact parity of the imported full network, MACs and
parameters equal to the model's (and to the builders' and published figures), the masked
sub-networks of an imported super-network equal to their exports, the report, --pin, the
refusals, and --init_from of an import directory."""

import json
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import randomize_non_kernel_weights

from netadapt_tf import builders
from netadapt_tf.graphs.export import export_subnetwork, max_abs_diff
from netadapt_tf.importer.assemble import SearchOptions
from netadapt_tf.importer.model_import import import_model, load_keras_model, parity
from netadapt_tf.space import macs
from netadapt_tf.space.arch import full_arch, random_arch
from netadapt_tf.supernet.checkpoint import load_supernet

ROOT = pathlib.Path(__file__).resolve().parents[1]
L = keras.layers
TOLERANCE = 1e-5


def damped_weights(model, damping=0.5, seed=0):
    """Random BN scales, offsets, biases and statistics that fit the activations
    (conftest), then every BN scale times `damping`: the outputs stay of order one and
    depend on the image, and the network is no longer chaotic (with the full scales a
    MobileNetV3 at 32 px turns a change of 2e-7 in the input into 1e-4 in its outputs, so
    float32 rounding alone would fail a 1e-5 bound). MobileNetV2, deeper in plain ReLU6
    layers, needs no damping and loses the image under it (its outputs then depend on the
    image by 1e-7), so each test picks the damping that keeps both."""
    randomize_non_kernel_weights(model, seed)
    for w in model.weights:
        if w.path.endswith("gamma"):
            w.assign(np.asarray(w) * damping)


def hand_written(size=32, classes=10):
    """A MobileNetV3-style functional model: preprocessing, a nested Sequential, keras.ops
    hard swish, SE gate with the composite hard sigmoid, residual add, ZeroPadding2D, a
    grouped Conv2D as depthwise, Dropout, Dense head."""
    inputs = keras.Input((size, size, 3))
    x = L.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = L.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="stem")(x)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = L.Multiply(name="stem_hswish")([x, L.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)])
    # block 1: expansion, depthwise (grouped conv), SE, projection; residual
    y = L.Conv2D(32, 1, use_bias=False, name="b1_expand")(x)
    y = L.BatchNormalization(name="b1_expand_bn")(y)
    y = L.ReLU(name="b1_relu")(y)
    y = L.Conv2D(32, 3, padding="same", groups=32, use_bias=False, name="b1_dw")(y)
    y = L.BatchNormalization(name="b1_dw_bn")(y)
    y = L.Activation("relu6", name="b1_dw_act")(y)
    s = L.GlobalAveragePooling2D(keepdims=True, name="b1_se_pool")(y)
    s = L.Conv2D(8, 1, activation="relu", name="b1_se_squeeze")(s)
    s = L.Conv2D(32, 1, name="b1_se_excite")(s)
    s = L.ReLU(6.0)(s + 3.0) * (1.0 / 6.0)
    y = L.Multiply(name="b1_se")([y, s])
    y = L.Conv2D(16, 1, use_bias=False, name="b1_project")(y)
    y = L.BatchNormalization(name="b1_project_bn")(y)
    y = L.Dropout(0.1, name="b1_drop")(y)
    x = L.Add(name="b1_add")([x, y])
    # block 2 (nested Sequential): strided depthwise with explicit padding, projection
    x = L.Conv2D(48, 1, use_bias=False, name="b2_expand")(x)
    x = L.BatchNormalization(name="b2_expand_bn")(x)
    x = L.Activation("hard_swish", name="b2_expand_act")(x)
    nested = keras.Sequential(
        [
            keras.Input((size // 2, size // 2, 48)),
            L.ZeroPadding2D(((0, 1), (0, 1)), name="pad"),
            L.DepthwiseConv2D(3, strides=2, use_bias=False, name="dw"),
            L.BatchNormalization(name="dw_bn"),
            L.ReLU(name="relu"),
        ],
        name="b2_inner",
    )
    x = nested(x)
    x = L.Conv2D(24, 1, use_bias=False, name="b2_project")(x)
    x = L.BatchNormalization(name="b2_project_bn")(x)
    x = L.Conv2D(64, 1, use_bias=False, name="last_conv")(x)
    x = L.BatchNormalization(name="last_bn")(x)
    x = L.Activation("swish", name="last_act")(x)
    x = L.GlobalAveragePooling2D(name="pool")(x)
    x = L.Dropout(0.2, name="head_drop")(x)
    outputs = L.Dense(classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="hand_written")


def _images(size, n=4, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def _check_import(model, name, size, damping=0.5):
    damped_weights(model, damping)
    result = import_model(model, name)
    # images whose preprocessed values are standard normal, whatever the model's scaling
    z = np.random.default_rng(0).standard_normal((4, size, size, 3))
    images = ((z - result.mapped.offset) / result.mapped.scale).astype("float32")
    out = np.asarray(model(images, training=False))
    assert 0.05 < np.max(np.abs(out)) < 100  # outputs of order one ...
    assert np.max(np.std(out, axis=0)) > 1e-3 * np.max(np.abs(out))  # ... that see the image
    assert parity(result, model, images) <= TOLERANCE
    assert result.counts == result.keras_counts
    # a masked sub-network of the imported super-network equals its physically pruned export
    pre = result.preprocess(images)
    rng = np.random.default_rng(3)
    for _ in range(2):
        arch = random_arch(result.spec, rng)
        exported = export_subnetwork(result.supernet, arch)
        scale = np.max(np.abs(np.asarray(exported(pre))))
        assert max_abs_diff(result.supernet, exported, arch, pre) <= 1e-4 * max(scale, 1.0)
    return result


def test_hand_written_model_imports_exactly_with_its_report():
    model = hand_written()
    result = _check_import(model, "hand_written", 32)
    spec = result.spec
    assert [n.name for n in spec.nodes] == [
        "stem",
        "block1",
        "block2",
        "last_conv",
        "pool",
        "logits",
    ]
    block1 = spec.nodes[1]
    assert block1.residual and block1.se.filters == 8 and block1.depthwise.activation == "relu6"
    assert spec.layer("stem").activation == "hard_swish"
    assert spec.layer("block2/depthwise").kernel_sizes == (3,)
    assert spec.layer("logits").dropout == pytest.approx(0.2)
    report = result.report()
    paths = [row["path"] for row in report["layers"]]
    assert "b2_inner/dw" in paths and "b1_se_excite" in paths
    assert len(paths) == len(result.mapped.classes)
    rows = {row["path"]: row for row in report["layers"]}
    assert rows["b2_inner/dw"]["node"] == "block2/depthwise"
    assert rows["rescaling"]["node"].startswith("preprocessing")
    assert report["pinned"]["logits"] == "the classifier's outputs are the classes"
    np.testing.assert_allclose(report["preprocessing"]["scale"], [1 / 127.5] * 3)


def test_pin_keeps_a_layer_at_full_width():
    model = hand_written()
    result = import_model(model, "h", SearchOptions(pin=("b1_project",)), weights=False)
    layer = result.spec.layer("block1/projection")
    assert layer.widths == (16,) and layer.bypass_limit == 0
    assert result.report()["pinned"]["block1/projection"] == "--pin=b1_project"
    assert len(result.spec.layer("block1/expansion").widths) == 9


@pytest.mark.parametrize(
    "name, options, damping",
    [("MobileNetV2", {"alpha": 0.35}, 1.0), ("MobileNetV3Small", {"alpha": 0.75}, 0.7)],
)
def test_keras_applications_import_exactly(name, options, damping):
    model = getattr(keras.applications, name)(
        input_shape=(32, 32, 3), weights=None, classes=10, classifier_activation=None, **options
    )
    _check_import(model, name, 32, damping)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, options, damping",
    [
        ("MobileNet", {"alpha": 0.25}, 1.0),
        ("MobileNetV3Large", {}, 0.7),
        ("MobileNetV3Large", {"minimalistic": True}, 0.7),
        ("MobileNetV3Large", {"alpha": 0.75}, 0.7),
        ("MobileNetV3Small", {"minimalistic": True}, 0.7),
    ],
)
def test_more_keras_applications_import_exactly(name, options, damping):
    model = getattr(keras.applications, name)(
        input_shape=(32, 32, 3), weights=None, classes=10, classifier_activation=None, **options
    )
    _check_import(model, name, 32, damping)


# name, options, MACs, BN-folded params (ours), published (MACs, params), builder equal
PUBLISHED = [
    ("MobileNet", {}, 568_740_352, 4_221_032, (569e6, 4.2e6), "mobilenet_v1"),
    ("MobileNetV2", {}, 300_774_272, 3_487_816, (300e6, 3.4e6), "mobilenet_v2"),
    ("MobileNetV3Large", {}, 216_589_760, 5_470_832, (219e6, 5.4e6), "mobilenet_v3_large"),
    ("MobileNetV3Small", {}, 56_510_400, 2_536_800, (56e6, 2.5e6), None),
    ("MobileNetV3Large", {"minimalistic": True}, 209_136_704, 3_912_088, (209e6, 3.9e6), None),
    ("MobileNetV3Large", {"alpha": 0.75}, 154_560_624, 3_983_984, (155e6, 4.0e6), None),
]


@pytest.mark.parametrize("name, options, mac, params, published, builder", PUBLISHED)
def test_counts_at_224_match_the_published_figures(name, options, mac, params, published, builder):
    model = getattr(keras.applications, name)(
        input_shape=(224, 224, 3), weights=None, classifier_activation=None, **options
    )
    result = import_model(model, name, weights=False)
    assert (result.counts.macs, result.counts.params) == (mac, params)
    assert result.keras_counts == result.counts
    # count_params() holds BN's four values per channel; folded, one bias per channel remains
    bn = sum(int(np.size(w)) for w in model.weights if "moving_mean" in w.path)
    assert model.count_params() - 3 * bn == params
    assert abs(mac - published[0]) / published[0] < 0.015
    assert abs(params - published[1]) / published[1] < 0.03
    if builder:
        assert macs.count(builders.build(builder), full_arch(builders.build(builder))) == (
            result.counts
        )


def test_efficientnet_is_refused_by_name():
    model = keras.applications.EfficientNetB0(
        input_shape=(32, 32, 3), weights=None, classes=10, classifier_activation=None
    )
    with pytest.raises(ValueError, match=r"block1a_se_expand \(Conv2D\): an SE gate of sigmoid"):
        import_model(model, "EfficientNetB0", weights=False)


def _with_nan(model):
    w = model.get_layer("logits").bias
    w.assign(np.full(w.shape, np.nan, np.float32))
    return model


def test_refusals_name_the_layer_and_why():
    inputs = keras.Input((16, 16, 3))
    inner = keras.Sequential([keras.Input((16, 16, 3)), L.Lambda(lambda t: t * 2, name="twice")])
    x = L.Conv2D(8, 3, padding="same", name="c")(inner(inputs))
    x = L.GlobalAveragePooling2D()(x)
    lam = keras.Model(inputs, L.Dense(4)(x))
    with pytest.raises(ValueError, match=r"sequential\w*/twice \(Lambda\): a Lambda layer"):
        import_model(lam, "m", weights=False)
    soft = keras.applications.MobileNetV2(input_shape=(32, 32, 3), weights=None, classes=10)
    with pytest.raises(ValueError, match=r"predictions \(Dense\): the output is already a softmax"):
        import_model(soft, "m", weights=False)
    with pytest.raises(ValueError, match=r"logits/bias: 10 of its 10 values are NaN"):
        import_model(_with_nan(hand_written()), "m", weights=False)
    shared = L.Conv2D(3, 3, padding="same", name="shared")
    inputs = keras.Input((16, 16, 3))
    x = shared(shared(inputs))
    model = keras.Model(inputs, L.Dense(2)(L.GlobalAveragePooling2D()(x)))
    with pytest.raises(ValueError, match=r"shared \(Conv2D\): called 2 times \(a shared layer\)"):
        import_model(model, "m", weights=False)
    inputs = keras.Input((16, 16, 3))
    x = L.MaxPooling2D(name="maxpool")(L.Conv2D(4, 3, padding="same")(inputs))
    model = keras.Model(inputs, L.Dense(2)(L.GlobalAveragePooling2D()(x)))
    with pytest.raises(ValueError, match=r"maxpool \(MaxPooling2D\): this layer class"):
        import_model(model, "m", weights=False)

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match=r"\(Subclassed\): a subclassed model has no graph"):
        import_model(Subclassed(name="mine"), "m", weights=False)


def test_loading_refuses_bad_files_and_asks_for_an_input_size(tmp_path):
    bad = tmp_path / "bad.keras"
    bad.write_text("not a model")
    with pytest.raises(ValueError, match=r"is not a Keras model"):
        load_keras_model(str(bad))
    with pytest.raises(ValueError, match=r"H5 file or a SavedModel"):
        load_keras_model(str(tmp_path / "model.h5"))
    inputs = keras.Input((None, None, 3))
    x = L.GlobalAveragePooling2D()(L.Conv2D(4, 3, padding="same", name="c")(inputs))
    free = keras.Model(inputs, L.Dense(2)(x))
    path = str(tmp_path / "free.keras")
    free.save(path)
    with pytest.raises(ValueError, match=r"has no fixed input size .* pass --input_size"):
        load_keras_model(path)
    model = load_keras_model(path, input_size=16)
    assert tuple(model.inputs[0].shape) == (None, 16, 16, 3)
    np.testing.assert_array_equal(model.get_layer("c").kernel, free.get_layer("c").kernel)


def _tool(*args):
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / "import_model.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


@pytest.mark.slow  # two tool processes end to end
def test_tool_writes_a_checkpoint_that_init_from_reads(tmp_path):
    model = hand_written()
    damped_weights(model)
    path = str(tmp_path / "user.keras")
    model.save(path)
    out = tmp_path / "imported"
    run = _tool(f"--model={path}", f"--output={out}", "--json", "--pin=last_conv")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    for key in ("macs", "params", "relative_diff", "search_units", "pinned"):
        assert key in report
    assert report["relative_diff"] <= TOLERANCE
    assert report["pinned"]["last_conv"] == "--pin=last_conv"
    assert sorted(p.name for p in out.iterdir()) == [
        "import_report.json",
        "import_report.md",
        "spec.json",
        "supernet.weights.h5",
    ]
    supernet = load_supernet(out)
    images = _images(32)
    exported = export_subnetwork(supernet, full_arch(supernet.spec))
    pre = (images / 127.5 - 1).astype("float32")
    want = np.asarray(model(images))
    assert np.max(np.abs(np.asarray(exported(pre)) - want)) <= TOLERANCE * np.max(np.abs(want))
    # the super-network trainer starts from the import (TrainConfig.init_from a directory)
    from training_helpers import tiny_data

    from netadapt_tf.training.supernet_trainer import SupernetTrainer, TrainConfig

    config = TrainConfig(epochs=1, steps_per_epoch=1, batch_size=8, init_from=str(out))
    data = tiny_data(16)
    trainer = SupernetTrainer(
        supernet.spec, data, data, 16, config, str(tmp_path / "run"), log=lambda *a: None
    )
    for mine, theirs in zip(trainer.model.weights, supernet.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))
    # bad input: a clear error and nothing written
    soft = tmp_path / "soft.keras"
    keras.applications.MobileNetV2(input_shape=(32, 32, 3), weights=None, classes=10).save(soft)
    run = _tool(f"--model={soft}", f"--output={tmp_path / 'nothing'}")
    assert run.returncode == 1 and "already a softmax" in run.stderr
    assert not (tmp_path / "nothing").exists()
