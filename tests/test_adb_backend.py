"""Tests for the adb backend, driven through the stand-in `adb` in tests/fake_adb/.

The fake records every call, so these tests pin the exact argv sent to adb, and keeps the
phone's file system in a directory, so they can check that pushed models are removed.
"""

import json
import os
import pathlib
import re
import shlex
import sys

import pytest
from phone_helpers import FAKE_ADB_DIR, PROPS, FakePhones

from netadapt_tf.latency.adb import (
    AdbBenchmarkBackend,
    AdbSettings,
    DeviceError,
    LatencyMeasurement,
)
from netadapt_tf.latency.benchmark_log import BenchmarkLogError, BenchmarkRun
from netadapt_tf.metrics.measurement_cache import MeasurementCache

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures" / "benchmark_model"
BINARY = "/data/local/tmp/benchmark_model"
REMOTE_NAME = re.compile(r"/data/local/tmp/netadapt_[0-9a-f]{12}_(.+)$")


@pytest.fixture
def phones(tmp_path, monkeypatch):
    return FakePhones(tmp_path, monkeypatch)


@pytest.fixture
def sleeps():
    return []


def _backend(sleeps, **settings):
    settings.setdefault("serials", ("SER1",))
    settings.setdefault("backoff_s", 0.25)
    return AdbBenchmarkBackend(AdbSettings(**settings), sleep=sleeps.append)


def _model(tmp_path, name="model.tflite", latency_us=12345):
    path = tmp_path / name
    path.write_bytes(f"TFL3 fake flatbuffer latency_us={latency_us}".encode())
    return path


PREFLIGHT = ["devices", "getprop", "help", "sha256sum"]


def test_good_run_parses_fixture_and_cleans_up(phones, sleeps, tmp_path):
    phones.update(benchmark_output=str(FIXTURES / "android_adb_taskset_2020.txt"))
    model = _model(tmp_path)
    backend = _backend(sleeps, taskset_mask="f0", use_xnnpack=False)
    result = backend.measure(model)

    assert result == LatencyMeasurement(
        latency_ms=33.2094,
        statistic="avg",
        spread_ms=0.45,
        run=BenchmarkRun(
            inference_avg_us=33209.4,
            init_us=855,
            first_inference_us=49060,
            warmup_avg_us=34825.1,
            memory_mb=12.8672,
            std_us=450,
        ),
        serial="SER1",
    )
    assert phones.kinds() == PREFLIGHT + ["push", "benchmark", "rm"]
    calls = phones.calls()
    assert calls[0]["argv"] == ["devices"]
    assert calls[1]["argv"] == ["-s", "SER1", "shell", "getprop 2>&1"]
    assert calls[2]["argv"] == ["-s", "SER1", "shell", f"{BINARY} --help 2>&1"]
    assert calls[3]["argv"] == ["-s", "SER1", "shell", f"sha256sum {BINARY} 2>&1"]
    push, benchmark, remove = calls[4:]
    remote = push["argv"][-1]
    assert REMOTE_NAME.match(remote).group(1) == "model.tflite"
    assert push["argv"] == ["-s", "SER1", "push", str(model), remote]
    assert benchmark["argv"] == [
        "-s",
        "SER1",
        "shell",
        f"taskset f0 {BINARY} --graph={remote} --num_threads=1 --num_runs=50 "
        "--warmup_runs=5 --use_xnnpack=false 2>&1",
    ]
    assert remove["argv"] == ["-s", "SER1", "shell", f"rm -f {remote} 2>&1"]
    assert phones.files_on_phone() == []
    assert sleeps == []


def test_median_preferred_and_checks_done_once(phones, sleeps, tmp_path):
    backend = _backend(sleeps, num_threads=4, num_runs=20, warmup_runs=2, use_gpu=True)
    first = backend.measure(_model(tmp_path, "a.tflite", latency_us=12345))
    second = backend.measure(_model(tmp_path, "b.tflite", latency_us=20000))
    assert (first.latency_ms, first.statistic, first.spread_ms) == (12.345, "median", 0.003)
    assert first.run.inference_avg_us == 12347
    assert second.latency_ms == 20.0
    assert phones.kinds() == PREFLIGHT + ["push", "benchmark", "rm"] * 2
    tokens = phones.calls("benchmark")[0]["shell_tokens"]
    assert tokens[2:] == [
        "--num_threads=4",
        "--num_runs=20",
        "--warmup_runs=2",
        "--use_gpu=true",
        "2>&1",
    ]
    assert first.to_json()["run"]["median_us"] == 12345


