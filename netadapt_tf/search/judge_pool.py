"""Judging a search's samples in worker processes, each holding the super-network.

The J samples of an MCD iteration (and a random search's draws) are independent: with
`JudgePool` each is judged in one of `workers` processes (the "spawn" start method), which
load the super-network and the held-out data once (`search.held_out_accuracy`, the same
call the search makes) and then judge archs sent to them; each process runs its ops on one
thread, so two processes keep two cores busy. A reading is the serial judge's: the same
evaluator on the same batches (tests/test_judge_pool.py compares them). A worker that dies
(killed, out of memory) breaks the pool; the archs it held are judged again in a fresh pool,
up to `attempts` times, and only then is the error raised to the search (which records the
sample as failed, as it does for any judge error).
"""

import concurrent.futures
import contextlib
import multiprocessing
import threading
from concurrent.futures.process import BrokenProcessPool

_JUDGE = None  # the worker process's reading (a HeldOutAccuracy)


def _start_worker(args: tuple, factory) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    if factory is None:
        from netadapt_tf.search.held_out_accuracy import held_out_accuracy as factory

    global _JUDGE
    _JUDGE = factory(*args)


def _judge(arch_json: dict) -> float:
    from netadapt_tf.space.arch import Arch

    return float(_JUDGE(Arch.from_json(arch_json)))


class JudgePool:
    """accuracy(arch) through `workers` processes; `args` are the reading factory's
    (`factory`, a module-level callable; None: held_out_accuracy, whose args are
    checkpoint_dir, settings, data_overrides, allow_unrecorded_split). `num_examples`: the
    images each reading uses (the reading's own, which the search's log turns into the
    noise of a reading), None when unknown. Thread-safe: the search's sample threads call
    it at once. Close it (or use it as a context manager)."""

    def __init__(
        self,
        args: tuple,
        workers: int,
        attempts: int = 3,
        factory=None,
        num_examples: int | None = None,
    ):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"judge_workers: {workers!r} must be an integer >= 1")
        if attempts < 1:
            raise ValueError(f"attempts: {attempts!r} must be >= 1")
        self.args, self.workers, self.attempts = tuple(args), workers, attempts
        self.factory, self.num_examples = factory, num_examples
        self.restarts = 0
        self._lock = threading.Lock()
        self._pool = self._new_pool()

    def _new_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(self.args, self.factory),
        )

    def __call__(self, arch) -> float:
        for attempt in range(1, self.attempts + 1):
            with self._lock:
                pool = self._pool
            try:
                return pool.submit(_judge, arch.to_json()).result()
            except BrokenProcessPool as error:
                with self._lock:
                    if self._pool is pool:  # the first caller to see it starts a new pool
                        pool.shutdown(wait=False, cancel_futures=True)
                        self._pool = self._new_pool()
                        self.restarts += 1
                if attempt == self.attempts:
                    raise RuntimeError(
                        f"judge pool: a worker process died {self.attempts} times while "
                        f"judging this arch ({error})"
                    ) from None
        raise AssertionError("not reached")

    def close(self) -> None:
        with self._lock:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class HostTimingGate:
    """Lets judging in other processes overlap other judging but never a timing on this
    host: a search measuring latency here (metric host_latency) with a judge pool would
    otherwise time its samples against the pool's work on the same cores. A timing waits
    for the judging in flight and holds new judging back until it is done."""

    def __init__(self):
        self._condition = threading.Condition()
        self._judging = 0
        self._timing = False
        self._waiting = 0  # timings waiting: new judging waits behind them

    @contextlib.contextmanager
    def judging(self):
        with self._condition:
            self._condition.wait_for(lambda: not self._timing and not self._waiting)
            self._judging += 1
        try:
            yield
        finally:
            with self._condition:
                self._judging -= 1
                self._condition.notify_all()

    @contextlib.contextmanager
    def timing(self):
        with self._condition:
            self._waiting += 1
            self._condition.wait_for(lambda: not self._timing and not self._judging)
            self._waiting -= 1
            self._timing = True
        try:
            yield
        finally:
            with self._condition:
                self._timing = False
                self._condition.notify_all()

    def judge(self, judge):
        """`judge` called under `judging` (its `num_examples` kept)."""

        def judged(arch):
            with self.judging():
                return judge(arch)

        judged.num_examples = getattr(judge, "num_examples", None)
        return judged

    def measure(self, measure):
        """`measure` called under `timing`."""

        def measured(arch):
            with self.timing():
                return measure(arch)

        return measured
