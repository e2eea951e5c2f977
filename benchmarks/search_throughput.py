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

  python benchmarks/search_throughput.py [--examples=2000] [--batch_size=256] [--json]
"""

import json
import statistics
import time

import numpy as np
import tensorflow as tf
from absl import app, flags

from netadapt_tf.configs.supernet import fashion_mnist_demo
from netadapt_tf.graphs.export import export_subnetwork
from netadapt_tf.judge.evaluation import SubnetEvaluator
from netadapt_tf.space.arch import full_arch, random_arch
from netadapt_tf.supernet.network import build_supernet

_EXAMPLES = flags.DEFINE_integer("examples", 2000, "Held-out images (synthetic).")
_BATCH = flags.DEFINE_integer("batch_size", 256, "Evaluation batch size.")
_ARCHS = flags.DEFINE_integer("archs", 10, "Random archs judged.")
_ROUNDS = flags.DEFINE_integer("rounds", 1, "Interleaved timings per arch and path.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the images and archs.")
_JSON = flags.DEFINE_bool("json", False, "Print JSON.")


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
    size, channels = spec.input_size, spec.input_channels
    images = rng.uniform(0, 1, (examples, size, size, channels)).astype(np.float32)
    labels = rng.integers(0, spec.num_classes, examples).astype(np.int32)
    held_out = tf.data.Dataset.from_tensor_slices((images, labels))
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


if __name__ == "__main__":
    app.run(main)
