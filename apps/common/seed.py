"""Seeding and RNG snapshots: one call seeds every generator a run draws from, and the state
of all of them goes into checkpoints so a resumed run draws the same numbers."""
from __future__ import annotations

import random

import numpy as np

import framework as fw

__all__ = ["seed_everything", "rng_state", "set_rng_state"]


def seed_everything(seed: int) -> None:
    """Seed the framework's generators (CPU and GPU), NumPy's global RNG and `random`."""
    fw.manual_seed(seed)
    np.random.seed(seed % 2 ** 32)
    random.seed(seed)


def rng_state() -> dict:
    """The state of the framework's CPU generator, NumPy's global RNG and `random`, in a
    form `framework.save` stores without pickling (tensors, strings, numbers, lists)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, words, gauss = random.getstate()
    return {"framework": fw.get_rng_state(),
            "numpy": {"keys": fw.tensor(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
            "python": {"version": int(version), "words": fw.tensor(np.asarray(words, np.int64)),
                       "gauss": gauss}}


def set_rng_state(state: dict) -> None:
    fw.set_rng_state(state["framework"])
    s = state["numpy"]
    np.random.set_state(("MT19937", np.asarray(s["keys"].numpy(), dtype=np.uint32),
                         int(s["pos"]), int(s["has_gauss"]), float(s["cached_gaussian"])))
    p = state["python"]
    random.setstate((int(p["version"]), tuple(int(w) for w in p["words"].numpy()), p["gauss"]))
