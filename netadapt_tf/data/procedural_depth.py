"""A generated depth-estimation set for tests and demos: rooms with boxes, deterministic per seed.

Each scene is a room seen by a pinhole camera at the origin (60 degrees across, looking down
+z, turned by a small random yaw and pitch): a floor, a ceiling, two side walls and a back
wall (planes), and one to four boxes standing on the floor. Every pixel's ray is cast
against them; its depth is the z distance of the nearest hit in the camera frame, as a
Kinect measures it (NYU Depth V2's convention), in metres, 1-10 m like a room.

The image carries depth the way photographs do, so a network can learn it:
- shading: a light at the camera, Lambertian, falling off with distance (near surfaces
  are bright, grazing floors and far walls dark);
- texture fixed to the surfaces in metres (floor tiles, wall and box stripes), so its
  frequency in the image grows with distance;
- colour per surface, and a little sensor noise.

Scene i of a set with seed s is a function of (s, i) alone (numpy's PCG64 seeded by the
pair), so a scene is the same whatever the set's size.
"""

import numpy as np
import tensorflow as tf

from netadapt_tf.data import source
from netadapt_tf.data.config import DataConfig

FIELD_OF_VIEW_DEGREES = 60.0
MAX_DEPTH = 10.0
NOISE = 0.02
TRAIN_SEED, VALIDATION_SEED = 0, 1
VERSION = 1  # bump when a scene's pixels change: it is part of the split's dataset name


def _rotation(yaw: float, pitch: float) -> np.ndarray:
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    turn = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    tilt = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    return turn @ tilt


