"""The training step's recipe both trainers use (netadapt_tf/training/step.py), against
the formulas written out on small numbers."""

import math

import numpy as np
import pytest
import tensorflow as tf

from netadapt_tf.training import step


def _log_softmax(x):
    x = np.asarray(x, np.float64)
    return (
        x
        - x.max(-1, keepdims=True)
        - np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True))
    )


def _ce(target, logits):
    return -(np.asarray(target) * _log_softmax(logits)).sum(-1)


LOGITS = np.array([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]], np.float32)
TEACHER = np.array([[1.0, 0.0, -1.0], [-2.0, 0.5, 1.5]], np.float32)
TARGET = np.eye(3, dtype=np.float32)[[0, 1]]


def test_classification_loss_smoothing_distillation_and_the_teachers_own_loss():
    plain = step.classification_loss(TARGET, LOGITS, 0.0, 3).numpy()
    np.testing.assert_allclose(plain, _ce(TARGET, LOGITS), rtol=1e-5)
    smooth = TARGET * 0.9 + 0.1 / 3
    got = step.classification_loss(TARGET, LOGITS, 0.1, 3).numpy()
    np.testing.assert_allclose(got, _ce(smooth, LOGITS), rtol=1e-5)
    soft = np.exp(_log_softmax(TEACHER))
    got = step.classification_loss(TARGET, LOGITS, 0.1, 3, TEACHER, TEACHER).numpy()
    want = _ce(smooth, LOGITS) + _ce(soft, LOGITS) + _ce(smooth, TEACHER)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_no_gradient_reaches_the_teacher_through_distillation():
    teacher = tf.Variable(TEACHER)
    logits = tf.Variable(LOGITS)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(step.classification_loss(TARGET, logits, 0.0, 3, teacher))
    to_teacher, to_logits = tape.gradient(loss, [teacher, logits])
    assert to_teacher is None and np.abs(to_logits.numpy()).sum() > 0


def test_depth_loss_is_the_replicas_share_of_masked_l1_plus_its_additions():
    depth = np.array([[[1.0], [0.0]], [[2.0], [4.0]]], np.float32)[..., None]  # (2, 2, 1, 1)
    pred = np.full_like(depth, 1.5)
    teacher = np.full_like(depth, 1.0)
    masked = (0.5 + 0.5 + 2.5) / 3  # the valid pixels: depth > 0
    got = float(step.depth_loss(depth, pred, 8))
    assert got == pytest.approx(masked * 2 / 8)
    both = float(step.depth_loss(depth, pred, 8, distill_from=teacher, also=teacher))
    teacher_masked = (0 + 1 + 3) / 3
    assert both == pytest.approx((masked + 0.5 + teacher_masked) * 2 / 8)


def test_weight_decay_and_the_score():
    variables = [tf.Variable([3.0, 4.0]), tf.Variable([[1.0]])]
    assert float(step.with_weight_decay(tf.constant(1.0), 0.0, variables)) == 1.0
    got = float(step.with_weight_decay(tf.constant(1.0), 0.1, variables))
    assert got == pytest.approx(1.0 + 0.1 * (25 + 1) / 2)
    assert float(step.score_sum("classification", [0, 2], LOGITS)) == 2.0
    assert float(step.score_sum("classification", [1, 2], LOGITS)) == 1.0


def test_run_steps_sums_checkpoints_and_stops_on_a_non_finite_loss():
    losses = {0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0}
    saved, seen = [], []
    reached = step.run_steps(
        ["a", "b", "c", "d"],
        0,
        4,
        lambda batch, s: (losses[s], 1.0),
        (0.5, 2.0),
        checkpoint_every=2,
        save=lambda s, sums: saved.append((s, sums)),
        on_step=lambda s, loss: seen.append((s, loss)),
        failed=lambda loss, s: "never",
    )
    assert reached == (4, 10.5, 6.0)
    assert saved == [(2, (3.5, 4.0))]  # not at the end: the caller saves after its log
    assert seen == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]
    with pytest.raises(step.NonFiniteLossError, match="loss nan at step 1"):
        step.run_steps(
            ["a", "b"],
            0,
            2,
            lambda batch, s: (1.0 if s == 0 else math.nan, 0.0),
            (0.0, 0.0),
            checkpoint_every=0,
            save=None,
            on_step=None,
            failed=lambda loss, s: f"loss {loss} at step {s}",
        )
    assert issubclass(step.NonFiniteLossError, FloatingPointError)
