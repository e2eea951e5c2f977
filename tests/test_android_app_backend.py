"""The harness app's host driver (android_app.py) against the stand-in adb, with the
`am instrument -r` outputs of tests/fixtures/am_instrument/ and synthetic harness results."""

import json
import pathlib

import numpy as np
import pytest
from phone_helpers import PROPS, FakePhones, fake_apk

from netadapt_tf.latency.adb_client import DeviceError, DeviceLostError, choose_serials
from netadapt_tf.latency.android_app import (
    AndroidAppBackend,
    AndroidAppSettings,
    HarnessError,
    apk_abis,
)
from netadapt_tf.latency.instrumentation import parse_instrumentation

RECORDED = pathlib.Path(__file__).resolve().parent / "fixtures" / "am_instrument"
COMPONENT = "org.netadapt.benchmark.test/androidx.test.runner.AndroidJUnitRunner"
PREFLIGHT = ["devices", "getprop", "pm_list", "dumpsys", "pm_path", "sha256sum"]
RESULT_DIR = "sdcard/Android/data/org.netadapt.benchmark/files/netadapt"


@pytest.fixture
def phones(tmp_path, monkeypatch):
    return FakePhones(tmp_path, monkeypatch)


@pytest.fixture
def sleeps():
    return []


def _backend(sleeps, **settings):
    settings.setdefault("serials", ("SER1",))
    settings.setdefault("backoff_s", 0.25)
    return AndroidAppBackend(AndroidAppSettings(**settings), sleep=sleeps.append)


def _model(tmp_path, name="model.tflite", latency_us=12345):
    path = tmp_path / name
    path.write_bytes(f"TFL3 fake flatbuffer latency_us={latency_us}".encode())
    return path


def test_recorded_success_becomes_the_same_record_as_benchmark_model(phones, sleeps, tmp_path):
    phones.update(instrument_output=str(RECORDED / "success.txt"))
    model = _model(tmp_path)
    result = _backend(sleeps).measure(model)
    assert (result.latency_ms, result.statistic, result.serial) == (3.0, "median", "SER1")
    assert result.spread_ms == pytest.approx(2**0.5)
    run = result.run
    assert (run.median_us, run.inference_avg_us, run.p90_us) == (3000.0, 3000.0, 4600.0)
    assert (run.init_us, run.first_inference_us, run.warmup_avg_us) == (2500.0, 1000.0, 2500.0)
    assert run.memory_mb == pytest.approx(97356 / 1024)
    assert phones.kinds() == PREFLIGHT + ["push", "instrument", "rm"]
    push, instrument, remove = phones.calls()[-3:]
    remote = push["argv"][-1]
    assert remote.startswith("/data/local/tmp/netadapt_") and remote.endswith("_model.tflite")
    assert instrument["shell_tokens"] == [
        *(
            "am",
            "instrument",
            "-w",
            "-r",
            "-e",
            "class",
            "org.netadapt.benchmark.ModelBenchmarkTest",
        ),
        *("-e", "models", remote, "-e", "delegates", "cpu", "-e", "threads", "1"),
        *("-e", "warmup_runs", "5", "-e", "num_runs", "50", "-e", "use_xnnpack", "true"),
        COMPONENT,
        "2>&1",
    ]
    result_file = f"/{RESULT_DIR}/{remote.rsplit('/', 1)[1]}.cpu.t1.json"
    assert remove["shell_tokens"] == ["rm", "-f", remote, result_file, "2>&1"]
    assert phones.files_on_phone() == []
    assert sleeps == []


