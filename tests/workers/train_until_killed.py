"""Trains the tiny super-network, checkpointing every 2 steps; SIGKILLs itself after
step argv[2] (0: never), as a crash would."""

import json
import os
import signal
import sys

import tensorflow as tf
from training_helpers import TRAIN_CONFIG, shallow_spec, tiny_data

from netadapt_tf.training.supernet_trainer import SupernetTrainer, TrainConfig

tf.config.experimental.enable_op_determinism()

workdir, kill_at = sys.argv[1], int(sys.argv[2])


def on_step(step):
    if kill_at and step == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)


config = TrainConfig(**TRAIN_CONFIG)
data = tiny_data(96)
trainer = SupernetTrainer(shallow_spec(), data.take(64), data.skip(64), 64, config, workdir)
result = trainer.run(on_step=on_step)
print(json.dumps({"steps": result.steps}))
