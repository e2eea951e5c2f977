"""MACs and parameters of a sub-network, read from the architecture description.

Counted: multiply-accumulates of convolutions, depthwise convolutions, the two fully
connected layers of SE gates and fc layers. Not counted: batch normalization (folded into
the preceding convolution, which then has one bias per filter), activations, the SE
multiplication, residual adds and bypassed channels (they cost no arithmetic).
"""

import dataclasses

from netadapt_tf.space.arch import Arch
from netadapt_tf.space.spec import NetworkSpec
from netadapt_tf.space.subnet import ResolvedLayer, resolve


@dataclasses.dataclass(frozen=True)
class Counts:
    macs: int
    params: int

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(self.macs + other.macs, self.params + other.params)


def layer_counts(r: ResolvedLayer) -> Counts:
    """MACs and BN-folded parameters of one resolved layer (zero when it keeps no filter)."""
    spec, c, m, k = r.spec, r.in_channels, r.width, r.kernel_size
    if m == 0:
        return Counts(0, 0)
    has_bias = spec.batch_norm or spec.use_bias
    pixels = r.out_size * r.out_size
    if spec.kind == "depthwise":
        return Counts(pixels * k * k * m, k * k * m + (m if has_bias else 0))
    if spec.kind == "se":
        # squeeze (C -> S) and excite (S -> C), both with bias, on the pooled vector
        return Counts(2 * c * m, 2 * c * m + m + c)
    weights = k * k * c * m
    return Counts(pixels * weights, weights + (m if has_bias else 0))


def count(spec: NetworkSpec, arch: Arch) -> Counts:
    """Total MACs and parameters of the sub-network `arch` (removed blocks cost nothing)."""
    total = Counts(0, 0)
    for layer in resolve(spec, arch).layers():
        total += layer_counts(layer)
    return total
