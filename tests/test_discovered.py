"""Training the discovered network: weight transfer, the three modes, resume, distillation,
the recipe pieces and the refusal of bad inputs (tiny networks, synthetic data)."""

import json
import os
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import randomize_non_kernel_weights

from netadapt_tf import builders, data
from netadapt_tf.common.strict_json import RecordError
from netadapt_tf.discovered import recipe
from netadapt_tf.discovered.trainer import DiscoveredOptions, DiscoveredRun, DiscoveredTrainer
from netadapt_tf.discovered.trajectory import read_trajectory
from netadapt_tf.graphs.export import export_subnetwork, max_abs_diff
from netadapt_tf.graphs.weight_transfer import copy_overlapping_weights, overlap_copy
from netadapt_tf.search.driver import TRAJECTORY_FORMAT
from netadapt_tf.space.arch import full_arch
from netadapt_tf.space.subnet import resolve
from netadapt_tf.supernet import checkpoint
from netadapt_tf.supernet.network import build_supernet
from netadapt_tf.training.supernet_trainer import TrainConfig


def _spec(**options):
    base = {"input_size": 16, "num_classes": 4, "width_multiplier": 0.25, "dropout": 0.0}
    return builders.build("mobilenet_v1", **{**base, **options})


SPEC = _spec()
FULL = full_arch(SPEC)
MIDDLE = FULL.with_choices({"stem": {"width": 6}, "block5/pointwise": {"width": 48}})
ARCH = MIDDLE.with_choices({"block3/pointwise": {"width": 0}, "block5/pointwise": {"width": 32}})
TRAJECTORY = (FULL, MIDDLE, ARCH)
CONFIG = {
    "epochs": 3,
    "steps_per_epoch": 4,
    "batch_size": 16,
    "learning_rate": 0.5,
    "optimizer": "adam",
    "ema_decay": 0.0,
    "max_eval_examples": 32,
    "eval_batch_size": 32,
    "checkpoint_every_steps": 2,
}
IMAGES = np.random.default_rng(3).uniform(size=(4, 16, 16, 3)).astype("float32")
# The inherit run trains long enough for its loss to fall by more than the noise of a few
# batch-16 steps, on either CPU path of TensorFlow (with oneDNN on or off).
INHERIT = {"steps_per_epoch": 12, "learning_rate": 2.0}


class StopTrainingError(Exception):
    pass


@pytest.fixture(scope="module")
def datasets():
    config = data.DataConfig(
        name="synthetic",
        image_size=16,
        channels=3,
        batch_size=16,
        held_out=0,
        synthetic_examples=96,
        synthetic_classes=4,
        augment=False,
    )
    return data.load(config)


@pytest.fixture(scope="module")
def supernet_dir(tmp_path_factory):
    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(0)
    model = build_supernet(SPEC)
    # Random moving statistics, so inference outputs are not vanishingly small (the start
    # of training, in training mode, is the same as with fresh statistics).
    rng = np.random.default_rng(1)
    for w in model.weights:
        if w.path.endswith("moving_variance"):
            w.assign(rng.uniform(0.5, 1.5, size=w.shape).astype("float32"))
        elif w.path.endswith("moving_mean"):
            w.assign(rng.normal(scale=0.1, size=w.shape).astype("float32"))
    return str(checkpoint.save_supernet(model, tmp_path_factory.mktemp("ckpt") / "supernet"))


def _trainer(workdir, datasets, supernet_dir, arch=ARCH, options=None, **overrides):
    kwargs = {"supernet_dir": supernet_dir, "saved_model": False}
    run_keys = ("trajectory", "initial_model", "teacher_model", "saved_model", "overwrite")
    kwargs.update({k: overrides.pop(k) for k in run_keys if k in overrides})
    run = DiscoveredRun(
        spec=SPEC,
        arch=arch,
        config=TrainConfig(**{**CONFIG, **overrides}),
        options=options or DiscoveredOptions(mode="inherit"),
        workdir=str(workdir),
        **kwargs,
    )
    return DiscoveredTrainer(
        run,
        datasets.train_for_epoch,
        datasets.validation,
        datasets.num_train,
        log=lambda *a: None,
    )


