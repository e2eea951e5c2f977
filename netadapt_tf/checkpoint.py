"""Files on disk: super-network checkpoints and exported sub-networks.

A super-network checkpoint is a directory with `spec.json` (the NetworkSpec, so the search
space travels with its weights) and `supernet.weights.h5` (Keras weights). An exported
sub-network is a directory with `model.keras` (a plain Keras model) and `arch.json` (the arch
it was cut from, which names its super-network by fingerprint).

Every file is written under a temporary name in the same directory and then renamed with
os.replace, so a crash leaves the previous file or none, never half of one.
"""

import json
import os
import pathlib

import keras

from netadapt_tf.arch import Arch, save_arch
from netadapt_tf.spec import NetworkSpec
from netadapt_tf.supernet import SuperNetwork, build_supernet

SPEC_FILE = "spec.json"
WEIGHTS_FILE = "supernet.weights.h5"
MODEL_FILE = "model.keras"
ARCH_FILE = "arch.json"


def _temporary(path: pathlib.Path) -> pathlib.Path:
    """A sibling of `path` that keeps its suffixes (Keras checks '.weights.h5', '.keras')."""
    stem, dot, suffixes = path.name.partition(".")
    return path.with_name(f"{stem}.tmp{os.getpid()}{dot}{suffixes}")


def _write_via_temporary(path: pathlib.Path, write) -> None:
    """Calls write(temporary_path), then renames it to `path`; removes it if write fails."""
    tmp = _temporary(path)
    try:
        write(str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_json(data: dict, path: pathlib.Path) -> None:
    def write(name):
        with open(name, "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")

    _write_via_temporary(path, write)


def save_supernet(model: SuperNetwork, directory) -> pathlib.Path:
    """Writes `model`'s spec and weights into `directory` (created if needed)."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _write_json(model.spec.to_json(), directory / SPEC_FILE)
    _write_via_temporary(directory / WEIGHTS_FILE, model.save_weights)
    return directory


def _differences(found: NetworkSpec, expected: NetworkSpec) -> list[str]:
    """Which builder settings tell two specs apart, e.g. 'input_size (32 vs 224)'."""
    a, b = found.to_json(), expected.to_json()
    fields = [
        f"{key} ({a[key]!r} vs {b[key]!r})"
        for key in ("name", "input_size", "input_channels", "num_classes")
        if a[key] != b[key]
    ]
    for key in sorted(set(a["origin"]) | set(b["origin"])):
        if a["origin"].get(key) != b["origin"].get(key):
            fields.append(f"{key} ({a['origin'].get(key)!r} vs {b['origin'].get(key)!r})")
    return fields or ["the layers"]


def read_spec(directory, expected_spec: NetworkSpec | None = None) -> NetworkSpec:
    """The NetworkSpec of the checkpoint in `directory`, without building any weight.

    With `expected_spec`, the checkpoint must hold that super-network (same fingerprint).
    Every problem is a ValueError that names the directory or file.
    """
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise ValueError(
            f"{directory}: no such checkpoint directory; write one with "
            "checkpoint.save_supernet(model, directory)"
        )
    path = directory / SPEC_FILE
    try:
        text = path.read_text()
    except OSError as e:
        raise ValueError(
            f"{path}: cannot read the checkpoint's network spec ({e.strerror or e}); a "
            f"checkpoint directory holds {SPEC_FILE} and {WEIGHTS_FILE}"
        ) from None
    try:
        spec = NetworkSpec.from_json(json.loads(text))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: malformed JSON ({e})") from None
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        # NetworkSpec.from_json lets some malformed inputs through as KeyError, TypeError or
        # AttributeError (a missing field, a wrong type); all mean a bad file here.
        raise ValueError(f"{path}: not a valid network spec ({type(e).__name__}: {e})") from None
    if expected_spec is not None and spec.fingerprint() != expected_spec.fingerprint():
        raise ValueError(
            f"{directory}: the checkpoint holds super-network {spec.name!r} (fingerprint "
            f"{spec.fingerprint()}), but {expected_spec.name!r} (fingerprint "
            f"{expected_spec.fingerprint()}) was asked for; checkpoint vs asked differ in "
            f"{', '.join(_differences(spec, expected_spec))}. Pass the builder options the "
            "checkpoint was made with, or a checkpoint of the asked super-network"
        )
    return spec


def load_supernet(directory, expected_spec: NetworkSpec | None = None) -> SuperNetwork:
    """The super-network saved in `directory`, with its weights.

    With `expected_spec`, the checkpoint must hold that super-network (same fingerprint);
    this is checked before any weight is built, so a wrong checkpoint fails fast.
    """
    directory = pathlib.Path(directory)
    spec = read_spec(directory, expected_spec)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise ValueError(
            f"{weights}: no such file; the checkpoint in {directory} has its spec but no "
            "weights (was save_supernet interrupted?)"
        )
    model = build_supernet(spec)
    try:
        model.load_weights(str(weights))
    except (OSError, ValueError) as e:
        raise ValueError(f"{weights}: cannot load the super-network weights ({e})") from None
    return model


def save_subnetwork(model: keras.Model, arch: Arch, directory) -> pathlib.Path:
    """Writes an exported sub-network as `directory`/model.keras and `directory`/arch.json."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MODEL_FILE
    _write_via_temporary(path, model.save)
    save_arch(arch, str(directory / ARCH_FILE))
    return path
