"""Judging a search's samples across machines, through tf.distribute.

`ClusterJudge` is the search's judge on a cluster described by TF_CONFIG, the way users
already run multi-worker training: this process is the chief (the coordinator), the
super-network's weights live on the parameter servers ("ps" tasks) and each sample is one
function that a `tf.distribute.coordinator.ClusterCoordinator` schedules on whichever worker
is free. Workers and parameter servers are `tools/judge_server.py` processes.

A sample's function is the serial judge's arithmetic (judge/evaluation.py, fast path): the
held-out batches through the sliced forward, BN recalibrated first when asked (the
recalibration batches' statistics weighted as `SlicedForward.recalibrated_statistics`
weighs them, summed in float64), the batches' sums added in float64. The data go to each
worker once, as a dataset whose only element is the whole held-out set (and the
recalibration batches), repeated: every sample reads that element, so no sample depends on
where another one stopped. Readings equal the serial judge's up to float rounding (top-1
counts exactly; tests/test_cluster_judge.py compares them).

A worker lost mid-search costs nothing but time: the coordinator schedules its functions on
another worker and re-creates the worker's dataset when it comes back. A lost parameter
server is an error (the weights are gone), raised to the search, which records the sample as
failed as it does for any judge error.
"""

import json
import os
import threading

import numpy as np
import tensorflow as tf

from netadapt_tf.depth import METRIC_NAMES

JOBS = ("worker", "ps")


def cluster_resolver():
    """The cluster of TF_CONFIG, which must name at least one worker and one ps task and
    make this process the chief."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ValueError(
            "TF_CONFIG: not set; the cluster judge needs the cluster in TF_CONFIG (chief: this "
            "process; worker and ps tasks: tools/judge_server.py)"
        )
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG: not JSON ({error})") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    if not isinstance(cluster, dict):
        raise ValueError(f"TF_CONFIG: {raw[:200]!r} has no 'cluster' object")
    for job in JOBS:
        if not cluster.get(job):
            raise ValueError(
                f"TF_CONFIG: cluster {sorted(cluster)} has no {job!r} task; the cluster judge "
                f"needs at least one of each of {JOBS} (and this process as 'chief')"
            )
    task = config.get("task", {})
    if task.get("type") != "chief":
        raise ValueError(
            f"TF_CONFIG: task {task!r}; the search judging on a cluster must be its 'chief'"
        )
    return tf.distribute.cluster_resolver.TFConfigClusterResolver()


class ClusterJudge:
    """accuracy(arch) judged on the cluster's workers. `args` are the reading factory's
    (search.held_out_accuracy's: checkpoint_dir, settings, data_overrides,
    allow_unrecorded_split); the reading is built once, on this process, with its variables
    on the parameter servers. `fingerprint` and `num_examples` are that reading's; `workers`
    is the cluster's worker count.
    Thread-safe: the search's sample threads call it at once; close it when done."""

    def __init__(self, args: tuple, resolver=None, factory=None):
        if factory is None:
            from netadapt_tf.search.held_out_accuracy import held_out_accuracy as factory
        resolver = resolver or cluster_resolver()
        self.workers = resolver.cluster_spec().num_tasks("worker")
        self.strategy = tf.distribute.experimental.ParameterServerStrategy(resolver)
        with self.strategy.scope():
            self.reading = factory(*args)
        self.evaluator = evaluator = self.reading.judge
        if not evaluator.fast:
            raise ValueError("cluster judge: the reading must judge through the sliced forward")
        self.fingerprint = self.reading.fingerprint
        self.num_examples = self.reading.num_examples
        self.coordinator = tf.distribute.coordinator.ClusterCoordinator(self.strategy)
        self._lock = threading.Lock()
        self._iterator = iter(self.coordinator.create_per_worker_dataset(self._dataset))
        recal = evaluator.recal_batches
        cumulative = evaluator.recalibration_average == "cumulative"
        self._weights = tf.constant(
            evaluator.sliced.recalibration_weights(len(recal), cumulative)
            if recal
            else np.zeros((0, evaluator.sliced.statistics_size))
        )
        self._totals = tf.function(self._totals_impl, autograph=False)

    def _dataset(self):
        evaluator = self.evaluator
        images, labels, valid = (np.stack(part) for part in zip(*evaluator.batches, strict=True))
        element = (images, labels, valid)
        if evaluator.recal_batches:
            element += (np.stack(evaluator.recal_batches),)
        return tf.data.Dataset.from_tensors(element).repeat()

    def _totals_impl(self, iterator, sizes, weights):
        """The held-out `_sums` of the arch `sizes` over every batch, on a worker."""
        evaluator, sliced = self.evaluator, self.evaluator.sliced
        element = next(iterator)
        images, labels, valid = element[:3]
        statistics = None
        if len(element) == 4:
            recal = element[3]

            def add_statistics(i, total):
                batch = sliced.forward(recal[i], sizes, batch_statistics=True)[1]
                return i + 1, total + weights[i] * tf.cast(batch, tf.float64)

            _, total = tf.while_loop(
                lambda i, _: i < tf.shape(recal)[0],
                add_statistics,
                (tf.constant(0), tf.zeros([2, sliced.statistics_size], tf.float64)),
            )
            statistics = tf.cast(total, tf.float32)

        def add_sums(i, total):
            outputs = sliced.forward(images[i], sizes, statistics)
            sums = evaluator._sums(outputs, labels[i], valid[i])
            return i + 1, total + tf.cast(sums, tf.float64)

        width = 2 if evaluator.task == "classification" else len(METRIC_NAMES) + 1
        _, total = tf.while_loop(
            lambda i, _: i < tf.shape(images)[0],
            add_sums,
            (tf.constant(0), tf.zeros([width], tf.float64)),
        )
        return total

    def totals(self, arch) -> np.ndarray:
        sizes = self.evaluator.sliced.sizes(arch)
        with self._lock:
            remote = self.coordinator.schedule(
                self._totals, args=(self._iterator, sizes, self._weights)
            )
        return np.asarray(remote.fetch(), np.float64)

    def __call__(self, arch) -> float:
        return self.evaluator.accuracy_of(self.totals(arch))

    def close(self) -> None:
        with self._lock:
            self.coordinator.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
