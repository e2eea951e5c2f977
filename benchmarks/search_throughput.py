"""How fast the search judges samples, against a forward pass of the samples' exported models.

On the demo super-network (configs/supernet.py `fashion_mnist_demo`; untrained weights: the
timing does not depend on training) and `--examples` synthetic held-out images, each of
`--archs` random archs is judged by SubnetEvaluator (what search/held_out_accuracy.py builds)
through the sliced forward (fast=True, the search's path) and through the masked
super-network, and its exported sub-network (export_subnetwork, traced once per arch outside
the timing) runs one tf.function forward over the same batches. The three are timed
interleaved (rotating order, `--rounds` per arch) so they see the same machine load; the
ratio of an arch is judge time / exported forward time, and the figures are medians over the
archs. --json prints `samples_per_min`, `ratio` (sliced path), `samples_per_min_masked`,
`ratio_masked` and the settings.

With --workers=N (default: one per CPU core; 0 skips it) the same judge runs in a
search.judge_pool.JudgePool of 1 and of N processes (each one thread, as the search runs
them), fed by N threads as the search's sample threads feed it; after every process has
traced, `--pool_archs` archs are judged by each pool in turn, `--rounds` times, and the
figures are medians: --json adds `pool_samples_per_s` (per worker count) and
`workers_speedup` (N processes over 1).

  python benchmarks/search_throughput.py [--examples=2000] [--batch_size=256] [--json]
"""

import concurrent.futures
import json
import statistics
import time

import numpy as np
import tensorflow as tf
from absl import app, flags

from netadapt_tf.configs.supernet import fashion_mnist_demo
from netadapt_tf.graphs.export import export_subnetwork
from netadapt_tf.judge.evaluation import SubnetEvaluator
from netadapt_tf.search.judge_pool import JudgePool
from netadapt_tf.space.arch import full_arch, random_arch
from netadapt_tf.supernet import distribute
from netadapt_tf.supernet.network import build_supernet

_EXAMPLES = flags.DEFINE_integer("examples", 2000, "Held-out images (synthetic).")
_BATCH = flags.DEFINE_integer("batch_size", 256, "Evaluation batch size.")
_ARCHS = flags.DEFINE_integer("archs", 10, "Random archs judged.")
_ROUNDS = flags.DEFINE_integer("rounds", 1, "Interleaved timings per arch and path.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the images and archs.")
_JSON = flags.DEFINE_bool("json", False, "Print JSON.")
_WORKERS = flags.DEFINE_integer(
    "workers",
    None,
    "Judging processes to compare with one (0: skip; default: every core).",
    lower_bound=0,
)
_POOL_ARCHS = flags.DEFINE_integer("pool_archs", 12, "Archs judged per pool and round.")


def _held_out(spec, examples: int, rng):
    size, channels = spec.input_size, spec.input_channels
    images = rng.uniform(0, 1, (examples, size, size, channels)).astype(np.float32)
    labels = rng.integers(0, spec.num_classes, examples).astype(np.int32)
    return tf.data.Dataset.from_tensor_slices((images, labels))


def synthetic_reading(examples: int, batch_size: int, seed: int):
    """A pool worker's judge: the sliced SubnetEvaluator of the untrained demo super-network
    on the synthetic held-out images (the factory JudgePool calls in each process)."""
    spec = fashion_mnist_demo().model.build()
    evaluator = SubnetEvaluator(
        build_supernet(spec),
        _held_out(spec, examples, np.random.default_rng(seed)),
        batch_size,
        fast=True,
    )
    return evaluator.accuracy


def _judge_all(pool: JudgePool, archs, threads: int) -> float:
    """Seconds for `pool` to judge `archs`, fed by `threads` threads."""
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as feeders:
        list(feeders.map(pool, archs))
    return time.perf_counter() - start


