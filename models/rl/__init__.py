"""Reinforcement-learning networks of the model zoo. Importing this package registers the
builders `dqn_mlp` (vector observations) and `dqn_nature_cnn` (stacked Atari frames) in
`models.registry`; the agent that trains them is `apps.rl.dqn.DQN`.

Families: `qnets` (QNetwork, NatureCNN and their plain/dueling/noisy/C51 head) and `noisy`
(factorised-Gaussian NoisyLinear); `zoo` registers the trained agents shipped in `weights/`
(`dqn_mlp.cartpole-v1`, `dqn_mlp.acrobot-v1`, ...).
"""
from . import noisy, qnets, zoo   # zoo after qnets: it registers weights for the builders
from .noisy import NoisyLinear, reset_noise
from .qnets import NatureCNN, QHead, QNetwork, dqn_mlp, dqn_nature_cnn

__all__ = ["noisy", "qnets", "NoisyLinear", "reset_noise", "QHead", "QNetwork", "NatureCNN",
           "dqn_mlp", "dqn_nature_cnn"]
