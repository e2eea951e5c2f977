"""Super-network builders, by the names the command-line tools accept.

Every builder takes one value, a common.BuilderOptions (input size, classes, width
multiplier, the search settings, dropout); its module's DEFAULTS holds its own defaults, and
`build(name, **options)` replaces the fields given.
"""

import dataclasses

from netadapt_tf.builders import fastdepth, mobilenet_v1, mobilenet_v2, mobilenet_v3
from netadapt_tf.space.spec import NetworkSpec

# name -> (builder, its default options).
BUILDERS = {
    "mobilenet_v1": (mobilenet_v1.build, mobilenet_v1.DEFAULTS),
    "mobilenet_v2": (mobilenet_v2.build, mobilenet_v2.DEFAULTS),
    "mobilenet_v3_large": (mobilenet_v3.build_large, mobilenet_v3.DEFAULTS),
    "netadaptv2_mobilenet_v3": (mobilenet_v3.build_netadaptv2, mobilenet_v3.DEFAULTS),
    "fastdepth": (fastdepth.build, fastdepth.DEFAULTS),
}
# Builders of dense-prediction networks: no classes (num_classes None), a map as output.
DENSE_BUILDERS = ("fastdepth",)


def build(name: str, **options) -> NetworkSpec:
    """Builds the super-network description `name`, its default options (a BuilderOptions)
    with the fields `options` names replaced."""
    if name not in BUILDERS:
        raise ValueError(f"model: {name!r} is not one of {sorted(BUILDERS)}")
    builder, defaults = BUILDERS[name]
    return builder(dataclasses.replace(defaults, **options))


def rebuild(spec_origin: dict, input_size: int, num_classes: int | None) -> NetworkSpec:
    """Builds again the super-network a spec's `origin` names (e.g. from a checkpoint)."""
    options = dict(spec_origin)
    name = options.pop("builder")
    return build(name, input_size=input_size, num_classes=num_classes, **options)
