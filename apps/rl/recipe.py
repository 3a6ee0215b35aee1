"""The DQN recipe behind `lantern rl`: train, evaluate, enjoy (render), benchmark over seeds,
export, describe models and build zoo weights. Each command function takes the parsed
command-line namespace (or any object with the same attributes) and returns an exit code.

Read it like rl-baselines3-zoo's train.py: resolve the environment and its preset (plus the
Rainbow flags and `--set` overrides) -> `DQN.learn` with a logging/checkpointing callback ->
a deterministic evaluation -> `<out>/metrics.json`.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

import framework as fw
import models
from apps.common import LAST, CLIError, check_device, load_checkpoint, save_checkpoint, \
    write_csv, write_json
from apps.common import zoo
from apps.common.files import atomic_write
from apps.common.modelfiles import export_model, read_model_file, zoo_weights

from .dqn import DQN, DQNConfig, evaluate_greedy, make_env
from .presets import Preset, atari_wrappers, load_preset, preset_for_env

__all__ = ["train", "evaluate", "enjoy", "benchmark", "export", "describe_models",
           "zoo_build", "RunSetup", "resolve_setup", "Policy", "load_policy",
           "learning_curve", "DEFAULT_TIMESTEPS", "EVAL_SEED_OFFSET"]

DEFAULT_TIMESTEPS = 100_000   # for an environment without a preset
EVAL_SEED_OFFSET = 1000       # the final evaluation's seed is the training seed + this
ROLLING = 20                  # episodes in the running mean return


# ============================================================================== setup
@dataclass
class RunSetup:
    """What a training run is: the environment, its preset, the resolved hyperparameters."""

    env_id: str
    preset: Preset | None
    config: DQNConfig
    total_timesteps: int
    env_kwargs: dict
    atari: dict | None            # Atari wrapper settings, or None

    def wrappers(self, train: bool = True) -> list[Callable] | None:
        return atari_wrappers(self.atari, train=train) if self.atari else None

    def describe(self) -> dict:
        return {"env": self.env_id, "preset": self.preset.name if self.preset else None,
                "total_timesteps": self.total_timesteps, "env_kwargs": self.env_kwargs,
                "atari_wrappers": self.atari, "config": self.config.to_dict()}


def _parse_value(raw: str):
    import yaml
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    if isinstance(value, str):   # YAML reads 1e-3 as a string (it wants 1.0e-3)
        try:
            return float(value)
        except ValueError:
            return value
    return value


def flag_overrides(args) -> dict[str, Any]:
    """The hyperparameters the command line sets: the Rainbow flags, then `--set k=v`."""
    out: dict[str, Any] = {}
    for flag in ("double", "dueling", "per", "noisy"):
        if getattr(args, flag, False):
            out[flag] = True
    if getattr(args, "n_step", None) is not None:
        out["n_step"] = int(args.n_step)
    if getattr(args, "c51", False):
        out["atoms"] = 51
    names = {f for f in DQNConfig.__dataclass_fields__}
    for pair in getattr(args, "set", None) or ():
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CLIError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set learning_rate=1e-3")
        if key not in names:
            import difflib
            close = difflib.get_close_matches(key, sorted(names), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise CLIError(f"--set {key}: not a DQN hyperparameter{hint}; they are: "
                           f"{', '.join(sorted(names))}")
        out[key] = _parse_value(raw)
    return out


def _config(values: dict, where: str) -> DQNConfig:
    try:
        return DQNConfig.from_dict(values)
    except TypeError as exc:
        raise CLIError(f"{where}: {exc}") from None
    except ValueError as exc:
        raise CLIError(f"{where}: {exc}") from None


def resolve_setup(args) -> RunSetup:
    """The environment and hyperparameters of `train`/`benchmark`: the preset named by
    --preset (else the shipped one written for --env, else SB3's defaults), then the flags."""
    env_id = getattr(args, "env", None)
    if getattr(args, "preset", None):
        preset = load_preset(args.preset)
        if env_id and not preset.matches(env_id):
            raise CLIError(f"--preset {preset.name} is for {preset.env}, not --env {env_id}")
        env_id = env_id or preset.default_env_id
    elif env_id:
        preset = preset_for_env(env_id)
    else:
        raise CLIError("give --env ID (a gymnasium id such as CartPole-v1) or --preset NAME")
    values = dict(preset.hyperparams) if preset else {}
    values.update(flag_overrides(args))
    config = _config(values, f"{env_id} hyperparameters (preset {preset.name} and flags)"
                     if preset else f"{env_id} hyperparameters")
    total = getattr(args, "total_timesteps", None) or \
        (preset.n_timesteps if preset else DEFAULT_TIMESTEPS)
    if total < 1:
        raise CLIError(f"--total-timesteps {total}: must be positive")
    env_kwargs = {**(preset.env_kwargs if preset else {}), **env_kwarg_overrides(args)}
    return RunSetup(env_id, preset, config, int(total), env_kwargs,
                    dict(preset.atari) if preset and preset.atari else None)


def env_kwarg_overrides(args) -> dict[str, Any]:
    """`--env-kwargs k=v ...`: keyword arguments for gymnasium.make (values read as YAML)."""
    out: dict[str, Any] = {}
    for pair in getattr(args, "env_kwargs", None) or ():
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise CLIError(f"--env-kwargs {pair!r}: expected KEY=VALUE, e.g. "
                           "max_episode_steps=200")
        out[key.strip()] = _parse_value(raw)
    return out


# ============================================================================== logging
class TrainingLog:
    """The training callback: a tqdm bar on a terminal (steps/s, mean return of the last 20
    episodes, epsilon), a line and a progress row every `log_every` steps, a checkpoint every
    `checkpoint_every` steps, and a clean stop after Ctrl-C (see `interrupted`)."""

    def __init__(self, agent: DQN, total: int, log_every: int, checkpoint_every: int,
                 save: Callable[[bool], None], rows: list[dict] | None = None,
                 seconds_before: float = 0.0, bar: bool | None = None) -> None:
        self.agent, self.total = agent, total
        self.log_every, self.checkpoint_every = max(1, log_every), checkpoint_every
        self.save = save
        self.rows = list(rows or [])
        self.seconds_before = seconds_before
        self.t0 = time.perf_counter()
        self.steps0 = agent.num_timesteps
        last = self.rows[-1]["timesteps"] if self.rows else 0
        self.next_log = (int(last) // self.log_every + 1) * self.log_every
        self.next_ckpt = ((agent.num_timesteps // checkpoint_every + 1) * checkpoint_every
                          if checkpoint_every > 0 else math.inf)
        self.interrupted = False
        self.epsilon, self.loss = float("nan"), None
        use_bar = sys.stderr.isatty() if bar is None else bar
        self.bar = None
        if use_bar:
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=agent.num_timesteps, unit="step",
                            dynamic_ncols=True, leave=False, file=sys.stderr)
        self._bar_at = agent.num_timesteps

    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.t0

    def mean_return(self) -> float:
        recent = self.agent.episode_returns[-ROLLING:]
        return float(np.mean(recent)) if recent else float("nan")

    def __call__(self, info: dict) -> bool:
        steps = info["timesteps"]
        self.epsilon, self.loss = info["epsilon"], info["loss"]
        if self.bar is not None and steps - self._bar_at >= 256:
            rate = (steps - self.steps0) / max(time.perf_counter() - self.t0, 1e-9)
            self.bar.set_postfix({"return": f"{self.mean_return():.1f}",
                                  "eps": f"{self.epsilon:.3f}", "steps/s": f"{rate:,.0f}"},
                                 refresh=False)
            self.bar.update(steps - self._bar_at)
            self._bar_at = steps
        if steps >= self.next_log or steps >= self.total:
            self.log_row(steps)
            self.next_log = (steps // self.log_every + 1) * self.log_every
        if steps >= self.next_ckpt:
            self.save(False)
            self.next_ckpt = (steps // self.checkpoint_every + 1) * self.checkpoint_every
        return not self.interrupted

    def log_row(self, steps: int) -> None:
        if self.rows and self.rows[-1]["timesteps"] == steps:
            return
        rate = (steps - self.steps0) / max(time.perf_counter() - self.t0, 1e-9)
        row = {"timesteps": int(steps), "episodes": len(self.agent.episode_returns),
               "mean_return": self.mean_return(), "epsilon": float(self.epsilon),
               "loss": float("nan") if self.loss is None else float(self.loss),
               "steps_per_s": rate, "seconds": self.seconds()}
        self.rows.append(row)
        line = (f"step {steps:>{len(str(self.total))}}/{self.total}  episodes {row['episodes']}"
                f"  return(last {ROLLING}) {row['mean_return']:.2f}  eps {row['epsilon']:.3f}"
                f"  loss {row['loss']:.4g}  {rate:,.0f} steps/s")
        if self.bar is not None:
            self.bar.write(line, file=sys.stdout)
        else:
            print(line, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class _StopOnInterrupt:
    """Ctrl-C asks the run to stop at the end of the current step (so the checkpoint it
    writes resumes exactly); a second Ctrl-C interrupts at once."""

    def __init__(self, log: TrainingLog) -> None:
        self.log, self.previous = log, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.log.interrupted:
            raise KeyboardInterrupt
        self.log.interrupted = True
        print("\ninterrupted: stopping after this step and writing the checkpoint "
              "(Ctrl-C again to quit at once)", file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


# ============================================================================== checkpoints
def _checkpoint_state(agent: DQN, setup: RunSetup, log: TrainingLog,
                      include_buffer: bool) -> dict:
    state = agent.state_dict(include_buffer)
    state["meta"].update({"app": "rl", "preset": setup.preset.name if setup.preset else None,
                          "atari_wrappers": setup.atari,
                          "total_timesteps": setup.total_timesteps})
    state["progress"] = {"rows": [{k: (None if isinstance(v, float) and not math.isfinite(v)
                                       else v) for k, v in r.items()} for r in log.rows],
                         "seconds": log.seconds()}
    return state


def _load_resume(path: str, args) -> tuple[dict, RunSetup]:
    """The checkpoint to resume and the run it continues (its environment, hyperparameters
    and schedule length; --total-timesteps may extend it)."""
    state = load_checkpoint(path, require=("model", "meta", "counters"))
    meta = state["meta"]
    if meta.get("algorithm") != "dqn" or "env_id" not in meta:
        raise CLIError(f"--resume {path}: not a lantern rl training checkpoint")
    env_id = meta["env_id"]
    if getattr(args, "env", None) and args.env != env_id:
        raise CLIError(f"--resume {path}: the checkpoint is a run on {env_id}, not --env "
                       f"{args.env} (resuming continues the same environment)")
    config = DQNConfig.from_dict(meta["config"])
    overrides = flag_overrides(args)
    wanted = _config({**meta["config"], **overrides}, f"--resume {path}")
    changed = {k: v for k, v in overrides.items() if getattr(wanted, k) != getattr(config, k)}
    if getattr(args, "preset", None) and args.preset != meta.get("preset"):
        changed["preset"] = args.preset
    saved_kwargs = meta.get("env_kwargs") or {}
    if any(v != saved_kwargs.get(k) for k, v in env_kwarg_overrides(args).items()):
        changed["--env-kwargs"] = True
    if changed:
        raise CLIError(f"--resume {path}: it continues with the checkpoint's hyperparameters; "
                       f"drop {', '.join(sorted(changed))}")
    try:   # only its name is used: a preset file that has gone away is no obstacle
        preset = load_preset(meta["preset"]) if meta.get("preset") else None
    except ValueError:
        preset = None
    total = getattr(args, "total_timesteps", None) or int(meta.get("total_timesteps", 0))
    if total <= int(state["counters"]["num_timesteps"]):
        raise CLIError(f"--resume {path}: the run is already at step "
                       f"{int(state['counters']['num_timesteps'])}; give a larger "
                       f"--total-timesteps to continue it")
    return state, RunSetup(env_id, preset, config, int(total), dict(meta.get("env_kwargs") or {}),
                           meta.get("atari_wrappers"))


def _resume_path(path: str) -> str:
    p = Path(path)
    return str(p / LAST) if p.is_dir() else str(p)


# ============================================================================== train
def _timing_block(agent: DQN, learn_seconds: float) -> dict:
    t = dict(agent.timings)
    total = max(learn_seconds, 1e-9)
    block = {f"{k}_s": round(v, 3) for k, v in t.items()}
    block.update({f"{k}_share": round(v / total, 4) for k, v in t.items()})
    block["learn_s"] = round(learn_seconds, 3)
    return block


def run_training(setup: RunSetup, seed: int, out: Path, *, device: str = "cpu",
                 log_every: int | None = None, checkpoint_every: int = 10_000,
                 keep_checkpoints: bool = False, save_buffer: bool = False,
                 eval_episodes: int = 20, eval_seed: int | None = None,
                 resume_state: dict | None = None, plots: bool = True,
                 bar: bool | None = None) -> tuple[dict, DQN]:
    """Train one seed into `out` (checkpoints, progress.csv, curves.png, config.json,
    metrics.json) and evaluate it; returns (metrics, agent). The agent's environments are
    closed."""
    t_start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    if resume_state is not None:
        seed = int(resume_state["meta"].get("seed", seed))
    agent = DQN(setup.env_id, setup.config, seed, device, setup.env_kwargs, setup.wrappers())
    try:
        rows, seconds_before = [], 0.0
        if resume_state is not None:
            agent.load_state_dict(resume_state)
            progress = resume_state.get("progress") or {}
            rows = [{k: (float("nan") if v is None else v) for k, v in r.items()}
                    for r in progress.get("rows", [])]
            seconds_before = float(progress.get("seconds", 0.0))
        total = setup.total_timesteps
        every = log_every or max(1000, total // 50)
        write_json(out / "config.json", {**setup.describe(), "seed": seed, "device": device,
                                         "save_buffer": save_buffer})

        def save(final: bool) -> None:
            state = _checkpoint_state(agent, setup, log, save_buffer)
            save_checkpoint(out / LAST, state)
            if keep_checkpoints and not final:
                save_checkpoint(out / f"step_{agent.num_timesteps}.safetensors", state)
            write_csv(out / "progress.csv", log.rows)

        log = TrainingLog(agent, total, every, checkpoint_every, save, rows, seconds_before,
                          bar=bar)
        preset = setup.preset.name if setup.preset else "none (SB3 defaults)"
        net = type(agent.q_net).__name__
        print(f"{setup.env_id} | preset {preset} | {net} "
              f"{sum(p.numel() for p in agent.q_net.parameters()):,} parameters | seed {seed} "
              f"| {total:,} steps" + (f" (resuming at {agent.num_timesteps:,})"
                                      if resume_state is not None else "") + f" | {device}",
              flush=True)
        t_learn = time.perf_counter()
        try:
            with _StopOnInterrupt(log):
                agent.learn(total, callback=log)
        finally:
            log.close()
        learn_seconds = time.perf_counter() - t_learn
        log.log_row(agent.num_timesteps)
        save(True)
        if plots:
            learning_curve(agent.episode_end_steps, agent.episode_returns, log.rows,
                           out / "curves.png", f"DQN on {setup.env_id} (seed {seed})")
        if log.interrupted:
            print(f"stopped at step {agent.num_timesteps:,}; continue with --resume {out}",
                  file=sys.stderr)
            raise KeyboardInterrupt
        eval_seed = seed + EVAL_SEED_OFFSET if eval_seed is None else eval_seed
        mean, std, returns = agent.evaluate(eval_episodes, seed=eval_seed)
        steps_done = agent.num_timesteps - (int(resume_state["counters"]["num_timesteps"])
                                            if resume_state is not None else 0)
        metrics = {
            "eval": {"mean_return": mean, "std_return": std, "episodes": eval_episodes,
                     "seed": eval_seed, "returns": returns},
            "env": setup.env_id, "preset": setup.preset.name if setup.preset else None,
            "seed": seed, "timesteps": agent.num_timesteps,
            "episodes": len(agent.episode_returns), "updates": agent.num_updates,
            "seconds": round(seconds_before + time.perf_counter() - t_start, 2),
            "train_seconds": round(learn_seconds, 2),
            "steps_per_second": round(steps_done / max(learn_seconds, 1e-9), 1),
            "timings": _timing_block(agent, learn_seconds),
            "train": {"mean_return_last20": log.mean_return()},
            "checkpoint": str(out / LAST), "config": setup.config.to_dict()}
        write_json(out / "metrics.json", metrics)
        print(f"eval: mean return {mean:.2f} +/- {std:.2f} over {eval_episodes} episodes "
              f"(seed {eval_seed}) after {agent.num_timesteps:,} steps, {metrics['seconds']:.1f} s"
              f" (updates {metrics['timings']['update_share']:.0%}, environment "
              f"{metrics['timings']['env_share']:.0%}) -> {out / 'metrics.json'}", flush=True)
        return metrics, agent
    finally:
        agent.close()


def train(args) -> int:
    device = check_device(args.device)
    if args.resume:
        path = _resume_path(args.resume)
        state, setup = _load_resume(path, args)
    else:
        state, setup = None, resolve_setup(args)
    run_training(setup, args.seed, Path(args.out), device=device, log_every=args.log_every,
                 checkpoint_every=args.checkpoint_every, keep_checkpoints=args.keep_checkpoints,
                 save_buffer=args.save_buffer or (state is not None and "buffer" in state),
                 eval_episodes=args.eval_episodes, eval_seed=args.eval_seed,
                 resume_state=state, plots=not args.no_plots)
    return 0


# ============================================================================== policies
@dataclass
class Policy:
    """A trained Q-network with what it needs to act: its environment and preprocessing."""

    net: Any
    env_id: str
    env_kwargs: dict
    atari: dict | None
    obs_shape: tuple[int, ...]
    n_actions: int
    meta: dict
    source: str

    def wrappers(self, train: bool = False) -> list[Callable] | None:
        return atari_wrappers(self.atari, train=train) if self.atari else None

    def make_env(self, env_id: str | None = None, render_mode: str | None = None):
        """The evaluation environment (another id must have the same spaces)."""
        env_id = env_id or self.env_id
        env = make_env(env_id, self.env_kwargs, self.wrappers(), render_mode)
        shape = tuple(env.observation_space.shape)
        n = int(env.action_space.n)
        if shape != self.obs_shape or n != self.n_actions:
            env.close()
            raise CLIError(f"{self.source}: a policy for {self.env_id} (observations "
                           f"{self.obs_shape}, {self.n_actions} actions), not {env_id} "
                           f"(observations {shape}, {n} actions)")
        return env


def _net_spec(meta: dict) -> tuple[str, dict]:
    """The registered builder and its arguments for a DQN checkpoint's network."""
    cfg = meta["config"]
    obs_shape = [int(s) for s in meta["obs_shape"]]
    head = {"n_actions": int(meta["n_actions"]), "dueling": bool(cfg.get("dueling")),
            "noisy": bool(cfg.get("noisy")), "atoms": int(cfg.get("atoms", 1)),
            "v_min": float(cfg.get("v_min", -10.0)), "v_max": float(cfg.get("v_max", 10.0))}
    if len(obs_shape) == 3:
        return "dqn_nature_cnn", {"in_channels": obs_shape[0], **head}
    return "dqn_mlp", {"obs_dim": obs_shape[0], "hidden": list(cfg.get("net_arch", [64, 64])),
                       **head}


def load_policy(spec: str, device: str = "cpu") -> Policy:
    """A policy from `zoo:<model>.<tag>`, an export, a training checkpoint or a run folder."""
    if spec.startswith("zoo:"):
        w = zoo_weights(spec)
        if models.get_entry(w.model).domain != "rl":
            raise CLIError(f"--model {spec}: a {models.get_entry(w.model).domain} model, not "
                           "an rl agent (see `lantern rl models`)")
        net = models.get_model(w.model, weights=w)
        t = dict(w.transforms)
        meta = {"model": w.model, "model_kwargs": dict(w.builder_kwargs), **t,
                "train_seed": w.metrics.get("train_seed"),
                "eval_seed": w.metrics.get("eval_seed")}
        source = f"zoo:{w.name}"
    else:
        path = Path(spec)
        if not path.exists():
            raise CLIError(f"{spec}: no such file or run folder")
        meta, state = read_model_file(path, "rl")
        meta = dict(meta)
        if "model" not in meta:   # a training checkpoint: its metadata is the agent's
            if meta.get("algorithm") != "dqn" or "config" not in meta:
                raise CLIError(f"{spec}: not a lantern rl checkpoint or export")
            meta["model"], meta["model_kwargs"] = _net_spec(meta)
            meta["train_seed"] = meta.get("seed")
        net = models.get_model(meta["model"], **meta["model_kwargs"])
        try:
            models.load_pretrained(net, state, strict=True)
        except ValueError as exc:
            raise CLIError(f"{spec}: its weights do not fit its own description ({exc})") \
                from None
        source = str(spec)
    kw = meta["model_kwargs"]
    obs_shape = (kw["in_channels"], 84, 84) if meta["model"] == "dqn_nature_cnn" else \
        (int(kw["obs_dim"]),)
    return Policy(net.to(device).eval(), meta["env_id"], dict(meta.get("env_kwargs") or {}),
                  meta.get("atari_wrappers"), tuple(obs_shape), int(kw["n_actions"]), meta,
                  source)


def _eval_seed(args, policy: Policy) -> int:
    if args.seed is not None:
        return args.seed
    if policy.meta.get("eval_seed") is not None:
        return int(policy.meta["eval_seed"])
    return int(policy.meta.get("train_seed") or 0) + EVAL_SEED_OFFSET


# ============================================================================== evaluate
def evaluate(args) -> int:
    device = check_device(args.device)
    if args.episodes < 1:
        raise CLIError(f"--episodes {args.episodes}: must be at least 1")
    policy = load_policy(args.model, device)
    env = policy.make_env(args.env)
    seed = _eval_seed(args, policy)
    t0 = time.perf_counter()
    try:
        mean, std, returns = evaluate_greedy(policy.net, env, args.episodes, seed)
    finally:
        env.close()
    env_id = args.env or policy.env_id
    out = Path(args.out)
    write_json(out / "metrics.json", {
        "eval": {"mean_return": mean, "std_return": std, "episodes": args.episodes,
                 "seed": seed, "returns": returns},
        "env": env_id, "model": policy.source, "seconds": round(time.perf_counter() - t0, 2)})
    print(f"{policy.source} on {env_id}: mean return {mean:.2f} +/- {std:.2f} over "
          f"{args.episodes} episodes (deterministic, seed {seed}; min {min(returns):.1f}, "
          f"max {max(returns):.1f}) -> {out / 'metrics.json'}")
    return 0


# ============================================================================== enjoy
def _frames_writer(path: Path, fps: float):
    """(append(frame), close()) for a .gif (Pillow) or .mp4 (imageio-ffmpeg)."""
    suffix = path.suffix.lower()
    if suffix == ".mp4":
        try:
            import imageio.v2 as imageio
            import imageio_ffmpeg  # noqa: F401 - only to fail early with the right advice
        except ImportError:
            raise CLIError(f"{path}: writing MP4 needs imageio-ffmpeg (pip install "
                           "imageio-ffmpeg); or write a .gif") from None
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = imageio.get_writer(str(path), fps=fps, macro_block_size=1)
        return writer.append_data, writer.close
    if suffix != ".gif":
        raise CLIError(f"{path}: the output is a .gif (or a .mp4 with imageio-ffmpeg)")
    from PIL import Image
    frames: list = []

    def close() -> None:
        if not frames:
            raise CLIError(f"{path}: no frames were rendered")
        first, rest = frames[0], frames[1:]
        atomic_write(path, lambda tmp: first.save(
            tmp, format="GIF", save_all=True, append_images=rest, loop=0,
            duration=max(20, int(round(1000 / fps))), optimize=False))

    return (lambda f: frames.append(Image.fromarray(f).convert(
        "P", palette=Image.Palette.ADAPTIVE, colors=64))), close


def _render(env, env_id: str):
    import gymnasium as gym
    try:
        return env.render()
    except gym.error.DependencyNotInstalled:
        raise CLIError(f"rendering {env_id} needs pygame: pip install pygame (or pip install "
                       "\"gymnasium[classic-control]\")") from None


def enjoy(args) -> int:
    device = check_device(args.device)
    # rgb_array rendering draws off screen: no display (and no SDL complaint about one)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    policy = load_policy(args.model, device)
    env_id = args.env or policy.env_id
    env = policy.make_env(args.env, render_mode="rgb_array")
    out = Path(args.out)
    fps = args.fps or float(env.metadata.get("render_fps") or 30)
    append, close = _frames_writer(out, fps)
    seed = _eval_seed(args, policy)
    start = int(env.action_space.start)
    dtype = np.uint8 if len(policy.obs_shape) == 3 else np.float32
    returns, n_frames = [], 0

    def add_frame() -> None:
        nonlocal n_frames
        frame = _render(env, env_id)
        if frame is None:
            raise CLIError(f"{env_id}: rendered no rgb_array frame")
        frame = np.asarray(frame, np.uint8)
        if args.scale != 1.0:
            from PIL import Image
            h, w = frame.shape[:2]
            size = (max(1, int(w * args.scale)), max(1, int(h * args.scale)))
            frame = np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.BILINEAR))
        append(frame)
        n_frames += 1

    try:
        obs, _ = env.reset(seed=seed)
        for episode in range(args.episodes):
            if episode:
                obs, _ = env.reset()
            add_frame()
            total, done, steps = 0.0, False, 0
            while not done and (args.max_steps is None or steps < args.max_steps):
                with fw.no_grad():
                    x = fw.from_numpy(np.asarray(obs, dtype)[None])
                    q = policy.net.q_values(x if device == "cpu" else x.to(device))
                obs, r, term, trunc, _ = env.step(int(q.argmax(1).cpu().numpy()[0]) + start)
                total += float(r)
                done = term or trunc
                steps += 1
                add_frame()
            returns.append(total)
    finally:
        env.close()
    close()
    print(f"{policy.source} on {env_id}: {args.episodes} episode(s), returns "
          f"{', '.join(f'{r:.1f}' for r in returns)}; {n_frames} frames at {fps:g} fps -> "
          f"{out}")
    return 0


# ============================================================================== benchmark
def _running_mean(values, window: int = ROLLING) -> np.ndarray:
    v = np.asarray(values, np.float64)
    if v.size == 0:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    idx = np.arange(1, v.size + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


def curve_on_grid(end_steps, returns, grid) -> np.ndarray:
    """The running mean return (last 20 episodes) at each timestep of `grid`: the value of
    the last episode that ended at or before it (NaN before the first)."""
    end_steps = np.asarray(end_steps, np.float64)
    if end_steps.size == 0:
        return np.full(len(grid), np.nan)
    rm = _running_mean(returns)
    idx = np.searchsorted(end_steps, grid, side="right") - 1
    out = rm[np.clip(idx, 0, None)]
    out[idx < 0] = np.nan
    return out


def _pyplot():
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    return plt


def _save_png(fig, path) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    _pyplot().close(fig)


def learning_curve(end_steps, returns, rows, path, title: str) -> None:
    """Episode returns against timesteps (each episode faint, the mean of the last 20 bold)
    and, from the progress rows, the loss and epsilon."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [2, 1]})
    ax = axes[0]
    if len(returns):
        ax.plot(end_steps, returns, ".", color="tab:blue", alpha=0.25, markersize=3,
                label="episode")
        ax.plot(end_steps, _running_mean(returns), color="tab:blue",
                label=f"mean of last {ROLLING}")
        ax.legend(loc="lower right")
    ax.set_xlabel("timesteps")
    ax.set_ylabel("return")
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax2 = axes[1]
    steps = [r["timesteps"] for r in rows]
    losses = [r["loss"] for r in rows]
    if any(np.isfinite(losses)):
        ax2.plot(steps, losses, color="tab:red", label="loss")
        ax2.set_yscale("log")
    ax2.set_xlabel("timesteps")
    ax2.set_ylabel("TD loss")
    ax2.grid(alpha=0.3)
    ax3 = ax2.twinx()
    ax3.plot(steps, [r["epsilon"] for r in rows], color="tab:gray", linestyle="--")
    ax3.set_ylabel("epsilon", color="tab:gray")
    ax3.set_ylim(0, 1.05)
    _save_png(fig, path)


def band_curve(runs: list[tuple[int, list, list]], total: int, path, title: str) -> dict:
    """Mean +/- std across seeds of the running mean return, on a common timestep grid;
    `runs` holds (seed, episode_end_steps, episode_returns). Returns the grid and curves."""
    plt = _pyplot()
    grid = np.linspace(0, total, 201)
    curves = np.stack([curve_on_grid(s, r, grid) for _, s, r in runs])
    with np.errstate(all="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(curves, 0)
            std = np.nanstd(curves, 0)
    fig, ax = plt.subplots(figsize=(7, 4))
    for (seed, _, _), c in zip(runs, curves):
        ax.plot(grid, c, linewidth=0.8, alpha=0.5, label=f"seed {seed}")
    ax.plot(grid, mean, color="black", linewidth=2, label=f"mean of {len(runs)} seeds")
    ax.fill_between(grid, mean - std, mean + std, color="gray", alpha=0.3, label="+/- std")
    ax.set_xlabel("timesteps")
    ax.set_ylabel(f"mean return (last {ROLLING} episodes)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    _save_png(fig, path)
    return {"grid": grid, "mean": mean, "std": std}


def benchmark(args) -> int:
    device = check_device(args.device)
    setup = resolve_setup(args)
    seeds = list(dict.fromkeys(args.seeds))
    out = Path(args.out)
    per_seed, runs = [], []
    for seed in seeds:
        m, agent = run_training(setup, seed, out / f"seed_{seed}", device=device,
                                log_every=args.log_every, checkpoint_every=0,
                                eval_episodes=args.eval_episodes, plots=not args.no_plots)
        runs.append((seed, agent.episode_end_steps, agent.episode_returns))
        per_seed.append({"seed": seed, "eval": m["eval"], "timesteps": m["timesteps"],
                         "seconds": m["seconds"], "train_seconds": m["train_seconds"],
                         "update_share": m["timings"]["update_share"],
                         "env_share": m["timings"]["env_share"],
                         "episodes": m["episodes"]})
    means = [r["eval"]["mean_return"] for r in per_seed]
    header = f"{'seed':>6}  {'eval return':>18}  {'steps':>9}  {'seconds':>8}  {'update share':>12}"
    lines = [header]
    for r in per_seed:
        lines.append(f"{r['seed']:>6}  {r['eval']['mean_return']:>9.2f} +/- "
                     f"{r['eval']['std_return']:<6.2f}  {r['timesteps']:>9,}  "
                     f"{r['seconds']:>8.1f}  {r['update_share']:>12.0%}")
    lines.append(f"{'all':>6}  {np.mean(means):>9.2f} +/- {np.std(means):<6.2f}  "
                 f"{'':>9}  {np.mean([r['seconds'] for r in per_seed]):>8.1f}  "
                 f"{np.mean([r['update_share'] for r in per_seed]):>12.0%}")
    table = "\n".join(lines)
    print(f"\n{setup.env_id}, preset {setup.preset.name if setup.preset else 'none'}, "
          f"{setup.total_timesteps:,} steps, {len(seeds)} seed(s); eval over "
          f"{args.eval_episodes} episodes (seed + {EVAL_SEED_OFFSET}):\n{table}")
    if not args.no_plots:
        band_curve(runs, setup.total_timesteps, out / "curves.png",
                   f"DQN on {setup.env_id}: {len(seeds)} seeds")
    write_json(out / "metrics.json", {
        "env": setup.env_id, "preset": setup.preset.name if setup.preset else None,
        "total_timesteps": setup.total_timesteps, "seeds": per_seed,
        "eval": {"mean_return": float(np.mean(means)), "std_return": float(np.std(means)),
                 "episodes": args.eval_episodes, "over": "the seeds' mean returns"},
        "seconds": round(sum(r["seconds"] for r in per_seed), 2),
        "config": setup.config.to_dict()})
    (out / "table.txt").write_text(table + "\n")
    print(f"-> {out / 'metrics.json'}, {out / 'curves.png'}")
    return 0


# ============================================================================== export, zoo
def export(args) -> int:
    policy = load_policy(args.model, "cpu")
    meta = {"model": policy.meta["model"], "model_kwargs": policy.meta["model_kwargs"],
            "env_id": policy.env_id, "env_kwargs": policy.env_kwargs,
            "atari_wrappers": policy.atari, "config": policy.meta.get("config"),
            "train_seed": policy.meta.get("train_seed"), "exported_from": policy.source}
    meta = export_model(policy.net, meta, args.out, "rl")
    print(f"{args.out} ({meta['num_params']:,} parameters, sha256 {meta['sha256'][:16]}...) "
          f"and {Path(args.out).with_suffix('.json')}")
    return 0


def describe_models(args) -> int:
    return zoo.describe_models("rl", args.name)


def zoo_build(args) -> int:
    """Run the `lantern rl train ...` command recorded in a zoo entry, export the agent to
    $LANTERN_HOME/zoo/<name>.safetensors and compare its evaluation with the record's."""
    import datasets
    from .cli import add_parser
    w = models.get_weights(args.name)
    argv = shlex.split(w.recipe)
    if argv[:3] != ["lantern", "rl", "train"]:
        raise CLIError(f"{w.name}: its recipe is not a `lantern rl train` command: {w.recipe}")
    parser = argparse.ArgumentParser(prog="lantern")
    add_parser(parser.add_subparsers(dest="group"), "rl")
    targs = parser.parse_args(argv[1:])
    targs.out = args.out or f"runs/zoo/{w.name}"
    rc = train(targs)
    if rc:
        return rc
    dest = datasets.lantern_home() / "zoo" / f"{w.name}.safetensors"
    export(argparse.Namespace(model=str(Path(targs.out) / LAST), out=str(dest)))
    ev = json.loads((Path(targs.out) / "metrics.json").read_text())["eval"]
    print(f"{w.name}: mean return {ev['mean_return']:.2f} +/- {ev['std_return']:.2f} "
          f"(recorded {w.metrics.get('mean_return')} +/- {w.metrics.get('std_return')}); "
          f"weights {dest}")
    return 0
