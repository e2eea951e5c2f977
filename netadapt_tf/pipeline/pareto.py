"""The converged comparison of benchmarks/pareto.py (issue 21): the stages, in the order a
user runs them, each a tool run once and recorded (stage_runner.py), and its record.

1. `setup`: the network spec, the data configs, the curve's archs and the plans.
2. `learning_curve`: the initial network trained `probe_epochs` epochs from scratch, scored
   on held-out training images after each; `budget` picks the training budget from it
   (pareto_stats.choose_budget) and records the curve.
3. `train_initial`: the initial network (the uniform curve's 1.0 point) on every seed at that
   budget: a user has it before searching.
4. `train_supernet` from the first seed's initial network (--init_from), `latency_table`,
   then per target an MCD search (`search_<pct>`) and a random search judging as many
   samples (`random_<pct>`).
5. `plan`: the other uniform widths, the discovered network and the random pick of each
   target, and the candidates of one MCD iteration (the judge's decision).
6. `train_networks_0`, `train_networks_1`: each of them on every seed at the budget, from
   scratch, in two processes side by side (one core each: two single-threaded processes
   get more from two cores than one process's replicas, docs/benchmarks.md); each
   (network, seed) is recorded when done and a killed one resumes from its checkpoints.
7. `measure`: host latency of every network (LiteRT, interleaved rounds) and its reading
   by the first target's judge.

`build_record` reads the files the stages wrote: accuracies per seed, measured latencies,
the margins with 95% intervals (pareto_stats.py), the judge's quality against the converged
accuracies, the machine and the commands. `plot` draws accuracy against latency.
"""

import dataclasses
import json
import os
import pathlib
import platform

from netadapt_tf.common import atomic_files
from netadapt_tf.common import strict_json as sj
from netadapt_tf.configs.pareto import ParetoConfig
from netadapt_tf.discovered.uniform_baseline import uniform_arch
from netadapt_tf.pipeline import comparison, pareto_stats
from netadapt_tf.pipeline.stage_runner import StageRunner, ToolStage
from netadapt_tf.search.records import IterationRecord
from netadapt_tf.space.arch import Arch, load_arch, save_arch
from netadapt_tf.space.macs import count
from netadapt_tf.space.spec import NetworkSpec, load_spec

RECORD_FILE = "pareto.json"
PLOT_FILE = "pareto.png"
BUDGET_FILE = "budget.json"
MEASURED_FILE = "measured.json"
PLANS = ("plan_probe.json", "plan_initial.json", "plan_networks.json", "plan_all.json")
INITIAL = comparison.curve_name(1.0)
# train_networks runs in this many processes side by side, each on one core; a constant, not
# a machine's core count, so that a run resumed on another machine keeps its stages.
TRAIN_PARTS = 2


def part_plan(part: int) -> str:
    return f"plan_networks_{part}.json"


def part_dir(part: int) -> str:
    return f"train_networks_{part}"


def target_key(target: float) -> str:
    return f"{round(100 * target)}"


def network_entry(spec, name, kind, ratio, arch, seeds, latency=None) -> comparison.Network:
    """One network of a train_comparison plan (its arch file archs/<name>.json beside the
    plan), with its costs and, given `latency`, its table latency; the demo's initial
    network is planned with it too."""
    costs = count(spec, arch)
    return comparison.Network(
        name=name,
        kind=kind,
        ratio=ratio,
        arch=f"archs/{name}.json",
        seeds=tuple(seeds),
        macs=costs.macs,
        params=costs.params,
        table_ms=0.0 if latency is None else float(latency(arch)),
    )


def write_plan(w: pathlib.Path, file: str, spec, networks, archs: dict) -> None:
    """Writes `networks` as the plan `w`/`file` and each one's arch (`archs[name]`)."""
    for n in networks:
        (w / n.arch).parent.mkdir(parents=True, exist_ok=True)
        save_arch(archs[n.name], w / n.arch)
    atomic_files.write_json(w / file, {"networks": [n.to_json() for n in networks]})


def curve_archs(spec: NetworkSpec, fractions) -> dict[str, tuple[float, Arch]]:
    """name -> (ratio, arch) of the uniform curve, widest first, duplicates dropped."""
    found, seen = {}, set()
    for ratio in sorted(set(fractions) | {1.0}, reverse=True):
        arch = uniform_arch(spec, ratio)
        if arch not in seen:
            seen.add(arch)
            found[comparison.curve_name(ratio)] = (ratio, arch)
    return found


