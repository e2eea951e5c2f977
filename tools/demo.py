"""`make demo`: the NetAdaptV2 pipeline, end to end at laptop cost (under a minute on 2 CPUs).

Usage: python tools/demo.py [--seed=0] [--workdir=./workdir/demo]

1. The search space: MACs and parameters of the paper's initial network (224x224, 1000
   classes), of random sub-networks of it and of its smallest sub-network.
2. A small super-network of the same design (netadapt_tf/configs/demo.py): random
   sub-networks are exported as plain Keras models and compared with the masked
   super-network.

Writes into --workdir: config.json (the resolved config), the sampled arch JSONs and the
first exported model (export_1/model.keras). Training and search stages go after stage 2.
"""

import json
import pathlib
import sys
import time

import keras
from absl import app, flags

from netadapt_tf import checkpoint, cost_report, parity
from netadapt_tf.arch import Arch, full_arch, save_arch, smallest_arch
from netadapt_tf.configs import demo as demo_config
from netadapt_tf.export import export_subnetwork
from netadapt_tf.macs import count
from netadapt_tf.supernet import build_supernet

_SEED = flags.DEFINE_integer(
    "seed", 0, "Seed of the random sub-networks and of the untrained weights."
)
_WORKDIR = flags.DEFINE_string("workdir", "./workdir/demo", "Directory for the outputs.")


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


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}; everything is a --flag")
    start = time.perf_counter()
    config = demo_config.get_config(seed=_SEED.value)
    workdir = pathlib.Path(_WORKDIR.value)
    keras.utils.set_random_seed(config.seed)  # the untrained weights, so runs repeat exactly
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(json.dumps(config.to_json(), indent=1) + "\n")
    profile_search_space(config, workdir)
    ok = export_samples(config, workdir)
    print(
        f"done in {time.perf_counter() - start:.0f} s; outputs in {workdir}: config.json, "
        "sampled arch JSONs, export_1/model.keras"
    )
    if not ok:
        print("demo: an exported model disagrees with the super-network", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    app.run(main)
