"""Samplers: iterables over dataset indices (or, for `BatchSampler`, over lists of indices)."""
from __future__ import annotations

import itertools
from typing import Generic, Iterable, Iterator, Sequence, Sized, TypeVar

import numpy as np

from ..._backend import CPU

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
           "WeightedRandomSampler", "BatchSampler"]

T_co = TypeVar("T_co", covariant=True)


def _draw_seed(generator=None) -> int:
    """A 63-bit seed drawn from `generator` (default: the global CPU generator), as
    `torch.empty((), dtype=torch.int64).random_(generator=g).item()` does."""
    from ...random import default_generator
    g = generator if generator is not None else default_generator
    return int(g._integers(0, 2 ** 63, (), np.int64, CPU))


def _private_generator(generator):
    """`generator` itself, or a fresh generator seeded from the global one (so that an
    unseeded sampler follows `framework.manual_seed`)."""
    if generator is not None:
        return generator
    from ...random import Generator
    return Generator().manual_seed(_draw_seed())


class Sampler(Generic[T_co]):
    """Base class: subclasses define `__iter__` (and `__len__` when they know it)."""

    def __init__(self, data_source: Sized | None = None) -> None:
        pass

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError


class SequentialSampler(Sampler[int]):
    """Indices 0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


_REPLACEMENT_CHUNK = 32


class RandomSampler(Sampler[int]):
    """Random indices: a fresh permutation each epoch (repeated as needed to give
    `num_samples`), or `num_samples` independent draws with `replacement=True`.

    A `framework.Generator` makes the order reproducible; it advances each epoch, so epochs
    differ from each other but the whole run repeats for the same seed."""

    def __init__(self, data_source: Sized, replacement: bool = False,
                 num_samples: int | None = None, generator=None) -> None:
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if not isinstance(self.replacement, bool):
            raise TypeError("replacement should be a boolean value, but got "
                            f"replacement={self.replacement}")
        if isinstance(num_samples, bool) or (num_samples is not None and (
                not isinstance(num_samples, int) or num_samples <= 0)):
            raise ValueError("num_samples should be a positive integer value, but got "
                             f"num_samples={num_samples}")

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n = len(self.data_source)
        g = _private_generator(self.generator)
        if self.replacement:
            # drawn lazily, _REPLACEMENT_CHUNK at a time (as PyTorch, which draws 32): memory
            # stays O(chunk) however large num_samples is, and the stream is the generator's
            full, rest = divmod(self.num_samples, _REPLACEMENT_CHUNK)
            for _ in range(full):
                yield from g._integers(0, n, (_REPLACEMENT_CHUNK,), np.int64, CPU).tolist()
            if rest:
                yield from g._integers(0, n, (rest,), np.int64, CPU).tolist()
            return
        for _ in range(self.num_samples // n):
            yield from g._permutation(n, np.int64, CPU).tolist()
        rest = self.num_samples % n
        if rest:
            yield from g._permutation(n, np.int64, CPU)[:rest].tolist()

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler[int]):
    """The given indices in a random order (a fresh permutation each epoch)."""

    def __init__(self, indices: Sequence[int], generator=None) -> None:
        self.indices = indices
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        from ...random import default_generator
        g = self.generator if self.generator is not None else default_generator
        for i in g._permutation(len(self.indices), np.int64, CPU).tolist():
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler[int]):
    """`num_samples` indices in [0, len(weights)) drawn with probabilities proportional to
    `weights` (which need not sum to one), with or without replacement."""

    def __init__(self, weights: Sequence[float], num_samples: int, replacement: bool = True,
                 generator=None) -> None:
        from ...creation import as_tensor
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or \
                num_samples <= 0:
            raise ValueError("num_samples should be a positive integer value, but got "
                             f"num_samples={num_samples}")
        if not isinstance(replacement, bool):
            raise ValueError("replacement should be a boolean value, but got "
                             f"replacement={replacement}")
        w = as_tensor(weights.detach() if hasattr(weights, "detach") else weights,
                      dtype=np.float64)
        if w.dim() != 1:
            raise ValueError("weights should be a 1d sequence but given weights have shape "
                             f"{tuple(w.shape)}")
        self.weights = w
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        from ...creation import multinomial
        idx = multinomial(self.weights, self.num_samples, self.replacement,
                          generator=self.generator)
        yield from idx.tolist()

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler[list]):
    """Group the indices of `sampler` into lists of `batch_size` (the last one shorter unless
    `drop_last`)."""

    def __init__(self, sampler: Sampler[int] | Iterable[int], batch_size: int,
                 drop_last: bool) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError("batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list]:
        it = iter(self.sampler)
        size = self.batch_size
        while True:
            batch = list(itertools.islice(it, size))
            if not batch or (self.drop_last and len(batch) < size):
                return
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
