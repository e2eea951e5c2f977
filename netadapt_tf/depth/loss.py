"""The depth training loss: L1 on the pixels whose ground truth is valid, and the L1 of
in-place distillation (a sub-network learning the full network's depth map).

FastDepth trains with the mean absolute error over the valid pixels (ground truth > 0) of a
batch; pixels the sensor did not measure (0, or the zero fill of a rotation in the NYU
training augmentation) carry no target and add nothing to the loss or its gradient.
"""

import tensorflow as tf


def masked_l1(depth, prediction) -> tf.Tensor:
    """Mean |prediction - depth| over the valid pixels (depth > 0) of the whole batch, a
    float32 scalar; 0 for a batch without a valid pixel. Keras's (y_true, y_pred) order."""
    depth = tf.convert_to_tensor(depth)
    prediction = tf.convert_to_tensor(prediction)
    if not prediction.shape.is_compatible_with(depth.shape):
        raise ValueError(
            f"masked_l1: prediction shape {prediction.shape} differs from the depth shape "
            f"{depth.shape}; a depth network predicts one value per ground-truth pixel"
        )
    depth = tf.cast(depth, tf.float32)
    prediction = tf.cast(prediction, tf.float32)
    valid = depth > 0
    # where() before the sum: an invalid pixel's gradient is exactly 0, not 0 * something.
    errors = tf.where(valid, tf.abs(prediction - depth), 0.0)
    count = tf.reduce_sum(tf.cast(valid, tf.float32))
    return tf.math.divide_no_nan(tf.reduce_sum(errors), count)


def distillation_l1(teacher, prediction) -> tf.Tensor:
    """Mean |prediction - teacher| over every pixel of the batch, the teacher held constant
    (no gradient reaches it): in-place distillation of a depth map. Every pixel counts,
    since the teacher predicts where the sensor measured nothing too."""
    teacher = tf.convert_to_tensor(teacher)
    prediction = tf.convert_to_tensor(prediction)
    if not prediction.shape.is_compatible_with(teacher.shape):
        raise ValueError(
            f"distillation_l1: prediction shape {prediction.shape} differs from the teacher's "
            f"{teacher.shape}; both are the depth maps of one batch"
        )
    teacher = tf.stop_gradient(tf.cast(teacher, tf.float32))
    return tf.reduce_mean(tf.abs(tf.cast(prediction, tf.float32) - teacher))
