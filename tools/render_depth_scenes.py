"""Render procedural depth scenes to PNG files, to look at what the depth demo trains on.

Usage:
  python tools/render_depth_scenes.py --output=DIR [--count=8] [--size=128] [--seed=0]

Writes DIR/scene_000.png, ...: each the image and, to its right, its depth map in gray (near
bright). Scene i of a seed is the i-th example of the procedural_depth data set made with
that seed (the training set uses seed 0, validation seed 1), at any size.
"""

import pathlib

import tensorflow as tf
from absl import app, flags

from netadapt_tf.cli import cli_flags
from netadapt_tf.data import procedural_depth

_OUTPUT = flags.DEFINE_string("output", None, "Directory to write the PNG files into.")
_COUNT = flags.DEFINE_integer("count", 8, "How many scenes.", lower_bound=1)
_SIZE = flags.DEFINE_integer("size", 128, "Image height and width in pixels.", lower_bound=8)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the scenes.", lower_bound=0)
flags.mark_flag_as_required("output")


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}; everything is a --flag")
    output = pathlib.Path(_OUTPUT.value)
    output.mkdir(parents=True, exist_ok=True)
    images, depths = procedural_depth.generate(_COUNT.value, _SIZE.value, _SEED.value)
    for i, (image, depth) in enumerate(zip(images, depths, strict=True)):
        png = tf.io.encode_png(procedural_depth.preview(image, depth)).numpy()
        (output / f"scene_{i:03d}.png").write_bytes(png)
    print(f"wrote {len(images)} scenes ({_SIZE.value} px, seed {_SEED.value}) to {output}")
    return 0


if __name__ == "__main__":
    cli_flags.run(main)
