"""`lantern vision train --distributed` on 2 MPI processes (digits, 1 epoch): it trains, rank 0
alone prints and writes the run folder (metrics, checkpoints), the other rank writes nothing."""
import json

LAUNCH = r"""
import json, os, sys
import framework as fw
import apps.common.files as files

# record every file each rank writes (the run folder's writers all go through these two)
writes = []
atomic_write, save = files.atomic_write, fw.save
files.atomic_write = lambda path, write: (writes.append(str(path)), atomic_write(path, write))[1]
fw.save = lambda obj, path, *a, **k: (writes.append(str(path)), save(obj, path, *a, **k))[1]

from apps.cli import main
rc = main(sys.argv[1:])
import framework.distributed as dist
log = os.path.join(os.path.dirname(sys.argv[sys.argv.index("--out") + 1]),
                   f"writes_{dist.get_rank()}.json")
with open(log, "w") as f:
    json.dump({"rc": rc, "writes": [os.path.basename(w) for w in writes],
               "world": dist.get_world_size()}, f)
sys.exit(rc)
"""


def test_vision_train_distributed_smoke(mpirun, tmp_path):
    out = tmp_path / "run"
    res = mpirun(LAUNCH, timeout=120, args=[
        "vision", "train", "--distributed", "--data", "digits", "--model", "small_cnn",
        "--epochs", "1", "--batch-size", "256", "--no-plots", "--out", str(out)])
    text = res.stdout + res.stderr
    assert res.returncode == 0, text[-4000:]
    rank0 = json.loads((tmp_path / "writes_0.json").read_text())
    rank1 = json.loads((tmp_path / "writes_1.json").read_text())
    assert rank0["world"] == rank1["world"] == 2 and rank0["rc"] == rank1["rc"] == 0
    assert rank1["writes"] == []
    assert {"metrics.json", "metrics.csv", "last.safetensors"} <= set(rank0["writes"])
    m = json.loads((out / "metrics.json").read_text())
    assert m["epochs"] == 1 and m["test"]["count"] > 0 and 0 <= m["test"]["accuracy"] <= 1
    assert 0 < m["final_epoch"]["train/loss"] < 10
    # logging from rank 0 only: one header, one epoch line, one result line
    assert text.count("x 2 processes") == 1 and text.count("epoch 1/1") == 1
    assert text.count("test accuracy") == 1
