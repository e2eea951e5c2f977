"""Tests of the depth task's data: the procedural rooms (and tools/render_depth_scenes.py),
NYU Depth V2 with FastDepth's preprocessing (through the real TFDS builder on
tfds.testing.mock_data examples), the held-out split of a depth set, and a dataset without
depth given to the depth pipeline."""

import os
import pathlib
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from netadapt_tf import data
from netadapt_tf import depth as depth_task
from netadapt_tf.common.strict_json import RecordError
from netadapt_tf.data import nyu_depth, procedural_depth, tfds_source

REPO = pathlib.Path(__file__).resolve().parent.parent


def config(name="procedural_depth", **fields):
    defaults = dict(image_size=16, channels=3, batch_size=8, held_out=8, synthetic_examples=40)
    return data.DataConfig(name=name, **{**defaults, **fields})


def arrays(ds):
    images, depths = zip(*ds.as_numpy_iterator(), strict=True)
    return np.stack(images), np.stack(depths)


# --- procedural rooms -----------------------------------------------------------------


def test_procedural_scenes_are_deterministic_per_seed_and_index():
    images, depth = procedural_depth.generate(5, 24, seed=3)
    again_images, again_depth = procedural_depth.generate(3, 24, seed=3)
    np.testing.assert_array_equal(images[:3], again_images)  # scene i depends on (seed, i)
    np.testing.assert_array_equal(depth[:3], again_depth)
    other = procedural_depth.generate(3, 24, seed=4)[1]
    assert not np.array_equal(other, depth[:3])
    assert images.dtype == np.uint8 and depth.dtype == np.float32
    assert images.shape == (5, 24, 24, 3) and depth.shape == (5, 24, 24)
    assert depth.min() > 1.0 and depth.max() <= procedural_depth.MAX_DEPTH
    assert len({d.tobytes() for d in depth}) == 5


def test_procedural_scene_geometry():
    # A room seen from inside: the centre of the view is the far wall or a box, the bottom
    # rows are floor, which comes nearer towards the bottom of the image.
    _, depth = procedural_depth.generate(20, 32, seed=0)
    bottom = depth[:, -1, :].mean(axis=1)
    assert (bottom < depth[:, 16, 16]).all()
    assert (depth[:, -1, 16] < depth[:, -4, 16]).mean() > 0.9


def test_procedural_images_carry_depth():
    # Shading falls off with distance: over many scenes, brightness and depth are
    # clearly anti-correlated (-0.46 measured at 64 px), so depth is learnable from images.
    images, depth = procedural_depth.generate(32, 32, seed=0)
    brightness = images.mean(axis=-1).ravel()
    assert np.corrcoef(brightness, depth.ravel())[0, 1] < -0.3


def test_procedural_depth_through_load():
    d = data.load(config(), task="depth")
    assert (d.task, d.num_classes, d.num_train, d.num_held_out, d.num_validation) == (
        "depth",
        None,
        32,
        8,
        8,
    )
    assert d.split.dataset == "procedural_depth/1:40x16x16"
    images, depths = procedural_depth.generate(40, 16, procedural_depth.TRAIN_SEED)
    originals = {m.tobytes(): i for i, m in enumerate(depths)}
    held_images, held_depths = arrays(d.held_out)
    assert held_images.shape == (8, 16, 16, 3) and held_depths.shape == (8, 16, 16, 1)
    held = sorted(originals[m[..., 0].tobytes()] for m in held_depths)
    np.testing.assert_array_equal(held_images, images[held] / np.float32(255))
    # Training examples: the others, each flipped with its depth map or not at all.
    seen, flips = set(), 0
    for image, depth in d.train_for_epoch(0).as_numpy_iterator():
        key = depth[..., 0].tobytes()
        flipped = key not in originals
        i = originals[depth[:, ::-1, 0].tobytes() if flipped else key]
        source = images[i][:, ::-1] if flipped else images[i]
        np.testing.assert_array_equal(image, source / np.float32(255))
        seen.add(i)
        flips += flipped
    assert seen == set(range(40)) - set(held) and 0 < flips < 32
    gray = data.load(config(channels=1, augment=False))
    assert arrays(gray.validation)[0].shape == (8, 16, 16, 1)


def test_held_out_split_of_a_depth_set_is_recorded_and_checked(tmp_path):
    split = data.load(config()).split
    data.record_split(tmp_path, split)
    data.record_split(tmp_path, data.load(config()).split)  # the same split: accepted
    other = data.load(config(held_out_seed=1)).split
    assert other.fingerprint != split.fingerprint
    with pytest.raises(RecordError, match="was made with a different held-out split: seed 0"):
        data.check_split(tmp_path, other)


# --- a dataset without depth given to the depth pipeline, and other bad input ---------


