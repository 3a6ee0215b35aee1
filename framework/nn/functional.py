"""`framework.nn.functional` (as torch.nn.functional)."""
from ..ops.reduction import log_softmax, softmax  # noqa: F401
from ..ops.elementwise import relu, sigmoid, tanh  # noqa: F401
