"""Trains the shallow super-network (3 steps) and a plain network of it (3 steps) on `cores`
CPU replicas (argv[1]); saves both networks' final weights to argv[2] (npz)."""

import sys

import numpy as np
from training_helpers import shallow_spec, tiny_data

from netadapt_tf.supernet import distribute

cores, out, workdir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
devices = distribute.use_cores(cores)  # before TensorFlow runs anything

from netadapt_tf.discovered.trainer import DiscoveredOptions, DiscoveredRun, DiscoveredTrainer  # noqa: E402
from netadapt_tf.space.arch import full_arch  # noqa: E402
from netadapt_tf.training.supernet_trainer import SupernetTrainer, TrainConfig  # noqa: E402

spec = shallow_spec()
config = TrainConfig(
    epochs=1,
    steps_per_epoch=3,
    batch_size=16,
    ema_decay=0.0,
    monitor_archs=0,
    max_eval_examples=16,
    eval_batch_size=16,
    width_correlation=0.5,
    distill=True,
)
data = tiny_data(96)
strategy = distribute.mirrored()
assert strategy.num_replicas_in_sync == max(1, len(devices)), devices
trainer = SupernetTrainer(
    spec, data.take(64), data.skip(64), 64, config, f"{workdir}/supernet", strategy=strategy
)
trainer.run()
weights = {f"supernet{i}": w for i, w in enumerate(trainer.model.get_weights())}
plain_run = DiscoveredRun(
    spec=spec,
    arch=full_arch(spec),
    config=TrainConfig(
        epochs=1, steps_per_epoch=3, batch_size=16, ema_decay=0.0, max_eval_examples=16
    ),
    options=DiscoveredOptions(mode="scratch"),
    workdir=f"{workdir}/plain",
    saved_model=False,
)
plain = DiscoveredTrainer(
    plain_run, lambda epoch: data.take(64), data.skip(64), 64, strategy=strategy
)
models = []
plain.run(on_phase=lambda index, arch, model: models.append(model))
weights.update({f"plain{i}": w for i, w in enumerate(models[-1].get_weights())})
np.savez(out, replicas=np.array(strategy.num_replicas_in_sync), **weights)
