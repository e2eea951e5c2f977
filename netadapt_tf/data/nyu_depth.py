"""FastDepth's NYU Depth V2 preprocessing, as tf.data maps of {"image", "depth"} examples.

TFDS `nyu_depth_v2` serves the data FastDepth trained on (its h5 files: image uint8
[480, 640, 3], depth float16 [480, 640] in metres, 0 where not measured). FastDepth's
published preprocessing (dwofk/fast-depth, dataloaders/nyu.py), with its constants here:

- evaluation: resize by 250/480 (to 250x333), centre-crop 228x304, resize to the network's
  input (224x224 in FastDepth: the crop's 4:3 is squeezed to a square);
- training, before the same crop and resize: rotate by an angle uniform in +-5 degrees
  (corners fill with 0, i.e. invalid depth), scale by s uniform in [1, 1.5] and divide the
  depth by s (a nearer-looking scene is a nearer scene), flip horizontally with
  probability 1/2; then colour jitter of the image (brightness, contrast and saturation
  factors uniform in [0.6, 1.4]).

Depth is resampled with nearest neighbour throughout, as FastDepth does (interpolating
across an object edge invents depths that are on neither surface). The image is resampled
bilinearly (FastDepth uses nearest neighbour for it too; bilinear, antialiased shrinking
does not alias the texture). Images are scaled to [0, 1] and not standardized, as in
FastDepth. The jitter applies its three factors in this fixed order (torchvision draws a
random order). Depth values are kept as measured: NYU's Kinect range is about 0.5-10 m, and
the metrics and the loss ignore pixels <= 0.
"""

import math

import tensorflow as tf

from netadapt_tf.data import preprocess

FASTDEPTH_RAW_HEIGHT = 480  # the first resize is by 250 / raw height
RESIZED_HEIGHT = 250
CROP = (228, 304)
SCALE_RANGE = (1.0, 1.5)
ROTATION_DEGREES = 5.0
JITTER = 0.4  # brightness, contrast and saturation factors in [1 - JITTER, 1 + JITTER]
# The paper keeps 2K NYU Depth V2 training images out of training to judge samples on
# (DataConfig.held_out); TFDS's train split has 47,584.
PAPER_HELD_OUT = 2000


def resized_shape(height: int, width: int) -> tuple[int, int]:
    """(250, width scaled alike and truncated), FastDepth's first resize; 480x640 -> 250x333."""
    return RESIZED_HEIGHT, int(width * RESIZED_HEIGHT / height)


def check_raw_shape(dataset: str, height, width) -> None:
    """ValueError when images of this size cannot give FastDepth's 228x304 crop."""
    if height is None or width is None:
        return
    resized = resized_shape(height, width)
    if resized[1] < CROP[1]:
        raise ValueError(
            f"{dataset}: {height}x{width} images resize to {resized[0]}x{resized[1]}, "
            f"narrower than FastDepth's {CROP[0]}x{CROP[1]} crop; the depth pipeline needs "
            "images at least 4:3 wide (NYU Depth V2: 480x640)"
        )


def _centre_crop(image: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """The central height x width; the offset is half the margin rounded half to even, as
    Python's round() in FastDepth (a margin of 29 puts 14 before, 15 after)."""
    shape = tf.shape(image)
    top = tf.cast(tf.round((shape[0] - height) / 2), tf.int32)
    left = tf.cast(tf.round((shape[1] - width) / 2), tf.int32)
    return tf.image.crop_to_bounding_box(image, top, left, height, width)


def _resize_pair(image, depth, shape):
    image = tf.image.resize(image, shape, method="bilinear", antialias=True)
    depth = tf.image.resize(depth, shape, method="nearest")
    return image, depth


def _rotate(image: tf.Tensor, angle: tf.Tensor, interpolation: str) -> tf.Tensor:
    """`image` [h, w, c] rotated by `angle` radians about its centre; 0 outside."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    cy, cx = (shape[0] - 1) / 2, (shape[1] - 1) / 2
    cos, sin = tf.cos(angle), tf.sin(angle)
    # Output pixel (x, y) reads input (cos*(x-cx) - sin*(y-cy) + cx, sin*(x-cx) + cos*(y-cy) + cy).
    transform = tf.stack(
        [cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy, 0.0, 0.0]
    )
    rotated = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=transform[None],
        output_shape=tf.shape(image)[:2],
        fill_value=0.0,
        interpolation=interpolation,
        fill_mode="CONSTANT",
    )
    return rotated[0]


def _gray(image: tf.Tensor) -> tf.Tensor:
    return image if image.shape[-1] == 1 else tf.image.rgb_to_grayscale(image)


def colour_jitter(image: tf.Tensor, factors: tf.Tensor) -> tf.Tensor:
    """Brightness, contrast, saturation by `factors` [3] (1 keeps the image), as PIL's
    ImageEnhance: scale; blend with the mean gray level; blend with the gray image (which
    leaves a one-channel image as it is)."""
    image = tf.clip_by_value(image * factors[0], 0.0, 1.0)
    mean = tf.reduce_mean(_gray(image))
    image = tf.clip_by_value(mean + factors[1] * (image - mean), 0.0, 1.0)
    gray = _gray(image)
    return tf.clip_by_value(gray + factors[2] * (image - gray), 0.0, 1.0)


def depth_maps(size: int, channels: int):
    """(train_map, eval_map) for {"image": uint8 [h, w, 3], "depth": [h, w]} examples; both
    return (image float32 [size, size, channels] in [0, 1], depth float32 [size, size, 1])."""

    def decode(raw):
        image = preprocess.to_unit_float(raw["image"])
        depth = tf.cast(raw["depth"], tf.float32)[..., None]
        shape = tf.shape(depth)
        width = tf.cast(shape[1] * RESIZED_HEIGHT / shape[0], tf.int32)  # 640 -> 333
        return _resize_pair(image, depth, tf.stack([RESIZED_HEIGHT, width]))

    def finish(image, depth, jitter=None):
        image, depth = _resize_pair(image, depth, (size, size))
        if jitter is not None:
            image = colour_jitter(image, jitter)
        image = preprocess.match_channels(image, channels)
        image = tf.ensure_shape(image, (size, size, channels))
        return image, tf.ensure_shape(depth, (size, size, 1))

    def eval_map(raw):
        image, depth = decode(raw)
        return finish(_centre_crop(image, *CROP), _centre_crop(depth, *CROP))

    def train_map(raw, seed):
        seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
        scale = tf.random.stateless_uniform([], seeds[0], *SCALE_RANGE)
        limit = math.radians(ROTATION_DEGREES)
        angle = tf.random.stateless_uniform([], seeds[1], -limit, limit)
        flip = tf.random.stateless_uniform([], seeds[2]) < 0.5
        factors = tf.random.stateless_uniform([3], seeds[3], 1 - JITTER, 1 + JITTER)
        image, depth = decode(raw)
        image, depth = _rotate(image, angle, "BILINEAR"), _rotate(depth, angle, "NEAREST")
        # FastDepth's resizes truncate the scaled size (scipy's imresize).
        shape = tf.cast(tf.cast(tf.shape(depth)[:2], tf.float32) * scale, tf.int32)
        image, depth = _resize_pair(image, depth, shape)
        image, depth = _centre_crop(image, *CROP), _centre_crop(depth, *CROP)
        image = tf.cond(flip, lambda: tf.reverse(image, [1]), lambda: image)
        depth = tf.cond(flip, lambda: tf.reverse(depth, [1]), lambda: depth)
        return finish(image, depth / scale, factors)

    return train_map, eval_map
