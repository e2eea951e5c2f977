"""docs/import.md's flow end to end on an imported, trained model (slow tier): a user-style
script trains a keras.applications model with model.fit and saves it; it is imported,
the super-network trains from its weights, the search finds a sub-network, the discovered
network trains and exports to TFLite. Synthetic data and a few steps: the tools' chaining
is what is checked (the quick tier checks the import and --init_from on their own)."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent


def _run(script: str, *args) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, str(REPO / script), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"{script}: {done.stderr[-3000:]}"
    text = done.stdout
    start = text.rindex("\n{") + 1 if "\n{" in text else text.index("{")
    return json.loads(text[start:])  # the summary each tool prints last


@pytest.mark.slow
def test_an_imported_trained_model_goes_through_the_whole_flow(tmp_path):
    user = tmp_path / "user.keras"
    trained = _run(
        "benchmarks/train_user_model.py",
        "--model=MobileNetV3Small",
        "--alpha=0.75",
        "--minimalistic",
        "--dataset=synthetic",
        "--held_out=32",
        "--steps_per_epoch=3",
        "--batch_size=16",
        f"--output={user}",
    )
    assert trained["model"] == str(user)
    imported = _run(
        "tools/import_model.py", f"--model={user}", f"--output={tmp_path / 'imported'}", "--json"
    )
    assert imported["relative_diff"] <= 1e-5
    supernet = _run(
        "tools/train_supernet.py",
        "--preset=test",
        f"--init_from={tmp_path / 'imported'}",
        f"--workdir={tmp_path / 'train'}",
        "--steps_per_epoch=2",
    )
    assert supernet["steps"] == 2
    checkpoint = pathlib.Path(supernet["supernet"])
    found = _run(
        "tools/search.py",
        f"--supernet_checkpoint={checkpoint}",
        f"--workdir={tmp_path / 'search'}",
        "--metric=macs",
        "--target_fraction=0.7",
        "--samples_per_iteration=4",
        "--layers_per_sample=3",
        "--initial_reduction=0.2",
        "--decay=0.8",
        "--eval_batch_size=16",
    )
    arch = found["files"]["discovered_arch"]
    discovered = _run(
        "tools/train_discovered.py",
        "--mode=inherit",
        f"--supernet_checkpoint={checkpoint}",
        f"--arch={arch}",
        f"--workdir={tmp_path / 'discovered'}",
        "--epochs=1",
        "--steps_per_epoch=2",
        "--batch_size=16",
        "--ema_decay=0",
        "--eval_batch_size=16",
    )
    assert discovered["steps"] == 2
    shipped = _run(
        "tools/export_tflite.py",
        f"--keras_model={tmp_path / 'discovered' / 'model.keras'}",
        f"--arch={tmp_path / 'discovered' / 'arch.json'}",
        f"--spec={checkpoint}",
        f"--output_dir={tmp_path / 'ship'}",
        "--dataset=synthetic",
        "--quantizations=float32",
        "--latency_runs=5",
        "--warmup_runs=0",
        "--json",
    )
    (model,) = shipped["models"]
    assert model["agreement_with_keras"] == 1.0
    assert (tmp_path / "ship" / "model_float32.tflite").is_file()