def test_every_delegate_and_thread_count_and_the_fingerprint(phones, sleeps, tmp_path):
    backend = _backend(sleeps, num_runs=7, warmup_runs=1, use_xnnpack=False)
    model = _model(tmp_path, "m o;del.tflite", latency_us=8000)
    runs = backend.run_model(model, delegates=("cpu", "gpu"), threads=(1, 4))
    assert [(r.delegate, r.threads, r.measurement.latency_ms) for r in runs] == [
        ("cpu", 1, 8.0),
        ("cpu", 4, 8.0),
        ("gpu", 1, 8.0),
        ("gpu", 4, 8.0),
    ]
    assert runs[0].p90_ms == pytest.approx(8.4) and runs[0].init_ms == 1.5
    assert runs[0].outputs[0].shape == (1, 4) and runs[0].outputs[0].dtype == np.float32
    (instrument,) = phones.calls("instrument")
    tokens = instrument["shell_tokens"]
    remote = tokens[tokens.index("models") + 1]
    assert remote.endswith("_m_o_del.tflite")  # no comma or shell character reaches the list
    assert tokens[tokens.index("delegates") + 1] == "cpu,gpu"
    assert tokens[tokens.index("threads") + 1] == "1,4"
    assert tokens[tokens.index("num_runs") + 1] == "7"
    assert tokens[tokens.index("use_xnnpack") + 1] == "false"
    assert backend.fingerprint() == {
        "backend": "android_app",
        "device": {
            "manufacturer": "Google",
            "model": "Pixel",
            "abi": "arm64-v8a",
            "build_fingerprint": PROPS["ro.build.fingerprint"],
            "harness_version": "1.0",
            "harness_abi": "arm64-v8a",
            "harness_apk_sha256": "ab" * 32,
        },
        "harness_flags": {
            "delegate": "cpu",
            "num_threads": 1,
            "num_runs": 7,
            "warmup_runs": 1,
            "use_xnnpack": False,
        },
        "statistic": "median_ms",
    }
    assert phones.files_on_phone() == []


def test_outputs_too_big_for_the_status_line_are_pulled(phones, sleeps, tmp_path):
    values = np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5
    encoded = {"dtype": "float32", "shape": [2, 3], "base64": _b64(values)}
    phones.update(outputs=[encoded], inline_limit=8)
    (run,) = _backend(sleeps).run_model(_model(tmp_path))
    np.testing.assert_array_equal(run.outputs[0], values)
    assert phones.kinds()[-3:] == ["instrument", "pull", "rm"]
    assert phones.files_on_phone() == []


def _b64(array):
    import base64

    return base64.b64encode(array.astype(array.dtype.newbyteorder("<")).tobytes()).decode()


@pytest.mark.parametrize(
    ("recorded", "message"),
    [
        ("crash.txt", r"the harness process crashed \(Process crashed\.\); see `adb logcat"),
        (
            "missing_model.txt",
            r"\(cpu, 1 threads\): the model failed on the phone: java\.io\.IOException: cannot "
            r"read model /data/local/tmp/netadapt_\w+_model\.tflite \(no such file\) \(the pushed",
        ),
        (
            "wrong_abi.txt",
            r"UnsatisfiedLinkError: dlopen failed: .* is for EM_AARCH64 \(183\) instead of "
            r"EM_X86_64 \(62\) \(LiteRT's native library does not load: the APK lacks",
        ),
        (
            "not_installed.txt",
            r"am instrument could not run the harness: INSTRUMENTATION_FAILED: org\.netadapt\."
            r"benchmark\.test/androidx\.test\.runner\.AndroidJUnitRunner \(Unable to find",
        ),
        (
            "bad_arguments.txt",
            r"the harness test failed: java\.lang\.IllegalArgumentException: instrumentation "
            r"argument 'num_runs': '0' is not an integer >= 1",
        ),
        ("garbage.txt", r"am instrument stopped before INSTRUMENTATION_CODE \(cut off, or not"),
    ],
)
def test_failures_are_messages_never_numbers(phones, sleeps, tmp_path, recorded, message):
    phones.update(instrument_output=str(RECORDED / recorded))
    with pytest.raises(HarnessError, match=message):
        _backend(sleeps).measure(_model(tmp_path))
    assert phones.kinds().count("instrument") == 1  # a broken harness is not a flaky cable
    assert sleeps == []
    assert phones.files_on_phone() == []


