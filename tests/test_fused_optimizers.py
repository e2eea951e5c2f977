"""The fused optimizers (training/fused_optimizers.py) follow Keras' rule to float rounding,
on one replica and on two, take the fused kernel where they say they do, and read and write
Keras' checkpoints."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from netadapt_tf.training import fused_optimizers as fused
from netadapt_tf.training.supernet_trainer import TrainConfig, make_optimizer

HERE = os.path.dirname(os.path.abspath(__file__))
# The bounds after 25 steps. The weights agree to a few float32 ulps per step. Adam's kernel
# forms 1 - beta_2 in float32 (0.99900001 -> 0.00099998713) where Keras forms it in double
# (0.001), so its second moments differ by 1.3e-5 of their size from the first step on.
WEIGHTS_BOUND, SLOTS_BOUND = 1e-5, 1e-4
KERNELS = {
    "adam": "ResourceApplyAdam",
    "rmsprop": "ResourceApplyRMSProp",
    "sgd": "ResourceApplyKerasMomentum",
}
# (name, Keras class, fused class, keyword arguments); the schedule is the trainer's kind,
# so the learning rate changes during the steps.
CASES = {
    "adam": (keras.optimizers.Adam, fused.FusedAdam, {"epsilon": 1e-3}),
    "rmsprop": (keras.optimizers.RMSprop, fused.FusedRMSprop, {"momentum": 0.9, "rho": 0.9}),
    "sgd_nesterov": (keras.optimizers.SGD, fused.FusedSGD, {"momentum": 0.9, "nesterov": True}),
    "sgd": (keras.optimizers.SGD, fused.FusedSGD, {"momentum": 0.8}),
}
# Keras' own update for the rules without a kernel: the same ops, so the same numbers.
FALLBACKS = {
    "adam_amsgrad": (keras.optimizers.Adam, fused.FusedAdam, {"amsgrad": True}),
    "rmsprop_centered": (
        keras.optimizers.RMSprop,
        fused.FusedRMSprop,
        {"momentum": 0.9, "centered": True},
    ),
    "rmsprop_no_momentum": (keras.optimizers.RMSprop, fused.FusedRMSprop, {}),
    "sgd_no_momentum": (keras.optimizers.SGD, fused.FusedSGD, {}),
}


def _train(cls, kwargs, steps=25, checkpoint=None, restore=None, start=0):
    """(variables, optimizer variables, op types of the traced step) after steps `start` ..
    `start + steps - 1` of a small non-convex problem under a MirroredStrategy over the
    visible CPU devices, from the checkpoint `restore` if given, writing `checkpoint`."""
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(devices)
    with strategy.scope():
        rng = np.random.RandomState(1)
        weights = [
            keras.Variable(rng.randn(*shape).astype("float32"))
            for shape in [(6, 5), (5,), (3, 3, 4)]
        ]
        schedule = keras.optimizers.schedules.ExponentialDecay(0.05, 7, 0.5, staircase=True)
        optimizer = cls(learning_rate=schedule, **kwargs)
        optimizer.build(weights)
    state = tf.train.Checkpoint(weights=weights, optimizer=optimizer)
    if restore:
        state.read(restore).assert_consumed()

    def replica_step(x):
        with tf.GradientTape() as tape:
            loss = sum(tf.reduce_sum(tf.sin(w * x) + 0.1 * w * w) for w in weights)
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights, strict=True))

    @tf.function
    def step(x):
        strategy.run(replica_step, args=(x,))

    for i in range(start, start + steps):
        step(tf.constant(0.7 + 0.05 * i))
    if checkpoint:
        state.write(checkpoint)
    ops = {op.type for op in step.get_concrete_function(tf.constant(0.0)).graph.get_operations()}
    return [w.numpy() for w in weights], [v.numpy() for v in optimizer.variables], ops


def _relative(a, b) -> float:
    return max(
        float(np.max(np.abs(x - y)) / max(np.max(np.abs(x)), 1e-12))
        for x, y in zip(a, b, strict=True)
    )


def compare(names) -> dict:
    """Per case: the relative difference of the variables and of the optimizer's variables
    from Keras' class, and whether the fused kernel is in the step."""
    found = {}
    for name in names:
        keras_cls, fused_cls, kwargs = {**CASES, **FALLBACKS}[name]
        weights, slots, _ = _train(keras_cls, kwargs)
        fused_weights, fused_slots, ops = _train(fused_cls, kwargs)
        found[name] = {
            "weights": _relative(weights, fused_weights),
            "slots": _relative(slots, fused_slots),
            "moved": _relative(weights, _train(keras_cls, kwargs, steps=0)[0]),
            "kernel": KERNELS[name.split("_")[0]] in ops,
        }
    return found


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_fused_rule_is_keras_rule_to_float_rounding(name):
    found = compare([name])[name]
    assert found["kernel"], f"{name}: the step has no {KERNELS[name.split('_')[0]]}"
    assert found["moved"] > 0.1  # the steps did move the variables
    assert found["weights"] < WEIGHTS_BOUND and found["slots"] < SLOTS_BOUND, found


