"""How well a super-network judges: do its readings rank sub-networks like training them does?

The sub-networks are the ones a search judges, made by the project's own MCD sampler
(netadapt_tf.search.mcd) with MACs as the resource and no judge in the loop (each iteration
keeps a random sample), so the sets do not depend on the super-network under test and their
stand-alone accuracies can be computed once and cached:

* the span set: archs along several such shrink paths, from the full network down to a
  small fraction of its MACs (paths differ in which layers they shrink, so archs of similar
  MACs differ in how well they can learn);
* the decision set: the J candidates of one MCD iteration from a parent on a path, which is
  the choice the search makes with the readings.

Each arch is trained alone from scratch with one schedule (`StandaloneSchedule`) on several
seeds and scored on the test images; the readings are the super-network's held-out
accuracies. `rank_report` compares the two: Kendall tau and Spearman against the seed-mean
accuracies, the tau of ranking by MACs alone, the seed-vs-seed tau (the ceiling any judge
is held to), the read gap and, for the decision set, the regret of the super-network's pick.
"""

import dataclasses
import hashlib
import itertools
import json
import os

import numpy as np

from netadapt_tf.common import atomic_files, strict_json
from netadapt_tf.search.mcd import MCDConfig, MCDOptimizer
from netadapt_tf.space import macs
from netadapt_tf.space.arch import Arch, full_arch
from netadapt_tf.space.spec import NetworkSpec


def kendall_tau(a, b) -> float:
    """Kendall's tau-b (ties in either ranking counted as in scipy.stats.kendalltau)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    concordant = discordant = ties_a = ties_b = 0
    for i, j in itertools.combinations(range(len(a)), 2):
        da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
        if da == 0 and db == 0:
            continue
        if da == 0:
            ties_a += 1
        elif db == 0:
            ties_b += 1
        elif da == db:
            concordant += 1
        else:
            discordant += 1
    n = concordant + discordant
    denom = np.sqrt((n + ties_a) * (n + ties_b))
    return float((concordant - discordant) / denom) if denom else 0.0


def _ranks(values) -> np.ndarray:
    """Average ranks (ties share the mean of their positions)."""
    values = np.asarray(values, float)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values), dtype=float)
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(a, b) -> float:
    """Spearman's rank correlation (Pearson of the average ranks)."""
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra**2).sum() * (rb**2).sum())
    return float((ra * rb).sum() / denom) if denom else 0.0


# -- the arch sets -------------------------------------------------------------------------


def _random_score(seed: int):
    """A judge that knows nothing: a fixed pseudo-random number per (seed, arch)."""

    def score(arch: Arch) -> float:
        text = json.dumps([seed, arch.to_json()], sort_keys=True)
        return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) / 16**12

    return score


def mac_fraction(spec: NetworkSpec):
    full = macs.count(spec, full_arch(spec)).macs
    return lambda arch: macs.count(spec, arch).macs / full


def shrink_path(spec: NetworkSpec, search: MCDConfig, stop_fraction: float, seed: int):
    """The archs an MCD search with MACs as its resource passes through on its way to
    `stop_fraction` of the full MACs, keeping a random sample each iteration."""
    config = dataclasses.replace(
        search, target=None, target_fraction=stop_fraction, seed=seed, max_iterations=10_000
    )
    optimizer = MCDOptimizer(spec, config, _random_score(seed), mac_fraction(spec))
    result = optimizer.run()
    return [result.state.initial.arch] + [it.best.arch for it in result.iterations]


def span_set(
    spec: NetworkSpec,
    search: MCDConfig,
    count: int,
    paths: int,
    stop_fraction: float,
    seed: int = 0,
) -> list[Arch]:
    """The full network and `count - 1` archs from `paths` shrink paths, at MAC fractions
    spaced evenly in log scale from 1 down to `stop_fraction` and dealt out to the paths in
    turn (so archs of neighbouring MACs come from different paths)."""
    fraction = mac_fraction(spec)
    walks = [shrink_path(spec, search, stop_fraction, seed + p) for p in range(paths)]
    levels = np.geomspace(1.0, stop_fraction, count)[1:]
    archs = [full_arch(spec)]
    for i, level in enumerate(levels):
        walk = walks[i % paths]
        archs.append(min(walk, key=lambda a, level=level: abs(np.log(fraction(a) / level))))
    if len(set(archs)) < len(archs):
        raise ValueError(
            f"span_set: {count} archs from {paths} paths down to {stop_fraction} repeat an "
            "arch; use more paths, a smaller count or a smaller initial_reduction"
        )
    return archs


def decision_set(
    spec: NetworkSpec,
    search: MCDConfig,
    parent_fraction: float,
    count: int,
    seed: int = 0,
) -> tuple[Arch, list[Arch]]:
    """(parent, candidates): the parent is where a shrink path passes `parent_fraction` of
    the full MACs; the candidates are `count` samples of the MCD iteration that follows it
    (the search's own sampler, the same target for all)."""
    walk = shrink_path(spec, search, parent_fraction, seed)
    parent = walk[-1]
    config = dataclasses.replace(
        search, target=None, target_fraction=0.01, samples_per_iteration=count, seed=seed
    )
    optimizer = MCDOptimizer(spec, config, _random_score(seed), mac_fraction(spec))
    iteration = len(walk) - 1
    previous = mac_fraction(spec)(parent)
    target = previous - config.reduction(1.0, iteration)
    candidates = []
    for index in range(count):
        record = optimizer.make_sample(iteration, index, parent, target)
        if not record.ok:
            raise ValueError(
                f"decision_set: candidate {index} is {record.status} ({record.error}); use a "
                "larger layers_per_sample or a smaller reduction"
            )
        candidates.append(record.arch)
    return parent, candidates


