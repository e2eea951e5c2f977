"""Tests for the `benchmark_model` log parser, on real outputs and on synthetic edge cases."""

import pathlib

import pytest

from netadapt_tf.latency.benchmark_log import (
    BenchmarkLogError,
    BenchmarkRun,
    format_runs_table,
    parse_benchmark_log,
)

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "benchmark_model"


def _parse_fixture(name):
    return parse_benchmark_log((FIXTURES / name).read_text(encoding="utf-8"))


# Expected numbers are those listed in fixtures/benchmark_model/README.md, plus the fields the
# README does not list, read off the same files.
def test_intermediate_format_with_op_profiling():
    (run,) = _parse_fixture("intermediate_format_readme.txt")
    assert run == BenchmarkRun(
        inference_avg_us=79760.9,
        init_us=38467,
        first_inference_us=None,
        warmup_avg_us=83235,
    )


def test_android_adb_with_peak_memory_line():
    (run,) = _parse_fixture("android_adb_taskset_2020.txt")
    assert run == BenchmarkRun(
        inference_avg_us=33209.4,
        init_us=855,
        first_inference_us=49060,
        warmup_avg_us=34825.1,
        median_us=None,
        memory_mb=12.8672,
        std_us=450,
    )


def test_xnnpack_with_memory_delta_line():
    (run,) = _parse_fixture("xnnpack_int8_memory_delta.txt")
    assert run.inference_avg_us == 55043.2
    assert run.init_us == 18777
    assert run.first_inference_us == 64791
    assert run.warmup_avg_us == 57758.2
    assert run.memory_mb == 18.7227
    assert run.std_us == 1562
    assert run.median_us is None


def test_info_prefix_cpu_then_gpu_runs():
    cpu, gpu = _parse_fixture("info_prefix_cpu_and_gpu.txt")
    # The warm-up stats line has median=105948; the timed runs' line has 105718.
    assert cpu == BenchmarkRun(
        inference_avg_us=105784,
        init_us=87639,
        first_inference_us=106436,
        warmup_avg_us=106065,
        median_us=105718,
        memory_mb=14.8164,
        std_us=260,
    )
    assert gpu == BenchmarkRun(
        inference_avg_us=115246,
        init_us=1361236,
        first_inference_us=125113,
        warmup_avg_us=115344,
        median_us=None,
        memory_mb=132.816,
    )


def test_failed_run_names_the_cause():
    with pytest.raises(BenchmarkLogError) as caught:
        _parse_fixture("error_missing_graph.txt")
    assert str(caught.value) == (
        "line 4: benchmark_model failed after 'Please specify the name of your TF Lite input file "
        "with --graph': 'Benchmarking failed.'"
    )


def test_oldest_no_stats_format():
    log = (
        "Initialized session in 0.543ms\n"
        "Running benchmark for 1 iterations\n"
        "count=1 curr=21533\n"
        "\n"
        "Running benchmark for 50 iterations\n"
        "count=50 first=20133 curr=19876 min=19720 max=21244 avg=20012.3 std=311\n"
        "\n"
        "Average inference timings in us: Warmup: 21533, Init: 543, no stats: 20012.3\n"
    )
    (run,) = parse_benchmark_log(log)
    assert run == BenchmarkRun(
        inference_avg_us=20012.3,
        init_us=543,
        first_inference_us=None,
        warmup_avg_us=21533,
        std_us=311,
    )


def test_scientific_notation_values():
    log = (
        "count=3 first=3100000 curr=2950000 min=2940000 max=3100000 avg=2.99e+06 std=70000\n"
        "count=50 first=2951000 curr=2950100 min=2938000 max=2991000 avg=2.95034e+06 std=9000 "
        "p5=2939000 median=2.9489e+06 p95=2.98e+06\n"
        "Inference timings in us: Init: 1.36124e+06, First inference: 3100000, "
        "Warmup (avg): 2.99e+06, Inference (avg): 2.95034e+06\n"
    )
    (run,) = parse_benchmark_log(log)
    assert run.inference_avg_us == 2950340.0
    assert run.init_us == 1361240.0
    assert run.warmup_avg_us == 2990000.0
    assert run.median_us == 2948900.0


@pytest.mark.parametrize(
    "prefix",
    [
        "I tflite  : ",
        "I/tflite  ( 4321): ",
        "08-20 14:03:11.123  4321  4321 I tflite  : ",
        "2024-08-20 14:03:11.123  4321  4399 I tflite: ",
        "I0820 14:03:11.123456  4321 benchmark_tflite_model.cc:123] ",
    ],
)
def test_logcat_and_glog_prefixes(prefix):
    lines = [
        "Initialized session in 12.5ms.",
        "count=50 first=9000 curr=8100 min=7900 max=9000 avg=8150.5 std=90 p5=7950 "
        "median=8120 p95=8400",
        "Inference timings in us: Init: 12500, First inference: 9000, Warmup (avg): 8800, "
        "Inference (avg): 8150.5",
        "Peak memory footprint (MB): init=3.5 overall=7.25",
    ]
    (run,) = parse_benchmark_log("".join(prefix + line + "\n" for line in lines))
    assert run == BenchmarkRun(
        inference_avg_us=8150.5,
        init_us=12500,
        first_inference_us=9000,
        warmup_avg_us=8800,
        median_us=8120,
        memory_mb=7.25,
        std_us=90,
    )


