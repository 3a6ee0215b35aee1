"""Q-networks for DQN and its Rainbow variants: an MLP for vector observations and the
Nature-DQN CNN (Mnih et al. 2015) for stacked 84x84 Atari frames.

Both end in the same head:
- plain: one linear layer to n_actions (x atoms) outputs;
- dueling (Wang et al. 2016): a value stream V and an advantage stream A, combined as
  Q = V + A - mean_a A (the mean makes the split identifiable);
- noisy: the head's linear layers are `NoisyLinear` (Fortunato et al. 2017);
- distributional (C51, Bellemare et al. 2017) when atoms > 1: forward returns logits of shape
  (N, n_actions, atoms) over the fixed support linspace(v_min, v_max, atoms), and
  `q_values` gives Q = sum_i softmax(logits)_i * support_i.

`forward` returns Q-values (N, n_actions) when atoms == 1; `q_values(x)` is Q in both cases.
"""
from __future__ import annotations

from typing import Sequence

import framework as fw
import framework.nn as nn
import framework.nn.functional as F

from ..registry import register_model
from .noisy import NoisyLinear

__all__ = ["QHead", "QNetwork", "NatureCNN", "dqn_mlp", "dqn_nature_cnn"]


class QHead(nn.Module):
    """Features (N, in_features) -> Q-values (N, n_actions) or logits (N, n_actions, atoms)."""

    def __init__(self, in_features: int, n_actions: int, *, dueling: bool = False,
                 noisy: bool = False, atoms: int = 1, sigma0: float = 0.5) -> None:
        super().__init__()
        if n_actions < 1:
            raise ValueError(f"QHead: n_actions must be positive, got {n_actions}")
        if atoms < 1:
            raise ValueError(f"QHead: atoms must be positive, got {atoms}")
        self.n_actions, self.atoms, self.dueling = int(n_actions), int(atoms), bool(dueling)

        def layer(n_in: int, n_out: int) -> nn.Module:
            return NoisyLinear(n_in, n_out, sigma0) if noisy else nn.Linear(n_in, n_out)

        if dueling:
            self.value = layer(in_features, self.atoms)
            self.advantage = layer(in_features, self.n_actions * self.atoms)
        else:
            self.q = layer(in_features, self.n_actions * self.atoms)

    def forward(self, h):
        n = h.shape[0]
        if not self.dueling:
            out = self.q(h)
            return out if self.atoms == 1 else out.reshape(n, self.n_actions, self.atoms)
        v = self.value(h).reshape(n, 1, self.atoms)
        a = self.advantage(h).reshape(n, self.n_actions, self.atoms)
        out = v + (a - a.mean(1, keepdim=True))
        return out.reshape(n, self.n_actions) if self.atoms == 1 else out


class _QModel(nn.Module):
    """What both Q-networks share: the head, the C51 support and `q_values`."""

    def _init_head(self, in_features: int, n_actions: int, dueling: bool, noisy: bool,
                   atoms: int, v_min: float, v_max: float, sigma0: float) -> None:
        if atoms > 1 and not v_min < v_max:
            raise ValueError(f"{type(self).__name__}: v_min must be below v_max, got "
                             f"[{v_min}, {v_max}]")
        self.n_actions, self.atoms = int(n_actions), int(atoms)
        self.dueling, self.noisy = bool(dueling), bool(noisy)
        self.v_min, self.v_max = float(v_min), float(v_max)
        self.head = QHead(in_features, n_actions, dueling=dueling, noisy=noisy, atoms=atoms,
                          sigma0=sigma0)
        # derived from (v_min, v_max, atoms): not part of the state dict
        self.register_buffer("support", fw.linspace(self.v_min, self.v_max, self.atoms),
                             persistent=False)

    @property
    def distributional(self) -> bool:
        return self.atoms > 1

    def q_values(self, x):
        """Q-values (N, n_actions): the output itself, or the mean of the C51 distribution."""
        out = self(x)
        if self.atoms == 1:
            return out
        return (F.softmax(out, -1) * self.support).sum(-1)

    def reset_noise(self) -> None:
        """Draw new noise in every noisy layer (nothing when not noisy)."""
        for m in self.modules():
            if isinstance(m, NoisyLinear):
                m.reset_noise()


class QNetwork(_QModel):
    """MLP Q-network: obs (N, obs_dim) -> [Linear, ReLU] per hidden width -> QHead."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: Sequence[int] = (256, 256),
                 dueling: bool = False, noisy: bool = False, atoms: int = 1,
                 v_min: float = -10.0, v_max: float = 10.0, sigma0: float = 0.5) -> None:
        super().__init__()
        if obs_dim < 1:
            raise ValueError(f"QNetwork: obs_dim must be positive, got {obs_dim}")
        self.obs_dim = int(obs_dim)
        self.hidden = tuple(int(h) for h in hidden)
        layers: list[nn.Module] = []
        width = self.obs_dim
        for h in self.hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.body = nn.Sequential(*layers)
        self._init_head(width, n_actions, dueling, noisy, atoms, v_min, v_max, sigma0)

    def forward(self, obs):
        if obs.dtype != fw.float32:
            obs = obs.float()
        return self.head(self.body(obs))


class NatureCNN(_QModel):
    """Nature-DQN Q-network for (N, C, 84, 84) frames with raw 0-255 pixel values (uint8 or
    float; divided by 255 inside): conv 32x8x8/4, 64x4x4/2, 64x3x3/1, linear 512, QHead."""

    def __init__(self, in_channels: int = 4, n_actions: int = 6, dueling: bool = False,
                 noisy: bool = False, atoms: int = 1, v_min: float = -10.0,
                 v_max: float = 10.0, sigma0: float = 0.5, features: int = 512) -> None:
        super().__init__()
        self.in_channels = int(in_channels)
        self.features = nn.Sequential(
            nn.Conv2d(self.in_channels, 32, 8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(64 * 7 * 7, features), nn.ReLU())
        self._init_head(features, n_actions, dueling, noisy, atoms, v_min, v_max, sigma0)

    def forward(self, frames):
        if frames.ndim != 4 or tuple(frames.shape[1:]) != (self.in_channels, 84, 84):
            raise ValueError(f"NatureCNN: expected frames (N, {self.in_channels}, 84, 84), got "
                             f"{tuple(frames.shape)}")
        return self.head(self.features(frames.float() * (1.0 / 255.0)))


@register_model(domain="rl")
def dqn_mlp(*, obs_dim: int = 4, n_actions: int = 2, hidden: Sequence[int] = (256, 256),
            dueling: bool = False, noisy: bool = False, atoms: int = 1, v_min: float = -10.0,
            v_max: float = 10.0) -> QNetwork:
    """DQN MLP Q-network for vector observations (dueling/noisy/C51 heads as options)."""
    return QNetwork(obs_dim, n_actions, hidden, dueling, noisy, atoms, v_min, v_max)


@register_model(domain="rl")
def dqn_nature_cnn(*, in_channels: int = 4, n_actions: int = 6, dueling: bool = False,
                   noisy: bool = False, atoms: int = 1, v_min: float = -10.0,
                   v_max: float = 10.0) -> NatureCNN:
    """Nature-DQN CNN Q-network for 4 stacked 84x84 frames (dueling/noisy/C51 options)."""
    return NatureCNN(in_channels, n_actions, dueling, noisy, atoms, v_min, v_max)
