"""Runs tools/parse_benchmark_log.py as a program, the way a person would."""

import json
import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
TOOL = REPO / "tools" / "parse_benchmark_log.py"
FIXTURES = REPO / "tests" / "fixtures" / "benchmark_model"


def _run(*args):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, str(TOOL), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_json_output_for_two_runs():
    done = _run(FIXTURES / "info_prefix_cpu_and_gpu.txt", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "runs": [
            {
                "inference_avg_us": 105784.0,
                "init_us": 87639.0,
                "first_inference_us": 106436.0,
                "warmup_avg_us": 106065.0,
                "median_us": 105718.0,
                "memory_mb": 14.8164,
                "std_us": 260.0,
            },
            {
                "inference_avg_us": 115246.0,
                "init_us": 1361236.0,
                "first_inference_us": 125113.0,
                "warmup_avg_us": 115344.0,
                "memory_mb": 132.816,
            },
        ]
    }


def test_table_output():
    done = _run(FIXTURES / "intermediate_format_readme.txt")
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.splitlines()
    assert header.split()[:4] == ["run", "inference", "avg", "(us)"]
    assert row.split() == ["1", "79760.9", "-", "-", "38467", "-", "83235", "-"]


def test_failed_log_exits_nonzero_with_the_cause():
    path = FIXTURES / "error_missing_graph.txt"
    done = _run(path, "--json")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip() == (
        f"parse_benchmark_log: {path}: line 4: benchmark_model failed after 'Please specify the "
        "name of your TF Lite input file with --graph': 'Benchmarking failed.'"
    )


def test_missing_file_and_stray_arguments(tmp_path):
    done = _run(tmp_path / "absent.txt")
    assert done.returncode == 1
    assert "absent.txt" in done.stderr and "No such file" in done.stderr
    done = _run(FIXTURES / "intermediate_format_readme.txt", "extra.txt")
    assert done.returncode != 0
    assert "expected exactly one log file, got 2" in done.stderr
