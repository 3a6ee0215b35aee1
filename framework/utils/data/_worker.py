"""The worker-process side of the multi-process DataLoader.

Each worker reads `(batch_idx, indices)` tasks from its own index queue, fetches and collates
the batch, and puts `(batch_idx, batch)` on the result queue shared by all workers. Control
messages: `None` (exit), `_ResumeIteration` (a new epoch with persistent workers: restart the
dataset iterator and acknowledge). Errors travel as `ExceptionWrapper`s and are re-raised in
the main process; the end of an iterable dataset travels as `_IterableDatasetStopIteration`.
"""
from __future__ import annotations

import multiprocessing.queues
import os
import pickle
import queue
import random
import sys
import traceback

import numpy as np

# How often an idle worker checks that its parent is still alive (seconds).
WORKER_POLL_INTERVAL = 1.0

_worker_info = None


class WorkerInfo:
    """What a worker process knows about itself: `id`, `num_workers`, `seed`, `dataset`
    (the worker's own copy). Read-only."""

    def __init__(self, **kwargs):
        for k, v in kwargs.items():
            object.__setattr__(self, k, v)
        object.__setattr__(self, "_keys", tuple(kwargs))

    def __setattr__(self, key, val):
        raise RuntimeError(f"Cannot assign attributes to {type(self).__name__} objects")

    def __repr__(self):
        items = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._keys)
        return f"{type(self).__name__}({items})"


def get_worker_info() -> WorkerInfo | None:
    """Inside a DataLoader worker process: its `WorkerInfo`; in the main process: None.

    Use it in `IterableDataset.__iter__` to shard the stream between workers, or in
    `worker_init_fn` to configure each worker's copy of the dataset."""
    return _worker_info


class _IterableDatasetStopIteration:
    def __init__(self, worker_id: int):
        self.worker_id = worker_id


class _ResumeIteration:
    """Sent to persistent workers at the start of each epoch after the first."""


class _KeyErrorMessage(str):
    # KeyError shows repr(message); keep the traceback readable
    def __repr__(self):
        return self


class ExceptionWrapper:
    """An exception raised in a worker, carried to the main process by type and formatted
    traceback (the exception object itself may not be picklable)."""

    def __init__(self, exc_info=None, where: str = "in background"):
        exc_type, exc, tb = exc_info if exc_info is not None else sys.exc_info()
        self.exc_msg = "".join(traceback.format_exception(exc_type, exc, tb))
        self.where = where
        try:  # a class defined inside a function, say, can't cross the process boundary
            pickle.loads(pickle.dumps(exc_type))
        except Exception:
            self.exc_msg = f"(original exception type {exc_type.__qualname__})\n{self.exc_msg}"
            exc_type = RuntimeError
        self.exc_type = exc_type

    def message(self) -> str:
        return f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.exc_msg}"

    def reraise(self):
        msg = self.message()
        if self.exc_type is KeyError:
            msg = _KeyErrorMessage(msg)
        try:
            exception = self.exc_type(msg)
        except Exception:  # an exception type whose constructor wants other arguments
            raise RuntimeError(msg) from None
        try:
            raise exception
        finally:
            del exception  # no frame <-> traceback cycle keeping the iterator (and workers) alive


class ResultQueue(multiprocessing.queues.Queue):
    """The worker -> main queue. A batch that fails to pickle (say, it holds a lambda) is
    replaced by an error for that batch instead of being dropped by the queue's feeder
    thread, which would leave the main process waiting for it forever."""

    def __init__(self, *, ctx):
        super().__init__(ctx=ctx)

    def _on_queue_feeder_error(self, e, obj):
        if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], int):
            info = _worker_info
            where = ("in DataLoader worker process "
                     f"{info.id if info is not None else '?'} while sending a batch "
                     "to the main process (the batch could not be pickled)")
            self.put((obj[0], ExceptionWrapper((type(e), e, e.__traceback__), where)))
        else:
            super()._on_queue_feeder_error(e, obj)


def _seed_words(seed: int) -> list:
    # NumPy's legacy seed takes 32-bit words; keep all 64 bits of the seed
    return [seed & 0xFFFF_FFFF, (seed >> 32) & 0xFFFF_FFFF]