def _log(workdir):
    with open(os.path.join(workdir, "train_log.jsonl")) as f:
        return [json.loads(line) for line in f]


# -- overlapping weights ----------------------------------------------------------------


def test_overlap_copy_takes_leading_channels_and_the_centred_kernel_window():
    source = np.arange(5 * 5 * 3 * 2, dtype=float).reshape(5, 5, 3, 2)
    target = -np.ones((3, 3, 4, 1))
    out = overlap_copy(source, target, spatial_axes=2)
    np.testing.assert_array_equal(out[:, :, :3, :1], source[1:4, 1:4, :, :1])
    np.testing.assert_array_equal(out[:, :, 3:], -1.0)  # beyond the source: kept
    back = overlap_copy(out, np.zeros((5, 5, 3, 2)), spatial_axes=2)
    np.testing.assert_array_equal(back[1:4, 1:4, :, :1], source[1:4, 1:4, :, :1])
    assert back[0, 0, 0, 0] == 0 and back[2, 2, 0, 1] == 0
    np.testing.assert_array_equal(overlap_copy([1.0, 2.0], [0.0, 0.0, 7.0]), [1.0, 2.0, 7.0])
    with pytest.raises(ValueError) as error:
        overlap_copy(np.zeros((3, 3)), np.zeros(3))
    assert str(error.value) == (
        "overlap_copy: source has shape (3, 3) and target (3,); the arrays must have the same "
        "number of axes"
    )


def test_copy_overlapping_weights_puts_each_slice_where_it_belongs(supernet_dir):
    trained = checkpoint.load_supernet(supernet_dir, SPEC)
    keras.utils.set_random_seed(5)
    source = export_subnetwork(trained, FULL)
    target = keras.models.clone_model(export_subnetwork(trained, ARCH))  # fresh values
    copied = copy_overlapping_weights(SPEC, FULL, source, ARCH, target)
    assert "block3/pointwise" not in copied and "stem" in copied and "logits" in copied

    def weight(model, layer, index=0):
        return model.get_layer(layer).get_weights()[index]

    np.testing.assert_array_equal(
        weight(target, "stem__conv"), weight(source, "stem__conv")[..., :6]
    )
    np.testing.assert_array_equal(weight(target, "stem__bn"), weight(source, "stem__bn")[:6])
    # block3/pointwise keeps no filter: the 32 channels it bypasses are block3's input.
    sub = resolve(SPEC, ARCH)
    c = {r.name: r for r in sub.layers()}["block5/pointwise"].in_channels
    np.testing.assert_array_equal(
        weight(target, "block5__pointwise__conv"),
        weight(source, "block5__pointwise__conv")[:, :, :c, :32],
    )
    np.testing.assert_array_equal(
        weight(target, "block5__pointwise__bn", 3), weight(source, "block5__pointwise__bn", 3)[:32]
    )
    np.testing.assert_array_equal(weight(target, "logits__dense"), weight(source, "logits__dense"))
    exact = keras.models.clone_model(source)
    copy_overlapping_weights(SPEC, FULL, source, FULL, exact)
    for x, y in zip(source.get_weights(), exact.get_weights(), strict=True):
        np.testing.assert_array_equal(x, y)


# -- inherit: starts as the super-network's sub-network, learns, writes its outputs -----


@pytest.fixture(scope="module")
def inherit_run(tmp_path_factory, datasets, supernet_dir):
    workdir = tmp_path_factory.mktemp("inherit")
    supernet = checkpoint.load_supernet(supernet_dir, SPEC)
    start = {}

    def on_phase(index, arch, model):
        start["diff"] = max_abs_diff(supernet, model, arch, IMAGES)
        start["scale"] = float(np.max(np.abs(model(IMAGES, training=False))))

    trainer = _trainer(workdir, datasets, supernet_dir, saved_model=True, **INHERIT)
    return workdir, trainer.run(on_phase=on_phase), start


def test_inherit_starts_with_the_super_networks_predictions(inherit_run):
    _, _, start = inherit_run
    assert start["scale"] > 1e-3 and start["diff"] <= 1e-5 * start["scale"]


