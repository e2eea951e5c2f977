"""The config of `make demo` (tools/demo.py): what it profiles, builds and exports.

The demo walks the NetAdaptV2 pipeline on the paper's initial network at small cost: the
MACs of the full-size search space, then a small super-network of the same design whose
random sub-networks are exported and checked against it. Flags override `seed`; other
fields change here, and the resolved config is written into the work directory.
"""

import dataclasses

from netadapt_tf import builders
from netadapt_tf.spec import NetworkSpec


@dataclasses.dataclass(frozen=True)
class NetworkOptions:
    """A builder and the options the demo sets (the others keep the builder's defaults)."""

    model: str
    input_size: int
    num_classes: int
    width_multiplier: float = 1.0

    def build(self) -> NetworkSpec:
        return builders.build(
            self.model,
            input_size=self.input_size,
            num_classes=self.num_classes,
            width_multiplier=self.width_multiplier,
        )


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """`initial_network` is profiled (full, `num_samples` random, smallest sub-networks);
    `supernet` is built, and `num_exports` random sub-networks of it are exported and
    compared with it on `parity_images` random images."""

    seed: int = 0
    initial_network: NetworkOptions = NetworkOptions("netadaptv2_mobilenet_v3", 224, 1000)
    num_samples: int = 5
    supernet: NetworkOptions = NetworkOptions("netadaptv2_mobilenet_v3", 32, 10, 0.25)
    num_exports: int = 2
    parity_images: int = 4

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def get_config(**overrides) -> DemoConfig:
    """The demo preset, with `overrides` (field=value) applied."""
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(DemoConfig)})
    if unknown:
        raise ValueError(f"demo config: unknown fields {unknown}")
    return dataclasses.replace(DemoConfig(), **overrides)
