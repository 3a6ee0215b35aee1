"""The three MTCNN face-detection networks (P-Net, R-Net, O-Net) with facenet-pytorch's module
names, forward semantics and pretrained weights.

Each net ends in a softmax face/non-face head (class 1 = face) and linear regression heads.
Outputs, in facenet-pytorch's order: P-Net `(box_regression, probs)` as maps (fully
convolutional, 12x12 receptive field), R-Net `(box_regression, probs)` for 24x24 crops,
O-Net `(box_regression, landmarks, probs)` for 48x48 crops. R-Net and O-Net flatten their
conv features in (batch, width, height, channel) order before the dense layers, as the
original Caffe weights expect. Crops are prepared by `mtcnn_preprocess`: area resampling
to the net's size, then `(x - 127.5) * 0.0078125` on 0-255 pixel values.
"""
from __future__ import annotations

import numpy as np

import framework as fw
import framework.nn as nn
import framework.nn.functional as F

from ..registry import Weights, register_model, register_weights

__all__ = ["PNet", "RNet", "ONet", "mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet",
           "mtcnn_preprocess", "face_classifier_score", "CROP_SIZES"]

CROP_SIZES = {"mtcnn_pnet": 12, "mtcnn_rnet": 24, "mtcnn_onet": 48}


def _flatten_whc(x):
    """(N, C, H, W) -> (N, W*H*C), the channel-last, width-major order of the Caffe weights."""
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class PNet(nn.Module):
    """Proposal net: three 3x3 convs with PReLU (a ceil-mode 2x2 pool after the first), then
    1x1 conv heads: `conv4_1` face probabilities (softmax over channels), `conv4_2` boxes."""

    returns_probabilities = True   # the last output is already a softmax

    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, 3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, 3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, 3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, num_classes, 1)
        self.softmax4_1 = nn.Softmax(dim=1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), self.softmax4_1(self.conv4_1(x))


class RNet(nn.Module):
    """Refinement net for 24x24 crops: convs 28/48/64 with PReLU and ceil-mode 3x3/2 pools,
    dense 576 -> 128, then `dense5_1` face probabilities and `dense5_2` boxes."""

    returns_probabilities = True   # the last output is already a softmax

    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, 3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, 3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, 2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, num_classes)
        self.softmax5_1 = nn.Softmax(dim=1)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(_flatten_whc(x)))
        return self.dense5_2(x), self.softmax5_1(self.dense5_1(x))


class ONet(nn.Module):
    """Output net for 48x48 crops: convs 32/64/64/128 with PReLU and ceil-mode pools, dense
    1152 -> 256, then `dense6_1` face probabilities, `dense6_2` boxes, `dense6_3` the five
    landmarks (x1..x5, y1..y5)."""

    returns_probabilities = True   # the last output is already a softmax

    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, 3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, 2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, num_classes)
        self.softmax6_1 = nn.Softmax(dim=1)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(_flatten_whc(x)))
        return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))


def mtcnn_preprocess(images, size: int):
    """MTCNN input from crops with 0-255 pixel values: (N, H, W) grey (replicated to RGB) or
    (N, H, W, 3) RGB, a NumPy array or a Tensor -> float32 (N, 3, size, size) Tensor,
    area-resampled (facenet-pytorch's `interpolate(mode="area")`) then
    `(x - 127.5) * 0.0078125`."""
    x = images if isinstance(images, fw.Tensor) else fw.tensor(images)
    x = x.to(fw.float32)
    if x.dim() == 3:
        x = x.unsqueeze(1).expand(-1, 3, -1, -1)
    elif x.dim() == 4 and x.shape[-1] == 3:
        x = x.permute(0, 3, 1, 2)
    else:
        raise ValueError(f"mtcnn_preprocess: expected (N, H, W) or (N, H, W, 3) crops, got "
                         f"shape {tuple(x.shape)}")
    if tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="area")
    return (x - 127.5) * 0.0078125


@register_model(domain="vision")
def mtcnn_pnet(*, num_classes: int = 2) -> PNet:
    """MTCNN P-Net (proposal net, fully convolutional), facenet-pytorch-compatible."""
    return PNet(num_classes)


