"""Trains one stage (supernet, discovered or comparison) of a tiny network with dropout
and SIGKILLs itself at a chosen point, as a crash would; run again, it resumes.

argv: STAGE WORKDIR POINT [SUPERNET_DIR]. POINT is `none` or `WHEN:K`, counting this
process's checkpoint saves (resume.TrainingCheckpoints.save) from 1: `before:K` dies just
before the K-th save (an epoch's end save comes right after its log line, so this is the
kill between log and checkpoint), `after:K` just after it, `manifest:K` in it, after the
checkpoint's files and before their checksum manifest (an unfinished checkpoint).
Prints one JSON line {"done": true} when the stage finished.
"""

import json
import os
import pathlib
import signal
import sys

import tensorflow as tf
from training_helpers import TRAIN_CONFIG, shallow_spec, tiny_data

from netadapt_tf import data
from netadapt_tf.common import checksums
from netadapt_tf.discovered.trainer import DiscoveredOptions, DiscoveredRun, DiscoveredTrainer
from netadapt_tf.pipeline import comparison
from netadapt_tf.pipeline.comparison_training import train_column
from netadapt_tf.space.arch import save_arch, smallest_arch
from netadapt_tf.supernet import resume
from netadapt_tf.training.supernet_trainer import SupernetTrainer, TrainConfig

tf.config.experimental.enable_op_determinism()
DROPOUT = 0.5
SPEC = shallow_spec(DROPOUT)
DISCOVERED_CONFIG = {**TRAIN_CONFIG, "steps_per_epoch": 4, "learning_rate": 0.5}


def datasets():
    config = data.DataConfig(
        name="synthetic",
        image_size=16,
        channels=3,
        batch_size=16,
        held_out=0,
        synthetic_examples=96,
        synthetic_classes=4,
        augment=False,
    )
    return data.load(config)


def arm(point: str) -> None:
    if point == "none":
        return
    when, count = point.split(":")
    count, calls = int(count), []
    save, write_manifest = resume.TrainingCheckpoints.save, checksums.write_manifest

    def die():
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    def killing_save(self, *args, **kwargs):
        calls.append(1)
        if when == "before" and len(calls) == count:
            die()
        prefix = save(self, *args, **kwargs)
        if when == "after" and len(calls) == count:
            die()
        return prefix

    def killing_manifest(*args, **kwargs):
        if when == "manifest" and len(calls) == count:
            die()
        return write_manifest(*args, **kwargs)

    resume.TrainingCheckpoints.save = killing_save
    checksums.write_manifest = killing_manifest


def main(stage: str, workdir: str, point: str, supernet_dir: str | None = None) -> None:
    arm(point)
    if stage == "supernet":
        images = tiny_data(96)
        config = TrainConfig(**TRAIN_CONFIG)
        trainer = SupernetTrainer(
            SPEC, images.take(64), images.skip(64), 64, config, workdir, progress=False
        )
        trainer.run()
    elif stage == "discovered":
        sets = datasets()
        run = DiscoveredRun(
            spec=SPEC,
            arch=smallest_arch(SPEC).with_choices({"stem": {"width": 4}}),
            config=TrainConfig(**DISCOVERED_CONFIG),
            options=DiscoveredOptions(mode="inherit"),
            workdir=workdir,
            supernet_dir=supernet_dir,
            saved_model=False,
        )
        DiscoveredTrainer(run, sets.train_for_epoch, sets.validation, sets.num_train).run()
    else:
        plan = pathlib.Path(workdir) / "plan"
        plan.mkdir(parents=True, exist_ok=True)
        save_arch(smallest_arch(SPEC).with_choices({"stem": {"width": 4}}), str(plan / "a.json"))
        network = comparison.Network(
            name="a",
            kind="random",
            ratio=None,
            arch="a.json",
            seeds=(0,),
            macs=1,
            params=1,
            table_ms=1.0,
        )
        train_column(
            SPEC,
            [network],
            plan,
            "inherit",
            datasets(),
            TrainConfig(**DISCOVERED_CONFIG),
            pathlib.Path(workdir) / "column",
            supernet_dir,
        )
    print(json.dumps({"done": True}))


if __name__ == "__main__":
    main(*sys.argv[1:])
