"""DQN agents Lantern trains on gymnasium's classic-control tasks and LunarLander, shipped in
`models/rl/weights/` (each under 300 kB): the Q-network from `lantern rl export`, its JSON
sidecar (environment, hyperparameters, builder arguments) and the record below (hash,
measured returns, the command that made it). `lantern rl zoo-build <name>` runs the command
again and compares the return.

Figures: the mean and std of the return over 20 deterministic (greedy) episodes on an
evaluation environment reset once with `eval_seed` (later episodes continue its generator,
as SB3's evaluate_policy). Training ran episode 1 with the training seed and later episodes
with seeds drawn from the agent's generator; the evaluation episodes are not among them.
`lantern rl eval --model zoo:<name>` reproduces the figure exactly on a CPU.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..registry import Weights, register_weights

__all__: list[str] = []

_DIR = Path(__file__).resolve().parent / "weights"
_EVAL = ("20 deterministic episodes, the evaluation environment reset with seed 1000; "
         "training used seed 0")


def _shipped(tag: str, file: str, sha256: str, metrics: dict, recipe: str,
             description: str) -> Weights:
    meta = json.loads((_DIR / file).with_suffix(".json").read_text())
    return register_weights(Weights(
        model=meta["model"], tag=tag, file=f"repo:rl/weights/{file}", sha256=sha256,
        num_params=meta["num_params"], categories=(),
        metrics={"dataset": meta["env_id"], "split": _EVAL, **metrics},
        transforms={"env_id": meta["env_id"], "env_kwargs": meta["env_kwargs"],
                    "atari_wrappers": meta["atari_wrappers"]},
        recipe=recipe, builder_kwargs=dict(meta["model_kwargs"]), description=description))


_shipped(
    "cartpole-v1", "dqn_mlp_cartpole_v1.safetensors",
    "890087662235bb8b947ab3c0614bfe370edf1d9d317641317c95ad54e96bdf4a",
    {"mean_return": 500.0, "std_return": 0.0, "episodes": 20, "eval_seed": 1000,
     "train_seed": 0, "timesteps": 50_000, "train_seconds": 61.8},
    "lantern rl train --env CartPole-v1 --preset cartpole --seed 0",
    "DQN (256x256 MLP, 3-step returns) trained 50k steps on CartPole-v1 with rl-zoo's "
    "hyperparameters at learning rate 1e-3; the maximum return, 500, in every episode")
_shipped(
    "acrobot-v1", "dqn_mlp_acrobot_v1.safetensors",
    "97b5834821584812c549ff534cec26a2ada76ccba9803595dcd46171baecf25c",
    {"mean_return": -81.75, "std_return": 24.9136, "episodes": 20, "eval_seed": 1000,
     "train_seed": 0, "timesteps": 100_000, "train_seconds": 258.8},
    "lantern rl train --env Acrobot-v1 --preset acrobot --seed 0",
    "DQN (256x256 MLP) trained 100k steps on Acrobot-v1 with rl-zoo's hyperparameters")
_shipped(
    "mountaincar-v0", "dqn_mlp_mountaincar_v0.safetensors",
    "4f3eb581f3dd4162fe6cec5283a4f5c3c5b29f1cc39049d90f0924fc7135ebfb",
    {"mean_return": -99.95, "std_return": 6.6142, "episodes": 20, "eval_seed": 1000,
     "train_seed": 0, "timesteps": 120_000, "train_seconds": 225.8},
    "lantern rl train --env MountainCar-v0 --preset mountaincar --seed 0",
    "DQN (256x256 MLP) trained 120k steps on MountainCar-v0 with rl-zoo's hyperparameters")
_shipped(
    "lunarlander-v3", "dqn_mlp_lunarlander_v3.safetensors",
    "85f77d3587b180f436474fd7b9797ece375fb904aaa49f86440b72624f288cde",
    {"mean_return": 259.0708, "std_return": 16.9918, "episodes": 20, "eval_seed": 1000,
     "train_seed": 0, "timesteps": 100_000, "train_seconds": 219.8},
    "lantern rl train --env LunarLander-v3 --preset lunarlander --seed 0",
    "DQN (256x256 MLP) trained 100k steps on LunarLander-v3 with rl-zoo's hyperparameters "
    "(needs Box2D: pip install \"gymnasium[box2d]\")")
