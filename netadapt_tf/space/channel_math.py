"""The arithmetic of ordered dropout, channel-level bypass and the superkernel.

Small pure functions shared by the super-network layers (on per-example tensors) and by the
exporter and the MAC counter (on Python ints), so that training, evaluation and the exported
model agree by construction.

Terms (paper, Sec. 2.2): a layer has C input channels, T (the bypass limit) and M kept filters.
Its output has Z = max(min(C, T), M) channels: channel i is filter i when i < M, else input
channel i when i < min(C, T) (the bypass).
"""

import math

import numpy as np
import tensorflow as tf


def _is_tensor(*values):
    return any(tf.is_tensor(v) for v in values)


def bypass_limit_channels(in_channels, bypass_limit):
    """min(C, T): how many input channels may be bypassed. T may be math.inf."""
    if _is_tensor(in_channels):
        if math.isinf(bypass_limit):
            return in_channels
        return tf.minimum(in_channels, tf.cast(bypass_limit, in_channels.dtype))
    return int(min(in_channels, bypass_limit))


def bypass_output_width(in_channels, bypass_limit, width):
    """Z = max(min(C, T), M), the number of output channels of a layer with bypass."""
    limit = bypass_limit_channels(in_channels, bypass_limit)
    if _is_tensor(limit, width):
        return tf.maximum(limit, width)
    return max(limit, int(width))


def depthwise_width(width, in_channels):
    """Depthwise filters beyond the input channels do not exist: min(M, C)."""
    if _is_tensor(width, in_channels):
        return tf.minimum(width, in_channels)
    return min(int(width), int(in_channels))


def residual_output_width(in_channels, branch_channels):
    """A residual add of tensors of different widths pads the narrower with zeros."""
    if _is_tensor(in_channels, branch_channels):
        return tf.maximum(in_channels, branch_channels)
    return max(int(in_channels), int(branch_channels))


def ordered_mask(width, size, dtype=tf.float32):
    """Per-example mask keeping the first `width` of `size` channels.

    width: int tensor of shape [batch]. Returns [batch, size] of 0/1 in `dtype`.
    """
    width = tf.convert_to_tensor(width)
    channels = tf.range(size, dtype=width.dtype)
    return tf.cast(channels[None, :] < width[:, None], dtype)


def bypass_mask(width, limit, size, dtype=tf.float32):
    """Per-example mask of the bypassed channels [width, limit): the complement of the
    ordered-dropout mask, restricted to the input channels that may be bypassed."""
    width = tf.convert_to_tensor(width)
    limit = tf.cast(tf.convert_to_tensor(limit), width.dtype)
    channels = tf.range(size, dtype=width.dtype)[None, :]
    keep = (channels >= width[:, None]) & (channels < limit[:, None])
    return tf.cast(keep, dtype)


def superkernel_offset(full_size, kernel_size):
    """Start index of the centred kernel_size x kernel_size window of a full_size kernel."""
    if kernel_size % 2 != 1 or full_size % 2 != 1 or kernel_size > full_size:
        raise ValueError(
            f"kernel_size: {kernel_size} cannot be cut from the centre of a {full_size}x"
            f"{full_size} kernel; allowed are odd sizes from 1 to {full_size}"
        )
    return (full_size - kernel_size) // 2


def superkernel_crop(kernel, kernel_size):
    """The centred kernel_size x kernel_size window of a [K, K, ...] kernel (numpy or tf)."""
    start = superkernel_offset(int(kernel.shape[0]), kernel_size)
    stop = start + kernel_size
    return kernel[start:stop, start:stop]


def pad_channels(x, size):
    """Zero-pads the last axis of x to `size` channels (numpy or tf)."""
    extra = size - int(x.shape[-1])
    if extra < 0:
        raise ValueError(f"pad_channels: tensor has {x.shape[-1]} channels, more than {size}")
    if extra == 0:
        return x
    paddings = [[0, 0]] * (len(x.shape) - 1) + [[0, extra]]
    if tf.is_tensor(x):
        return tf.pad(x, paddings)
    return np.pad(x, paddings)
