"""Serve one task of a judging cluster: a worker that judges samples, or a parameter server
that holds the super-network's weights (search/cluster_judge.py).

Usage, on every machine of the cluster (TF_CONFIG as for multi-worker training, one
"chief": the search; "worker" and "ps" tasks: this tool):
  TF_CONFIG='{"cluster": {"chief": ["host0:2222"], "worker": ["host1:2222", "host2:2222"],
              "ps": ["host0:2223"]}, "task": {"type": "worker", "index": 0}}' \\
    python tools/judge_server.py [--threads=0]
and then, on the chief:
  TF_CONFIG='{... "task": {"type": "chief", "index": 0}}' \\
    python tools/search.py --judge_cluster --supernet_checkpoint=... --workdir=...

The server runs until killed. A worker that dies and is started again rejoins the search
(the chief re-sends it the held-out data); a lost parameter server ends the search's judging.
"""

import json
import os

from absl import app, flags

from netadapt_tf.cli import cli_flags

_THREADS = flags.DEFINE_integer(
    "threads",
    0,
    "Threads per op on this task (0: TensorFlow's default). Ops run side by side on "
    "TensorFlow's default inter-op threads: with one, a function waiting on the parameter "
    "server's reads can block the op it waits for.",
    lower_bound=0,
)


def _task() -> tuple[dict, str, int]:
    """(cluster, job, index) of TF_CONFIG; refuses a chief or a task not in the cluster."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise app.UsageError("TF_CONFIG: not set; it names the cluster and this task")
    try:
        config = json.loads(raw)
        cluster, task = config["cluster"], config["task"]
        job, index = task["type"], int(task["index"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise app.UsageError(
            f"TF_CONFIG: {raw[:200]!r} is not a cluster with a task ({error!r})"
        ) from None
    if job not in ("worker", "ps"):
        raise app.UsageError(
            f"TF_CONFIG: task type {job!r}; allowed: 'worker' or 'ps' (the chief is "
            "tools/search.py --judge_cluster)"
        )
    if not 0 <= index < len(cluster.get(job, ())):
        raise app.UsageError(
            f"TF_CONFIG: task index {index}; the cluster has {len(cluster.get(job, ()))} "
            f"{job!r} tasks"
        )
    return cluster, job, index


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}; everything is a --flag")
    cluster, job, index = _task()
    import tensorflow as tf

    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=_THREADS.value)
    server = tf.distribute.Server(
        tf.train.ClusterSpec(cluster), job_name=job, task_index=index, config=config, start=True
    )
    print(f"judge_server: {job} {index} serving at {cluster[job][index]}", flush=True)
    server.join()
    return 0


if __name__ == "__main__":
    cli_flags.run(main)
