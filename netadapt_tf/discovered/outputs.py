"""Files of a discovered-network run (trainer.py), each written atomically.

Every file goes through atomic_files, so a kill leaves the previous file or the new one,
never half of one. The train log is rewritten whole on each entry, dropping any entry at or
after the new one's (phase, step): a resumed run that repeats steps after its last
checkpoint leaves no duplicate lines.
"""

import json
import os

import keras

from netadapt_tf.common import atomic_files
from netadapt_tf.common import strict_json as sj
from netadapt_tf.depth import METRIC_NAMES
from netadapt_tf.supernet import checkpoint

MODEL_FILE, ARCH_FILE = checkpoint.MODEL_FILE, checkpoint.ARCH_FILE
SAVED_MODEL_DIR = "saved_model"
TABLE_FILE = "architecture.md"
LOG_FILE = "train_log.jsonl"
RESULT_FILE = "result.json"
# What a run writes besides run.json; removed by overwrite.
OUTPUT_FILES = (
    MODEL_FILE,
    ARCH_FILE,
    SAVED_MODEL_DIR,
    TABLE_FILE,
    LOG_FILE,
    RESULT_FILE,
    "phases",
    "checkpoints",
)


DEPTH_LOG_KEYS = tuple(f"validation_{name}" for name in METRIC_NAMES)


def _log_key(entry: dict, field: str) -> tuple[int, int]:
    sj.obj(
        entry,
        field,
        ("phase", "step", "final", "loss", "learning_rate"),
        # The score: top-1 accuracy (classification) or delta1 and the depth metrics.
        ("train_accuracy", "train_delta1", "epoch", "validation_accuracy", *DEPTH_LOG_KEYS),
    )
    return (
        sj.integer(entry["phase"], f"{field}.phase", minimum=0),
        sj.integer(entry["step"], f"{field}.step", minimum=0),
    )


def append_log(path: str, entry: dict) -> None:
    """Adds `entry` (with "phase" and "step") to the JSON-lines log at `path`."""
    key = _log_key(entry, "entry")
    with sj.source(path):
        old = atomic_files.read_journal(path)
        kept = [line for i, line in enumerate(old, 1) if _log_key(line, f"line {i}") < key]
    atomic_files.write_text(path, "".join(json.dumps(line) + "\n" for line in [*kept, entry]))


def save_saved_model(model: keras.Model, path: str) -> None:
    """model.export into `path` (a SavedModel directory), replacing what was there."""
    atomic_files.replace_directory(path, lambda new: model.export(str(new), verbose=False))


def save_outputs(
    workdir: str, model: keras.Model, arch, table: str, saved_model: bool = True
) -> dict:
    """The trained model (.keras and, with `saved_model`, a SavedModel), its arch and its
    architecture table; returns the paths by kind."""
    checkpoint.save_subnetwork(model, arch, workdir)
    if saved_model:
        save_saved_model(model, os.path.join(workdir, SAVED_MODEL_DIR))
    atomic_files.write_text(os.path.join(workdir, TABLE_FILE), table)
    names = {
        "model": MODEL_FILE,
        "saved_model": SAVED_MODEL_DIR,
        "arch": ARCH_FILE,
        "table": TABLE_FILE,
        "log": LOG_FILE,
        "result": RESULT_FILE,
        "run": "run.json",
    }
    if not saved_model:
        del names["saved_model"]
    return {key: os.path.join(workdir, name) for key, name in names.items()}


def check_initial_model(path: str, template: keras.Model) -> keras.Model:
    """`template` (the export of the initial arch) with the weights of the saved model at
    `path`, which must hold the same layers with the same weight shapes."""
    try:
        loaded = keras.saving.load_model(path, compile=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"initial_model: cannot load {path} ({e})") from None
    for layer in template.layers:
        expected = [tuple(w.shape) for w in layer.weights]
        if not expected:
            continue
        try:
            found = [tuple(w.shape) for w in loaded.get_layer(layer.name).weights]
        except ValueError:
            found = None
        if found != expected:
            what = "has no layer" if found is None else f"has weight shapes {found} in layer"
            raise ValueError(
                f"initial_model: {path} {what} {layer.name!r}; the initial network needs "
                f"{expected} there. Allowed: a model exported (export_subnetwork) from this "
                "super-network for the initial arch"
            )
        layer.set_weights(loaded.get_layer(layer.name).get_weights())
    return template
