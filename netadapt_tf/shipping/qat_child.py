"""The quantization-aware-training process: `python -m netadapt_tf.shipping.qat_child JOB`.

netadapt_tf.shipping.qat starts it with TF_USE_LEGACY_KERAS=1 and a job directory that holds
job.json (spec, arch, settings), weights.npz (the trained Keras 3 weights by layer name),
reference.npz (random inputs and the Keras 3 model's outputs on them) and data.npz
(training images and labels). It rebuilds the network in tf_keras from the arch
description (subnet_graph.build_network, the graph the exporter builds in Keras 3), loads the
weights, checks that it computes the Keras 3 model's outputs, then annotates it for
quantization, fine-tunes it and converts it to an int8 TFLite model, written as model.tflite
into the job directory with report.json.

On a problem it prints one line "qat_child: cause" on stderr and exits with status 1. Only
this process imports tf_keras and TFMOT.
"""

import logging
import pathlib
import sys
import traceback
import warnings

import numpy as np

from netadapt_tf.common import atomic_files
from netadapt_tf.common import strict_json as sj
from netadapt_tf.graphs.subnet_graph import Flavour, FreshWeights, build_network
from netadapt_tf.space.arch import Arch
from netadapt_tf.space.spec import NetworkSpec
from netadapt_tf.space.subnet import resolve

JOB_FILE = "job.json"
WEIGHTS_FILE = "weights.npz"
REFERENCE_FILE = "reference.npz"
DATA_FILE = "data.npz"
OUTPUT_FILE = "model.tflite"
REPORT_FILE = "report.json"
REBUILD_TOLERANCE = 1e-4
# The decay of TFMOT's MovingAverageQuantizer ranges (quantizers.py passes it to
# quant_ops.MovingAvgQuantize; it cannot be set from outside).
TFMOT_EMA_DECAY = 0.999


class JobError(ValueError):
    """A problem with the job; its message is the child's one-line answer."""


# How the fine-tune runs batch norm (qat.QatSettings.batch_norm).
BATCH_NORM_MODES = ("train", "frozen")


def _parse_job(job) -> dict:
    """job.json checked field by field (qat.write_job writes it)."""
    sj.obj(job, "job", ("spec", "arch", "batch_norm", "settings", "check_only"))
    with sj.source("spec"):
        NetworkSpec.from_json(job["spec"])
    Arch.from_json(job["arch"])
    for name, values in sj.mapping(job["batch_norm"], "batch_norm").items():
        sj.obj(values, f"batch_norm.{name}", ("epsilon", "momentum"))
        for key in ("epsilon", "momentum"):
            sj.number(values[key], f"batch_norm.{name}.{key}", minimum=0)
    keys = ("epochs", "batch_size", "learning_rate", "seed", "range_batches", "batch_norm")
    settings = sj.obj(job["settings"], "settings", keys)
    for key in ("epochs", "batch_size"):
        sj.integer(settings[key], f"settings.{key}", minimum=1)
    sj.integer(settings["range_batches"], "settings.range_batches", minimum=0)
    if not sj.number(settings["learning_rate"], "settings.learning_rate") > 0:
        raise sj.fail("settings.learning_rate", settings["learning_rate"], "a number > 0")
    sj.integer(settings["seed"], "settings.seed", minimum=0)
    sj.string(settings["batch_norm"], "settings.batch_norm", BATCH_NORM_MODES)
    sj.boolean(job["check_only"], "check_only")
    return job


