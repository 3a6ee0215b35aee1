"""Image data for the vision application: decoding, data sets (folders, CSV, IDX, CIFAR, the
hub's embedded sources, a synthetic set), the opener behind `--data`, and transforms."""
from .arrays import ArrayImageDataset
from .cifar import CIFAR10, CIFAR100
from .decode import IMG_EXTENSIONS, BadImageError, read_image
from .embedded import MNIST5k, Digits, LFWFaces
from .folder import CSVImageDataset, ImageFolder
from .idx import MNIST, FashionMNIST, read_idx
from .open import ACCEPTED, open_image_dataset
from .shapes import Shapes
from .subset import ImageSubset

__all__ = ["ArrayImageDataset", "CIFAR10", "CIFAR100", "IMG_EXTENSIONS", "BadImageError",
           "read_image", "MNIST5k", "Digits", "LFWFaces", "CSVImageDataset", "ImageFolder",
           "MNIST", "FashionMNIST", "read_idx", "ACCEPTED", "open_image_dataset", "Shapes",
           "ImageSubset"]
