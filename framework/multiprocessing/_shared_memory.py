"""Tensor memory that several processes map: named POSIX shared-memory objects.

`share_array(arr)` copies an array into a new object (/dev/shm/lantern_<pid>_<random> on
Linux) mapped MAP_SHARED, so forked children that inherit the mapping and processes that
attach to it by name (`attach`) read and write the same pages. An array over such a mapping
is recognised by walking its `.base` chain to the `_SharedMap`; `handle_of` gives its name,
size and the array's byte offset, which is what crosses a pipe instead of the data.

Lifetime: the creating process owns the name. It unlinks it when its mapping is garbage
collected (no array over it is left) or at exit; the pages live on in every process still
mapping them. The name is also registered with multiprocessing's resource tracker, which
removes it should the owner die without cleaning up. A receiver must therefore attach while
the owner still holds the tensor (as Hogwild training does: the parent keeps the model).
"""
from __future__ import annotations

import mmap
import os
import secrets
import weakref

import numpy as np

try:
    import _posixshmem
except ImportError:  # Windows: no POSIX shared memory
    _posixshmem = None

__all__ = ["share_array", "share_tensor_", "handle_of", "attach", "available"]

# name -> mapping, so that every array of one name in this process uses one mapping
_maps: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


class _SharedMap(mmap.mmap):
    """A MAP_SHARED mapping of a named shared-memory object (attributes: shm_name, addr)."""

    shm_name: str
    addr: int


def available() -> bool:
    return _posixshmem is not None


def _require() -> None:
    if _posixshmem is None:
        raise RuntimeError("sharing tensor memory between processes needs POSIX shared memory "
                           "(Linux or macOS); this platform has none")


def _map(name: str, size: int, create: bool) -> _SharedMap:
    flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
    fd = _posixshmem.shm_open(name, flags, mode=0o600)
    try:
        if create:
            os.ftruncate(fd, size)
        m = _SharedMap(fd, size)  # MAP_SHARED, read and write
    except BaseException:
        if create:
            _posixshmem.shm_unlink(name)
        raise
    finally:
        os.close(fd)  # the mapping keeps the object alive
    m.shm_name = name
    probe = np.frombuffer(m, np.uint8, count=1)
    m.addr = probe.__array_interface__["data"][0]
    del probe
    _maps[name] = m
    return m


def _release(name: str, owner: int) -> None:
    # a forked child holds a copy of this finalizer: only the creating process unlinks
    if os.getpid() != owner:
        return
    try:
        _posixshmem.shm_unlink(name)
    except FileNotFoundError:
        pass
    try:
        from multiprocessing import resource_tracker
        resource_tracker.unregister(name, "shared_memory")
    except Exception:
        pass


def _create(nbytes: int) -> _SharedMap:
    _require()
    name = f"/lantern_{os.getpid()}_{secrets.token_hex(8)}"
    m = _map(name, max(int(nbytes), 1), create=True)
    from multiprocessing import resource_tracker
    resource_tracker.register(name, "shared_memory")
    weakref.finalize(m, _release, name, os.getpid())
    return m


def share_array(arr: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of `arr` in new shared memory."""
    m = _create(arr.nbytes)
    out = np.ndarray(arr.shape, arr.dtype, buffer=m)
    np.copyto(out, arr, casting="no")
    return out


def _ptr(arr) -> int:
    return arr.__array_interface__["data"][0]


def share_tensor_(t) -> None:
    """Move a CPU tensor's data into shared memory in place. A view (t._base set) moves its
    base, then points into the base's new memory at the same place, so the two still
    alias."""
    base = t._base
    if base is None or base is t:
        t._data = share_array(t._writable())
        return
    old_base, old = base._writable(), t._writable()
    start, nbytes = _ptr(old_base), old_base.nbytes
    inside = old_base.flags.c_contiguous and old.size > 0 and \
        start <= _ptr(old) < start + nbytes
    if base.is_shared() or not inside:
        # the base is shared already but this view no longer points into it, or the "view"
        # is a copy (Lantern's view may copy): share this tensor's own data
        t._data = share_array(old)
        return
    base._data = share_array(old_base)
    m = _root(base._data)
    t._data = np.ndarray(old.shape, old.dtype, buffer=m, offset=_ptr(old) - start,
                         strides=old.strides)


def _root(arr):
    b = arr
    while isinstance(b, np.ndarray):
        b = b.base
    if isinstance(b, memoryview):
        b = b.obj
    return b


def handle_of(arr) -> tuple | None:
    """(name, mapping size, byte offset) of an array over shared memory, else None."""
    if not isinstance(arr, np.ndarray):
        return None
    m = _root(arr)
    if not isinstance(m, _SharedMap):
        return None
    return m.shm_name, len(m), arr.__array_interface__["data"][0] - m.addr


def attach(name: str, size: int) -> _SharedMap:
    """This process's mapping of the shared-memory object `name` (made on first use)."""
    _require()
    m = _maps.get(name)
    if m is None:
        try:
            m = _map(name, size, create=False)
        except FileNotFoundError:
            raise RuntimeError(
                f"shared tensor memory {name!r} no longer exists: the process that shared it "
                "released it (it must keep the tensor alive until the receivers have it)"
            ) from None
    return m
