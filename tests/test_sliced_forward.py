"""The sliced forward equals the masked super-network and the exported model, in one trace."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import per_builder, randomize_non_kernel_weights
from training_helpers import tiny_data

from netadapt_tf import builders
from netadapt_tf.graphs.export import export_subnetwork
from netadapt_tf.judge.evaluation import SubnetEvaluator
from netadapt_tf.judge.sliced_forward import SlicedForward, arch_sizes
from netadapt_tf.space.arch import full_arch, random_arch, smallest_arch
from netadapt_tf.space.spec import BlockSpec
from netadapt_tf.supernet.network import arch_inputs, build_supernet

BUILDERS = (
    "mobilenet_v1",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "netadaptv2_mobilenet_v3",
    "fastdepth",
)
_SUPERNETS = {}


def tiny_size(name):
    """16 px; 32 for FastDepth, whose encoder halves its input five times."""
    return 32 if name in builders.DENSE_BUILDERS else 16


def tiny_supernet(name):
    """Width 0.25, 16 px, 4 classes (FastDepth: 32 px, a depth map), random BN statistics
    (built once per module)."""
    if name not in _SUPERNETS:
        dense = name in builders.DENSE_BUILDERS
        spec = builders.build(
            name,
            input_size=tiny_size(name),
            num_classes=None if dense else 4,
            width_multiplier=0.25,
        )
        model = build_supernet(spec)
        randomize_non_kernel_weights(model, seed=len(_SUPERNETS))
        _SUPERNETS[name] = model
    return _SUPERNETS[name]


def assert_close(got, want, err_msg=""):
    """Equal within 1e-4 of the largest output: float32 rounding, on outputs of order one
    to twenty (the masked and sliced graphs sum in different orders; CI's machine measured
    2.3e-5 of the largest output for netadaptv2_mobilenet_v3, so 1e-5 was too tight). A wrong
    mask or slice moves outputs by a sizeable fraction of their scale, far above this bound."""
    atol = 1e-4 * max(1.0, float(np.max(np.abs(want))))
    np.testing.assert_allclose(got, want, rtol=0, atol=atol, err_msg=err_msg)


def extreme_archs(spec):
    """A middle layer at width 0 (a pure bypass) and a whole block at width 0 (for residual
    blocks: removed; MobileNetV1 and FastDepth have none, so their block is the first
    depthwise/pointwise pair from block 3 on that may keep no filter: FastDepth's block 3 is
    tied to a skip)."""
    layer = [x for x in spec.layers() if 0 in x.widths and x.bypass_limit > 0 and x.kind != "se"][
        len(spec.layer_names()) // 4
    ]
    blocks = [n for n in spec.nodes if isinstance(n, BlockSpec) and n.residual]
    pairs = (
        [f"block{i}/depthwise", f"block{i}/pointwise"]
        for i in range(3, 14)
        if 0 in spec.layer(f"block{i}/pointwise").widths
    )
    names = [x.name for x in blocks[0].layers] if blocks else next(pairs)
    full = full_arch(spec)
    return [
        full.with_layer(layer.name, width=0),
        full.with_choices({n: {"width": 0} for n in names}),
    ]


@pytest.mark.parametrize("name", per_builder(BUILDERS))
def test_sliced_forward_equals_the_masked_supernet_and_the_export(name):
    supernet = tiny_supernet(name)
    spec = supernet.spec
    rng = np.random.default_rng(7)
    archs = [full_arch(spec), smallest_arch(spec), *extreme_archs(spec)]
    archs += [random_arch(spec, rng) for _ in range(4)]
    size = tiny_size(name)
    images = rng.normal(size=(3, size, size, 3)).astype(np.float32)
    inputs = arch_inputs(spec, [a for a in archs for _ in images])
    inputs["image"] = np.concatenate([images] * len(archs))
    masked = np.asarray(supernet(inputs, training=False)).reshape(len(archs), len(images), -1)
    sliced = SlicedForward(supernet)
    for i, arch in enumerate(archs):
        # Flattened per image: logits, or a depth map.
        got = np.asarray(sliced.logits(images, sliced.sizes(arch))).reshape(len(images), -1)
        assert_close(got, masked[i], err_msg=f"arch {i}")
        if i == 3:  # a whole block at 0
            exported = np.asarray(export_subnetwork(supernet, arch)(images, training=False))
            exported = exported.reshape(len(images), -1)
            assert_close(got, exported, err_msg=f"arch {i}")
    assert sliced.traces == 1  # one graph for every arch


def test_sizes_follow_the_resolved_subnetwork():
    spec = tiny_supernet("mobilenet_v2").spec
    arch = full_arch(spec).with_layer("block2/expansion", width=6)
    sizes = arch_sizes(spec, arch)
    assert sizes.shape == (len(spec.layer_names()), 4) and sizes.dtype == np.int32
    row = sizes[spec.layer_names().index("block2/expansion")]
    # 8 input channels, 6 filters kept, channels [6, 8) bypassed (T = 8), 1x1.
    np.testing.assert_array_equal(row, [8, 6, 2, 1])
    depthwise = sizes[spec.layer_names().index("block2/depthwise")]
    np.testing.assert_array_equal(depthwise[:3], [8, 8, 0])  # min(M, C) filters


def test_fast_evaluator_gives_the_masked_accuracies_and_recalibration():
    supernet = tiny_supernet("mobilenet_v1")
    spec = supernet.spec
    held_out, train = tiny_data(40, seed=9), tiny_data(32, seed=4)
    options = {"batch_size": 16, "recalibration_data": train, "recalibration_batches": 2}
    masked = SubnetEvaluator(supernet, held_out, **options)
    fast = SubnetEvaluator(supernet, held_out, fast=True, **options)
    sliced = fast.sliced
    rng = np.random.default_rng(5)
    archs = [full_arch(spec), smallest_arch(spec), *extreme_archs(spec)]
    archs += [random_arch(spec, rng) for _ in range(3)]
    for arch in archs:
        assert fast.accuracy(arch, recalibrate=False) == masked.accuracy(arch, recalibrate=False)
    for arch in archs[-2:]:  # recalibrated: equal up to an image on a decision boundary
        assert fast.accuracy(arch) == pytest.approx(masked.accuracy(arch), abs=1 / 40 + 1e-9)
    assert fast.traces == 3  # forward, forward with given statistics, batch statistics

    # The sliced estimate equals what the masked path writes into the BN variables.
    sizes = sliced.sizes(archs[-1])
    estimate = np.asarray(sliced.recalibrated_statistics(fast.recal_batches, sizes))
    with masked.recalibrated(archs[-1]):
        for name, (offset, _) in sliced.slots.items():
            width = int(sizes[sliced.row[name], 1])
            bn = supernet.super_layers[name].bn
            for k, variable in enumerate((bn.moving_mean, bn.moving_variance)):
                np.testing.assert_allclose(
                    estimate[k, offset : offset + width],
                    variable.numpy()[:width],
                    rtol=1e-3,
                    atol=1e-4,
                    err_msg=f"{name} {('mean', 'variance')[k]}",
                )

    # One batch's statistics are the moments of the BN input; the missing channels are 0.
    images = fast.recal_batches[0]
    stats = np.asarray(sliced.batch_statistics(images, sizes))
    offset, full = sliced.slots["stem"]
    width = int(sizes[sliced.row["stem"], 1])
    conv = np.asarray(supernet.super_layers["stem"].conv(images))[..., :width]
    np.testing.assert_allclose(stats[0, offset : offset + width], conv.mean((0, 1, 2)), atol=1e-5)
    np.testing.assert_allclose(stats[1, offset : offset + width], conv.var((0, 1, 2)), atol=1e-4)
    np.testing.assert_array_equal(stats[:, offset + width : offset + full], 0)
    assert stats.shape == (2, sliced.statistics_size)
    assert sliced.traces == 3 and tf.executing_eagerly()