def test_nnapi_memory_and_op_profiling_flags(phones, sleeps, tmp_path):
    backend = _backend(
        sleeps, use_nnapi=True, report_peak_memory_footprint=True, enable_op_profiling=True
    )
    assert backend.measure(_model(tmp_path)).latency_ms == 12.345
    tokens = phones.calls("benchmark")[0]["shell_tokens"]
    assert tokens[-4:] == [
        "--use_nnapi=true",
        "--report_peak_memory_footprint=true",
        "--enable_op_profiling=true",
        "2>&1",
    ]


def test_measure_any_from_threads_uses_every_phone_one_model_at_a_time(phones, sleeps, tmp_path):
    import concurrent.futures

    phones.update(
        devices={"SER1": "device", "SER2": "device", "SER3": "device"},
        responses={"benchmark": {"delay_s": 0.3}},
        timeline=str(tmp_path / "timeline.jsonl"),
    )
    backend = _backend(sleeps, serials=("SER1", "SER2", "SER3"))
    models = [_model(tmp_path, f"m{i}.tflite", latency_us=1000 * (i + 1)) for i in range(6)]
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        results = list(pool.map(backend.measure_any, models))
    assert [r.latency_ms for r in results] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert {r.serial for r in results} == {"SER1", "SER2", "SER3"}
    # A phone measures one model at a time.
    spans = [json.loads(line) for line in (tmp_path / "timeline.jsonl").read_text().splitlines()]
    for serial in ("SER1", "SER2", "SER3"):
        mine = sorted((t["start"], t["end"]) for t in spans if t["serial"] == serial)
        assert all(end <= start for (_, end), (start, _) in zip(mine, mine[1:], strict=False))
    assert backend.lost_phones == {}


def test_every_phone_lost_is_an_error(phones, sleeps, tmp_path):
    phones.update(devices={"SER1": "device", "SER2": "device"}, lost_after={"SER1": 1, "SER2": 1})
    backend = _backend(sleeps, serials=("SER1", "SER2"), retries=0)
    assert [backend.measure_any(_model(tmp_path, f"{i}.tflite")).serial for i in "ab"] == [
        "SER1",
        "SER2",
    ]
    with pytest.raises(DeviceError, match=r"every phone was lost: SER1: measuring .* SER2: meas"):
        backend.measure_any(_model(tmp_path, "c.tflite"))
    assert set(backend.lost_phones) == {"SER1", "SER2"}


def test_fingerprint(phones, sleeps):
    backend = _backend(sleeps, taskset_mask="8", use_xnnpack=True)
    assert backend.fingerprint() == {
        "backend": "adb_benchmark_model",
        "device": {
            "manufacturer": "Google",
            "model": "Pixel",
            "abi": "arm64-v8a",
            "build_fingerprint": PROPS["ro.build.fingerprint"],
            "benchmark_model_sha256": "ab" * 32,
        },
        "benchmark_flags": {
            "num_threads": 1,
            "num_runs": 50,
            "warmup_runs": 5,
            "use_xnnpack": True,
            "use_gpu": False,
            "use_nnapi": False,
            "report_peak_memory_footprint": False,
            "enable_op_profiling": False,
            "taskset_mask": "8",
        },
        "statistic": "median_ms if printed, else avg",
    }
    json.dumps(backend.fingerprint())
    assert phones.kinds() == PREFLIGHT


def test_phones_of_different_kinds_are_refused(phones, sleeps):
    phones.update(
        devices={"SER1": "device", "SER2": "device"},
        props_by_serial={"SER2": {**PROPS, "ro.product.model": "Pixel 2"}},
    )
    backend = _backend(sleeps, serials=("SER1", "SER2"))
    with pytest.raises(DeviceError, match="phones 'SER1' and 'SER2' differ"):
        backend.fingerprint()


