"""Runs the tools under tools/ as programs, the way a person would, on small networks.

Each start of a tool pays the TensorFlow import (about 5 s), so each test checks all it can
from one run.
"""

import json
import os
import pathlib
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import randomize_non_kernel_weights, small_spec

from netadapt_tf.graphs.export import export_subnetwork
from netadapt_tf.space.arch import load_arch, random_arch
from netadapt_tf.space.macs import count
from netadapt_tf.supernet import checkpoint
from netadapt_tf.supernet.network import build_supernet

REPO = pathlib.Path(__file__).resolve().parent.parent
V1_FLAGS = [
    "--model=mobilenet_v1",
    "--input_size=32",
    "--width_multiplier=0.25",
    "--num_classes=10",
]


def _run(tool: str, *args, cwd=None) -> subprocess.CompletedProcess:
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
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def v1_spec():
    return small_spec("mobilenet_v1")


@pytest.fixture(scope="module")
def arch_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("archs") / "v1_seed3.json"
    done = _run("sample_arch", *V1_FLAGS, "--seed=3", f"--output={path}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {path}: mobilenet_v1 arch")
    return path


def test_sample_arch_writes_the_seeded_draw(v1_spec, arch_file):
    assert load_arch(str(arch_file), v1_spec) == random_arch(v1_spec, np.random.default_rng(3))


