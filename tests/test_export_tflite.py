"""Shipping a discovered network (netadapt_tf/shipping, tools/export_tflite.py) without
quantization-aware training: loading and cross-checking the three input files, the float32,
float16 and int8 post-training variants judged with LiteRT, the summary and its errors.
QAT, which runs in its own process, is tested in test_export_tflite_qat.py.
"""

import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import random_bn_offsets

from netadapt_tf import builders
from netadapt_tf.graphs.export import export_subnetwork
from netadapt_tf.metrics import tflite
from netadapt_tf.metrics.host import HostSettings
from netadapt_tf.shipping import dataset, pipeline, qat, trained_model
from netadapt_tf.space.arch import random_arch
from netadapt_tf.supernet import checkpoint
from netadapt_tf.supernet.network import build_supernet

REPO = pathlib.Path(__file__).resolve().parent.parent
OPTIONS = {"input_size": 16, "num_classes": 4, "width_multiplier": 0.25}
FAST = HostSettings(threads=1, warmup_runs=1, num_runs=5)


def _write_spec(spec, path):
    path.write_text(json.dumps(spec.to_json()))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A trained-looking mobilenet_v1 sub-network saved as export_subnet + model.save do."""
    directory = tmp_path_factory.mktemp("discovered")
    spec = builders.build("mobilenet_v1", **OPTIONS)
    supernet = build_supernet(spec)
    # Outputs of constant order-one scale: the int8 closeness bound below is relative to that
    # scale, and image-dependent weights (randomize_non_kernel_weights) put int8 PTQ 6-25% off
    # on these untrained kernels (the same choice as test_tflite's int8 check).
    random_bn_offsets(supernet, seed=3)
    arch = random_arch(spec, np.random.default_rng(5))
    model = export_subnetwork(supernet, arch)
    checkpoint.save_subnetwork(model, arch, directory)
    other = random_arch(spec, np.random.default_rng(6))
    export_subnetwork(supernet, other).save(directory / "other.keras")
    _write_spec(spec, directory / "spec.json")
    wider = builders.build("mobilenet_v1", **{**OPTIONS, "width_multiplier": 0.5})
    _write_spec(wider, directory / "wider_spec.json")
    return directory


@pytest.fixture(scope="module")
def network(files):
    return trained_model.load_discovered(
        files / "model.keras", files / "arch.json", files / "spec.json"
    )


@pytest.fixture(scope="module")
def data(network):
    return dataset.load_shipping_data(
        network.spec, "synthetic", calibration_examples=32, synthetic_examples=160
    )


def test_float_and_int8_variants_are_written_and_judged(network, data, tmp_path):
    options = pipeline.ExportOptions(latency=FAST)
    summary = pipeline.export_tflite_variants(network, tmp_path, data, options)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "export_summary.json",
        "model_float16.tflite",
        "model_float32.tflite",
        "model_int8_ptq.tflite",
    ]
    assert json.loads((tmp_path / "export_summary.json").read_text()) == summary
    assert summary["validation_examples"] == 32 and summary["calibration_examples"] == 32
    rows = {row["variant"]: row for row in summary["models"]}
    images = data.validation_images
    keras_logits = np.asarray(network.model(images, training=False))
    scale = float(np.max(np.abs(keras_logits)))
    assert scale > 0.05  # randomized BN: the outputs are not vanishingly small
    float32 = (tmp_path / "model_float32.tflite").read_bytes()
    assert np.max(np.abs(tflite.run_tflite(float32, images) - keras_logits)) <= 1e-4
    assert rows["float32"]["max_abs_diff_from_keras"] <= 1e-4
    assert rows["float32"]["accuracy"] == summary["keras"]["accuracy"]
    assert rows["float32"]["accuracy_change"] == 0.0
    int8 = (tmp_path / "model_int8_ptq.tflite").read_bytes()
    assert tflite.make_interpreter(int8).get_input_details()[0]["dtype"] == np.int8
    assert np.max(np.abs(tflite.run_tflite(int8, images) - keras_logits)) <= 0.15 * scale
    assert rows["float16"]["max_abs_diff_from_keras"] <= 0.01 * scale
    for row in rows.values():
        assert row["size_bytes"] == (tmp_path / row["file"]).stat().st_size
        assert row["latency_ms"] > 0 and 0 <= row["accuracy"] <= 1
    assert (
        rows["int8"]["size_bytes"] < rows["float16"]["size_bytes"] < rows["float32"]["size_bytes"]
    )
    table = pipeline.format_table(summary)
    assert re.search(r"^float32 +model_float32\.tflite", table, re.M)
    assert "tensorflow_model_optimization" not in sys.modules


def test_arch_of_another_super_network_is_refused(files):
    with pytest.raises(ValueError) as error:
        trained_model.load_discovered(
            files / "model.keras", files / "arch.json", files / "wider_spec.json"
        )
    fingerprint = builders.build("mobilenet_v1", **OPTIONS).fingerprint()
    wider = builders.build("mobilenet_v1", **{**OPTIONS, "width_multiplier": 0.5})
    assert str(error.value) == (
        f"{files / 'arch.json'}: arch: made for super-network 'mobilenet_v1' (fingerprint "
        f"{fingerprint}), not for 'mobilenet_v1' (fingerprint {wider.fingerprint()}); sample "
        "or export it with the same builder and options"
    )


def test_weights_of_another_arch_are_refused(files, network):
    with pytest.raises(ValueError) as error:
        trained_model.load_discovered(
            files / "other.keras", files / "arch.json", files / "spec.json"
        )
    message = str(error.value)
    assert re.fullmatch(
        re.escape(str(files / "other.keras")) + r": layer '[\w]+' (has weights of shapes "
        r"\[.*\]; the arch needs \[.*\]|is missing; the arch needs it with weights of shapes "
        r"\[.*\])\. Export the model from this arch \(tools/export_subnet\.py\)",
        message,
    ), message


def test_unknown_quantization_mode_is_refused():
    with pytest.raises(ValueError) as error:
        pipeline.ExportOptions(quantizations=("float32", "int4"))
    assert str(error.value) == (
        "ExportOptions.quantizations: 'int4' is not a quantization mode; allowed are "
        "['float32', 'float16', 'int8'] (quantization-aware int8: set qat)"
    )


def test_int8_without_representative_data_is_refused(network, data, tmp_path):
    no_calibration = pipeline.ShippingData(
        calibration=None,
        validation_images=data.validation_images,
        validation_labels=data.validation_labels,
    )
    with pytest.raises(ValueError) as error:
        pipeline.export_tflite_variants(
            network, tmp_path / "out", no_calibration, pipeline.ExportOptions(latency=FAST)
        )
    assert str(error.value) == (
        "calibration: None; quantization 'int8' needs representative data (training images)"
    )
    assert not (tmp_path / "out").exists()


def test_a_failure_after_conversion_leaves_no_file(network, data, tmp_path):
    # The post-training variants are converted before QAT finds it has no training images.
    options = pipeline.ExportOptions(quantizations=("float32",), qat=qat.QatSettings())
    (tmp_path / "keep.txt").write_text("from an earlier run")
    with pytest.raises(ValueError, match=r"^qat data: no training images"):
        pipeline.export_tflite_variants(network, tmp_path, data, options)
    assert sorted(os.listdir(tmp_path)) == ["keep.txt"]


def test_tool_writes_files_and_prints_json(files, tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    common = [
        sys.executable,
        str(REPO / "tools" / "export_tflite.py"),
        f"--keras_model={files / 'model.keras'}",
        f"--arch={files / 'arch.json'}",
        "--dataset=synthetic",
        "--synthetic_examples=80",
        "--calibration_examples=16",
        "--latency_runs=5",
        "--warmup_runs=1",
    ]
    out = tmp_path / "ship"
    done = subprocess.run(
        [
            *common,
            f"--spec={files / 'spec.json'}",
            f"--output_dir={out}",
            "--json",
            "--quantizations=float32,int8",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert [row["variant"] for row in summary["models"]] == ["float32", "int8"]
    assert summary == json.loads((out / "export_summary.json").read_text())
    assert summary["validation_examples"] == 16
    assert summary["models"][0]["max_abs_diff_from_keras"] <= 1e-4
