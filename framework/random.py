"""Random number generators: one per device, seeded together by `manual_seed`.

A `Generator` wraps NumPy's PCG64 on the CPU and CuPy's generator on a GPU, so draws are
reproducible on each device for a given seed (not bit-identical across devices, nor with
PyTorch's Philox/MT streams).
"""
from __future__ import annotations

import numpy as np

from ._backend import CPU, device, on_device, require_cupy

__all__ = ["Generator", "manual_seed", "seed", "initial_seed", "get_rng_state", "set_rng_state",
           "default_generator"]


class Generator:
    def __init__(self, device="cpu"):
        self.device = device if isinstance(device, type(CPU)) else globals()["device"](device)
        self._seed = 67280421310721
        self._reset()

    def _reset(self):
        if self.device.type == "cpu":
            self._rng = np.random.Generator(np.random.PCG64(self._seed))
        else:
            cp = require_cupy()
            with cp.cuda.Device(self.device.index or 0):
                self._rng = cp.random.RandomState(self._seed % (2 ** 63))

    def manual_seed(self, seed: int):
        self._seed = int(seed) & 0xFFFF_FFFF_FFFF_FFFF
        self._reset()
        return self

    def seed(self) -> int:
        s = int(np.random.SeedSequence().entropy) & 0xFFFF_FFFF_FFFF_FFFF
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self):
        from .creation import tensor
        if self.device.type != "cpu":
            raise NotImplementedError("get_state of a CUDA generator is not supported; reseed it "
                                      "with manual_seed instead")
        st = self._rng.bit_generator.state
        words = [st["state"]["state"], st["state"]["inc"], st["has_uint32"], st["uinteger"]]
        raw = b"".join(int(w).to_bytes(16, "little") for w in words)
        return tensor(np.frombuffer(raw, dtype=np.uint8).copy())

    def set_state(self, state):
        if self.device.type != "cpu":
            raise NotImplementedError("set_state of a CUDA generator is not supported")
        raw = bytes(np.asarray(state._data, dtype=np.uint8))
        if len(raw) != 64:
            raise RuntimeError(f"generator state must be 64 bytes, got {len(raw)}")
        w = [int.from_bytes(raw[i:i + 16], "little") for i in range(0, 64, 16)]
        self._rng.bit_generator.state = {"bit_generator": "PCG64",
                                         "state": {"state": w[0], "inc": w[1]},
                                         "has_uint32": w[2], "uinteger": w[3]}
        return self

    # draws (device-resident arrays)
    def _uniform(self, shape, np_dtype, dev):
        if self.device.type == "cpu":
            if dev.type != "cpu":
                return default_generator_for(dev)._uniform(shape, np_dtype, dev)
            if np.dtype(np_dtype) in (np.float32, np.float64):
                return self._rng.random(shape, dtype=np_dtype)
            return self._rng.random(shape).astype(np_dtype)
        with on_device(dev):
            return self._rng.random_sample(shape, dtype=np.float64).astype(np_dtype)

    def _normal(self, shape, np_dtype, dev):
        if self.device.type == "cpu":
            if dev.type != "cpu":
                return default_generator_for(dev)._normal(shape, np_dtype, dev)
            if np.dtype(np_dtype) in (np.float32, np.float64):
                return self._rng.standard_normal(shape, dtype=np_dtype)
            return self._rng.standard_normal(shape).astype(np_dtype)
        with on_device(dev):
            return self._rng.standard_normal(shape, dtype=np.float64).astype(np_dtype)

    def _integers(self, low, high, shape, np_dtype, dev):
        if self.device.type == "cpu":
            if dev.type != "cpu":
                return default_generator_for(dev)._integers(low, high, shape, np_dtype, dev)
            return self._rng.integers(low, high, size=shape).astype(np_dtype, copy=False)
        with on_device(dev):
            return self._rng.randint(low, high, size=shape).astype(np_dtype)

    def _permutation(self, n, np_dtype, dev):
        if self.device.type == "cpu":
            if dev.type != "cpu":
                return default_generator_for(dev)._permutation(n, np_dtype, dev)
            return self._rng.permutation(n).astype(np_dtype)
        with on_device(dev):
            return self._rng.permutation(n).astype(np_dtype)


default_generator = Generator("cpu")
_cuda_generators: dict[int, Generator] = {}


def default_generator_for(dev) -> Generator:
    if dev.type == "cpu":
        return default_generator
    idx = dev.index or 0
    g = _cuda_generators.get(idx)
    if g is None:
        g = _cuda_generators[idx] = Generator(device("cuda", idx))
        g.manual_seed(default_generator.initial_seed() + idx)
    return g


def manual_seed(seed: int) -> Generator:
    """Seed the CPU generator and every CUDA generator created so far (and later ones)."""
    seed = int(seed)
    default_generator.manual_seed(seed)
    for idx, g in _cuda_generators.items():
        g.manual_seed(seed + idx)
    return default_generator


def seed() -> int:
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state():
    return default_generator.get_state()


def set_rng_state(state):
    default_generator.set_state(state)