def rebuild(job: dict, weights: dict):
    """The tf_keras model of the job's arch with the trained weights."""
    import tf_keras

    from netadapt_tf.shipping import qat_configs

    spec = NetworkSpec.from_json(job["spec"])
    arch = Arch.from_json(job["arch"])
    flavour = Flavour(
        keras=tf_keras,
        channel_slice=lambda start, stop, name: qat_configs.ChannelSlice(start, stop, name=name),
        activation=qat_configs.activation,
    )
    model = build_network(resolve(spec, arch), flavour, FreshWeights(job["batch_norm"]))
    used = set()
    for layer in model.layers:
        count = len(layer.weights)
        keys = [f"{layer.name}:{i}" for i in range(count)]
        missing = [k for k in keys if k not in weights]
        if missing:
            raise JobError(f"{WEIGHTS_FILE}: no weights {missing} for layer {layer.name!r}")
        values = [weights[k] for k in keys]
        shapes = [tuple(w.shape) for w in layer.weights]
        if [v.shape for v in values] != shapes:
            raise JobError(
                f"{WEIGHTS_FILE}: layer {layer.name!r} has weights of shapes "
                f"{[v.shape for v in values]}; the arch needs {shapes}"
            )
        layer.set_weights(values)
        used.update(keys)
    unused = sorted(set(weights) - used)
    if unused:
        raise JobError(f"{WEIGHTS_FILE}: weights {unused[:5]} belong to no layer of the arch")
    return model


def check_rebuild(model, reference) -> float:
    """Largest difference between the tf_keras rebuild and the Keras 3 model's outputs."""
    got = model(reference["inputs"], training=False).numpy()
    want = reference["outputs"]
    diff = float(np.max(np.abs(got - want))) if got.shape == want.shape else float("inf")
    if not diff <= REBUILD_TOLERANCE:
        raise JobError(
            f"the tf_keras rebuild differs from the Keras 3 model: max abs diff {diff:.3g} "
            f"on {len(want)} random inputs, allowed {REBUILD_TOLERANCE:g} (outputs "
            f"{got.shape} vs {want.shape})"
        )
    return diff


def _range_variables(qat_model) -> list:
    """The fake-quant range variables (TFMOT names them <tensor>_min and <tensor>_max)."""
    return [
        v
        for v in qat_model.non_trainable_variables
        if v.name.split("/")[-1].split(":")[0].endswith(("_min", "_max"))
    ]


