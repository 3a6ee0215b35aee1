"""`framework.nn`: modules, parameters, initialisation and functional ops (as torch.nn)."""
from . import functional  # noqa: F401
