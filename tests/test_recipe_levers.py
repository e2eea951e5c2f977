"""The super-network recipe's levers for small budgets: correlated per-image widths, the full
network and in-place distillation in the same pass, the warm start, tied depthwise widths
and cumulative BN recalibration."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import randomize_non_kernel_weights
from training_helpers import shallow_spec, tiny_data, tiny_spec

from netadapt_tf import builders
from netadapt_tf.graphs.export import export_subnetwork
from netadapt_tf.judge.evaluation import SubnetEvaluator
from netadapt_tf.search.units import search_units
from netadapt_tf.space import macs
from netadapt_tf.space.arch import full_arch, random_arch
from netadapt_tf.space.subnet import resolve
from netadapt_tf.supernet.network import arch_inputs, build_supernet
from netadapt_tf.supernet.sampling import OrderedDropoutSampler, SamplingConfig, balanced_indices
from netadapt_tf.training.supernet_trainer import SupernetTrainer, TrainConfig


def _index_rows(spec, widths):
    """[batch, layers] index of each width within its layer's options."""
    layers = list(spec.layers())
    return np.stack(
        [np.searchsorted(layer.widths, widths[:, j]) for j, layer in enumerate(layers)], 1
    )


def _sample(config, batch=64, step=0, floor=None, spec=None):
    spec = spec or tiny_spec()
    rows = OrderedDropoutSampler(spec, config).sample(
        batch, tf.constant([3, step], tf.int64), floor
    )
    return spec, rows["widths"].numpy()


def _balanced(spec, widths, floor=0.0):
    for j, layer in enumerate(spec.layers()):
        offered = [w for w in layer.widths if w >= floor * layer.widths[-1] - 1e-6]
        counts = np.array([(widths[:, j] == w).sum() for w in offered])
        assert counts.sum() == len(widths) and counts.max() - counts.min() <= 1, layer.name


def test_independent_draws_are_the_papers_balanced_permutation():
    spec, widths = _sample(SamplingConfig(), batch=40)
    seed = tf.random.experimental.stateless_fold_in(tf.constant([3, 0], tf.int64), 0)
    first = next(iter(spec.layers()))
    expected = np.asarray(first.widths)[balanced_indices(len(first.widths), 40, seed).numpy()]
    np.testing.assert_array_equal(widths[:, 0], expected)


@pytest.mark.parametrize("rho, free", [(0.5, 0.0), (1.0, 0.0), (1.0, 0.25), (0.8, 0.1)])
def test_correlated_draws_keep_every_width_equally_used(rho, free):
    spec, widths = _sample(SamplingConfig(width_correlation=rho, free_layer_probability=free))
    _balanced(spec, widths)
    spec, widths = _sample(SamplingConfig(width_correlation=rho), batch=45, floor=0.5)
    _balanced(spec, widths, floor=0.5)


def test_full_correlation_gives_each_image_one_width_fraction():
    spec, widths = _sample(SamplingConfig(width_correlation=1.0), batch=90)
    index = _index_rows(spec, widths)
    nine = [j for j, layer in enumerate(spec.layers()) if len(layer.widths) == 9]
    assert len(nine) > 5
    for j in nine:  # layers with the same ladder give every image the same rung
        np.testing.assert_array_equal(index[:, j], index[:, nine[0]])
    assert len(set(index[:, nine[0]])) == 9


def test_correlation_grows_with_rho_and_free_layers_break_it():
    def agreement(config):
        spec, widths = _sample(config, batch=513, step=5)  # 57 per width: no odd ones
        index = _index_rows(spec, widths)
        nine = [j for j, layer in enumerate(spec.layers()) if len(layer.widths) == 9]
        a, b = index[:, nine[1]], index[:, nine[-1]]
        same = float(np.mean(a == b))
        return np.corrcoef(a, b)[0, 1], same

    r0, _ = agreement(SamplingConfig())
    r5, _ = agreement(SamplingConfig(width_correlation=0.5))
    r1, same1 = agreement(SamplingConfig(width_correlation=1.0))
    rf, samef = agreement(SamplingConfig(width_correlation=1.0, free_layer_probability=0.3))
    assert abs(r0) < 0.15 and 0.3 < r5 < 0.7 and r1 == pytest.approx(1.0) and same1 == 1.0
    # A pair of layers agrees unless either is free: about (1 - 0.3)^2 of the images.
    assert 0.4 < samef < 0.65 and 0.3 < rf < 0.9


