"""Presets for training a discovered network (tools/train_discovered.py) and the compared
networks (tools/train_comparison.py): configs as code, one recipe for both tools.

`paper_imagenet` (the tools' default): the paper's recipe for the discovered network (Sec.
4.1.1, after MobileNetV3): 150 epochs of batch 1024, RMSProp 0.064 per 1024 images decayed
by 0.963 every 3 epochs, l2 1e-5, EMA of weights 0.9998, validated on every test image.
`fashion_mnist_demo`: the demo's comparison recipe (80 steps of 128 images with Adam at
0.016 halved every half epoch, no EMA, BN momentum 0.9: a short-budget preview, see
docs/benchmarks.md). `test`: two steps of 16 images.

`RECIPE` names the TrainConfig fields both tools take as flags and `DISCOVERED_ONLY` those
only tools/train_discovered.py takes; the flags are generated from them
(netadapt_tf/cli/config_flags.py), so a default is written once, here.
"""

import dataclasses

from netadapt_tf import configs
from netadapt_tf.discovered.trainer import DiscoveredOptions
from netadapt_tf.training.supernet_trainer import TrainConfig

RECIPE = {
    "epochs": "Epochs (of the final arch).",
    "steps_per_epoch": "Steps per epoch (unset in the preset: every training image once).",
    "batch_size": "Global batch size.",
    "learning_rate": "Learning rate per 1024 images.",
    "lr_decay": "Learning-rate decay factor.",
    "lr_decay_epochs": "Epochs between decays.",
    "warmup_epochs": "Linear warm-up epochs.",
    "optimizer": "Optimizer: rmsprop, sgd or adam.",
    "weight_decay": "l2 weight decay of kernels.",
    "ema_decay": "EMA of weights (0: off).",
    "bn_momentum": "Momentum of the moving BN statistics.",
    "eval_batch_size": "Validation batch size.",
    "max_eval_examples": "Validation examples (unset in the preset: all).",
}
DISCOVERED_ONLY = {
    "label_smoothing": "Label smoothing.",
    "distill": "Learn the teacher's soft outputs too.",
    "seed": "Seed of initialization and data order.",
    "checkpoint_every_steps": "0: once per epoch.",
}
OPTIONS = {
    "mode": "scratch, inherit or trajectory.",
    "steps_per_trajectory_arch": "Steps per intermediate trajectory arch.",
    "rand_augment_magnitude": "RandAugment (0: off).",
    "mixup_alpha": "MixUp alpha (0: off).",
    "cutmix_alpha": "CutMix alpha (0: off).",
    "stochastic_depth": "Stochastic depth rate (0: off).",
}


@dataclasses.dataclass(frozen=True)
class DiscoveredPreset:
    train: TrainConfig
    options: DiscoveredOptions = DiscoveredOptions()


def paper_imagenet() -> DiscoveredPreset:
    return DiscoveredPreset(TrainConfig(epochs=150, batch_size=1024, max_eval_examples=None))


def fashion_mnist_demo() -> DiscoveredPreset:
    return DiscoveredPreset(
        TrainConfig(
            epochs=1,
            steps_per_epoch=80,
            batch_size=128,
            optimizer="adam",
            learning_rate=0.016,
            lr_decay=0.5,
            lr_decay_epochs=0.5,
            ema_decay=0.0,
            bn_momentum=0.9,
            max_eval_examples=None,
        )
    )


def test() -> DiscoveredPreset:
    return DiscoveredPreset(
        TrainConfig(
            epochs=1, steps_per_epoch=2, batch_size=16, ema_decay=0.0, max_eval_examples=None
        )
    )


PRESETS = {
    "paper_imagenet": paper_imagenet,
    "fashion_mnist_demo": fashion_mnist_demo,
    "test": test,
}


def get_config(preset: str) -> DiscoveredPreset:
    return configs.from_table(PRESETS, preset)
