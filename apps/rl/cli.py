"""`lantern rl ...`: the command line of the reinforcement-learning application (DQN and its
Rainbow parts on gymnasium environments with discrete actions).

Each subcommand is a thin wrapper over a plain function of `apps.rl.recipe`, so what the CLI
does can be called from Python with the same arguments.
"""
from __future__ import annotations

import argparse

from apps.common.cli import HelpFormatter, add_zoo_commands, lazy_command

__all__ = ["add_parser", "main"]

EXAMPLES = """examples:
  lantern rl train --env CartPole-v1 --seed 0 --out runs/cartpole
  lantern rl train --env Acrobot-v1 --preset acrobot --double --dueling --out runs/acrobot
  lantern rl train --env CartPole-v1 --set learning_rate=5e-4 net_arch=[64,64] --n-step 3
  lantern rl train --env LunarLander-v3 --per --save-buffer --checkpoint-every 20000
  lantern rl train --resume runs/cartpole --total-timesteps 80000
  lantern rl eval --model zoo:dqn_mlp.cartpole-v1 --episodes 20
  lantern rl eval --model runs/cartpole/last.safetensors --episodes 100 --seed 5
  lantern rl enjoy --model zoo:dqn_mlp.acrobot-v1 --out acrobot.gif
  lantern rl benchmark --env CartPole-v1 --seeds 0 1 2 --out runs/bench-cartpole
  lantern rl export --model runs/cartpole --out cartpole.safetensors
  lantern rl models
  lantern rl zoo-build dqn_mlp.cartpole-v1

presets (apps/rl/presets/*.yaml, rl-zoo layout): cartpole, acrobot, mountaincar, lunarlander,
atari (any ALE/<Game>-v5; GPU-scale). With --env alone the preset written for that
environment is used; without one, Stable-Baselines3's DQN defaults.
"""

MODEL_HELP = ("zoo:<model>.<tag> (see `lantern rl models`), an export (.safetensors), a "
              "training checkpoint or a run folder")


def _add_common(p, *, out: str | None = None, seed_help: str | None = None,
                seed_default: int | None = 0) -> None:
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--seed", type=int, default=seed_default,
                   help=seed_help or "seed for every RNG (default: 0)")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    if out is not None:
        p.add_argument("--out", default=out, help=f"output folder (default: {out})")


