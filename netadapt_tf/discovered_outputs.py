"""Files of a discovered-network run (discovered.py), each written atomically.

Everything goes under a temporary name in the same directory and is then renamed, so a
kill leaves the previous file or none, never half of one. The train log is rewritten whole
on each entry, dropping any entry at or after the new one's (phase, step): a resumed run
that repeats steps after its last checkpoint leaves no duplicate lines.
"""

import json
import os
import shutil

import keras

from netadapt_tf import checkpoint

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


def _temporary(path: str) -> str:
    """A sibling of `path` that keeps its suffixes (Keras checks '.weights.h5', '.keras')."""
    directory, name = os.path.split(path)
    stem, dot, suffixes = name.partition(".")
    return os.path.join(directory, f"{stem}.tmp{os.getpid()}{dot}{suffixes}")


def write_atomically(path: str, content) -> None:
    """Writes `content` (text, or a function that writes a given path) to `path`."""
    tmp = _temporary(path)
    try:
        if callable(content):
            content(tmp)
        else:
            with open(tmp, "w") as f:
                f.write(content)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def append_log(path: str, entry: dict) -> None:
    """Adds `entry` (with "phase" and "step") to the JSON-lines log at `path`."""
    key = (entry["phase"], entry["step"])
    kept = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                old = json.loads(line)
                if (old["phase"], old["step"]) < key:
                    kept.append(line)
    write_atomically(path, "".join(kept) + json.dumps(entry) + "\n")


def save_saved_model(model: keras.Model, path: str) -> None:
    """model.export into `path` (a SavedModel directory), replacing what was there."""
    tmp, old = f"{path}.tmp{os.getpid()}", f"{path}.old{os.getpid()}"
    for leftover in (tmp, old):
        shutil.rmtree(leftover, ignore_errors=True)
    model.export(tmp, verbose=False)
    if os.path.exists(path):
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def save_outputs(
    workdir: str, model: keras.Model, arch, table: str, saved_model: bool = True
) -> dict:
    """The trained model (.keras and, with `saved_model`, a SavedModel), its arch and its
    architecture table; returns the paths by kind."""
    checkpoint.save_subnetwork(model, arch, workdir)
    if saved_model:
        save_saved_model(model, os.path.join(workdir, SAVED_MODEL_DIR))
    write_atomically(os.path.join(workdir, TABLE_FILE), table)
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