def test_missing_adb(phones, sleeps, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DeviceError) as caught:
        _backend(sleeps).measure(_model(tmp_path))
    assert str(caught.value) == (
        "adb executable 'adb' not found; install Android SDK platform-tools or set "
        "AdbSettings.adb_path"
    )
    with pytest.raises(DeviceError, match="'/no/such/adb' not found"):
        _backend(sleeps, adb_path="/no/such/adb").fingerprint()
    assert phones.calls() == []


def test_explicit_adb_path(phones, sleeps, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable))
    backend = _backend(sleeps, adb_path=str(FAKE_ADB_DIR / "adb"))
    assert backend.measure(_model(tmp_path)).latency_ms == 12.345


@pytest.mark.parametrize(
    ("devices", "message"),
    [
        ({"SER1": "unauthorized"}, "phone 'SER1' is unauthorized: unlock it and accept"),
        ({"SER1": "offline"}, "phone 'SER1' is offline: reconnect the cable"),
        ({"SER1": "recovery"}, "phone 'SER1' is in state 'recovery'; expected 'device'"),
        (
            {"OTHER": "device"},
            r"phone 'SER1' is not attached; `adb devices` lists: OTHER \(device\)",
        ),
        ({}, "phone 'SER1' is not attached; `adb devices` lists: nothing"),
    ],
)
def test_unusable_device(phones, sleeps, tmp_path, devices, message):
    phones.update(devices=devices)
    with pytest.raises(DeviceError, match=message):
        _backend(sleeps).measure(_model(tmp_path))
    assert phones.kinds() == ["devices"]
    assert sleeps == []


@pytest.mark.parametrize(
    ("binary", "message"),
    [
        ("missing", "is missing; push it with `adb push benchmark_model"),
        ("not_executable", r"is not executable; run `adb shell chmod \+x"),
        ("wrong_abi", "is built for another ABI than the phone's arm64-v8a"),
    ],
)
def test_unusable_benchmark_binary(phones, sleeps, tmp_path, binary, message):
    phones.update(binary=binary)
    with pytest.raises(DeviceError, match=message) as caught:
        _backend(sleeps).measure(_model(tmp_path))
    assert f"/system/bin/sh: {BINARY}:" in str(caught.value)  # quotes the phone's own words
    assert phones.kinds() == ["devices", "getprop", "help"]
    assert phones.files_on_phone() == []


def test_device_lost_mid_run_is_retried(phones, sleeps, tmp_path):
    phones.update(fail={"benchmark": 1})
    result = _backend(sleeps).measure(_model(tmp_path))
    assert result.latency_ms == 12.345
    assert sleeps == [0.25]
    assert phones.kinds() == PREFLIGHT + ["push", "benchmark", "rm"] * 2
    pushes = [call["argv"][-1] for call in phones.calls("push")]
    removed = [call["shell_tokens"][2] for call in phones.calls("rm")]
    assert removed == pushes and pushes[0] != pushes[1]
    assert phones.files_on_phone() == []


def test_backoff_doubles_then_gives_up(phones, sleeps, tmp_path):
    phones.update(fail={"push": 10})
    with pytest.raises(DeviceError) as caught:
        _backend(sleeps, retries=3).measure(_model(tmp_path))
    assert sleeps == [0.25, 0.5, 1.0]
    assert "failed 4 times; last error: `adb -s SER1 push" in str(caught.value)
    assert "error: device 'SER1' not found" in str(caught.value)
    assert phones.kinds().count("push") == 4
    # Cleanup is still attempted after every failed try.
    assert phones.kinds().count("rm") == 4


