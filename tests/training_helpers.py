"""A tiny learnable dataset and super-network for training tests, the settings of their short
runs, and a trainer's work directory for the tests of the programs that read one."""

import dataclasses
import pathlib

import numpy as np
import tensorflow as tf

from netadapt_tf import builders, data
from netadapt_tf.space.spec import NetworkSpec
from netadapt_tf.supernet.checkpoint import save_supernet
from netadapt_tf.supernet.network import build_supernet
from netadapt_tf.training.supernet_trainer import TrainConfig, check_run_record

NUM_CLASSES = 4
SIZE = 16

# TrainConfig fields of the short runs of test_training.py and of the run its worker kills:
# two epochs of shallow_spec(), a checkpoint every two steps.
TRAIN_CONFIG = {
    "epochs": 2,
    "batch_size": 16,
    "ema_decay": 0.0,
    "monitor_archs": 1,
    "max_eval_examples": 32,
    "eval_batch_size": 32,
    "checkpoint_every_steps": 2,
}


def tiny_spec(dropout: float = 0.0):
    return builders.build(
        "mobilenet_v1",
        input_size=SIZE,
        num_classes=NUM_CLASSES,
        width_multiplier=0.25,
        dropout=dropout,
    )


def shallow_spec(dropout: float = 0.0):
    """tiny_spec cut to its stem, two separable blocks and the classifier: for tests of one
    training step, whose cost is tracing the step (forward and gradient) of every layer."""
    spec = tiny_spec(dropout)
    nodes = [n for n in spec.nodes if n.name.split("/")[0] in ("stem", "block1", "block2")]
    return dataclasses.replace(
        spec, name="shallow_mobilenet_v1", nodes=(*nodes, *spec.nodes[-2:]), origin=()
    )


def shallow_depth_spec():
    """FastDepth at width 0.25 and 32x32 cut to the encoder down to 4x4 (stem, blocks 1-5)
    and the decoder stages that climb back from there (decode3-5, with the skips from blocks
    3 and 1, and the output): every node type of the dense network in half its layers, for
    tests whose cost is tracing the judge's or the trainer's step."""
    spec = builders.build("fastdepth", input_size=32, width_multiplier=0.25)
    keep = {"stem", "block1", "block2", "block3", "block4", "block5"}
    keep |= {"decode3", "decode4", "decode5", "output"}
    nodes = tuple(n for n in spec.nodes if n.name.split("/")[0] in keep)
    return dataclasses.replace(spec, name="shallow_fastdepth", nodes=nodes, origin=())


def tiny_data(n: int = 256, seed: int = 0):
    """Images whose colour tells the class."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, NUM_CLASSES, n).astype("int32")
    images = rng.normal(size=(n, SIZE, SIZE, 3)).astype("float32") * 0.3
    for c in range(NUM_CLASSES):
        images[labels == c, :, :, c % 3] += 1.0 + c // 3
    return tf.data.Dataset.from_tensor_slices((images, labels))


def trainer_workdir(
    root: pathlib.Path, spec: NetworkSpec, data_config: data.DataConfig
) -> pathlib.Path:
    """`root` made a work directory as tools/train_supernet.py leaves it, weights untrained:
    supernet/ (the checkpoint), run.json (with the data config) and held_out_split.json."""
    save_supernet(build_supernet(spec), root / "supernet")
    split = data.load(data_config).split
    data.write_split(root, split)
    record = {
        "spec": spec.to_json(),
        "spec_fingerprint": spec.fingerprint(),
        "train": dataclasses.asdict(TrainConfig()),
        "data": {"config": data_config.to_json(), "split": split.to_json()},
        "replicas": 1,
    }
    check_run_record(str(root), record, overwrite=False)
    return root
