"""Override flags made from a config record's fields (cli/config_flags.py) and the recipe
presets of discovered and compared training (configs/discovered.py)."""

import dataclasses

import pytest
from absl import app, flags

from netadapt_tf.cli import config_flags
from netadapt_tf.configs import demo as demo_presets
from netadapt_tf.configs import discovered as presets
from netadapt_tf.discovered.trainer import DiscoveredOptions
from netadapt_tf.training.supernet_trainer import TrainConfig


def _define(helps, names=None):
    values = flags.FlagValues()
    return values, config_flags.define(TrainConfig, helps, names, flag_values=values)


def test_flags_are_typed_by_the_field_and_unset_ones_keep_the_preset():
    values, train = _define(
        {"epochs": "e", "learning_rate": "lr", "distill": "d", "max_eval_examples": "m"},
        names={"learning_rate": "lr"},
    )
    values(["prog", "--epochs=3", "--lr=0.5", "--distill"])
    preset = TrainConfig(epochs=9, learning_rate=0.1, seed=4, max_eval_examples=100)
    config = train.apply(preset)
    assert (config.epochs, config.learning_rate, config.distill) == (3, 0.5, True)
    assert (config.seed, config.max_eval_examples) == (4, 100)  # not flags, or not set
    assert train.values() == {"epochs": 3, "learning_rate": 0.5, "distill": True}
    assert values["lr"].default is None and "the preset's" in values["lr"].help
    with pytest.raises(flags.IllegalFlagValueError):
        values(["prog", "--epochs=2.5"])  # an int field makes an integer flag


def test_a_value_the_record_refuses_is_refused_in_its_words_by_the_flag():
    values, _ = _define({"ema_decay": "ema", "optimizer": "opt"})
    with pytest.raises(flags.IllegalFlagValueError, match=r"--ema_decay=1.*train.ema_decay"):
        values(["prog", "--ema_decay=1"])
    values2, _ = _define({"optimizer": "opt"})
    with pytest.raises(flags.IllegalFlagValueError, match=r"train.optimizer: 'lion'"):
        values2(["prog", "--optimizer=lion"])


def test_a_combination_the_record_refuses_is_a_usage_error():
    values, train = _define({"batch_size": "b", "sandwich": "s"})
    values(["prog", "--batch_size=2", "--sandwich"])
    with pytest.raises(app.UsageError, match="too small for sandwich"):
        train.apply(TrainConfig())
    with pytest.raises(TypeError, match="is not a TrainConfig"):
        train.apply(DiscoveredOptions())


def test_a_flag_for_a_field_the_record_lacks_or_cannot_type_is_refused():
    with pytest.raises(ValueError, match=r"TrainConfig has no field\(s\) \['epoch'\]"):
        _define({"epoch": "typo"})
    holder = flags.DEFINE_integer("x_not_a_field", None, "x", flag_values=flags.FlagValues())
    with pytest.raises(ValueError, match=r"no field\(s\) \['nope'\]"):
        config_flags.Overrides(TrainConfig, {"nope": holder})

    @dataclasses.dataclass(frozen=True)
    class Record:
        sizes: tuple[int, ...] = (1,)

    with pytest.raises(TypeError, match=r"Record.sizes: type .* has no flag kind"):
        config_flags.define(Record, {"sizes": "s"}, flag_values=flags.FlagValues())


def _recipe_from_flags(argv: list[str], preset: str) -> TrainConfig:
    values = flags.FlagValues()
    train = config_flags.define(TrainConfig, presets.RECIPE, flag_values=values)
    values(["prog", *argv])
    return train.apply(presets.get_config(preset).train)


def test_the_demo_preset_is_the_recipe_the_demo_passes_as_flags():
    # The demo and the convergence benchmark pass their recipes as flags (their stage
    # commands are records a rerun compares); the preset must say the same thing.
    demo = demo_presets.FlowConfig().train_flags
    assert _recipe_from_flags(list(demo), "paper_imagenet") == presets.fashion_mnist_demo().train
    assert _recipe_from_flags([], "fashion_mnist_demo") == presets.fashion_mnist_demo().train


def test_the_paper_preset_is_the_paper_recipe_and_the_tools_default():
    train = presets.paper_imagenet().train
    assert (train.epochs, train.batch_size, train.optimizer) == (150, 1024, "rmsprop")
    assert (train.learning_rate, train.lr_decay, train.lr_decay_epochs) == (0.064, 0.963, 3.0)
    assert (train.weight_decay, train.ema_decay, train.max_eval_examples) == (1e-5, 0.9998, None)
    with pytest.raises(ValueError, match=r"preset: 'imagenet' is not one of"):
        presets.get_config("imagenet")
    assert set(presets.RECIPE).isdisjoint(presets.DISCOVERED_ONLY)