def test_depth_pipeline_refuses_datasets_without_depth(tmp_path):
    message = (
        "DataConfig.name: 'synthetic' is a classification dataset without depth maps; the "
        "depth pipeline needs nyu_depth_v2, procedural_depth or a tfds:NAME set with an "
        "'image' and a 'depth' feature"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        data.load(config("synthetic"), task="depth")
    with (
        tfds.testing.mock_data(num_examples=4),
        pytest.raises(ValueError, match="'cifar10' is a classification dataset without"),
    ):
        data.load(config("cifar10", data_dir=tmp_path, image_size=32), task="depth")
    with pytest.raises(ValueError, match="'procedural_depth' is a depth dataset, not a class"):
        data.load(config(), task="classification")
    with pytest.raises(ValueError, match=re.escape("load: task 'segmentation' is not one of")):
        data.load(config(), task="segmentation")
    with pytest.raises(ValueError, match="'pad' does not apply to procedural_depth"):
        data.load(config(fit="pad"))


# --- NYU Depth V2: FastDepth's preprocessing --------------------------------------------


def _nearest(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """TensorFlow's nearest-neighbour resize (half-pixel centres), in numpy float32."""
    rows = np.floor((np.arange(height) + np.float32(0.5)) * np.float32(array.shape[0] / height))
    cols = np.floor((np.arange(width) + np.float32(0.5)) * np.float32(array.shape[1] / width))
    rows = np.minimum(rows.astype(int), array.shape[0] - 1)
    cols = np.minimum(cols.astype(int), array.shape[1] - 1)
    return array[rows][:, cols]


def fastdepth_eval_depth(depth: np.ndarray, size: int) -> np.ndarray:
    """FastDepth's evaluation transform of a 480x640 depth map, written out: 250x333,
    rows 11:239 and columns 14:318 (228x304), then size x size."""
    resized = _nearest(depth.astype(np.float32), 250, 333)
    return _nearest(resized[11:239, 14:318], size, size)


def test_nyu_depth_v2_through_the_tfds_builder(tmp_path):
    with tfds.testing.mock_data(num_examples=4):
        d = data.load(config("nyu_depth_v2", data_dir=tmp_path, image_size=24, held_out=1), "depth")
        assert (d.task, d.num_classes, d.num_train, d.num_held_out, d.num_validation) == (
            "depth",
            None,
            3,
            1,
            4,
        )
        assert d.split.dataset.startswith("tfds:nyu_depth_v2/0.0.1 (train split")
        raw, _ = tfds_source._load("nyu_depth_v2", "validation", tmp_path)
        raw_depths = [example["depth"] for example in raw.as_numpy_iterator()]
        images, depths = arrays(d.validation)
        assert images.shape == (4, 24, 24, 3) and depths.shape == (4, 24, 24, 1)
        assert images.dtype == np.float32 and images.min() >= 0 and images.max() <= 1
        for depth, raw_depth in zip(depths, raw_depths, strict=True):
            np.testing.assert_array_equal(depth[..., 0], fastdepth_eval_depth(raw_depth, 24))
        train_images, train_depths = arrays(d.train_for_epoch(0))
        assert train_images.shape == (3, 24, 24, 3) and train_depths.shape == (3, 24, 24, 1)
        held_out = arrays(d.held_out)[1]
        assert held_out.shape == (1, 24, 24, 1)
        with pytest.raises(ValueError, match="'pad' does not apply to the depth set nyu_depth"):
            data.load(config("nyu_depth_v2", data_dir=tmp_path, image_size=24, fit="pad"))


def _raw(image: np.ndarray, depth: np.ndarray) -> dict:
    return {"image": tf.constant(image, tf.uint8), "depth": tf.constant(depth, tf.float16)}


def test_nyu_training_augmentation_scales_depth_and_keeps_it_aligned():
    train_map, _ = nyu_depth.depth_maps(32, 3)
    # Left half white at 2 m, right half black at 4 m: after any rotation, scale, flip and
    # jitter, white pixels must still be the near ones, at 2 / s with s in [1, 1.5].
    image = np.zeros((480, 640, 3), np.uint8)
    image[:, :320] = 255
    depth = np.full((480, 640), 4.0, np.float32)
    depth[:, :320] = 2.0
    raw = _raw(image, depth)
    near_values, white_left = set(), set()
    for seed in range(8):
        out_image, out_depth = (t.numpy() for t in train_map(raw, tf.constant([seed, 7])))
        out_depth = out_depth[..., 0]
        valid = out_depth > 0
        assert valid.mean() > 0.9
        near = out_depth[valid].min()
        assert 2 / 1.5 - 1e-3 <= near <= 2.0 + 1e-3
        np.testing.assert_allclose(out_depth[valid].max(), 2 * near, rtol=1e-3)
        white = out_image.mean(axis=-1) > 0.38
        assert (white[valid] == (out_depth[valid] < 1.5 * near)).mean() > 0.97
        near_values.add(round(float(near), 4))
        white_left.add(bool(white[:, 0].mean() > 0.5))
    assert len(near_values) == 8  # a new scale per example
    assert white_left == {True, False}  # flipped in some, not in others


def test_nyu_colour_jitter_and_gray_images():
    train_map, eval_map = nyu_depth.depth_maps(16, 1)
    raw = _raw(np.full((480, 640, 3), 128, np.uint8), np.ones((480, 640), np.float32))
    image, depth = eval_map(raw)
    assert image.shape == (16, 16, 1) and depth.shape == (16, 16, 1)
    np.testing.assert_allclose(image.numpy(), 128 / 255, rtol=1e-3)  # luma weights: 0.9999
    np.testing.assert_array_equal(depth.numpy(), 1.0)
    means = {
        round(float(tf.reduce_mean(train_map(raw, tf.constant([s, 0]))[0])), 4) for s in range(6)
    }
    assert len(means) == 6 and all(0.0 < m < 1.0 for m in means)  # brightness jitter
    # Saturation: a factor of 0 gives the gray image, 1 the image itself.
    colour = tf.constant([[[0.8, 0.2, 0.4]]])
    np.testing.assert_allclose(
        nyu_depth.colour_jitter(colour, tf.constant([1.0, 1.0, 1.0])), colour
    )
    gray = nyu_depth.colour_jitter(colour, tf.constant([1.0, 1.0, 0.0])).numpy()
    np.testing.assert_allclose(
        gray, np.full((1, 1, 3), 0.299 * 0.8 + 0.587 * 0.2 + 0.114 * 0.4), rtol=1e-3
    )


def test_colour_jitter_by_hand():
    # Brightness 1.2, then contrast 0.5 around the mean gray level, then saturation 1.
    gray = tf.constant([[[0.2], [0.6]]])
    jittered = nyu_depth.colour_jitter(gray, tf.constant([1.2, 0.5, 1.0])).numpy()
    # 0.24 and 0.72 around their mean 0.48: 0.48 -+ 0.5 * 0.24.
    np.testing.assert_allclose(jittered[..., 0], [[0.36, 0.6]], rtol=1e-6)
    # A one-channel image has no saturation to change.
    saturated = nyu_depth.colour_jitter(gray, tf.constant([1.0, 1.0, 0.3])).numpy()
    np.testing.assert_allclose(saturated, gray.numpy(), rtol=1e-6)


def test_nyu_preprocessing_needs_room_for_the_crop():
    assert nyu_depth.resized_shape(480, 640) == (250, 333)
    with pytest.raises(
        ValueError, match=re.escape("x: 480x480 images resize to 250x250, narrower")
    ):
        nyu_depth.check_raw_shape("x", 480, 480)


# --- learnability -----------------------------------------------------------------------


def _tiny_depth_network(size: int):
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = keras.layers.UpSampling2D(4)(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    bias = keras.initializers.Constant(4.0)  # start near the rooms' typical depth
    outputs = keras.layers.Conv2D(1, 1, activation="relu", bias_initializer=bias)(x)
    return keras.Model(inputs, outputs)


@pytest.mark.slow
def test_procedural_depth_is_learned_from_the_images():
    # A tiny encoder-decoder trained with the masked L1 loss for 400 steps must beat the
    # best image-blind guess, the per-pixel mean depth map of the training set (the rooms'
    # layout prior): it reads depth from shading and texture. Measured here: RMSE 0.72 m
    # and delta1 0.82 against the prior's 1.05 m and 0.64.
    keras.utils.set_random_seed(0)
    d = data.load(config(image_size=32, batch_size=32, held_out=64, synthetic_examples=512))
    model = _tiny_depth_network(32)
    model.compile(keras.optimizers.Adam(3e-3), loss=depth_task.masked_l1)
    model.fit(data.batched(d.train, 32, training=True).repeat(), steps_per_epoch=400, verbose=0)
    held_out = data.batched(d.held_out, 32, training=False)
    learned = depth_task.evaluate(lambda x: model(x, training=False), held_out)
    prior = arrays(d.train_for_epoch(0))[1].mean(axis=0)
    blind = depth_task.evaluate(lambda x: tf.broadcast_to(prior, x.shape[:3] + (1,)), held_out)
    assert learned.rmse < 0.85 * blind.rmse
    assert learned.delta1 > blind.delta1 + 0.1


def test_render_depth_scenes_tool(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    tool = REPO / "tools" / "render_depth_scenes.py"
    args = [f"--output={tmp_path}", "--count=2", "--size=24", "--seed=5"]
    done = subprocess.run(
        [sys.executable, str(tool), *args], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"wrote 2 scenes (24 px, seed 5) to {tmp_path}\n"
    images, depths = procedural_depth.generate(2, 24, seed=5)
    for i in range(2):
        png = tf.io.decode_png((tmp_path / f"scene_{i:03d}.png").read_bytes()).numpy()
        assert png.shape == (24, 48, 3)
        np.testing.assert_array_equal(png[:, :24], images[i])
        # The depth half: nearer is brighter.
        gray = png[:, 24:, 0].astype(int)
        assert np.corrcoef(gray.ravel(), depths[i].ravel())[0, 1] < -0.99