def test_training_reduces_the_loss_and_writes_the_outputs(inherit_run):
    workdir, result, _ = inherit_run
    log = _log(workdir)
    assert [entry["epoch"] for entry in log] == [1, 2, 3]
    assert log[-1]["loss"] < log[0]["loss"] - 0.1
    assert result.steps == 36 and result.validation_examples == 19
    model = keras.saving.load_model(result.files["model"])
    with open(result.files["arch"]) as f:
        assert json.load(f) == ARCH.to_json()
    with open(result.files["table"]) as f:
        assert "| 7 | block3/pointwise | pw | 8 | 1 | 1 | ✓ | RE | 0 | bypass only |" in f.read()
    saved = tf.saved_model.load(result.files["saved_model"])
    np.testing.assert_allclose(saved.serve(IMAGES), model(IMAGES, training=False), atol=1e-5)
    with open(result.files["result"]) as f:
        assert json.load(f)["validation_accuracy"] == result.validation_accuracy


@pytest.mark.parametrize("ema_decay, scorings", [(0.0, 2), (0.9, 3)])
def test_the_last_epochs_score_is_the_result_unless_ema_changed_the_weights(
    tmp_path, datasets, supernet_dir, ema_decay, scorings
):
    trainer = _trainer(tmp_path, datasets, supernet_dir, epochs=2, ema_decay=ema_decay)
    scored = []
    evaluate = trainer.evaluate
    trainer.evaluate = lambda model: scored.append(model) or evaluate(model)
    result = trainer.run()
    assert len(scored) == scorings  # one per epoch, and the end's only after the EMA swap
    saved = keras.saving.load_model(result.files["model"])
    assert result.validation == evaluate(saved)[0]
    if not ema_decay:
        assert result.validation["accuracy"] == _log(tmp_path)[-1]["validation_accuracy"]


def test_a_work_dir_of_other_settings_is_refused(inherit_run, datasets, supernet_dir):
    workdir, _, _ = inherit_run
    with pytest.raises(RecordError) as error:
        _trainer(workdir, datasets, supernet_dir, learning_rate=0.1)
    recorded = json.loads((pathlib.Path(workdir) / "run.json").read_text())["train"]
    message = str(error.value)
    assert message.startswith(
        f"{os.path.join(workdir, 'run.json')}: workdir {workdir} holds a run with other "
        f"settings (differing: ['train']); recorded vs now: train.learning_rate "
        f"({recorded['learning_rate']} vs 0.1), "
    )
    assert message.endswith("; use another work directory or --overwrite")


def test_distillation_adds_the_teachers_soft_targets_to_the_loss(
    tmp_path, inherit_run, datasets, supernet_dir
):
    plain = _log(inherit_run[0])[0]["loss"]
    _trainer(tmp_path, datasets, supernet_dir, epochs=1, distill=True, **INHERIT).run()
    distilled = _log(tmp_path)[0]["loss"]
    assert distilled > plain + 0.05


# -- trajectory: every arch in order, resumable across phases ---------------------------


def _trajectory_options():
    return DiscoveredOptions(mode="trajectory", steps_per_trajectory_arch=2)


@pytest.fixture(scope="module")
def trajectory_run(tmp_path_factory, datasets, supernet_dir):
    workdir = tmp_path_factory.mktemp("trajectory")
    visits = []

    def on_phase(index, arch, model):
        visits.append((index, arch, model.get_layer("stem__conv").get_weights()[0]))

    trainer = _trainer(
        workdir,
        datasets,
        supernet_dir,
        arch=None,
        options=_trajectory_options(),
        trajectory=TRAJECTORY,
        epochs=1,
    )
    return workdir, trainer.run(on_phase=on_phase), visits


def test_trajectory_visits_every_arch_in_order_from_the_previous_weights(trajectory_run):
    workdir, result, visits = trajectory_run
    assert [(i, arch) for i, arch, _ in visits] == [(0, MIDDLE), (1, ARCH)]
    trained_middle = export_subnetwork(build_supernet(SPEC), MIDDLE)
    trained_middle.load_weights(os.path.join(workdir, "phases", "phase000.weights.h5"))
    np.testing.assert_array_equal(
        visits[1][2], trained_middle.get_layer("stem__conv").get_weights()[0]
    )
    assert [(e["phase"], e["step"]) for e in _log(workdir)] == [(0, 2), (1, 4)]
    assert result.steps == 6


