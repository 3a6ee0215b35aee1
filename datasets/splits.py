"""Seeded stratified splits of a labelled data set into disjoint parts (train/val/test).

`stratified_split(targets, (0.8, 0.1, 0.1), seed=0)` returns index arrays whose sizes are
exactly the requested ones and in which every class has its proportional share: class c
(n_c samples of N) gets floor or ceil of n_c * size_p / N samples in part p. Choosing which
classes round up is a rounding of a table with fixed row and column sums, which always has a
solution (a flow argument); it is found greedily, completed with augmenting paths, with
ties broken by the seed. The same targets and seed give the same parts on every run.
"""
from __future__ import annotations

from collections import deque
from typing import Sequence

import numpy as np

__all__ = ["stratified_split"]


def _part_sizes(sizes, n: int) -> list[int]:
    if isinstance(sizes, (int, float, np.integer, np.floating)):
        raise TypeError("stratified_split: sizes must be a sequence such as (4000, 1000) or "
                        f"(0.8, 0.2), got {sizes!r}")
    sizes = list(sizes)
    if not sizes:
        raise ValueError("stratified_split: no part sizes given")
    if any(isinstance(s, bool) for s in sizes):
        raise TypeError(f"stratified_split: sizes must be numbers, got {sizes}")
    if all(isinstance(s, (int, np.integer)) for s in sizes):
        out = [int(s) for s in sizes]
        if min(out) < 0:
            raise ValueError(f"stratified_split: negative size in {out}")
        if sum(out) > n:
            raise ValueError(f"stratified_split: sizes {out} add up to {sum(out)}, more than "
                             f"the {n} samples")
        return out
    if not all(isinstance(s, (float, np.floating)) for s in sizes):
        raise TypeError(f"stratified_split: give all sizes as counts (int) or all as "
                        f"fractions (float), not a mix: {sizes}")
    fr = np.asarray(sizes, dtype=np.float64)
    if np.any(fr < 0) or np.any(fr > 1) or fr.sum() > 1 + 1e-9:
        raise ValueError(f"stratified_split: fractions must be in [0, 1] and add up to at "
                         f"most 1, got {sizes}")
    total = n if fr.sum() > 1 - 1e-9 else int(round(fr.sum() * n))
    raw = fr * n
    out = np.floor(raw + 1e-9).astype(np.int64)
    # Largest remainder: the parts closest to rounding up get the missing samples.
    order = sorted(range(len(out)), key=lambda i: (-(raw[i] - out[i]), i))
    for i in order[:max(0, total - int(out.sum()))]:
        out[i] += 1
    return [int(s) for s in out]


def _augment(c: int, inc: np.ndarray, frac: np.ndarray, cap: np.ndarray) -> bool:
    """Give row c one more unit through an alternating path over the columns (parts):
    c takes a unit in column p0, a row holding a unit in p0 moves it to p1, ... until a
    column with spare capacity is reached."""
    n_cols = inc.shape[1]
    parent: dict[int, tuple[int | None, int]] = {}
    queue: deque[int] = deque()
    for p in range(n_cols):
        if frac[c, p] and not inc[c, p]:
            parent[p] = (None, c)
            queue.append(p)
    while queue:
        p = queue.popleft()
        if cap[p] > 0:
            cap[p] -= 1
            while True:  # apply the path backwards
                prev, row = parent[p]
                inc[row, p] = 1
                if prev is None:
                    return True
                inc[row, prev] = 0
                p = prev
        for row in np.flatnonzero(inc[:, p]):
            for q in range(n_cols):
                if q not in parent and frac[row, q] and not inc[row, q]:
                    parent[q] = (p, int(row))
                    queue.append(q)
    return False


def _class_counts_per_part(counts: np.ndarray, sizes: list[int], n: int,
                           rng: np.random.Generator) -> np.ndarray:
    """Table (classes, parts) with row sums `counts`, column sums `sizes` (which add up to
    n) and every entry the floor or ceil of counts[c] * sizes[p] / n."""
    num = counts[:, None].astype(np.int64) * np.asarray(sizes, dtype=np.int64)[None, :]
    base, rem = np.divmod(num, n)
    frac = rem != 0
    need_row = counts - base.sum(axis=1)
    cap = np.asarray(sizes, dtype=np.int64) - base.sum(axis=0)
    inc = np.zeros_like(base)
    for c in rng.permutation(len(counts)):
        # Prefer parts where the class would otherwise be absent, then the largest remainder.
        cols = sorted(np.flatnonzero(frac[c]), key=lambda p: (base[c, p] > 0, -rem[c, p]))
        for p in cols:
            if need_row[c] == 0:
                break
            if cap[p] > 0:
                inc[c, p] = 1
                cap[p] -= 1
                need_row[c] -= 1
        while need_row[c] > 0:
            if not _augment(c, inc, frac, cap):
                raise RuntimeError("stratified_split: internal error, no rounding found")
            need_row[c] -= 1
    return base + inc


def stratified_split(targets, sizes: Sequence[int] | Sequence[float],
                     seed: int = 0) -> tuple[np.ndarray, ...]:
    """Split indices 0..N-1 into disjoint parts of the given sizes, each class represented in
    proportion (within one sample of its ideal share in every part).

    sizes: counts, e.g. (4000, 1000), adding up to at most N; or fractions, e.g.
        (0.8, 0.1, 0.1), adding up to at most 1 (rounded by largest remainder so that
        fractions adding up to 1 cover all N samples). Samples not in any part are left out.
    seed: the same targets, sizes and seed always give the same parts.

    Returns one int64 index array per part, in a seeded random order. Raises ValueError
    when a class has fewer samples than there are non-empty parts, or a non-empty part is
    smaller than the number of classes.
    """
    y = np.asarray(targets)
    if y.ndim != 1:
        raise ValueError(f"stratified_split: targets must be 1-D, got shape {y.shape}")
    n = y.shape[0]
    part_sizes = _part_sizes(sizes, n)
    if n == 0:
        return tuple(np.zeros(0, dtype=np.int64) for _ in part_sizes)
    labels, inverse = np.unique(y, return_inverse=True)
    inverse = inverse.reshape(-1)
    counts = np.bincount(inverse, minlength=len(labels))
    used = [s for s in part_sizes if s > 0]
    small = int(np.argmin(counts))
    if counts[small] < len(used):
        raise ValueError(f"stratified_split: class {labels[small].tolist()!r} has {counts[small]} "
                         f"sample(s), too few to appear in each of the {len(used)} non-empty "
                         f"parts of sizes {part_sizes}")
    leftover = n - sum(part_sizes)
    columns = part_sizes + ([leftover] if leftover else [])
    rng = np.random.default_rng(seed)
    table = _class_counts_per_part(counts, columns, n, rng)
    parts: list[list[np.ndarray]] = [[] for _ in part_sizes]
    for c in range(len(labels)):
        members = rng.permutation(np.flatnonzero(inverse == c))
        bounds = np.cumsum(table[c])
        for p, chunk in enumerate(np.split(members, bounds[:-1])[:len(part_sizes)]):
            parts[p].append(chunk)
    return tuple(rng.permutation(np.concatenate(chunks)).astype(np.int64) for chunks in parts)