def test_logcat_error_priority_line_fails():
    log = (
        "I tflite  : Loaded model /data/local/tmp/m.tflite\n"
        "E tflite  : Didn't find op for builtin opcode 'CONV_2D' version '9'\n"
        "I tflite  : Inference timings in us: Init: 1, First inference: 2, Warmup (avg): 3, "
        "Inference (avg): 4\n"
    )
    with pytest.raises(BenchmarkLogError, match="Didn't find op for builtin opcode 'CONV_2D'"):
        parse_benchmark_log(log)


def test_error_line_fails_even_with_a_summary():
    log = (
        "Inference timings in us: Init: 1, First inference: 2, Warmup (avg): 3, "
        "Inference (avg): 4\n"
        "ERROR: Failed to apply GPU delegate.\n"
    )
    with pytest.raises(BenchmarkLogError) as caught:
        parse_benchmark_log(log)
    assert str(caught.value) == (
        "line 2: benchmark_model logged an error: 'ERROR: Failed to apply GPU delegate.'"
    )


def test_windows_and_pty_line_endings():
    log = "INFO: Inference timings in us: Init: 5, First inference: 6, Warmup (avg): 7, "
    log += "Inference (avg): 8\r\r\nINFO: Peak memory footprint (MB): init=0 overall=1.5\r\n"
    (run,) = parse_benchmark_log(log)
    assert (run.inference_avg_us, run.memory_mb) == (8, 1.5)


def test_truncated_summary_line():
    text = (FIXTURES / "android_adb_taskset_2020.txt").read_text(encoding="utf-8")
    cut = text[: text.index("Inference (avg)") + 5]
    with pytest.raises(BenchmarkLogError, match="line 17: incomplete timing summary"):
        parse_benchmark_log(cut)


def test_log_cut_before_the_summary():
    text = (FIXTURES / "xnnpack_int8_memory_delta.txt").read_text(encoding="utf-8")
    cut = text[: text.index("Inference timings")]
    with pytest.raises(BenchmarkLogError) as caught:
        parse_benchmark_log(cut)
    message = str(caught.value)
    assert message.startswith("no complete timing summary")
    assert "line 9: 'count=50 first=58154" in message


def test_second_run_without_summary_is_an_error():
    text = (FIXTURES / "info_prefix_cpu_and_gpu.txt").read_text(encoding="utf-8")
    cut = text[: text.index("INFO: Inference timings in us: Init: 1361236")]
    with pytest.raises(
        BenchmarkLogError, match="run 2 starts at line 27 but has no timing summary"
    ):
        parse_benchmark_log(cut)


@pytest.mark.parametrize("text", ["", "\n\n", "Segmentation fault\n\x00\x1b[0m@@@\n"])
def test_empty_or_garbage(text):
    with pytest.raises(BenchmarkLogError):
        parse_benchmark_log(text)


@pytest.mark.parametrize("bad", ["nan", "-inf", "-5", "abc"])
def test_non_numbers_in_summary(bad):
    log = "Inference timings in us: Init: 1, First inference: 2, Warmup (avg): 3, "
    log += f"Inference (avg): {bad}\n"
    with pytest.raises(BenchmarkLogError, match=f"Inference avg is '{bad}'"):
        parse_benchmark_log(log)


def test_rejects_bytes():
    with pytest.raises(TypeError, match="must be a str, got bytes"):
        parse_benchmark_log(b"Inference timings in us:")


def test_json_round_trip_and_omitted_fields():
    cpu, gpu = _parse_fixture("info_prefix_cpu_and_gpu.txt")
    assert gpu.to_json() == {
        "inference_avg_us": 115246.0,
        "init_us": 1361236.0,
        "first_inference_us": 125113.0,
        "warmup_avg_us": 115344.0,
        "memory_mb": 132.816,
    }
    assert cpu.to_json()["median_us"] == 105718.0
    old = BenchmarkRun(inference_avg_us=1, init_us=2, first_inference_us=None, warmup_avg_us=3)
    assert old.to_json()["first_inference_us"] is None
    for run in (cpu, gpu, old):
        assert BenchmarkRun.from_json(run.to_json()) == run
    with pytest.raises(ValueError, match=r"unknown keys \['p99_us'\]"):
        BenchmarkRun.from_json({**old.to_json(), "p99_us": 1.0})


def test_table():
    table = format_runs_table(_parse_fixture("info_prefix_cpu_and_gpu.txt"))
    header, first, second = table.splitlines()
    assert header.split("  ")[0] == "run"
    assert first.split() == ["1", "105784", "105718", "260", "87639", "106436", "106065", "14.8164"]
    assert second.split() == ["2", "115246", "-", "-", "1361236", "125113", "115344", "132.816"]


def test_a_zero_inference_time_is_refused_by_rule():
    log = "Inference timings in us: Init: 1, First inference: 2, Warmup (avg): 3, "
    log += "Inference (avg): 0\n"
    with pytest.raises(
        BenchmarkLogError, match=r"line 1: Inference avg is 0 us, which is no timing"
    ):
        parse_benchmark_log(log)
