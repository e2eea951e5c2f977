"""Does a super-network learn at a small budget, and under which ordered-dropout sampling?

Trains the super-network of a builder (default MobileNetV1 at width 0.25, 32x32) on 7,000
Fashion-MNIST training images for a few hundred steps with one sampling variant, and
prints the training loss and the held-out top-1 (1,000 other training images, 500 judged)
of the full network, the smallest, networks with 3 random layers shrunk ("near", what an
MCD search judges first) and random sub-networks; "(batch BN)" columns use the batch's own
statistics, i.e. BN recalibrated for that arch.

Variants (--variant):
  full         every image trains the full network (the plain network's learning speed)
  uniform      the paper's ordered dropout: every width equally often, every layer
  floor=F      ordered dropout over the widths >= F x full only
  shrink=P     progressive shrinking over the first P of the steps (TrainConfig)
  fixed=F      every image trains the one arch with every layer at F x full

  python benchmarks/ordered_dropout_learning.py --variant=uniform [--steps=300] [--json]
"""

import json
import time

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

from netadapt_tf import builders
from netadapt_tf.data import fashion_mnist
from netadapt_tf.space.arch import Arch, LayerChoice, full_arch, random_arch, smallest_arch
from netadapt_tf.supernet.network import arch_inputs, batch_norm_layers, build_supernet
from netadapt_tf.supernet.sampling import OrderedDropoutSampler, shrinking_floor

_MODEL = flags.DEFINE_string("model", "mobilenet_v1", "Builder.")
_WIDTH = flags.DEFINE_float("width_multiplier", 0.25, "Width multiplier.")
_VARIANT = flags.DEFINE_string("variant", "uniform", "full, uniform, floor=F, shrink=P, fixed=F.")
_STEPS = flags.DEFINE_integer("steps", 300, "Training steps.")
_BATCH = flags.DEFINE_integer("batch_size", 64, "Batch size.")
_LR = flags.DEFINE_float("learning_rate", 3e-3, "Adam learning rate.")
_BN = flags.DEFINE_float("bn_momentum", 0.9, "BN momentum.")
_EVERY = flags.DEFINE_integer("report_every", 50, "Steps between reports.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed.")
_JSON = flags.DEFINE_bool("json", False, "Print the last report as JSON.")


def _data():
    arrays = fashion_mnist.read_arrays()
    x = arrays["train_images"][:8000].astype(np.float32) / 255.0
    x = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0))).repeat(3, -1)
    y = arrays["train_labels"][:8000].astype(np.int32)
    return (x[:7000], y[:7000]), (x[7000:7500], y[7000:7500])


def _near(spec, rng, k=3) -> Arch:
    arch = full_arch(spec)
    layers = [layer for layer in spec.layers() if len(layer.widths) > 1]
    choices = arch.as_dict()
    for i in rng.choice(len(layers), k, replace=False):
        layer = layers[i]
        choices[layer.name] = LayerChoice(
            layer.name, int(rng.choice(layer.widths)), choices[layer.name].kernel_size
        )
    return Arch(arch.space, arch.fingerprint, tuple(choices[c.name] for c in arch.choices))


def _fixed(spec, fraction) -> Arch:
    arch = full_arch(spec)
    changes = {}
    for layer in spec.layers():
        changes[layer.name] = {
            "width": next(w for w in layer.widths if w >= fraction * layer.widths[-1] - 1e-9)
        }
    return arch.with_choices(changes)


def _train_step(net, spec, kind, value, batch, steps):
    """One traced training step of the variant `kind` (`value`: its floor or width)."""
    sampler = OrderedDropoutSampler(spec)
    optimizer = keras.optimizers.Adam(_LR.value)
    fixed = None
    if kind in ("full", "fixed"):
        arch = full_arch(spec) if kind == "full" else _fixed(spec, float(value))
        fixed = {k: tf.repeat(v, batch, 0) for k, v in arch_inputs(spec, [arch]).items()}

    @tf.function
    def step(images, labels, i):
        if fixed is not None:
            rows = fixed
        else:
            floor = None
            if kind == "floor":
                floor = tf.constant(float(value))
            elif kind == "shrink":
                floor = shrinking_floor(i, steps, float(value))
            rows = sampler.sample(batch, tf.stack([tf.constant(_SEED.value, tf.int64), i]), floor)
        with tf.GradientTape() as tape:
            logits = net({"image": images, **rows}, training=True)
            loss = tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            )
        grads = tape.gradient(loss, net.trainable_variables)
        optimizer.apply_gradients(zip(grads, net.trainable_variables, strict=True))
        return loss

    return step


def _report(net, spec, xe, ye, step_index, loss, seconds):
    """The accuracies of the full, smallest, near-full and random sub-networks."""

    def accuracy(arch, batch_bn=False):
        rows = {k: np.repeat(v, len(xe), 0) for k, v in arch_inputs(spec, [arch]).items()}
        logits = net({"image": xe, **rows}, training=batch_bn)
        return float(np.mean(np.argmax(logits, -1) == ye))

    judge = np.random.default_rng(1)
    near = [_near(spec, judge) for _ in range(3)]
    rand = [random_arch(spec, judge) for _ in range(3)]
    return {
        "variant": _VARIANT.value,
        "step": step_index,
        "loss": round(loss, 3),
        "full": accuracy(full_arch(spec)),
        "full_batch_bn": accuracy(full_arch(spec), True),
        "smallest_batch_bn": accuracy(smallest_arch(spec), True),
        "near3_batch_bn": [accuracy(a, True) for a in near],
        "random_batch_bn": [accuracy(a, True) for a in rand],
        "seconds": round(seconds),
    }


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    kind, _, value = _VARIANT.value.partition("=")
    if kind not in ("full", "uniform", "floor", "shrink", "fixed"):
        raise app.UsageError(f"--variant: {_VARIANT.value!r} is not one of full, uniform, ...")
    (x, y), (xe, ye) = _data()
    spec = builders.build(
        _MODEL.value, width_multiplier=_WIDTH.value, input_size=32, num_classes=10, dropout=0.0
    )
    keras.utils.set_random_seed(_SEED.value)
    net = build_supernet(spec)
    for bn in batch_norm_layers(net):
        bn.momentum = _BN.value
    batch, steps = _BATCH.value, _STEPS.value
    step = _train_step(net, spec, kind, value, batch, steps)
    rng = np.random.default_rng(_SEED.value)
    start, report = time.perf_counter(), {}
    for i in range(steps):
        index = rng.integers(0, len(x), batch)
        loss = float(step(x[index], y[index], tf.constant(i, tf.int64)))
        if (i + 1) % _EVERY.value == 0 or i == steps - 1:
            report = _report(net, spec, xe, ye, i + 1, loss, time.perf_counter() - start)
            if not _JSON.value:
                print(json.dumps(report), flush=True)
    if _JSON.value:
        print(json.dumps(report))


if __name__ == "__main__":
    app.run(main)
