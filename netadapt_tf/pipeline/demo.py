"""The end-to-end demo's flow (tools/demo.py): the search space's costs, export checks of a
small super-network, then every stage from super-network training to shipping, each a tool
run as its own process through the stage runner, and report.md.

`check_search_space(config, workdir)` writes the resolved config and runs the first two parts
(`profile_search_space`, `export_samples`); `run_flow` the third, returning report.md's path.
Rerunning with the same config skips finished stages and resumes an interrupted one
(stage_runner.py).
"""

import dataclasses
import pathlib
import time

import keras

from netadapt_tf.common import atomic_files
from netadapt_tf.configs import demo as demo_config
from netadapt_tf.configs import supernet as supernet_presets
from netadapt_tf.graphs import parity
from netadapt_tf.graphs.export import export_subnetwork
from netadapt_tf.metrics.lookup_table import LookupTable, LookupTableMetric
from netadapt_tf.pipeline import comparison, demo_report, pareto
from netadapt_tf.pipeline.stage_runner import StageRunner, ToolStage
from netadapt_tf.search.driver import read_summary as read_search_summary
from netadapt_tf.space import cost_report
from netadapt_tf.space.arch import Arch, full_arch, load_arch, save_arch, smallest_arch
from netadapt_tf.space.macs import count
from netadapt_tf.supernet import checkpoint, distribute
from netadapt_tf.supernet.network import build_supernet


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


def plan_comparison(flow: demo_config.FlowConfig, w: pathlib.Path, seed: int) -> None:
    """The comparison's networks (pipeline/comparison.py): the uniform curve, the discovered
    network and the random-search pick, with their arch files, costs and table latencies."""
    spec = checkpoint.read_spec(w / "supernet" / "supernet")
    latency = LookupTableMetric(LookupTable.load(w / "latency_table.json", spec))
    networks = comparison.plan_networks(
        spec,
        latency,
        load_arch(str(w / "search" / "discovered_arch.json"), spec),
        load_arch(str(w / "search_random" / "discovered_arch.json"), spec),
        flow.curve_fractions,
        [seed + offset for offset in flow.seed_offsets],
        w / "comparison",
    )
    comparison.write_networks(w / "comparison", networks)
    for n in networks:
        print(f"  {n.name}: table latency {n.table_ms:.3f} ms, {n.macs:,} MACs, seeds {n.seeds}")


def judged_samples(w: pathlib.Path) -> int:
    """How many samples the MCD search judged (the random search gets as many)."""
    summary = read_search_summary(w / "search" / "summary.json")
    return max(1, summary["samples"]["ok"])


def plan_initial(flow: demo_config.FlowConfig, w: pathlib.Path, seed: int) -> None:
    """The initial network's plan in `w`/initial: the super-network preset's network at
    full width (its spec.json), the preset's data config (data.json: the same held-out
    images kept out as the super-network keeps, so the weights the search judges never
    learned them) and networks.json with its arch."""
    preset = supernet_presets.get_config(flow.supernet_preset)
    spec = preset.model.build()
    directory = w / "initial"
    directory.mkdir(parents=True, exist_ok=True)
    atomic_files.write_json(directory / "spec.json", spec.to_json())
    data = dataclasses.replace(
        preset.data, image_size=spec.input_size, channels=spec.input_channels
    )  # as tools/train_supernet.py resolves it
    atomic_files.write_json(directory / "data.json", data.to_json())
    arch = full_arch(spec)
    network = pareto.network_entry(spec, pareto.INITIAL, "uniform", 1.0, arch, [seed])
    pareto.write_plan(directory, comparison.NETWORKS_FILE, spec, [network], {pareto.INITIAL: arch})


def train_initial(runner: StageRunner, flow: demo_config.FlowConfig, w: pathlib.Path, seed: int):
    """The flow a user runs starts from a trained network: the initial network is trained
    first (the comparison's recipe, `train_flags`), and the super-network starts from its
    weights. Returns the trained model's path."""
    directory = w / "initial"
    runner.run_step(
        "initial_plan",
        lambda: plan_initial(flow, w, seed),
        outputs=[directory / name for name in ("spec.json", "data.json", "archs")]
        + [directory / comparison.NETWORKS_FILE],
        settings=(f"--preset={flow.supernet_preset}", f"--seed={seed}"),
    )
    runner.run_tool(
        "train_initial",
        "train_comparison",
        f"--networks={directory / comparison.NETWORKS_FILE}",
        "--mode=scratch",
        f"--spec={directory / 'spec.json'}",
        f"--data_config={directory / 'data.json'}",
        f"--workdir={directory / 'trained'}",
        *flow.train_flags,
        outputs=[directory / "trained"],
    )
    return directory / "trained" / pareto.INITIAL / f"seed{seed}" / "model.keras"


