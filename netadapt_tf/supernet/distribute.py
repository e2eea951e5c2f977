"""The tf.distribute strategy a run trains under, chosen by name.

"mirrored" (default): all local accelerators or, on a host without one, one replica per CPU
core (`use_cores`); "multi_worker": MultiWorkerMirroredStrategy, cluster from the TF_CONFIG
environment variable; "tpu": TPUStrategy on the TPU named by `tpu` (or found by the cluster
resolver).

Why replicas and not threads on a CPU: TensorFlow runs the small convolutions of a mobile
network on one core whatever its thread settings (an op too small to shard runs inline): on
a 2-core host the demo's plain step took 630 ms with the default threads against 709 ms
pinned to one core; two data-parallel replicas took 489 ms (docs/benchmarks.md,
`benchmarks/supernet_step.py`; two independent one-core processes reached 1.64x there, the
machine's own ceiling). Since 1x1 convolutions train as matmuls (layers.MatmulConv2D) the
step is cheaper and the margin smaller: two replicas 262 ms (plain) and 267 ms (super-network)
against 263 and 330 ms for one replica with the default threads (probes, same host).
Results do not depend on the number of replicas beyond float rounding and a Dropout layer's
random mask (each replica draws its own): the sub-networks of a step are drawn for the global
batch and each replica takes its rows (sampling.replica_rows), BN statistics are summed
across replicas, and losses are averaged over the global batch.
"""

import contextlib
import json
import os

import keras
import tensorflow as tf

CORES_HELP = (
    "CPU cores to train on, one data-parallel replica each (0: every core the global batch "
    "divides among); ignored where a GPU is present."
)

# The logical CPU devices `use_cores` made, once per process (TensorFlow fixes them when its
# runtime starts).
_LOCAL_CPUS: list[str] = []


def available_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def use_cores(cores: int = 0, batch_size: int | None = None) -> list[str]:
    """Splits the host CPU into `cores` logical devices, one training replica each, when the
    host has no GPU; returns the devices the "mirrored" strategy will use ([] where there is
    one replica: a GPU host keeps TensorFlow's devices, one core runs on one thread).
    cores 0: every available core, or the most of them that `batch_size` (the global batch)
    divides among.

    Call it before TensorFlow runs anything (tools do it first in `main`): TensorFlow fixes
    its devices when its runtime starts. Called again with the same count it is a no-op.
    """
    if isinstance(cores, bool) or not isinstance(cores, int) or cores < 0:
        raise ValueError(f"cores: {cores!r} must be an integer >= 0 (0: every core)")
    if tf.config.list_physical_devices("GPU"):
        return []
    if not cores:
        cores = available_cores()
        while batch_size and batch_size % cores:
            cores -= 1
    if cores == 1:
        if not _LOCAL_CPUS:
            with contextlib.suppress(RuntimeError):  # a started runtime keeps its threads
                tf.config.threading.set_intra_op_parallelism_threads(1)
                tf.config.threading.set_inter_op_parallelism_threads(1)
        return []
    devices = [f"/cpu:{i}" for i in range(cores)]
    if _LOCAL_CPUS:
        if devices != _LOCAL_CPUS:
            raise ValueError(
                f"cores: {cores} asked for, but this process already trains on "
                f"{len(_LOCAL_CPUS)} CPU replicas (TensorFlow fixes its devices once)"
            )
        return devices
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in devices]
        )
        # Each op on one thread, the replicas' ops side by side: 489 ms a step against 509
        # with TensorFlow's default threads (docs/benchmarks.md).
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(cores)
    except RuntimeError:
        raise ValueError(
            f"cores: {cores} CPU replicas cannot be made: TensorFlow's runtime already "
            "started in this process; call distribute.use_cores before anything runs"
        ) from None
    _LOCAL_CPUS.extend(devices)
    return devices


STRATEGIES = ("mirrored", "multi_worker", "tpu")


def make_strategy(name: str, tpu: str = "") -> tf.distribute.Strategy:
    if name == "mirrored":
        return mirrored()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "strategy: 'multi_worker' needs the TF_CONFIG environment variable describing "
                "the cluster and this worker's task"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"strategy: {name!r} is not one of {STRATEGIES}")


def mirrored() -> tf.distribute.MirroredStrategy:
    """MirroredStrategy over the CPU replicas of `use_cores`, else over every local device."""
    return tf.distribute.MirroredStrategy(list(_LOCAL_CPUS) or None)


def sync_batch_norm(model: keras.Model, strategy: tf.distribute.Strategy) -> None:
    """Under several replicas, the plain model's BN layers compute their training statistics
    over the global batch (Keras' `synchronized`), as one replica would; the saved model is
    unchanged (the flag only acts in a replica context)."""
    if strategy.num_replicas_in_sync > 1:
        for layer in model._flatten_layers():
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = True


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """The worker that writes checkpoints, logs and results (task 0 or the chief)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None:
        return True
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    if "chief" in cluster:
        return task_type == "chief"
    return task_type == "worker" and task_id == 0


def worker_id(strategy: tf.distribute.Strategy) -> int:
    resolver = getattr(strategy, "cluster_resolver", None)
    return 0 if resolver is None or resolver.task_id is None else int(resolver.task_id)
