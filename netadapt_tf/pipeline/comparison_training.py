"""Trains one column of the demo's comparison: every planned network, one start, one recipe.

`train_column` trains each (network, seed) of the plan (comparison.py's networks.json) with
DiscoveredTrainer in `workdir/<network>/seed<k>`, all in this process: one TensorFlow
start-up, one data load and one super-network (loaded or built) for the whole column
instead of one per network, which at the demo's short runs would cost as much as the
training. The column's start is the same for
every network: "inherit" cuts each arch's weights out of the super-network, "scratch"
initializes it afresh. Each finished run is appended to `workdir/results.json` (written
atomically), and a rerun skips the runs recorded there and resumes a killed one from its
checkpoints, so an interrupted column goes on where it stopped.
"""

import dataclasses
import gc
import pathlib
import time
from collections.abc import Sequence

from netadapt_tf.discovered.trainer import DiscoveredOptions, DiscoveredRun, DiscoveredTrainer
from netadapt_tf.pipeline import comparison
from netadapt_tf.space.arch import load_arch
from netadapt_tf.space.spec import NetworkSpec
from netadapt_tf.supernet import checkpoint, distribute
from netadapt_tf.supernet.network import build_supernet
from netadapt_tf.training.supernet_trainer import TrainConfig

VALIDATE_ON = ("test", "held_out")


def train_column(
    spec: NetworkSpec,
    networks: Sequence[comparison.Network],
    arch_dir,
    mode: str,
    datasets,
    config: TrainConfig,
    workdir,
    supernet_dir: str | None,
    data_record: dict | None = None,
    log=print,
    validate_on: str = "test",
) -> list[comparison.Run]:
    """Trains every (network, seed) not recorded in workdir/results.json yet; returns all
    runs of the column. `config.seed` is replaced by each run's seed. `validate_on`: the
    images each epoch and the result are scored on, "test" (the dataset's validation split)
    or "held_out" (training images kept out: a learning curve that chooses a budget must
    not read the test images)."""
    if mode not in comparison.COLUMNS:
        raise ValueError(f"mode: {mode!r} is not one of {comparison.COLUMNS}")
    if validate_on not in VALIDATE_ON:
        raise ValueError(f"validate_on: {validate_on!r} is not one of {VALIDATE_ON}")
    workdir = pathlib.Path(workdir)
    results = workdir / comparison.RESULTS_FILE
    runs = _recorded_runs(results, mode)
    done = {(run.name, run.seed) for run in runs}
    source = supernet_dir if mode == "inherit" else None
    strategy = distribute.mirrored()
    validation = datasets.held_out if validate_on == "held_out" else datasets.validation
    template = None
    for network, arch, seed in _runs_to_train(spec, networks, arch_dir, done):
        start = time.perf_counter()
        if template is None:  # built once: the weights every inherit run starts from
            template = _load_template(spec, source, strategy)
        settings = DiscoveredRun(
            spec=spec,
            arch=arch,
            config=dataclasses.replace(config, seed=seed),
            options=DiscoveredOptions(mode=mode),
            workdir=str(workdir / network.name / f"seed{seed}"),
            supernet_dir=source,
            data_record=data_record,
            saved_model=False,  # the comparison needs model.keras only
        )
        run = _train_run(
            settings,
            datasets,
            validation,
            network.name,
            start,
            strategy=strategy,
            log=log,
            template=template,
        )
        runs.append(run)
        comparison.write_results(results, mode, runs)
        log(
            f"{mode} {network.name} seed {seed}: accuracy {run.accuracy:.4f} on "
            f"{run.examples} images, {run.seconds:.0f} s"
        )
        gc.collect()  # the run's trainer: its model and traced steps are not needed again
    return runs


def _runs_to_train(spec: NetworkSpec, networks, arch_dir, done: set):
    """(network, its arch, seed) of every run not in `done`; every network's arch file is
    read, trained or not."""
    for network in networks:
        arch = load_arch(pathlib.Path(arch_dir) / network.arch, spec)
        for seed in network.seeds:
            if (network.name, seed) not in done:
                yield network, arch, seed


def _recorded_runs(results: pathlib.Path, mode: str) -> list[comparison.Run]:
    """The runs `results` holds (none if it does not exist), which must be of `mode`."""
    if not results.exists():
        return []
    recorded_mode, runs = comparison.read_results(results)
    if recorded_mode != mode:
        raise ValueError(
            f"workdir: {results} holds the {recorded_mode!r} column, not {mode!r}; use "
            "another work directory"
        )
    return runs


def _load_template(spec: NetworkSpec, supernet_dir: str | None, strategy):
    """The super-network in `supernet_dir`, or a fresh one of `spec`, under `strategy`."""
    with strategy.scope():
        return (
            checkpoint.load_supernet(supernet_dir, spec) if supernet_dir else build_supernet(spec)
        )


def _train_run(settings: DiscoveredRun, datasets, validation, name: str, start: float, **kwargs):
    """Trains `settings` with a DiscoveredTrainer given `kwargs`; returns the Run of network
    `name`, its seconds counted from `start` (time.perf_counter)."""
    result = DiscoveredTrainer(
        settings, datasets.train_for_epoch, validation, datasets.num_train, **kwargs
    ).run()
    return comparison.Run(
        name=name,
        seed=settings.config.seed,
        accuracy=result.validation_accuracy,
        examples=result.validation_examples,
        seconds=round(time.perf_counter() - start, 1),
    )
