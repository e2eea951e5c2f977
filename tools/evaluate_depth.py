"""Compare a predicted depth map with its ground truth: RMSE, delta1/2/3, abs_rel.

Usage:
  python tools/evaluate_depth.py --prediction=P.npy --ground_truth=G.npy [--json]

Both files are numpy arrays of depth in metres of one shape ([H, W] or [H, W, 1]); the
prediction may carry extra leading axes of size 1 (a network's batch axis, e.g. the
[1, H, W, 1] output of an exported model). Ground-truth pixels <= 0 are not measured and
left out. With --json: one JSON object with the keys rmse, delta1, delta2, delta3 and
abs_rel. Exits with status 1 and the cause on stderr on bad input.
"""

import json
import sys

import numpy as np
from absl import app, flags

from netadapt_tf.cli import cli_flags
from netadapt_tf.depth import metrics

_PREDICTION = flags.DEFINE_string("prediction", None, "Predicted depth map (.npy), metres.")
_GROUND_TRUTH = flags.DEFINE_string("ground_truth", None, "Ground-truth depth map (.npy).")
_JSON = flags.DEFINE_bool("json", False, "Print one JSON object instead of text.")
flags.mark_flags_as_required(["prediction", "ground_truth"])


def _load(flag: flags.FlagHolder) -> np.ndarray:
    name = f"--{flag.name}"
    try:
        return np.load(flag.value, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:  # EOFError: an empty file
        raise ValueError(f"{name}: cannot read {flag.value} as a numpy array: {error}") from error


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}; everything is a --flag")
    try:
        prediction, ground_truth = _load(_PREDICTION), _load(_GROUND_TRUTH)
        result = metrics.compare_maps(
            prediction, ground_truth, names=("--prediction", "--ground_truth")
        )
    except (TypeError, ValueError) as error:
        print(f"evaluate_depth: {error}", file=sys.stderr)
        return 1
    print(f"evaluate_depth: {metrics.pixel_rule(ground_truth, '--ground_truth')}", file=sys.stderr)
    if _JSON.value:
        print(json.dumps(result.values(), indent=1))
    else:
        for name, value in result.values().items():
            print(f"{name:<8} {value:.6f}")
    return 0


if __name__ == "__main__":
    cli_flags.run(main)
