"""`DataLoader`: batches from a dataset, in the main process or in worker processes.

Multi-process loading: each worker has an index queue (tasks `(batch_idx, indices)`) and all
share one result queue. The main process keeps `prefetch_factor * num_workers` tasks in
flight, hands tasks round-robin to the workers that are still active, and delivers batches in
`batch_idx` order through a reorder buffer. While waiting for a batch it polls the result queue
with a short timeout and checks that the workers are alive, so a worker killed by a signal
gives an error instead of a hang. Workers are daemon processes; they are joined (and
terminated if they do not exit in time) when the epoch ends, when the iterator is deleted, on
an error, and at interpreter exit.
"""
from __future__ import annotations

import atexit
import itertools
import multiprocessing
import os
import queue
import signal
import time
import warnings
import weakref
from typing import Any, Callable, Iterable

from . import _shm, _worker
from ._collate import default_collate, default_convert
from ._fetch import create_fetcher
from ._pin_memory import pin_memory as _pin, pinning_available
from .dataset import Dataset, IterableDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler, _draw_seed

__all__ = ["DataLoader"]

# How long the main process waits on the result queue before checking the workers (seconds).
STATUS_CHECK_INTERVAL = 0.1
# How long shutdown waits for workers to exit by themselves before terminating them.
SHUTDOWN_GRACE = 2.0


class _InfiniteConstantSampler(Sampler):
    """The index sampler of an iterable dataset: None forever (the dataset decides the end)."""

    def __iter__(self):
        while True:
            yield None


def _default_context():
    methods = multiprocessing.get_all_start_methods()
    # fork starts workers in milliseconds and shares the dataset copy-on-write
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _suggested_max_workers() -> int | None:
    if hasattr(os, "sched_getaffinity"):
        try:
            return len(os.sched_getaffinity(0))
        except Exception:
            pass
    return os.cpu_count()


