"""Super-network training with ordered dropout, inside a tf.distribute strategy.

One forward-backward pass trains a different sub-network per image (sampling.py). The step
is a custom `strategy.run` inside `tf.function`, which works under Mirrored,
MultiWorkerMirrored (where Keras' `fit` fails) and TPU strategies alike. The work directory
holds the resolved run record, checkpoints (a killed run resumes from the last good one,
losing at most `checkpoint_every_steps` steps or one epoch, and ends with the same weights
and log as an uninterrupted run: resume.py), TensorBoard logs, a JSON-lines log of epochs
and, at the end, the trained super-network (EMA weights when EMA is on).

The task follows the spec (netadapt_tf.space.task): a classifier learns (image, label) pairs by
cross-entropy, a depth network (image, depth) pairs by the masked L1 on the valid pixels
(netadapt_tf.depth.masked_l1); in-place distillation then teaches the sampled sub-networks
the full network's depth map (L1 over every pixel), and the monitor reports delta1.
"""

import dataclasses
import os
import time

import keras
import numpy as np
import tensorflow as tf

from netadapt_tf.common import atomic_files
from netadapt_tf.judge.evaluation import SubnetEvaluator
from netadapt_tf.space.arch import full_arch, random_arch, smallest_arch
from netadapt_tf.space.spec import NetworkSpec
from netadapt_tf.space.task import DEFAULT_SCORE, task_of
from netadapt_tf.supernet import checkpoint, distribute, resume
from netadapt_tf.supernet.network import arch_inputs, batch_norm_layers, build_supernet
from netadapt_tf.supernet.sampling import (
    OrderedDropoutSampler,
    SamplingConfig,
    replica_rows,
    shrinking_floor,
)
from netadapt_tf.supernet.slices import load_into_supernet
from netadapt_tf.training import fused_optimizers, run_record
from netadapt_tf.training import step as training_step