def test_sampling_settings_are_checked():
    with pytest.raises(ValueError, match=r"sampling\.width_correlation: 1\.5 must be in \[0, 1\]"):
        SamplingConfig(width_correlation=1.5)
    with pytest.raises(TypeError, match=r"sampling\.free_layer_probability: True is not a numb"):
        SamplingConfig(free_layer_probability=True)
    with pytest.raises(ValueError, match=r"train\.warm_start_steps: -1 must be >= 0"):
        TrainConfig(warm_start_steps=-1)
    with pytest.raises(ValueError, match=r"sampling\.width_correlation: -0\.1"):
        TrainConfig(width_correlation=-0.1)


# -- the step -----------------------------------------------------------------------------

CONFIG = {
    "epochs": 1,
    "steps_per_epoch": 1,
    "batch_size": 16,
    "ema_decay": 0.0,
    "weight_decay": 0.0,
    "monitor_archs": 0,
    "max_eval_examples": 32,
    "eval_batch_size": 32,
    "bn_momentum": 0.5,
    "width_correlation": 0.7,
}


def _trainer(workdir, **overrides):
    data = tiny_data(96)
    config = TrainConfig(**{**CONFIG, **overrides})
    trainer = SupernetTrainer(
        shallow_spec(), data.take(64), data.skip(64), 64, config, str(workdir), log=lambda *a: None
    )
    trainer.progress = False
    return trainer


def _first_batch(trainer):
    return next(iter(trainer._epoch_data(0, 0)))


def _expected_loss(trainer, batch, full_network, distill):
    """The step's loss computed by hand from the super-network before the update."""
    images, labels = batch
    rows, paired = trainer._rows(tf.shape(images)[0], tf.constant(0, tf.int64), False)
    assert paired
    n = int(images.shape[0])
    np.testing.assert_array_equal(rows["widths"][:n], np.repeat(trainer._full_rows["widths"], n, 0))
    logits = trainer.model({"image": tf.concat([images, images], 0), **rows}, training=True)
    teacher, student = logits[:n], logits[n:]
    target = tf.one_hot(labels, 4)
    ce = tf.keras.losses.categorical_crossentropy
    loss = ce(target, student, from_logits=True)
    if distill:
        loss += ce(tf.nn.softmax(teacher), student, from_logits=True)
    if full_network:
        loss += ce(target, teacher, from_logits=True)
    return float(tf.reduce_mean(loss))


@pytest.mark.parametrize("full_network, distill", [(True, False), (True, True), (False, True)])
def test_the_full_network_and_distillation_share_one_pass(tmp_path, full_network, distill):
    trainer = _trainer(tmp_path, full_network=full_network, distill=distill)
    randomize_non_kernel_weights(trainer.model)
    batch = _first_batch(trainer)
    # Training-mode outputs do not depend on the moving statistics this call updates.
    expected = _expected_loss(trainer, batch, full_network, distill)
    loss, _ = trainer._step_fn(batch, tf.constant(0, tf.int64))
    assert float(loss) == pytest.approx(expected, rel=1e-4)


def test_the_paired_pass_updates_bn_statistics_once(tmp_path):
    trainer = _trainer(tmp_path, full_network=True, distill=True)
    images, labels = _first_batch(trainer)
    n = int(images.shape[0])
    rows, _ = trainer._rows(n, tf.constant(0, tf.int64), False)
    stem = trainer.model.super_layers["stem"]
    conv = stem.conv(tf.concat([images, images], 0)).numpy()
    width = rows["widths"].numpy()[:, 0]
    mask = np.arange(conv.shape[-1])[None, :] < width[:, None]
    keep = mask[:, None, None, :] * np.ones_like(conv)
    expected = 0.5 * (keep * conv).sum((0, 1, 2)) / np.maximum(keep.sum((0, 1, 2)), 1)
    trainer._step_fn((images, labels), tf.constant(0, tf.int64))
    np.testing.assert_allclose(stem.bn.moving_mean.numpy(), expected, rtol=1e-4, atol=1e-6)


def test_warm_start_steps_train_only_the_full_network(tmp_path):
    trainer = _trainer(tmp_path, steps_per_epoch=4, warm_start_steps=3)
    rows, paired = trainer._rows(5, tf.constant(0, tf.int64), True)
    assert not paired
    np.testing.assert_array_equal(rows["widths"], np.repeat(trainer._full_rows["widths"], 5, 0))
    calls = []
    warm, main = trainer._warm_step_fn, trainer._step_fn
    trainer._warm_step_fn = lambda *a: calls.append("warm") or warm(*a)
    trainer._step_fn = lambda *a: calls.append("sampled") or main(*a)
    assert trainer.run().steps == 4
    assert calls == ["warm", "warm", "warm", "sampled"]


