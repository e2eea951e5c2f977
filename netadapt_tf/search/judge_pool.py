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
import multiprocessing
import threading
from concurrent.futures.process import BrokenProcessPool

_JUDGE = None  # the worker process's HeldOutAccuracy


def _start_worker(args: tuple) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from netadapt_tf.search.held_out_accuracy import held_out_accuracy

    global _JUDGE
    _JUDGE = held_out_accuracy(*args)


def _judge(arch_json: dict) -> float:
    from netadapt_tf.space.arch import Arch

    return float(_JUDGE(Arch.from_json(arch_json)))


class JudgePool:
    """accuracy(arch) through `workers` processes; `args` are held_out_accuracy's
    (checkpoint_dir, settings, data_overrides, allow_unrecorded_split). Thread-safe: the
    search's sample threads call it at once. Close it (or use it as a context manager)."""

    def __init__(self, args: tuple, workers: int, attempts: int = 3):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"judge_workers: {workers!r} must be an integer >= 1")
        if attempts < 1:
            raise ValueError(f"attempts: {attempts!r} must be >= 1")
        self.args, self.workers, self.attempts = tuple(args), workers, attempts
        self.restarts = 0
        self._lock = threading.Lock()
        self._pool = self._new_pool()

    def _new_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(self.args,),
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
