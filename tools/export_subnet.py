"""Export one sub-network (arch) of a super-network as a plain Keras model.

Usage:
  python tools/export_subnet.py --model=mobilenet_v1 --arch=arch.json --output=out/
      [--supernet_checkpoint=ckpt/] [--verify] [--json]
      [--width_multiplier=0.25] [--input_size=32] [--num_classes=10] [--num_widths=9]

Writes out/model.keras and out/arch.json. Weights come from --supernet_checkpoint (whose
spec must be the one the model flags describe), else from a freshly initialized
super-network. --verify compares the exported model with the masked super-network on 4
random images (seed 0) and exits with status 1 when they disagree (see
netadapt_tf/graphs/parity.py).
"""

import json
import os
import sys

from absl import app, flags

from netadapt_tf.cli import cli_flags
from netadapt_tf.graphs import parity
from netadapt_tf.graphs.export import export_subnetwork
from netadapt_tf.space.macs import count
from netadapt_tf.supernet import checkpoint
from netadapt_tf.supernet.network import build_supernet

cli_flags.define_model_flags()
_ARCH = cli_flags.define_arch_flag(True, "Arch JSON file to export.")
_CHECKPOINT = flags.DEFINE_string(
    "supernet_checkpoint", None, "Super-network checkpoint directory (checkpoint.save_supernet)."
)
_OUTPUT = flags.DEFINE_string("output", None, "Directory to write the model into.", required=True)
_VERIFY = flags.DEFINE_bool("verify", False, "Check parity with the masked super-network.")
_JSON = flags.DEFINE_bool("json", False, "Print one JSON object instead of text.")

flags.register_multi_flags_validator(
    ["output", "supernet_checkpoint"],
    lambda f: (
        not f["supernet_checkpoint"]
        or os.path.realpath(f["output"]) != os.path.realpath(f["supernet_checkpoint"])
    ),
    message="--output must not be the --supernet_checkpoint directory",
)


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}; everything is a --flag")
    spec = cli_flags.spec_from_flags()
    arch_path, ckpt, output = _ARCH.value, _CHECKPOINT.value, _OUTPUT.value
    try:
        if ckpt:
            checkpoint.read_spec(ckpt, expected_spec=spec)  # before the arch: the likelier cause
        arch = cli_flags.read_arch(arch_path, spec)
        if ckpt:
            supernet = checkpoint.load_supernet(ckpt, expected_spec=spec)
        else:
            print(
                "export_subnet: no --supernet_checkpoint, so the weights are freshly "
                "initialized (the exported model is untrained)",
                file=sys.stderr,
            )
            supernet = build_supernet(spec)
    except ValueError as error:
        print(f"export_subnet: {error}", file=sys.stderr)
        return 1
    model = export_subnetwork(supernet, arch)
    path = checkpoint.save_subnetwork(model, arch, output)
    counts = count(spec, arch)
    result = {
        "output": output,
        "model_file": str(path),
        "weights": ckpt or "freshly initialized",
        "macs": counts.macs,
        "params": counts.params,
        "keras_params": model.count_params(),
    }
    check = parity.check_export(supernet, model, arch) if _VERIFY.value else None
    if check is not None:
        result.update(check.to_json())
    if _JSON.value:
        print(json.dumps(result, indent=1))
    else:
        print(f"wrote {path} and {os.path.join(output, checkpoint.ARCH_FILE)}")
        print(
            f"MACs {counts.macs:,}, parameters {counts.params:,} (BN folded), "
            f"{result['keras_params']:,} in the Keras model"
        )
        if check is not None:
            print(f"parity with the super-network: {check.describe()}")
    if check is not None and not check.ok:
        print(f"export_subnet: parity check failed: {check.describe()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    cli_flags.run(main)