def run_flow(flow: demo_config.FlowConfig, w: pathlib.Path, seed: int) -> pathlib.Path:
    """Stage 3: training to shipping; returns the report's path."""
    print("3) train, search, compare at equal training, ship (each step a tool)")
    runner = StageRunner(w)
    ckpt = str(w / "supernet" / "supernet")
    initial_model = train_initial(runner, flow, w, seed)
    train_and_search(runner, flow, w, seed, ckpt, initial_model)
    compare(runner, flow, w, seed, ckpt)
    shipped = w / "comparison" / "inherit" / "discovered" / f"seed{seed + flow.seed_offsets[0]}"
    runner.run_tool(
        "export_discovered",
        "export_tflite",
        f"--keras_model={shipped / 'model.keras'}",
        f"--arch={shipped / 'arch.json'}",
        f"--spec={ckpt}",
        f"--output_dir={w / 'export_discovered'}",
        f"--seed={seed}",
        *flow.export_flags,
        *flow.qat_flags,
        outputs=[w / "export_discovered"],
    )
    return demo_report.write_report(w, dataclasses.asdict(flow), shipped)


def train_and_search(
    runner: StageRunner,
    flow: demo_config.FlowConfig,
    w: pathlib.Path,
    seed: int,
    ckpt: str,
    initial_model: pathlib.Path,
) -> None:
    """The super-network (checkpoint `ckpt`, started from `initial_model`'s weights), the
    latency table, the MCD search and the random search with as many judged samples."""
    runner.run_tool(
        "train_supernet",
        "train_supernet",
        f"--preset={flow.supernet_preset}",
        f"--workdir={w / 'supernet'}",
        f"--seed={seed}",
        f"--init_from={initial_model}",
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
    search_flags = (
        f"--supernet_checkpoint={ckpt}",
        "--metric=table",
        f"--latency_table={w / 'latency_table.json'}",
        f"--seed={seed}",
        *flow.search_flags,
    )
    runner.run_tool(
        "search", "search", f"--workdir={w / 'search'}", *search_flags, outputs=[w / "search"]
    )
    runner.run_tool(
        "search_random",
        "search",
        f"--workdir={w / 'search_random'}",
        *search_flags,
        *flow.random_flags,
        f"--samples_per_iteration={judged_samples(w)}",
        outputs=[w / "search_random"],
    )


def compare(
    runner: StageRunner, flow: demo_config.FlowConfig, w: pathlib.Path, seed: int, ckpt: str
) -> None:
    """The comparison at equal training: plans the networks, trains both columns side by
    side and measures every network."""
    comparison_dir = w / "comparison"
    networks = comparison_dir / comparison.NETWORKS_FILE
    runner.run_step(
        "comparison_archs",
        lambda: plan_comparison(flow, w, seed),
        outputs=[networks, comparison_dir / "archs"],
        settings=(
            "--curve_fractions=" + ",".join(f"{f:g}" for f in flow.curve_fractions),
            "--seeds=" + ",".join(str(seed + offset) for offset in flow.seed_offsets),
        ),
    )
    # The columns are independent: trained side by side, each on its share of the cores
    # (a run of these small networks keeps about 1.6 of 2 cores busy; two columns of two
    # networks took 180 s side by side against 257 s one after the other, docs/benchmarks.md).
    cores = max(1, distribute.available_cores() // len(comparison.COLUMNS))
    runner.run_tools_together(
        [
            ToolStage(
                f"train_{column}",
                "train_comparison",
                (
                    f"--networks={networks}",
                    f"--mode={column}",
                    f"--supernet_checkpoint={ckpt}",
                    f"--workdir={comparison_dir / column}",
                    f"--cores={cores}",
                    *flow.train_flags,
                ),
                outputs=(comparison_dir / column,),
            )
            for column in comparison.COLUMNS
        ]
    )
    runner.run_tool(
        "measure_comparison",
        "measure_comparison",
        f"--networks={networks}",
        f"--supernet_checkpoint={ckpt}",
        f"--search_settings={w / 'search' / 'search.json'}",
        f"--output={comparison_dir / comparison.MEASURED_FILE}",
        f"--seed={seed}",
        *flow.measure_flags,
        outputs=[comparison_dir / comparison.MEASURED_FILE],
    )


def check_search_space(config: demo_config.DemoConfig, workdir: pathlib.Path) -> bool:
    """Stages 1 and 2 into `workdir` (which the caller has locked), after writing the
    resolved config: True when every export check passes."""
    keras.utils.set_random_seed(config.seed)  # the untrained weights, so runs repeat exactly
    atomic_files.write_json(workdir / "config.json", config.to_json())
    profile_search_space(config, workdir)
    return export_samples(config, workdir)