def test_init_from_starts_the_super_network_from_a_full_network_trained_alone(tmp_path):
    spec = shallow_spec()
    alone = build_supernet(spec)
    randomize_non_kernel_weights(alone, seed=3)
    plain = export_subnetwork(alone, full_arch(spec))
    path = str(tmp_path / "full.keras")
    plain.save(path)
    trainer = _trainer(tmp_path / "run", init_from=path)
    images = next(iter(tiny_data(8).batch(8)))[0]
    mine = trainer.model({"image": images, **arch_inputs(spec, [full_arch(spec)] * 8)})
    theirs = plain(images)
    scale = float(tf.reduce_max(tf.abs(theirs)))
    assert scale > 1e-2  # outputs of order one, so the comparison means something
    np.testing.assert_allclose(mine, theirs, atol=1e-4 * scale)
    fresh = _trainer(tmp_path / "fresh")
    assert not np.allclose(
        fresh.model({"image": images, **arch_inputs(spec, [full_arch(spec)] * 8)}), theirs
    )


def test_init_from_names_the_field_and_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"train\.init_from: 'full\.h5' is not allowed"):
        TrainConfig(init_from="full.h5")
    with pytest.raises(ValueError, match=r"train\.init_from: '.*missing\.keras' is not a file"):
        _trainer(tmp_path, init_from=str(tmp_path / "missing.keras"))
    other = builders.build("mobilenet_v1", input_size=16, num_classes=4, width_multiplier=0.5)
    path = str(tmp_path / "other.keras")
    export_subnetwork(build_supernet(other), full_arch(other)).save(path)
    with pytest.raises(ValueError, match=r"train\.init_from: .* is not the full network"):
        _trainer(tmp_path / "run", init_from=path)


# -- tied depthwise widths ----------------------------------------------------------------


def test_tied_depthwise_layers_follow_their_input_and_are_not_searched():
    free = builders.build("mobilenet_v1", input_size=16, num_classes=4, width_multiplier=0.25)
    tied = builders.build(
        "mobilenet_v1", input_size=16, num_classes=4, width_multiplier=0.25, tie_depthwise=True
    )
    assert dict(tied.origin)["tie_depthwise"] is True and "tie_depthwise" not in dict(free.origin)
    assert builders.rebuild(dict(tied.origin), 16, 4) == tied
    for layer in tied.layers():
        if layer.kind == "depthwise":
            assert layer.widths == (layer.filters,)
    units = {u.name for u in search_units(tied)}
    assert not any("depthwise" in name for name in units)
    assert len(units) == 14 and len(search_units(free)) == 27
    assert macs.count(tied, full_arch(tied)) == macs.count(free, full_arch(free))
    # A tied depthwise layer computes every channel its (narrower) input has.
    arch = full_arch(tied).with_layer("block1/pointwise", width=6)
    layers = {r.name: r for r in resolve(tied, arch).layers()}
    assert layers["block2/depthwise"].width == layers["block2/depthwise"].in_channels == 6
    arch = random_arch(tied, np.random.default_rng(0))
    assert all(
        arch.choice(lay.name).width == lay.filters
        for lay in tied.layers()
        if lay.kind == "depthwise"
    )


# -- cumulative recalibration -------------------------------------------------------------


def test_cumulative_recalibration_weighs_every_batch_alike():
    spec = shallow_spec()
    supernet = build_supernet(spec)
    randomize_non_kernel_weights(supernet, seed=3)
    train = tiny_data(48, seed=4)
    options = {"batch_size": 16, "recalibration_data": train, "recalibration_batches": 3}
    masked = SubnetEvaluator(
        supernet, tiny_data(16, 5), recalibration_average="cumulative", **options
    )
    fast = SubnetEvaluator(
        supernet, tiny_data(16, 5), recalibration_average="cumulative", fast=True, **options
    )
    arch = random_arch(spec, np.random.default_rng(2)).with_layer("stem", width=6)
    images = [b for b in masked.recal_batches]
    conv = [supernet.super_layers["stem"].conv(x).numpy()[..., :6] for x in images]
    want_mean = np.mean([c.mean((0, 1, 2)) for c in conv], 0)
    want_var = np.mean([c.var((0, 1, 2)) for c in conv], 0)
    with masked.recalibrated(arch):
        bn = supernet.super_layers["stem"].bn
        np.testing.assert_allclose(bn.moving_mean.numpy()[:6], want_mean, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(bn.moving_variance.numpy()[:6], want_var, rtol=1e-3, atol=1e-5)
    stats = fast.sliced.recalibrated_statistics(fast.recal_batches, fast.sliced.sizes(arch), True)
    offset, _ = fast.sliced.slots["stem"]
    np.testing.assert_allclose(
        stats.numpy()[0, offset : offset + 6], want_mean, rtol=1e-4, atol=1e-5
    )
    assert masked.accuracy(arch) == pytest.approx(fast.accuracy(arch))
    with pytest.raises(ValueError, match="recalibration_average: 'median' is not one of"):
        SubnetEvaluator(supernet, tiny_data(16, 5), recalibration_average="median", **options)