# -- the statistics -------------------------------------------------------------------------


def seed_ceiling(accuracies: np.ndarray) -> float:
    """Mean Kendall tau between the rankings of every pair of seeds ([seeds, archs])."""
    pairs = list(itertools.combinations(range(len(accuracies)), 2))
    if not pairs:
        raise ValueError("seed_ceiling: needs at least 2 seeds")
    return float(np.mean([kendall_tau(accuracies[i], accuracies[j]) for i, j in pairs]))


def rank_report(
    readings,
    standalone: np.ndarray,
    mac_fractions,
    gap_from: float = 0.4,
) -> dict:
    """Readings (per arch) against stand-alone accuracies ([seeds, archs]), in points for
    the gaps: tau, Spearman, tau of MACs alone, the seed ceiling, and the mean absolute
    read gap over the archs with at least `gap_from` of the full MACs."""
    readings = np.asarray(readings, float)
    mean = standalone.mean(0)
    fractions = np.asarray(mac_fractions, float)
    near = fractions >= gap_from
    return {
        "tau": kendall_tau(readings, mean),
        "spearman": spearman(readings, mean),
        "macs_tau": kendall_tau(fractions, mean),
        "ceiling_tau": seed_ceiling(standalone),
        "read_gap": float(np.mean(np.abs(readings[near] - mean[near])) * 100),
        "seed_sd": float(np.mean(standalone.std(0, ddof=1)) * 100),
    }


def decision_report(readings, standalone: np.ndarray) -> dict:
    """The choice among candidates: tau, the ceiling, the regret (in points) of picking the
    most accurate reading and of a random pick, against the seed-mean accuracies."""
    readings = np.asarray(readings, float)
    mean = standalone.mean(0)
    best = mean.max()
    return {
        "tau": kendall_tau(readings, mean),
        "ceiling_tau": seed_ceiling(standalone),
        "regret": float((best - mean[int(np.argmax(readings))]) * 100),
        "random_regret": float((best - mean.mean()) * 100),
    }


# -- stand-alone accuracies, cached ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StandaloneSchedule:
    """How each arch is trained alone: Adam with cosine decay from `learning_rate` over
    `steps` batches of `batch_size` images drawn at random, BN momentum `bn_momentum`."""

    steps: int = 600
    batch_size: int = 128
    learning_rate: float = 3e-3
    bn_momentum: float = 0.9

    def __post_init__(self):
        for field in ("steps", "batch_size"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"StandaloneSchedule.{field}: {value!r} must be an int >= 1")
        if not self.learning_rate > 0:
            raise ValueError(f"StandaloneSchedule.learning_rate: {self.learning_rate} must be > 0")
        if not 0 < self.bn_momentum < 1:
            raise ValueError(f"StandaloneSchedule.bn_momentum: {self.bn_momentum} not in (0, 1)")


def _accuracy(value, field: str) -> float:
    return strict_json.number(value, field, minimum=0.0, maximum=1.0)


class StandaloneCache:
    """Stand-alone accuracies on disk (one JSON object), keyed by spec, arch, schedule,
    data and seed, so a study of super-network recipes trains each arch once."""

    def __init__(self, path: str):
        self.path = path
        self.entries = {}
        if os.path.exists(path):
            self.entries = strict_json.read(
                path, lambda data: strict_json.mapping(data, "entries", _accuracy)
            )

    @staticmethod
    def key(spec, arch, schedule, data_tag, seed) -> str:
        text = json.dumps(
            [spec.fingerprint(), arch.to_json(), dataclasses.asdict(schedule), data_tag, seed],
            sort_keys=True,
        )
        return hashlib.sha256(text.encode()).hexdigest()

    def get(self, key):
        return self.entries.get(key)

    def put(self, key, value: float) -> None:
        self.entries[key] = value
        atomic_files.write_json(self.path, self.entries, indent=0, sort_keys=True)


def train_alone(spec, arch, schedule: StandaloneSchedule, data, seed: int):
    """`arch` as a plain Keras model (export_subnetwork's layers and names) trained alone from
    fresh weights on `data`: (train images, train labels, test images, test labels)."""
    import keras
    import tensorflow as tf

    from netadapt_tf.graphs.export import export_subnetwork
    from netadapt_tf.supernet.network import build_supernet

    x_train, y_train = data[0], data[1]
    keras.utils.set_random_seed(seed)
    model = export_subnetwork(build_supernet(spec), arch)  # fresh weights, the arch's shapes
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = schedule.bn_momentum
    optimizer = keras.optimizers.Adam(
        keras.optimizers.schedules.CosineDecay(schedule.learning_rate, schedule.steps)
    )
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step(images, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(images, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))

    rng = np.random.default_rng(seed)
    for _ in range(schedule.steps):
        index = rng.integers(0, len(x_train), schedule.batch_size)
        step(x_train[index], y_train[index])
    return model


def test_accuracy(model, x_test, y_test) -> float:
    """Top-1 of a plain classifier on numpy test arrays, 1,000 images at a time."""
    import tensorflow as tf

    predict = tf.function(lambda images: tf.argmax(model(images, training=False), -1))
    hits = 0
    for start in range(0, len(x_test), 1000):
        hits += int(np.sum(predict(x_test[start : start + 1000]).numpy() == y_test[start:][:1000]))
    return hits / len(x_test)


def train_standalone(spec, arch, schedule: StandaloneSchedule, data, seed: int) -> float:
    """Test accuracy of `arch` trained alone from fresh weights (train_alone)."""
    return test_accuracy(train_alone(spec, arch, schedule, data, seed), data[2], data[3])
