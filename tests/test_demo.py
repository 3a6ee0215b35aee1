"""`lantern demo --quick`: the stages run through the user's commands, the summary and the
self-contained HTML report are written, and the text stage falls back to the generated corpus
(and says so) when rotten-tomatoes can neither be fetched nor found in the cache."""
import json

import pytest

import datasets
from apps.cli import main


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    mp = pytest.MonkeyPatch()

    fetch = datasets.fetch

    def offline(name, *a, **k):
        if name == "rotten-tomatoes":
            raise datasets.HubError(f"{name}: no network in this test")
        return fetch(name, *a, **k)
    mp.setattr(datasets, "fetch", offline)
    try:
        rc = main(["demo", "--quick", "--out", str(out)])
    finally:
        mp.undo()
    return rc, out


def test_demo_writes_summary_and_report(demo, capsys):
    rc, out = demo
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["stages"]) == {"vision", "text", "rl", "mri"} and m["failures"] == []
    assert m["stages"]["rl"]["mean_return"] > 100        # random play averages about 22
    assert m["stages"]["vision"]["test_accuracy"] > 0.8        # 3 epochs on digits
    assert m["stages"]["text"]["data"] == "synthetic-reviews"
    assert m["stages"]["text"]["test_accuracy"] > 0.7
    assert m["stages"]["mri"]["test_mean_dice"] > 0.4   # 3 epochs of the tissue task (0.53)
    assert (out / "mri" / "segment" / "image_seg.dcm").is_file()   # DICOM in, SEG out
    assert "cores" in m["machine"] and m["seconds"] > 0
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 9    # curves x3, confusion x2, samples,
    assert "Test metrics per label" in html             # MRI overlays x2+
    assert "could not be fetched" in html and "synthetic-reviews" in html
    assert 'class="right"' in html                      # sample predictions, marked
    pytest.importorskip("pygame")
    assert "data:image/gif;base64," in html             # the trained agent
    assert "http" not in html.replace("http-equiv", "")  # self-contained


def test_demo_skips_mri_without_its_template(tmp_path, monkeypatch):
    def offline(name, *a, **k):
        raise datasets.HubError(f"{name}: no network in this test")
    monkeypatch.setattr(datasets, "fetch", offline)
    assert main(["demo", "--only", "mri", "--out", str(tmp_path)]) == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["stages"] == {} and m["failures"] == []
    assert "lantern data fetch mni152" in m["skipped"][0]
    assert "skipped: mri" in (tmp_path / "report.html").read_text()


def test_demo_bad_stage_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--only", "nope"])
    assert exc.value.code == 2
