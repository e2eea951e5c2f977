"""From a discovered network to the TFLite files to ship, each judged on the validation set.

`export_tflite_variants` converts the trained Keras model to float32, float16 and int8
post-training-quantized TFLite models (tflite.convert; int8 calibrated on training images),
optionally adds an int8 model trained with quantization awareness (qat.py, in its own
process), runs each with LiteRT on the validation images next to the Keras model, times it
on this host with one thread, and writes the files and `export_summary.json`. Everything is
computed before anything is written, and each file is written atomically (atomic_files), so
a failure leaves the output directory as it was. `read_summary` reads the summary back,
checking every field (strict_json).

A depth network (netadapt_tf.space.task) is judged by RMSE and delta1 over the valid pixels of
its validation depth maps where a classifier is judged by top-1 accuracy (its rows carry
rmse, delta1 and their changes from the Keras model; the summary says "task": "depth");
quantization-aware training is for classifiers only.
"""

import dataclasses
import os
import pathlib

import numpy as np

from netadapt_tf.common import atomic_files
from netadapt_tf.common import strict_json as sj
from netadapt_tf.depth import MetricsAccumulator
from netadapt_tf.metrics import tflite
from netadapt_tf.metrics.host import HostSettings, time_tflite
from netadapt_tf.shipping.qat import QatSettings, quantization_aware_tflite
from netadapt_tf.shipping.trained_model import Discovered
from netadapt_tf.space.task import task_of

QUANTIZATIONS = tflite.QUANTIZATIONS  # post-training: float32, float16, int8
VARIANT_FILES = {
    "float32": "model_float32.tflite",
    "float16": "model_float16.tflite",
    "int8": "model_int8_ptq.tflite",
    "int8_qat": "model_int8_qat.tflite",
}
SUMMARY_FILE = "export_summary.json"
SUMMARY_FORMAT = "netadapt_tf.export_summary/1"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExportOptions:
    """Which files to make and how to judge them.

    `quantizations`: post-training variants, a subset of QUANTIZATIONS. `qat`: settings of
    quantization-aware training, or None for none. `latency`: how each file is timed.
    `route`: tflite.convert's route; "frozen_function" gives the same operators and outputs
    as "saved_model" (tests/test_tflite.py) in a third of the time.
    """

    quantizations: tuple[str, ...] = QUANTIZATIONS
    qat: QatSettings | None = None
    latency: HostSettings = dataclasses.field(default_factory=HostSettings)
    route: str = "frozen_function"

    def __post_init__(self):
        object.__setattr__(self, "quantizations", tuple(self.quantizations))
        for mode in self.quantizations:
            if mode not in QUANTIZATIONS:
                raise ValueError(
                    f"ExportOptions.quantizations: {mode!r} is not a quantization mode; allowed "
                    f"are {list(QUANTIZATIONS)} (quantization-aware int8: set qat)"
                )
        if len(set(self.quantizations)) != len(self.quantizations):
            raise ValueError(
                f"ExportOptions.quantizations: {list(self.quantizations)} names a mode twice"
            )
        if self.route not in tflite.ROUTES:
            raise ValueError(f"ExportOptions.route: {self.route!r} is not one of {tflite.ROUTES}")
        if not self.quantizations and self.qat is None:
            raise ValueError("ExportOptions.quantizations: empty and no qat; nothing to export")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ShippingData:
    """float32 images [N, H, W, C] in the model's input range and int labels [N] (depth
    networks: float32 depth maps [N, H, W, 1] in metres).

    `calibration`: training images for int8 calibration. `train_images`/`train_labels`:
    for quantization-aware training. `validation_images`/`validation_labels`: for accuracy.
    """

    calibration: np.ndarray | None
    validation_images: np.ndarray
    validation_labels: np.ndarray
    train_images: np.ndarray | None = None
    train_labels: np.ndarray | None = None
    dataset: str = ""


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    logits = np.asarray(logits).reshape(len(labels), -1)
    return float(np.mean(np.argmax(logits, axis=-1) == np.asarray(labels)))


def depth_scores(outputs: np.ndarray, depth: np.ndarray) -> dict:
    """{"rmse", "delta1"} of depth maps `outputs` against `depth` (the same count of maps)."""
    accumulator = MetricsAccumulator()
    accumulator.add(np.asarray(outputs).reshape(depth.shape), depth)
    result = accumulator.result()
    return {"rmse": result.rmse, "delta1": result.delta1}


