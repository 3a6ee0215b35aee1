"""`framework.nn`: modules, parameters, initialisation and functional ops (as torch.nn)."""
from . import functional  # noqa: F401
from . import init, utils  # noqa: F401
from .modules import *  # noqa: F401,F403
from .modules import __all__ as _modules_all
from .modules.module import (RemovableHandle, register_module_forward_hook,  # noqa: F401
                             register_module_forward_pre_hook)
from .parameter import Buffer, Parameter  # noqa: F401
from . import parallel  # noqa: F401,E402
from .parallel import DataParallel  # noqa: F401,E402

__all__ = ["functional", "init", "utils", "parallel", "DataParallel", "Parameter", "Buffer",
           "RemovableHandle", "register_module_forward_hook",
           "register_module_forward_pre_hook"] + \
    list(_modules_all)
