"""Ordered-dropout sampling: which sub-network each image of a batch trains.

For every layer, each allowed width is given to about the same number of images (counts
differ by at most one per replica batch, paper Sec. 2.3); kernel sizes of superkernel layers
likewise. How the draws of different layers relate is `SamplingConfig.width_correlation`:
0 is the paper's independent draw per layer; towards 1 an image gets one width fraction for
every layer (a near-uniform sub-network), with `free_layer_probability` of its layers drawn
on their own. Correlation never breaks the balance: every layer ranks the images by a
per-image key and hands the balanced widths out in that order, so only which images share
narrow layers changes (measured in docs/training.md: at small budgets the independent draw
leaves nearly every image's sub-network with a bottleneck somewhere, and nothing learns).
The bypass paths need no sampling: their masks are the complement of the ordered-dropout
masks (layers.ChannelBypass). Layers tied by a skip (NetworkSpec.tie_groups) get the width
column of the first layer of their group, so every image trains a valid sub-network.
Sampling runs in the graph with stateless random ops seeded by (seed, step, replica), so a
resumed run draws the same sub-networks and every replica draws its own.

Optionally the widths on offer can be limited to those at least `min_fraction` of the full
width (progressive shrinking, TrainConfig.progressive_shrinking in training/supernet_trainer.py):
balance then holds over the widths on offer. At small training budgets uniform ordered
dropout over the whole range from the start does not learn at all (measured in
docs/training.md).
"""

import dataclasses

import numpy as np
import tensorflow as tf

from netadapt_tf.space.spec import NetworkSpec


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    """sandwich: example 0 always trains the full and example 1 the smallest sub-network
    (the rest stay balanced).

    width_correlation (rho in [0, 1]): each image draws a key z ~ N(0, 1) shared by its
    layers, and layer j ranks the images by sqrt(rho) z + sqrt(1 - rho) e_j (e_j ~ N(0, 1) of
    its own); the widest widths go to the highest keys. 0: the paper's independent draw per
    layer; 1: one width fraction per image. free_layer_probability: each (image, layer)
    ranks by an independent key instead, so near-uniform sub-networks get some layers much
    narrower or wider than the rest, as the archs a coordinate-descent search makes.
    Kernel sizes follow the same keys (their own free draws).
    """

    sandwich: bool = False
    width_correlation: float = 0.0
    free_layer_probability: float = 0.0

    def __post_init__(self):
        for name in ("width_correlation", "free_layer_probability"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"sampling.{name}: {value!r} is not a number")
            if not 0 <= value <= 1:
                raise ValueError(f"sampling.{name}: {value!r} must be in [0, 1]")

    @property
    def independent(self) -> bool:
        """The paper's draw: every layer on its own."""
        return self.width_correlation == 0


def balanced_indices(num_options, batch_size, seed) -> tf.Tensor:
    """[batch_size] option indices in random order, each option used floor or ceil of
    batch_size / num_options times; which options get the extra one is random too.
    num_options may be a scalar int32 tensor."""
    seed = tf.cast(seed, tf.int64)
    fold = tf.random.experimental.stateless_fold_in
    offset = tf.random.stateless_uniform(
        [], seed=fold(seed, 0), minval=0, maxval=num_options, dtype=tf.int32
    )
    slots = (tf.range(batch_size, dtype=tf.int32) + offset) % num_options
    order = tf.argsort(tf.random.stateless_uniform([batch_size], seed=fold(seed, 1)))
    return tf.gather(slots, order)


