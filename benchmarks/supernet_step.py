"""Training-step time of the super-network against the plain network it contains.

Variants, same builder, batch and optimizer, timed interleaved in one process:
  plain     the full network exported as a plain Keras model (what one trains without NAS)
  od        super-network with ordered dropout only (no bypass, fixed kernels)
  od_bypass ordered dropout and channel-level bypass (fixed kernels)
  full      ordered dropout, bypass and superkernel (what tools/train_supernet.py trains)
Prints images/s per variant and ratios to plain; --json prints one object with key `ratio`
(full / plain) and the per-variant figures.

  python benchmarks/supernet_step.py [--model=netadaptv2_mobilenet_v3] [--json]
"""

import dataclasses
import json
import statistics
import time

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

from netadapt_tf import builders
from netadapt_tf.graphs.export import export_subnetwork
from netadapt_tf.space.arch import full_arch
from netadapt_tf.space.spec import BlockSpec, LayerSpec, NetworkSpec
from netadapt_tf.supernet.network import build_supernet
from netadapt_tf.supernet.sampling import OrderedDropoutSampler

_MODEL = flags.DEFINE_string("model", "netadaptv2_mobilenet_v3", "Builder.")
_WIDTH = flags.DEFINE_float("width_multiplier", 0.5, "Width multiplier.")
_SIZE = flags.DEFINE_integer("input_size", 64, "Input size.")
_BATCH = flags.DEFINE_integer("batch_size", 64, "Batch size.")
_STEPS = flags.DEFINE_integer("steps", 6, "Timed steps per round and variant.")
_ROUNDS = flags.DEFINE_integer("rounds", 5, "Interleaved rounds.")
_JSON = flags.DEFINE_bool("json", False, "Print JSON.")


def fixed_kernels(spec: NetworkSpec) -> NetworkSpec:
    """The same space with every depthwise layer at its full kernel only."""

    def fix(layer: LayerSpec) -> LayerSpec:
        return dataclasses.replace(layer, kernel_sizes=(layer.kernel_size,))

    nodes = []
    for node in spec.nodes:
        if isinstance(node, LayerSpec):
            node = fix(node)
        elif isinstance(node, BlockSpec):
            node = dataclasses.replace(node, depthwise=fix(node.depthwise))
        nodes.append(node)
    return dataclasses.replace(spec, nodes=tuple(nodes))


def _step_fn(model, forward, optimizer):
    @tf.function
    def step(images, labels, seed):
        with tf.GradientTape() as tape:
            logits = forward(images, seed)
            loss = tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            )
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    return step


def make_variants(batch_size: int) -> dict:
    options = dict(
        input_size=_SIZE.value, num_classes=10, width_multiplier=_WIDTH.value, dropout=0.0
    )
    spec = builders.build(_MODEL.value, **options)
    no_bypass = fixed_kernels(builders.build(_MODEL.value, channel_bypass=False, **options))
    specs = {"od": no_bypass, "od_bypass": fixed_kernels(spec), "full": spec}
    variants = {}
    plain = export_subnetwork(build_supernet(spec), full_arch(spec))
    variants["plain"] = _step_fn(
        plain, lambda x, seed: plain(x, training=True), keras.optimizers.RMSprop(1e-3)
    )
    for name, s in specs.items():
        model = build_supernet(s)
        sampler = OrderedDropoutSampler(s)

        def forward(x, seed, model=model, sampler=sampler):
            return model({"image": x, **sampler.sample(batch_size, seed)}, training=True)

        variants[name] = _step_fn(model, forward, keras.optimizers.RMSprop(1e-3))
    return variants


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    batch = _BATCH.value
    rng = np.random.default_rng(0)
    images = tf.constant(rng.normal(size=(batch, _SIZE.value, _SIZE.value, 3)), tf.float32)
    labels = tf.constant(rng.integers(0, 10, batch), tf.int32)
    variants = make_variants(batch)
    seconds = {name: [] for name in variants}
    for step in variants.values():  # trace and warm up
        for i in range(2):
            float(step(images, labels, tf.constant([0, i], tf.int64)))
    for r in range(_ROUNDS.value):
        for name, step in variants.items():
            start = time.perf_counter()
            for i in range(_STEPS.value):
                loss = step(images, labels, tf.constant([r, i], tf.int64))
            float(loss)
            seconds[name].append((time.perf_counter() - start) / _STEPS.value)
    median = {name: statistics.median(s) for name, s in seconds.items()}
    result = {
        "model": _MODEL.value,
        "width_multiplier": _WIDTH.value,
        "input_size": _SIZE.value,
        "batch_size": batch,
        "step_ms": {k: round(v * 1000, 2) for k, v in median.items()},
        "images_per_s": {k: round(batch / v, 1) for k, v in median.items()},
        "ratio_to_plain": {k: round(v / median["plain"], 3) for k, v in median.items()},
        "bypass_over_od": round(median["od_bypass"] / median["od"], 3),
        "ratio": round(median["full"] / median["plain"], 3),
    }
    if _JSON.value:
        print(json.dumps(result))
        return
    for name in variants:
        print(
            f"{name:>10}: {result['step_ms'][name]:8.1f} ms/step "
            f"{result['images_per_s'][name]:8.1f} images/s  x{result['ratio_to_plain'][name]:.3f}"
        )
    print(f"bypass on top of ordered dropout: x{result['bypass_over_od']:.3f} (paper: 1.19)")
    print(f"super-network / plain: x{result['ratio']:.3f} (target <= 1.15)")


if __name__ == "__main__":
    app.run(main)
