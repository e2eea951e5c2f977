"""Ordered-dropout sampling: which sub-network each image of a batch trains.

For every layer, each allowed width is given to about the same number of images (counts
differ by at most one per replica batch, paper Sec. 2.3), independently across layers; kernel
sizes of superkernel layers likewise. The bypass paths need no sampling: their masks are the
complement of the ordered-dropout masks (layers.ChannelBypass). Sampling runs in the graph
with stateless random ops seeded by (seed, step, replica), so a resumed run draws the same
sub-networks and every replica draws its own.

Optionally the widths on offer can be limited to those at least `min_fraction` of the full
width (progressive shrinking, training.TrainConfig.progressive_shrinking): balance then holds
over the widths on offer. At small training budgets uniform ordered dropout over the whole
range from the start does not learn at all (measured in docs/training.md).
"""

import dataclasses

import numpy as np
import tensorflow as tf

from netadapt_tf.spec import NetworkSpec


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    """sandwich: example 0 always trains the full and example 1 the smallest sub-network
    (the rest stay balanced)."""

    sandwich: bool = False


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

    def _column(self, options, batch_size, seed, min_fraction=None):
        count = options.shape[0]
        if count == 1:
            return tf.fill([batch_size], options[0])
        if min_fraction is None:
            return tf.gather(options, balanced_indices(count, batch_size, seed))
        # Options are increasing, so the ones on offer are the last `offered`.
        floor = tf.cast(min_fraction, tf.float32) * tf.cast(options[-1], tf.float32)
        offered = tf.reduce_sum(tf.cast(tf.cast(options, tf.float32) >= floor - 1e-6, tf.int32))
        offered = tf.maximum(offered, 1)
        picks = balanced_indices(offered, batch_size, seed) + (count - offered)
        return tf.gather(options, picks)

    def sample(self, batch_size, seed, min_fraction=None) -> dict[str, tf.Tensor]:
        """seed: int64 [2] (e.g. (run seed, step * replicas + replica)). min_fraction
        (scalar, optional): offer only widths >= min_fraction x the full width; kernel sizes
        are not limited."""
        seed = tf.cast(seed, tf.int64)
        n = batch_size - 2 if self.config.sandwich else batch_size
        widths, kernels = [], []
        for j, (w, k) in enumerate(zip(self._widths, self._kernels, strict=True)):
            fold = tf.random.experimental.stateless_fold_in
            widths.append(self._column(w, n, fold(seed, 2 * j), min_fraction))
            kernels.append(self._column(k, n, fold(seed, 2 * j + 1)))
        widths = tf.stack(widths, axis=1)
        kernels = tf.stack(kernels, axis=1)
        if self.config.sandwich:
            widths = tf.concat([self._full, self._smallest, widths], axis=0)
            kernels = tf.concat([self._full_k, self._small_k, kernels], axis=0)
        return {"widths": widths, "kernel_sizes": kernels}


def replica_seed(run_seed: int, step, num_replicas: int | None = None):
    """A distinct sampling seed per (step, replica), the same after a resume."""
    ctx = tf.distribute.get_replica_context()
    replica = 0 if ctx is None else ctx.replica_id_in_sync_group
    replicas = num_replicas or (1 if ctx is None else ctx.num_replicas_in_sync)
    stream = tf.cast(step, tf.int64) * replicas + tf.cast(replica, tf.int64)
    return tf.stack([tf.constant(run_seed, tf.int64), stream])


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
