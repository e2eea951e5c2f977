"""`make demo`: the NetAdaptV2 pipeline, end to end on Fashion-MNIST with host latency.

Usage: python tools/demo.py [--seed=0] [--workdir=./workdir/demo] [--quick]

1. The search space: MACs and parameters of the paper's initial network (224x224, 1000
   classes), of random sub-networks of it and of its smallest sub-network.
2. A small super-network of the same design (netadapt_tf/configs/demo.py): random
   sub-networks are exported as plain Keras models and compared with the masked
   super-network.
3. The flow, each step a tool run as its own process (netadapt_tf/stage_runner.py):
   super-network training, a host latency lookup table, the MCD search to half the
   latency, training the discovered network and, for comparison, the initial network and
   the initial network shrunk uniformly to the discovered latency; TFLite export (float32,
   int8, and int8 QAT for the discovered network); report.md.

Rerunning the same command skips finished steps and resumes an interrupted one; a step
whose command changed (another --seed, other flow settings) runs again from scratch, and so
do the steps after it (stage_runner.py says why in each step's log). `--quick` runs the
flow on synthetic data with a tiny network (seconds per step; for tests).
"""

import dataclasses
import pathlib
import sys
import time

import keras
from absl import app, flags

from netadapt_tf import atomic_files, checkpoint, cost_report, demo_report, parity
from netadapt_tf.arch import Arch, full_arch, load_arch, save_arch, smallest_arch
from netadapt_tf.configs import demo as demo_config
from netadapt_tf.export import export_subnetwork
from netadapt_tf.macs import count
from netadapt_tf.metrics.lookup_table import LookupTable, LookupTableMetric
from netadapt_tf.stage_runner import StageFailedError, StageRunner
from netadapt_tf.supernet import build_supernet
from netadapt_tf.uniform_baseline import uniform_arch_for_resource

_SEED = flags.DEFINE_integer(
    "seed", 0, "Seed of the random sub-networks and of the untrained weights."
)
_WORKDIR = flags.DEFINE_string("workdir", "./workdir/demo", "Directory for the outputs.")
_QUICK = flags.DEFINE_bool("quick", False, "Synthetic data and a tiny network (tests).")


def _costs_line(label: str, spec, arch: Arch) -> str:
    c = count(spec, arch)
    return f"  {label:<16} {c.macs:>12,} MACs {c.params:>11,} params"


def profile_search_space(config: demo_config.DemoConfig, workdir: pathlib.Path) -> None:
    """Stage 1: the costs of the full-size search space; writes the sampled archs."""
    options = config.initial_network
    spec = options.build()
    print(
        f"1) search space {spec.name}, {spec.input_size}x{spec.input_size}, "
        f"{spec.num_classes} classes (fingerprint {spec.fingerprint()})"
    )
    print(_costs_line("full network", spec, full_arch(spec)))
    archs = cost_report.sample_archs(spec, config.num_samples, config.seed)
    for i, arch in enumerate(archs, start=1):
        save_arch(arch, str(workdir / f"initial_sample_{i}.json"))
        print(_costs_line(f"random sample {i}", spec, arch))
    save_arch(smallest_arch(spec), str(workdir / "initial_smallest.json"))
    print(_costs_line("smallest", spec, smallest_arch(spec)))


def export_samples(config: demo_config.DemoConfig, workdir: pathlib.Path) -> bool:
    """Stage 2: builds the small super-network, exports random sub-networks and checks
    parity; writes the first export and every arch. True when every parity check passes."""
    spec = config.supernet.build()
    start = time.perf_counter()
    supernet = build_supernet(spec)
    print(
        f"2) super-network {spec.name} at width {config.supernet.width_multiplier}, "
        f"{spec.input_size}x{spec.input_size}, {spec.num_classes} classes: "
        f"{supernet.count_params():,} weights, built in {time.perf_counter() - start:.1f} s "
        "(untrained)"
    )
    all_ok = True
    for i, arch in enumerate(cost_report.sample_archs(spec, config.num_exports, config.seed), 1):
        model = export_subnetwork(supernet, arch, name=f"export_{i}")
        if i == 1:
            checkpoint.save_subnetwork(model, arch, workdir / "export_1")
        else:
            save_arch(arch, str(workdir / f"export_{i}_arch.json"))
        check = parity.check_export(supernet, model, arch, config.parity_images, config.seed)
        all_ok &= check.ok
        print(f"  export {i}: {model.count_params():,} parameters in the Keras model")
        print(f"    vs super-network: {check.describe()}")
    return all_ok


# What the in-process step choose_baseline writes.
BASELINE_OUTPUTS = ("initial_arch.json", "baseline_arch.json", "baseline_ratio.json")
BASELINE_OUTPUTS += ("table_latency.json",)


