"""tools/measure_latency.py and tools/build_latency_table.py run as programs on tiny models.

Each start pays the TensorFlow import (about 5 s), so each test checks all it can per run.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from phone_helpers import FakePhones

from netadapt_tf import builders
from netadapt_tf.metrics import tflite
from netadapt_tf.space.arch import random_arch, save_arch
from netadapt_tf.space.macs import count

REPO = pathlib.Path(__file__).resolve().parent.parent
MODEL = {"input_size": 16, "num_classes": 10, "width_multiplier": 0.25, "num_widths": 2}
MODEL_FLAGS = [
    "--model=mobilenet_v1",
    "--input_size=16",
    "--num_classes=10",
    "--width_multiplier=0.25",
    "--num_widths=2",
]
HOST_FLAGS = ["--num_runs=5", "--warmup_runs=1", "--clock=thread_cpu"]


def _run(tool: str, *args) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    return subprocess.run(
        [sys.executable, str(REPO / "tools" / f"{tool}.py"), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


@pytest.fixture(scope="module")
def spec():
    return builders.build("mobilenet_v1", **MODEL)


@pytest.fixture(scope="module")
def arch_file(spec, tmp_path_factory):
    path = tmp_path_factory.mktemp("archs") / "arch.json"
    save_arch(random_arch(spec, np.random.default_rng(7)), str(path))
    return path


def test_measure_arch_on_the_host_with_a_cache(arch_file, tmp_path):
    cache = tmp_path / "cache"
    args = [*MODEL_FLAGS, *HOST_FLAGS, f"--arch={arch_file}", f"--cache_dir={cache}", "--json"]
    first = _run("measure_latency", *args)
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert result["unit"] == "ms" and result["latency_ms"] > 0 and result["cache"] == "miss"
    assert result["fingerprint"]["backend"] == "host_litert"
    assert result["fingerprint"]["settings"]["clock"] == "thread_cpu"
    again = json.loads(_run("measure_latency", *args).stdout)
    assert again["cache"] == "hit" and again["latency_ms"] == result["latency_ms"]


def test_measure_a_tflite_file_and_macs(spec, arch_file, tmp_path):
    from netadapt_tf.metrics.subnet_tflite import SubnetConverter
    from netadapt_tf.space.arch import load_arch

    arch = load_arch(str(arch_file), spec)
    model_path = tmp_path / "model.tflite"
    tflite.write_tflite(SubnetConverter(spec).tflite(arch), model_path)
    done = _run("measure_latency", *MODEL_FLAGS, *HOST_FLAGS, f"--tflite={model_path}", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["latency_ms"] > 0 and result["spread_ms"] >= 0
    assert result["measurement"]["num_runs"] == 5
    assert result["fingerprint"]["model"]["file"] == str(model_path)

    macs = _run("measure_latency", *MODEL_FLAGS, f"--arch={arch_file}", "--backend=macs")
    assert macs.returncode == 0, macs.stderr
    assert f"{count(spec, arch).macs:,} MACs" in macs.stdout


@pytest.mark.slow
def test_measure_latency_rejects_bad_command_lines(arch_file, tmp_path, monkeypatch):
    stray = _run("measure_latency", *MODEL_FLAGS, "extra")
    assert stray.returncode != 0 and "unexpected arguments: ['extra']" in stray.stderr
    both = _run("measure_latency", *MODEL_FLAGS, "--tflite=m.tflite", "--backend=macs")
    assert (
        both.returncode != 0
        and "--tflite is measured by --backend=host, adb or android_app" in (both.stderr)
    )
    no_table = _run("measure_latency", *MODEL_FLAGS, "--backend=table")
    assert no_table.returncode != 0 and "--table is needed by" in no_table.stderr
    phones = FakePhones(tmp_path, monkeypatch)  # the stand-in adb, first on PATH
    phones.update(devices={"A": "device", "B": "device"})
    several = _run("measure_latency", *MODEL_FLAGS, f"--arch={arch_file}", "--backend=adb")
    assert several.returncode == 1, several.stderr[-2000:]
    assert "measure_latency: several phones are attached (A, B) and none was chosen" in (
        several.stderr
    )


@pytest.mark.slow
def test_build_a_table_then_predict_with_it(arch_file, tmp_path):
    table = tmp_path / "table.json"
    build_flags = [
        *MODEL_FLAGS,
        *HOST_FLAGS,
        f"--output={table}",
        "--max_x_points=2",
        "--calibration_archs=3",
        "--calibration_rounds=1",
        "--fit=affine",
        "--json",
    ]
    built = _run("build_latency_table", *build_flags)
    assert built.returncode == 0, built.stderr
    summary = json.loads(built.stdout)
    assert summary["complete"] and summary["entries"] > 10
    assert summary["calibration"]["kind"] == "affine"
    again = json.loads(_run("build_latency_table", *build_flags).stdout)
    assert again["entries"] == summary["entries"]  # nothing left to measure

    args = [*MODEL_FLAGS, f"--arch={arch_file}", "--backend=table", f"--table={table}", "--json"]
    predicted = _run("measure_latency", *args)
    assert predicted.returncode == 0, predicted.stderr
    result = json.loads(predicted.stdout)
    assert result["unit"] == "ms" and result["fingerprint"]["backend"] == "lookup_table"

    other = _run("measure_latency", *MODEL_FLAGS[:-1], f"--table={table}", "--backend=table")
    assert other.returncode == 1 and "built for super-network 'mobilenet_v1'" in other.stderr
