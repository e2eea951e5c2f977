"""Recipe pieces for training a discovered network, taken from Keras and KerasCV.

* Augmentation of training batches: `keras_cv.layers.RandAugment`, `MixUp`, `CutMix`
  (both: one of the two per batch, `RandomChoice`). keras_cv is imported only when one of
  them is asked for. Their random draws come from generators that a resumed run starts
  afresh, so with augmentation a resumed run is equivalent, not bit-identical.
* Stochastic depth: `keras_cv.layers.StochasticDepth` replaces the residual additions of
  the exported model (`with_stochastic_depth`). It drops the whole residual branch of a
  batch with probability `rate` while training and scales the branch by 1 - rate in
  inference. The plain exported model (what is saved) gets that scale folded into the
  projection's batch normalization (`fold_stochastic_depth`), which is exact because the
  projection's activation is linear. Only where it works: a block whose branch is no wider
  than its input (in a zero-padded residual add the extra channels of a wider branch have
  no shortcut, so KerasCV's layer cannot drop them), whose projection has batch
  normalization and a linear activation. The rate grows linearly with depth: the k-th of n
  residual blocks gets rate * k / n.
"""

import keras
import numpy as np
import tensorflow as tf

from netadapt_tf.space.keras_names import layer_name
from netadapt_tf.space.subnet import ResolvedBlock, SubNetwork


def make_augmenter(
    rand_augment_magnitude: float, mixup_alpha: float, cutmix_alpha: float, seed: int
):
    """fn(images, one-hot targets) -> (images, targets) on batches, or None when every
    augmentation is off (0). Images are float in [0, 1]."""
    if not (rand_augment_magnitude or mixup_alpha or cutmix_alpha):
        return None
    import keras_cv  # lazily: slow to import, and only needed for these layers

    # Some KerasCV layers draw from TensorFlow's global generator, which must exist when op
    # determinism is on; seeding it also makes a fresh run's augmentation repeatable.
    tf.random.set_global_generator(tf.random.Generator.from_seed(seed))
    rand_augment = None
    if rand_augment_magnitude:
        rand_augment = keras_cv.layers.RandAugment(
            value_range=(0, 1), magnitude=rand_augment_magnitude, seed=seed
        )
    mixers = []
    if cutmix_alpha:
        mixers.append(keras_cv.layers.CutMix(alpha=cutmix_alpha, seed=seed + 1))
    if mixup_alpha:
        mixers.append(keras_cv.layers.MixUp(alpha=mixup_alpha, seed=seed + 2))
    mix = None
    if len(mixers) == 2:
        mix = keras_cv.layers.RandomChoice(mixers, batchwise=True, seed=seed + 3)
    elif mixers:
        mix = mixers[0]

    def augment(images, targets):
        if rand_augment is not None:
            images = rand_augment(images)
        if mix is not None:
            mixed = mix({"images": images, "labels": targets})
            images, targets = mixed["images"], mixed["labels"]
        return images, targets

    return augment


def stochastic_depth_rates(sub: SubNetwork, rate: float) -> dict[str, float]:
    """Block name -> drop rate, for the residual blocks where stochastic depth works."""
    blocks = [
        n for n in sub.nodes if isinstance(n, ResolvedBlock) and n.spec.residual and not n.removed
    ]
    rates = {}
    for k, block in enumerate(blocks, start=1):
        projection = block.layers[-1]
        if (
            block.in_channels >= projection.out_channels
            and projection.spec.batch_norm
            and projection.spec.activation == "linear"
        ):
            rates[block.name] = rate * k / len(blocks)
    return rates


def with_stochastic_depth(model: keras.Model, rates: dict[str, float]) -> keras.Model:
    """A copy of the exported `model` (same weights) whose residual adds of the blocks in
    `rates` are keras_cv StochasticDepth layers. Build it inside the strategy's scope."""
    import keras_cv

    adds = {f"{layer_name(name)}__add": rate for name, rate in rates.items()}

    def clone(layer):
        if layer.name in adds:
            return keras_cv.layers.StochasticDepth(rate=adds[layer.name], name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def fold_stochastic_depth(model: keras.Model, rates: dict[str, float]) -> None:
    """Scales each listed block's projection output by its survival probability (KerasCV's
    inference rule), in the batch normalization of the plain `model`, in place."""
    for name, rate in rates.items():
        bn = model.get_layer(f"{layer_name(name)}__projection__bn")
        gamma, beta, mean, variance = bn.get_weights()
        survival = np.float32(1.0 - rate)
        bn.set_weights([gamma * survival, beta * survival, mean, variance])