def setup(config: ParetoConfig, w: pathlib.Path) -> None:
    """Stage `setup`: spec.json, the data configs and the initial network's plans."""
    supernet = config.supernet()
    spec = supernet.model.build()
    (w / "archs").mkdir(parents=True, exist_ok=True)
    atomic_files.write_json(w / "spec.json", spec.to_json())
    for name, held_out in (("data_curve.json", config.held_out), ("data_train.json", 0)):
        data = dataclasses.replace(supernet.data, held_out=held_out).to_json()
        atomic_files.write_json(w / name, data)
    _, initial = curve_archs(spec, [1.0])[INITIAL]
    archs = {INITIAL: initial}
    probe = network_entry(spec, INITIAL, "uniform", 1.0, initial, config.seeds[:1])
    write_plan(w, PLANS[0], spec, [probe], archs)
    every_seed = dataclasses.replace(probe, seeds=tuple(config.seeds))
    write_plan(w, PLANS[1], spec, [every_seed], archs)


def learning_curve(w: pathlib.Path, seed: int) -> list[tuple[int, float]]:
    """(epoch, held-out accuracy) after each epoch of the probe run."""
    log = w / "learning_curve" / INITIAL / f"seed{seed}" / "train_log.jsonl"
    curve = []
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        if "epoch" in entry:
            curve.append((int(entry["epoch"]), float(entry["validation_accuracy"])))
    return curve


def write_budget(config: ParetoConfig, w: pathlib.Path) -> dict:
    curve = learning_curve(w, config.seeds[0])
    budget = {
        **pareto_stats.choose_budget(curve),
        "curve": curve,
        "gain": pareto_stats.PLATEAU_GAIN,
    }
    atomic_files.write_json(w / BUDGET_FILE, budget)
    return budget


def read_budget(w: pathlib.Path) -> dict:
    return sj.read(
        w / BUDGET_FILE,
        lambda d: sj.obj(d, "budget", ("epochs", "plateau", "probes", "curve", "gain"), d),
    )


def decision_candidates(search_dir: pathlib.Path, iteration: int, limit: int) -> list[Arch]:
    """The archs the MCD search judged (status ok) in `iteration` (1: its first), at most
    `limit`, in the search's order."""
    lines = (search_dir / "history.jsonl").read_text().splitlines()
    if iteration >= len(lines):
        raise ValueError(
            f"decision_iteration: {iteration}; the search in {search_dir} ran "
            f"{len(lines) - 1} iterations"
        )
    record = IterationRecord.from_json(json.loads(lines[iteration]), f"iteration {iteration}")
    return [s.arch for s in record.samples if s.ok][:limit]


def plan(config: ParetoConfig, w: pathlib.Path, latency) -> None:
    """Stage `plan`: every network trained after the search, and the plan of all."""
    spec = load_spec(w / "spec.json")
    seeds = config.seeds
    archs, networks = {}, []
    for name, (ratio, arch) in curve_archs(spec, config.curve_fractions).items():
        archs[name] = arch
        networks.append(network_entry(spec, name, "uniform", ratio, arch, seeds, latency))
    for target in config.targets:
        key = target_key(target)
        for kind, folder in (("discovered", "search"), ("random", "random")):
            name = f"{kind}_{key}"
            archs[name] = load_arch(w / f"{folder}_{key}" / "discovered_arch.json", spec)
            networks.append(network_entry(spec, name, kind, None, archs[name], seeds, latency))
    first = w / f"search_{target_key(config.targets[0])}"
    for i, arch in enumerate(
        decision_candidates(first, config.decision_iteration, config.decision_candidates)
    ):
        name = f"candidate_{i}"
        archs[name] = arch
        networks.append(network_entry(spec, name, "random", None, arch, seeds, latency))
    initial = [n for n in networks if n.name == INITIAL]
    others = [n for n in networks if n.name != INITIAL]
    write_plan(w, PLANS[2], spec, others, archs)
    write_plan(w, PLANS[3], spec, initial + others, archs)
    by_cost = sorted(others, key=lambda n: (-n.macs, n.name))  # alternate: balanced parts
    for part in range(TRAIN_PARTS):
        write_plan(w, part_plan(part), spec, by_cost[part::TRAIN_PARTS], archs)


def judged_samples(search_dir: pathlib.Path) -> int:
    from netadapt_tf.search.driver import read_summary

    return max(1, read_summary(search_dir / "summary.json")["samples"]["ok"])