def calibrate_ranges(qat_model, images: np.ndarray, batch_size: int, batches: int) -> dict:
    """Starts every moving-average range of the QAT model at the mean range of `batches`
    training batches; returns {"ranges": how many, "batches": how many were read}.

    TFMOT's MovingAverageQuantizer starts each activation range at [-6, 6] and moves it by
    0.001 of the way to each training batch's range (ema_decay 0.999, no debiasing, fixed
    in its code), so after the 63 steps of 2,000 images at batch 32 a range is still 94%
    its start: logits and linear-bottleneck outputs beyond 6 are clipped and a gate in
    [0, 1] gets 23 of the 256 int8 levels. A training-mode call's update gives the batch's
    range back exactly: r = (new - 0.999 old) / 0.001. One call reads through the start
    ranges and only sets them; each of the next `batches` calls runs with the ranges the
    call before it read (so a tensor is fake-quantized about as it will be), and the mean
    of their readings is the start. A range that a call sets outright instead (a weight's
    last-value range, also [-6, 6] until the first training step, which rounds most
    weights of a trained network to 0 in an inference-mode call) is told apart by two
    calls from two starts and kept at what the call set. Everything else a call changes
    (BN moving statistics) is put back, so the fine-tune starts from the trained network."""
    variables = qat_model.non_trainable_variables
    saved = {id(v): v.numpy() for v in variables}
    ranges = _range_variables(qat_model)
    batches = min(batches, len(images) // batch_size)
    if not ranges or batches < 1:
        return {"ranges": 0, "batches": 0}

    def call(values, batch: int) -> list[np.ndarray]:
        """The ranges after one training-mode call on `batch` from range `values`."""
        for v in variables:
            v.assign(saved[id(v)])
        for v, value in zip(ranges, values, strict=True):
            v.assign(value)
        qat_model(images[batch * batch_size : (batch + 1) * batch_size], training=True)
        return [v.numpy() for v in ranges]

    start = [saved[id(v)] for v in ranges]
    from_start = call(start, 0)
    from_zero = call([np.zeros_like(value) for value in start], 0)
    moving = [
        not np.allclose(a, b, rtol=0, atol=1e-6) for a, b in zip(from_start, from_zero, strict=True)
    ]

    def read(before, after):
        return [
            (a - TFMOT_EMA_DECAY * b) / (1.0 - TFMOT_EMA_DECAY) if m else s
            for a, b, m, s in zip(after, before, moving, start, strict=True)
        ]

    current = read(start, from_start)
    total = [np.zeros(value.shape, np.float64) for value in start]
    for batch in range(batches):
        current = read(current, call(current, batch))
        total = [t + c for t, c in zip(total, current, strict=True)]
    final = [
        (t / batches).astype(f.dtype) if m else f
        for t, m, f in zip(total, moving, from_start, strict=True)
    ]
    for v in variables:
        v.assign(saved[id(v)])
    for v, value in zip(ranges, final, strict=True):
        v.assign(value)
    return {"ranges": int(sum(moving)), "batches": batches}


def fine_tune(qat_model, data, settings: dict) -> dict:
    import tf_keras

    tf_keras.utils.set_random_seed(settings["seed"])
    images = data["images"].astype(np.float32) / float(data["scale"])
    if settings["batch_norm"] == "frozen":
        # tf_keras runs a batch-norm layer that is not trainable in inference mode.
        for layer in qat_model.submodules:
            if isinstance(layer, tf_keras.layers.BatchNormalization):
                layer.trainable = False
    qat_model.compile(
        optimizer=tf_keras.optimizers.Adam(settings["learning_rate"]),
        loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = qat_model.fit(
        images,
        data["labels"],
        batch_size=settings["batch_size"],
        epochs=settings["epochs"],
        shuffle=True,
        verbose=0,
    )
    return {key: [float(v) for v in values] for key, values in history.history.items()}


def convert(qat_model) -> bytes:
    """int8 TFLite flatbuffer (int8 input and output, batch 1) of the trained QAT model.

    The batch-1 function is frozen first (its variables folded into constants), as
    metrics/tflite.py's "frozen_function" route: for a 300-layer QAT network that took 12 s where
    converting the unfrozen function took 176 s. The fake-quant ranges learnt in training
    fix every scale, so no representative data is needed.
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    shape = (1, *qat_model.inputs[0].shape[1:])
    function = tf.function(
        lambda x: qat_model(x, training=False),
        input_signature=[tf.TensorSpec(shape, tf.float32, name="image")],
    )
    frozen = convert_variables_to_constants_v2(function.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with warnings.catch_warnings():
        # The notice that a frozen function passes no trackable object (it has no variables).
        warnings.filterwarnings("ignore", ".*trackable_obj.*")
        logging.getLogger("absl").setLevel(logging.ERROR)
        return converter.convert()


def run(directory: pathlib.Path) -> dict:
    job = sj.read(directory / JOB_FILE, _parse_job)
    with np.load(directory / WEIGHTS_FILE) as f:
        weights = dict(f)
    with np.load(directory / REFERENCE_FILE) as f:
        reference = dict(f)
    model = rebuild(job, weights)
    report = {"rebuild_max_abs_diff": check_rebuild(model, reference)}
    if job["check_only"]:
        return report
    from netadapt_tf.shipping import qat_configs

    with np.load(directory / DATA_FILE) as f:
        data = dict(f)
    qat_model = qat_configs.quantize(model)
    settings = job["settings"]
    images = data["images"].astype(np.float32) / float(data["scale"])
    report["ranges"] = calibrate_ranges(
        qat_model, images, settings["batch_size"], settings["range_batches"]
    )
    report["history"] = fine_tune(qat_model, data, settings)
    model_bytes = convert(qat_model)
    atomic_files.write_bytes(directory / OUTPUT_FILE, model_bytes)
    return report


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: python -m netadapt_tf.shipping.qat_child JOB_DIR (got {argv[1:]})")
        return 2
    directory = pathlib.Path(argv[1])
    try:
        report = run(directory)
    except (JobError, sj.RecordError, OSError, KeyError) as e:
        print(f"qat_child: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # TF, TFMOT or the converter: keep the trace, end with the cause
        traceback.print_exc()
        print(f"qat_child: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    report["tensorflow_model_optimization"] = "tensorflow_model_optimization" in sys.modules
    atomic_files.write_json(directory / REPORT_FILE, report)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
