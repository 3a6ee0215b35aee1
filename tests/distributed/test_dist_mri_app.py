"""`lantern mri train --distributed` on 2 MPI processes (a tiny phantom, 3D patches): it trains,
rank 0 alone prints and writes the run folder, the other rank writes nothing."""
import json
import sys
from pathlib import Path

from .test_dist_vision_app import LAUNCH

sys.path.insert(0, str(Path(__file__).parents[1] / "mri"))
from test_mri_data import phantom  # noqa: E402


def test_mri_train_distributed_smoke(mpirun, tmp_path):
    from datasets.mri import write_nifti
    from datasets.mri.mni import _FILE
    template = tmp_path / "template"
    t = phantom(shape=(24, 28, 26))
    write_nifti(t.image, template / _FILE.format("t1"))
    write_nifti(t.grey.with_array(t.grey.array * 255), template / _FILE.format("gm"))
    write_nifti(t.white.with_array(t.white.array * 255), template / _FILE.format("wm"))
    out = tmp_path / "run"
    res = mpirun(LAUNCH, timeout=120, args=[
        "mri", "train", "--distributed", "--task", "lesion", "--template", str(template),
        "--cases", "3", "--test-cases", "1", "--dims", "3d", "--patch-size", "8,8,8",
        "--channels", "2,4", "--samples-per-epoch", "8", "--batch-size", "2", "--epochs", "2",
        "--no-plots", "--out", str(out)])
    text = res.stdout + res.stderr
    assert res.returncode == 0, text[-4000:]
    rank0 = json.loads((tmp_path / "writes_0.json").read_text())
    rank1 = json.loads((tmp_path / "writes_1.json").read_text())
    assert rank0["world"] == rank1["world"] == 2 and rank0["rc"] == rank1["rc"] == 0
    assert rank1["writes"] == []
    assert {"metrics.json", "metrics.csv", "last.safetensors"} <= set(rank0["writes"])
    m = json.loads((out / "metrics.json").read_text())
    assert m["epochs"] == 2 and set(m["test"]["dice"]) == {"lesion"}
    # 8 patches a epoch, 4 per rank: 2 batches of 2 on each
    assert text.count("x 2 processes") == 1 and text.count("epoch 2/2") == 1
    assert "2 batches of 2" in text
