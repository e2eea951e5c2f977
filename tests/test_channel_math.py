"""The pure arithmetic of channel bypass, ordered dropout and the superkernel."""

import math

import numpy as np
import pytest
import tensorflow as tf

from netadapt_tf.space import channel_math as cm


@pytest.mark.parametrize(
    "c, t, m, z",
    [
        # Fig. 3 (a) case 1, C = T = 4: Z stays 4 while filters are removed.
        (4, 4, 4, 4),
        (4, 4, 2, 4),
        (4, 4, 0, 4),
        # (b) case 2, C = 4 < T = 6: no bypass until M < C.
        (4, 6, 6, 6),
        (4, 6, 5, 5),
        (4, 6, 1, 4),
        # (c) case 3, C = 4 > T = 2: only T channels can be bypassed.
        (4, 2, 2, 2),
        (4, 2, 0, 2),
        # (d) case 4 (C = 4, T = 2, four filters): a bottleneck forms.
        (4, 2, 4, 4),
        (4, 2, 3, 3),
        (4, 2, 1, 2),
        # T = infinity (depthwise layers) and T = 0 (no bypass).
        (4, math.inf, 0, 4),
        (4, 0, 3, 3),
    ],
)
def test_bypass_output_width_follows_the_paper(c, t, m, z):
    assert cm.bypass_output_width(c, t, m) == z
    got = cm.bypass_output_width(tf.constant([c]), t, tf.constant([m]))
    assert got.numpy().tolist() == [z]


def test_ordered_mask_keeps_the_first_channels_per_example():
    mask = cm.ordered_mask(tf.constant([0, 2, 5]), 4).numpy()
    np.testing.assert_array_equal(mask, [[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]])


def test_bypass_mask_is_the_complement_within_the_limit():
    width = tf.constant([1, 3, 0])
    limit = tf.constant([3, 3, 2])
    got = cm.bypass_mask(width, limit, 4).numpy()
    np.testing.assert_array_equal(got, [[0, 1, 1, 0], [0, 0, 0, 0], [1, 1, 0, 0]])
    keep = cm.ordered_mask(width, 4).numpy()
    assert np.all(keep * got == 0)


def test_depthwise_and_residual_widths():
    assert cm.depthwise_width(12, 8) == 8
    assert cm.depthwise_width(4, 8) == 4
    assert cm.residual_output_width(16, 8) == 16
    assert cm.residual_output_width(tf.constant([8]), tf.constant([16])).numpy().tolist() == [16]


def test_superkernel_crop_takes_the_centre():
    kernel = np.arange(49).reshape(7, 7)
    np.testing.assert_array_equal(cm.superkernel_crop(kernel, 3), kernel[2:5, 2:5])
    np.testing.assert_array_equal(cm.superkernel_crop(kernel, 7), kernel)
    np.testing.assert_array_equal(cm.superkernel_crop(tf.constant(kernel), 5), kernel[1:6, 1:6])


@pytest.mark.parametrize("k", [2, 9, 0])
def test_superkernel_crop_rejects_even_or_too_large_sizes(k):
    with pytest.raises(ValueError, match=rf"kernel_size: {k} cannot be cut .* 7x7 kernel"):
        cm.superkernel_crop(np.zeros((7, 7)), k)


def test_pad_channels_numpy_and_tensor():
    x = np.ones((2, 3))
    np.testing.assert_array_equal(cm.pad_channels(x, 5)[:, 3:], 0)
    assert cm.pad_channels(tf.ones((1, 2, 2, 3)), 4).shape == (1, 2, 2, 4)
    with pytest.raises(ValueError, match="more than 2"):
        cm.pad_channels(x, 2)
