"""Vision architectures of the model zoo. Importing this package registers every builder
(and the pretrained weights records that go with them) in `models.registry`; build them with
`models.get_model(name, ...)` or call `models.vision.<family>.<builder>` directly.

The torchvision families (resnet, vgg, mobilenet, vit) keep torchvision's module and
state-dict names, so torchvision checkpoints load key for key with `models.load_pretrained`.
The MTCNN networks keep facenet-pytorch's names and load its weights. `zoo` registers the
weights Lantern trains on the embedded data (LeNet-5 on mnist5k, the small CNN on digits).
"""
from . import lenet, mlp, mobilenet, mtcnn, resnet, small_cnn, vgg, vit, zoo
from .lenet import LeNet5
from .mlp import MLP
from .mobilenet import InvertedResidual, MobileNetV2
from .mtcnn import ONet, PNet, RNet
from .resnet import BasicBlock, Bottleneck, ResNet
from .small_cnn import SmallCNN
from .vgg import VGG
from .vit import VisionTransformer

__all__ = ["lenet", "mlp", "mobilenet", "mtcnn", "resnet", "small_cnn", "vgg", "vit",
           "LeNet5", "MLP", "InvertedResidual", "MobileNetV2", "ONet", "PNet", "RNet",
           "BasicBlock", "Bottleneck", "ResNet", "SmallCNN", "VGG", "VisionTransformer"]
