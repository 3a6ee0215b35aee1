"""`framework.nn.utils` (as torch.nn.utils): gradient clipping, parameter/vector conversion,
the packed-sequence helpers in `rnn`, parametrizations (`parametrize`, `parametrizations`) and
the legacy hook forms of weight and spectral normalisation, `stateless.functional_call`,
`prune` and `fusion` (conv/linear + batch-norm folding)."""
from . import parametrizations, parametrize, rnn  # noqa: F401
from .clip_grad import (clip_grad_norm, clip_grad_norm_, clip_grad_value_,  # noqa: F401
                        clip_grads_with_norm_, get_total_norm)
from .convert_parameters import parameters_to_vector, vector_to_parameters  # noqa: F401
from .spectral_norm import remove_spectral_norm, spectral_norm  # noqa: F401
from .weight_norm import remove_weight_norm, weight_norm  # noqa: F401

__all__ = ["rnn", "parametrize", "parametrizations", "clip_grad_norm", "clip_grad_norm_",
           "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm", "parameters_to_vector",
           "vector_to_parameters", "weight_norm", "remove_weight_norm", "spectral_norm",
           "remove_spectral_norm", "stateless", "functional_call", "prune", "fusion",
           "fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval",
           "fuse_linear_bn_weights"]

_LAZY_MODULES = ("stateless", "prune", "fusion")
_FUSION_NAMES = ("fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval",
                 "fuse_linear_bn_weights")


def __getattr__(name: str):
    # these submodules load on first access, so that `import framework` does not pay for them
    import importlib
    if name in _LAZY_MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name == "functional_call":
        return importlib.import_module(f"{__name__}.stateless").functional_call
    if name in _FUSION_NAMES:
        return getattr(importlib.import_module(f"{__name__}.fusion"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
