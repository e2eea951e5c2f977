"""Import a trained Keras 3 functional model as the initial network of a search.

Usage:
  python tools/import_model.py --model=my_model.keras --output=imported/ [--json]
      [--input_size=S] [--pin=REGEX ...] [--num_widths=9] [--channel_bypass]
      [--bypass_base=8] [--superkernel] [--tie_depthwise]
  python tools/import_model.py --model=MobileNetV3Small --input_size=32 --num_classes=10 ...

--model is a .keras file, or a keras.applications name (built untrained, weights=None, with
a logits output). Writes into --output a super-network checkpoint (spec.json,
supernet.weights.h5: the model's weights at full width), which tools/train_supernet.py
--init_from, tools/search.py --supernet_checkpoint and the other tools read, and the import
report (import_report.json, import_report.md). The full network is checked against the model
on random images first (relative difference at most --tolerance) and nothing is written
when any check fails. With --json: one object with macs, params, relative_diff,
search_units, pinned and the report's other fields. See docs/import.md.
"""

import json
import sys

import numpy as np
from absl import app, flags

from netadapt_tf.importer.assemble import SearchOptions
from netadapt_tf.importer.model_import import import_model, load_keras_model, parity, write_import

_MODEL = flags.DEFINE_string("model", None, "A .keras file, or a keras.applications name.")
_OUTPUT = flags.DEFINE_string("output", None, "Directory to write the checkpoint and report.")
_JSON = flags.DEFINE_bool("json", False, "Print one JSON object instead of text.")
_INPUT_SIZE = flags.DEFINE_integer(
    "input_size", None, "Input size for a model without a fixed one.", lower_bound=1
)
_NUM_CLASSES = flags.DEFINE_integer(
    "num_classes", 1000, "Classes of a keras.applications model built by name.", lower_bound=1
)
_PIN = flags.DEFINE_multi_string("pin", [], "Regex of Keras layer paths kept at full width.")
_DEFAULTS = SearchOptions()
_NUM_WIDTHS = flags.DEFINE_integer(
    "num_widths", _DEFAULTS.num_widths, "Widths per layer.", lower_bound=2
)
_BYPASS = flags.DEFINE_bool("channel_bypass", _DEFAULTS.channel_bypass, "Channel bypass.")
_BYPASS_BASE = flags.DEFINE_integer(
    "bypass_base", _DEFAULTS.bypass_base, "T at stride 2 (doubles per downsampling).", lower_bound=0
)
_SUPERKERNEL = flags.DEFINE_bool(
    "superkernel", _DEFAULTS.superkernel, "Depthwise kernels choose smaller centred sizes."
)
_TIE_DW = flags.DEFINE_bool("tie_depthwise", _DEFAULTS.tie_depthwise, "Depthwise widths tied.")
_TOLERANCE = flags.DEFINE_float(
    "tolerance", 1e-5, "Largest relative difference allowed.", lower_bound=0
)
_IMAGES = flags.DEFINE_integer(
    "parity_images", 4, "Random images of the parity check.", lower_bound=1
)
flags.mark_flags_as_required(["model", "output"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}; everything is a --flag")
    options = SearchOptions(
        num_widths=_NUM_WIDTHS.value,
        channel_bypass=_BYPASS.value,
        bypass_base=_BYPASS_BASE.value,
        superkernel=_SUPERKERNEL.value,
        tie_depthwise=_TIE_DW.value,
        pin=tuple(_PIN.value),
    )
    try:
        model = load_keras_model(_MODEL.value, _INPUT_SIZE.value, _NUM_CLASSES.value)
        result = import_model(model, _MODEL.value, options)
        size, channels = result.spec.input_size, result.spec.input_channels
        images = np.random.default_rng(0).uniform(0, 1, (_IMAGES.value, size, size, channels))
        diff = parity(result, model, images.astype(np.float32))
    except ValueError as error:
        print(f"import_model: {error}", file=sys.stderr)
        return 1
    if not diff <= _TOLERANCE.value:
        print(
            f"import_model: the imported network differs from the model by {diff:.3g} "
            f"(relative), more than --tolerance={_TOLERANCE.value}; nothing written",
            file=sys.stderr,
        )
        return 1
    write_import(result, _OUTPUT.value)
    report = result.report()
    if _JSON.value:
        print(json.dumps(report, indent=1))
    else:
        print(f"imported {_MODEL.value} -> {_OUTPUT.value} (spec {report['fingerprint']})")
        print(f"MACs {report['macs']:,}  params {report['params']:,}  relative diff {diff:.3g}")
        print(f"{len(report['search_units'])} search units, {len(report['pinned'])} pinned")
    return 0


if __name__ == "__main__":
    app.run(main)