def _rays(size: int, rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(world directions [size*size, 3], camera-frame z of each direction = 1 scaled)."""
    focal = size / (2 * np.tan(np.radians(FIELD_OF_VIEW_DEGREES) / 2))
    centre = (np.arange(size) + 0.5 - size / 2) / focal
    x, y = np.meshgrid(centre, -centre)  # image rows go down, world y goes up
    camera = np.stack([x, y, np.ones_like(x)], axis=-1).reshape(-1, 3)
    # A camera ray with z = 1 reaches depth z at distance t: the hit's t is its depth.
    return camera @ rotation.T, camera


def _scene(rng: np.random.Generator):
    """The room's planes [(axis, coordinate, albedo rgb, pattern)] and boxes [(lo, hi, rgb)]."""
    floor, ceiling = -rng.uniform(1.0, 1.6), rng.uniform(1.0, 1.8)
    left, right, back = -rng.uniform(1.5, 3.5), rng.uniform(1.5, 3.5), rng.uniform(5.0, 9.5)
    colour = lambda: rng.uniform(0.35, 1.0, size=3)  # noqa: E731
    planes = [
        (1, floor, colour(), "tiles"),
        (1, ceiling, colour(), "plain"),
        (0, left, colour(), "stripes"),
        (0, right, colour(), "stripes"),
        (2, back, colour(), "stripes"),
    ]
    boxes = []
    for _ in range(rng.integers(1, 5)):
        width, height, length = rng.uniform(0.3, 1.2, size=3)
        x = rng.uniform(left + width / 2, right - width / 2)
        z = rng.uniform(1.5 + length / 2, back - length / 2 - 0.2)
        lo = np.array([x - width / 2, floor, z - length / 2])
        boxes.append((lo, lo + [width, height, length], colour()))
    return planes, boxes


def _texture(points: np.ndarray, normal_axis: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """Brightness factor [n] of the surface texture at world `points`: tiles of 0.5 m on
    the floor, vertical stripes of 0.25 m elsewhere (in the plane's own axes)."""
    u = np.where(normal_axis == 0, points[:, 2], points[:, 0])
    v = np.where(normal_axis == 1, points[:, 2], points[:, 1])
    tiles = (np.floor(u / 0.5) + np.floor(v / 0.5)) % 2
    stripes = np.floor(u / 0.25) % 2
    factor = np.where(pattern == 1, tiles, np.where(pattern == 2, stripes, 0.5))
    return 0.75 + 0.25 * factor


def render(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(image float32 [size, size, 3] in [0, 1], depth float32 [size, size] in metres)."""
    rotation = _rotation(rng.uniform(-0.25, 0.25), rng.uniform(-0.15, 0.1))
    directions, camera = _rays(size, rotation)
    planes, boxes = _scene(rng)
    count = len(directions)
    nearest = np.full(count, np.inf)
    axis = np.zeros(count, np.int64)
    albedo = np.zeros((count, 3))
    pattern = np.zeros(count, np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        for plane_axis, coordinate, rgb, kind in planes:
            t = coordinate / directions[:, plane_axis]
            hit = (t > 0) & (t < nearest)
            nearest[hit], axis[hit], albedo[hit] = t[hit], plane_axis, rgb
            pattern[hit] = {"plain": 0, "tiles": 1, "stripes": 2}[kind]
        for lo, hi, rgb in boxes:
            t1, t2 = lo / directions, hi / directions
            t_near = np.minimum(t1, t2)
            entry = t_near.max(axis=1)
            exit_ = np.maximum(t1, t2).min(axis=1)
            hit = (entry <= exit_) & (entry > 0) & (entry < nearest)
            nearest[hit], axis[hit], albedo[hit] = entry[hit], t_near[hit].argmax(axis=1), rgb
            pattern[hit] = 2
    points = directions * nearest[:, None]
    # The hit face's normal points back along the ray; the light sits at the camera.
    unit = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    cosine = np.abs(unit[np.arange(count), axis])
    falloff = 1.0 / (1.0 + (nearest / 4.0) ** 2)
    light = 0.08 + 0.92 * cosine * falloff
    image = albedo * (light * _texture(points, axis, pattern))[:, None]
    image = image + rng.normal(0.0, NOISE, size=image.shape)
    depth = nearest * camera[:, 2]  # camera z of the hit (camera z of the ray is 1)
    image = np.clip(image, 0.0, 1.0).reshape(size, size, 3).astype(np.float32)
    return image, depth.reshape(size, size).astype(np.float32)


def generate(count: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [count, size, size, 3], depth float32 [count, size, size]); scene i is a
    function of (seed, i, size) only."""
    images = np.empty((count, size, size, 3), np.uint8)
    depth = np.empty((count, size, size), np.float32)
    for i in range(count):
        image, depth[i] = render(size, np.random.default_rng([seed, i]))
        images[i] = np.round(image * 255).astype(np.uint8)
    return images, depth


def preview(image: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """uint8 [size, 2 * size, 3]: the image and, beside it, its depth in gray (near bright,
    MAX_DEPTH and unmeasured pixels black), for looking at scenes."""
    near = np.where(depth > 0, 1.0 - np.clip(depth / MAX_DEPTH, 0.0, 1.0), 0.0)
    gray = np.repeat(np.round(near * 255).astype(np.uint8)[..., None], 3, axis=-1)
    return np.concatenate([image, gray], axis=1)


def _depth_maps(channels: int):
    def eval_map(raw):
        image = source.match_and_scale(raw["image"], channels)
        return image, raw["depth"][..., None]

    def train_map(raw, seed):
        image, depth = eval_map(raw)
        # One flip for both, so the depth map stays aligned with the image.
        both = tf.image.stateless_random_flip_left_right(tf.concat([image, depth], -1), seed)
        return both[..., :channels], both[..., channels:]

    return train_map, eval_map


def open_source(config: DataConfig) -> source.Source:
    """`synthetic_examples` training scenes and a fifth as many (at least one) validation
    scenes, rendered at image_size."""
    if config.fit != "auto":
        raise ValueError(
            f"DataConfig.fit: {config.fit!r} does not apply to procedural_depth, whose scenes "
            "are rendered at image_size; allowed: 'auto'"
        )
    size, count = config.image_size, config.synthetic_examples
    images, depth = generate(count, size, TRAIN_SEED)
    num_validation = max(1, count // 5)
    val_images, val_depth = generate(num_validation, size, VALIDATION_SEED)
    train_map, eval_map = _depth_maps(config.channels)
    return source.Source(
        dataset=f"procedural_depth/{VERSION}:{count}x{size}x{size}",
        num_examples=count,
        select=source.select_arrays({"image": images, "depth": depth}),
        validation=source.select_arrays({"image": val_images, "depth": val_depth})(
            np.arange(num_validation)
        ),
        num_validation=num_validation,
        num_classes=None,
        train_map=train_map,
        eval_map=eval_map,
        task="depth",
    )
