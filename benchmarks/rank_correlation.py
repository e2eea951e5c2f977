"""Is the super-network a judge? Its readings against the same sub-networks trained alone.

The sub-networks are the ones the search judges (netadapt_tf/pipeline/judge_quality.py): the span
set (archs along MCD shrink paths from the full network down to --span_stop of its MACs)
and the decision set (the candidates of one MCD iteration from a parent at
--decision_parent of the MACs). Each is trained alone (--standalone_*) on --seeds seeds and
scored on the 10,000 Fashion-MNIST test images; stand-alone accuracies are cached in
--cache, so a study of super-network recipes trains each arch once. A super-network is
trained with the recipe of --preset (configs/supernet.py) and the flags' overrides, and
read on --judge_examples held-out images after BN recalibration on a fixed subset of
--recalibration_batches training batches.

  python benchmarks/rank_correlation.py [--json]
  python benchmarks/rank_correlation.py --ground_truth_only   # stand-alone accuracies only

--json prints one object: span_tau, span_spearman, span_macs_tau, ceiling_tau, read_gap,
decision_tau, decision_ceiling_tau, decision_regret, decision_random_regret, full_gap
(points, stand-alone minus read, full network), supernet_seconds, and the details.
"""

import dataclasses
import json
import os
import time

import keras
import numpy as np
from absl import app, flags

from netadapt_tf import builders, data
from netadapt_tf.common import atomic_files, strict_json
from netadapt_tf.configs import supernet as presets
from netadapt_tf.judge.evaluation import SubnetEvaluator
from netadapt_tf.pipeline import judge_quality as jq
from netadapt_tf.search.mcd import MCDConfig
from netadapt_tf.space.arch import full_arch
from netadapt_tf.training.supernet_trainer import SupernetTrainer