def test_a_model_litert_cannot_load(phones, sleeps, tmp_path):
    model = tmp_path / "bad.tflite"
    model.write_bytes(b"TFL3 no latency, no flatbuffer")
    with pytest.raises(HarnessError, match="does not encode a valid TensorFlow Lite model"):
        _backend(sleeps).measure(model)


def test_device_lost_mid_run_is_retried_then_given_up(phones, sleeps, tmp_path):
    phones.update(fail={"instrument": 1})
    assert _backend(sleeps).measure(_model(tmp_path)).latency_ms == 12.345
    assert sleeps == [0.25]
    truncated = (RECORDED / "truncated.txt").read_text()
    phones.update(
        fail={},
        responses={"instrument": {"stdout": truncated, "stderr": "error: closed\n", "rc": 1}},
    )
    with pytest.raises(DeviceLostError, match=r"failed 3 times; last error: .* 'error: closed'"):
        _backend(sleeps, retries=2).measure(_model(tmp_path, "b.tflite"))
    assert sleeps == [0.25, 0.25, 0.5]
    assert phones.files_on_phone() == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"harness": {"installed": False}},
            r"the benchmark harness is not installed on 'SER1' \(`pm list instrumentation` has "
            r"no org\.netadapt\.benchmark\.test/androidx",
        ),
        (
            {"harness": {"version": "0.9"}},
            r"'SER1' has harness version '0\.9' installed; this driver needs '1\.0'",
        ),
        (
            {
                "harness": {"abi": "arm64-v8a"},
                "props": {
                    **PROPS,
                    "ro.product.cpu.abi": "x86_64",
                    "ro.product.cpu.abilist": "x86_64,x86,arm64-v8a,armeabi-v7a",
                    "ro.kernel.qemu": "1",
                    "ro.dalvik.vm.native.bridge": "libndk_translation.so",
                },
            },
            r"the installed harness holds native code for \['arm64-v8a'\] but 'SER1' is an "
            r"emulator with a x86_64 CPU: the code would run under binary translation",
        ),
        (
            {"devices": {"SER1": "unauthorized"}},
            r"phone 'SER1' is unauthorized: unlock it and accept",
        ),
    ],
)
def test_phone_and_harness_checked_up_front(phones, sleeps, tmp_path, changes, message):
    phones.update(**changes)
    with pytest.raises(DeviceError, match=message):
        _backend(sleeps).measure(_model(tmp_path))
    assert "push" not in phones.kinds() and "instrument" not in phones.kinds()


def test_install_checks_the_abi_first(phones, sleeps, tmp_path):
    apk = fake_apk(tmp_path, "app.apk", ["arm64-v8a", "armeabi-v7a"])
    test_apk = fake_apk(tmp_path, "test.apk", [])
    assert apk_abis(apk) == {"arm64-v8a", "armeabi-v7a"}
    backend = _backend(sleeps)
    backend.install(apk, test_apk, "SER1")
    installs = [c["argv"] for c in phones.calls("install")]
    assert installs == [["-s", "SER1", "install", "-r", "-t", str(p)] for p in (apk, test_apk)]

    phones.update(
        props={**PROPS, "ro.product.cpu.abi": "x86_64", "ro.product.cpu.abilist": "x86_64,x86"}
    )
    with pytest.raises(
        DeviceError,
        match=r"holds native code for \['arm64-v8a', 'armeabi-v7a'\] but 'SER1' \(a x86_64 "
        r"phone, ABIs \['x86_64', 'x86'\]\) runs none",
    ):
        backend.install(apk, test_apk, "SER1")
    phones.update(props=PROPS, install_error="INSTALL_FAILED_INSUFFICIENT_STORAGE")
    with pytest.raises(DeviceError, match="INSTALL_FAILED_INSUFFICIENT_STORAGE"):
        backend.install(apk, test_apk, "SER1")
    not_an_apk = tmp_path / "notes.txt"
    not_an_apk.write_text("x")
    with pytest.raises(ValueError, match="is not an APK"):
        apk_abis(not_an_apk)


