"""Files on disk: super-network checkpoints and exported sub-networks.

A super-network checkpoint is a directory with `spec.json` (the NetworkSpec, so the search
space travels with its weights) and `supernet.weights.h5` (Keras weights). An exported
sub-network is a directory with `model.keras` (a plain Keras model) and `arch.json` (the arch
it was cut from, which names its super-network by fingerprint).

A checkpoint's spec and weights are written into a new directory that then replaces the old
one in one step (atomic_files.replace_directory), so a kill at any moment leaves the old
pair or the new pair, never the spec of one and the weights of the other. The weights file
carries the digest of its contents (common/checksums.py) and is checked before it is loaded,
so a damaged file is refused instead of read. Reading a checkpoint fails with
strict_json.RecordError naming the directory or file.
"""

import pathlib

import keras

from netadapt_tf.common import atomic_files, checksums
from netadapt_tf.common.strict_json import RecordError
from netadapt_tf.space.arch import Arch, save_arch
from netadapt_tf.space.spec import NetworkSpec, load_spec
from netadapt_tf.supernet.network import SuperNetwork, build_supernet

SPEC_FILE = "spec.json"
WEIGHTS_FILE = "supernet.weights.h5"
MODEL_FILE = "model.keras"
ARCH_FILE = "arch.json"


def save_supernet(model: SuperNetwork, directory) -> pathlib.Path:
    """Writes `model`'s spec and weights as the checkpoint `directory` (replacing the one
    there, in one step)."""

    def fill(new: pathlib.Path) -> None:
        atomic_files.write_json(new / SPEC_FILE, model.spec.to_json())
        model.save_weights(str(new / WEIGHTS_FILE))
        checksums.stamp_h5(new / WEIGHTS_FILE)

    return atomic_files.replace_directory(directory, fill)


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
    Every problem is a RecordError that names the directory or file.
    """
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise RecordError(
            f"{directory}: no such checkpoint directory; allowed: a directory written by "
            "checkpoint.save_supernet(model, directory) (tools/train_supernet.py writes "
            "WORKDIR/supernet)"
        )
    path = directory / SPEC_FILE
    if not path.is_file():
        raise RecordError(
            f"{path}: no such file; allowed: a checkpoint directory, which holds {SPEC_FILE} "
            f"and {WEIGHTS_FILE}"
        )
    spec = load_spec(path)
    if expected_spec is not None and spec.fingerprint() != expected_spec.fingerprint():
        raise RecordError(
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
    return load_weights(directory, read_spec(directory, expected_spec))


def load_weights(directory, spec: NetworkSpec) -> SuperNetwork:
    """The super-network of `spec` with the weights of the checkpoint in `directory`, for a
    caller that has read the checkpoint's spec already (read_spec): the spec is not read
    again, and weights of another super-network fail to load."""
    directory = pathlib.Path(directory)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise RecordError(
            f"{weights}: no such file; the checkpoint in {directory} has its spec but no "
            f"weights; allowed: a directory written by checkpoint.save_supernet, which holds "
            f"{SPEC_FILE} and {WEIGHTS_FILE}"
        )
    checksums.verify_h5(weights)
    model = build_supernet(spec)
    try:
        model.load_weights(str(weights))
    except (OSError, ValueError) as e:
        raise RecordError(f"{weights}: cannot load the super-network weights ({e})") from None
    return model


def save_subnetwork(model: keras.Model, arch: Arch, directory) -> pathlib.Path:
    """Writes an exported sub-network as `directory`/model.keras and `directory`/arch.json."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MODEL_FILE
    atomic_files.write_with(path, model.save)
    save_arch(arch, str(directory / ARCH_FILE))
    return path