def measure_pools(
    workers: int, examples: int, batch_size: int, pool_archs: int, rounds: int, seed: int
) -> dict:
    """Samples judged per second by a pool of 1 and of `workers` processes (see module)."""
    spec = fashion_mnist_demo().model.build()
    rng = np.random.default_rng(seed + 1)
    archs = [random_arch(spec, rng) for _ in range(pool_archs)]
    args = (examples, batch_size, seed)
    counts = sorted({1, workers})
    pools = {n: JudgePool(args, n, factory=synthetic_reading) for n in counts}
    try:
        for n, pool in pools.items():  # every process loads and traces outside the timing
            _judge_all(pool, [full_arch(spec)] * (4 * n), n)
        seconds = {n: [] for n in counts}
        for r in range(rounds):
            for n in counts if r % 2 == 0 else counts[::-1]:
                seconds[n].append(_judge_all(pools[n], archs, workers))
    finally:
        for pool in pools.values():
            pool.close()
    rates = {str(n): pool_archs / statistics.median(seconds[n]) for n in counts}
    return {
        "pool_samples_per_s": rates,
        "pool_seconds": {str(n): seconds[n] for n in counts},
        "workers": workers,
        "workers_speedup": rates[str(workers)] / rates["1"],
        "pool_archs": pool_archs,
    }


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _exported_forward(supernet, arch, batches):
    """A callable running the exported model of `arch` over `batches` (traced here)."""
    model = export_subnetwork(supernet, arch)
    forward = tf.function(lambda x: model(x, training=False))
    images = [tf.constant(b) for b, _, _ in batches]
    forward(images[0]).numpy()

    def run():
        for x in images:
            forward(x).numpy()  # one result per batch, as the judge reads one per batch

    return run


def measure(examples: int, batch_size: int, num_archs: int, rounds: int, seed: int) -> dict:
    spec = fashion_mnist_demo().model.build()
    supernet = build_supernet(spec)
    rng = np.random.default_rng(seed)
    held_out = _held_out(spec, examples, rng)
    judges = {
        "sliced": SubnetEvaluator(supernet, held_out, batch_size, fast=True),
        "masked": SubnetEvaluator(supernet, held_out, batch_size),
    }
    for judge in judges.values():
        judge.accuracy(full_arch(spec))  # traces outside the timing
    seconds = {"sliced": [], "masked": []}
    ratios = {"sliced": [], "masked": []}
    for i in range(num_archs):
        arch = random_arch(spec, rng)
        paths = {name: (lambda j=judge, a=arch: j.accuracy(a)) for name, judge in judges.items()}
        paths["exported"] = _exported_forward(supernet, arch, judges["sliced"].batches)
        times = {name: [] for name in paths}
        order = list(paths)
        for r in range(rounds):
            shift = (i * rounds + r) % len(order)
            for name in order[shift:] + order[:shift]:
                times[name].append(_timed(paths[name]))
        plain = statistics.median(times["exported"])
        for name in seconds:
            judged = statistics.median(times[name])
            seconds[name].append(judged)
            ratios[name].append(judged / plain)
    return {
        "samples_per_min": 60.0 / statistics.median(seconds["sliced"]),
        "ratio": statistics.median(ratios["sliced"]),
        "samples_per_min_masked": 60.0 / statistics.median(seconds["masked"]),
        "ratio_masked": statistics.median(ratios["masked"]),
        "ratios": ratios,
        "examples": examples,
        "batch_size": batch_size,
        "archs": num_archs,
        "rounds": rounds,
        "traces": {name: judge.traces for name, judge in judges.items()},
    }


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    result = measure(_EXAMPLES.value, _BATCH.value, _ARCHS.value, _ROUNDS.value, _SEED.value)
    workers = distribute.available_cores() if _WORKERS.value is None else _WORKERS.value
    if workers:
        result.update(
            measure_pools(
                workers,
                _EXAMPLES.value,
                _BATCH.value,
                _POOL_ARCHS.value,
                _ROUNDS.value,
                _SEED.value,
            )
        )
    if _JSON.value:
        print(json.dumps(result))
        return
    print(
        f"{result['examples']} held-out images, batch {result['batch_size']}, "
        f"{result['archs']} random archs, medians"
    )
    for name, suffix in (("sliced (search)", ""), ("masked", "_masked")):
        print(
            f"  {name:16s} {result['samples_per_min' + suffix]:7.1f} samples/min   "
            f"judge / exported forward = {result['ratio' + suffix]:.3f}"
        )
    if workers:
        rates = result["pool_samples_per_s"]
        print(
            f"  judge pool       {rates['1']:.2f} samples/s with 1 process, "
            f"{rates[str(workers)]:.2f} with {workers}: workers_speedup "
            f"{result['workers_speedup']:.3f}"
        )


if __name__ == "__main__":
    app.run(main)