# The regime: network, sets, stand-alone schedule.
_MODEL = flags.DEFINE_string("model", "mobilenet_v1", "Builder.")
_WIDTH = flags.DEFINE_float("width_multiplier", 0.25, "Width multiplier.")
_SIZE = flags.DEFINE_integer("input_size", 32, "Input size (Fashion-MNIST padded).")
_TIE = flags.DEFINE_bool("tie_depthwise", True, "Depthwise widths follow their input.")
_SPAN = flags.DEFINE_integer("span_archs", 12, "Archs of the span set.")
_PATHS = flags.DEFINE_integer("span_paths", 3, "Shrink paths the span set is taken from.")
_STOP = flags.DEFINE_float("span_stop", 0.03, "Smallest MAC fraction of the span set.")
_DECISION = flags.DEFINE_integer("decision_archs", 12, "Candidates of the decision set.")
_PARENT = flags.DEFINE_float("decision_parent", 0.7, "MAC fraction of the decision parent.")
_L = flags.DEFINE_integer("layers_per_sample", 4, "MCD's L for the paths and candidates.")
_REDUCTION = flags.DEFINE_float("initial_reduction", 0.1, "MCD's first reduction.")
_DECAY = flags.DEFINE_float("decay", 0.9, "MCD's reduction decay.")
_SEEDS = flags.DEFINE_integer("seeds", 2, "Stand-alone seeds per arch.", lower_bound=2)
_SA_STEPS = flags.DEFINE_integer("standalone_steps", 600, "Stand-alone training steps.")
_SA_BATCH = flags.DEFINE_integer("standalone_batch", 128, "Stand-alone batch size.")
_SA_LR = flags.DEFINE_float("standalone_lr", 3e-3, "Stand-alone Adam learning rate (cosine).")
# The super-network recipe: a preset and overrides.
_PRESET = flags.DEFINE_enum("preset", "fashion_mnist_demo", sorted(presets.PRESETS), "Recipe.")
_STEPS = flags.DEFINE_integer("supernet_steps", 1500, "Super-network steps.")
_BATCH = flags.DEFINE_integer("batch_size", None, "Super-network batch size.")
_LR = flags.DEFINE_float("learning_rate", None, "Learning rate per 1024 images.")
_LR_DECAY = flags.DEFINE_float("lr_decay", None, "TrainConfig.lr_decay (factor per decay).")
_LR_DECAY_EPOCHS = flags.DEFINE_float(
    "lr_decay_epochs", None, "TrainConfig.lr_decay_epochs (the run is one epoch)."
)
_CORR = flags.DEFINE_float("width_correlation", None, "TrainConfig.width_correlation.")
_FREE = flags.DEFINE_float("free_layer_probability", None, "TrainConfig.free_layer_probability.")
_FULL = flags.DEFINE_bool("full_network", None, "TrainConfig.full_network.")
_DISTILL = flags.DEFINE_bool("distill", None, "TrainConfig.distill.")
_WARM = flags.DEFINE_integer("warm_start_steps", None, "TrainConfig.warm_start_steps.")
_INIT_ALONE = flags.DEFINE_bool(
    "init_from_standalone",
    False,
    "Start the super-network from the full network trained alone (the stand-alone schedule, "
    "--seed): TrainConfig.init_from, as the demo can with its initial network.",
)
_SHRINK = flags.DEFINE_float("progressive_shrinking", None, "TrainConfig.progressive_shrinking.")
_BN = flags.DEFINE_float("bn_momentum", None, "TrainConfig.bn_momentum.")
_SUPER_TIE = flags.DEFINE_bool(
    "supernet_tie_depthwise",
    None,
    "Train the super-network with tied depthwise widths (default: --tie_depthwise); the sets "
    "are read on it as the same sub-networks (depthwise layers at full width).",
)
# The judge.
_HELD_OUT = flags.DEFINE_integer("held_out", 5000, "Training images held out for judging.")
_JUDGE = flags.DEFINE_integer("judge_examples", 5000, "Held-out images each reading uses.")
_EVAL_BATCH = flags.DEFINE_integer("eval_batch_size", 500, "Judging batch size.")
_RECAL = flags.DEFINE_integer("recalibration_batches", 4, "BN recalibration batches.")
_AVERAGE = flags.DEFINE_enum(
    "recalibration_average", "cumulative", ["cumulative", "momentum"], "Recalibration average."
)
# Running.
_GROUND = flags.DEFINE_bool("ground_truth_only", False, "Stand-alone accuracies only.")
_CACHE = flags.DEFINE_string("cache", "workdir/rank_correlation/standalone.json", "Cache file.")
_WORKDIR = flags.DEFINE_string("workdir", "workdir/rank_correlation", "Work directory.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Fashion-MNIST IDX files.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the sets and the super-network.")
_JSON = flags.DEFINE_bool("json", False, "Print JSON.")


def _overrides() -> dict:
    holders = {
        "batch_size": _BATCH,
        "learning_rate": _LR,
        "lr_decay": _LR_DECAY,
        "lr_decay_epochs": _LR_DECAY_EPOCHS,
        "width_correlation": _CORR,
        "free_layer_probability": _FREE,
        "full_network": _FULL,
        "distill": _DISTILL,
        "warm_start_steps": _WARM,
        "progressive_shrinking": _SHRINK,
        "bn_momentum": _BN,
    }
    return {k: h.value for k, h in holders.items() if h.value is not None}


def _datasets(batch_size: int):
    config = data.DataConfig(
        name="fashion_mnist",
        data_dir=_DATA_DIR.value,
        image_size=_SIZE.value,
        channels=3,
        batch_size=batch_size,
        held_out=_HELD_OUT.value,
        augment=False,
    )
    return config, data.load(config)


def _arrays(datasets):
    """(train images, train labels, test images, test labels) as numpy arrays."""

    def stack(ds):
        parts = list(ds.batch(10_000).as_numpy_iterator())
        return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])

    return (*stack(datasets.train_for_epoch(0)), *stack(datasets.validation))


def _standalone(spec, archs, schedule, arrays, data_tag, cache, log) -> np.ndarray:
    """[seeds, archs] stand-alone test accuracies (cached)."""
    out = np.zeros((_SEEDS.value, len(archs)))
    for i, arch in enumerate(archs):
        for seed in range(_SEEDS.value):
            key = cache.key(spec, arch, schedule, data_tag, seed)
            value = cache.get(key)
            if value is None:
                start = time.perf_counter()
                value = jq.train_standalone(spec, arch, schedule, arrays, seed)
                cache.put(key, value)
                log(f"  arch {i} seed {seed}: {value:.4f} ({time.perf_counter() - start:.0f} s)")
            out[seed, i] = value
    return out


