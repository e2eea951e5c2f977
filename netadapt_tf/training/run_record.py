"""The run record (`run.json`) of a training work directory: written, checked, read.

The super-network trainer (training/supernet_trainer.py) and the discovered-network trainer
(discovered/trainer.py) write the resolved run into their work directory: the spec and its
fingerprint, the training config, the data config and held-out split, the replicas, and for
a discovered network its arch, initial arch, trajectory, options and source paths. A rerun
in the same directory must make the same record (only `train.epochs` may grow, to extend a
run, and the replicas may change) or it is refused; the search reads the trainer's data config
and split from it. Reading checks every field and fails with strict_json.RecordError naming
the file, the field and the value.
"""

import json
import os
import pathlib
import shutil

from netadapt_tf.common import atomic_files
from netadapt_tf.common import strict_json as sj
from netadapt_tf.data import DataConfig, HeldOutSplit
from netadapt_tf.space.arch import Arch
from netadapt_tf.space.spec import NetworkSpec

RUN_FILE = "run.json"
REQUIRED = ("spec", "spec_fingerprint", "train", "data", "replicas")
# Only in the record of a discovered-network run.
DISCOVERED_FIELDS = ("arch", "initial_arch", "trajectory", "discovered", "sources")
# Fields that may differ on a rerun: epochs may grow; the replicas (CPU cores or devices) may
# change, since a step trains the same sub-networks on the same images whatever their number
# (supernet/sampling.replica_rows) and BN statistics are summed across them.
MAY_GROW = (("train", "epochs"), ("replicas",))


def _path_or_none(value, field: str):
    return sj.optional(sj.string, value, field, empty=True)


def parse(data, train_config: type, options: type | None = None) -> dict:
    """Checks a run record field by field; returns it. `train_config` and `options` are the
    dataclasses of its "train" and "discovered" fields (TrainConfig, DiscoveredOptions)."""
    sj.obj(data, "run", REQUIRED, DISCOVERED_FIELDS)
    with sj.source("spec"):
        spec = NetworkSpec.from_json(data["spec"])
    if sj.string(data["spec_fingerprint"], "spec_fingerprint") != spec.fingerprint():
        raise sj.fail(
            "spec_fingerprint",
            data["spec_fingerprint"],
            f"{spec.fingerprint()!r}, the fingerprint of the recorded spec",
        )
    sj.dataclass_fields(data["train"], "train", train_config)
    sj.obj(data["data"], "data", optional=("config", "split"))
    if "config" in data["data"]:
        sj.dataclass_record(data["data"]["config"], "data.config", DataConfig)
    if "split" in data["data"]:
        HeldOutSplit.from_json(data["data"]["split"], "data.split")
    sj.integer(data["replicas"], "replicas", minimum=1)
    if "discovered" in data:
        if options is None:
            raise sj.fail("discovered", data["discovered"], "no such field in this kind of run")
        sj.dataclass_fields(data["discovered"], "discovered", options)
    for key in ("arch", "initial_arch"):
        sj.optional(Arch.from_json, data.get(key), key)
    trajectory = data.get("trajectory")
    sj.optional(sj.array, trajectory, "trajectory", Arch.from_json, min_length=1)
    if "sources" in data:
        sj.mapping(data["sources"], "sources", _path_or_none)
    return data


def read(path, train_config: type, options: type | None = None) -> dict:
    """The run record in file `path`, checked (see `parse`)."""
    return sj.read(path, lambda data: parse(data, train_config, options))


def _canonical(record: dict) -> dict:
    record = json.loads(json.dumps(record))
    for path in MAY_GROW:
        holder = record
        for key in path[:-1]:
            holder = holder.get(key, {})
        holder.pop(path[-1], None)
    return record


def check(
    workdir,
    record: dict,
    overwrite: bool,
    train_config: type,
    options: type | None = None,
    outputs: tuple[str, ...] = (),
) -> None:
    """Refuses a work directory made with other settings (epochs may grow on a resume);
    with `overwrite`, removes `outputs` (names in the directory) of the old run so the new
    one starts afresh. Then writes `record` as the directory's run.json."""
    path = pathlib.Path(workdir) / RUN_FILE
    if path.exists() and not overwrite:
        old, new = _canonical(read(path, train_config, options)), _canonical(record)
        if not sj.same(old, new):
            changed = sorted(key for key in new if not sj.same(old.get(key), new.get(key)))
            details = sj.differences(old, new)
            shown = ", ".join(details[:5]) + (f", {len(details) - 5} more" if details[5:] else "")
            raise sj.RecordError(
                f"{path}: workdir {workdir} holds a run with other settings (differing: "
                f"{changed}); recorded vs now: {shown}; use another work directory or --overwrite"
            )
    if overwrite:  # a fresh start: nothing of the old run may be resumed or mixed in
        for name in outputs:
            target = os.path.join(workdir, name)
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)
            elif os.path.lexists(target):
                os.remove(target)
    os.makedirs(workdir, exist_ok=True)
    atomic_files.write_json(path, record, sort_keys=True)
