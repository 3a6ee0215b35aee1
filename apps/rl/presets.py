"""Hyperparameter presets for `lantern rl train`, one YAML file per environment in
`apps/rl/presets/`, in rl-baselines3-zoo's layout: the environment id as the top key, under
it `n_timesteps` and DQN hyperparameters with `DQNConfig`'s (Stable-Baselines3's) names.

    CartPole-v1:
      n_timesteps: 50000
      learning_rate: 1.0e-3
      net_arch: [256, 256]

Besides the hyperparameters a preset may give `env_kwargs` (passed to `gymnasium.make`) and
`atari_wrappers` (gymnasium's AtariPreprocessing + FrameStackObservation settings). The key
`atari` stands for every ALE game (`ALE/<Game>-v5`); its `default_env` is used when no
`--env` is given.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .dqn import DQNConfig

__all__ = ["Preset", "PRESET_DIR", "list_presets", "load_preset", "preset_for_env",
           "atari_wrappers"]

PRESET_DIR = Path(__file__).resolve().parent / "presets"
_EXTRA_KEYS = ("n_timesteps", "env_kwargs", "atari_wrappers", "default_env")
_ATARI_DEFAULTS = {"noop_max": 30, "frame_skip": 4, "screen_size": 84,
                   "terminal_on_life_loss": False, "frame_stack": 4, "clip_reward": True}


@dataclass(frozen=True)
class Preset:
    """One environment's hyperparameters: `hyperparams` are DQNConfig fields."""

    name: str                     # the file's stem: cartpole, acrobot, atari, ...
    env: str                      # the environment id it is for ("atari": any ALE game)
    n_timesteps: int
    hyperparams: dict[str, Any]
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    atari: dict[str, Any] | None = None   # wrapper settings; None: no wrappers
    default_env: str | None = None
    path: str = ""

    def matches(self, env_id: str) -> bool:
        """Whether this preset is meant for `env_id`."""
        if self.env == "atari":
            return env_id.startswith("ALE/") or env_id.endswith("NoFrameskip-v4")
        return env_id == self.env

    @property
    def default_env_id(self) -> str:
        return self.default_env or self.env

    def config(self, **overrides) -> DQNConfig:
        return DQNConfig.from_dict({**self.hyperparams, **overrides})


def _yaml():
    try:
        import yaml
    except ImportError:
        raise ImportError("lantern rl presets need PyYAML: pip install pyyaml") from None
    return yaml


def list_presets() -> list[str]:
    """The names of the shipped presets."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name_or_path: str) -> Preset:
    """A shipped preset by name (`cartpole`) or a YAML file in the same layout; bad files and
    unknown names or keys are ValueErrors naming them."""
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        path = PRESET_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            names = list_presets()
            close = difflib.get_close_matches(str(name_or_path), names, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ValueError(f"unknown preset {name_or_path!r}{hint}; presets: "
                             f"{', '.join(names)}, or a .yaml file")
    yaml = _yaml()
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise ValueError(f"{path}: not valid YAML{where}") from None
    if not isinstance(doc, dict) or len(doc) != 1 or not isinstance(next(iter(doc.values())),
                                                                     dict):
        raise ValueError(f"{path}: expected one environment id as the top key with its "
                         "hyperparameters under it")
    env, body = next(iter(doc.items()))
    body = dict(body)
    if "n_timesteps" not in body:
        raise ValueError(f"{path}: no n_timesteps")
    hyper = {k: v for k, v in body.items() if k not in _EXTRA_KEYS}
    try:
        DQNConfig.from_dict(hyper)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    atari = body.get("atari_wrappers")
    if atari is not None:
        unknown = sorted(set(atari) - set(_ATARI_DEFAULTS))
        if unknown:
            raise ValueError(f"{path}: unknown atari_wrappers setting(s) {', '.join(unknown)}; "
                             f"known: {', '.join(_ATARI_DEFAULTS)}")
        atari = {**_ATARI_DEFAULTS, **atari}
    return Preset(name=path.stem, env=str(env), n_timesteps=int(float(body["n_timesteps"])),
                  hyperparams=hyper, env_kwargs=dict(body.get("env_kwargs") or {}),
                  atari=atari, default_env=body.get("default_env"), path=str(path))


def preset_for_env(env_id: str) -> Preset | None:
    """The shipped preset written for `env_id` (for an ALE game: `atari`), or None."""
    for name in list_presets():
        preset = load_preset(name)
        if preset.matches(env_id):
            return preset
    return None


def atari_wrappers(settings: dict, *, train: bool = True) -> list[Callable]:
    """gymnasium's standard Atari preprocessing as wrapper callables (outermost last):
    AtariPreprocessing, then (training only) reward clipping to [-1, 1], then frame stacking.
    Evaluation leaves rewards alone, so returns are the game's score."""
    import gymnasium as gym
    s = {**_ATARI_DEFAULTS, **settings}

    def preprocess(env):
        return gym.wrappers.AtariPreprocessing(
            env, noop_max=int(s["noop_max"]), frame_skip=int(s["frame_skip"]),
            screen_size=int(s["screen_size"]),
            terminal_on_life_loss=bool(s["terminal_on_life_loss"]), grayscale_obs=True,
            scale_obs=False)

    def clip(env):
        return gym.wrappers.ClipReward(env, -1.0, 1.0)

    def stack(env):
        return gym.wrappers.FrameStackObservation(env, int(s["frame_stack"]))

    wrappers = [preprocess]
    if train and s["clip_reward"]:
        wrappers.append(clip)
    wrappers.append(stack)
    return wrappers