def test_two_phones_share_models_and_a_lost_one_hands_its_work_over(phones, sleeps, tmp_path):
    phones.update(
        devices={"SER1": "device", "SER2": "device"},
        lost_after={"SER2": 1},
        responses={"instrument": {"delay_s": 0.2}},
    )
    models = [_model(tmp_path, f"m{i}.tflite", latency_us=1000 * (i + 1)) for i in range(5)]
    backend = _backend(sleeps, serials=("SER1", "SER2"), retries=1)
    results = backend.measure_many(models)
    assert [r.latency_ms for r in results] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert [r.serial for r in results].count("SER2") == 1
    assert list(backend.lost_phones) == ["SER2"]
    assert "SER2" in backend.lost_phones["SER2"] and "not found" in backend.lost_phones["SER2"]
    assert sleeps == [0.25]


def test_choose_serials(phones):
    phones.update(devices={})
    with pytest.raises(
        DeviceError, match=r"no phone is ready to measure: `adb devices` lists nothing"
    ):
        choose_serials([])
    phones.update(devices={"A": "unauthorized"})
    with pytest.raises(DeviceError, match=r"lists: A \(unauthorized\); unlock it and accept"):
        choose_serials([])
    phones.update(devices={"A": "device", "B": "device", "C": "offline"})
    with pytest.raises(
        DeviceError, match=r"several phones are attached \(A, B\) and none was chosen"
    ):
        choose_serials([])
    assert choose_serials(["all"]) == ("A", "B")
    assert choose_serials(["B"]) == ("B",)
    with pytest.raises(ValueError, match="'all' means every attached phone"):
        choose_serials(["all", "A"])
    phones.update(devices={"A": "device", "C": "offline"})
    assert choose_serials([]) == ("A",)


def test_instrumentation_values_may_span_lines():
    run = parse_instrumentation(
        "INSTRUMENTATION_STATUS: stack=java.lang.Error: x\n\tat a.b(C.java:1)\n"
        "INSTRUMENTATION_STATUS: test=t\nINSTRUMENTATION_STATUS_CODE: -2\n"
        "INSTRUMENTATION_RESULT: stream=\n\nTime: 1\r\nINSTRUMENTATION_CODE: -1\r\n"
    )
    assert run.statuses[0].code == -2
    assert run.statuses[0].values == {
        "stack": "java.lang.Error: x\n\tat a.b(C.java:1)",
        "test": "t",
    }
    assert run.result == {"stream": "\n\nTime: 1"} and run.code == -1 and run.failed is None


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        (
            {"delegate": "tpu"},
            ValueError,
            r"delegate: 'tpu' is not one of \('cpu', 'gpu', 'nnapi'\)",
        ),
        ({"num_runs": 0}, ValueError, "num_runs must be >= 1, got 0"),
        ({"use_xnnpack": "yes"}, TypeError, "use_xnnpack must be a bool"),
        ({"serials": ()}, ValueError, "AndroidAppSettings.serials is empty"),
        ({"timeout_s": -1}, ValueError, "timeout_s must be a finite number > 0"),
    ],
)
def test_settings_validation(changes, error, message):
    with pytest.raises(error, match=message):
        AndroidAppSettings(**{"serials": ("SER1",), **changes})


def test_result_json_is_what_the_harness_writes():
    text = (RECORDED / "success.txt").read_text()
    (status,) = [s for s in parse_instrumentation(text).statuses if s.code == 2]
    result = json.loads(status.values["netadapt_result"])
    assert result["latency_ms"]["median"] == 3.0 and result["outputs_inline"] is True