class DataLoader:
    """Iterate over `dataset` in batches (see `torch.utils.data.DataLoader`).

    Args: batch_size (None turns automatic batching off: samples are converted with
    `default_convert`), shuffle (a `RandomSampler` drawing from `generator`), sampler /
    batch_sampler (custom index orders; exclusive with shuffle and batch options),
    num_workers (0: load in the main process), collate_fn (default `default_collate`),
    pin_memory (pinned host memory when a CUDA GPU is usable; otherwise a no-op), drop_last,
    timeout (seconds to wait for one batch from the workers; 0: forever), worker_init_fn
    (called with the worker id in each worker after seeding), multiprocessing_context
    ('fork', 'spawn', 'forkserver' or a context; default fork where available),
    generator (seeds the shuffling and the workers' base seed), prefetch_factor (batches in
    flight per worker, default 2), persistent_workers (keep the workers across epochs),
    in_order (False: deliver batches as they complete)."""

    _initialized = False

    def __init__(self, dataset: Dataset, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler: Sampler | Iterable | None = None,
                 batch_sampler: Sampler | Iterable | None = None, num_workers: int = 0,
                 collate_fn: Callable | None = None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0,
                 worker_init_fn: Callable | None = None, multiprocessing_context=None,
                 generator=None, *, prefetch_factor: int | None = None,
                 persistent_workers: bool = False, pin_memory_device: str = "",
                 in_order: bool = True) -> None:
        if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to "
                             "disable multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in "
                             "multiprocessing. let num_workers > 0 to enable multiprocessing, "
                             "otherwise set prefetch_factor to None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        if prefetch_factor is not None and (not isinstance(prefetch_factor, int)
                                            or isinstance(prefetch_factor, bool)
                                            or prefetch_factor < 1):
            raise ValueError("prefetch_factor option should be a positive integer (batches in "
                             f"flight per worker), got {prefetch_factor!r}")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")

        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.in_order = in_order

        if isinstance(dataset, IterableDataset):
            self._dataset_kind = "iterable"
            if shuffle not in (False, None):
                raise ValueError("DataLoader with IterableDataset: expected unspecified shuffle "
                                 f"option, but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified sampler "
                                 f"option, but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified "
                                 f"batch_sampler option, but got batch_sampler={batch_sampler}")
        else:
            shuffle = bool(shuffle)
            self._dataset_kind = "map"

        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                                 "shuffle, sampler, and drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually "
                             "exclusive with drop_last")

        if sampler is None:
            if self._dataset_kind == "iterable":
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.generator = generator
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self.persistent_workers = persistent_workers
        self._IterableDataset_len_called = None
        self._iterator = None
        self._check_worker_number_rationality()
        self._initialized = True

    # ------------------------------------------------------------------ configuration
    @property
    def multiprocessing_context(self):
        return self.__multiprocessing_context

    @multiprocessing_context.setter
    def multiprocessing_context(self, ctx):
        if ctx is not None:
            if self.num_workers == 0:
                raise ValueError("multiprocessing_context can only be used with multi-process "
                                 "loading (num_workers > 0), but got num_workers="
                                 f"{self.num_workers}")
            if isinstance(ctx, str):
                valid = multiprocessing.get_all_start_methods()
                if ctx not in valid:
                    raise ValueError("multiprocessing_context option should specify a valid "
                                     f"start method in {valid!r}, but got "
                                     f"multiprocessing_context={ctx!r}")
                ctx = multiprocessing.get_context(ctx)
            elif not isinstance(ctx, multiprocessing.context.BaseContext):
                raise TypeError("multiprocessing_context option should be a valid context "
                                "object or a string specifying the start method, but got "
                                f"multiprocessing_context={ctx}")
        self.__multiprocessing_context = ctx

    def __setattr__(self, attr, val):
        if self._initialized and attr in ("batch_size", "batch_sampler", "sampler", "drop_last",
                                          "dataset", "persistent_workers"):
            raise ValueError(f"{attr} attribute should not be set after "
                             f"{type(self).__name__} is initialized")
        super().__setattr__(attr, val)

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def _check_worker_number_rationality(self):
        if self.num_workers == 0:
            return
        suggested = _suggested_max_workers()
        if suggested is not None and self.num_workers > suggested:
            warnings.warn(f"This DataLoader will create {self.num_workers} worker processes in "
                          f"total. Our suggested max number of worker in current system is "
                          f"{suggested}, which is smaller than what this DataLoader is going "
                          "to create. Please be aware that excessive worker creation might get "
                          "DataLoader running slow or even freeze, lower the worker number to "
                          "avoid potential slowness/freeze if necessary.", stacklevel=3)

    # ------------------------------------------------------------------ iteration
    def _get_iterator(self):
        if self.num_workers == 0:
            return _SingleProcessDataLoaderIter(self)
        return _MultiProcessingDataLoaderIter(self)

    def __iter__(self) -> "_BaseDataLoaderIter":
        if self.persistent_workers and self.num_workers > 0:
            if self._iterator is None or self._iterator._shutdown:
                self._iterator = self._get_iterator()
            else:
                self._iterator._reset(self)
            return self._iterator
        return self._get_iterator()

    def __len__(self) -> int:
        if self._dataset_kind == "iterable":
            length = self._IterableDataset_len_called = len(self.dataset)
            if self.batch_size is not None:
                if self.drop_last:
                    return length // self.batch_size
                return -(-length // self.batch_size)
            return length
        return len(self._index_sampler)


class _BaseDataLoaderIter:
    def __init__(self, loader: DataLoader) -> None:
        # Copy what is needed rather than keeping the loader: a persistent iterator is owned
        # by its loader, and a back reference would make a cycle that delays the shutdown.
        self._dataset = loader.dataset
        self._dataset_kind = loader._dataset_kind
        self._IterableDataset_len_called = loader._IterableDataset_len_called
        self._auto_collation = loader._auto_collation
        self._drop_last = loader.drop_last
        self._index_sampler = loader._index_sampler
        self._num_workers = loader.num_workers
        self._pin_memory = bool(loader.pin_memory) and pinning_available()
        self._timeout = loader.timeout
        self._collate_fn = loader.collate_fn
        self._sampler_iter = iter(self._index_sampler)
        self._base_seed = _draw_seed(loader.generator)
        self._persistent_workers = loader.persistent_workers
        self._num_yielded = 0

    def __iter__(self):
        return self

    def _reset(self, loader, first_iter: bool = False) -> None:
        self._sampler_iter = iter(self._index_sampler)
        self._num_yielded = 0
        self._IterableDataset_len_called = loader._IterableDataset_len_called

    def _next_index(self):
        return next(self._sampler_iter)  # StopIteration ends the epoch

    def _next_data(self):
        raise NotImplementedError

    def __next__(self) -> Any:
        data = self._next_data()
        self._num_yielded += 1
        if (self._dataset_kind == "iterable" and self._IterableDataset_len_called is not None
                and self._num_yielded > self._IterableDataset_len_called):
            warnings.warn(f"Length of IterableDataset {self._dataset} was reported to be "
                          f"{self._IterableDataset_len_called} (when accessing len(dataloader)),"
                          f" but {self._num_yielded} samples have been fetched. For "
                          "multiprocessing data-loading, this could be caused by not properly "
                          "configuring the IterableDataset replica at each worker.",
                          stacklevel=2)
        return data

    def __len__(self) -> int:
        return len(self._index_sampler)

    def __getstate__(self):
        raise NotImplementedError(f"{type(self).__name__} cannot be pickled")


class _SingleProcessDataLoaderIter(_BaseDataLoaderIter):
    def __init__(self, loader: DataLoader) -> None:
        super().__init__(loader)
        self._fetcher = create_fetcher(self._dataset, self._auto_collation, self._collate_fn,
                                       self._drop_last)

    def _next_data(self):
        index = self._next_index()
        data = self._fetcher.fetch(index)  # StopIteration at the end of an iterable dataset
        return _pin(data) if self._pin_memory else data


# Live multi-process iterators, shut down at interpreter exit before multiprocessing's own
# exit handler runs (atexit runs handlers last-registered-first).
_live_iterators: "weakref.WeakSet[_MultiProcessingDataLoaderIter]" = weakref.WeakSet()


def _shutdown_all_at_exit():
    for it in list(_live_iterators):
        try:
            it._shutdown_workers()
        except Exception:
            pass


atexit.register(_shutdown_all_at_exit)


class _MultiProcessingDataLoaderIter(_BaseDataLoaderIter):
    def __init__(self, loader: DataLoader) -> None:
        self._shutdown = True  # nothing to clean up until the workers exist
        super().__init__(loader)
        self._prefetch_factor = loader.prefetch_factor
        self._in_order = loader.in_order
        self._owner_pid = os.getpid()
        ctx = loader.multiprocessing_context
        chose_fork = ctx is None and _default_context().get_start_method() == "fork"
        ctx = ctx or _default_context()
        self._workers = []
        self._index_queues = []
        self._worker_result_queue = _worker.ResultQueue(ctx=ctx)
        self._workers_done_event = ctx.Event()
        self._workers_status = []
        self._task_info = {}
        self._worker_death = None  # the message once a worker died (the iterator is then dead)
        self._shm_prefix = _shm.new_prefix() if _shm.available() else None
        self._shutdown = False
        _live_iterators.add(self)
        try:
            for worker_id in range(self._num_workers):
                index_queue = ctx.Queue()
                # tasks left unread when a worker exits must not block our exit
                index_queue.cancel_join_thread()
                w = ctx.Process(
                    target=_worker.worker_loop,
                    args=(self._dataset, index_queue, self._worker_result_queue,
                          self._workers_done_event, self._auto_collation, self._collate_fn,
                          self._drop_last, self._base_seed, loader.worker_init_fn, worker_id,
                          self._num_workers, self._owner_pid, self._shm_prefix,
                          self._prefetch_factor * self._num_workers),
                    daemon=True)
                with warnings.catch_warnings():
                    if chose_fork:
                        # Python >= 3.12 warns on any fork of a multi-threaded process, which
                        # every NumPy process with a BLAS thread pool is; forking a DataLoader
                        # worker that then only runs Python is the standard, safe use.
                        warnings.filterwarnings("ignore", category=DeprecationWarning,
                                                message=r".*use of fork\(\) may lead to")
                    w.start()
                self._index_queues.append(index_queue)
                self._workers.append(w)
        except BaseException:
            self._shutdown_workers()
            raise
        self._reset(loader, first_iter=True)

    def _reset(self, loader, first_iter: bool = False) -> None:
        super()._reset(loader, first_iter)
        n = self._num_workers
        self._send_idx = 0  # next batch index to hand to a worker
        self._rcvd_idx = 0  # next batch index to return
        self._task_info = {}  # batch_idx -> (worker_id,) while pending, (worker_id, data) when in
        self._tasks_outstanding = 0
        self._workers_status = [True] * n
        self._workers_num_tasks = [0] * n
        self._worker_queue_idx_cycle = itertools.cycle(range(n))
        if not first_iter:
            # Persistent workers: restart them on the new epoch and drop what is left of the
            # previous one (each worker answers in order, so its results for the old epoch
            # all come before its acknowledgement).
            for q in self._index_queues:
                q.put(_worker._ResumeIteration())
            waiting = n
            while waiting > 0:
                idx, _ = self._get_data()
                if isinstance(idx, _worker._ResumeIteration):
                    waiting -= 1
        for _ in range(self._prefetch_factor * n):
            self._try_put_index()

    def _try_put_index(self) -> None:
        max_tasks = self._prefetch_factor * self._num_workers
        if self._tasks_outstanding >= max_tasks:
            return
        active = sum(self._workers_status)
        for _ in range(self._num_workers):  # the next active worker with room, if any
            worker_id = next(self._worker_queue_idx_cycle)
            if self._workers_status[worker_id] and (
                    self._in_order or self._workers_num_tasks[worker_id] < max_tasks // active):
                break
        else:
            return
        try:  # only now, so that an index is never drawn without a worker to take it
            index = self._next_index()
        except StopIteration:
            return
        self._index_queues[worker_id].put((self._send_idx, index))
        self._task_info[self._send_idx] = (worker_id,)
        self._workers_num_tasks[worker_id] += 1
        self._tasks_outstanding += 1
        self._send_idx += 1

    def _get_data(self):
        """The next (batch_idx, data) from any worker, watching for dead workers and the
        timeout while waiting."""
        deadline = time.monotonic() + self._timeout if self._timeout > 0 else None
        while True:
            wait = STATUS_CHECK_INTERVAL
            if deadline is not None:
                wait = max(0.0, min(wait, deadline - time.monotonic()))
            try:
                idx, data = self._worker_result_queue.get(timeout=wait)
            except queue.Empty:
                pass
            else:
                if type(data) is _shm.ShmBatch:
                    data = _shm.unpack(data)
                return idx, data
            self._check_workers_alive()
            if deadline is not None and time.monotonic() >= deadline:
                raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds")

    def _check_workers_alive(self) -> None:
        for worker_id, w in enumerate(self._workers):
            if self._workers_status[worker_id] and not w.is_alive():
                pid, code = w.pid, w.exitcode
                self._shutdown_workers()
                msg = f"DataLoader worker (pid {pid}) exited unexpectedly with exit code {code}"
                if code is not None and code < 0:
                    try:
                        name = signal.Signals(-code).name
                    except ValueError:
                        name = f"signal {-code}"
                    msg += (f". The worker was killed by {name}"
                            + (" (for instance by the out-of-memory killer)"
                               if -code == signal.SIGKILL else "") + ".")
                self._worker_death = msg
                raise RuntimeError(msg)

    def _next_data(self):
        if self._worker_death is not None:
            raise RuntimeError(f"{self._worker_death} The iterator's workers were shut down; "
                               "start a new epoch with a new iterator.")
        while True:
            # skip batches that will never come (their worker ran out of iterable data)
            while self._rcvd_idx < self._send_idx:
                info = self._task_info.get(self._rcvd_idx)
                if info is not None:
                    if len(info) == 2 or self._workers_status[info[0]]:
                        break
                    del self._task_info[self._rcvd_idx]
                self._rcvd_idx += 1
            else:
                if not self._persistent_workers:
                    self._shutdown_workers()
                raise StopIteration

            info = self._task_info[self._rcvd_idx]
            if len(info) == 2:  # already arrived out of order
                del self._task_info[self._rcvd_idx]
                self._rcvd_idx += 1
                return self._process_data(info[1], info[0])

            if self._shutdown:
                raise RuntimeError("the DataLoader iterator's workers were shut down; create a "
                                   "new iterator")
            idx, data = self._get_data()
            self._tasks_outstanding -= 1
            if isinstance(data, _worker._IterableDatasetStopIteration):
                self._retire_worker(data.worker_id)
                self._try_put_index()
                continue
            if idx != self._rcvd_idx:
                if not self._in_order:
                    worker_id = self._task_info.pop(idx)[0]
                    return self._process_data(data, worker_id)
                self._task_info[idx] += (data,)
            else:
                worker_id = self._task_info.pop(idx)[0]
                self._rcvd_idx += 1
                return self._process_data(data, worker_id)

    def _retire_worker(self, worker_id: int) -> None:
        """A worker's iterable dataset is exhausted: it gets no more tasks this epoch, and the
        tasks it still holds will produce nothing."""
        self._workers_status[worker_id] = False
        self._tasks_outstanding -= self._workers_num_tasks[worker_id] - 1
        self._workers_num_tasks[worker_id] = 0
        if not self._persistent_workers:
            self._index_queues[worker_id].put(None)

    def _process_data(self, data, worker_id: int):
        self._workers_num_tasks[worker_id] -= 1
        self._try_put_index()
        if isinstance(data, _worker.ExceptionWrapper):
            data.reraise()
        return _pin(data) if self._pin_memory else data

    def _shutdown_workers(self) -> None:
        if self._shutdown:
            return
        self._shutdown = True
        _live_iterators.discard(self)
        if os.getpid() != self._owner_pid:
            return  # a forked child must not touch its parent's workers
        try:
            self._workers_done_event.set()
            for worker_id, q in enumerate(self._index_queues):
                try:
                    q.put(None)
                except Exception:
                    pass
            deadline = time.monotonic() + SHUTDOWN_GRACE
            for w in self._workers:
                w.join(timeout=max(0.0, deadline - time.monotonic()))
        finally:
            for w in self._workers:
                if w.is_alive():
                    w.terminate()
            for w in self._workers:
                w.join(timeout=1.0)
                if w.is_alive():
                    w.kill()
                    w.join()
                try:
                    w.close()  # release the process sentinel now
                except Exception:
                    pass
            for q in self._index_queues:
                q.cancel_join_thread()
                q.close()
            self._worker_result_queue.cancel_join_thread()
            self._worker_result_queue.close()
            self._task_info = {}
            if self._shm_prefix is not None:
                _shm.cleanup(self._shm_prefix)  # batches in flight or from a killed worker

    def __del__(self):
        try:
            self._shutdown_workers()
        except Exception:
            pass

