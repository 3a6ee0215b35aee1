"""Noisy linear layer (Fortunato et al. 2017, "Noisy Networks for Exploration") with
factorised Gaussian noise: the weights are mu + sigma * eps, eps = f(e_out) f(e_in)^T with
f(x) = sign(x) sqrt(|x|), so one draw costs in + out normals instead of in * out.

The noise is drawn from the framework's generator of the layer's device (seeded by
`framework.manual_seed`), held in buffers (`weight_epsilon`, `bias_epsilon`) so a state dict
restores it, and changes only when `reset_noise()` is called. In `eval()` mode the layer uses
the mean weights, so a trained agent acts deterministically.
"""
from __future__ import annotations

import math

import framework as fw
import framework.nn as nn
import framework.nn.functional as F

__all__ = ["NoisyLinear", "reset_noise"]


def _scaled_noise(n: int, like) -> "fw.Tensor":
    x = fw.randn(n, dtype=like.dtype, device=like.device)
    return x.sign() * x.abs().sqrt()


class NoisyLinear(nn.Module):
    """y = x (mu_W + sigma_W * eps_W)^T + (mu_b + sigma_b * eps_b) in training mode,
    y = x mu_W^T + mu_b in eval mode.

    mu ~ U(-1/sqrt(in), 1/sqrt(in)); sigma = sigma0 / sqrt(in) (the paper's factorised init).
    """

    def __init__(self, in_features: int, out_features: int, sigma0: float = 0.5,
                 device=None, dtype=None) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"NoisyLinear: features must be positive, got ({in_features}, "
                             f"{out_features})")
        self.in_features = in_features
        self.out_features = out_features
        self.sigma0 = float(sigma0)
        kw = {"device": device, "dtype": dtype}
        self.weight_mu = nn.Parameter(fw.empty(out_features, in_features, **kw))
        self.weight_sigma = nn.Parameter(fw.empty(out_features, in_features, **kw))
        self.bias_mu = nn.Parameter(fw.empty(out_features, **kw))
        self.bias_sigma = nn.Parameter(fw.empty(out_features, **kw))
        self.register_buffer("weight_epsilon", fw.zeros(out_features, in_features, **kw))
        self.register_buffer("bias_epsilon", fw.zeros(out_features, **kw))
        self.reset_parameters()
        self.reset_noise()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_features)
        sigma = self.sigma0 / math.sqrt(self.in_features)
        with fw.no_grad():
            nn.init.uniform_(self.weight_mu, -bound, bound)
            nn.init.uniform_(self.bias_mu, -bound, bound)
            self.weight_sigma.fill_(sigma)
            self.bias_sigma.fill_(sigma)

    def reset_noise(self) -> None:
        """Draw new factorised noise (in + out standard normals)."""
        with fw.no_grad():
            e_in = _scaled_noise(self.in_features, self.weight_mu)
            e_out = _scaled_noise(self.out_features, self.weight_mu)
            self.weight_epsilon.copy_(fw.outer(e_out, e_in))
            self.bias_epsilon.copy_(e_out)

    def forward(self, x):
        if not self.training:
            return F.linear(x, self.weight_mu, self.bias_mu)
        weight = self.weight_mu + self.weight_sigma * self.weight_epsilon
        bias = self.bias_mu + self.bias_sigma * self.bias_epsilon
        return F.linear(x, weight, bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, " \
               f"sigma0={self.sigma0}"


def reset_noise(module: nn.Module) -> int:
    """Call `reset_noise()` on every NoisyLinear inside `module`; the number of layers."""
    n = 0
    for m in module.modules():
        if isinstance(m, NoisyLinear):
            m.reset_noise()
            n += 1
    return n
