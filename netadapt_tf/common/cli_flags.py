"""absl flags shared by the tools that pick a super-network and an arch of it.

A tool calls `define_model_flags()` (and `define_arch_flag(...)`) at its top, then in main
`spec_from_flags()` and `read_arch(path, spec)`. The flags name a builder and its options;
the other builder options keep their defaults, so the fingerprint of the spec these flags
build is the one `tools/sample_arch.py` writes into arch files.
"""

from absl import flags

from netadapt_tf import builders
from netadapt_tf.space.arch import Arch, load_arch
from netadapt_tf.space.spec import NetworkSpec

FLAGS = flags.FLAGS
DEFAULT_NUM_CLASSES = 1000


def define_model_flags() -> None:
    """--model (required), --width_multiplier, --input_size, --num_classes, --num_widths,
    --tie_depthwise."""
    flags.DEFINE_enum("model", None, sorted(builders.BUILDERS), "Super-network builder.")
    flags.DEFINE_float("width_multiplier", 1.0, "Channel width multiplier (> 0).")
    flags.DEFINE_integer("input_size", 224, "Input height and width in pixels.", lower_bound=1)
    flags.DEFINE_integer(
        "num_classes",
        None,
        f"Number of classes (default {DEFAULT_NUM_CLASSES}); not for the dense-prediction "
        f"models {list(builders.DENSE_BUILDERS)}.",
        lower_bound=1,
    )
    flags.DEFINE_integer(
        "num_widths",
        9,
        "Widths per layer, uniformly spaced from 0 to the full width (the paper uses 9).",
        lower_bound=2,
    )
    flags.DEFINE_bool(
        "tie_depthwise",
        False,
        "Depthwise layers keep every channel their input has (their widths are not searched).",
    )
    flags.mark_flag_as_required("model")
    flags.register_multi_flags_validator(
        ["model", "num_classes"],
        lambda values: (
            values["model"] not in builders.DENSE_BUILDERS or values["num_classes"] is None
        ),
        message="--num_classes is not allowed with a dense-prediction --model "
        f"({list(builders.DENSE_BUILDERS)}): its output is a map, not classes",
    )
    flags.register_validator(
        "width_multiplier", lambda value: value > 0, message="--width_multiplier must be > 0"
    )


def spec_from_flags() -> NetworkSpec:
    """The NetworkSpec the model flags describe (a dense-prediction builder has no classes)."""
    num_classes = FLAGS.num_classes
    if num_classes is None and FLAGS.model not in builders.DENSE_BUILDERS:
        num_classes = DEFAULT_NUM_CLASSES
    return builders.build(
        FLAGS.model,
        input_size=FLAGS.input_size,
        num_classes=num_classes,
        width_multiplier=FLAGS.width_multiplier,
        num_widths=FLAGS.num_widths,
        **({"tie_depthwise": True} if FLAGS.tie_depthwise else {}),
    )


def define_arch_flag(required: bool, help_text: str) -> flags.FlagHolder:
    """--arch: an arch JSON file (see docs/architecture_format.md)."""
    holder = flags.DEFINE_string("arch", None, help_text)
    if required:
        flags.mark_flag_as_required("arch")
    return holder


def read_arch(path: str, spec: NetworkSpec) -> Arch:
    """The arch in file `path`, checked against `spec`; every error is a RecordError (a
    ValueError) that names the file (a missing file, malformed JSON, an arch of another
    super-network)."""
    return load_arch(path, spec)
