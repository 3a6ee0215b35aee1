"""`framework.optim`: optimizers and learning-rate schedulers with PyTorch's names, options,
update rules and state_dict layout (see `optimizer.py` for the design, and for why CPU training
loops should call ``framework.set_flush_denormal(True)``)."""
from . import lr_scheduler, swa_utils
from .adadelta import Adadelta
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam
from .adamax import Adamax
from .adamw import AdamW
from .asgd import ASGD
from .lbfgs import LBFGS
from .nadam import NAdam
from .optimizer import Optimizer
from .radam import RAdam
from .rmsprop import RMSprop
from .rprop import Rprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "NAdam",
           "RAdam", "Adafactor", "Adamax", "ASGD", "Rprop", "LBFGS", "lr_scheduler", "swa_utils"]
