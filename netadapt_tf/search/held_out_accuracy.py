"""The accuracy a search maximizes: top-1 on the held-out split, from a trained super-network
(for a depth network: delta1, or minus the RMSE, over the held-out depth maps).

`open_checkpoint(checkpoint_dir)` reads a checkpoint's spec and its trainer's records once
(`TrainedSupernet`), for the tools to pass on; `held_out_accuracy(trained, ...)` loads its
weights and the data, checks that they belong together, and returns the judging callable
with the fingerprint search.json records.
The data config defaults to the one recorded by the trainer (run.json in the checkpoint's
work directory: the directory holding the checkpoint, or the checkpoint itself). That
directory must record the held-out split the super-network was trained without
(held_out_split.json), and the search must use the same split (netadapt_tf.data.check_split),
so it never judges samples on images the super-network was trained on. Without the record
the search refuses to judge unless told to (`allow_unrecorded_split`, which then goes into
the accuracy fingerprint that search.json records).
"""

import dataclasses
import pathlib

from netadapt_tf import data
from netadapt_tf.common import checksums
from netadapt_tf.data.held_out import SPLIT_FILE
from netadapt_tf.judge.evaluation import RECALIBRATION_AVERAGES
from netadapt_tf.space.arch import Arch
from netadapt_tf.space.spec import NetworkSpec
from netadapt_tf.space.task import DEPTH_JUDGE_METRICS, check_depth_metric, task_of
from netadapt_tf.supernet import checkpoint
from netadapt_tf.training import run_record
from netadapt_tf.training.run_record import RUN_FILE
from netadapt_tf.training.supernet_trainer import TrainConfig


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvalSettings:
    """How samples are judged: batch size, at most `max_examples` held-out examples (None:
    all) and `recalibration_batches` training batches of BN recalibration per sample, their
    statistics combined by `recalibration_average` (evaluation.SubnetEvaluator: "cumulative"
    weighs the fixed subset's batches alike, "momentum" as BN's moving average).
    `depth_metric`: what a depth network is judged by, "delta1" or "rmse" (None: delta1);
    a classifier takes None only."""

    batch_size: int = 256
    max_examples: int | None = None
    recalibration_batches: int = 0
    recalibration_average: str = "cumulative"
    depth_metric: str | None = None

    def __post_init__(self):
        if self.batch_size < 1:
            raise ValueError(f"EvalSettings.batch_size: {self.batch_size} must be >= 1")
        if self.max_examples is not None and self.max_examples < 1:
            raise ValueError(f"EvalSettings.max_examples: {self.max_examples} must be >= 1")
        if self.recalibration_batches < 0:
            raise ValueError(
                f"EvalSettings.recalibration_batches: {self.recalibration_batches} must be >= 0"
            )
        if self.recalibration_average not in RECALIBRATION_AVERAGES:
            raise ValueError(
                f"EvalSettings.recalibration_average: {self.recalibration_average!r} is not "
                f"allowed; one of {RECALIBRATION_AVERAGES}"
            )
        if self.depth_metric is not None and self.depth_metric not in DEPTH_JUDGE_METRICS:
            raise ValueError(
                f"EvalSettings.depth_metric: {self.depth_metric!r} is not allowed; one of "
                f"{DEPTH_JUDGE_METRICS} or None"
            )

    def to_json(self) -> dict:
        """The settings; depth_metric only when set, so that a classification search's
        record (and its resume check) is what it was before depth existed."""
        record = dataclasses.asdict(self)
        if record["depth_metric"] is None:
            del record["depth_metric"]
        return record


@dataclasses.dataclass(frozen=True)
class HeldOutAccuracy:
    """accuracy(arch) -> top-1 on the held-out examples, with its record."""

    spec: NetworkSpec
    judge: object  # SubnetEvaluator
    fingerprint: dict
    num_examples: int

    def __call__(self, arch: Arch) -> float:
        return self.judge.accuracy(arch)


def trainer_workdir(checkpoint_dir) -> pathlib.Path | None:
    """The directory holding the trainer's records (run.json, held_out_split.json) of the
    checkpoint: the checkpoint directory itself or its parent (the trainer writes the
    super-network to WORKDIR/supernet)."""
    directory = pathlib.Path(checkpoint_dir)
    for candidate in (directory, directory.parent):
        if (candidate / RUN_FILE).exists() or (candidate / SPLIT_FILE).exists():
            return candidate
    return None


@dataclasses.dataclass(frozen=True)
class TrainedSupernet:
    """A super-network checkpoint and its trainer's records, read once: the checkpoint
    `directory`, its `spec`, the trainer's `workdir` (None when neither run.json nor
    held_out_split.json is there or beside it) and the DataConfig fields its run.json
    records (`recorded_data`, {} without one). The weights stay on disk until
    held_out_accuracy loads them."""

    directory: pathlib.Path
    spec: NetworkSpec
    workdir: pathlib.Path | None
    recorded_data: dict


def open_checkpoint(checkpoint_dir, expected_spec: NetworkSpec | None = None) -> TrainedSupernet:
    """Reads the checkpoint's spec (checked against `expected_spec` when given) and its
    trainer's records; every problem is a RecordError naming the file."""
    spec = checkpoint.read_spec(checkpoint_dir, expected_spec)
    workdir = trainer_workdir(checkpoint_dir)
    recorded = {}
    if workdir is not None and (workdir / RUN_FILE).exists():
        run = run_record.read(workdir / RUN_FILE, TrainConfig)
        recorded = dict(run["data"].get("config", {}))
    return TrainedSupernet(pathlib.Path(checkpoint_dir), spec, workdir, recorded)


