"""The super-network recipe, lever by lever: benchmarks/rank_correlation.py for each variant.

Every variant is the chosen recipe (`BEST`) with one lever switched, plus the paper's
recipe; each runs rank_correlation.py as its own process (one super-network each; the
stand-alone accuracies come from the shared cache) and leaves its JSON in --workdir, so a
rerun skips finished variants. The table (markdown) goes to stdout and to --workdir/study.md.

  python benchmarks/recipe_study.py [--variants=best,paper,...] [--extra=--span_stop=0.01]
"""

import json
import os
import subprocess
import sys

from absl import app, flags

from netadapt_tf.common import atomic_files

# The recipe the Fashion-MNIST presets use (configs/supernet.py), as rank_correlation flags.
BEST = {
    "width_correlation": "1.0",
    "free_layer_probability": "0.3",
    "full_network": "true",
    "distill": "true",
    "warm_start_steps": "0",
    "progressive_shrinking": "0.0",
    "supernet_tie_depthwise": "true",
    "recalibration_average": "cumulative",
}
# name -> (what changes, overrides of BEST)
VARIANTS = {
    "best": ("the chosen recipe", {}),
    "paper": (
        "the paper's sampling: independent widths, no full network, no distillation",
        {
            "width_correlation": "0.0",
            "free_layer_probability": "0.0",
            "full_network": "false",
            "distill": "false",
            "supernet_tie_depthwise": "false",
        },
    ),
    "independent": ("independent widths per layer (correlation 0)", {"width_correlation": "0.0"}),
    "no_free_layers": ("no free layers", {"free_layer_probability": "0"}),
    "fewer_free_layers": ("free_layer_probability 0.1", {"free_layer_probability": "0.1"}),
    "no_full_network": ("no full-network loss (distillation only)", {"full_network": "false"}),
    "no_distill": ("no in-place distillation", {"distill": "false"}),
    "no_full_no_distill": (
        "neither the full network nor distillation",
        {"full_network": "false", "distill": "false"},
    ),
    "warm_start": ("300 full-network steps first", {"warm_start_steps": "300"}),
    "init_from_trained": (
        "starts from the full network trained alone (600 steps)",
        {"init_from_standalone": "true"},
    ),
    "shrinking": ("progressive shrinking over half the steps", {"progressive_shrinking": "0.5"}),
    "untied_depthwise": ("depthwise widths drawn alone", {"supernet_tie_depthwise": "false"}),
    "momentum_recal": ("BN recalibration by moving average", {"recalibration_average": "momentum"}),
}
# Variants that change only the judge read the super-network of `best` (same recipe).
JUDGE_ONLY = {"momentum_recal"}
KEYS = (
    "span_tau",
    "span_macs_tau",
    "ceiling_tau",
    "read_gap",
    "full_gap",
    "decision_tau",
    "decision_ceiling_tau",
    "decision_regret",
    "decision_random_regret",
    "supernet_seconds",
    "init_seconds",
)

_VARIANTS = flags.DEFINE_list("variants", list(VARIANTS), "Variants to run, in order.")
_EXTRA = flags.DEFINE_multi_string("extra", [], "Flags given to every rank_correlation run.")
_WORKDIR = flags.DEFINE_string("workdir", "workdir/recipe_study", "Where each variant runs.")


def command(name: str) -> list[str]:
    settings = {**BEST, **VARIANTS[name][1]}
    here = os.path.dirname(os.path.abspath(__file__))
    return [
        sys.executable,
        os.path.join(here, "rank_correlation.py"),
        "--json",
        f"--workdir={os.path.join(_WORKDIR.value, 'best' if name in JUDGE_ONLY else name)}",
        f"--cache={os.path.join(_WORKDIR.value, 'standalone.json')}",
        *(f"--{key}={value}" for key, value in settings.items()),
        *_EXTRA.value,
    ]


def run(name: str) -> dict:
    path = os.path.join(_WORKDIR.value, f"{name}.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    done = subprocess.run(command(name), capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"variant {name} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    atomic_files.write_json(path, result)
    return result


def table(results: dict) -> str:
    head = "| variant | " + " | ".join(KEYS) + " |"
    lines = [head, "|" + " --- |" * (len(KEYS) + 1)]
    for name, result in results.items():
        cells = [f"{result.get(k, 0.0):.2f}" for k in KEYS]
        lines.append(f"| {name}: {VARIANTS[name][0]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    unknown = sorted(set(_VARIANTS.value) - set(VARIANTS))
    if unknown:
        raise app.UsageError(f"--variants: unknown {unknown}; allowed: {sorted(VARIANTS)}")
    os.makedirs(_WORKDIR.value, exist_ok=True)
    results = {}
    for name in _VARIANTS.value:
        results[name] = run(name)
        print(f"{name}: " + json.dumps({k: results[name].get(k) for k in KEYS}), flush=True)
    text = table(results)
    atomic_files.write_text(os.path.join(_WORKDIR.value, "study.md"), text + "\n")
    print(text)


if __name__ == "__main__":
    app.run(main)