def test_garbage_output_is_an_error_and_not_cached(phones, sleeps, tmp_path):
    phones.update(responses={"benchmark": {"stdout": "\x1b[0m@@\ufffd Segmentation fault\n"}})
    backend = _backend(sleeps)
    cache = MeasurementCache(tmp_path / "cache")
    model = _model(tmp_path)
    with pytest.raises(BenchmarkLogError, match="no complete timing summary"):
        cache.get_or_measure(
            model.read_bytes(), backend.fingerprint(), lambda: backend.measure(model).latency_ms
        )
    assert cache.get(model.read_bytes(), backend.fingerprint()) is None
    assert list((tmp_path / "cache").rglob("*.json")) == []
    assert phones.kinds().count("benchmark") == 1  # a bad log is not a flaky cable
    assert phones.kinds()[-1] == "rm"
    assert phones.files_on_phone() == []


def test_failure_exit_status_with_complete_log_is_an_error(phones, sleeps, tmp_path):
    log = (FIXTURES / "xnnpack_int8_memory_delta.txt").read_text(encoding="utf-8")
    phones.update(responses={"benchmark": {"stdout": log, "rc": 139}})
    with pytest.raises(DeviceError, match="benchmark_model on SER1 exited with status 139"):
        _backend(sleeps).measure(_model(tmp_path))


def test_two_runs_in_one_log_is_an_error(phones, sleeps, tmp_path):
    phones.update(benchmark_output=str(FIXTURES / "info_prefix_cpu_and_gpu.txt"))
    with pytest.raises(DeviceError, match="printed 2 timing summaries, expected 1"):
        _backend(sleeps).measure(_model(tmp_path))
    assert phones.files_on_phone() == []


def test_timeout(phones, sleeps, tmp_path):
    # timeout_s leaves room for the stand-in adb's own start on a loaded machine (the push);
    # the hung benchmark outlasts it. The cleanup is not bound by timeout_s.
    phones.update(responses={"benchmark": {"hang_s": 60}})
    with pytest.raises(DeviceError) as caught:
        _backend(sleeps, timeout_s=5, retries=1).measure(_model(tmp_path))
    message = str(caught.value)
    assert "failed 2 times" in message
    assert "timed out after timeout_s=5 s" in message
    assert sleeps == [0.25]
    assert phones.kinds().count("rm") == 2
    assert phones.files_on_phone() == []


@pytest.mark.parametrize(
    ("file_name", "remote_dir"),
    [
        # A file name cannot hold '/', so the full payload also travels in the remote dir.
        ("my model'; rm -rf ~ #.tflite", "/data/local/tmp"),
        ('x";$(reboot)`id`.tflite', "/data/local/tmp/a b'; rm -rf / #"),
    ],
)
def test_hostile_names_are_quoted(phones, sleeps, tmp_path, file_name, remote_dir):
    model = _model(tmp_path, file_name, latency_us=4000)
    result = _backend(sleeps, remote_dir=remote_dir).measure(model)
    assert result.latency_ms == 4.0
    push = phones.calls("push")[0]
    remote = push["argv"][-1]
    assert remote == f"{remote_dir}/{os.path.basename(remote)}"
    assert os.path.basename(remote).endswith("_" + file_name)
    assert push["argv"] == ["-s", "SER1", "push", str(model), remote]
    for kind, expected_tokens in [
        ("benchmark", [BINARY, f"--graph={remote}", "--num_threads=1", "--num_runs=50"]),
        ("rm", ["rm", "-f", remote, "2>&1"]),
    ]:
        (call,) = phones.calls(kind)
        argv = call["argv"]
        assert len(argv) == 4 and argv[:3] == ["-s", "SER1", "shell"]  # one command string
        assert call["shell_tokens"][: len(expected_tokens)] == expected_tokens
        # Read as a shell would, the only operator in the string is our own `2>&1`.
        lexer = shlex.shlex(argv[3], posix=True, punctuation_chars=True)
        operators = [token for token in lexer if token and set(token) <= set("();<>|&")]
        assert operators == [">&"]
    assert phones.files_on_phone() == []


