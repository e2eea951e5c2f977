"""Print the MACs and parameters of a super-network's full network or of one of its archs.

Usage:
  python tools/profile_model.py --model=mobilenet_v1 [--width_multiplier=0.5]
      [--input_size=224] [--num_classes=1000] [--arch=arch.json] [--samples=20 --seed=0]
      [--json]

Without --json: the totals, then a per-layer table. With --samples=N, also the MACs and
parameter range of N random sub-networks (the spread of the search space). With --json: one
JSON object with `model`, `arch`, `macs`, `params`, `fingerprint`, `layers` and `samples`.
Exits with status 1 and the cause on stderr when the arch does not belong to the model.
"""

import json
import sys

from absl import app, flags

from netadapt_tf.cli import cli_flags
from netadapt_tf.space import cost_report
from netadapt_tf.space.arch import full_arch

FLAGS = flags.FLAGS

cli_flags.define_model_flags()
_ARCH = cli_flags.define_arch_flag(False, "Arch JSON file to profile (default: full network).")
_SAMPLES = flags.DEFINE_integer(
    "samples", 0, "Also profile this many random sub-networks.", lower_bound=0
)
_SEED = flags.DEFINE_integer(
    "seed", 0, "Seed of the random sub-networks of --samples.", lower_bound=0
)
_JSON = flags.DEFINE_bool("json", False, "Print one JSON object instead of text.")


def _print_text(spec, report, arch_path, samples):
    size = f"{spec.input_size}x{spec.input_size}x{spec.input_channels}"
    print(f"model       {spec.name} (fingerprint {report.fingerprint})")
    if spec.dense_channels is not None:
        print(f"input       {size}, a {spec.dense_channels}-channel map out")
    else:
        print(f"input       {size}, {spec.num_classes} classes")
    print(f"arch        {arch_path or 'full network'}")
    print(f"MACs        {report.macs:,} ({cost_report.millions(report.macs)})")
    print(f"params      {report.params:,} ({cost_report.millions(report.params)})")
    if samples is not None:
        count, seed = samples["count"], samples["seed"]
        print(f"\n{count} random sub-networks (seed {seed}), min / median / max:")
        for key, label in (("macs", "MACs"), ("params", "params")):
            s = samples[key]
            figures = " / ".join(cost_report.millions(s[k]) for k in ("min", "median", "max"))
            print(f"{label:<11} {figures}")
    print()
    print(cost_report.format_table(report))


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}; everything is a --flag")
    spec = cli_flags.spec_from_flags()
    model, arch_path, num_samples, seed = FLAGS.model, _ARCH.value, _SAMPLES.value, _SEED.value
    try:
        arch = cli_flags.read_arch(arch_path, spec) if arch_path else full_arch(spec)
    except ValueError as error:
        print(f"profile_model: {error}", file=sys.stderr)
        return 1
    report = cost_report.cost_report(spec, arch)
    samples = None
    if num_samples:
        counts = cost_report.sample_counts(spec, num_samples, seed)
        samples = {"count": num_samples, "seed": seed, **cost_report.spread(counts)}
    if _JSON.value:
        result = {"model": model, "arch": arch_path, **report.to_json(), "samples": samples}
        print(json.dumps(result, indent=1))
    else:
        _print_text(spec, report, arch_path, samples)
    return 0


if __name__ == "__main__":
    cli_flags.run(main)
