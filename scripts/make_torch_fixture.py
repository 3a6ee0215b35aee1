"""Write the PyTorch checkpoint fixtures that tests/test_serialization.py loads WITHOUT torch.

Run once with torch installed (`pip install lantern[parity]`):

    python scripts/make_torch_fixture.py            # writes into tests/fixtures/

It writes
  torch_checkpoint.pt         torch.save (zip layout) of the object built by `build_object`
  torch_checkpoint_legacy.pt  the same object with _use_new_zipfile_serialization=False
  torch_checkpoint_expected.npz  every tensor of the object, flattened to "path.to.tensor"
                              keys (bfloat16 as float32), plus "__strides__.<path>" (element
                              strides) and "__shares__.<path>" (the key of another tensor whose
                              storage it shares) so tests can check views survived.

The object covers what the loader must handle: a tiny model's state dict (Linear +
BatchNorm, so an OrderedDict with `_metadata` and an int64 0-d num_batches_tracked), an
optimizer state dict (int keys, tuples, floats, bools, None, 0-d step tensors), a transposed
(non-contiguous) view sharing storage with its base, slices at storage offsets, a stride-0
expanded tensor, int64 / bool / bfloat16 / float16 / float64 tensors, a Parameter, a
torch.Size, a dtype and a set.
"""
from __future__ import annotations

import argparse
from collections import OrderedDict
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def build_object(torch):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.8, 0.95))
    x = torch.randn(5, 4)
    model(x).square().mean().backward()
    opt.step()  # fills the optimizer state (step, exp_avg, exp_avg_sq) and BN running stats

    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    flat = torch.arange(10, dtype=torch.float64)
    return {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "views": {
            "base": base,
            "transposed": base.t(),          # non-contiguous, same storage as base
            "row1": base[1],                 # storage offset 4
            "column2": base[:, 2],           # offset 2, stride 4
            "tail": flat[6:],                # offset 6 into a float64 storage
            "head": flat[:3],
            "expanded": torch.tensor([1.0, 2.0, 3.0]).expand(2, 3),  # stride (0, 1)
        },
        "dtypes": {
            "int64": torch.tensor([[-3, 2**40], [7, 0]], dtype=torch.int64),
            "bool": torch.tensor([True, False, True]),
            "bfloat16": torch.tensor([1.0, -2.5, 3.140625, 1e10], dtype=torch.bfloat16),
            "float16": torch.tensor([0.5, -1.25, 65504.0], dtype=torch.float16),
            "int32": torch.tensor([1, -2, 3], dtype=torch.int32),
            "uint8": torch.tensor([0, 255], dtype=torch.uint8),
            "scalar": torch.tensor(7.5),
            "empty": torch.zeros(0, 3),
        },
        "param": torch.nn.Parameter(torch.tensor([0.25, 0.5])),
        "meta": OrderedDict([("epoch", 3), ("best", 0.875), ("name", "tiny"), ("done", True),
                             ("none", None), ("shape", torch.Size([2, 3])),
                             ("dtype", torch.float16), ("tags", {"a", "b"}),
                             ("pair", (1, "two"))]),
    }


def flatten(obj, prefix=""):
    """Yield (path, tensor) for every tensor in nested dicts/lists/tuples."""
    if hasattr(obj, "shape") and hasattr(obj, "stride"):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from flatten(v, f"{prefix}.{i}" if prefix else str(i))


def main(argv=None):
    import torch
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=FIXTURES)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    obj = build_object(torch)
    torch.save(obj, args.out / "torch_checkpoint.pt")
    torch.save(obj, args.out / "torch_checkpoint_legacy.pt", _use_new_zipfile_serialization=False)

    expected = {}
    storages = {}
    for path, t in flatten(obj):
        t = t.detach()
        expected[path] = (t.float() if t.dtype == torch.bfloat16 else t).numpy().copy()
        expected["__strides__." + path] = np.array(t.stride(), dtype=np.int64)
        ptr = t.untyped_storage().data_ptr()
        if ptr in storages:
            expected["__shares__." + path] = np.array(storages[ptr])
        else:
            storages[ptr] = path
    np.savez(args.out / "torch_checkpoint_expected.npz", **expected)
    for f in sorted(args.out.glob("torch_checkpoint*")):
        print(f"{f}: {f.stat().st_size} bytes")


if __name__ == "__main__":
    main()
