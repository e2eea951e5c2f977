"""Training the discovered network: the exported sub-network, as a plain Keras model.

Three modes (`DiscoveredOptions.mode`):
  scratch     the exported architecture, freshly initialized
  inherit     the weights of the trained super-network (what export_subnetwork cuts out)
  trajectory  trajectory knowledge transfer (paper, Appendix A.2): start from the trained
              initial network (the full arch exported from the super-network, or a saved
              initial model), follow the search trajectory arch by arch, copying the
              overlapping weights of each step's trained model into the next
              (graphs/weight_transfer.py) and training each intermediate arch for
              `steps_per_trajectory_arch` steps, then train the last arch to convergence.

A run is a list of phases (one per arch trained). Each phase checkpoints its model and
optimizer every `checkpoint_every_steps` steps and at each epoch end (verified checkpoints
of every model variable, supernet/resume.py), and leaves its trained weights in `phases/`
when done (with a checksum), so a killed run resumes where it stopped and ends with the
same weights and log as an uninterrupted one. The training
batches are one stream fixed by (data seed, epoch) that the phases read in turn, so a
resumed run reads what the interrupted one would have. The recipe is TrainConfig's
(supernet_trainer.make_optimizer), plus recipe.py's augmentation and stochastic depth,
and optional distillation from a teacher. Outputs are in docs/discovered.md.

A depth network (netadapt_tf.space.task) trains with the masked L1 on the valid pixels and, with
distillation, the L1 to the teacher's depth map; its reports give delta1 while training and
the depth metrics (RMSE, delta1/2/3, abs_rel) on the validation set where a classifier's
give top-1 accuracy. The classification augmentations (RandAugment, MixUp, CutMix) are
refused for it.
"""

import dataclasses
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from netadapt_tf.common import atomic_files, checksums
from netadapt_tf.common.strict_json import RecordError
from netadapt_tf.depth import MetricsAccumulator
from netadapt_tf.discovered import recipe
from netadapt_tf.discovered.outputs import (
    OUTPUT_FILES,
    append_log,
    check_initial_model,
    save_outputs,
)
from netadapt_tf.discovered.trajectory import check_trajectory
from netadapt_tf.graphs.export import export_subnetwork
from netadapt_tf.graphs.weight_transfer import copy_overlapping_weights
from netadapt_tf.space.arch import Arch, full_arch, validate_arch
from netadapt_tf.space.arch_table import architecture_markdown
from netadapt_tf.space.spec import NetworkSpec
from netadapt_tf.space.subnet import resolve
from netadapt_tf.space.task import DEFAULT_SCORE, task_of
from netadapt_tf.supernet import checkpoint, distribute, resume
from netadapt_tf.supernet.network import arch_inputs, build_supernet
from netadapt_tf.training import run_record
from netadapt_tf.training import step as training_step
from netadapt_tf.training.supernet_trainer import TrainConfig, check_steps_per_epoch, make_optimizer

MODES = ("scratch", "inherit", "trajectory")


def _stamped(save_weights):
    """save_weights(path), then the file's checksum stamp (common/checksums.py)."""

    def save(path: str) -> None:
        save_weights(path)
        checksums.stamp_h5(path)

    return save


@dataclasses.dataclass(frozen=True)
class DiscoveredOptions:
    """What is trained and how, beyond TrainConfig's recipe. 0 turns an augmentation off."""

    mode: str = "inherit"
    steps_per_trajectory_arch: int = 100
    rand_augment_magnitude: float = 0.0
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    stochastic_depth: float = 0.0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"discovered.mode: {self.mode!r} is not one of {MODES}")
        if self.steps_per_trajectory_arch < 1:
            raise ValueError(
                f"discovered.steps_per_trajectory_arch: {self.steps_per_trajectory_arch} "
                "must be >= 1"
            )
        if not 0 <= self.rand_augment_magnitude <= 1:
            raise ValueError(
                f"discovered.rand_augment_magnitude: {self.rand_augment_magnitude} must be in "
                "[0, 1]; 0 is off"
            )
        for name in ("mixup_alpha", "cutmix_alpha"):
            if getattr(self, name) < 0:
                raise ValueError(f"discovered.{name}: {getattr(self, name)} must be >= 0; 0 is off")
        if not 0 <= self.stochastic_depth < 1:
            raise ValueError(
                f"discovered.stochastic_depth: {self.stochastic_depth} must be in [0, 1); 0 is off"
            )