def choose_baseline(w: pathlib.Path) -> None:
    """The initial arch, and the uniform shrink with at most the discovered table latency;
    writes their arch files and the table's predictions for the report."""
    spec = checkpoint.read_spec(w / "supernet" / "supernet")
    latency = LookupTableMetric(LookupTable.load(w / "latency_table.json", spec))
    discovered = load_arch(str(w / "search" / "discovered_arch.json"), spec)
    baseline = uniform_arch_for_resource(spec, latency, latency(discovered))
    save_arch(full_arch(spec), str(w / "initial_arch.json"))
    save_arch(baseline.arch, str(w / "baseline_arch.json"))
    atomic_files.write_json(w / "baseline_ratio.json", {"ratio": baseline.ratio})
    predicted = {
        "initial": latency(full_arch(spec)),
        "discovered": latency(discovered),
        "baseline": baseline.resource,
    }
    atomic_files.write_json(w / "table_latency.json", predicted)
    print(
        f"  baseline: {100 * baseline.ratio:.1f}% of every width, table latency "
        f"{baseline.resource:.3f} ms (discovered {predicted['discovered']:.3f} ms)"
    )


def run_flow(flow: demo_config.FlowConfig, w: pathlib.Path, seed: int) -> pathlib.Path:
    """Stage 3: training to shipping; returns the report's path."""
    print("3) train, search, train the discovered network, ship (each step a tool)")
    runner = StageRunner(w)
    ckpt = str(w / "supernet" / "supernet")
    runner.run_tool(
        "train_supernet",
        "train_supernet",
        f"--preset={flow.supernet_preset}",
        f"--workdir={w / 'supernet'}",
        f"--seed={seed}",
        *flow.supernet_flags,
        outputs=[w / "supernet"],
    )
    runner.run_tool(
        "latency_table",
        "build_latency_table",
        *flow.model_flags,
        f"--output={w / 'latency_table.json'}",
        *flow.table_flags,
        outputs=[w / "latency_table.json"],
    )
    runner.run_tool(
        "search",
        "search",
        f"--supernet_checkpoint={ckpt}",
        f"--workdir={w / 'search'}",
        "--metric=table",
        f"--latency_table={w / 'latency_table.json'}",
        f"--seed={seed}",
        *flow.search_flags,
        outputs=[w / "search"],
    )
    runner.run_step(
        "baseline_arch", lambda: choose_baseline(w), outputs=[w / n for n in BASELINE_OUTPUTS]
    )
    archs = {
        "discovered": ("inherit", w / "search" / "discovered_arch.json"),
        "initial": ("scratch", w / "initial_arch.json"),
        "baseline": ("scratch", w / "baseline_arch.json"),
    }
    for key, (mode, arch) in archs.items():
        runner.run_tool(
            f"train_{key}",
            "train_discovered",
            f"--mode={mode}",
            f"--supernet_checkpoint={ckpt}",
            f"--arch={arch}",
            f"--workdir={w / key}",
            f"--seed={seed}",
            *flow.train_flags,
            outputs=[w / key],
        )
    for key in archs:
        runner.run_tool(
            f"export_{key}",
            "export_tflite",
            f"--keras_model={w / key / 'model.keras'}",
            f"--arch={w / key / 'arch.json'}",
            f"--spec={ckpt}",
            f"--output_dir={w / f'export_{key}'}",
            f"--seed={seed}",
            *flow.export_flags,
            *(flow.qat_flags if key == "discovered" else ()),
            outputs=[w / f"export_{key}"],
        )
    return demo_report.write_report(w, dataclasses.asdict(flow))


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}; everything is a --flag")
    start = time.perf_counter()
    overrides = {"flow": demo_config.flow_quick()} if _QUICK.value else {}
    config = demo_config.get_config(seed=_SEED.value, **overrides)
    workdir = pathlib.Path(_WORKDIR.value)
    keras.utils.set_random_seed(config.seed)  # the untrained weights, so runs repeat exactly
    workdir.mkdir(parents=True, exist_ok=True)
    atomic_files.write_json(workdir / "config.json", config.to_json())
    profile_search_space(config, workdir)
    if not export_samples(config, workdir):
        print("demo: an exported model disagrees with the super-network", file=sys.stderr)
        return 1
    try:
        report = run_flow(config.flow, workdir, config.seed)
    except (StageFailedError, ValueError) as error:
        print(f"demo: {error}", file=sys.stderr)
        print("demo: fix the cause and rerun the same command to go on", file=sys.stderr)
        return 1
    print(
        f"done in {time.perf_counter() - start:.0f} s; report: {report}; discovered arch: "
        f"{workdir / 'search' / 'discovered_arch.json'}; trajectory plot: "
        f"{workdir / 'search' / 'progress.png'}; search history: "
        f"{workdir / 'search' / 'history.jsonl'}; TFLite: {workdir / 'export_discovered'}"
    )
    return 0


if __name__ == "__main__":
    app.run(main)
