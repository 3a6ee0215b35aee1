"""Shared-memory transport of large batches from worker processes (Linux, /dev/shm).

Through the result queue's pipe, a 19 MB batch costs the main process ~25 ms of CPU (pipe
reads in 64 KiB chunks, then two copies while unpickling). Instead, a worker pickles the batch
with its large NumPy arrays taken out of band, copies those arrays into one file in /dev/shm,
and sends only the small pickle and the file name. The main process maps the file, unlinks it
at once (the mapping lives on until the last array using it is freed) and unpickles with the
arrays as views of the mapping: a few system calls instead of copies.

Leaks are guarded three ways: the main process unlinks every file when it receives it; at
shutdown it removes every file under its iterator's name prefix (batches still in flight, or
written by a worker that was killed); and a worker whose parent died removes the files it made
recently.
"""
from __future__ import annotations

import ctypes
import glob
import io
import mmap
import os
import pickle
import sys
import uuid
import weakref
from multiprocessing.reduction import ForkingPickler

import numpy as np

SHM_DIR = "/dev/shm"
# Arrays at least this large travel out of band ...
MIN_ARRAY_BYTES = 64 * 1024
# ... when a batch has at least this many bytes of them (smaller batches go through the pipe).
MIN_BATCH_BYTES = 1 << 20
_ALIGN = 64

ENABLED = os.environ.get("LANTERN_DATALOADER_SHM", "1") != "0"


def available() -> bool:
    return (ENABLED and sys.platform.startswith("linux") and os.path.isdir(SHM_DIR)
            and os.access(SHM_DIR, os.W_OK))


def new_prefix() -> str:
    """A file-name prefix unique to one DataLoader iterator."""
    return os.path.join(SHM_DIR, f"lantern-dl-{os.getpid()}-{uuid.uuid4().hex[:12]}-")


def cleanup(prefix: str) -> None:
    for path in glob.glob(glob.escape(prefix) + "*"):
        try:
            os.unlink(path)
        except OSError:
            pass


class ShmBatch:
    """What crosses the pipe instead of a large batch."""

    __slots__ = ("path", "size", "payload", "layout")

    def __init__(self, path, size, payload, layout):
        self.path, self.size, self.payload, self.layout = path, size, payload, layout

    def __reduce__(self):
        return ShmBatch, (self.path, self.size, self.payload, self.layout)


class _OutOfBandPickler(ForkingPickler):
    def __init__(self, file):
        super().__init__(file, pickle.HIGHEST_PROTOCOL)
        self.arrays = []
        self._index = {}

    def persistent_id(self, obj):
        if type(obj) is np.ndarray and obj.nbytes >= MIN_ARRAY_BYTES and not obj.dtype.hasobject:
            key = id(obj)
            i = self._index.get(key)
            if i is None:
                i = self._index[key] = len(self.arrays)
                self.arrays.append(obj)  # keeps id(obj) valid while pickling
            return i
        return None


def _aligned(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def pack(batch, path: str):
    """A `ShmBatch` for `batch`, or None when it is too small to gain from shared memory or
    /dev/shm is full (the caller then sends `batch` itself). Pickling errors propagate."""
    buf = io.BytesIO()
    pickler = _OutOfBandPickler(buf)
    pickler.dump(batch)
    arrays = pickler.arrays
    total = sum(_aligned(a.nbytes) for a in arrays)
    if total < MIN_BATCH_BYTES:
        return None
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        # reserve the pages now: a full /dev/shm then fails here instead of killing this
        # process with SIGBUS on the first write
        os.posix_fallocate(fd, 0, total)
        mm = mmap.mmap(fd, total)
    except OSError:
        os.close(fd)
        os.unlink(path)
        return None
    os.close(fd)
    layout, offset = [], 0
    try:
        for a in arrays:
            dst = np.ndarray(a.shape, a.dtype, buffer=mm, offset=offset)
            np.copyto(dst, a, casting="no")
            del dst
            layout.append((offset, a.dtype, a.shape))
            offset += _aligned(a.nbytes)
    except BaseException:
        mm.close()
        os.unlink(path)
        raise
    mm.close()
    return ShmBatch(path, total, buf.getvalue(), layout)


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, arrays):
        super().__init__(file)
        self._arrays = arrays

    def persistent_load(self, pid):
        return self._arrays[pid]


_libc = None


def _libc_mmap():
    global _libc
    if _libc is None:
        try:
            lib = ctypes.CDLL(None, use_errno=True)
            lib.mmap.restype = ctypes.c_void_p
            lib.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                                 ctypes.c_int, ctypes.c_long]
            lib.munmap.restype = ctypes.c_int
            lib.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
            _libc = lib
        except (OSError, AttributeError):
            _libc = False
    return _libc


def _map(fd: int, size: int):
    """A writable buffer mapping `size` bytes of `fd`, unmapped when the buffer is freed.

    Python's `mmap.mmap` would keep a duplicate of the file descriptor for as long as the
    mapping lives, so a program holding many batches would run out of descriptors; mapping
    through libc keeps none."""
    flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
    prot = mmap.PROT_READ | mmap.PROT_WRITE
    lib = _libc_mmap()
    if not lib:
        return mmap.mmap(fd, size, flags=flags, prot=prot)
    addr = lib.mmap(None, size, prot, flags, fd, 0)
    if addr is None or addr == ctypes.c_void_p(-1).value:
        err = ctypes.get_errno()
        raise OSError(err, f"mmap of a DataLoader batch failed: {os.strerror(err)}")
    buf = (ctypes.c_char * size).from_address(addr)
    fin = weakref.finalize(buf, lib.munmap, addr, size)  # runs when the last array is freed
    fin.atexit = False  # at exit the OS unmaps; a late reader must not find it gone
    return buf


def unpack(msg: ShmBatch):
    """The batch of `msg`, its large arrays viewing the (already unlinked) shared file."""
    try:
        fd = os.open(msg.path, os.O_RDWR)
    except FileNotFoundError:
        raise RuntimeError(f"DataLoader shared-memory batch {msg.path} vanished before it was "
                           "read (was /dev/shm cleaned by another process?)") from None
    try:
        buf = _map(fd, msg.size)
    finally:
        os.close(fd)
        os.unlink(msg.path)
    arrays = [np.frombuffer(buf, dtype, int(np.prod(shape, dtype=np.int64)), offset)
              .reshape(shape) for offset, dtype, shape in msg.layout]
    return _Unpickler(io.BytesIO(msg.payload), arrays).load()