def test_two_phones_share_six_models_in_order(phones, sleeps, tmp_path):
    phones.update(
        devices={"SER1": "device", "SER2": "device"},
        responses={"benchmark": {"delay_s": 0.05}},
    )
    models = [_model(tmp_path, f"m{i}.tflite", latency_us=1000 * (i + 1)) for i in range(6)]
    backend = _backend(sleeps, serials=("SER1", "SER2"))
    results = backend.measure_many(models)
    assert [r.latency_ms for r in results] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert {r.serial for r in results} == {"SER1", "SER2"}
    benchmarks = phones.calls("benchmark")
    assert sorted(call["serial"] for call in benchmarks).count("SER1") >= 1
    assert {call["serial"] for call in benchmarks} == {"SER1", "SER2"}
    # Each model was benchmarked on the phone it was pushed to.
    for result, model in zip(results, models, strict=True):
        (push,) = [c for c in phones.calls("push") if c["argv"][3] == str(model)]
        assert push["serial"] == result.serial
    assert phones.files_on_phone() == []


def test_measure_many_raises_the_first_failure(phones, sleeps, tmp_path):
    phones.update(devices={"SER1": "device", "SER2": "device"})
    models = [_model(tmp_path, f"m{i}.tflite") for i in range(4)]
    models[2].write_bytes(b"TFL3 no latency here")
    with pytest.raises(BenchmarkLogError, match="fake model has no latency_us="):
        _backend(sleeps, serials=("SER1", "SER2")).measure_many(models)
    assert phones.files_on_phone() == []


def test_measure_many_of_nothing_touches_no_phone(phones, sleeps):
    assert _backend(sleeps).measure_many([]) == ()
    assert phones.calls() == []


def test_missing_model_file(phones, sleeps, tmp_path):
    with pytest.raises(FileNotFoundError, match="model file .*nope.tflite' does not exist"):
        _backend(sleeps).measure(tmp_path / "nope.tflite")
    with pytest.raises(
        ValueError, match=r"serial 'SER9' is not in AdbSettings.serials \('SER1',\)"
    ):
        _backend(sleeps).measure(_model(tmp_path), serial="SER9")
    assert phones.calls() == []


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"serials": "SER1"}, TypeError, "serials must be a tuple of serial strings"),
        ({"serials": ()}, ValueError, "serials is empty"),
        ({"serials": ("A", "A")}, ValueError, "duplicates"),
        ({"num_runs": 0}, ValueError, "num_runs must be >= 1, got 0"),
        ({"num_threads": True}, TypeError, "num_threads must be an int, got bool"),
        ({"use_xnnpack": "yes"}, TypeError, "use_xnnpack must be True, False or None"),
        ({"taskset_mask": "big"}, ValueError, "taskset_mask must be a non-zero hexadecimal"),
        ({"taskset_mask": "0"}, ValueError, "taskset_mask must be a non-zero hexadecimal"),
        ({"timeout_s": 0}, ValueError, "timeout_s must be a finite number > 0"),
        ({"remote_dir": "tmp"}, ValueError, "remote_dir must be an absolute phone path"),
        ({"retries": -1}, ValueError, "retries must be >= 0"),
        ({"use_nnapi": 1}, TypeError, "use_nnapi must be a bool, got 1"),
        (
            {"use_gpu": True, "use_nnapi": True},
            ValueError,
            "use_gpu and use_nnapi are both set; choose one delegate",
        ),
    ],
)
def test_settings_validation(changes, error, message):
    with pytest.raises(error, match=message):
        AdbSettings(**{"serials": ("SER1",), **changes})


def test_settings_accept_a_list_of_serials():
    assert AdbSettings(serials=["A", "B"]).serials == ("A", "B")


def test_no_phone_at_all_is_said_as_such_not_as_a_lost_phone(tmp_path):
    from netadapt_tf.latency.adb_client import AdbClient, DeviceError, TransientDeviceError

    adb = tmp_path / "adb"
    adb.write_text("#!/bin/sh\necho 'error: no devices/emulators found' >&2\nexit 1\n")
    adb.chmod(0o755)
    with pytest.raises(DeviceError) as error:
        AdbClient(str(adb)).run(None, ["shell", "true"])
    assert not isinstance(error.value, TransientDeviceError)
    assert "adb sees no phone ('error: no devices/emulators found')" in str(error.value)
    assert "lost" not in str(error.value)
    with pytest.raises(TransientDeviceError, match="lost the phone"):  # asked for one by serial
        AdbClient(str(adb)).run("A", ["shell", "true"])