def seed_worker_rngs(seed: int) -> None:
    """Seed the framework's, NumPy's global and Python's `random` RNGs with `seed`."""
    from ... import random as framework_random
    random.seed(seed)
    # What `framework.manual_seed(seed)` means, without touching the GPU: a forked child must
    # not use the CUDA context it inherited, so the CUDA generators copied from the parent are
    # dropped, and one made later in this worker is seeded from `seed` + its device index.
    framework_random._cuda_generators.clear()
    framework_random.default_generator.manual_seed(seed)
    np.random.seed(_seed_words(seed))


def _send_form(data, shm_prefix, seq, recent, where):
    """`data` as it should cross to the main process: a shared-memory handle for a large
    batch, else `data` itself (or the error if it can't be pickled)."""
    if shm_prefix is None or isinstance(data, (ExceptionWrapper, _IterableDatasetStopIteration)):
        return data
    from . import _shm
    path = f"{shm_prefix}{seq}"
    try:
        packed = _shm.pack(data, path)
    except Exception:
        return ExceptionWrapper(where=f"{where} while sending a batch to the main process "
                                      "(the batch could not be pickled)")
    if packed is None:
        return data
    recent.append(path)
    return packed


def worker_loop(dataset, index_queue, data_queue, done_event, auto_collation, collate_fn,
                drop_last, base_seed, init_fn, worker_id, num_workers, parent_pid,
                shm_prefix=None, max_tasks=2):
    global _worker_info
    import collections
    from ._fetch import create_fetcher
    from .dataset import IterableDataset
    is_iterable = isinstance(dataset, IterableDataset)
    where = f"in DataLoader worker process {worker_id}"
    try:
        seed = base_seed + worker_id
        seed_worker_rngs(seed)
        _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed,
                                  dataset=dataset)
        # While `fetcher` is None, every task is answered with `setup_error`: a failing
        # worker_init_fn, or iter(dataset) raising.
        fetcher = setup_error = None
        init_ok = False
        try:
            if init_fn is not None:
                init_fn(worker_id)
            init_ok = True
            fetcher = create_fetcher(dataset, auto_collation, collate_fn, drop_last)
        except Exception:
            setup_error = ExceptionWrapper(where=where)

        if shm_prefix is not None:
            shm_prefix = f"{shm_prefix}{worker_id}-"
        recent_files = collections.deque(maxlen=max_tasks + 2)  # files maybe not yet received
        seq = 0
        iteration_end = False
        while True:
            try:
                task = index_queue.get(timeout=WORKER_POLL_INTERVAL)
            except queue.Empty:
                if os.getppid() != parent_pid:  # the main process is gone: stop
                    for path in recent_files:
                        try:
                            os.unlink(path)
                        except OSError:
                            pass
                    break
                continue
            if isinstance(task, _ResumeIteration):
                data_queue.put((task, None))
                iteration_end = False
                if init_ok:
                    try:  # a fresh iterator over an iterable dataset for the new epoch
                        fetcher = create_fetcher(dataset, auto_collation, collate_fn, drop_last)
                    except Exception:
                        fetcher, setup_error = None, ExceptionWrapper(where=where)
                continue
            if task is None:
                break
            if done_event.is_set() or iteration_end:
                continue  # stale task of a finished epoch
            idx, index = task
            if fetcher is None:
                data = setup_error
            else:
                try:
                    data = fetcher.fetch(index)
                except StopIteration:
                    if not is_iterable:
                        data = ExceptionWrapper(where=where)
                    else:
                        data = _IterableDatasetStopIteration(worker_id)
                        iteration_end = True
                except Exception:
                    data = ExceptionWrapper(where=where)
            seq += 1
            data = _send_form(data, shm_prefix, seq, recent_files, where)
            data_queue.put((idx, data))
            del data, idx, index, task  # don't keep a batch alive while waiting
    except KeyboardInterrupt:
        pass  # the main process handles Ctrl-C and shuts the workers down
    if done_event.is_set():
        # results nobody will read must not keep this process alive at exit
        data_queue.cancel_join_thread()
        data_queue.close()
