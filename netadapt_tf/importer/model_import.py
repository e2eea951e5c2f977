"""Importing a trained Keras functional model as a super-network: the entry points.

`load_keras_model(source, input_size, num_classes)` reads a .keras file (or builds a
keras.applications model by name, untrained), `import_model(model, source, options)`
walks, maps and assembles it and copies its weights into a super-network at full width,
`parity(result, model, images)` is the exactness check, `write_import(result, output)`
writes the checkpoint (spec.json, supernet.weights.h5) and the import report.
"""

import dataclasses
import json
import pathlib

import keras
import numpy as np

from netadapt_tf.common import atomic_files, checksums
from netadapt_tf.graphs.export import export_subnetwork
from netadapt_tf.importer.assemble import Assembled, SearchOptions, assemble
from netadapt_tf.importer.graph import walk
from netadapt_tf.importer.mapping import Mapped, map_graph
from netadapt_tf.importer.report import build_report
from netadapt_tf.importer.weights import check_finite, keras_counts, transfer
from netadapt_tf.space.arch import full_arch
from netadapt_tf.space.macs import Counts, count
from netadapt_tf.supernet.network import SuperNetwork, build_supernet

REPORT_FILE = "import_report.json"
REPORT_TEXT = "import_report.md"


@dataclasses.dataclass
class Imported:
    source: str
    mapped: Mapped
    assembled: Assembled
    supernet: SuperNetwork | None
    counts: Counts  # the spec's counter on the full arch
    keras_counts: Counts  # counted on the Keras layers
    keras_params: int  # the model's count_params()
    relative_diff: float | None = None

    @property
    def spec(self):
        return self.assembled.spec

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        """What the model's input preprocessing (kept outside the spec) does to images."""
        m = self.mapped
        return (images * m.scale + m.offset).astype(np.float32)

    def report(self) -> dict:
        return build_report(self)


def _with_input_size(model: keras.Model, size: int) -> keras.Model:
    """The model rebuilt for square inputs of `size` (a model saved without a fixed size)."""
    config = model.get_config()
    layers = config.get("layers", [])
    inputs = [layer for layer in layers if layer.get("class_name") == "InputLayer"]
    if len(inputs) != 1:
        raise ValueError(f"{model.name}: --input_size needs a functional model with one Input")
    shape = list(inputs[0]["config"]["batch_shape"])
    inputs[0]["config"]["batch_shape"] = [shape[0], size, size, shape[-1]]
    rebuilt = model.__class__.from_config(config)
    rebuilt.set_weights(model.get_weights())
    return rebuilt


def load_keras_model(source: str, input_size: int | None = None, num_classes: int = 1000):
    """The Keras model at path `source` (.keras), or keras.applications' `source` built
    untrained (weights=None, logits output) at `input_size` (default 224)."""
    path = pathlib.Path(source)
    if path.suffix in (".h5", ".hdf5") or (path.is_dir() and (path / "saved_model.pb").exists()):
        raise ValueError(
            f"--model: {source!r} is an H5 file or a SavedModel (tf_keras); allowed: a Keras 3 "
            ".keras file (load it in Keras 3 and model.save('model.keras'))"
        )
    if path.suffix == ".keras" or path.exists():
        if not path.is_file():
            raise ValueError(f"--model: {source!r} is not a file")
        try:
            model = keras.saving.load_model(str(path), compile=False)
        except Exception as error:  # noqa: BLE001 - any failure means "not a Keras model"
            raise ValueError(f"--model: {source!r} is not a Keras model: {error}") from None
        if not isinstance(model, keras.Model):
            raise ValueError(f"--model: {source!r} holds {type(model).__name__}, not a model")
        shape = tuple(model.inputs[0].shape) if model.inputs else ()
        if len(shape) == 4 and (shape[1] is None or shape[2] is None):
            if input_size is None:
                raise ValueError(
                    f"--model: {source!r} has no fixed input size (input shape {shape}); "
                    "pass --input_size"
                )
            model = _with_input_size(model, input_size)
        return model
    factory = getattr(keras.applications, source, None)
    if factory is None:
        raise ValueError(
            f"--model: {source!r} is neither a .keras file nor a keras.applications name"
        )
    size = input_size or 224
    return factory(
        input_shape=(size, size, 3),
        weights=None,
        classes=num_classes,
        classifier_activation=None,
    )


def import_model(
    model: keras.Model, source: str, options: SearchOptions | None = None, weights=True
) -> Imported:
    """The imported super-network of `model` (weights copied when `weights`).

    Every refusal (an unsupported layer, a pattern the spec cannot express, NaN weights) is
    a ValueError raised before any super-network is built.
    """
    options = options or SearchOptions()
    graph = walk(model)
    mapped = map_graph(graph)
    assembled = assemble(mapped, options, source)
    check_finite(model)
    supernet = None
    if weights:
        supernet = build_supernet(assembled.spec)
        transfer(mapped, assembled.names, supernet)
    return Imported(
        source=source,
        mapped=mapped,
        assembled=assembled,
        supernet=supernet,
        counts=count(assembled.spec, full_arch(assembled.spec)),
        keras_counts=keras_counts(mapped, mapped.input_size),
        keras_params=int(model.count_params()),
    )


def parity(result: Imported, model: keras.Model, images: np.ndarray) -> float:
    """max |export - model| / max |model| on `images`: the full architecture of the imported
    spec, exported with the model's weights, against the model (inference mode)."""
    exported = export_subnetwork(result.supernet, full_arch(result.spec))
    want = np.asarray(model(images, training=False), np.float64)
    got = np.asarray(exported(result.preprocess(images), training=False), np.float64)
    scale = max(float(np.max(np.abs(want))), 1e-30)
    result.relative_diff = float(np.max(np.abs(got - want)) / scale)
    return result.relative_diff


def write_import(result: Imported, output) -> pathlib.Path:
    """Writes the checkpoint and the report into `output` (replacing it in one step)."""
    report = result.report()

    def fill(new: pathlib.Path) -> None:
        atomic_files.write_json(new / "spec.json", result.spec.to_json())
        result.supernet.save_weights(str(new / "supernet.weights.h5"))
        checksums.stamp_h5(new / "supernet.weights.h5")  # what checkpoint readers check
        atomic_files.write_json(new / REPORT_FILE, report)
        (new / REPORT_TEXT).write_text(report_markdown(report))

    return atomic_files.replace_directory(output, fill)


def report_markdown(report: dict) -> str:
    lines = [
        f"# Import of {report['source']}",
        "",
        f"MACs {report['macs']:,} (Keras layers: {report['keras_macs']:,}); parameters "
        f"{report['params']:,} BN-folded (Keras layers: {report['keras_folded_params']:,}; "
        f"count_params() {report['keras_params']:,}); relative difference "
        f"{report['relative_diff']}.",
        "",
        f"Preprocessing kept outside the spec: {json.dumps(report['preprocessing'])}",
        "",
        "| Keras layer | class | spec node | search unit | searchable / pinned |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in report["layers"]:
        lines.append(
            f"| {row['path']} | {row['class']} | {row['node']} | {row.get('unit', '')} | "
            f"{row.get('search', '')} |"
        )
    return "\n".join(lines) + "\n"
