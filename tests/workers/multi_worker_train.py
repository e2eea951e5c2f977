"""One worker of a two-worker MultiWorkerMirroredStrategy run (TF_CONFIG from the test);
saves its final weights to argv[2]."""

import os
import sys

import numpy as np
import tensorflow as tf
from training_helpers import shallow_spec, tiny_data

from netadapt_tf.supernet.distribute import make_strategy
from netadapt_tf.training.supernet_trainer import SupernetTrainer, TrainConfig

workdir, out = sys.argv[1], sys.argv[2]
strategy = make_strategy("multi_worker")
config = TrainConfig(
    epochs=1,
    batch_size=16,
    ema_decay=0.0,
    monitor_archs=0,
    max_eval_examples=16,
    eval_batch_size=16,
)
data = tiny_data(96)
trainer = SupernetTrainer(
    shallow_spec(), data.take(64), data.skip(64), 64, config, workdir, strategy=strategy
)
result = trainer.run()
weights = {f"w{i}": w for i, w in enumerate(trainer.model.get_weights())}
np.savez(out, __steps__=np.array(result.steps), **weights)
tf.io.gfile.makedirs(os.path.dirname(out))
