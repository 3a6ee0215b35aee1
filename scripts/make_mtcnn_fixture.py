"""Write tests/fixtures/mtcnn_facenet.npz: facenet-pytorch's MTCNN networks (with their
pretrained weights, the files the hub source `mtcnn` serves) run on a few fixed crops, so
tests/vision/test_vision_models.py can check Lantern's P-/R-/O-Net and `mtcnn_preprocess`.

Run with an interpreter that has torch, facenet-pytorch and scikit-image (nothing from this
project is imported):

    /path/to/venv/bin/python scripts/make_mtcnn_fixture.py   # writes into tests/fixtures/

Crops are scikit-image's `lfw_subset` images (3 faces, 3 non-faces) tinted per channel with
seeded noise, so a swapped channel order would show. Arrays (all float32 unless said):
  onet/crops  (6, 25, 25, 3) uint8 RGB    onet/input  (6, 3, 48, 48) facenet's resampled,
  onet/box (6, 4), onet/landmarks (6, 10), onet/probs (6, 2)          normalised net input
  rnet/crops  (6, 25, 25, 3) uint8 RGB    rnet/input (6, 3, 24, 24), rnet/box, rnet/probs
  pnet/image  (40, 52, 3) uint8 RGB       pnet/input (1, 3, 40, 52) (no resampling),
  pnet/box (1, 4, 15, 21), pnet/probs (1, 2, 15, 21)
  meta        JSON string: the lfw indices used, the library versions and each net's score as
              a face/non-face classifier on all of lfw_subset (`face_classifier_score`)
"""
from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from facenet_pytorch.models.mtcnn import ONet, PNet, RNet
from facenet_pytorch.models.utils.detect_face import imresample
from skimage import data as skdata

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "mtcnn_facenet.npz"
INDICES = [0, 1, 2, 100, 101, 102]   # lfw_subset rows 0-99 are faces, 100-199 are not


def tinted(grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, H, W) floats in [0, 1] -> (N, H, W, 3) uint8 RGB with per-channel gains and noise."""
    gains = rng.uniform(0.7, 1.1, size=(grey.shape[0], 1, 1, 3))
    noise = rng.normal(0.0, 6.0, size=(*grey.shape, 3))
    return np.clip(grey[..., None] * 255.0 * gains + noise, 0, 255).round().astype(np.uint8)


def net_input(crops_hwc: np.ndarray, size: int | None) -> torch.Tensor:
    """facenet-pytorch's crop preparation: NCHW float, area resampling, then normalisation."""
    x = torch.from_numpy(crops_hwc).permute(0, 3, 1, 2).float()
    if size is not None:
        x = imresample(x, (size, size))
    return (x - 127.5) * 0.0078125


def face_classifier_score(net, lfw: np.ndarray, size: int) -> dict:
    """The net as a face/non-face classifier on all of lfw_subset (rows 0-99 faces): grey
    replicated to RGB, pixel values x*255, facenet's crop preparation at `size`; face when the
    softmax probability of class 1 exceeds 0.5."""
    grey = np.repeat((lfw * 255.0)[..., None], 3, axis=-1)   # float64 0-255, like the crops
    x = net_input(grey.astype(np.float32), size)
    probs = net(x)[-1].reshape(len(lfw), 2).numpy()
    face = probs[:, 1] > 0.5
    truth = np.arange(len(lfw)) < 100
    return {"accuracy": float(np.mean(face == truth)),
            "faces_detected": int(face[truth].sum()), "faces": int(truth.sum()),
            "non_faces_rejected": int((~face[~truth]).sum()), "non_faces": int((~truth).sum())}


def main() -> None:
    torch.set_grad_enabled(False)
    rng = np.random.default_rng(2024)
    lfw = skdata.lfw_subset()
    crops = tinted(lfw[INDICES], rng)
    pnet, rnet, onet = PNet().eval(), RNet().eval(), ONet().eval()
    out: dict[str, np.ndarray] = {}

    x = net_input(crops, 48)
    box, landmarks, probs = onet(x)
    out.update({"onet/crops": crops, "onet/input": x.numpy(), "onet/box": box.numpy(),
                "onet/landmarks": landmarks.numpy(), "onet/probs": probs.numpy()})

    crops_r = tinted(lfw[INDICES][:, :, ::-1], rng)   # mirrored, and new tints
    x = net_input(crops_r, 24)
    box, probs = rnet(x)
    out.update({"rnet/crops": crops_r, "rnet/input": x.numpy(), "rnet/box": box.numpy(),
                "rnet/probs": probs.numpy()})

    canvas = rng.uniform(0.2, 0.8, size=(1, 40, 52))
    canvas[0, 5:30, 4:29] = lfw[3]
    canvas[0, 12:37, 26:51] = lfw[4]
    image = tinted(canvas, rng)
    x = net_input(image, None)
    box, probs = pnet(x)
    out.update({"pnet/image": image[0], "pnet/input": x.numpy(), "pnet/box": box.numpy(),
                "pnet/probs": probs.numpy()})

    lfw_scores = {name: face_classifier_score(net, lfw, size)
                  for name, net, size in (("mtcnn_pnet", pnet, 12), ("mtcnn_rnet", rnet, 24),
                                          ("mtcnn_onet", onet, 48))}
    for k, v in out.items():
        if v.dtype != np.uint8:
            out[k] = v.astype(np.float32)
    out["meta"] = np.array(json.dumps({
        "lfw_indices": INDICES, "lfw_subset_scores": lfw_scores, "torch": torch.__version__,
        "facenet_pytorch": version("facenet-pytorch")}))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **out)
    for k, v in out.items():
        print(k, v.shape, v.dtype)
    print("onet face probabilities:", np.round(out["onet/probs"][:, 1], 4))
    print("rnet face probabilities:", np.round(out["rnet/probs"][:, 1], 4))
    print("lfw_subset face/non-face scores:", json.dumps(lfw_scores, indent=1))


if __name__ == "__main__":
    main()