OPTIMIZERS = ("rmsprop", "sgd", "adam")
LOG_FILE = "train_log.jsonl"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The training recipe. Defaults are the paper's (Sec. 4.1.1, after MobileNetV3):
    RMSProp, 0.064 per 1024 images scaled linearly with the batch, x0.963 every 3 epochs,
    l2 weight decay 1e-5, EMA of weights 0.9998 (dropout 0.2 is a builder option).

    progressive_shrinking (not in the paper, for small budgets; 0 = off): during the first
    this fraction of the steps the smallest width on offer falls linearly from the full
    width to the smallest (sampling.shrinking_floor). bn_momentum: of the moving BN
    statistics (Keras' 0.99; short runs want less).

    Levers for small budgets (docs/training.md measures each): width_correlation and
    free_layer_probability (sampling.SamplingConfig: how the widths of an image's layers
    relate; 0 and 0 are the paper's independent draws); full_network: every step also
    trains the full network on the same images (a copy of the batch in the same forward
    pass, so BN statistics are updated once); distill: in-place distillation, the sampled
    sub-networks also learn the full network's soft outputs (from that copy, which
    distill adds when full_network is off, without its own loss); warm_start_steps: the
    first this many steps train only the full network; init_from: a Keras file (.keras)
    of the full network as a plain model (export_subnetwork's layers), trained alone, whose
    weights the super-network starts from (slices.load_into_supernet), for example the
    initial network the demo trains anyway; or a super-network checkpoint directory of the
    same spec (tools/import_model.py's output: a user's model at full width), whose weights
    are copied whole. A resumed run takes its checkpoint instead."""

    epochs: int = 1
    steps_per_epoch: int | None = None
    batch_size: int = 128
    learning_rate: float = 0.064
    lr_decay: float = 0.963
    lr_decay_epochs: float = 3.0
    warmup_epochs: float = 0.0
    optimizer: str = "rmsprop"
    momentum: float = 0.9
    rmsprop_rho: float = 0.9
    epsilon: float = 1e-3
    weight_decay: float = 1e-5
    ema_decay: float = 0.9998
    label_smoothing: float = 0.0
    sandwich: bool = False
    distill: bool = False
    full_network: bool = False
    width_correlation: float = 0.0
    free_layer_probability: float = 0.0
    warm_start_steps: int = 0
    init_from: str | None = None
    progressive_shrinking: float = 0.0
    bn_momentum: float = 0.99
    seed: int = 0
    checkpoint_every_steps: int = 0
    monitor_archs: int = 2
    eval_batch_size: int = 256
    max_eval_examples: int | None = 2000

    def __post_init__(self):
        positive = ("epochs", "batch_size", "learning_rate", "lr_decay_epochs", "eval_batch_size")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"train.{name}: {getattr(self, name)} must be > 0")
        if self.steps_per_epoch is not None and self.steps_per_epoch <= 0:
            raise ValueError(f"train.steps_per_epoch: {self.steps_per_epoch} must be > 0")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"train.optimizer: {self.optimizer!r} is not one of {OPTIMIZERS}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"train.ema_decay: {self.ema_decay} must be in [0, 1); 0 is off")
        if not 0 <= self.progressive_shrinking <= 1:
            raise ValueError(
                f"train.progressive_shrinking: {self.progressive_shrinking} must be in [0, 1]; "
                "0 is off"
            )
        if not 0 < self.bn_momentum < 1:
            raise ValueError(f"train.bn_momentum: {self.bn_momentum} must be in (0, 1)")
        self._check_ranges()
        if self.sandwich and self.batch_size < 4:
            raise ValueError(f"train.batch_size: {self.batch_size} is too small for sandwich")
        if isinstance(self.warm_start_steps, bool) or not isinstance(self.warm_start_steps, int):
            raise TypeError(f"train.warm_start_steps: {self.warm_start_steps!r} is not an int")
        if self.warm_start_steps < 0:
            raise ValueError(f"train.warm_start_steps: {self.warm_start_steps} must be >= 0")
        if self.init_from is not None and (
            not isinstance(self.init_from, str)
            or not (self.init_from.endswith(".keras") or os.path.isdir(self.init_from))
        ):
            raise ValueError(
                f"train.init_from: {self.init_from!r} is not allowed; must be the path of a "
                ".keras file of the full network, a super-network checkpoint directory (an "
                "import: tools/import_model.py --output), or None"
            )
        self.sampling()  # checks the sampling fields

    def _check_ranges(self) -> None:
        """The numeric fields not checked above: each in its allowed range."""
        ranges = {
            "lr_decay": ("in (0, 1]", lambda v: 0 < v <= 1),
            "warmup_epochs": (">= 0", lambda v: v >= 0),
            "weight_decay": (">= 0", lambda v: v >= 0),
            "label_smoothing": ("in [0, 1)", lambda v: 0 <= v < 1),
            "momentum": ("in [0, 1)", lambda v: 0 <= v < 1),
            "seed": (">= 0", lambda v: v >= 0),
            "checkpoint_every_steps": (">= 0 (0: once per epoch)", lambda v: v >= 0),
            "monitor_archs": (">= 0", lambda v: v >= 0),
            "max_eval_examples": (">= 1 (or None: all)", lambda v: v is None or v >= 1),
        }
        for name, (allowed, ok) in ranges.items():
            if not ok(getattr(self, name)):
                raise ValueError(f"train.{name}: {getattr(self, name)} must be {allowed}")

    def sampling(self) -> SamplingConfig:
        return SamplingConfig(
            sandwich=self.sandwich,
            width_correlation=self.width_correlation,
            free_layer_probability=self.free_layer_probability,
        )


@keras.saving.register_keras_serializable(package="netadapt_tf")
class StaircaseDecay(keras.optimizers.schedules.LearningRateSchedule):
    """initial * rate^floor(step / decay_steps), with an optional linear warm-up."""

    def __init__(self, initial, rate, decay_steps, warmup_steps=0):
        self.initial, self.rate = float(initial), float(rate)
        self.decay_steps, self.warmup_steps = int(decay_steps), int(warmup_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        lr = self.initial * self.rate ** tf.floor(step / self.decay_steps)
        if self.warmup_steps:
            lr *= tf.minimum(1.0, (step + 1.0) / self.warmup_steps)
        return lr

    def get_config(self):
        return {
            "initial": self.initial,
            "rate": self.rate,
            "decay_steps": self.decay_steps,
            "warmup_steps": self.warmup_steps,
        }


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimizer of `config` on its staircase schedule: Keras' rule, each variable
    updated by one fused kernel (fused_optimizers)."""
    lr = StaircaseDecay(
        config.learning_rate * config.batch_size / 1024,
        config.lr_decay,
        max(1, round(config.lr_decay_epochs * steps_per_epoch)),
        round(config.warmup_epochs * steps_per_epoch),
    )
    ema = {"use_ema": config.ema_decay > 0, "ema_momentum": config.ema_decay or 0.99}
    if config.optimizer == "rmsprop":
        return fused_optimizers.FusedRMSprop(
            lr, rho=config.rmsprop_rho, momentum=config.momentum, epsilon=config.epsilon, **ema
        )
    if config.optimizer == "sgd":
        return fused_optimizers.FusedSGD(lr, momentum=config.momentum, nesterov=True, **ema)
    return fused_optimizers.FusedAdam(lr, epsilon=config.epsilon, **ema)


@dataclasses.dataclass(frozen=True)
class TrainResult:
    supernet_dir: str
    steps: int
    seconds: float
    images_per_second: float
    monitor: dict


def check_batch_size(batch_size: int, replicas: int) -> int:
    """The per-replica batch; the global batch must divide among the replicas."""
    if batch_size % replicas:
        raise ValueError(
            f"train.batch_size: {batch_size} does not divide among {replicas} replicas; "
            f"use a multiple of {replicas}"
        )
    return batch_size // replicas


def check_steps_per_epoch(config: TrainConfig, num_train: int, replicas: int) -> int:
    """The steps of one epoch: `config.steps_per_epoch`, else as many full batches as
    `num_train` examples hold; the batch must divide among the replicas and fit the data."""
    check_batch_size(config.batch_size, replicas)
    steps = config.steps_per_epoch or num_train // config.batch_size
    if steps < 1:
        raise ValueError(
            f"train.batch_size: {config.batch_size} is larger than the {num_train} "
            "training examples"
        )
    return steps


# What a run writes besides run.json and held_out_split.json; removed by overwrite.
OUTPUTS = ("checkpoints", "tensorboard", "supernet", LOG_FILE)


def check_run_record(workdir: str, record: dict, overwrite: bool) -> None:
    """Refuses a work directory made with other settings (epochs may grow on a resume);
    with `overwrite`, removes what the old run left so the new one starts afresh."""
    run_record.check(workdir, record, overwrite, TrainConfig, outputs=OUTPUTS)


class SupernetTrainer:
    """Trains the super-network of `spec` on (image, label) datasets (unbatched).

    `train` is a dataset, or a function epoch -> dataset whose order is fixed per epoch
    (data.Datasets.train_for_epoch), which makes a resumed run read exactly the same data.
    """

    def __init__(
        self,
        spec: NetworkSpec,
        train: tf.data.Dataset,
        held_out: tf.data.Dataset,
        num_train: int,
        config: TrainConfig,
        workdir: str,
        strategy: tf.distribute.Strategy | None = None,
        data_record: dict | None = None,
        overwrite: bool = False,
        log=print,
        progress: bool = True,
    ):
        self.spec, self.config, self.workdir = spec, config, workdir
        self.task = task_of(spec)
        # The log's names of the score: accuracy (classification) or delta1 (depth).
        self.score_name = DEFAULT_SCORE[self.task]
        self.progress = progress
        self.strategy = strategy or distribute.mirrored()
        self.log = log if distribute.is_chief(self.strategy) else (lambda *a, **k: None)
        replicas = self.strategy.num_replicas_in_sync
        self.steps_per_epoch = check_steps_per_epoch(config, num_train, replicas)
        self.total_steps = config.epochs * self.steps_per_epoch
        self.train_data, self.held_out, self.num_train = train, held_out, num_train
        record = {
            "spec": spec.to_json(),
            "spec_fingerprint": spec.fingerprint(),
            "train": dataclasses.asdict(config),
            "data": data_record or {},
            "replicas": replicas,
        }
        if distribute.is_chief(self.strategy):
            check_run_record(workdir, record, overwrite)
        keras.utils.set_random_seed(config.seed)  # the same initial weights on every worker
        self._build_model()
        self.sampler = OrderedDropoutSampler(spec, config.sampling())
        self._decayed = training_step.kernels(self.model)
        self._full_rows = arch_inputs(spec, [full_arch(spec)])
        self._make_checkpoint_manager()
        self._step_fn = tf.function(self._distributed_step)
        self._warm_step_fn = tf.function(
            lambda batch, step: self._distributed_step(batch, step, True)
        )

    def _build_model(self) -> None:
        """The super-network and its optimizer, under the strategy's scope."""
        config = self.config
        with self.strategy.scope():
            self.model = build_supernet(self.spec)
            for bn in batch_norm_layers(self.model):
                bn.momentum = config.bn_momentum
            if config.init_from is not None:
                self._init_from(config.init_from)
            self.optimizer = make_optimizer(config, self.steps_per_epoch)
            self.optimizer.build(self.model.trainable_variables)

    def _make_checkpoint_manager(self) -> None:
        """Checkpoints of the model and optimizer: in checkpoints/ on the chief, in a
        directory of its own on every other worker."""
        ckpt_dir = os.path.join(self.workdir, "checkpoints")
        if not distribute.is_chief(self.strategy):
            worker = distribute.worker_id(self.strategy)
            ckpt_dir = os.path.join(self.workdir, f".worker{worker}")
        # Keras 3 models are not tracked by tf.train.Checkpoint, so their variables (BN
        # statistics and Dropout's generator state included) are listed explicitly; the
        # order is fixed by the spec.
        self.checkpoints = resume.TrainingCheckpoints(
            ckpt_dir,
            self.log,
            model_weights=resume.model_state(self.model),
            optimizer=self.optimizer,
        )

    def _init_from(self, path: str) -> None:
        """The full network's weights from a plain model trained alone, or every weight from
        a checkpoint directory of the same spec (TrainConfig.init_from)."""
        if os.path.isdir(path):
            source = checkpoint.load_supernet(path, expected_spec=self.spec)
            for mine, theirs in zip(self.model.weights, source.weights, strict=True):
                mine.assign(theirs)
            return
        if not os.path.isfile(path):
            raise ValueError(f"train.init_from: {path!r} is not a file")
        try:
            model = keras.models.load_model(path, compile=False)
        except (OSError, ValueError) as error:
            raise ValueError(f"train.init_from: {path!r} cannot be loaded: {error}") from None
        try:
            load_into_supernet(self.model, model, full_arch(self.spec))
        except ValueError as error:
            raise ValueError(
                f"train.init_from: {path!r} is not the full network of this spec: {error}"
            ) from None

    # -- the step ---------------------------------------------------------------------

    def _rows(self, batch, step, warm: bool):
        """(super-network inputs, paired): the sampled rows; paired: after `batch` copies
        of the full network (the step trains it too, or distils from it)."""
        config = self.config
        full = {k: tf.repeat(v, batch, axis=0) for k, v in self._full_rows.items()}
        if warm:
            return full, False
        # Progressive shrinking runs over the steps after the warm start.
        warm_steps = min(config.warm_start_steps, self.total_steps - 1)
        floor = shrinking_floor(
            step - warm_steps, self.total_steps - warm_steps, config.progressive_shrinking
        )
        rows = replica_rows(self.sampler, batch, config.seed, step, floor)
        if not (config.full_network or config.distill):
            return rows, False
        return {k: tf.concat([full[k], rows[k]], 0) for k in rows}, True

    def _replica_step(self, images, labels, step, warm=False):
        config = self.config
        batch = tf.shape(images)[0]
        rows, paired = self._rows(batch, step, warm)
        with tf.GradientTape() as tape:
            inputs = tf.concat([images, images], 0) if paired else images
            outputs = self.model({"image": inputs, **rows}, training=True)
            teacher = None
            if paired:
                teacher, outputs = outputs[:batch], outputs[batch:]
            # The full network's rows: distilled from (distill), trained too (full_network).
            distill_from = teacher if config.distill else None
            also = teacher if config.full_network else None
            if self.task == "depth":
                loss = training_step.depth_loss(
                    labels, outputs, config.batch_size, distill_from, also
                )
            else:
                num_classes = self.spec.num_classes
                target = tf.one_hot(tf.cast(labels, tf.int32), num_classes)
                per_example = training_step.classification_loss(
                    target, outputs, config.label_smoothing, num_classes, distill_from, also
                )
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=config.batch_size)
            loss = training_step.with_weight_decay(loss, config.weight_decay, self._decayed)
        variables = self.model.trainable_variables
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss, training_step.score_sum(self.task, labels, outputs)

    def _distributed_step(self, batch, step, warm=False):
        images, labels = batch
        return training_step.replicas_sum(
            self.strategy, self._replica_step, (images, labels, step, warm)
        )

    # -- data and monitoring ------------------------------------------------------------

    def _epoch_data(self, epoch: int, skip: int):
        config = self.config
        if callable(self.train_data):  # data.Datasets.train_for_epoch: order fixed per epoch
            ds = self.train_data(epoch)
        else:
            ds = self.train_data.shuffle(
                min(self.num_train, 4096), seed=config.seed + epoch, reshuffle_each_iteration=False
            )
        ds = ds.repeat().batch(config.batch_size, drop_remainder=True)
        ds = ds.skip(skip).take(self.steps_per_epoch - skip).prefetch(tf.data.AUTOTUNE)
        return self.strategy.experimental_distribute_dataset(ds)

    def monitor_archs(self) -> dict:
        rng = np.random.default_rng(self.config.seed)
        archs = {"full": full_arch(self.spec), "smallest": smallest_arch(self.spec)}
        for i in range(self.config.monitor_archs):
            archs[f"random{i}"] = random_arch(self.spec, rng)
        return archs

    def _evaluate(self, evaluator) -> dict:
        return {name: evaluator.accuracy(a) for name, a in self.monitor_archs().items()}

    # -- the loop -------------------------------------------------------------------------

    def run(self, on_step=None) -> TrainResult:
        """Trains to `config.epochs`, resuming from the last good checkpoint if there is
        one. on_step(step) is called after every step (progress hooks, tests)."""
        config = self.config
        chief = distribute.is_chief(self.strategy)
        log_path = os.path.join(self.workdir, LOG_FILE)
        restored, sums = self.checkpoints.restore()
        # Lines after the checkpoint (a kill between an epoch's log line and its
        # checkpoint) are written again by this run; a line torn by a kill is dropped.
        logged = resume.trim_journal(log_path, restored) if chief else []
        step = int(self.optimizer.iterations.numpy())
        total_steps = config.epochs * self.steps_per_epoch
        writer = tf.summary.create_file_writer(os.path.join(self.workdir, "tensorboard"))
        # The sliced forward: the same accuracies at the judged sub-network's cost (2.4 s an
        # epoch against 5.4 s masked, four archs of the demo's network; docs/benchmarks.md).
        evaluator = SubnetEvaluator(
            self.model, self.held_out, config.eval_batch_size, config.max_eval_examples, fast=True
        )
        monitor = logged[-1].get(f"held_out_{self.score_name}", {}) if logged else {}
        start, images_seen = time.perf_counter(), 0
        while step < total_steps:
            epoch, skip = divmod(step, self.steps_per_epoch)
            first = step
            step, loss_sum, hits_sum = self._train_epoch(epoch, skip, sums, on_step)
            sums = (0.0, 0.0)
            images_seen += (step - first) * config.batch_size
            monitor = self._evaluate(evaluator)
            entry = self._epoch_entry(epoch, step, loss_sum, hits_sum, monitor)
            self._log_epoch(writer, log_path, entry)
            self.checkpoints.save(step)  # after the log line: a kill between loses nothing
        seconds = time.perf_counter() - start
        supernet_dir = os.path.join(self.workdir, "supernet")
        if config.ema_decay:
            self.optimizer.finalize_variable_values(self.model.trainable_variables)
        if chief:
            checkpoint.save_supernet(self.model, supernet_dir)
        return TrainResult(
            supernet_dir=supernet_dir,
            steps=step,
            seconds=seconds,
            images_per_second=images_seen / seconds if seconds > 0 else 0.0,
            monitor=monitor,
        )

    def _train_epoch(self, epoch: int, skip: int, sums, on_step) -> tuple[int, float, float]:
        """Trains the rest of `epoch` after its first `skip` steps, whose (loss, score)
        sums are `sums`; returns (the step reached, the epoch's sum of the steps' losses,
        the sum of their scores)."""
        config = self.config
        chief = distribute.is_chief(self.strategy)
        bar = keras.utils.Progbar(self.steps_per_epoch, verbose=1 if chief and self.progress else 0)
        bar.update(skip)
        step = epoch * self.steps_per_epoch + skip
        end = (epoch + 1) * self.steps_per_epoch

        def run_step(batch, step):
            step_fn = self._warm_step_fn if step < config.warm_start_steps else self._step_fn
            return step_fn(batch, tf.constant(step, tf.int64))

        def after_step(step, loss):
            bar.update(step - epoch * self.steps_per_epoch, [("loss", loss)])
            if on_step is not None:
                on_step(step)

        return training_step.run_steps(
            self._epoch_data(epoch, skip),
            step,
            end,
            run_step,
            sums,
            checkpoint_every=config.checkpoint_every_steps,
            save=self.checkpoints.save,
            on_step=after_step,
            failed=lambda loss, step: (
                f"loss became {loss} at step {step} (epoch {epoch}); lower the learning "
                f"rate or check the data; the last checkpoint is kept in {self.workdir}"
            ),
        )

    def _epoch_entry(self, epoch, step, loss_sum, hits_sum, monitor) -> dict:
        """The log entry of `epoch` (every step of it, this run's or a resumed one's)."""
        done = self.steps_per_epoch
        return {
            "epoch": epoch + 1,
            "step": step,
            "loss": loss_sum / done,
            f"train_{self.score_name}": hits_sum / (done * self.config.batch_size),
            "learning_rate": float(self.optimizer.learning_rate),
            f"held_out_{self.score_name}": monitor,
        }

    def _log_epoch(self, writer, log_path: str, entry: dict) -> None:
        """An epoch's entry in the JSON-lines log and TensorBoard (on the chief) and in
        the log."""
        train_key, held_out_key = f"train_{self.score_name}", f"held_out_{self.score_name}"
        monitor = entry[held_out_key]
        if distribute.is_chief(self.strategy):
            with writer.as_default(step=entry["step"]):
                tf.summary.scalar("loss", entry["loss"])
                tf.summary.scalar(train_key, entry[train_key])
                tf.summary.scalar("learning_rate", entry["learning_rate"])
                for name, acc in monitor.items():
                    tf.summary.scalar(f"{held_out_key}/{name}", acc)
            atomic_files.append_line(log_path, entry)
        self.log(
            f"epoch {entry['epoch']}/{self.config.epochs}: loss {entry['loss']:.4f}, held-out "
            + f"{self.score_name} "
            + ", ".join(f"{k} {v:.3f}" for k, v in monitor.items())
        )
