"""Do sub-network accuracies read from the super-network rank like their real accuracies?

Trains a small super-network on Fashion-MNIST with ordered dropout, picks sub-networks
spanning the MAC range, trains each of them stand-alone from scratch with the same budget
(epochs over the same images), and reports Kendall's tau between their held-out accuracy
read from the super-network (with and without BN recalibration) and their stand-alone
held-out accuracy. Target: tau >= 0.6.

  python benchmarks/rank_correlation.py [--subnets=8] [--epochs=3] [--json]
"""

import json
import time

import keras
import numpy as np
from absl import app, flags

from netadapt_tf import builders, data, macs
from netadapt_tf.arch import random_arch
from netadapt_tf.evaluation import SubnetEvaluator
from netadapt_tf.export import export_subnetwork
from netadapt_tf.supernet import build_supernet
from netadapt_tf.training import SupernetTrainer, TrainConfig

_MODEL = flags.DEFINE_string("model", "mobilenet_v1", "Builder.")
_WIDTH = flags.DEFINE_float("width_multiplier", 0.5, "Width multiplier.")
_SUBNETS = flags.DEFINE_integer("subnets", 8, "Sub-networks trained stand-alone.")
_EPOCHS = flags.DEFINE_integer("epochs", 3, "Epochs, for the super-network and each subnet.")
_TRAIN = flags.DEFINE_integer("train_examples", 8000, "Training images used (budget).")
_BATCH = flags.DEFINE_integer("batch_size", 64, "Batch size.")
_LR = flags.DEFINE_float("learning_rate", 0.048, "Adam learning rate per 1024 images.")
_SHRINK = flags.DEFINE_float("progressive_shrinking", 1.0, "TrainConfig.progressive_shrinking.")
_BN = flags.DEFINE_float("bn_momentum", 0.9, "BN momentum, super-network and stand-alone.")
_RECAL = flags.DEFINE_integer("recalibration_batches", 8, "BN recalibration batches.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Fashion-MNIST IDX files.")
_WORKDIR = flags.DEFINE_string("workdir", "/tmp/netadapt_rank_correlation", "Work dir.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed.")
_JSON = flags.DEFINE_bool("json", False, "Print JSON.")


def kendall_tau(a, b) -> float:
    """Kendall's tau-b (ties in either ranking counted as in scipy)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    concordant = discordant = ties_a = ties_b = 0
    for i in range(len(a)):
        for j in range(i + 1, len(a)):
            da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
            if da == 0 and db == 0:
                continue
            if da == 0:
                ties_a += 1
            elif db == 0:
                ties_b += 1
            elif da == db:
                concordant += 1
            else:
                discordant += 1
    n = concordant + discordant
    denom = np.sqrt((n + ties_a) * (n + ties_b))
    return float((concordant - discordant) / denom) if denom else 0.0


def spanning_archs(spec, count: int, seed: int):
    """`count` random sub-networks at evenly spaced MAC quantiles of 400 random ones."""
    rng = np.random.default_rng(seed)
    pool = sorted(
        (random_arch(spec, rng) for _ in range(400)), key=lambda a: macs.count(spec, a).macs
    )
    picks = np.linspace(0.05, 0.95, count)
    return [pool[int(q * (len(pool) - 1))] for q in picks]


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    keras.utils.set_random_seed(_SEED.value)
    start = time.perf_counter()
    spec = builders.build(
        _MODEL.value, input_size=32, num_classes=10, width_multiplier=_WIDTH.value, dropout=0.0
    )
    config = data.DataConfig(
        name="fashion_mnist",
        data_dir=_DATA_DIR.value,
        image_size=32,
        channels=3,
        batch_size=_BATCH.value,
        held_out=2000,
        augment=False,
    )
    datasets = data.load(config)
    n = min(_TRAIN.value, datasets.num_train)
    train = TrainConfig(
        epochs=_EPOCHS.value,
        batch_size=_BATCH.value,
        optimizer="adam",
        learning_rate=_LR.value,
        lr_decay=0.7,
        lr_decay_epochs=1.0,
        ema_decay=0.0,
        monitor_archs=0,
        seed=_SEED.value,
        progressive_shrinking=_SHRINK.value,
        bn_momentum=_BN.value,
    )
    trainer = SupernetTrainer(
        spec,
        lambda epoch: datasets.train_for_epoch(epoch).take(n),
        datasets.held_out,
        n,
        train,
        f"{_WORKDIR.value}/supernet",
        overwrite=True,
        log=lambda *a: None,
        progress=False,
    )
    supernet_result = trainer.run()
    supernet_seconds = time.perf_counter() - start
    archs = spanning_archs(spec, _SUBNETS.value, _SEED.value)
    plain = SubnetEvaluator(trainer.model, datasets.held_out)
    recal = SubnetEvaluator(
        trainer.model,
        datasets.held_out,
        recalibration_data=datasets.train_for_epoch(0),
        recalibration_batches=_RECAL.value,
    )
    from_supernet = [plain.accuracy(a) for a in archs]
    from_supernet_recal = [recal.accuracy(a) for a in archs]
    held_out = data.batched(datasets.held_out, 256, training=False)
    standalone = []
    fresh = build_supernet(spec)  # untrained weights: stand-alone nets start from scratch
    for arch in archs:
        model = export_subnetwork(fresh, arch)
        for layer in model.layers:  # the same short-run BN momentum as the super-network
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = _BN.value
        model.compile(
            keras.optimizers.Adam(
                keras.optimizers.schedules.ExponentialDecay(
                    _LR.value * _BATCH.value / 1024, n // _BATCH.value, 0.7, staircase=True
                )
            ),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        for epoch in range(_EPOCHS.value):
            ds = data.batched(datasets.train_for_epoch(epoch).take(n), _BATCH.value, training=True)
            model.fit(ds, epochs=1, verbose=0)
        standalone.append(float(model.evaluate(held_out, verbose=0)[1]))
    result = {
        "model": f"{_MODEL.value} x{_WIDTH.value} 32x32",
        "subnets": len(archs),
        "macs": [macs.count(spec, a).macs for a in archs],
        "standalone_accuracy": standalone,
        "supernet_accuracy": from_supernet,
        "supernet_accuracy_recalibrated": from_supernet_recal,
        "tau": kendall_tau(from_supernet, standalone),
        "tau_recalibrated": kendall_tau(from_supernet_recal, standalone),
        "budget": f"{_EPOCHS.value} epochs x {n} images, batch {_BATCH.value}",
        "recipe": f"Adam {_LR.value} per 1024, progressive shrinking {_SHRINK.value}, "
        f"BN momentum {_BN.value}",
        "supernet_seconds": round(supernet_seconds, 1),
        "supernet_images_per_s": round(supernet_result.images_per_second, 1),
        "total_seconds": round(time.perf_counter() - start, 1),
    }
    if _JSON.value:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    app.run(main)
