"""The tf.distribute strategy a run trains under, chosen by name.

"mirrored" (default): all local devices (one CPU works too); "multi_worker":
MultiWorkerMirroredStrategy, cluster from the TF_CONFIG environment variable; "tpu":
TPUStrategy on the TPU named by `tpu` (or found by the cluster resolver).
"""

import json
import os

import tensorflow as tf

STRATEGIES = ("mirrored", "multi_worker", "tpu")


def make_strategy(name: str, tpu: str = "") -> tf.distribute.Strategy:
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
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
