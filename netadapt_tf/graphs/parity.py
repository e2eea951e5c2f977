"""Does an exported sub-network compute what the masked super-network computes?

Both run on the same random images (fixed seed) in inference mode. The absolute tolerance is
the project's parity bar. It is paired with a relative one because an untrained
super-network's outputs can be tiny (about 1e-10 for freshly initialized MobileNets, whose
activations shrink layer by layer), and then any absolute bar passes whatever the export did.
"""

import dataclasses
import math

import keras
import numpy as np

from netadapt_tf.graphs.export import max_abs_diff
from netadapt_tf.space.arch import Arch
from netadapt_tf.supernet.network import SuperNetwork

ABS_TOLERANCE = 1e-4
REL_TOLERANCE = 1e-3


@dataclasses.dataclass(frozen=True)
class Parity:
    """`max_abs_diff` between the two models' outputs; `max_abs_output` the exported model's
    largest output magnitude, the scale the difference should be read against."""

    max_abs_diff: float
    max_abs_output: float

    @property
    def relative_diff(self) -> float:
        if self.max_abs_output > 0:
            return self.max_abs_diff / self.max_abs_output
        return 0.0 if self.max_abs_diff == 0 else math.inf

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= ABS_TOLERANCE and self.relative_diff <= REL_TOLERANCE

    def describe(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        return (
            f"max_abs_diff {self.max_abs_diff:.3g} (tolerance {ABS_TOLERANCE:g}), largest "
            f"output {self.max_abs_output:.3g}, relative {self.relative_diff:.3g} "
            f"(tolerance {REL_TOLERANCE:g}): {verdict}"
        )

    def to_json(self) -> dict:
        return {
            "max_abs_diff": self.max_abs_diff,
            "max_abs_output": self.max_abs_output,
            "relative_diff": self.relative_diff,
            "ok": self.ok,
        }


def random_images(shape: tuple[int, int, int], count: int, seed: int) -> np.ndarray:
    """`count` standard-normal images of `shape` (H, W, C), float32, from default_rng(seed)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((count, *shape)).astype(np.float32)


def check_export(
    supernet: SuperNetwork, model: keras.Model, arch: Arch, num_images: int = 4, seed: int = 0
) -> Parity:
    """Compares `model` (exported for `arch`) with `supernet` masked to `arch`."""
    spec = supernet.spec
    images = random_images(
        (spec.input_size, spec.input_size, spec.input_channels), num_images, seed
    )
    diff = max_abs_diff(supernet, model, arch, images)
    scale = float(np.max(np.abs(np.asarray(model(images, training=False)))))
    return Parity(max_abs_diff=diff, max_abs_output=scale)
