"""What a training step costs before it trains: its trace and its first call, with Keras'
optimizer and with the fused one the trainers use (netadapt_tf/training/fused_optimizers.py).

A trainer pays both once per network; the demo's comparison trains 18 networks of 80 steps,
so there they are a large share of the stage (docs/benchmarks.md, "The training columns'
fixed costs"). Per round and optimizer, interleaved in one process: a fresh plain model of
the uniform arch at --ratio (the comparison's uniform curve), the trainers' step (a
`strategy.run` inside `tf.function`: one-hot cross-entropy over the global batch, the
gradient, the optimizer), then the seconds to trace it (`get_concrete_function`), its op
count, the seconds of the first call (graph optimisation and the first step) and the median
of --steps more steps. Prints the medians over rounds and fused / Keras; --json prints one
object with keys `trace_ratio`, `first_call_ratio`, `step_ratio` (fused / Keras, medians)
and `figures` (per optimizer: `trace_s`, `first_call_s`, `step_ms` per round, `ops`).

  python benchmarks/step_trace.py [--model=netadaptv2_mobilenet_v3] [--width_multiplier=0.25]
      [--input_size=32] [--ratio=0.5] [--optimizer=adam] [--cores=1] [--rounds=3] [--json]
"""

import json
import statistics
import time

import numpy as np
import tensorflow as tf
from absl import app, flags

from netadapt_tf import builders
from netadapt_tf.graphs.export import export_subnetwork
from netadapt_tf.space.arch import uniform_arch
from netadapt_tf.supernet import distribute
from netadapt_tf.supernet.network import build_supernet
from netadapt_tf.training import fused_optimizers
from netadapt_tf.training import step as training_step
from netadapt_tf.training.supernet_trainer import OPTIMIZERS, TrainConfig, make_optimizer

_MODEL = flags.DEFINE_string("model", "netadaptv2_mobilenet_v3", "Builder.")
_WIDTH = flags.DEFINE_float("width_multiplier", 0.25, "Width multiplier.")
_SIZE = flags.DEFINE_integer("input_size", 32, "Input size.")
_CLASSES = flags.DEFINE_integer("num_classes", 10, "Classes.")
_RATIO = flags.DEFINE_float("ratio", 0.5, "Uniform width ratio of the network trained.")
_OPTIMIZER = flags.DEFINE_enum("optimizer", "adam", list(OPTIMIZERS), "Optimizer.")
_BATCH = flags.DEFINE_integer("batch_size", 128, "Global batch.")
_CORES = flags.DEFINE_integer("cores", 1, "Cores (replicas); the demo's columns use 1.")
_STEPS = flags.DEFINE_integer("steps", 10, "Timed steps after the first call.", lower_bound=1)
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Interleaved rounds.", lower_bound=1)
_JSON = flags.DEFINE_bool("json", False, "Print JSON.")

KINDS = ("keras", "fused")


def _step(strategy, model, optimizer, batch_size: int, classes: int):
    def replica_step(images, targets):
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            per_example = training_step.classification_loss(targets, logits, 0.0, classes)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=batch_size)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss, tf.reduce_sum(per_example)

    @tf.function
    def step(batch):
        return training_step.replicas_sum(strategy, replica_step, batch)

    return step


def measure(kind: str, spec, strategy, batch) -> dict:
    """One round of optimizer `kind`: trace seconds, op count, first call, step ms."""
    config = TrainConfig(optimizer=_OPTIMIZER.value, momentum=0.9)
    with strategy.scope():
        model = export_subnetwork(build_supernet(spec), uniform_arch(spec, _RATIO.value))
        distribute.sync_batch_norm(model, strategy)
        optimizer = make_optimizer(config, steps_per_epoch=100)
        if kind == "keras":
            optimizer = fused_optimizers.keras_twin(optimizer)
        optimizer.build(model.trainable_variables)
    step = _step(strategy, model, optimizer, _BATCH.value, spec.num_classes)
    start = time.perf_counter()
    graph = step.get_concrete_function(batch).graph
    traced = time.perf_counter() - start
    start = time.perf_counter()
    float(step(batch)[0])
    first = time.perf_counter() - start
    times = []
    for _ in range(_STEPS.value):
        start = time.perf_counter()
        float(step(batch)[0])
        times.append(time.perf_counter() - start)
    return {
        "trace_s": traced,
        "ops": len(graph.get_operations()),
        "first_call_s": first,
        "step_ms": 1000 * statistics.median(times),
    }


def summarize(rounds: list[dict]) -> dict:
    """Medians over rounds per optimizer and the fused / Keras ratios."""
    figures = {
        kind: {key: [r[kind][key] for r in rounds] for key in rounds[0][kind]} for kind in KINDS
    }
    median = {k: {key: statistics.median(v) for key, v in f.items()} for k, f in figures.items()}
    ratio = {
        key: round(median["fused"][key] / median["keras"][key], 3)
        for key in ("trace_s", "first_call_s", "step_ms")
    }
    return {
        "trace_ratio": ratio["trace_s"],
        "first_call_ratio": ratio["first_call_s"],
        "step_ratio": ratio["step_ms"],
        "median": median,
        "figures": figures,
    }


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}; everything is a --flag")
    distribute.use_cores(_CORES.value, _BATCH.value)
    spec = builders.build(
        _MODEL.value,
        input_size=_SIZE.value,
        num_classes=_CLASSES.value,
        width_multiplier=_WIDTH.value,
    )
    strategy = distribute.mirrored()
    rng = np.random.default_rng(0)
    size = _SIZE.value
    images = rng.normal(size=(_BATCH.value, size, size, 3)).astype(np.float32)
    targets = np.eye(spec.num_classes, dtype=np.float32)[
        rng.integers(0, spec.num_classes, _BATCH.value)
    ]
    ds = tf.data.Dataset.from_tensors((images, targets)).unbatch().batch(_BATCH.value)
    batch = next(iter(strategy.experimental_distribute_dataset(ds)))
    rounds = []
    for r in range(_ROUNDS.value):
        kinds = KINDS if r % 2 == 0 else KINDS[::-1]  # alternate which goes first
        rounds.append({kind: measure(kind, spec, strategy, batch) for kind in kinds})
    result = {
        "model": _MODEL.value,
        "width_multiplier": _WIDTH.value,
        "input_size": size,
        "ratio": _RATIO.value,
        "optimizer": _OPTIMIZER.value,
        "batch_size": _BATCH.value,
        "replicas": strategy.num_replicas_in_sync,
        "rounds": _ROUNDS.value,
        **summarize(rounds),
    }
    if _JSON.value:
        print(json.dumps(result, indent=1))
        return
    for kind in KINDS:
        m = result["median"][kind]
        print(
            f"{kind:>6}: trace {m['trace_s']:6.2f} s ({m['ops']:.0f} ops), first call "
            f"{m['first_call_s']:5.2f} s, step {m['step_ms']:6.1f} ms"
        )
    print(
        f"fused / keras: trace x{result['trace_ratio']:.3f}, first call "
        f"x{result['first_call_ratio']:.3f}, step x{result['step_ratio']:.3f} "
        f"(medians of {_ROUNDS.value} rounds)"
    )


if __name__ == "__main__":
    app.run(main)