def run_stages(config: ParetoConfig, w: pathlib.Path, log=print) -> StageRunner:
    """Runs (or skips, or resumes) every stage; returns the runner (its records)."""
    w.mkdir(parents=True, exist_ok=True)
    runner = StageRunner(w, log)
    settings = (json.dumps(config.to_json(), sort_keys=True),)
    runner.run_step(
        "setup",
        lambda: setup(config, w),
        outputs=[w / "spec.json", w / "archs", *(w / p for p in PLANS[:2])],
        settings=settings,
    )
    steps = (
        () if config.steps_per_epoch is None else (f"--steps_per_epoch={config.steps_per_epoch}",)
    )
    train = (f"--spec={w / 'spec.json'}", "--mode=scratch", *steps, *config.recipe_flags)
    runner.run_tool(
        "learning_curve",
        "train_comparison",
        f"--networks={w / PLANS[0]}",
        f"--data_config={w / 'data_curve.json'}",
        "--validate_on=held_out",
        f"--epochs={config.probe_epochs}",
        f"--workdir={w / 'learning_curve'}",
        *train,
        outputs=[w / "learning_curve"],
    )
    runner.run_step("budget", lambda: write_budget(config, w), outputs=[w / BUDGET_FILE])
    epochs = f"--epochs={read_budget(w)['epochs']}"
    trained = (f"--data_config={w / 'data_train.json'}", epochs, *train)
    runner.run_tool(
        "train_initial",
        "train_comparison",
        f"--networks={w / PLANS[1]}",
        f"--workdir={w / 'train_initial'}",
        *trained,
        outputs=[w / "train_initial"],
    )
    seed = config.seeds[0]
    ckpt = w / "supernet" / "supernet"
    initial_model = w / "train_initial" / INITIAL / f"seed{seed}" / "model.keras"
    runner.run_tool(
        "train_supernet",
        "train_supernet",
        f"--preset={config.supernet_preset}",
        f"--workdir={w / 'supernet'}",
        f"--seed={seed}",
        f"--init_from={initial_model}",
        *config.supernet_flags,
        outputs=[w / "supernet"],
    )
    table = w / "latency_table.json"
    runner.run_tool(
        "latency_table",
        "build_latency_table",
        *config.model_flags,
        f"--output={table}",
        *config.table_flags,
        outputs=[table],
    )
    search = (
        f"--supernet_checkpoint={ckpt}",
        "--metric=table",
        f"--latency_table={table}",
        f"--seed={seed}",
        *config.search_flags,
    )
    for target in config.targets:
        key = target_key(target)
        at = (*search, f"--target_fraction={target}")
        runner.run_tool(
            f"search_{key}",
            "search",
            f"--workdir={w / f'search_{key}'}",
            *at,
            outputs=[w / f"search_{key}"],
        )
        runner.run_tool(
            f"random_{key}",
            "search",
            f"--workdir={w / f'random_{key}'}",
            *at,
            *config.random_flags,
            f"--samples_per_iteration={judged_samples(w / f'search_{key}')}",
            outputs=[w / f"random_{key}"],
        )
    runner.run_step(
        "plan",
        lambda: plan(config, w, _table_metric(w, table)),
        outputs=[w / PLANS[2], w / PLANS[3], *(w / part_plan(p) for p in range(TRAIN_PARTS))],
        settings=settings,
    )
    runner.run_tools_together(
        [
            ToolStage(
                part_dir(part),
                "train_comparison",
                (
                    f"--networks={w / part_plan(part)}",
                    f"--workdir={w / part_dir(part)}",
                    "--cores=1",
                    *trained,
                ),
                outputs=(w / part_dir(part),),
            )
            for part in range(TRAIN_PARTS)
        ]
    )
    runner.run_tool(
        "measure",
        "measure_comparison",
        f"--networks={w / PLANS[3]}",
        f"--supernet_checkpoint={ckpt}",
        f"--search_settings={w / f'search_{target_key(config.targets[0])}' / 'search.json'}",
        f"--output={w / MEASURED_FILE}",
        f"--seed={seed}",
        *config.measure_flags,
        outputs=[w / MEASURED_FILE],
    )
    return runner


def _table_metric(w: pathlib.Path, table: pathlib.Path):
    from netadapt_tf.metrics.lookup_table import LookupTable, LookupTableMetric

    return LookupTableMetric(LookupTable.load(table, load_spec(w / "spec.json")))


def machine() -> dict:
    """This host: what the timings and the latencies ran on."""
    flags = set()
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                elif line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    simd = sorted(f for f in flags if f.startswith(("avx", "fma", "sse4", "amx")))
    return {
        "cpu": model,
        "cpu_flags": simd,
        "cores": len(os.sched_getaffinity(0)),
        "system": platform.platform(),
        "python": platform.python_version(),
    }