@dataclasses.dataclass(frozen=True)
class Phase:
    arch: Arch
    steps: int
    start: int  # index of its first batch in the run's stream of training batches
    final: bool


@dataclasses.dataclass(frozen=True)
class DiscoveredResult:
    """`validation`: the validation metrics by name: {"accuracy": top-1} for a classifier,
    the five depth metrics (depth.METRIC_NAMES) for a depth network."""

    files: dict
    steps: int
    seconds: float
    validation: dict
    validation_examples: int

    @property
    def validation_accuracy(self) -> float | None:
        """Top-1 accuracy of a classifier (None for a depth network)."""
        return self.validation.get("accuracy")

    def summary(self) -> dict:
        """What result.json and the tool print: validation_<metric> per metric."""
        return {
            **{f"validation_{name}": value for name, value in self.validation.items()},
            "validation_examples": self.validation_examples,
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class DiscoveredRun:
    """One discovered-network run: `arch` of `spec` trained with `config` and `options` in
    the work directory `workdir`, and the files it starts from. DiscoveredTrainer checks it.

    `arch` may be None in trajectory mode (the trajectory's last arch). `supernet_dir` is a
    super-network checkpoint (needed by inherit, by trajectory without `initial_model`, and
    as the default teacher); `initial_model` a saved Keras model of `initial_arch` (default:
    the full network); `teacher_model` a saved Keras model whose soft outputs
    `TrainConfig.distill` learns. `data_record` goes into run.json as the data the run
    trains on; `overwrite` replaces a work directory of another run;
    `saved_model=False` skips the SavedModel export (slow; tests).
    """

    spec: NetworkSpec
    arch: Arch | None
    config: TrainConfig
    options: DiscoveredOptions = DiscoveredOptions()
    workdir: str
    supernet_dir: str | None = None
    trajectory: tuple[Arch, ...] | None = None
    initial_model: str | None = None
    initial_arch: Arch | None = None
    teacher_model: str | None = None
    data_record: dict | None = None
    overwrite: bool = False
    saved_model: bool = True


class DiscoveredTrainer:
    """Trains a DiscoveredRun; see the module docstring.

    `train` is a function epoch -> unbatched (image, label) dataset whose order is fixed per
    epoch (data.Datasets.train_for_epoch). `template` is a super-network of the run's spec
    built (or, with `supernet_dir`, loaded from it) under `strategy` by the caller: a process
    that trains many networks builds it once instead of once per trainer
    (pipeline/comparison_training.py). Every input is checked before anything is trained.
    """

    def __init__(
        self,
        run: DiscoveredRun,
        train,
        validation: tf.data.Dataset,
        num_train: int,
        *,
        strategy: tf.distribute.Strategy | None = None,
        log=print,
        template=None,
    ):
        spec, config, options = run.spec, run.config, run.options
        self.spec, self.config, self.options, self.workdir = spec, config, options, run.workdir
        self.task = task_of(spec)
        self.saved_model = run.saved_model
        self.train_data, self.validation = train, validation
        self.strategy = strategy or distribute.mirrored()
        chief = distribute.is_chief(self.strategy)
        self.chief, self.log = chief, log if chief else (lambda *a, **k: None)
        self.initial_arch = run.initial_arch or full_arch(spec)
        self.arch = self._check_inputs(
            run.arch, run.trajectory, run.supernet_dir, run.initial_model, run.teacher_model
        )
        self.trajectory = tuple(run.trajectory) if options.mode == "trajectory" else ()
        replicas = self.strategy.num_replicas_in_sync
        self.steps_per_epoch = check_steps_per_epoch(config, num_train, replicas)
        self.phases = self._plan()
        paths = {"supernet_checkpoint": run.supernet_dir, "initial_model": run.initial_model}
        paths["teacher_model"] = run.teacher_model
        record = self._run_record(paths, run.data_record, replicas)
        keras.utils.set_random_seed(config.seed)
        with self.strategy.scope():  # loading fails here, before the work dir is touched
            self._load_models(run.supernet_dir, run.initial_model, run.teacher_model, template)
        if chief:
            run_record.check(
                run.workdir,
                record,
                run.overwrite,
                TrainConfig,
                DiscoveredOptions,
                outputs=OUTPUT_FILES,
            )
        self._predict = {}
        self.augment = recipe.make_augmenter(
            options.rand_augment_magnitude, options.mixup_alpha, options.cutmix_alpha, config.seed
        )

    def _run_record(self, paths: dict, data_record: dict | None, replicas: int) -> dict:
        """What run.json holds: the settings a resumed run must share."""
        return {
            "spec": self.spec.to_json(),
            "spec_fingerprint": self.spec.fingerprint(),
            "arch": self.arch.to_json(),
            "initial_arch": self.initial_arch.to_json() if self.trajectory else None,
            "trajectory": [a.to_json() for a in self.trajectory] or None,
            "train": dataclasses.asdict(self.config),
            "discovered": dataclasses.asdict(self.options),
            "sources": {k: v and os.path.abspath(v) for k, v in paths.items()},
            "data": data_record or {},
            "replicas": replicas,
        }

    def _load_models(self, supernet_dir, initial_model, teacher_model, template) -> None:
        """The super-network (or None), the template the plain models are cut from, the
        saved initial model (or None) and the teacher (or None); under the strategy."""
        if template is not None:
            self.supernet = template if supernet_dir else None
            self.template = template
        else:
            self.supernet = (
                checkpoint.load_supernet(supernet_dir, self.spec) if supernet_dir else None
            )
            self.template = self.supernet or build_supernet(self.spec)
        self.initial = None
        if self.trajectory and initial_model:
            initial_template = export_subnetwork(self.template, self.initial_arch)
            self.initial = check_initial_model(initial_model, initial_template)
        self.teacher = self._make_teacher(teacher_model) if self.config.distill else None

    # -- checks and plan ----------------------------------------------------------------

    def _check_inputs(self, arch, trajectory, supernet_dir, initial_model, teacher_model) -> Arch:
        mode, spec = self.options.mode, self.spec
        if mode == "inherit" and not supernet_dir:
            raise ValueError(
                "supernet_dir: mode 'inherit' needs a super-network checkpoint to inherit from"
            )
        if mode == "trajectory":
            if trajectory is None:
                raise ValueError("trajectory: mode 'trajectory' needs the search's trajectory")
            if not (supernet_dir or initial_model):
                raise ValueError(
                    "initial_model: mode 'trajectory' needs the trained initial network: a "
                    "super-network checkpoint (supernet_dir) or a saved initial model"
                )
            validate_arch(spec, self.initial_arch)
            if arch is not None:
                validate_arch(spec, arch)
            check_trajectory(spec, tuple(trajectory), self.initial_arch, arch)
            arch = arch or tuple(trajectory)[-1]
        elif trajectory is not None:
            raise ValueError(f"trajectory: given, but mode is {mode!r}; it needs 'trajectory'")
        if arch is None:
            raise ValueError(f"arch: mode {mode!r} needs the arch to train")
        validate_arch(spec, arch)
        if self.config.distill and not (supernet_dir or teacher_model):
            raise ValueError(
                "teacher_model: distill needs a teacher: a super-network checkpoint (its full "
                "network) or a saved Keras model"
            )
        if self.config.sandwich:
            raise ValueError("train.sandwich: True only applies to super-network training")
        if self.task == "depth":
            for name in ("rand_augment_magnitude", "mixup_alpha", "cutmix_alpha"):
                value = getattr(self.options, name)
                if value:
                    raise ValueError(
                        f"discovered.{name}: {value} is not allowed for {spec.name}, a depth "
                        "network (the augmentation would change images, not their depth "
                        "maps); allowed: 0"
                    )
            if self.config.label_smoothing:
                raise ValueError(
                    f"train.label_smoothing: {self.config.label_smoothing} is not allowed for "
                    f"{spec.name}, a depth network; allowed: 0"
                )
        return arch

    def _plan(self) -> tuple[Phase, ...]:
        final_steps = self.config.epochs * self.steps_per_epoch
        steps = self.options.steps_per_trajectory_arch
        archs = [(a, steps) for a in self.trajectory[1:-1]] + [(self.arch, final_steps)]
        phases, start = [], 0
        for i, (arch, count) in enumerate(archs):
            phases.append(Phase(arch, count, start, i == len(archs) - 1))
            start += count
        return tuple(phases)

    def _make_teacher(self, teacher_model):
        if teacher_model:
            model = keras.saving.load_model(teacher_model, compile=False)
            shape = tuple(model.output_shape)
            size = self.spec.input_size
            if self.task == "depth":
                want, allowed = (None, size, size, self.spec.dense_channels), "depth maps"
            else:
                want, allowed = (None, self.spec.num_classes), "logits"
            if shape != want:
                raise ValueError(
                    f"teacher_model: {teacher_model} outputs shape {shape}; allowed: {want}, "
                    f"{allowed} like those of {self.spec.name!r}"
                )
            return lambda images: model(images, training=False)
        rows = arch_inputs(self.spec, [full_arch(self.spec)])
        supernet = self.supernet

        def full_network(images):
            batch = tf.shape(images)[0]
            tiled = {k: tf.repeat(tf.constant(v), batch, axis=0) for k, v in rows.items()}
            return supernet({"image": images, **tiled}, training=False)

        return full_network

    # -- models ---------------------------------------------------------------------------

    def _phase_weights(self, index: int) -> str:
        return os.path.join(self.workdir, "phases", f"phase{index:03d}.weights.h5")

    def _phase_done(self, index: int) -> bool:
        """Whether phase `index` left good weights; damaged ones are reported and the
        phase is finished again from its checkpoints."""
        path = self._phase_weights(index)
        if not os.path.exists(path):
            return False
        try:
            checksums.verify_h5(path)
        except RecordError as error:
            self.log(f"phase {index}: {error}; finishing the phase again from its checkpoints")
            return False
        return True

    def _start_model(self, index: int) -> keras.Model:
        """The plain model of phase `index` with the weights it starts from, its batch-norm
        momentum set to the recipe's (config.bn_momentum)."""
        model = self._start_weights(index)
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = self.config.bn_momentum
        return model

    def _start_weights(self, index: int) -> keras.Model:
        phase, mode = self.phases[index], self.options.mode
        model = export_subnetwork(self.template, phase.arch)
        if mode == "scratch":
            keras.utils.set_random_seed(self.config.seed)
            return keras.models.clone_model(model)  # fresh initializers, same layers
        if mode == "inherit":
            return model
        if index == 0:
            source_arch = self.initial_arch
            source = self.initial or export_subnetwork(self.template, source_arch)
        else:
            source_arch = self.phases[index - 1].arch
            source = export_subnetwork(self.template, source_arch)
            checksums.verify_h5(self._phase_weights(index - 1))
            source.load_weights(self._phase_weights(index - 1))
        copy_overlapping_weights(self.spec, source_arch, source, phase.arch, model)
        return model

    # -- the step and the data ------------------------------------------------------------

    def _step_function(self, model, optimizer):
        config, classes = self.config, self.spec.num_classes
        decayed = training_step.kernels(model)

        def replica_step(images, targets):
            with tf.GradientTape() as tape:
                outputs = model(images, training=True)
                teacher = self.teacher(images) if self.teacher is not None else None
                if self.task == "depth":
                    loss = training_step.depth_loss(
                        targets, outputs, config.batch_size, distill_from=teacher
                    )
                else:
                    per_example = training_step.classification_loss(
                        targets, outputs, config.label_smoothing, classes, distill_from=teacher
                    )
                    loss = tf.nn.compute_average_loss(
                        per_example, global_batch_size=config.batch_size
                    )
                loss = training_step.with_weight_decay(loss, config.weight_decay, decayed)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            labels = targets if self.task == "depth" else tf.argmax(targets, -1)
            return loss, training_step.score_sum(self.task, labels, outputs)

        @tf.function
        def step(batch):
            return training_step.replicas_sum(self.strategy, replica_step, batch)

        return step

    def _batches(self, start: int, count: int):
        """Batches start .. start + count - 1 of the run's stream of training batches."""
        classes, spe = self.spec.num_classes, self.steps_per_epoch
        while count > 0:
            epoch, skip = divmod(start, spe)
            take = min(count, spe - skip)
            ds = self.train_data(epoch).repeat().batch(self.config.batch_size, drop_remainder=True)
            ds = ds.skip(skip).take(take)
            if self.task == "classification":
                ds = ds.map(lambda x, y: (x, tf.one_hot(y, classes)))
            if self.augment is not None:
                ds = ds.map(self.augment)
            yield from self.strategy.experimental_distribute_dataset(ds.prefetch(2))
            start, count = start + take, count - take

    def evaluate(self, model: keras.Model) -> tuple[dict, int]:
        """({"accuracy": top-1} or the depth metrics by name, examples) of `model` on the
        validation set (at most max_eval_examples)."""
        ds = self.validation
        if self.config.max_eval_examples:
            ds = ds.take(self.config.max_eval_examples)
        if id(model) not in self._predict:  # one trace per model, not one per epoch
            if self.task == "depth":
                predict = lambda x: model(x, training=False)  # noqa: E731
            else:
                predict = lambda x: tf.argmax(model(x, training=False), -1)  # noqa: E731
            self._predict[id(model)] = tf.function(predict)
        predict = self._predict[id(model)]
        batches = ds.batch(self.config.eval_batch_size)
        if self.task == "depth":
            accumulator, seen = MetricsAccumulator(), 0
            for images, depth in batches:
                accumulator.add(predict(images), depth)
                seen += len(depth)
            return accumulator.result().values(), seen
        hits = seen = 0
        for images, labels in batches:
            hits += int(np.sum(predict(images).numpy() == labels.numpy()))
            seen += len(labels)
        return {"accuracy": hits / max(seen, 1)}, seen

    def accuracy(self, model: keras.Model) -> tuple[float, int]:
        """Top-1 accuracy (delta1 for a depth network) of `model` on the validation set."""
        metrics, seen = self.evaluate(model)
        return metrics[DEFAULT_SCORE[self.task]], seen

    # -- the loop -------------------------------------------------------------------------

    def run(self, on_step=None, on_phase=None) -> DiscoveredResult:
        """Trains every phase not done yet, then writes the outputs. on_phase(index, arch,
        model) is called when a phase's model is ready, on_step(index, step) after every
        step (progress hooks, tests)."""
        start = time.perf_counter()
        for index, phase in enumerate(self.phases):
            if not phase.final and self._phase_done(index):
                continue
            plain, model, rates, scored = self._train_phase(index, on_step, on_phase)
        plain.set_weights(model.get_weights())
        recipe.fold_stochastic_depth(plain, rates)
        # The last epoch's score stands when it scored these very weights: no EMA average
        # swapped in after it, no stochastic depth folded (a resumed, finished run scores).
        metrics, examples = scored if scored and not rates else self.evaluate(plain)
        shown = ", ".join(f"{name} {value:.4f}" for name, value in metrics.items())
        self.log(f"validation {shown} on {examples} examples")
        result = DiscoveredResult(
            files={},
            steps=self.phases[-1].start + self.phases[-1].steps,
            seconds=time.perf_counter() - start,
            validation=metrics,
            validation_examples=examples,
        )
        if self.chief:
            table = architecture_markdown(self.spec, self.arch, "The discovered network")
            files = save_outputs(self.workdir, plain, self.arch, table, self.saved_model)
            atomic_files.write_json(os.path.join(self.workdir, "result.json"), result.summary())
            result = dataclasses.replace(result, files=files)
        return result

    def _train_phase(self, index, on_step, on_phase):
        phase, config = self.phases[index], self.config
        if not phase.final:  # EMA is for the converged network; steps in between are short
            config = dataclasses.replace(config, ema_decay=0.0)
        plain, model, optimizer, rates = self._phase_models(index, config)
        if on_phase is not None:
            on_phase(index, phase.arch, plain)
        checkpoints, sums = self._phase_checkpoints(index, model, optimizer)
        step_fn = self._step_function(model, optimizer)
        step = int(optimizer.iterations.numpy())
        scored = None  # (metrics, examples) of the weights as they are now
        while step < phase.steps:
            first = step // self.steps_per_epoch * self.steps_per_epoch  # the epoch's start
            end = min(phase.steps, first + self.steps_per_epoch)
            step, loss_sum, hits_sum = self._train_steps(
                index, step, end, step_fn, checkpoints, sums, on_step
            )
            sums = (0.0, 0.0)
            entry = {
                "phase": index,
                "step": step,
                "final": phase.final,
                "loss": loss_sum / (step - first),
                f"train_{DEFAULT_SCORE[self.task]}": hits_sum
                / ((step - first) * config.batch_size),
                "learning_rate": float(optimizer.learning_rate),
            }
            if phase.final:
                entry["epoch"] = step // self.steps_per_epoch
                scored = self.evaluate(model)
                entry.update({f"validation_{name}": value for name, value in scored[0].items()})
            if self.chief:  # before the checkpoint: a kill between loses no line
                append_log(os.path.join(self.workdir, "train_log.jsonl"), entry)
            self.log(json.dumps(entry))
            checkpoints.save(step)
        if phase.final:
            if config.ema_decay:
                optimizer.finalize_variable_values(model.trainable_variables)
                scored = None
        elif self.chief:
            plain.set_weights(model.get_weights())
            os.makedirs(os.path.dirname(self._phase_weights(index)), exist_ok=True)
            atomic_files.write_with(self._phase_weights(index), _stamped(plain.save_weights))
        return plain, model, rates, scored

    def _phase_models(self, index: int, config: TrainConfig):
        """(plain model, model trained: the plain one with stochastic depth if on,
        its optimizer, stochastic depth rates) of phase `index`, under the strategy."""
        sub = resolve(self.spec, self.phases[index].arch)
        rates = recipe.stochastic_depth_rates(sub, self.options.stochastic_depth)
        rates = rates if self.options.stochastic_depth else {}
        with self.strategy.scope():
            plain = self._start_model(index)
            model = recipe.with_stochastic_depth(plain, rates) if rates else plain
            distribute.sync_batch_norm(model, self.strategy)
            optimizer = make_optimizer(config, self.steps_per_epoch)
            optimizer.build(model.trainable_variables)
        return plain, model, optimizer, rates

    def _phase_checkpoints(self, index: int, model, optimizer):
        """(the verified checkpoints of phase `index`, the running sums of its unfinished
        epoch), restored from its last good checkpoint if there is one."""
        checkpoints = resume.TrainingCheckpoints(
            os.path.join(self.workdir, "checkpoints", f"phase{index:03d}"),
            lambda message: self.log(f"phase {index}: {message}"),
            model_weights=resume.model_state(model),
            optimizer=optimizer,
        )
        _, sums = checkpoints.restore()
        return checkpoints, sums

    def _train_steps(self, index, step, end, step_fn, checkpoints, sums, on_step):
        """Trains phase `index` from `step` to `end` (its epoch's end), the epoch's steps
        before having the (loss, score) sums `sums`; returns (the step reached, the
        epoch's sum of the steps' losses, the sum of their scores)."""
        return training_step.run_steps(
            self._batches(self.phases[index].start + step, end - step),
            step,
            end,
            lambda batch, _: step_fn(batch),
            sums,
            checkpoint_every=self.config.checkpoint_every_steps,
            save=checkpoints.save,
            on_step=None if on_step is None else lambda step, _: on_step(index, step),
            failed=lambda loss, step: (
                f"phase {index}: loss became {loss} at step {step}; lower the learning "
                f"rate; the last checkpoint is kept in {checkpoints.directory}"
            ),
        )
