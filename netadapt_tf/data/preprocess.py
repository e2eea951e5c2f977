"""Image operations shared by the sources: scaling, channels, fitting to size, augmentation.

All ops are TensorFlow ops that run inside `tf.data` maps. Randomness is stateless: every
random op takes an explicit seed tensor [2], which the pipeline draws from a seeded
`tf.data.Dataset.random`, so augmentation is reproducible and free of hidden op state.
"""

import tensorflow as tf

# The ImageNet evaluation crop keeps image_size / (image_size + 32) of the shorter side
# (0.875 at 224), as in the reference ImageNet input pipelines.
CROP_PADDING = 32


def to_unit_float(image: tf.Tensor) -> tf.Tensor:
    """uint8 [0, 255] -> float32 [0, 1], as value / 255 (correctly rounded, like numpy)."""
    return tf.cast(image, tf.float32) / 255.0


def match_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """Gray -> RGB by repetition, RGB -> gray by luma; the channel count must be static."""
    have = image.shape[-1]
    if have == channels:
        return image
    if have == 1 and channels == 3:
        return tf.repeat(image, 3, axis=-1)
    if have == 3 and channels == 1:
        return tf.image.rgb_to_grayscale(image)
    raise ValueError(f"images with {have} channels cannot be converted to {channels}")


def check_fixed_size(dataset: str, height: int, width: int, size: int, fit: str) -> None:
    """Fail before training when zero padding would have to crop a fixed-size image."""
    if fit == "pad" and (height > size or width > size):
        raise ValueError(
            f"DataConfig.image_size: {size} is smaller than the {height}x{width} images of "
            f"{dataset}, and fit='pad' never crops; use fit='crop_or_pad' (centre crop) or "
            "fit='resize', or a larger image_size"
        )


def pad_to_size(image: tf.Tensor, size: int) -> tf.Tensor:
    """Zero-pad around the centre to size x size; the original pixels stay exact."""
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    return tf.image.pad_to_bounding_box(
        image, (size - height) // 2, (size - width) // 2, size, size
    )


def resize_and_centre_crop(image: tf.Tensor, size: int, method: str = "bilinear") -> tf.Tensor:
    """Scale the shorter side to `size` (aspect kept) and cut the central size x size."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = size / tf.reduce_min(shape)
    # ceil keeps both sides >= size despite float rounding.
    new_shape = tf.cast(tf.math.ceil(shape * scale), tf.int32)
    image = tf.image.resize(image, new_shape, method=method, antialias=method == "bilinear")
    return tf.image.resize_with_crop_or_pad(image, size, size)


def fit_image(image: tf.Tensor, size: int, fit: str) -> tf.Tensor:
    """A float image brought to size x size by `fit` ("pad", "crop_or_pad" or "resize")."""
    if fit == "pad":
        image = pad_to_size(image, size)
    elif fit == "crop_or_pad":
        image = tf.image.resize_with_crop_or_pad(image, size, size)
    elif fit == "resize":
        image = resize_and_centre_crop(image, size)
    else:
        raise ValueError(f"fit: {fit!r} is not one of 'pad', 'crop_or_pad', 'resize'")
    return tf.ensure_shape(image, (size, size, image.shape[-1]))


def flip_and_shift(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Random horizontal flip and a random shift of up to 1/8 of the side (zeros fill in)."""
    flip_seed, shift_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    size, channels = image.shape[0], image.shape[-1]
    margin = max(1, size // 8)
    padded = tf.pad(image, [[margin, margin], [margin, margin], [0, 0]])
    return tf.image.stateless_random_crop(padded, (size, image.shape[1], channels), shift_seed)


def random_crop_window(shape: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """An Inception-style crop window [y, x, height, width] of an image of `shape` [h, w, c].

    8%-100% of the area, aspect ratio 3/4-4/3, the whole image when no window fits.
    """
    begin, window, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape,
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed,
        min_object_covered=0.1,
        aspect_ratio_range=(3 / 4, 4 / 3),
        area_range=(0.08, 1.0),
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    return tf.stack([begin[0], begin[1], window[0], window[1]])


def centre_crop_window(shape: tf.Tensor, size: int) -> tf.Tensor:
    """The central square crop [y, x, side, side] that ImageNet evaluation resizes to `size`."""
    height, width = shape[0], shape[1]
    fraction = size / (size + CROP_PADDING)
    side = tf.cast(fraction * tf.cast(tf.minimum(height, width), tf.float64), tf.int32)
    return tf.stack([(height - side + 1) // 2, (width - side + 1) // 2, side, side])


def decode_jpeg_crop(jpeg: tf.Tensor, window: tf.Tensor, size: int, channels: int) -> tf.Tensor:
    """Decode only `window` of a JPEG and resize it to size x size float32 [0, 1]."""
    image = tf.image.decode_and_crop_jpeg(jpeg, window, channels=channels)
    image = tf.image.resize(to_unit_float(image), (size, size), antialias=True)
    return tf.ensure_shape(image, (size, size, channels))
