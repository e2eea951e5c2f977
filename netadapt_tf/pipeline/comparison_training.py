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

import tensorflow as tf

from netadapt_tf.discovered.trainer import DiscoveredOptions, DiscoveredTrainer
from netadapt_tf.pipeline import comparison
from netadapt_tf.space.arch import load_arch
from netadapt_tf.space.spec import NetworkSpec
from netadapt_tf.supernet import checkpoint
from netadapt_tf.supernet.network import build_supernet
from netadapt_tf.supernet.training import TrainConfig


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
) -> list[comparison.Run]:
    """Trains every (network, seed) not recorded in workdir/results.json yet; returns all
    runs of the column. `config.seed` is replaced by each run's seed."""
    if mode not in comparison.COLUMNS:
        raise ValueError(f"mode: {mode!r} is not one of {comparison.COLUMNS}")
    workdir = pathlib.Path(workdir)
    results = workdir / comparison.RESULTS_FILE
    runs = []
    if results.exists():
        recorded_mode, runs = comparison.read_results(results)
        if recorded_mode != mode:
            raise ValueError(
                f"workdir: {results} holds the {recorded_mode!r} column, not {mode!r}; use "
                "another work directory"
            )
    done = {(run.name, run.seed) for run in runs}
    source = supernet_dir if mode == "inherit" else None
    strategy = tf.distribute.MirroredStrategy()
    template = None
    for network in networks:
        arch = load_arch(pathlib.Path(arch_dir) / network.arch, spec)
        for seed in network.seeds:
            if (network.name, seed) in done:
                continue
            start = time.perf_counter()
            if template is None:  # built once: the weights every inherit run starts from
                with strategy.scope():
                    template = (
                        checkpoint.load_supernet(source, spec) if source else build_supernet(spec)
                    )
            trainer = DiscoveredTrainer(
                spec,
                arch,
                datasets.train_for_epoch,
                datasets.validation,
                datasets.num_train,
                dataclasses.replace(config, seed=seed),
                DiscoveredOptions(mode=mode),
                str(workdir / network.name / f"seed{seed}"),
                supernet_dir=source,
                strategy=strategy,
                data_record=data_record,
                saved_model=False,  # the comparison needs model.keras only
                log=log,
                template=template,
            )
            result = trainer.run()
            run = comparison.Run(
                name=network.name,
                seed=seed,
                accuracy=result.validation_accuracy,
                examples=result.validation_examples,
                seconds=round(time.perf_counter() - start, 1),
            )
            runs.append(run)
            comparison.write_results(results, mode, runs)
            log(
                f"{mode} {network.name} seed {seed}: accuracy {run.accuracy:.4f} on "
                f"{run.examples} images, {run.seconds:.0f} s"
            )
            del trainer  # its model and traced steps are not needed again
            gc.collect()
    return runs