@register_model(domain="vision")
def mtcnn_rnet(*, num_classes: int = 2) -> RNet:
    """MTCNN R-Net (refinement net, 24x24 crops), facenet-pytorch-compatible."""
    return RNet(num_classes)


@register_model(domain="vision")
def mtcnn_onet(*, num_classes: int = 2) -> ONet:
    """MTCNN O-Net (output net, 48x48 crops, boxes + landmarks), facenet-pytorch-compatible."""
    return ONet(num_classes)


def face_classifier_score(net, images, labels, size: int) -> dict:
    """Score an MTCNN net as a face/non-face classifier on grey patches `images` (N, H, W)
    with values in [0, 1] and `labels` (1 = face): grey replicated to RGB, `mtcnn_preprocess`
    of x*255 at `size`, face when the softmax probability of class 1 exceeds 0.5. Returns
    accuracy and the per-class counts (the metrics of the `facenet` weights records)."""
    images = np.asarray(images)
    truth = np.asarray(labels) == 1
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    try:
        with fw.no_grad():
            x = mtcnn_preprocess((images * 255.0).astype(np.float32), size).to(device)
            probs = net(x)[-1]
    finally:
        net.train(was_training)
    face = probs.reshape(len(images), -1)[:, 1].cpu().numpy() > 0.5
    return {"accuracy": float(np.mean(face == truth)),
            "faces_detected": int(face[truth].sum()), "faces": int(truth.sum()),
            "non_faces_rejected": int((~face[~truth]).sum()), "non_faces": int((~truth).sum())}


# facenet-pytorch 2.6.0's weights, served by the datasets hub source "mtcnn". Metrics: each
# net as a face/non-face classifier on all of scikit-image's lfw_subset (`face_classifier_score`;
# facenet-pytorch itself scores the same, see scripts/make_mtcnn_fixture.py).
_RECIPE = "python -c \"import datasets; datasets.fetch('mtcnn')\"  # facenet-pytorch==2.6.0 wheel"


def _eval_spec(size: int) -> dict:
    """The eval preset equal to facenet's crop preprocessing: RGB (grey replicated), area
    resampling to size x size, (p - 127.5) / 128 on 0-255 pixels."""
    return {"preset": "eval", "crop": size, "resize": size, "mean": [0.5] * 3,
            "std": [128 / 255] * 3, "channels": 3, "interpolation": "area"}


def _lfw_metrics(accuracy, detected, rejected) -> dict:
    return {"dataset": "lfw-subset", "split": "all 200 patches (100 faces, 100 non-faces)",
            "task": "face vs non-face, P(face) > 0.5", "accuracy": accuracy,
            "faces_detected": detected, "faces": 100, "non_faces_rejected": rejected,
            "non_faces": 100}


_FACENET = [
    ("mtcnn_pnet", "P-Net", "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
     6632, _lfw_metrics(0.995, 99, 100),
     "any image (fully convolutional; 12x12 crops give 1x1 maps)",
     "(box_regression maps, face probability maps)"),
    ("mtcnn_rnet", "R-Net", "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
     100178, _lfw_metrics(1.0, 100, 100), "24x24 crops", "(box_regression, face probabilities)"),
    ("mtcnn_onet", "O-Net", "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
     389040, _lfw_metrics(1.0, 100, 100), "48x48 crops",
     "(box_regression, landmarks, face probabilities)"),
]
for _model, _title, _sha, _params, _metrics, _input, _outputs in _FACENET:
    register_weights(Weights(
        model=_model, tag="facenet", file=f"hub:mtcnn/{_model[6:]}.pt", sha256=_sha,
        num_params=_params, categories=("non-face", "face"), metrics=_metrics,
        transforms=_eval_spec(CROP_SIZES[_model]), recipe=_RECIPE,
        description=f"MTCNN {_title} (Zhang et al. 2016) from facenet-pytorch 2.6.0, converted "
                    f"from the original Caffe model; input {_input}; outputs {_outputs}"))
del _FACENET, _model, _title, _sha, _params, _metrics, _input, _outputs