class OrderedDropoutSampler:
    """Draws the `widths` and `kernel_sizes` super-network inputs for a batch."""

    def __init__(self, spec: NetworkSpec, config: SamplingConfig = SamplingConfig()):
        self.spec = spec
        self.config = config
        layers = list(spec.layers())
        self._widths = [tf.constant(layer.widths, tf.int32) for layer in layers]
        self._kernels = [tf.constant(layer.kernel_sizes, tf.int32) for layer in layers]
        self._full = tf.constant([[layer.widths[-1] for layer in layers]], tf.int32)
        self._smallest = tf.constant([[layer.widths[0] for layer in layers]], tf.int32)
        self._full_k = tf.constant([[layer.kernel_sizes[-1] for layer in layers]], tf.int32)
        self._small_k = tf.constant([[layer.kernel_sizes[0] for layer in layers]], tf.int32)
        column = {layer.name: j for j, layer in enumerate(layers)}
        self._tied_to = {
            column[name]: column[group[0]] for group in spec.tie_groups() for name in group[1:]
        }

    def _column(self, options, batch_size, seed, min_fraction=None, key=None):
        """One layer's options for `batch_size` images, balanced. With `key` ([batch]),
        the images with higher keys get the larger options."""
        count = options.shape[0]
        if count == 1:
            return tf.fill([batch_size], options[0])
        offered = count
        if min_fraction is not None:
            # Options are increasing, so the ones on offer are the last `offered`.
            floor = tf.cast(min_fraction, tf.float32) * tf.cast(options[-1], tf.float32)
            above = tf.cast(options, tf.float32) >= floor - 1e-6
            offered = tf.maximum(tf.reduce_sum(tf.cast(above, tf.int32)), 1)
        picks = balanced_indices(offered, batch_size, seed)
        if key is not None:  # the k-th lowest key gets the k-th smallest balanced pick
            rank = tf.argsort(tf.argsort(key))
            picks = tf.gather(tf.sort(picks), rank)
        return tf.gather(options, picks + (count - offered))

    def _keys(self, n, seed, stream):
        """Per-layer ranking keys [n] of the correlated draw, or None (independent)."""
        config = self.config
        if config.independent:
            return None
        fold = tf.random.experimental.stateless_fold_in
        normal = tf.random.stateless_normal
        rho = config.width_correlation
        image = normal([n], seed=fold(seed, -1))  # shared by the image's layers
        own = normal([n], seed=fold(seed, stream))
        key = np.sqrt(rho) * image + np.sqrt(1 - rho) * own
        if config.free_layer_probability:
            free = tf.random.stateless_uniform([n], seed=fold(seed, -2 - stream))
            alone = normal([n], seed=fold(seed, 2**20 + stream))
            key = tf.where(free < config.free_layer_probability, alone, key)
        return key

    def sample(self, batch_size, seed, min_fraction=None) -> dict[str, tf.Tensor]:
        """seed: int64 [2] (e.g. (run seed, step * replicas + replica)). min_fraction
        (scalar, optional): offer only widths >= min_fraction x the full width; kernel sizes
        are not limited."""
        seed = tf.cast(seed, tf.int64)
        n = batch_size - 2 if self.config.sandwich else batch_size
        widths, kernels = [], []
        fold = tf.random.experimental.stateless_fold_in
        for j, (w, k) in enumerate(zip(self._widths, self._kernels, strict=True)):
            widths.append(
                self._column(w, n, fold(seed, 2 * j), min_fraction, self._keys(n, seed, 2 * j))
            )
            kernels.append(
                self._column(k, n, fold(seed, 2 * j + 1), key=self._keys(n, seed, 2 * j + 1))
            )
        for j, first in self._tied_to.items():
            widths[j] = widths[first]
        widths = tf.stack(widths, axis=1)
        kernels = tf.stack(kernels, axis=1)
        if self.config.sandwich:
            widths = tf.concat([self._full, self._smallest, widths], axis=0)
            kernels = tf.concat([self._full_k, self._small_k, kernels], axis=0)
        return {"widths": widths, "kernel_sizes": kernels}


def replica_seed(run_seed: int, step, num_replicas: int | None = None):
    """A distinct sampling seed per (step, replica), the same after a resume."""
    ctx = tf.distribute.get_replica_context()
    replicas = num_replicas or (1 if ctx is None else ctx.num_replicas_in_sync)
    replica = 0 if ctx is None or replicas == 1 else ctx.replica_id_in_sync_group
    stream = tf.cast(step, tf.int64) * replicas + tf.cast(replica, tf.int64)
    return tf.stack([tf.constant(run_seed, tf.int64), stream])


def replica_rows(sampler, batch, run_seed: int, step, min_fraction=None) -> dict:
    """This replica's share of a step's sub-networks: the rows are drawn for the global
    batch (`batch` examples per replica) from a seed of (run, step) alone, and replica r
    takes rows [r * batch, (r + 1) * batch), the examples tf.distribute gives it. So a step
    trains the same sub-networks on the same images whatever the number of replicas (one
    replica per CPU core, or one per GPU), and a resumed run draws them again."""
    ctx = tf.distribute.get_replica_context()
    replicas = 1 if ctx is None else ctx.num_replicas_in_sync
    rows = sampler.sample(batch * replicas, replica_seed(run_seed, step, 1), min_fraction)
    if replicas == 1:
        return rows
    start = tf.cast(ctx.replica_id_in_sync_group, tf.int32) * batch
    return {k: v[start : start + batch] for k, v in rows.items()}


def shrinking_floor(step, total_steps: int, fraction: float):
    """Progressive shrinking: the smallest width on offer, as a fraction of the full width,
    falls linearly from 1 (only the full network) at step 0 to 0 (every width) after
    `fraction` of the training steps; None when off (fraction 0)."""
    if not fraction:
        return None
    span = max(1.0, fraction * total_steps)
    return tf.clip_by_value(1.0 - tf.cast(step, tf.float32) / span, 0.0, 1.0)


def width_counts(widths: np.ndarray, options) -> np.ndarray:
    """How many examples got each option (for checks and logs)."""
    return np.array([(np.asarray(widths) == o).sum() for o in options])