def _add_setup(p) -> None:
    """The environment, the preset, the Rainbow flags and hyperparameter overrides."""
    p.add_argument("--env", help="a gymnasium id with discrete actions (CartPole-v1, "
                                 "ALE/Pong-v5, ...); default: the preset's")
    p.add_argument("--preset", help="cartpole, acrobot, mountaincar, lunarlander, atari, or a "
                                    ".yaml file (default: the one written for --env)")
    g = p.add_argument_group("Rainbow parts")
    g.add_argument("--double", action="store_true", help="Double DQN targets")
    g.add_argument("--dueling", action="store_true", help="dueling value/advantage heads")
    g.add_argument("--per", action="store_true",
                   help="prioritized replay (alpha 0.6, beta 0.4 -> 1)")
    g.add_argument("--n-step", type=int, metavar="N", help="N-step returns")
    g.add_argument("--noisy", action="store_true",
                   help="noisy linear layers in the head (exploration without epsilon)")
    g.add_argument("--c51", action="store_true",
                   help="C51 distributional head, 51 atoms on [v_min, v_max] (set them with "
                        "--set v_min=... v_max=...)")
    p.add_argument("--set", nargs="+", action="extend", metavar="KEY=VALUE", default=[],
                   help="override hyperparameters with DQNConfig's (SB3's) names, e.g. "
                        "--set learning_rate=5e-4 batch_size=128 net_arch=[64,64]")
    p.add_argument("--env-kwargs", nargs="+", action="extend", metavar="KEY=VALUE", default=[],
                   help="keyword arguments for gymnasium.make, e.g. max_episode_steps=200")
    p.add_argument("--total-timesteps", type=int,
                   help="environment steps (default: the preset's n_timesteps, else 100000)")
    p.add_argument("--eval-episodes", type=int, default=20,
                   help="deterministic evaluation episodes at the end")
    p.add_argument("--log-every", type=int,
                   help="a progress line and CSV row every N steps (default: 1/50 of the run, "
                        "at least 1000)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def add_parser(sub, name: str = "rl", help_: str = "") -> argparse.ArgumentParser:
    rp = sub.add_parser(name, help=help_, description=__doc__, epilog=EXAMPLES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    cmds = rp.add_subparsers(dest="command", metavar="COMMAND")
    fmt = HelpFormatter

    t = cmds.add_parser("train", help="train a DQN agent", formatter_class=fmt)
    _add_setup(t)
    t.add_argument("--resume", metavar="CKPT",
                   help="continue a run from its checkpoint (a file, or a run folder's "
                        "last.safetensors) with its environment, hyperparameters and seed")
    t.add_argument("--checkpoint-every", type=int, default=10_000, metavar="STEPS",
                   help="write last.safetensors every STEPS steps (0: only at the end)")
    t.add_argument("--keep-checkpoints", action="store_true",
                   help="also keep step_<N>.safetensors at every periodic checkpoint")
    t.add_argument("--save-buffer", action="store_true",
                   help="checkpoints hold the replay buffer, so --resume continues exactly")
    t.add_argument("--eval-seed", type=int,
                   help="seed of the final evaluation's environment (default: --seed + 1000)")
    _add_common(t, out="runs/rl")
    t.set_defaults(func=_run("train"))

    e = cmds.add_parser("eval", help="mean and std of deterministic returns",
                        formatter_class=fmt)
    e.add_argument("--model", required=True, help=MODEL_HELP)
    e.add_argument("--episodes", type=int, default=20)
    e.add_argument("--env", help="evaluate on another id with the same spaces (default: the "
                                 "model's environment)")
    _add_common(e, out="runs/rl-eval", seed_default=None,
                seed_help="seed of the evaluation environment (default: the one the model's "
                          "training run evaluated with: its seed + 1000)")
    e.set_defaults(func=_run("evaluate"))

    j = cmds.add_parser("enjoy", help="render episodes to a GIF (or MP4)", formatter_class=fmt)
    j.add_argument("--model", required=True, help=MODEL_HELP)
    j.add_argument("--out", required=True, help="a .gif (Pillow) or .mp4 (imageio-ffmpeg)")
    j.add_argument("--episodes", type=int, default=1)
    j.add_argument("--max-steps", type=int, help="stop each episode after this many steps")
    j.add_argument("--fps", type=float, help="frames per second (default: the environment's)")
    j.add_argument("--scale", type=float, default=0.5, help="resize the frames by this factor")
    j.add_argument("--env", help="render another id with the same spaces")
    _add_common(j, seed_default=None,
                seed_help="seed of the environment (default: the model's evaluation seed)")
    j.set_defaults(func=_run("enjoy"))

    b = cmds.add_parser("benchmark", help="train several seeds: a table and a learning-curve "
                                          "band", formatter_class=fmt)
    _add_setup(b)
    b.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    b.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    b.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    b.add_argument("--out", default="runs/rl-benchmark", help="output folder")
    b.set_defaults(func=_run("benchmark"))

    x = cmds.add_parser("export", help="the Q-network as safetensors + JSON metadata",
                        formatter_class=fmt)
    x.add_argument("--model", required=True, help=MODEL_HELP)
    x.add_argument("--out", required=True, help="the .safetensors file to write")
    x.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    x.set_defaults(func=_run("export"))

    add_zoo_commands(cmds, "rl", "dqn_mlp.cartpole-v1", _run)

    rp.set_defaults(func=None, _parser=rp)
    return rp


def _run(name: str):
    return lazy_command(f"{__package__}.recipe", name)


def main(argv=None) -> int:
    """`python -m apps.rl ...` (the same as `lantern rl ...`)."""
    import sys
    from apps.cli import main as lantern_main
    return lantern_main(["rl", *(sys.argv[1:] if argv is None else argv)])
