"""absl flags shared by the tools, and how every tool starts and fails.

`run(main)` replaces `app.run(main)` in every tool: a flag that does not parse, is out of
its bounds, fails a validator, or that main refuses (app.UsageError) ends the tool with one
line on stderr, `TOOL: --flag=value: what is allowed`, and exit status USAGE_ERROR (2),
without the help text; a work directory held by another run (common/workdir_lock.py) ends
it with one line and status BUSY (3). A run that fails on its inputs returns 1 itself.

The model flags serve the tools that pick a super-network and an arch of it.
A tool calls `define_model_flags()` (and `define_arch_flag(...)`) at its top, then in main
`spec_from_flags()` and `read_arch(path, spec)`. The flags name a builder and its options;
the other builder options keep their defaults, so the fingerprint of the spec these flags
build is the one `tools/sample_arch.py` writes into arch files.
"""

import os
import sys

from absl import app, flags

from netadapt_tf.space.arch import Arch, load_arch
from netadapt_tf.space.spec import NetworkSpec

FLAGS = flags.FLAGS
DEFAULT_NUM_CLASSES = 1000
USAGE_ERROR = 2
BUSY = 3


def tool_name() -> str:
    return os.path.splitext(os.path.basename(sys.argv[0]))[0] or "tool"


def fail(message: str, status: int = USAGE_ERROR):
    """Ends the tool with `message` as one line on stderr and exit `status`."""
    print(f"{tool_name()}: {' '.join(str(message).split())}", file=sys.stderr)
    sys.exit(status)


def parse(argv: list[str]) -> list[str]:
    """absl's parsing, with its errors as one line and exit 2 (absl's own prints a hint
    to the help and exits 1)."""
    try:
        return FLAGS(argv)
    except flags.Error as error:
        fail(error)


def guarded(main):
    """`main` with app.UsageError and a held work directory turned into one line."""
    from netadapt_tf.common.workdir_lock import WorkdirLockedError

    def run_main(argv):
        try:
            return main(argv)
        except app.UsageError as error:
            fail(error)
        except WorkdirLockedError as error:
            fail(error, BUSY)

    return run_main


def run(main) -> None:
    """app.run(main) with one-line usage errors (see the module docstring)."""
    app.run(guarded(main), flags_parser=parse)


def check(condition: bool, flag: str, value, allowed: str) -> None:
    """Refuses a flag's value (app.UsageError: --flag=value: allowed) unless `condition`."""
    if not condition:
        raise app.UsageError(f"--{flag}={value}: {allowed}")


def require(name: str, condition, allowed: str) -> None:
    """A validator of flag `name`: an unset flag (None) passes, a set one must meet
    `condition`; absl's error then reads `flag --name=value: allowed`."""
    flags.register_validator(name, lambda v: v is None or condition(v), message=allowed)


def checked_by(
    record_type: type, fields: dict[str, str], flag_values: flags.FlagValues = FLAGS
) -> None:
    """Validators of the flags that set fields of `record_type` ({flag: field}): a set flag
    must make a valid record by itself (the record's own checks, with its defaults for
    the other fields), so each rule is written once, in the record."""
    for name, field in fields.items():

        def check(value, field=field):
            if value is None:
                return True
            try:
                record_type(**{field: value})
            except (TypeError, ValueError) as error:
                raise flags.ValidationError(str(error)) from None
            return True

        flags.register_validator(name, check, flag_values=flag_values)


def positive(name: str) -> None:
    require(name, lambda v: v > 0, "must be > 0")


def lock_workdir(workdir: str) -> None:
    """Takes the work directory for this run (one run per work directory)."""
    from netadapt_tf.common import workdir_lock

    workdir_lock.hold(workdir, tool_name(), log=lambda m: print(m, file=sys.stderr))


def define_model_flags() -> None:
    """--model (required), --width_multiplier, --input_size, --num_classes, --num_widths,
    --tie_depthwise."""
    from netadapt_tf import builders  # here: a tool without model flags need not load them

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
    from netadapt_tf import builders

    num_classes = FLAGS.num_classes
    if num_classes is None and FLAGS.model not in builders.DENSE_BUILDERS:
        num_classes = DEFAULT_NUM_CLASSES
    try:
        return builders.build(
            FLAGS.model,
            input_size=FLAGS.input_size,
            num_classes=num_classes,
            width_multiplier=FLAGS.width_multiplier,
            num_widths=FLAGS.num_widths,
            **({"tie_depthwise": True} if FLAGS.tie_depthwise else {}),
        )
    except ValueError as error:  # a flag's value the builder refuses: a usage error
        raise app.UsageError(
            f"--model={FLAGS.model} --input_size={FLAGS.input_size} "
            f"--width_multiplier={FLAGS.width_multiplier}: {error}"
        ) from None


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
