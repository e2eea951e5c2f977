"""Training-step time of the super-network against the plain network it contains.

Variants, same builder, global batch and optimizer, timed interleaved in one process:
  plain     the full network exported as a plain Keras model (what one trains without NAS)
  od        super-network with ordered dropout only (no bypass, fixed kernels)
  od_bypass ordered dropout and channel-level bypass (fixed kernels)
  full      ordered dropout, bypass and superkernel (what tools/train_supernet.py trains)
Each variant runs the trainers' step (a `strategy.run` inside `tf.function`, sub-networks
drawn for the global batch, supernet/sampling.replica_rows) on every core (one replica per
core, supernet/distribute.use_cores; `--cores` caps them) and, for plain, od_bypass and full,
on one core: in a second process pinned to one CPU with TensorFlow set up for one core
(distribute.use_cores(1), as `--cores=1` trains), which times its round when this process
has timed its own, so the rounds of both still interleave. (Pinning this process for those
rounds instead reads faster: its thread pools and replica devices stay those of every core;
docs/benchmarks.md.) Prints images/s
per variant, the spread over rounds and the ratios; --json prints one object with keys
`ratio` (full / plain, every core), `superkernel_ratio` (full / od_bypass), `cores_speedup`
(plain, every core over one) and the per-variant figures.

With --trace_dir, each every-core variant is then run `--steps` more steps under the
TensorFlow profiler (a trace per variant under trace_dir/<variant>, for TensorBoard), and the
CPU time of those steps is summed per op type and per layer part (common/op_profile.py): the
report adds what each variant spends over the previous one (od over plain, od_bypass over od,
full over od_bypass), the key `trace` in --json.

  python benchmarks/supernet_step.py [--model=netadaptv2_mobilenet_v3] [--cores=0] [--json]
      [--trace_dir=DIR]
"""

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

from netadapt_tf import builders
from netadapt_tf.common import op_profile
from netadapt_tf.graphs.export import export_subnetwork
from netadapt_tf.space.arch import full_arch
from netadapt_tf.space.spec import BlockSpec, LayerSpec, NetworkSpec
from netadapt_tf.supernet import distribute
from netadapt_tf.supernet.network import build_supernet
from netadapt_tf.supernet.sampling import OrderedDropoutSampler, replica_rows

_MODEL = flags.DEFINE_string("model", "netadaptv2_mobilenet_v3", "Builder.")
_WIDTH = flags.DEFINE_float("width_multiplier", 0.5, "Width multiplier.")
_SIZE = flags.DEFINE_integer("input_size", 64, "Input size.")
_BATCH = flags.DEFINE_integer("batch_size", 64, "Batch size.")
_STEPS = flags.DEFINE_integer("steps", 6, "Timed steps per round and variant.")
_ROUNDS = flags.DEFINE_integer("rounds", 5, "Interleaved rounds.")
_CORES = flags.DEFINE_integer("cores", 0, "Cores (replicas) to train on; 0: every core.")
_JSON = flags.DEFINE_bool("json", False, "Print JSON.")
_TRACE = flags.DEFINE_string(
    "trace_dir", None, "Also trace each every-core variant into this directory (profiler)."
)
_WORKER = flags.DEFINE_bool(
    "one_core_worker", False, "Internal: be the one-core process (rounds asked on stdin)."
)

ONE_CORE = ("plain", "od_bypass", "full")  # the variants also timed on one core


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


def _step_fn(strategy, model, forward, optimizer, batch_size: int):
    """The trainers' distributed step: per-replica loss over the global batch, summed."""

    def replica_step(images, labels, seed):
        with tf.GradientTape() as tape:
            logits = forward(images, seed)
            per_example = keras.losses.sparse_categorical_crossentropy(
                labels, logits, from_logits=True
            )
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=batch_size)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    @tf.function
    def step(images, labels, seed):
        loss = strategy.run(replica_step, args=(images, labels, seed))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, loss, None)

    return step


def make_variants(strategy, names, batch_size: int) -> dict:
    options = dict(
        input_size=_SIZE.value, num_classes=10, width_multiplier=_WIDTH.value, dropout=0.0
    )
    spec = builders.build(_MODEL.value, **options)
    no_bypass = fixed_kernels(builders.build(_MODEL.value, channel_bypass=False, **options))
    specs = {"od": no_bypass, "od_bypass": fixed_kernels(spec), "full": spec}
    variants = {}
    with strategy.scope():
        for name in names:
            if name == "plain":
                model = export_subnetwork(build_supernet(spec), full_arch(spec))
                distribute.sync_batch_norm(model, strategy)  # as the trainers do

                def forward(x, seed, model=model):
                    return model(x, training=True)

            else:
                model = build_supernet(specs[name])
                sampler = OrderedDropoutSampler(specs[name])

                def forward(x, seed, model=model, sampler=sampler):
                    rows = replica_rows(sampler, tf.shape(x)[0], 0, seed[1])
                    return model({"image": x, **rows}, training=True)

            optimizer = keras.optimizers.RMSprop(1e-3)
            optimizer.build(model.trainable_variables)
            variants[name] = _step_fn(strategy, model, forward, optimizer, batch_size)
    return variants