@pytest.mark.parametrize("name", sorted(FALLBACKS))
def test_rules_without_a_kernel_are_keras_own_update(name):
    found = compare([name])[name]
    assert not found["kernel"]
    assert found["weights"] == 0.0 and found["slots"] == 0.0, found


def test_on_two_replicas_the_fused_rule_is_keras_rule_to_float_rounding():
    code = (
        "import json, sys\n"
        f"sys.path[:0] = [{HERE!r}, {os.path.dirname(HERE)!r}]\n"
        "from netadapt_tf.supernet import distribute\n"
        "distribute.use_cores(2, 64)\n"
        "import tensorflow as tf\n"
        "assert len(tf.config.list_logical_devices('CPU')) == 2\n"
        "import test_fused_optimizers as t\n"
        "print(json.dumps(t.compare(sorted(t.CASES))))\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, figures in found.items():
        assert figures["kernel"] and figures["moved"] > 0.1, (name, figures)
        assert figures["weights"] < WEIGHTS_BOUND and figures["slots"] < SLOTS_BOUND, (
            name,
            figures,
        )


@pytest.mark.parametrize("name", ["adam", "rmsprop"])
def test_checkpoints_pass_between_keras_and_fused_classes(tmp_path, name):
    keras_cls, fused_cls, kwargs = CASES[name]
    whole, _, _ = _train(keras_cls, kwargs, steps=20)
    keras_half = str(tmp_path / "keras")
    _train(keras_cls, kwargs, steps=10, checkpoint=keras_half)
    resumed, _, _ = _train(fused_cls, kwargs, steps=10, restore=keras_half, start=10)
    assert _relative(whole, resumed) < WEIGHTS_BOUND
    fused_half = str(tmp_path / "fused")
    _train(fused_cls, kwargs, steps=10, checkpoint=fused_half)
    back, _, _ = _train(keras_cls, kwargs, steps=10, restore=fused_half, start=10)
    assert _relative(whole, back) < WEIGHTS_BOUND


@pytest.mark.parametrize(
    "optimizer, cls",
    [("adam", fused.FusedAdam), ("rmsprop", fused.FusedRMSprop), ("sgd", fused.FusedSGD)],
)
def test_the_trainers_optimizer_is_the_fused_class(optimizer, cls):
    made = make_optimizer(TrainConfig(optimizer=optimizer, momentum=0.9), steps_per_epoch=10)
    assert type(made) is cls


def test_the_keras_twin_has_keras_class_and_the_same_configuration():
    made = make_optimizer(TrainConfig(optimizer="rmsprop", momentum=0.9), steps_per_epoch=10)
    twin = fused.keras_twin(made)
    assert type(twin) is keras.optimizers.RMSprop
    assert twin.get_config() == made.get_config()
    with pytest.raises(ValueError, match="Adam is not one of"):
        fused.keras_twin(keras.optimizers.Adam())