def _check_data(discovered: Discovered, options: ExportOptions, data: ShippingData) -> None:
    spec = discovered.spec
    if task_of(spec) == "depth" and options.qat is not None:
        raise ValueError(
            f"qat: epochs {options.qat.epochs} is not allowed for {spec.name}, a depth network "
            "(quantization-aware training learns class labels); allowed: no qat"
        )
    shape = (spec.input_size, spec.input_size, spec.input_channels)
    if "int8" in options.quantizations and (data.calibration is None or not len(data.calibration)):
        raise ValueError(
            f"calibration: {'None' if data.calibration is None else 'no images'}; "
            "quantization 'int8' needs representative data (training images)"
        )
    arrays = {"calibration": data.calibration, "validation_images": data.validation_images}
    for field, images in arrays.items():
        if images is not None and (images.ndim != 4 or tuple(images.shape[1:]) != shape):
            raise ValueError(
                f"{field}: images of shape {images.shape}; the network takes "
                f"[N, {', '.join(map(str, shape))}]"
            )
    if len(data.validation_images) == 0 or len(data.validation_images) != len(
        data.validation_labels
    ):
        raise ValueError(
            f"validation_labels: {len(data.validation_labels)} labels for "
            f"{len(data.validation_images)} validation images; need as many, at least one"
        )


def _judge(model_bytes: bytes, data: ShippingData, keras_logits, options: ExportOptions) -> dict:
    logits = tflite.run_tflite(model_bytes, data.validation_images, num_threads=1)
    keras_logits = keras_logits.reshape(logits.shape)
    if data.validation_labels.ndim > 1:  # depth maps
        scores = depth_scores(logits, data.validation_labels)
        keras_scores = depth_scores(keras_logits, data.validation_labels)
        timing = time_tflite(model_bytes, options.latency)
        return {
            "size_bytes": len(model_bytes),
            **scores,
            **{f"{k}_change": scores[k] - keras_scores[k] for k in scores},
            "max_abs_diff_from_keras": float(np.max(np.abs(logits - keras_logits))),
            "latency_ms": timing.latency_ms,
            "latency_iqr_ms": timing.spread_ms,
        }
    keras_accuracy = accuracy(keras_logits, data.validation_labels)
    acc = accuracy(logits, data.validation_labels)
    timing = time_tflite(model_bytes, options.latency)
    return {
        "size_bytes": len(model_bytes),
        "accuracy": acc,
        "accuracy_change": acc - keras_accuracy,
        "agreement_with_keras": float(
            np.mean(np.argmax(logits, -1) == np.argmax(keras_logits, -1))
        ),
        "max_abs_diff_from_keras": float(np.max(np.abs(logits - keras_logits))),
        "latency_ms": timing.latency_ms,
        "latency_iqr_ms": timing.spread_ms,
    }


def export_tflite_variants(
    discovered: Discovered, output_dir, data: ShippingData, options: ExportOptions
) -> dict:
    """Converts, judges and writes every variant; returns the summary (also written)."""
    _check_data(discovered, options, data)
    model = discovered.model
    variants: dict[str, bytes] = {}
    for mode in options.quantizations:
        representative = data.calibration if mode == "int8" else None
        variants[mode] = tflite.convert(model, mode, representative, options.route)
    qat_report = None
    if options.qat is not None:
        variants["int8_qat"], qat_report = quantization_aware_tflite(
            discovered, data.train_images, data.train_labels, options.qat
        )
    keras_logits = np.asarray(model.predict(data.validation_images, batch_size=256, verbose=0))
    rows = []
    for variant, model_bytes in variants.items():
        row = {"variant": variant, "file": VARIANT_FILES[variant]}
        rows.append({**row, **_judge(model_bytes, data, keras_logits, options)})
    depth = task_of(discovered.spec) == "depth"
    if depth:
        keras_scores = depth_scores(keras_logits, data.validation_labels)
    else:
        keras_scores = {"accuracy": accuracy(keras_logits, data.validation_labels)}
    summary = {
        "format": SUMMARY_FORMAT,
        "keras_model": discovered.model_path,
        "network": discovered.spec.name,
        "fingerprint": discovered.spec.fingerprint(),
        "dataset": data.dataset,
        "validation_examples": len(data.validation_labels),
        "calibration_examples": 0 if data.calibration is None else len(data.calibration),
        "keras": {**keras_scores, "params": int(model.count_params())},
        "latency_settings": options.latency.to_json(),
        "qat": None
        if options.qat is None
        else {
            **options.qat.to_json(),
            "train_examples": len(data.train_labels),
            "rebuild_max_abs_diff": qat_report["rebuild_max_abs_diff"],
            "history": qat_report["history"],
            "calibrated_ranges": qat_report.get("ranges"),
        },
        "models": rows,
    }
    if depth:  # written only for depth: a classification summary is what it always was
        summary["task"] = "depth"
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    for variant, model_bytes in variants.items():
        tflite.write_tflite(model_bytes, output_dir / VARIANT_FILES[variant])
    atomic_files.write_json(output_dir / SUMMARY_FILE, summary)
    return summary