@pytest.mark.slow
def test_resume_after_an_interruption_ends_with_the_same_weights(
    tmp_path, trajectory_run, datasets, supernet_dir
):
    def stop(index, step):
        if (index, step) == (1, 3):  # after phase 1's checkpoint at step 2
            raise StopTrainingError

    def trainer():
        return _trainer(
            tmp_path,
            datasets,
            supernet_dir,
            arch=None,
            options=_trajectory_options(),
            trajectory=TRAJECTORY,
            epochs=1,
        )

    with pytest.raises(StopTrainingError):
        trainer().run(on_step=stop)
    phases = []
    result = trainer().run(on_phase=lambda index, arch, model: phases.append(index))
    assert phases == [1]  # phase 0 was done; phase 1 resumed from its checkpoint
    straight = keras.saving.load_model(trajectory_run[1].files["model"]).get_weights()
    resumed = keras.saving.load_model(result.files["model"]).get_weights()
    for x, y in zip(straight, resumed, strict=True):
        np.testing.assert_allclose(x, y, atol=1e-6)
    assert [(e["phase"], e["step"]) for e in _log(tmp_path)] == [(0, 2), (1, 4)]


# -- scratch and the recipe -------------------------------------------------------------


def test_scratch_with_augmentation_trains_from_fresh_weights(tmp_path, datasets, supernet_dir):
    inherited = export_subnetwork(checkpoint.load_supernet(supernet_dir, SPEC), ARCH)
    start = {}
    options = DiscoveredOptions(
        mode="scratch", rand_augment_magnitude=0.3, mixup_alpha=0.2, cutmix_alpha=1.0
    )
    trainer = _trainer(tmp_path, datasets, supernet_dir, options=options, epochs=1)
    result = trainer.run(on_phase=lambda i, a, model: start.update(model=model.get_weights()))
    assert not np.array_equal(start["model"][0], inherited.get_weights()[0])
    assert np.isfinite(_log(tmp_path)[0]["loss"]) and result.steps == 4


def test_stochastic_depth_drops_residual_branches_and_folds_into_the_export():
    spec = builders.build("mobilenet_v2", input_size=16, num_classes=4, width_multiplier=0.25)
    supernet = build_supernet(spec)
    randomize_non_kernel_weights(supernet, seed=2)
    arch = full_arch(spec)
    rates = recipe.stochastic_depth_rates(resolve(spec, arch), 0.3)
    residual = [b.name for b in spec.nodes if getattr(b, "residual", False)]
    assert list(rates) == residual and rates[residual[-1]] == pytest.approx(0.3)
    plain = export_subnetwork(supernet, arch)
    dropping = recipe.with_stochastic_depth(plain, rates)
    layer = dropping.get_layer(f"{residual[0]}__add")
    assert type(layer).__name__ == "StochasticDepth"
    expected = dropping(IMAGES, training=False).numpy()
    recipe.fold_stochastic_depth(plain, rates)
    # The export parity bar: the outputs are of order one and depend on the image, and
    # scaling the BN instead of the branch rounds differently (1e-5 measured).
    assert np.max(np.abs(expected)) > 0.1
    np.testing.assert_allclose(plain(IMAGES, training=False), expected, rtol=0, atol=1e-4)


# -- bad input ----------------------------------------------------------------------------


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError) as error:
        DiscoveredOptions(mode="fast")
    assert str(error.value) == (
        "discovered.mode: 'fast' is not one of ('scratch', 'inherit', 'trajectory')"
    )


def test_an_arch_of_another_super_network_is_refused(tmp_path, datasets, supernet_dir):
    other = _spec(width_multiplier=0.5)
    with pytest.raises(ValueError) as error:
        _trainer(tmp_path, datasets, supernet_dir, arch=full_arch(other))
    assert str(error.value) == (
        f"arch: made for super-network 'mobilenet_v1' (fingerprint {other.fingerprint()}), not "
        f"for 'mobilenet_v1' (fingerprint {SPEC.fingerprint()}); sample or export it with the "
        "same builder and options"
    )
    assert not os.listdir(tmp_path)


