"""Every tool refuses a bad flag before any work, with one line `TOOL: ...` that names the
flag and its value and says what is allowed, and exit status 2: no traceback, no help text
(tests/workers/flag_walker.py runs a tool's parsing and main on each case in one process).
"""

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
WALKER = os.path.join(HERE, "workers", "flag_walker.py")

V1 = ["--model=mobilenet_v1"]
FASTDEPTH_33 = ["--model=fastdepth", "--input_size=33"]
SUPERNET = ["--preset=test", "--workdir={tmp}/w"]
SEARCH = ["--supernet_checkpoint={tmp}/none", "--workdir={tmp}/w"]
COMPARISON = [
    "--networks={tmp}/n.json",
    "--mode=inherit",
    "--supernet_checkpoint={tmp}/c",
    "--workdir={tmp}/w",
]
# tool -> (flags every case has, [(bad flags, the flag the error must name)]).
CASES = {
    "train_supernet": (
        SUPERNET,
        [
            (["--cores=-1"], "--cores=-1"),
            (["--input_size=0"], "--input_size=0"),
            (["--input_size=-16"], "--input_size=-16"),
            (["--held_out=-1"], "--held_out=-1"),
            (["--learning_rate=-1"], "--learning_rate=-1"),
            (["--width_correlation=5"], "--width_correlation=5"),
            (["--free_layer_probability=2"], "--free_layer_probability=2"),
            (["--progressive_shrinking=2"], "--progressive_shrinking=2"),
            (["--bn_momentum=5"], "--bn_momentum=5"),
            (["--checkpoint_every_steps=-1"], "--checkpoint_every_steps=-1"),
            (["--epochs=0"], "--epochs=0"),
            (["--seed=-1"], "--seed=-1"),
            (["--width_multiplier=0"], "--width_multiplier=0"),
            (["--tpu=grpc://x"], "--tpu=grpc://x"),
            (["--model=fastdepth", "--preset=depth_quick", "--input_size=33"], "input_size"),
            (["--data_dir=/nonexistent"], "--data_dir=/nonexistent"),
            (["--steps_per_epoch=abc"], "--steps_per_epoch=abc"),
            (["--no_such_flag=1"], "no_such_flag"),
        ],
    ),
    "search": (
        SEARCH,
        [
            (["--judge_workers=-1"], "--judge_workers=-1"),
            (["--samples_per_iteration=0"], "--samples_per_iteration=0"),
            (["--layers_per_sample=0"], "--layers_per_sample=0"),
            (["--initial_reduction=1.5"], "--initial_reduction=1.5"),
            (["--decay=2"], "--decay=2"),
            (["--target=-1"], "--target=-1"),
            (["--target_fraction=2"], "--target_fraction=2"),
            (["--max_iterations=0"], "--max_iterations=0"),
            (["--seed=-1"], "--seed=-1"),
            (["--eval_batch_size=0"], "--eval_batch_size=0"),
            (["--max_eval_examples=0"], "--max_eval_examples=0"),
            (["--recalibration_batches=-1"], "--recalibration_batches=-1"),
            (["--held_out=-1"], "--held_out=-1"),
        ],
    ),
    "train_discovered": (
        ["--workdir={tmp}/w"],
        [
            (["--cores=-1"], "--cores=-1"),
            (["--learning_rate=-1"], "--learning_rate=-1"),
            (["--lr_decay=2"], "--lr_decay=2"),
            (["--lr_decay_epochs=0"], "--lr_decay_epochs=0"),
            (["--warmup_epochs=-1"], "--warmup_epochs=-1"),
            (["--weight_decay=-1"], "--weight_decay=-1"),
            (["--ema_decay=1"], "--ema_decay=1"),
            (["--label_smoothing=1"], "--label_smoothing=1"),
            (["--bn_momentum=0"], "--bn_momentum=0"),
            (["--checkpoint_every_steps=-1"], "--checkpoint_every_steps=-1"),
            (["--eval_batch_size=0"], "--eval_batch_size=0"),
            (["--mode=bogus"], "--mode=bogus"),
            (["--stochastic_depth=1"], "--stochastic_depth=1"),
            (["--mixup_alpha=-1"], "--mixup_alpha=-1"),
            (["--rand_augment_magnitude=2"], "--rand_augment_magnitude=2"),
            (["--held_out=-1"], "--held_out=-1"),
            (["--epochs=0"], "--epochs=0"),
        ],
    ),
    "train_comparison": (
        COMPARISON,
        [
            (["--cores=-1"], "--cores=-1"),
            (["--learning_rate=0"], "--learning_rate=0"),
            (["--ema_decay=2"], "--ema_decay=2"),
            (["--batch_size=0"], "--batch_size=0"),
            (["--max_eval_examples=0"], "--max_eval_examples=0"),
        ],
    ),
    "profile_model": (
        V1,
        [
            (FASTDEPTH_33, "--input_size=33"),
            (["--width_multiplier=1e-6"], "--width_multiplier=1e-06"),
            (["--input_size=0"], "--input_size=0"),
            (["--num_widths=1"], "--num_widths=1"),
            (["--samples=-1"], "--samples=-1"),
            (["--seed=-1"], "--seed=-1"),
            (["--num_classes=0"], "--num_classes=0"),
        ],
    ),
    "sample_arch": (
        [*V1, "--output={tmp}/a.json"],
        [(FASTDEPTH_33, "--input_size=33"), (["--seed=-1"], "--seed=-1")],
    ),
    "export_subnet": (
        [*V1, "--arch={tmp}/a.json", "--output={tmp}/o"],
        [(FASTDEPTH_33, "--input_size=33"), (["--width_multiplier=-1"], "--width_multiplier=-1")],
    ),
    "build_latency_table": (
        [*V1, "--output={tmp}/t.json"],
        [
            (["--max_x_points=1"], "--max_x_points=1"),
            (["--calibration_archs=1"], "--calibration_archs=1"),
            (["--save_every=0"], "--save_every=0"),
            (FASTDEPTH_33, "--input_size=33"),
        ],
    ),
    "measure_latency": (
        V1,
        [
            (["--input_size=0"], "--input_size=0"),
            (["--num_runs=1"], "--num_runs=1"),
            (["--threads=0"], "--threads=0"),
            (["--backend=table"], "--table"),
        ],
    ),
    "export_tflite": (
        ["--keras_model={tmp}/m.keras", "--output_dir={tmp}/o"],
        [
            (["--latency_runs=1"], "--latency_runs=1"),
            (["--qat_learning_rate=-1"], "--qat_learning_rate=-1"),
            (["--calibration_examples=0"], "--calibration_examples=0"),
        ],
    ),
    "measure_comparison": (
        ["--networks={tmp}/n.json", "--supernet_checkpoint={tmp}/c", "--output={tmp}/m.json"],
        [(["--rounds=0"], "--rounds=0"), (["--latency_runs=1"], "--latency_runs=1")],
    ),
    "render_depth_scenes": (
        ["--output={tmp}/r"],
        [(["--count=0"], "--count=0"), (["--size=4"], "--size=4"), (["--seed=-1"], "--seed=-1")],
    ),
    "android_benchmark": (
        ["--tflite={tmp}/m.tflite"],
        [
            (["--num_runs=0"], "--num_runs=0"),
            (["--timeout_s=-1"], "--timeout_s=-1"),
            (["--seed=-1"], "--seed=-1"),
        ],
    ),
    "evaluate_depth": ([], [([], "--prediction")]),
    "demo": ([], [(["--seed=-1"], "--seed=-1")]),
    "judge_server": ([], [(["--threads=-1"], "--threads=-1")]),
    "parse_benchmark_log": ([], [(["--json=maybe"], "--json=maybe")]),
    "import_model": (
        ["--model=MobileNet", "--output={tmp}/w"],
        [
            (["--num_widths=1"], "--num_widths=1"),
            (["--input_size=0"], "--input_size=0"),
            (["--parity_images=0"], "--parity_images=0"),
            (["--tolerance=-1"], "--tolerance=-1"),
            (["--bypass_base=-1"], "--bypass_base=-1"),
        ],
    ),
}


def test_every_tool_has_its_cases():
    tools = {
        name[: -len(".py")]
        for name in os.listdir(os.path.join(REPO, "tools"))
        if name.endswith(".py") and not name.startswith("_")
    }
    assert tools == set(CASES)


@pytest.mark.slow  # one TensorFlow process per tool
@pytest.mark.parametrize("tool", sorted(CASES))
def test_every_bad_flag_is_one_line_and_exit_2(tool, tmp_path):
    base, cases = CASES[tool]
    argument_lists = [[a.format(tmp=tmp_path) for a in [*base, *bad]] for bad, _ in cases]
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, WALKER, tool, json.dumps(argument_lists)],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    problems = []
    for (bad, named), result in zip(cases, results, strict=True):
        lines = [line for line in result["stderr"].splitlines() if line.strip()]
        ok = (
            result["status"] == 2
            and len(lines) == 1
            and lines[0].startswith(f"{tool}: ")
            and named in lines[0]
        )
        if not ok:
            problems.append((bad, result["status"], result["stderr"][-1500:]))
    assert not problems, problems
    assert not os.path.exists(tmp_path / "w")  # refused before any work