_ROW_NUMBERS = ("accuracy", "accuracy_change", "agreement_with_keras")
_ROW_NUMBERS += ("max_abs_diff_from_keras", "latency_ms", "latency_iqr_ms")
_DEPTH_ROW_NUMBERS = ("rmse", "delta1", "rmse_change", "delta1_change")
_DEPTH_ROW_NUMBERS += ("max_abs_diff_from_keras", "latency_ms", "latency_iqr_ms")
_SUMMARY_FIELDS = ("format", "keras_model", "network", "fingerprint", "dataset")
_SUMMARY_FIELDS += ("validation_examples", "calibration_examples", "keras", "latency_settings")
_SUMMARY_FIELDS += ("qat", "models")


def _parse_row(row, field: str, numbers=_ROW_NUMBERS) -> dict:
    sj.obj(row, field, ("variant", "file", "size_bytes", *numbers))
    variant = sj.string(row["variant"], f"{field}.variant", VARIANT_FILES)
    sj.constant(row["file"], f"{field}.file", VARIANT_FILES[variant])
    sj.integer(row["size_bytes"], f"{field}.size_bytes", minimum=1)
    for key in numbers:
        sj.number(row[key], f"{field}.{key}")
    return row


def _parse_depth_row(row, field: str) -> dict:
    return _parse_row(row, field, _DEPTH_ROW_NUMBERS)


def _parse_summary(data) -> dict:
    sj.obj(data, "summary", _SUMMARY_FIELDS, ("task",))
    sj.constant(data["format"], "format", SUMMARY_FORMAT)
    depth = "task" in data
    if depth:
        sj.constant(data["task"], "task", "depth")
    for key in ("keras_model", "network", "fingerprint", "dataset"):
        sj.string(data[key], key)
    sj.integer(data["validation_examples"], "validation_examples", minimum=1)
    sj.integer(data["calibration_examples"], "calibration_examples", minimum=0)
    scores = ("rmse", "delta1") if depth else ("accuracy",)
    sj.obj(data["keras"], "keras", (*scores, "params"))
    for key in scores:
        top = None if key == "rmse" else 1
        sj.number(data["keras"][key], f"keras.{key}", minimum=0, maximum=top)
    sj.integer(data["keras"]["params"], "keras.params", minimum=0)
    sj.mapping(data["latency_settings"], "latency_settings")
    sj.optional(sj.mapping, data["qat"], "qat")
    parse = _parse_depth_row if depth else _parse_row
    sj.array(data["models"], "models", parse, min_length=1)
    return data


def read_summary(path) -> dict:
    """export_summary.json at `path`, checked field by field."""
    return sj.read(path, _parse_summary)


def format_table(summary: dict) -> str:
    """The summary as a table a person reads."""
    if summary.get("task") == "depth":
        return _format_depth_table(summary)
    keras = summary["keras"]
    lines = [
        f"{summary['network']} (fingerprint {summary['fingerprint']}) on "
        f"{summary['validation_examples']} validation examples of {summary['dataset']}",
        f"{'variant':<9} {'file':<24} {'size':>10} {'accuracy':>9} {'change':>8} "
        f"{'agree':>6} {'latency ms (1 thread)':>22}",
        f"{'keras':<9} {os.path.basename(summary['keras_model']):<24} {'':>10} "
        f"{keras['accuracy']:>9.4f}",
    ]
    for row in summary["models"]:
        latency = f"{row['latency_ms']:.3f} (IQR {row['latency_iqr_ms']:.3f})"
        lines.append(
            f"{row['variant']:<9} {row['file']:<24} {row['size_bytes'] / 1024:>7.1f} KB "
            f"{row['accuracy']:>9.4f} {row['accuracy_change']:>+8.4f} "
            f"{row['agreement_with_keras']:>6.3f} {latency:>22}"
        )
    return "\n".join(lines)


def _format_depth_table(summary: dict) -> str:
    keras = summary["keras"]
    lines = [
        f"{summary['network']} (fingerprint {summary['fingerprint']}) on "
        f"{summary['validation_examples']} validation depth maps of {summary['dataset']}",
        f"{'variant':<9} {'file':<24} {'size':>10} {'rmse':>8} {'change':>8} {'delta1':>7} "
        f"{'change':>8} {'latency ms (1 thread)':>22}",
        f"{'keras':<9} {os.path.basename(summary['keras_model']):<24} {'':>10} "
        f"{keras['rmse']:>8.4f} {'':>8} {keras['delta1']:>7.4f}",
    ]
    for row in summary["models"]:
        latency = f"{row['latency_ms']:.3f} (IQR {row['latency_iqr_ms']:.3f})"
        lines.append(
            f"{row['variant']:<9} {row['file']:<24} {row['size_bytes'] / 1024:>7.1f} KB "
            f"{row['rmse']:>8.4f} {row['rmse_change']:>+8.4f} {row['delta1']:>7.4f} "
            f"{row['delta1_change']:>+8.4f} {latency:>22}"
        )
    return "\n".join(lines)
