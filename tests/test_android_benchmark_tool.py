"""tools/android_benchmark.py with the stand-in adb (installing, timing, output parity, bad
command lines and phones) and the Gradle build helper with stand-in Gradle wrappers."""

import base64
import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
from phone_helpers import FakePhones, fake_apk

from netadapt_tf.latency import harness_build
from netadapt_tf.latency.output_parity import compare_outputs, host_outputs, make_inputs
from netadapt_tf.metrics import tflite

REPO = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> pathlib.Path:
    """A tiny float32 classifier as a .tflite file."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(5)(x))
    path = tmp_path_factory.mktemp("model") / "tiny.tflite"
    tflite.write_tflite(tflite.convert(model, route="frozen_function"), path)
    return path


@pytest.fixture
def phones(tmp_path, monkeypatch):
    return FakePhones(tmp_path, monkeypatch)


def _run(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    tool = REPO / "tools" / "android_benchmark.py"
    return subprocess.run(
        [sys.executable, str(tool), *map(str, args)], capture_output=True, text=True, env=env
    )


def _encoded(array: np.ndarray) -> dict:
    data = base64.b64encode(array.astype("<f4").tobytes()).decode()
    return {"dtype": "float32", "shape": list(array.shape), "base64": data}


def test_times_a_model_and_compares_its_outputs_with_the_host(phones, model_file, tmp_path):
    model = model_file.read_bytes()
    (expected,) = host_outputs(model, make_inputs(model, seed=4))
    phones.update(outputs=[_encoded(expected + np.float32(0.001))])
    report_file = tmp_path / "report.json"
    done = _run(
        f"--tflite={model_file}",
        "--delegates=cpu,gpu",
        "--threads=1,2",
        "--num_runs=5",
        "--seed=4",
        f"--output={report_file}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(report_file.read_text())
    (entry,) = report["models"]
    assert entry["bytes"] == len(model) and len(entry["runs"]) == 4
    for run in entry["runs"]:
        assert run["latency_ms"] == pytest.approx(len(model) * 0.5 / 1000)
        assert run["parity"]["max_abs_diff"] == pytest.approx(0.001, abs=1e-6)
        assert run["parity"]["unit"] == "output units"
    (instrument,) = phones.calls("instrument")
    tokens = instrument["shell_tokens"]
    assert tokens[tokens.index("num_runs") + 1] == "5"
    pushed_inputs = [c for c in phones.calls("push") if c["argv"][-1].endswith(".inputs")]
    assert len(pushed_inputs) == 1  # the parity inputs went to the phone with the model
    assert "Google Pixel (arm64-v8a), harness 1.0" in done.stdout
    assert "0.001" in done.stdout.splitlines()[-1]
    assert phones.files_on_phone() == []


def test_parity_sees_wrong_outputs(model_file):
    model = model_file.read_bytes()
    inputs = make_inputs(model, seed=0)
    (expected,) = host_outputs(model, inputs)
    wrong = expected.copy()
    wrong[0, 2] += 3.0
    report = compare_outputs(model, inputs, [wrong], "phone")
    assert report.max_abs_diff == pytest.approx(3.0, rel=1e-6)
    with pytest.raises(ValueError, match=r"phone: output 0 is float32\[5\] on the phone but"):
        compare_outputs(model, inputs, [expected[0]], "phone")
    with pytest.raises(ValueError, match="holds NaN"):
        compare_outputs(model, inputs, [expected * np.nan], "phone")


def test_installs_given_apks_on_every_phone(phones, tmp_path):
    phones.update(devices={"A": "device", "B": "device"})
    apk, test_apk = fake_apk(tmp_path, "app.apk", ["arm64-v8a"]), fake_apk(tmp_path, "t.apk", [])
    done = _run("--serial=all", f"--apk={apk}", f"--test_apk={test_apk}", "--install_only")
    assert done.returncode == 0, done.stderr[-3000:]
    assert [(c["serial"], c["argv"][-1]) for c in phones.calls("install")] == [
        ("A", str(apk)),
        ("A", str(test_apk)),
        ("B", str(apk)),
        ("B", str(test_apk)),
    ]


@pytest.mark.parametrize(
    ("devices", "args", "message"),
    [
        ({}, [], "android_benchmark: no phone is ready to measure: `adb devices` lists nothing"),
        (
            {"A": "device", "B": "device"},
            [],
            "several phones are attached (A, B) and none was chosen; name them with --serial",
        ),
        ({"A": "unauthorized"}, ["--serial=A"], "phone 'A' is unauthorized"),
        ({"A": "device"}, ["--threads=0"], "--threads: ['0'] must be integers >= 1"),
    ],
)
def test_bad_phones_and_settings_are_messages(phones, model_file, devices, args, message):
    phones.update(devices=devices)
    done = _run(f"--tflite={model_file}", *args)
    assert done.returncode == 1 and message in done.stderr, done.stderr[-2000:]
    assert phones.calls("instrument") == []


def test_bad_command_lines(model_file):
    stray = _run(f"--tflite={model_file}", "extra")
    assert stray.returncode != 0 and "unexpected arguments: ['extra']" in stray.stderr
    nothing = _run()
    assert nothing.returncode != 0 and "give --tflite files to time, or --install_only" in (
        nothing.stderr
    )
    half = _run("--apk=a.apk", "--install_only")
    assert half.returncode != 0 and "--apk and --test_apk go together" in half.stderr


def _project(tmp_path, wrapper: str | None) -> pathlib.Path:
    project = tmp_path / "android_benchmark"
    project.mkdir(parents=True)
    (project / "settings.gradle.kts").write_text('include(":app")\n')
    if wrapper is not None:
        gradlew = project / "gradlew"
        gradlew.write_text("#!/bin/sh\n" + wrapper)
        gradlew.chmod(0o755)
    return project


def test_gradle_build_needs_an_sdk_and_gradle(tmp_path):
    sdk = tmp_path / "sdk"
    (sdk / "platforms").mkdir(parents=True)
    project = _project(tmp_path, None)
    with pytest.raises(ValueError, match="no Android SDK to build the harness with: install"):
        harness_build.build_harness(project, env={"PATH": ""})
    (project / "local.properties").write_text(f"sdk.dir={tmp_path / 'nowhere'}\n")
    with pytest.raises(ValueError, match=r"no Android SDK .* \(.*nowhere has no platforms/\)"):
        harness_build.build_harness(project, env={"PATH": ""})
    with pytest.raises(ValueError, match=r"no Gradle to build the harness with: .*gradlew is"):
        harness_build.build_harness(project, env={"PATH": "", "ANDROID_HOME": str(sdk)})


def test_gradle_build_runs_the_wrapper_and_returns_the_apks(tmp_path):
    sdk = tmp_path / "sdk"
    (sdk / "platforms").mkdir(parents=True)
    writes = (
        'echo "$@" > args.txt; echo "$ANDROID_HOME" >> args.txt\n'
        f"mkdir -p {os.path.dirname(harness_build.APK)} {os.path.dirname(harness_build.TEST_APK)}\n"
        f"touch {harness_build.APK} {harness_build.TEST_APK}\n"
    )
    project = _project(tmp_path, writes)
    (project / "local.properties").write_text(f"sdk.dir={sdk}\n")
    apks = harness_build.build_harness(project, env={"PATH": os.environ["PATH"]})
    assert apks.apk == project / harness_build.APK and apks.test_apk.is_file()
    assert (project / "args.txt").read_text().split("\n")[:2] == [
        "--no-daemon :app:assembleDebug :app:assembleDebugAndroidTest",
        str(sdk),
    ]
    failing = _project(tmp_path / "x", "echo 'SDK location not found' >&2; exit 1\n")
    with pytest.raises(ValueError, match=r"failed \(exit 1\); it ends:\nSDK location not found"):
        harness_build.build_harness(failing, env={"PATH": "", "ANDROID_HOME": str(sdk)})
