"""Batching text for a DataLoader: `TextCollator` encodes a list of `(text, target)` samples
into padded tensors, and `BucketBatchSampler` groups texts of similar length into the same
batch so that little of each batch is padding."""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

import framework
from framework.utils.data import Sampler

__all__ = ["TextCollator", "BucketBatchSampler"]


class TextCollator:
    """A DataLoader `collate_fn`: `[(text, target), ...]` ->
    `({"input_ids", "attention_mask"[, "token_type_ids"]: int64 Tensor (N, L)},
    targets int64 Tensor (N,))`, encoded by `encoder.encode_batch(texts, max_length)`.
    Picklable when the encoder is (both kinds are), so it works in worker processes."""

    def __init__(self, encoder, max_length: int | None = None):
        self.encoder = encoder
        self.max_length = max_length

    def __call__(self, batch: Sequence[tuple[str, int]]):
        if not batch:
            raise ValueError("TextCollator: empty batch")
        texts, targets = [], []
        for sample in batch:
            if not (isinstance(sample, (tuple, list)) and len(sample) == 2
                    and isinstance(sample[0], str)):
                raise TypeError("TextCollator: samples must be (text: str, target: int) pairs, "
                                f"got {type(sample).__name__} {str(sample)[:60]!r}")
            texts.append(sample[0])
            targets.append(int(sample[1]))
        arrays = self.encoder.encode_batch(texts, self.max_length)
        inputs = {name: framework.from_numpy(a) for name, a in arrays.items()}
        return inputs, framework.from_numpy(np.asarray(targets, dtype=np.int64))

    def __repr__(self) -> str:
        return f"TextCollator({self.encoder!r}, max_length={self.max_length})"


class BucketBatchSampler(Sampler[list]):
    """Batches of indices with similar `lengths` (for `DataLoader(batch_sampler=...)`).

    With shuffle (training): each epoch draws a permutation of all indices, cuts it into
    buckets of `bucket_size` indices (rounded up to a multiple of batch_size), sorts each
    bucket by length, cuts the buckets into batches and shuffles the order of the batches.
    Only the epoch's last bucket can end in a short batch (dropped with drop_last). Every
    index appears exactly once per epoch (less the dropped tail). Draws come from
    `generator` (a `framework.Generator`: the same seed gives the same epochs) or, without
    one, from framework's global generator (`framework.manual_seed`).

    Without shuffle (evaluation): all indices sorted by length (stable), in batches from
    the shortest to the longest; the same every epoch.

    bucket_size: default 100 * batch_size; larger buckets give more uniform batches but
    less randomness in which texts share a batch.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool = True,
                 generator: framework.Generator | None = None, drop_last: bool = False,
                 bucket_size: int | None = None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"BucketBatchSampler: batch_size must be a positive int, got "
                             f"{batch_size!r}")
        lengths = np.asarray(lengths)
        if lengths.ndim != 1 or (lengths.size and lengths.dtype.kind not in "iuf"):
            raise ValueError(f"BucketBatchSampler: lengths must be a 1-D sequence of numbers, "
                             f"got shape {lengths.shape} dtype {lengths.dtype}")
        if bucket_size is None:
            bucket_size = 100 * batch_size
        if isinstance(bucket_size, bool) or not isinstance(bucket_size, int) or bucket_size <= 0:
            raise ValueError(f"BucketBatchSampler: bucket_size must be a positive int, got "
                             f"{bucket_size!r}")
        self.lengths = lengths
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.generator = generator
        self.drop_last = bool(drop_last)
        self.bucket_size = -(-bucket_size // batch_size) * batch_size

    def _batches(self, order: np.ndarray) -> list[np.ndarray]:
        n, b = order.shape[0], self.batch_size
        stop = n - n % b if self.drop_last else n
        return [order[i:i + b] for i in range(0, stop, b)]

    def __iter__(self) -> Iterator[list]:
        n = self.lengths.shape[0]
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            yield from (batch.tolist() for batch in self._batches(order))
            return
        perm = framework.randperm(n, generator=self.generator).numpy()
        parts = []
        for start in range(0, n, self.bucket_size):
            bucket = perm[start:start + self.bucket_size]
            parts.append(bucket[np.argsort(self.lengths[bucket], kind="stable")])
        batches = self._batches(np.concatenate(parts) if parts else perm)
        for k in framework.randperm(len(batches), generator=self.generator).numpy().tolist():
            yield batches[k].tolist()

    def __len__(self) -> int:
        n = self.lengths.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
