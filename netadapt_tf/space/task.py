"""What a network is trained for, read off its spec: "classification" or "depth".

A spec with `num_classes` ends in a classifier and trains on (image, label) pairs; one with
`dense_channels` predicts a map at the input resolution, which in this package is a depth
map trained on (image, depth) pairs (netadapt_tf/depth). The trainer, the judge of the
search, train_discovered and the exporter's reports pick their loss and metrics by it, and
refuse data, checkpoints and flags of the other task before any work.
"""

from netadapt_tf.space.spec import NetworkSpec

TASKS = ("classification", "depth")
# What a task's judge maximizes by default, and the depth metrics a search may judge by.
DEFAULT_SCORE = {"classification": "accuracy", "depth": "delta1"}
DEPTH_JUDGE_METRICS = ("delta1", "rmse")


def task_of(spec: NetworkSpec) -> str:
    """ "depth" for a dense-prediction spec (dense_channels set), else "classification"."""
    return "depth" if spec.dense_channels is not None else "classification"


def check_task(spec: NetworkSpec, task: str, what: str) -> None:
    """ValueError unless `spec` is a network of `task`; `what` names the thing that asks
    for the task (a preset, a dataset, a flag) in the message."""
    if task not in TASKS:
        raise ValueError(f"{what}: task {task!r} is not one of {TASKS}")
    have = task_of(spec)
    if have != task:
        kind = "a classifier" if have == "classification" else "a depth network"
        raise ValueError(
            f"{what} is for {task}, but {spec.name} is {kind} ({_head(spec)}); allowed: "
            f"a {task} network"
        )


def check_depth_metric(spec: NetworkSpec, depth_metric: str | None, what: str) -> str | None:
    """The depth metric a judge of `spec` uses (delta1 by default for a depth network,
    None for a classifier); a metric given for a classifier, or an unknown one, is an error."""
    if depth_metric is not None and depth_metric not in DEPTH_JUDGE_METRICS:
        raise ValueError(f"{what}: {depth_metric!r} is not one of {DEPTH_JUDGE_METRICS}")
    if task_of(spec) == "classification":
        if depth_metric is not None:
            raise ValueError(
                f"{what}: {depth_metric!r} is not allowed for {spec.name}, a classifier "
                f"({_head(spec)}), judged by top-1 accuracy; allowed: only for a depth "
                "network (dense_channels)"
            )
        return None
    return depth_metric or DEFAULT_SCORE["depth"]


def _head(spec: NetworkSpec) -> str:
    if spec.dense_channels is not None:
        return f"dense_channels {spec.dense_channels}"
    return f"num_classes {spec.num_classes}"
