"""Write a random sub-network (arch) of a super-network to a JSON file.

Usage:
  python tools/sample_arch.py --model=mobilenet_v1 --seed=0 --output=arch.json
      [--width_multiplier=0.25] [--input_size=32] [--num_classes=10] [--num_widths=9]

Each layer's width and kernel size is drawn uniformly from its allowed values with
np.random.default_rng(seed), so a seed always gives the same arch. The file names its
super-network by fingerprint: pass the same model flags to the tools that read it.
"""

import sys

import numpy as np
from absl import app, flags

from netadapt_tf.cli import cli_flags
from netadapt_tf.space.arch import random_arch, save_arch
from netadapt_tf.space.macs import count

cli_flags.define_model_flags()
_SEED = flags.DEFINE_integer("seed", 0, "Random seed of the draw.", lower_bound=0)
_OUTPUT = flags.DEFINE_string("output", None, "Arch JSON file to write.", required=True)


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}; everything is a --flag")
    spec = cli_flags.spec_from_flags()
    arch = random_arch(spec, np.random.default_rng(_SEED.value))
    try:
        save_arch(arch, _OUTPUT.value)
    except OSError as error:
        print(f"sample_arch: {_OUTPUT.value}: cannot write ({error.strerror})", file=sys.stderr)
        return 1
    counts = count(spec, arch)
    print(
        f"wrote {_OUTPUT.value}: {spec.name} arch, {counts.macs:,} MACs, {counts.params:,} params"
    )
    return 0


if __name__ == "__main__":
    cli_flags.run(main)