def _full_alone(spec, schedule, arrays) -> tuple[str, float]:
    """(path of the full network trained alone as a .keras file, its training seconds);
    reused from the work directory when there."""
    path = os.path.join(_WORKDIR.value, "full_alone.keras")
    seconds_file = os.path.join(_WORKDIR.value, "full_alone_seconds.json")
    if os.path.exists(path) and os.path.exists(seconds_file):
        return path, strict_json.number(strict_json.load(seconds_file), seconds_file)
    start = time.perf_counter()
    model = jq.train_alone(spec, full_arch(spec), schedule, arrays, _SEED.value)
    seconds = time.perf_counter() - start
    os.makedirs(_WORKDIR.value, exist_ok=True)
    atomic_files.write_with(path, model.save)
    atomic_files.write_json(seconds_file, seconds)
    return path, seconds


def _train_supernet(spec, config, datasets, init_from=None):
    """(super-network, training seconds, recipe); a work directory holding the finished run
    of the same recipe is reused (its recorded seconds are reported)."""
    train = dataclasses.replace(
        config.train,
        epochs=1,
        steps_per_epoch=_STEPS.value,
        monitor_archs=0,
        seed=_SEED.value,
        max_eval_examples=500,
        init_from=init_from,
        **_overrides(),
    )
    workdir = os.path.join(_WORKDIR.value, "supernet")
    seconds_file = os.path.join(workdir, "seconds.json")

    def make_trainer(overwrite: bool) -> SupernetTrainer:
        return SupernetTrainer(
            spec,
            datasets.train_for_epoch,
            datasets.held_out,
            datasets.num_train,
            train,
            workdir,
            overwrite=overwrite,
            log=lambda *a: None,
            progress=False,
        )

    try:
        trainer = make_trainer(overwrite=False)
    except ValueError:  # another recipe in the work directory: start afresh
        trainer = make_trainer(overwrite=True)
    finished = os.path.exists(seconds_file) and trainer.manager.latest_checkpoint is not None
    result = trainer.run()
    if finished:
        recorded = strict_json.read(
            seconds_file, lambda d: strict_json.obj(d, "record", ("seconds",))["seconds"]
        )
        return trainer.model, strict_json.number(recorded, "seconds", minimum=0), train
    atomic_files.write_json(seconds_file, {"seconds": result.seconds})
    return trainer.model, result.seconds, train


def _readings(supernet, datasets, archs) -> list[float]:
    judge = SubnetEvaluator(
        supernet,
        datasets.held_out,
        _EVAL_BATCH.value,
        _JUDGE.value,
        recalibration_data=datasets.train_for_epoch(0),
        recalibration_batches=_RECAL.value,
        fast=True,
        recalibration_average=_AVERAGE.value,
    )
    return [judge.accuracy(a) for a in archs]


def _spec(tie_depthwise: bool):
    return builders.build(
        _MODEL.value,
        input_size=_SIZE.value,
        num_classes=10,
        width_multiplier=_WIDTH.value,
        dropout=0.0,
        tie_depthwise=tie_depthwise,
    )


