"""Where a study's evaluations run: in the caller's process, or in a pool of workers.

An executor has ``capacity`` (how many evaluations may run at once), ``submit(fn, *args)``
returning a :class:`concurrent.futures.Future`, and ``wait(futures)`` returning those done
(at least one). That is all :meth:`olmp.dfo.Study.optimize` uses, so a cluster executor
(Ray's futures, for one) fits behind the same three members; nothing in the study assumes
that evaluations run in its process.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import pickle
from collections.abc import Callable, Iterable
from typing import Any

from olmp.closing import Closing
from olmp.errors import OlmpError, check_count


class Executor(Closing):
    """Runs evaluations; the base class runs each one at once, in this process."""

    capacity = 1

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future:
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args))
        except BaseException as error:  # the study records it as a failure
            future.set_exception(error)
        return future

    def wait(self, futures: Iterable[cf.Future]) -> list[cf.Future]:
        """The futures of ``futures`` that are done, at least one (blocks until then), in
        the order given (so trials finishing together are told in submission order)."""
        pending = list(futures)
        done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
        return [future for future in pending if future in done]


#: The in-process executor (sequential).
InProcess = Executor


class WorkerDied(OlmpError):
    """A worker process of a :class:`ProcessPool` died: the pool runs nothing more."""


WORKER_DIED = (
    "a worker process died (killed, out of memory, or the objective ended its process), so "
    "no more trials can run in this pool; the trials it was running are recorded as failed: "
    "a study with a file continues with resume=True"
)


class ProcessPool(Executor):
    """``n_jobs`` worker processes (``concurrent.futures.ProcessPoolExecutor``).

    The objective travels to the workers by pickle, so it must be a module-level function
    (or another picklable callable). Workers are forked where the platform allows it (they
    start in milliseconds and inherit what is imported), else spawned.
    """

    def __init__(self, n_jobs: int) -> None:
        self.capacity = check_count(n_jobs, "n_jobs")
        methods = multiprocessing.get_all_start_methods()
        method = "fork" if "fork" in methods and os.name == "posix" else "spawn"
        self._pool = cf.ProcessPoolExecutor(
            max_workers=n_jobs, mp_context=multiprocessing.get_context(method)
        )

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future:
        try:
            pickle.dumps((fn, args))
        except Exception as error:
            raise OlmpError(
                f"with n_jobs > 1 the objective goes to worker processes by pickle, and it "
                f"cannot be pickled ({error}); make it a module-level function"
            ) from None
        try:
            return self._pool.submit(fn, *args)
        except cf.process.BrokenProcessPool:
            raise WorkerDied(WORKER_DIED) from None

    def wait(self, futures: Iterable[cf.Future]) -> list[cf.Future]:
        done = super().wait(futures)
        # Said as soon as it is seen: trials submitted meanwhile would all fail with it.
        if any(isinstance(future.exception(), cf.process.BrokenProcessPool) for future in done):
            raise WorkerDied(WORKER_DIED)
        return done

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def make_executor(n_jobs: int = 1) -> Executor:
    """In-process for ``n_jobs == 1``, else a :class:`ProcessPool`."""
    return InProcess() if n_jobs == 1 else ProcessPool(n_jobs)
