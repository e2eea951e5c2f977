"""The super-network: many sub-networks in one batch, tf.function, tf.distribute, config."""

import keras
import numpy as np
import tensorflow as tf
from conftest import randomize_non_kernel_weights, small_spec

from netadapt_tf.space.arch import full_arch, random_arch, smallest_arch
from netadapt_tf.supernet.network import SuperNetwork, arch_inputs, build_supernet


def _inputs(spec, archs, images):
    inputs = arch_inputs(spec, archs)
    inputs["image"] = images
    return inputs


def test_one_batch_runs_a_different_subnetwork_per_example():
    spec = small_spec("netadaptv2_mobilenet_v3")
    model = build_supernet(spec)
    randomize_non_kernel_weights(model)
    rng = np.random.default_rng(0)
    archs = [full_arch(spec), smallest_arch(spec)] + [random_arch(spec, rng) for _ in range(2)]
    images = rng.normal(size=(4, 32, 32, 3)).astype("float32")
    mixed = np.asarray(model(_inputs(spec, archs, images), training=False))
    for i, arch in enumerate(archs):
        alone = np.asarray(model(_inputs(spec, [arch], images[i : i + 1]), training=False))
        # Within 1e-4 of the output's scale: float32 sums in another order for a batch of
        # one (CI measured 1.9e-5 on outputs of about 3.6); another sub-network moves
        # outputs by their own order, as the last line checks.
        scale = max(1.0, float(np.max(np.abs(alone))))
        np.testing.assert_allclose(mixed[i], alone[0], rtol=0, atol=1e-4 * scale)
    assert not np.allclose(mixed[0], mixed[1], atol=1e-2)


def test_one_traced_graph_serves_every_subnetwork():
    spec = small_spec("mobilenet_v2")
    model = build_supernet(spec)
    randomize_non_kernel_weights(model, seed=1)
    traces = []

    @tf.function
    def forward(inputs):
        traces.append(1)
        return model(inputs, training=False)

    rng = np.random.default_rng(1)
    images = rng.normal(size=(2, 32, 32, 3)).astype("float32")
    for _ in range(3):
        archs = [random_arch(spec, rng) for _ in range(2)]
        traced = forward(_inputs(spec, archs, images))
        eager = model(_inputs(spec, archs, images), training=False)
        np.testing.assert_allclose(np.asarray(traced), np.asarray(eager), atol=1e-5)
    assert len(traces) == 1


def test_config_round_trip_rebuilds_the_same_network(tmp_path):
    spec = small_spec("mobilenet_v1")
    model = build_supernet(spec)
    randomize_non_kernel_weights(model, seed=2)
    clone = SuperNetwork.from_config(model.get_config())
    assert clone.spec == spec
    clone.build_weights()
    clone.set_weights(model.get_weights())
    archs = [random_arch(spec, np.random.default_rng(4))]
    images = np.ones((1, 32, 32, 3), np.float32)
    np.testing.assert_allclose(
        np.asarray(clone(_inputs(spec, archs, images))),
        np.asarray(model(_inputs(spec, archs, images))),
        atol=1e-6,
    )
    path = tmp_path / "supernet.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        np.asarray(loaded(_inputs(spec, archs, images))),
        np.asarray(model(_inputs(spec, archs, images))),
        atol=1e-6,
    )


def test_a_training_step_under_a_distribution_strategy_updates_kept_filters_only():
    spec = small_spec("mobilenet_v1")
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = build_supernet(spec)
        optimizer = keras.optimizers.SGD(0.1)
    # Every example drops the last filters of block3/pointwise.
    layer = spec.layer("block3/pointwise")
    kept = layer.widths[4]
    arch = full_arch(spec).with_layer(layer.name, width=kept)
    rng = np.random.default_rng(0)
    inputs = _inputs(spec, [arch] * 4, rng.normal(size=(4, 32, 32, 3)).astype("float32"))
    labels = np.arange(4) % 10
    kernel = model.super_layers[layer.name].conv.kernel
    before = kernel.numpy()

    @tf.function
    def step(inputs, labels):
        def replica(inputs, labels):
            with tf.GradientTape() as tape:
                logits = model(inputs, training=True)
                loss = tf.reduce_mean(
                    keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
                )
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return loss

        return strategy.run(replica, args=(inputs, labels))

    loss = step(inputs, labels)
    assert np.isfinite(float(strategy.reduce("MEAN", loss, axis=None)))
    after = kernel.numpy()
    assert not np.allclose(after[..., :kept], before[..., :kept])
    np.testing.assert_array_equal(after[..., kept:], before[..., kept:])
