"""How a running search reports itself: a log line per iteration with an ETA, TensorBoard
scalars and a PNG plot of accuracy against resource along the trajectory.

TensorFlow and matplotlib are imported when first needed (matplotlib with its Agg canvas,
never pyplot's global state); without matplotlib the plot is skipped with one log line.
"""

import math
import pathlib
import time

from netadapt_tf.common import atomic_files
from netadapt_tf.search.mcd import MCDOptimizer, SearchState
from netadapt_tf.search.records import IterationRecord, SampleRecord

PLOT_FILE = "progress.png"
TENSORBOARD_DIR = "tensorboard"


def iterations_left(optimizer: MCDOptimizer, state: SearchState) -> int:
    """How many more iterations the schedule needs if each lands exactly on its target
    (bounded by max_iterations). Samples overshoot their targets, so this is an upper
    estimate in most searches."""
    config, initial = optimizer.config, state.initial
    resource, done, count = state.best_resource, len(state.iterations), 0
    while resource > initial.final_target and done + count < config.max_iterations:
        resource, _ = optimizer.iteration_target(initial, done + count, resource)
        count += 1
    return count


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def reading_noise(accuracy: float, examples: int) -> float:
    """The binomial standard deviation, in points, of an accuracy read on `examples` images."""
    return 100 * math.sqrt(max(accuracy * (1 - accuracy), 0.0) / examples)


def describe_decision(record: IterationRecord, examples: int) -> str:
    """How clear the iteration's choice was: the margin of the pick over the runner-up and
    the spread of the readings, against the noise of one reading on `examples` images."""
    readings = sorted((s.accuracy for s in record.samples if s.ok), reverse=True)
    margin = 100 * (readings[0] - readings[1]) if len(readings) > 1 else float("nan")
    return (
        f"margin over the runner-up {margin:.2f} pts, readings spread "
        f"{100 * (readings[0] - readings[-1]):.2f} pts, noise of one reading "
        f"{reading_noise(readings[0], examples):.2f} pts (binomial sd, {examples} images)"
    )


def describe_iteration(
    record: IterationRecord,
    state: SearchState,
    seconds: float,
    left: int,
    eta: float | None,
    judge_examples: int | None = None,
) -> str:
    """The log line of one finished iteration (with the decision's clarity when the number
    of images each reading uses is known)."""
    best, initial = record.best, state.initial
    failed, infeasible = record.count("failed"), record.count("infeasible")
    line = (
        f"iteration {record.iteration}: target {record.target:.6g}, best accuracy "
        f"{best.accuracy:.4f}, resource {best.resource:.6g} "
        f"({100 * best.resource / initial.resource:.1f}% of initial), samples "
        f"{len(record.samples)}/{len(record.samples)} ({failed} failed, {infeasible} "
        f"infeasible), {seconds:.1f} s"
    )
    if judge_examples:
        line += f"; {describe_decision(record, judge_examples)}"
    if state.target_met:
        return line + "; final target met"
    if left == 0:
        return line + "; max_iterations reached"
    estimate = "" if eta is None else f", ~{_duration(eta)}"
    return line + f"; ETA {left} iteration{'s' * (left != 1)}{estimate}"


class Progress:
    """Logs, TensorBoard scalars and the plot of one search in `workdir`."""

    def __init__(
        self,
        workdir,
        optimizer: MCDOptimizer,
        log=print,
        tensorboard: bool = True,
        plot: bool = True,
        unit: str | None = None,
        judge_examples: int | None = None,
    ):
        self.workdir = pathlib.Path(workdir)
        self.unit = unit
        self.judge_examples = judge_examples
        self.optimizer, self.log = optimizer, log
        self.tensorboard, self.plot = tensorboard, plot
        self._writer = None
        self._sample_seconds: list[float] = []
        self._last = self._iteration_start = time.perf_counter()

    def sample_done(self, record: SampleRecord) -> None:
        now = time.perf_counter()
        self._sample_seconds.append(now - self._last)
        self._last = now

    def iteration_done(self, record: IterationRecord, state: SearchState) -> None:
        now = time.perf_counter()
        seconds = now - self._iteration_start
        self._iteration_start = self._last = now
        left = iterations_left(self.optimizer, state)
        eta = None
        if self._sample_seconds:
            per_sample = sum(self._sample_seconds) / len(self._sample_seconds)
            eta = per_sample * left * self.optimizer.samples_per_iteration
        self.log(describe_iteration(record, state, seconds, left, eta, self.judge_examples))
        if self.tensorboard:
            self._scalars(record, state, seconds)
        if self.plot:
            self.draw(state)

    def _scalars(self, record: IterationRecord, state: SearchState, seconds: float) -> None:
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.workdir / TENSORBOARD_DIR))
        best = record.best
        with self._writer.as_default(step=record.iteration):
            tf.summary.scalar("search/target", record.target)
            tf.summary.scalar("search/best_accuracy", best.accuracy)
            tf.summary.scalar("search/best_resource", best.resource)
            tf.summary.scalar("search/resource_fraction", best.resource / state.initial.resource)
            tf.summary.scalar("search/failed_samples", record.count("failed"))
            tf.summary.scalar("search/infeasible_samples", record.count("infeasible"))
            tf.summary.scalar("search/iteration_seconds", seconds)
        self._writer.flush()

    def draw(self, state: SearchState) -> None:
        """Writes progress.png: every judged sample (grey), the trajectory (line), the final
        target (dashed)."""
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError:
            self.log("progress plot skipped: matplotlib is not installed (pip install matplotlib)")
            self.plot = False
            return
        figure = Figure(figsize=(6, 4), dpi=100)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        samples = [s for it in state.iterations for s in it.samples if s.ok]
        axes.scatter(
            [s.resource for s in samples],
            [s.accuracy for s in samples],
            s=4,
            c="0.7",
            label="samples",
        )
        points = [(state.initial.resource, state.initial.accuracy)] + [
            (it.best.resource, it.best.accuracy) for it in state.iterations
        ]
        points = [(r, a) for r, a in points if a is not None]
        axes.plot([r for r, _ in points], [a for _, a in points], "o-", ms=3, label="trajectory")
        axes.axvline(state.initial.final_target, ls="--", c="C3", label="final target")
        axes.set_xlabel("resource" + (f" ({self.unit})" if self.unit else ""))
        axes.set_ylabel("accuracy")
        axes.set_title(f"search after {len(state.iterations)} iterations")
        axes.legend(loc="lower right")
        figure.tight_layout()
        path = self.workdir / PLOT_FILE
        atomic_files.write_with(path, figure.savefig)  # a temporary name of its own
