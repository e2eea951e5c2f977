"""The checkpoints a killed training run resumes from: complete, checked, and in step with
its log.

`TrainingCheckpoints` holds everything that decides the rest of a run: every variable of
the model (`model.variables`: the weights, the BN statistics and the state of the random
generators of Dropout and the like, which `model.weights` leaves out), the optimizer (its
slots, step counter and EMA copies) and the trainer's running sums of the unfinished
epoch, so a resumed run computes the same numbers as an uninterrupted one. The data
position is the step (each epoch's order is fixed by the seed and skipped into), and the
sampled sub-networks are drawn from stateless seeds of the step.

Each checkpoint `ckpt-N` (tf.train.CheckpointManager, two kept) gets a checksum manifest
`ckpt-N.sha256` once its files are written (common/checksums.py). `restore` takes the
newest checkpoint whose files match their manifest, naming each damaged or unfinished one
it passes over, and `trim_journal` drops the log lines written after that checkpoint:
they are written again, identically, by the resumed run. A trainer therefore writes an
epoch's log line before it saves the epoch's checkpoint, and a kill in between loses
nothing.
"""

import glob
import json
import os

import keras
import tensorflow as tf

from netadapt_tf.common import atomic_files, checksums
from netadapt_tf.common.strict_json import RecordError

MANIFEST_SUFFIX = ".sha256"


def model_state(model: keras.Model) -> list:
    """Every variable of `model` (weights, BN statistics, random generator states)."""
    return [v.value for v in model.variables]


class TrainingCheckpoints:
    """Verified checkpoints of `objects` (tf.train.Checkpoint's keyword arguments) in
    `directory`; log(message) reports what restore passes over."""

    def __init__(self, directory: str, log, max_to_keep: int = 2, **objects):
        self.directory, self.log = directory, log
        self.sums = tf.Variable([0.0, 0.0], dtype=tf.float64, trainable=False)
        self.checkpoint = tf.train.Checkpoint(running_sums=self.sums, **objects)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, directory, max_to_keep=max_to_keep
        )

    def save(self, step: int, sums=(0.0, 0.0)) -> str:
        """Saves checkpoint `step` with the running sums (loss, score) of the unfinished
        epoch, then its manifest."""
        self.sums.assign(list(sums))
        prefix = self.manager.save(checkpoint_number=step)
        if tf.io.gfile.exists(prefix + ".index") and not prefix.startswith("gs://"):
            files = [prefix + ".index", *glob.glob(glob.escape(prefix) + ".data-*")]
            checksums.write_manifest(prefix + MANIFEST_SUFFIX, files)
            kept = set(self.manager.checkpoints)
            for manifest in glob.glob(os.path.join(glob.escape(self.directory), "*.sha256")):
                if manifest[: -len(MANIFEST_SUFFIX)] not in kept:
                    os.remove(manifest)
        return prefix

    def restore(self) -> tuple[int | None, tuple[float, float]]:
        """Restores the newest good checkpoint; returns (its step, the running sums), or
        (None, zeros) when there is none. RecordError when every one is damaged."""
        passed = []
        for prefix in reversed(self.manager.checkpoints):
            try:
                if not prefix.startswith("gs://"):
                    checksums.verify_manifest(prefix + MANIFEST_SUFFIX)
                self.checkpoint.restore(prefix).assert_existing_objects_matched()
            except (RecordError, tf.errors.OpError, ValueError, AssertionError) as error:
                self.log(f"checkpoint {prefix} is damaged, not resuming from it: {error}")
                passed.append(prefix)
                continue
            self.log(f"resumed from {prefix}")
            step = int(prefix.rsplit("-", 1)[1])
            return step, tuple(float(x) for x in self.sums.numpy())
        if passed:
            raise RecordError(
                f"{self.directory}: every checkpoint is damaged ({', '.join(passed)}); "
                "rerun with --overwrite to start afresh"
            )
        return None, (0.0, 0.0)


def trim_journal(path: str, step: int | None, key: str = "step", where=None) -> list[dict]:
    """The intact lines of journal `path` up to checkpoint `step`: a line with a larger
    `key` (among the lines `where(line)` selects, all by default) was written after that
    checkpoint by the killed run and is dropped (the resumed run writes it again)."""
    lines = atomic_files.read_journal(path)
    keep = [
        line
        for line in lines
        if (where is not None and not where(line)) or line.get(key, 0) <= (step or 0)
    ]
    if len(keep) != len(lines):
        text = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in keep)
        atomic_files.write_text(path, text)
    return keep