def _distributed_batch(strategy, batch: int, seed: int):
    """One global batch of random images and labels, split among `strategy`'s replicas."""
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(batch, _SIZE.value, _SIZE.value, 3)).astype(np.float32)
    labels = rng.integers(0, 10, batch).astype(np.int32)
    ds = tf.data.Dataset.from_tensors((images, labels)).unbatch().batch(batch)
    return next(iter(strategy.experimental_distribute_dataset(ds)))


def _round(steps: dict, inputs, r: int) -> dict:
    """Seconds per step of each variant in round r (round -1: two steps that trace and warm
    up, not timed)."""
    x, y = inputs
    seconds = {}
    for name, step in steps.items():
        start = time.perf_counter()
        for i in range(_STEPS.value if r >= 0 else 2):
            loss = step(x, y, tf.constant([r, i], tf.int64))
        float(loss)
        seconds[name] = (time.perf_counter() - start) / _STEPS.value
    return seconds


class OneCoreProcess:
    """The one-core variants, timed in a child process (this script with --one_core_worker)
    pinned to `cpu`, its stderr into `log`. `round(r)` has it time round r and returns its
    reply: {"seconds": per variant, "cpus": the CPUs it may run on, "replicas": 1}."""

    def __init__(self, cpu: int, batch: int, log):
        args = [
            sys.executable,
            os.path.abspath(__file__),
            f"--model={_MODEL.value}",
            f"--width_multiplier={_WIDTH.value}",
            f"--input_size={_SIZE.value}",
            f"--batch_size={batch}",
            f"--steps={_STEPS.value}",
            "--one_core_worker",
        ]
        self._log = log
        self._process = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
        )

    def round(self, r: int) -> dict:
        self._process.stdin.write(f"{r}\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            self._process.wait()
            self._log.seek(0)
            tail = self._log.read()[-3000:]
            raise RuntimeError(
                f"the one-core process ended (exit status {self._process.returncode}):\n{tail}"
            )
        return json.loads(line)

    def __enter__(self) -> "OneCoreProcess":
        return self

    def __exit__(self, *exc) -> None:
        self._process.stdin.close()
        self._process.wait()


def one_core_worker() -> None:
    """The child of OneCoreProcess: build the one-core variants, then time a round for each
    round number read from stdin, one JSON line each on stdout."""
    distribute.use_cores(1)
    strategy = distribute.mirrored()
    steps = make_variants(strategy, ONE_CORE, _BATCH.value)
    inputs = _distributed_batch(strategy, _BATCH.value, seed=0)
    setup = {"cpus": sorted(os.sched_getaffinity(0)), "replicas": strategy.num_replicas_in_sync}
    for line in sys.stdin:
        print(json.dumps({"seconds": _round(steps, inputs, int(line)), **setup}), flush=True)


def _time(steps: dict, strategy, batch: int) -> tuple[dict, dict]:
    """Seconds per step of every (mode, variant): in each round this process times its
    every-core variants, then the one-core process times its own. Also what the one-core
    process ran on (its CPUs and replicas)."""
    inputs = _distributed_batch(strategy, batch, seed=0)
    seconds = {}
    cpu = min(os.sched_getaffinity(0))
    with tempfile.TemporaryFile("w+") as log, OneCoreProcess(cpu, batch, log) as one_core:
        for r in range(-1, _ROUNDS.value):
            timed = {("all_cores", n): s for n, s in _round(steps, inputs, r).items()}
            reply = one_core.round(r)
            timed.update({("one_core", n): s for n, s in reply["seconds"].items()})
            if r >= 0:
                for key, value in timed.items():
                    seconds.setdefault(key, []).append(value)
    return seconds, {"cpus": reply["cpus"], "replicas": reply["replicas"]}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if _CORES.value < 0:
        raise app.UsageError(f"--cores: {_CORES.value} must be >= 0 (0: every core)")
    if _TRACE.value and os.path.exists(_TRACE.value) and os.listdir(_TRACE.value):
        raise app.UsageError(f"--trace_dir: {_TRACE.value} is not empty; give a new directory")
    if _WORKER.value:
        one_core_worker()
        return
    distribute.use_cores(_CORES.value)  # before TensorFlow runs anything
    batch = _BATCH.value
    strategy = distribute.mirrored()
    names = ("plain", "od", "od_bypass", "full")
    steps = make_variants(strategy, names, batch)
    seconds, one_core = _time(steps, strategy, batch)
    result = summarize(seconds, batch, strategy.num_replicas_in_sync)
    result["one_core"].update(one_core)
    if _TRACE.value:
        result["trace"] = trace({n: (strategy, steps[n]) for n in names}, batch, _TRACE.value)
    if _JSON.value:
        print(json.dumps(result))
        return
    for mode in ("all_cores", "one_core"):
        for name, ms in result[mode]["step_ms"].items():
            fig = result[mode]
            print(
                f"{mode:>9} {name:>10}: {ms:8.1f} ms/step (rounds {fig['spread_ms'][name]}) "
                f"{fig['images_per_s'][name]:8.1f} images/s  x{fig['ratio_to_plain'][name]:.3f}"
            )
    print(f"bypass on top of ordered dropout: x{result['bypass_over_od']:.3f} (paper: 1.19)")
    print(f"superkernel / fixed kernels: x{result['superkernel_ratio']:.3f} (target <= 1.1)")
    print(f"super-network / plain: x{result['ratio']:.3f} (target <= 1.15)")
    print(
        f"plain step, {result['replicas']} cores over one: x{result['cores_speedup']:.3f} "
        "(target >= 1.7 on 2 cores)"
    )
    for row in result.get("trace", {}).get("steps", []):
        print(
            f"trace {row['variant']:>10}: {row['cpu_ms']:8.1f} ms CPU/step in ops "
            f"({row['backward_share']:.0%} backward); top op types {row['top_types']}"
        )
    for row in result.get("trace", {}).get("extra", []):
        print(
            f"trace {row['variant']} over {row['over']}: {row['extra_ms']:+.1f} ms CPU/step; "
            f"by op type {row['by_type']}; by layer part {row['by_part']}"
        )


def trace(timed: dict, batch: int, logdir: str) -> dict:
    """`--steps` steps of each variant under the profiler (one session per variant, after
    the timed rounds, so the trace costs them nothing), summed per op type and layer part."""
    times = {}
    for name, (strategy, step) in timed.items():
        x, y = _distributed_batch(strategy, batch, seed=1)
        float(step(x, y, tf.constant([-2, 0], tf.int64)))  # traced already; one warm step
        directory = os.path.join(logdir, name)
        tf.profiler.experimental.start(directory)
        for i in range(_STEPS.value):
            loss = step(x, y, tf.constant([-2, i + 1], tf.int64))
        float(loss)
        tf.profiler.experimental.stop()
        times[name] = op_profile.op_seconds(directory).per_step(_STEPS.value)
    steps = [
        {
            "variant": name,
            "cpu_ms": round(t.total * 1e3, 1),
            "backward_share": round(t.backward / t.total, 3),
            "top_types": [
                [k, round(v * 1e3, 1)]
                for k, v in sorted(t.by_type.items(), key=lambda kv: -kv[1])[:5]
            ],
        }
        for name, t in times.items()
    ]
    order = [name for name in ("plain", "od", "od_bypass", "full") if name in times]
    extra = [
        {"variant": b, "over": a, **op_profile.compare(times[a], times[b], top=4)}
        for a, b in zip(order, order[1:], strict=False)
    ]
    return {"logdir": logdir, "steps": steps, "extra": extra}


def summarize(seconds: dict, batch: int, replicas: int) -> dict:
    """Medians per (mode, variant), the rounds' spread and the ratios."""
    result = {
        "model": _MODEL.value,
        "width_multiplier": _WIDTH.value,
        "input_size": _SIZE.value,
        "batch_size": batch,
        "replicas": replicas,
        "rounds": _ROUNDS.value,
        "steps": _STEPS.value,
    }
    median = {key: statistics.median(s) for key, s in seconds.items()}
    for mode in ("all_cores", "one_core"):
        keys = [key for key in seconds if key[0] == mode]
        plain = median[(mode, "plain")]
        result[mode] = {
            "step_ms": {n: round(median[(m, n)] * 1000, 2) for m, n in keys},
            "spread_ms": {
                n: [round(min(seconds[(m, n)]) * 1000, 1), round(max(seconds[(m, n)]) * 1000, 1)]
                for m, n in keys
            },
            "images_per_s": {n: round(batch / median[(m, n)], 1) for m, n in keys},
            "ratio_to_plain": {n: round(median[(m, n)] / plain, 3) for m, n in keys},
        }
    every = {name: median[("all_cores", name)] for name in ("plain", "od", "od_bypass", "full")}
    result["bypass_over_od"] = round(every["od_bypass"] / every["od"], 3)
    result["superkernel_ratio"] = round(every["full"] / every["od_bypass"], 3)
    result["ratio"] = round(every["full"] / every["plain"], 3)
    result["cores_speedup"] = round(median[("one_core", "plain")] / every["plain"], 3)
    result["one_core_superkernel_ratio"] = round(
        median[("one_core", "full")] / median[("one_core", "od_bypass")], 3
    )
    return result


if __name__ == "__main__":
    app.run(main)