def _ground_truth(spec, schedule, datasets, data_tag, log):
    """The span and decision sets and their stand-alone accuracies (cached)."""
    search = MCDConfig(
        samples_per_iteration=1,
        layers_per_sample=_L.value,
        initial_reduction=_REDUCTION.value,
        decay=_DECAY.value,
        target_fraction=0.5,
    )
    span = jq.span_set(spec, search, _SPAN.value, _PATHS.value, _STOP.value, _SEED.value)
    parent, candidates = jq.decision_set(
        spec, search, _PARENT.value, _DECISION.value, _SEED.value + 100
    )
    fraction = jq.mac_fraction(spec)
    os.makedirs(os.path.dirname(_CACHE.value) or ".", exist_ok=True)
    cache = jq.StandaloneCache(_CACHE.value)
    arrays = _arrays(datasets)
    log(f"stand-alone: {len(span)} span and {len(candidates)} decision archs x {_SEEDS.value}")
    span_alone = _standalone(spec, span, schedule, arrays, data_tag, cache, log)
    decision_alone = _standalone(spec, candidates, schedule, arrays, data_tag, cache, log)
    result = {
        "regime": f"{_MODEL.value} x{_WIDTH.value} {_SIZE.value}px, tie_depthwise {_TIE.value}",
        "standalone": dataclasses.asdict(schedule) | {"seeds": _SEEDS.value},
        "span_macs": [round(fraction(a), 4) for a in span],
        "span_standalone": span_alone.round(4).tolist(),
        "decision_parent_macs": round(fraction(parent), 4),
        "decision_macs": [round(fraction(a), 4) for a in candidates],
        "decision_standalone": decision_alone.round(4).tolist(),
        "ceiling_tau": jq.seed_ceiling(span_alone),
        "decision_ceiling_tau": jq.seed_ceiling(decision_alone),
    }
    sets = {"span": span, "candidates": candidates, "fraction": fraction, "arrays": arrays}
    return result, sets, span_alone, decision_alone


def _judged(sets, schedule, preset, datasets, span_alone, decision_alone):
    """Train the super-network and compare its readings with the stand-alone accuracies."""
    keras.utils.set_random_seed(_SEED.value)
    tie = _TIE.value if _SUPER_TIE.value is None else _SUPER_TIE.value
    trained_spec = _spec(tie)
    init_from, init_seconds = None, 0.0
    if _INIT_ALONE.value:
        init_from, init_seconds = _full_alone(trained_spec, schedule, sets["arrays"])
    supernet, seconds, train = _train_supernet(trained_spec, preset, datasets, init_from)

    def same(archs):  # the sets' archs as sub-networks of the trained super-network
        fingerprint = trained_spec.fingerprint()
        return [dataclasses.replace(a, fingerprint=fingerprint) for a in archs]

    span, fraction = sets["span"], sets["fraction"]
    span_read = _readings(supernet, datasets, same(span))
    decision_read = _readings(supernet, datasets, same(sets["candidates"]))
    span_report = jq.rank_report(span_read, span_alone, [fraction(a) for a in span])
    decision = jq.decision_report(decision_read, decision_alone)
    return {
        "recipe": dataclasses.asdict(train) | {"tie_depthwise": tie},
        "judge": {
            "held_out_examples": min(_JUDGE.value, datasets.num_held_out),
            "recalibration_batches": _RECAL.value,
            "recalibration_average": _AVERAGE.value,
        },
        "span_read": np.round(span_read, 4).tolist(),
        "decision_read": np.round(decision_read, 4).tolist(),
        "span_tau": span_report["tau"],
        "span_spearman": span_report["spearman"],
        "span_macs_tau": span_report["macs_tau"],
        "read_gap": span_report["read_gap"],
        "seed_sd": span_report["seed_sd"],
        "decision_tau": decision["tau"],
        "decision_regret": decision["regret"],
        "decision_random_regret": decision["random_regret"],
        "full_gap": float((span_alone[:, 0].mean() - span_read[0]) * 100),
        "supernet_seconds": round(seconds, 1),
        "init_seconds": round(init_seconds, 1),  # the full network trained alone
    }


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    start = time.perf_counter()
    log = (lambda *a: None) if _JSON.value else print
    spec = _spec(_TIE.value)
    schedule = jq.StandaloneSchedule(_SA_STEPS.value, _SA_BATCH.value, _SA_LR.value)
    preset = presets.get_config(_PRESET.value)
    keras.utils.set_random_seed(_SEED.value)
    data_config, datasets = _datasets(preset.train.batch_size)
    data_tag = data_config.to_json() | {"data_dir": None}
    result, sets, span_alone, decision_alone = _ground_truth(
        spec, schedule, datasets, data_tag, log
    )
    if not _GROUND.value:
        result |= _judged(sets, schedule, preset, datasets, span_alone, decision_alone)
    result["total_seconds"] = round(time.perf_counter() - start, 1)
    if _JSON.value:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    app.run(main)