def test_a_checkpoint_of_another_super_network_is_refused(tmp_path, datasets, supernet_dir):
    other = _spec(width_multiplier=0.5)
    with pytest.raises(ValueError) as error:
        run = DiscoveredRun(
            spec=other,
            arch=full_arch(other),
            config=TrainConfig(**CONFIG),
            options=DiscoveredOptions(),
            workdir=str(tmp_path),
            supernet_dir=supernet_dir,
        )
        DiscoveredTrainer(run, datasets.train_for_epoch, datasets.validation, datasets.num_train)
    assert str(error.value) == (
        f"{supernet_dir}: the checkpoint holds super-network 'mobilenet_v1' (fingerprint "
        f"{SPEC.fingerprint()}), but 'mobilenet_v1' (fingerprint {other.fingerprint()}) was "
        "asked for; checkpoint vs asked differ in bypass_base (4 vs 8), width_multiplier "
        "(0.25 vs 0.5). Pass the builder options the checkpoint was made with, or a checkpoint "
        "of the asked super-network"
    )


def test_bad_trajectories_are_refused(tmp_path, datasets, supernet_dir):
    def attempt(trajectory, arch=None):
        with pytest.raises(ValueError) as error:
            _trainer(
                tmp_path,
                datasets,
                supernet_dir,
                arch=arch,
                options=_trajectory_options(),
                trajectory=trajectory,
            )
        return str(error.value)

    assert attempt((MIDDLE, ARCH)) == (
        "trajectory.points[0].arch: the trajectory does not start at the initial network "
        "(differs in stem width 6 vs 8, block5/pointwise width 48 vs 64, trajectory vs "
        "initial); allowed: a trajectory whose first point is the initial network whose "
        "trained weights start the transfer"
    )
    assert attempt(TRAJECTORY, arch=MIDDLE) == (
        "trajectory.points[2].arch: the trajectory does not end at the arch to train (differs "
        "in block3/pointwise width 0 vs 32, block5/pointwise width 32 vs 48, trajectory vs "
        "arch); allowed: the discovered arch of the same search, or no arch (the trajectory's "
        "end)"
    )
    with pytest.raises(ValueError) as error:
        _trainer(tmp_path, datasets, supernet_dir, trajectory=TRAJECTORY)
    assert str(error.value) == "trajectory: given, but mode is 'inherit'; it needs 'trajectory'"
    other = _spec(width_multiplier=0.5)
    path = tmp_path / "trajectory.json"
    point = {"iteration": None, "target": None, "accuracy": None, "resource": 1.0}
    points = [{**point, "arch": FULL.to_json()}, {**point, "arch": full_arch(other).to_json()}]
    path.write_text(json.dumps({"format": TRAJECTORY_FORMAT, "unit": None, "points": points}))
    with pytest.raises(ValueError) as error:
        read_trajectory(str(path), SPEC)
    assert str(error.value) == (
        f"{path}: trajectory.points[1].arch: arch: made for super-network 'mobilenet_v1' "
        f"(fingerprint {other.fingerprint()}), not for 'mobilenet_v1' (fingerprint "
        f"{SPEC.fingerprint()}); sample or export it with the same builder and options"
    )


def test_an_initial_model_of_another_arch_is_refused(tmp_path, datasets, supernet_dir):
    wrong = export_subnetwork(checkpoint.load_supernet(supernet_dir, SPEC), MIDDLE)
    path = str(checkpoint.save_subnetwork(wrong, MIDDLE, tmp_path / "initial"))
    with pytest.raises(ValueError) as error:
        _trainer(
            tmp_path / "run",
            datasets,
            None,
            options=_trajectory_options(),
            trajectory=TRAJECTORY,
            initial_model=path,
        )
    assert str(error.value) == (
        f"initial_model: {path} has weight shapes [(3, 3, 3, 6)] in layer 'stem__conv'; the "
        "initial network needs [(3, 3, 3, 8)] there. Allowed: a model exported "
        "(export_subnetwork) from this super-network for the initial arch"
    )


def test_the_recipes_bn_momentum_reaches_every_batch_norm(tmp_path, datasets, supernet_dir):
    trainer = _trainer(tmp_path / "bn", datasets, supernet_dir, bn_momentum=0.8)
    model = trainer._start_model(0)
    momenta = {
        layer.momentum
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    }
    assert momenta == {0.8}
