"""Quantization-aware training (QAT) of a discovered network, in a separate process.

TFMOT quantizes tf_keras models only, and importing it sets TF_USE_LEGACY_KERAS=1, which
turns `tf.keras` into tf_keras for the whole process and breaks Keras 3 and keras_cv there.
So this process never imports it: `quantization_aware_tflite` writes a job directory (the
arch description, the trained weights by layer name, reference outputs and training data)
and runs `python -m netadapt_tf.shipping.qat_child` on it (an argument list, no shell). The
child rebuilds the network in tf_keras from the description, checks it against the
reference outputs, fine-tunes and converts it; this side reads back the int8 model.
"""

import dataclasses
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

from netadapt_tf.common import atomic_files
from netadapt_tf.common import strict_json as sj
from netadapt_tf.shipping import qat_child
from netadapt_tf.shipping.trained_model import Discovered, batch_norm_settings, layer_weights

REFERENCE_EXAMPLES = 4
BATCH_NORM_MODES = qat_child.BATCH_NORM_MODES


class QatError(RuntimeError):
    """The QAT process failed; the message is its own one-line cause (or its last output)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class QatSettings:
    """How the quantization-aware model is fine-tuned (Adam on the cross-entropy)."""

    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 1e-4
    seed: int = 0
    # Training batches whose activation ranges start every fake-quant range before the
    # fine-tune (qat_child.calibrate_ranges); 0 leaves TFMOT's initial [-6, 6].
    range_batches: int = 16
    # "train": the fine-tune's batch-norm layers normalise by each batch and update their
    # moving statistics (TFMOT's default); "frozen": they run as at inference, with the
    # trained network's moving statistics kept (their scale and offset still train).
    batch_norm: str = "train"

    def __post_init__(self):
        for field in ("epochs", "batch_size", "range_batches"):
            value = getattr(self, field)
            low = 0 if field == "range_batches" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"QatSettings.{field}: {value!r} must be an integer >= {low}")
        if not self.learning_rate > 0:
            raise ValueError(f"QatSettings.learning_rate: {self.learning_rate!r} must be > 0")
        if self.batch_norm not in BATCH_NORM_MODES:
            raise ValueError(
                f"QatSettings.batch_norm: {self.batch_norm!r} is not one of {BATCH_NORM_MODES}"
            )

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def _pack_images(images: np.ndarray) -> tuple[np.ndarray, float]:
    """(array, scale) with images = array / scale: uint8 when the images are k/255 (as
    decoded 8-bit images are), a quarter of the bytes; float32 otherwise."""
    images = np.asarray(images, np.float32)
    levels = np.round(images * 255.0)
    exact = images.size and np.max(np.abs(levels / 255.0 - images)) <= 1e-6
    if exact and levels.min() >= 0 and levels.max() <= 255:
        return levels.astype(np.uint8), 255.0
    return images, 1.0


def write_job(
    directory,
    discovered: Discovered,
    images: np.ndarray | None,
    labels: np.ndarray | None,
    settings: QatSettings,
    check_only: bool = False,
) -> pathlib.Path:
    """Writes the child's inputs into `directory` (see qat_child's docstring)."""
    directory = pathlib.Path(directory)
    model, spec = discovered.model, discovered.spec
    job = {
        "spec": spec.to_json(),
        "arch": discovered.arch.to_json(),
        "batch_norm": batch_norm_settings(model),
        "settings": settings.to_json(),
        "check_only": check_only,
    }
    atomic_files.write_json(directory / qat_child.JOB_FILE, job)
    np.savez(directory / qat_child.WEIGHTS_FILE, **layer_weights(model))
    shape = (REFERENCE_EXAMPLES, spec.input_size, spec.input_size, spec.input_channels)
    inputs = np.random.default_rng(settings.seed).uniform(0, 1, shape).astype(np.float32)
    outputs = np.asarray(model(inputs, training=False))
    np.savez(directory / qat_child.REFERENCE_FILE, inputs=inputs, outputs=outputs)
    if not check_only:
        packed, scale = _pack_images(images)
        np.savez(
            directory / qat_child.DATA_FILE,
            images=packed,
            labels=np.asarray(labels, np.int32),
            scale=scale,
        )
    return directory


def run_child(directory) -> dict:
    """Runs the QAT process on a job directory; its report, or QatError with its cause."""
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    done = subprocess.run(
        [sys.executable, "-m", "netadapt_tf.shipping.qat_child", str(directory)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        causes = [line for line in lines if line.startswith("qat_child: ")]
        cause = causes[-1][len("qat_child: ") :] if causes else "\n".join(lines[-15:])
        raise QatError(
            f"quantization-aware training failed (exit status {done.returncode}): {cause}"
        )
    return sj.read(pathlib.Path(directory) / qat_child.REPORT_FILE, _parse_report)


def _metric(value, field: str) -> float:
    # A training metric may be NaN or infinite (a diverging fine-tune): that is a result.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise sj.fail(field, value, "a number")
    return value


def _parse_report(report) -> dict:
    """report.json of the QAT process, checked field by field."""
    optional = ("history", "tensorflow_model_optimization", "ranges")
    sj.obj(report, "report", ("rebuild_max_abs_diff",), optional)
    if "ranges" in report:
        sj.obj(report["ranges"], "ranges", ("ranges", "batches"))
        for key in ("ranges", "batches"):
            sj.integer(report["ranges"][key], f"ranges.{key}", minimum=0)
    sj.number(report["rebuild_max_abs_diff"], "rebuild_max_abs_diff", minimum=0)
    if "history" in report:
        sj.mapping(report["history"], "history", lambda v, f: sj.array(v, f, _metric))
    if "tensorflow_model_optimization" in report:
        sj.boolean(report["tensorflow_model_optimization"], "tensorflow_model_optimization")
    return report


def _check_data(discovered: Discovered, images, labels) -> None:
    spec = discovered.spec
    want = (spec.input_size, spec.input_size, spec.input_channels)
    if images is None or labels is None or len(images) == 0:
        raise ValueError(
            "qat data: no training images; quantization-aware training needs labelled "
            "training images"
        )
    images = np.asarray(images)
    if images.ndim != 4 or tuple(images.shape[1:]) != want:
        raise ValueError(
            f"qat data: images have shape {images.shape}; the network takes [N, "
            f"{', '.join(map(str, want))}]"
        )
    if len(labels) != len(images):
        raise ValueError(f"qat data: {len(images)} images but {len(labels)} labels")


def check_rebuild(discovered: Discovered, settings: QatSettings | None = None) -> float:
    """Rebuilds the network in tf_keras in the QAT process and returns the largest output
    difference from the Keras 3 model (QatError when above qat_child.REBUILD_TOLERANCE)."""
    settings = settings or QatSettings()
    with tempfile.TemporaryDirectory(prefix="netadapt_qat_") as directory:
        write_job(directory, discovered, None, None, settings, check_only=True)
        return run_child(directory)["rebuild_max_abs_diff"]


def quantization_aware_tflite(
    discovered: Discovered, images: np.ndarray, labels: np.ndarray, settings: QatSettings
) -> tuple[bytes, dict]:
    """(int8 TFLite bytes, the child's report) of the network fine-tuned with QAT on
    (images float32 [N, H, W, C] in the model's input range, labels int [N])."""
    _check_data(discovered, images, labels)
    with tempfile.TemporaryDirectory(prefix="netadapt_qat_") as directory:
        write_job(directory, discovered, images, labels, settings)
        report = run_child(directory)
        model_bytes = (pathlib.Path(directory) / qat_child.OUTPUT_FILE).read_bytes()
    return model_bytes, report
