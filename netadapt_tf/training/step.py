"""The training step's recipe, written once for both trainers: the super-network's
(training/supernet_trainer.py) and a discovered or compared network's
(discovered/trainer.py).

- the loss: cross-entropy with label smoothing, plus learning a teacher's soft outputs
  (distillation: in-place from the full network, or from a trained teacher) and the
  teacher's own loss when the step trains it too; for depth, the masked L1 with the same
  two additions (`classification_loss`, `depth_loss`);
- l2 weight decay of the kernels (`kernels`, `with_weight_decay`);
- the score a step sums: top-1 hits or per-image delta1 (`score_sum`);
- one step summed over the replicas of a tf.distribute strategy (`replicas_sum`);
- the loop over a run's steps: the non-finite loss check, the (loss, score) sums of the
  epoch, a checkpoint every so many steps (`run_steps`, `NonFiniteLossError`).

Each trainer keeps what is its own: the super-network its sampled widths and the rows of
the full network, the discovered trainer its phases and teacher model.
"""

import math

import keras
import tensorflow as tf

from netadapt_tf.depth import distillation_l1, masked_l1, per_image_metrics


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the last checkpoint is kept."""


def classification_loss(
    target, logits, label_smoothing: float, num_classes: int, distill_from=None, also=None
):
    """Cross-entropy per example against one-hot `target` of `num_classes` classes
    (smoothed by `label_smoothing`),
    plus the cross-entropy to the soft outputs of `distill_from` (teacher logits, no
    gradient through them) and the teacher's own cross-entropy (`also`: its logits) when
    given."""
    if label_smoothing:
        target = target * (1 - label_smoothing) + label_smoothing / num_classes
    per_example = keras.losses.categorical_crossentropy(target, logits, from_logits=True)
    if distill_from is not None:
        soft = tf.stop_gradient(tf.nn.softmax(distill_from))
        per_example += keras.losses.categorical_crossentropy(soft, logits, from_logits=True)
    if also is not None:
        per_example += keras.losses.categorical_crossentropy(target, also, from_logits=True)
    return per_example


def depth_loss(depth, prediction, global_batch_size: int, distill_from=None, also=None):
    """The replica's share of the global depth loss: masked L1 on the valid pixels (the
    mean over this replica's batch, weighted by its part of the global batch), plus the L1
    to `distill_from`'s depth map over every pixel and the masked L1 of `also` (the
    teacher's own prediction) when given."""
    loss = masked_l1(depth, prediction)
    if distill_from is not None:
        loss += distillation_l1(distill_from, prediction)
    if also is not None:
        loss += masked_l1(depth, also)
    share = tf.cast(tf.shape(prediction)[0], tf.float32) / global_batch_size
    return loss * share


def kernels(model) -> list:
    """The variables weight decay applies to: every trainable kernel."""
    return [v for v in model.trainable_variables if "kernel" in v.path]


def with_weight_decay(loss, weight_decay: float, decayed: list):
    """`loss` plus this replica's share of the l2 weight decay of `decayed`."""
    if not weight_decay:
        return loss
    l2 = weight_decay * tf.add_n([tf.nn.l2_loss(v) for v in decayed])
    return loss + tf.nn.scale_regularization_loss(l2)


def score_sum(task: str, labels, outputs):
    """The batch's sum of the monitored score: top-1 hits against integer `labels`
    (classification) or per-image delta1 against depth maps."""
    if task == "depth":
        metrics, _ = per_image_metrics(outputs, labels)
        return tf.reduce_sum(metrics[:, 1])
    predicted = tf.argmax(outputs, -1, output_type=tf.int32)
    return tf.reduce_sum(tf.cast(tf.equal(predicted, tf.cast(labels, tf.int32)), tf.float32))


def replicas_sum(strategy, replica_step, args: tuple):
    """(loss, score) of `replica_step(*args)` on every replica, summed across them."""
    loss, score = strategy.run(replica_step, args=args)
    total = tf.distribute.ReduceOp.SUM
    return strategy.reduce(total, loss, None), strategy.reduce(total, score, None)


def run_steps(
    batches, step: int, end: int, run_step, sums, *, checkpoint_every, save, on_step, failed
):
    """Runs `run_step(batch, step)` -> (loss, score) over `batches` from `step`, an epoch
    that ends at step `end`, whose earlier steps have the (loss, score) sums `sums`; returns
    (the step reached, the epoch's loss sum, its score sum).

    A non-finite loss raises NonFiniteLossError with `failed(loss, step)` as its message.
    Every `checkpoint_every` steps (0: never) before `end`, `save(step, sums)` (the end
    saves after its log line); after each step `on_step(step, loss)` when given."""
    loss_sum, score = sums
    for batch in batches:
        loss, hits = run_step(batch, step)
        loss = float(loss)
        if not math.isfinite(loss):
            raise NonFiniteLossError(failed(loss, step))
        step += 1
        loss_sum, score = loss_sum + loss, score + float(hits)
        if checkpoint_every and step % checkpoint_every == 0 and step < end:
            save(step, (loss_sum, score))
        if on_step is not None:
            on_step(step, loss)
    return step, loss_sum, score