def test_profile_json_matches_the_mac_counter(v1_spec, arch_file):
    done = _run(
        "profile_model", *V1_FLAGS, f"--arch={arch_file}", "--samples=4", "--seed=5", "--json"
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    expected = count(v1_spec, load_arch(str(arch_file)))
    assert (result["macs"], result["params"]) == (expected.macs, expected.params)
    assert (result["model"], result["arch"]) == ("mobilenet_v1", str(arch_file))
    assert result["fingerprint"] == v1_spec.fingerprint()
    assert sum(row["macs"] for row in result["layers"]) == expected.macs
    rng = np.random.default_rng(5)
    sampled = [count(v1_spec, random_arch(v1_spec, rng)) for _ in range(4)]
    assert result["samples"]["count"] == 4
    assert result["samples"]["macs"]["min"] == min(c.macs for c in sampled)
    assert result["samples"]["params"]["max"] == max(c.params for c in sampled)


@pytest.mark.slow
def test_profile_full_mobilenet_v1_as_text():
    done = _run("profile_model", "--model=mobilenet_v1")
    assert done.returncode == 0, done.stderr
    macs = int(re.search(r"^MACs\s+([\d,]+)", done.stdout, re.M).group(1).replace(",", ""))
    params = int(re.search(r"^params\s+([\d,]+)", done.stdout, re.M).group(1).replace(",", ""))
    assert abs(macs - 569e6) / 569e6 < 0.015  # Howard et al. 2017, Table 1
    assert abs(params - 4.2e6) / 4.2e6 < 0.015
    assert "arch        full network" in done.stdout
    header = "layer              kind         in  kept  bypassed   out  kernel      MACs"
    assert header in done.stdout
    assert re.search(
        r"^block13/pointwise\s+pointwise\s+1024\s+1024\s+0\s+1024\s+1\s+51380224", done.stdout, re.M
    )


@pytest.mark.slow
def test_profile_refuses_an_arch_of_another_model(arch_file):
    done = _run("profile_model", "--model=mobilenet_v2", "--input_size=32", f"--arch={arch_file}")
    assert done.returncode == 1
    assert done.stdout == ""
    message = done.stderr.strip().splitlines()[-1]
    assert message.startswith(
        f"profile_model: {arch_file}: arch: made for super-network 'mobilenet_v1'"
    )
    assert "not for 'mobilenet_v2'" in message


@pytest.mark.slow
def test_profile_refuses_malformed_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"format": "netadapt_tf.arch/1", ')
    done = _run("profile_model", *V1_FLAGS, f"--arch={path}")
    assert done.returncode == 1
    assert f"profile_model: {path}: malformed JSON" in done.stderr


@pytest.mark.parametrize(
    ("tool", "flags"),
    [
        # The demo's only other run is slow; the other tools have quick runs of their own.
        pytest.param("profile_model", V1_FLAGS, marks=pytest.mark.slow),
        pytest.param("sample_arch", [*V1_FLAGS, "--output=unused.json"], marks=pytest.mark.slow),
        pytest.param(
            "export_subnet",
            [*V1_FLAGS, "--arch=unused.json", "--output=unused"],
            marks=pytest.mark.slow,
        ),
        ("demo", []),
    ],
)
def test_stray_arguments_are_refused(tool, flags, tmp_path):
    done = _run(tool, *flags, "stray", cwd=tmp_path)
    assert done.returncode != 0
    assert "unexpected arguments: ['stray']" in done.stderr
    assert not any(tmp_path.iterdir())


@pytest.fixture(scope="module")
def v1_checkpoint(v1_spec, tmp_path_factory):
    supernet = build_supernet(v1_spec)
    # Untrained outputs are ~1e-10; random BN statistics and biases make them ~0.5, so the
    # parity check below compares numbers that matter.
    randomize_non_kernel_weights(supernet, seed=5)
    directory = checkpoint.save_supernet(supernet, tmp_path_factory.mktemp("ckpt") / "v1")
    return supernet, directory


@pytest.mark.slow
def test_export_from_checkpoint_verifies_and_saves_a_loadable_model(
    v1_checkpoint, arch_file, tmp_path
):
    supernet, directory = v1_checkpoint
    out = tmp_path / "export"
    done = _run(
        "export_subnet",
        *V1_FLAGS,
        f"--arch={arch_file}",
        f"--supernet_checkpoint={directory}",
        f"--output={out}",
        "--verify",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    arch = load_arch(str(arch_file), supernet.spec)
    expected = count(supernet.spec, arch)
    assert (result["output"], result["macs"], result["params"]) == (
        str(out),
        expected.macs,
        expected.params,
    )
    assert result["max_abs_diff"] <= 1e-4
    assert result["max_abs_output"] > 0.1, "parity on vanishing outputs checks nothing"
    assert result["ok"] is True
    assert load_arch(str(out / "arch.json")) == arch
    loaded = keras.saving.load_model(out / "model.keras")
    exported = export_subnetwork(supernet, arch)
    assert loaded.count_params() == exported.count_params() == result["keras_params"]
    images = np.random.default_rng(2).standard_normal((4, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(
        np.asarray(loaded(images)), np.asarray(exported(images)), rtol=0, atol=1e-6
    )


def test_export_refuses_flags_that_differ_from_the_checkpoint(v1_checkpoint, arch_file, tmp_path):
    supernet, directory = v1_checkpoint
    flags = [f for f in V1_FLAGS if not f.startswith("--input_size")]
    done = _run(
        "export_subnet",
        *flags,
        "--input_size=64",
        f"--arch={arch_file}",
        f"--supernet_checkpoint={directory}",
        f"--output={tmp_path / 'export'}",
    )
    assert done.returncode == 1
    message = done.stderr.strip().splitlines()[-1]
    wanted = small_spec("mobilenet_v1", input_size=64)
    assert message.startswith(
        f"export_subnet: {directory}: the checkpoint holds super-network 'mobilenet_v1'"
    )
    assert supernet.spec.fingerprint() in message and wanted.fingerprint() in message
    assert "input_size (32 vs 64)" in message
    assert not (tmp_path / "export").exists()


@pytest.mark.slow
def test_export_with_fresh_weights_says_so(arch_file, tmp_path):
    out = tmp_path / "export"
    done = _run("export_subnet", *V1_FLAGS, f"--arch={arch_file}", f"--output={out}", "--verify")
    assert done.returncode == 0, done.stderr
    assert "no --supernet_checkpoint, so the weights are freshly initialized" in done.stderr
    assert f"wrote {out / 'model.keras'}" in done.stdout
    assert re.search(r"parity with the super-network: max_abs_diff \S+ .*: ok$", done.stdout, re.M)
    assert sorted(p.name for p in out.iterdir()) == ["arch.json", "model.keras"]


@pytest.mark.slow
def test_demo_runs_the_whole_flow_and_a_rerun_skips_finished_steps(tmp_path):
    workdir = tmp_path / "demo"
    done = _run("demo", f"--workdir={workdir}", "--seed=0", "--quick")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert re.match(r"  full network\s+475,364,608 MACs\s+10,051,184 params", lines[1])
    assert sum(line.startswith("  random sample") for line in lines) == 5
    assert sum(line.endswith(": ok") for line in lines) == 2
    assert lines[-1].startswith("done in ") and str(workdir / "report.md") in lines[-1]
    assert json.loads((workdir / "config.json").read_text())["seed"] == 0
    stages = json.loads((workdir / "stages.json").read_text())
    assert list(sorted(stages, key=lambda name: stages[name]["finished"])) == [
        "initial_plan",
        "train_initial",
        "train_supernet",
        "latency_table",
        "search",
        "search_random",
        "comparison_archs",
        "train_inherit",
        "train_scratch",
        "measure_comparison",
        "export_discovered",
    ]
    # The flow a user runs: the initial network trained first (on the super-network's own
    # training images), the super-network started from its weights.
    initial_model = workdir / "initial" / "trained" / "uniform_1" / "seed0" / "model.keras"
    assert initial_model.is_file()
    assert f"--init_from={initial_model}" in stages["train_supernet"]["command"]
    initial_data = json.loads((workdir / "initial" / "data.json").read_text())
    assert initial_data["held_out"] == 32 and initial_data["name"] == "synthetic"
    # The two columns ran side by side (each started before the other finished), each
    # process on half the cores.
    inherit, scratch = stages["train_inherit"], stages["train_scratch"]
    assert scratch["started"] < inherit["started"] + inherit["seconds"]
    assert inherit["started"] < scratch["started"] + scratch["seconds"]
    cores = max(1, len(os.sched_getaffinity(0)) // 2)
    assert f"--cores={cores}" in inherit["command"] and f"--cores={cores}" in scratch["command"]
    # The random search judged as many samples as the MCD search, in one iteration.
    search = json.loads((workdir / "search" / "summary.json").read_text())
    random = json.loads((workdir / "search_random" / "summary.json").read_text())
    assert search["target_met"] and random["target_met"] and random["iterations"] == 1
    assert random["samples"]["ok"] + random["samples"]["infeasible"] == search["samples"]["ok"]
    assert (
        f"--samples_per_iteration={search['samples']['ok']}" in stages["search_random"]["command"]
    )
    # The plan: the quick curve (1.0 is the initial network), the discovered network and the
    # random pick; the discovered network and one curve point on two seeds.
    comparison = workdir / "comparison"
    networks = json.loads((comparison / "networks.json").read_text())["networks"]
    names = [n["name"] for n in networks]
    assert names == [
        "uniform_1",
        "uniform_0.75",
        "uniform_0.5",
        "uniform_0.25",
        "discovered",
        "random",
    ]
    repeated = [n["name"] for n in networks if n["seeds"] == [0, 1]]
    assert len(repeated) == 2 and "discovered" in repeated
    assert all(n["seeds"] == [0] for n in networks if n["name"] not in repeated)
    discovered = json.loads((workdir / "search" / "discovered_arch.json").read_text())
    assert json.loads((comparison / "archs" / "discovered.json").read_text()) == discovered
    # Both columns trained every (network, seed) with the same recipe and steps.
    expected = sorted((n["name"], seed) for n in networks for seed in n["seeds"])
    for column in ("inherit", "scratch"):
        results = json.loads((comparison / column / "results.json").read_text())
        assert results["mode"] == column
        assert sorted((r["name"], r["seed"]) for r in results["runs"]) == expected
        for name, seed in expected:
            run = json.loads((comparison / column / name / f"seed{seed}" / "run.json").read_text())
            assert run["train"]["steps_per_epoch"] == 2 and run["train"]["seed"] == seed
            assert run["discovered"]["mode"] == column
    measured = json.loads((comparison / "measured.json").read_text())
    assert sorted(m["name"] for m in measured["networks"]) == sorted(names)
    assert all(len(m["rounds_ms"]) == 2 and m["host_ms"] > 0 for m in measured["networks"])
    # The latency is the fastest round (another process can only add time).
    assert all(m["host_ms"] == min(m["rounds_ms"]) for m in measured["networks"])
    summary = json.loads((workdir / "export_discovered" / "export_summary.json").read_text())
    assert {row["variant"] for row in summary["models"]} == {"float32", "int8", "int8_qat"}
    report = (workdir / "report.md").read_text()
    assert "| evaluating samples (MCD search) |" in report
    assert "| before NetAdaptV2: training the initial network (a user has it trained) |" in report
    assert "![accuracy against latency along the trajectory](search/progress.png)" in report
    assert "![test accuracy against measured latency](comparison.png)" in report
    assert (workdir / "comparison.png").stat().st_size > 1000
    rows = [line for line in report.splitlines() if line.startswith(("| uniform", "| initial"))]
    rows += [line for line in report.splitlines() if line.startswith("| discovered network |")]
    rows += [line for line in report.splitlines() if line.startswith("| random-search pick |")]
    assert len(rows) == 6
    for row in rows:  # every cell of the comparison table filled in
        assert [cell.strip() for cell in row.split("|")].count("-") == 0, row
    assert re.search(r"^\*\*inherit\*\*: the discovered network .* over 2 seeds", report, re.M)
    assert "Where the uniform curve falls (from scratch" in report
    assert "## At convergence" in report and "short-budget preview" in report
    assert "| 1 | stem | conv |" in report
    # A rerun skips every finished step.
    again = _run("demo", f"--workdir={workdir}", "--seed=0", "--quick")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("done before") == len(stages)
    assert stages["search"]["outputs"] == ["search"]
    assert stages["comparison_archs"]["command"] == [
        "--curve_fractions=0.25,0.5,0.75,1",
        "--seeds=0,1",
    ]
    # A stage whose flags changed runs again, and so do the stages after it; the ones
    # before are reused (here the recorded command of the measurement had other rounds).
    recorded = stages["measure_comparison"]["command"]
    stages["measure_comparison"]["command"] = [
        "--rounds=3" if arg == "--rounds=2" else arg for arg in recorded
    ]
    (workdir / "stages.json").write_text(json.dumps(stages))
    third = _run("demo", f"--workdir={workdir}", "--seed=0", "--quick")
    assert third.returncode == 0, third.stderr
    assert "measure_comparison: runs (its command changed since it ran (--rounds=3 became " in (
        third.stdout
    )
    assert "export_discovered: runs (a stage before it ran since it finished" in third.stdout
    assert third.stdout.count("done before") == len(stages) - 2
