"""`framework.distributions`: probability distributions with PyTorch's names and semantics
(torch.distributions): sampling through the framework's generator (`manual_seed` makes draws
reproducible), reparameterised `rsample` where one exists, `log_prob`/`entropy`/`mean`/
`variance` with gradients w.r.t. the parameters, argument validation, transforms, and
closed-form `kl_divergence` for the registered pairs."""
from __future__ import annotations

from . import constraints, transforms
from .bernoulli import Bernoulli
from .beta import Beta
from .categorical import Categorical
from .distribution import Distribution
from .gamma import Gamma
from .independent import Independent
from .kl import kl_divergence, register_kl
from .multivariate_normal import MultivariateNormal
from .normal import Normal
from .one_hot_categorical import OneHotCategorical
from .transformed_distribution import TransformedDistribution
from .transforms import (AffineTransform, ComposeTransform, ExpTransform, SigmoidTransform,
                         TanhTransform, Transform, identity_transform)
from .uniform import Uniform

__all__ = ["AffineTransform", "Bernoulli", "Beta", "Categorical", "ComposeTransform",
           "Distribution", "ExpTransform", "Gamma", "Independent", "MultivariateNormal",
           "Normal", "OneHotCategorical", "SigmoidTransform", "TanhTransform", "Transform",
           "TransformedDistribution", "Uniform", "constraints", "identity_transform",
           "kl_divergence", "register_kl", "transforms"]