def data_config(trained: TrainedSupernet, batch_size: int, overrides: dict):
    """The DataConfig to judge or train on: the trainer's recorded one with `overrides`
    (name, data_dir, held_out, ...) applied, at the super-network's input size."""
    if not trained.recorded_data and "name" not in overrides:
        raise ValueError(
            f"dataset: {trained.directory} has no trainer record ({RUN_FILE}) to take the "
            "data config from; pass --dataset (and --data_dir, --held_out)"
        )
    fields = {
        **trained.recorded_data,
        "batch_size": batch_size,
        **{k: v for k, v in overrides.items() if v is not None},
        "image_size": trained.spec.input_size,
        "channels": trained.spec.input_channels,
    }
    return data.DataConfig(**fields)


def split_record(trained: TrainedSupernet, allow_unrecorded: bool) -> pathlib.Path | None:
    """The trainer's work directory that records the checkpoint's held-out split; None when
    there is no record and `allow_unrecorded` (otherwise no record is an error)."""
    workdir = trained.workdir
    if workdir is not None and (workdir / SPLIT_FILE).exists():
        return workdir
    if allow_unrecorded:
        return None
    where = trained.directory
    raise ValueError(
        f"held-out split: no record of the split the super-network in {where} was "
        f"trained without ({SPLIT_FILE} in {where} or {where.parent}), so the search cannot "
        "check that it judges on images the super-network never saw; allowed: a checkpoint "
        "in the work directory of tools/train_supernet.py (which records the split), or "
        "--allow_unrecorded_split to judge anyway"
    )


def held_out_accuracy(
    trained,
    settings: EvalSettings,
    data_overrides: dict | None = None,
    allow_unrecorded_split: bool = False,
) -> HeldOutAccuracy:
    """Loads the super-network of `trained` (a TrainedSupernet, or a checkpoint directory
    to open) and the held-out data, checking that they belong together (classes, held-out
    split) before any weight is loaded. Without a record of the split the checkpoint was
    trained with, refuses unless `allow_unrecorded_split`."""
    if not isinstance(trained, TrainedSupernet):
        trained = open_checkpoint(trained)
    spec, checkpoint_dir = trained.spec, trained.directory
    depth_metric = check_depth_metric(spec, settings.depth_metric, "depth_metric")
    recorded_in = split_record(trained, allow_unrecorded_split)  # before loading data
    config = data_config(trained, settings.batch_size, data_overrides or {})
    datasets = _load_held_out_data(checkpoint_dir, spec, config)
    if recorded_in is not None:
        data.check_split(recorded_in, datasets.split)
    supernet = checkpoint.load_weights(checkpoint_dir, spec)
    judge = _make_judge(supernet, datasets, settings, depth_metric)
    recorded_data = {k: v for k, v in config.to_json().items() if k != "data_dir"}
    fingerprint = {
        "judge": "held_out_top1" if depth_metric is None else f"held_out_{depth_metric}",
        "spec": spec.fingerprint(),
        "weights_sha256": checksums.file_sha256(checkpoint_dir / checkpoint.WEIGHTS_FILE),
        "data": recorded_data,
        "split": datasets.split.to_json(),
        "settings": settings.to_json(),
    }
    if recorded_in is None:  # a search resumed later must not take the split as checked
        fingerprint["split_unrecorded"] = True
    return HeldOutAccuracy(spec, judge, fingerprint, judge.num_examples)


def _load_held_out_data(checkpoint_dir, spec: NetworkSpec, config: data.DataConfig):
    """The datasets of `config`, which must suit the super-network of `spec` in
    `checkpoint_dir` (its task and classes) and hold held-out examples."""
    task = task_of(spec)
    try:
        datasets = data.load(config, task=task)
    except ValueError as error:
        message = f"{error} (the super-network in {checkpoint_dir} is a {task} network)"
        raise ValueError(message) from None
    if datasets.num_classes != spec.num_classes:
        raise ValueError(
            f"dataset: {config.name} has {datasets.num_classes} classes but the super-network "
            f"in {checkpoint_dir} classifies {spec.num_classes}; use the dataset it was "
            "trained on"
        )
    if datasets.num_held_out == 0:
        raise ValueError(
            f"dataset: held_out is {config.held_out!r}, so there are no held-out examples to "
            "judge samples on"
        )
    return datasets


def _make_judge(supernet, datasets, settings: EvalSettings, depth_metric: str | None):
    """The SubnetEvaluator of `supernet` on the held-out split, through the sliced forward;
    refuses fewer full recalibration batches than `settings` asks for."""
    from netadapt_tf.judge.evaluation import SubnetEvaluator

    judge = SubnetEvaluator(
        supernet,
        datasets.held_out,
        settings.batch_size,
        settings.max_examples,
        recalibration_data=datasets.train_for_epoch(0) if settings.recalibration_batches else None,
        recalibration_batches=settings.recalibration_batches,
        recalibration_average=settings.recalibration_average,
        fast=True,  # the sliced forward: same accuracies, about the exported model's cost
        depth_metric=depth_metric,
    )
    if len(judge.recal_batches) < settings.recalibration_batches:
        raise ValueError(
            f"recalibration_batches: {settings.recalibration_batches} batches of "
            f"{settings.batch_size} training images asked for, but the training set gives "
            f"{len(judge.recal_batches)} full batches ({datasets.num_train} images); lower "
            "--recalibration_batches or --eval_batch_size"
        )
    return judge
