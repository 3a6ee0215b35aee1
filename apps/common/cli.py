"""What every application's command line shares: the common flags, device checks, the exit
codes (0 ok, 1 failure, 2 usage; 130 interrupted) and one-line errors (a traceback only with
`--debug`)."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from typing import Callable

__all__ = ["CLIError", "HelpFormatter", "lazy_command", "add_run_args", "add_zoo_commands", "add_train_args", "check_device", "parse_model_args",
           "run_command", "setup_distributed",
           "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class CLIError(Exception):
    """A user-facing failure: printed as one line, exit code 1."""



class HelpFormatter(argparse.HelpFormatter):
    """Adds "(default: X)" to a flag's help unless the help already states its default or
    the flag has none (None, False, an empty list)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or not action.option_strings or \
                action.default in (None, False, [], argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


def lazy_command(module: str, name: str) -> Callable[[argparse.Namespace], int | None]:
    """A subcommand's `func`: `module.name(args)`, importing `module` (an application's
    recipe, with its heavy imports) only when the command runs, so `--help` stays fast."""
    def call(args):
        return getattr(importlib.import_module(module), name)(args)
    call.__name__ = name
    return call

def add_run_args(p: argparse.ArgumentParser, *, out: str | None = None) -> None:
    """Flags every command takes: --device, --seed, --workers, --debug (and --out)."""
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--seed", type=int, default=0, help="seed for every RNG (default: 0)")
    p.add_argument("--workers", type=int, default=0,
                   help="data-loading worker processes (default: 0, in the main process)")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    if out is not None:
        p.add_argument("--out", default=out, help=f"output folder (default: {out})")


def add_split_seed(p: argparse.ArgumentParser) -> None:
    """--split-seed: the seed of a data set's train/val/test split, apart from --seed (the
    training's random numbers), so that runs with other seeds share one test set."""
    p.add_argument("--split-seed", type=int, default=None, metavar="N",
                   help="seed of the train/val/test split of sources without fixed splits "
                        "(default: 0; eval: the one the checkpoint was trained on)")


def resolve_split_seed(args, meta: dict | None = None) -> int:
    """--split-seed if given; else the checkpoint's (`meta["args"]`: its split_seed, or its
    seed for checkpoints made before the flag, when --seed also drew the split); else 0.
    Stored back on args, so that a training checkpoint records it."""
    seed = getattr(args, "split_seed", None)
    if seed is None:
        recorded = (meta or {}).get("args") or {}
        seed = recorded.get("split_seed", recorded.get("seed", 0))
    args.split_seed = int(seed)
    return args.split_seed


def _steps(text: str) -> int:
    """A count of steps: a non-negative integer."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of steps, got {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more steps, got {n}")
    return n


def add_train_args(p: argparse.ArgumentParser, *, epochs: int | None, batch_size: int | None,
                   lr: float | None, distributed: bool = False) -> None:
    """The training flags every application shares (a None default: the model's preset);
    `distributed` adds --distributed (for a recipe that calls `setup_distributed`)."""
    def shown(v):
        return "the model's preset" if v is None else v
    p.add_argument("--epochs", type=int, default=epochs, help=f"default: {shown(epochs)}")
    p.add_argument("--batch-size", type=int, default=batch_size,
                   help=f"default: {shown(batch_size)}")
    p.add_argument("--lr", type=float, default=lr,
                   help=f"peak learning rate (default: {shown(lr)})")
    p.add_argument("--resume", metavar="CKPT",
                   help="continue from a checkpoint (a file, or a run folder's last one)")
    p.add_argument("--profile-steps", type=_steps, default=0, metavar="N",
                   help="profile N training steps (after 2 warm-up steps) with "
                        "framework.profiler: the ops by time to <out>/profile.txt and a "
                        "Chrome trace to <out>/trace.json (default: off)")
    p.add_argument("--ema", type=float, metavar="DECAY",
                   help="validate, save and keep an exponential moving average of the "
                        "weights, e.g. 0.999 (default: off)")
    if distributed:
        p.add_argument("--distributed", action="store_true",
                       help="data-parallel training over the processes of an MPI launch "
                            "(mpiexec -n N lantern ...); --batch-size is per process")


def add_zoo_commands(cmds, app: str, example: str, run: Callable[[str], Callable]) -> None:
    """The `models` and `zoo-build` subcommands every application has; `run(name)` gives the
    recipe function's lazy command (see `lazy_command`)."""
    m = cmds.add_parser("models", help=f"list the {app} models and their weights, or describe "
                                       "one", formatter_class=HelpFormatter)
    m.add_argument("name", nargs="?", help="describe one model in full")
    m.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    m.set_defaults(func=run("describe_models"))
    z = cmds.add_parser("zoo-build", help="train a zoo entry's weights again with its recorded "
                                          "command", formatter_class=HelpFormatter)
    z.add_argument("name", help=f"<model>.<tag>, e.g. {example}")
    z.add_argument("--out", help="the training run's folder (default: runs/zoo/<name>)")
    z.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    z.set_defaults(func=run("zoo_build"))


def parse_model_args(pairs, builder) -> dict:
    """`--model-arg KEY=VALUE` pairs as builder keyword arguments: each key must be one of
    the builder's parameters; values are read as JSON when they parse (numbers, lists,
    true/false), else kept as strings."""
    import inspect
    import json
    params = inspect.signature(builder).parameters
    out = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise CLIError(f"--model-arg {pair!r}: expected KEY=VALUE")
        if key not in params or params[key].kind not in (inspect.Parameter.KEYWORD_ONLY,
                                                           inspect.Parameter.POSITIONAL_OR_KEYWORD):
            names = [n for n, p in params.items() if p.kind == inspect.Parameter.KEYWORD_ONLY]
            raise CLIError(f"--model-arg {key}: not an argument of {builder.__name__}; it "
                           f"takes {', '.join(names)}")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


def check_device(device: str) -> str:
    import framework as fw
    try:
        dev = fw.device(device)
    except (RuntimeError, ValueError) as exc:
        raise CLIError(f"--device {device!r}: {exc}") from None
    if dev.type == "cuda" and not fw.cuda.is_available():
        raise CLIError(f"--device {device}: no usable CUDA GPU (needs an NVIDIA GPU and CuPy: "
                       "pip install 'lantern[cuda12]'); use --device cpu")
    return str(dev)


def setup_distributed(device: str) -> tuple[str, int, int]:
    """Join the MPI job's process group for --distributed: (this rank's device, rank, world
    size). NCCL carries CUDA tensors, MPI host ones. Ranks other than 0 print nothing on
    stdout: logging and progress come from rank 0."""
    import framework as fw
    import framework.distributed as dist
    if not dist.is_available():
        raise CLIError("--distributed needs mpi4py and an MPI library: "
                       "pip install 'lantern[distributed]'")
    dev = fw.device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    if dev.type == "cuda" and dev.index is None:
        device = f"cuda:{fw.cuda.current_device()}"   # the GPU the NCCL setup chose
    if rank != 0:
        sys.stdout = open(os.devnull, "w")
    elif world == 1:
        print("--distributed: 1 process (start several with mpiexec -n N lantern ...)")
    return device, rank, world


def _abort_peers(rc: int) -> None:
    """After a failure in a multi-process run, end the job: the other ranks may be waiting for
    this one in a collective."""
    dist = sys.modules.get("framework.distributed")
    if dist is not None and dist.is_initialized() and dist.get_world_size() > 1:
        dist.abort(rc)


def _one_line(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, KeyError) and msg.startswith(("'", '"')):
        msg = msg[1:-1]   # KeyError quotes its message
    from datasets import HashMismatchError, HubError
    expected = (CLIError, OSError, ValueError, KeyError, LookupError, FloatingPointError,
                HubError, HashMismatchError)
    # a KeyError from a lookup says what was unknown in a sentence; a bare key is a bug
    if isinstance(exc, expected) and msg and not (isinstance(exc, KeyError) and " " not in msg):
        return msg
    return f"{type(exc).__name__}: {msg} (run with --debug for the traceback)"


def run_command(fn: Callable[[argparse.Namespace], int | None], args: argparse.Namespace,
                prog: str = "lantern") -> int:
    """Run a subcommand, turning exceptions into one line on stderr and an exit code."""
    try:
        rc = fn(args)
        return EXIT_OK if rc is None else int(rc)
    except BrokenPipeError:   # the reader of our output went away (`| head`): not an error
        sys.stdout = open(os.devnull, "w")
        return EXIT_OK
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        _abort_peers(EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the CLI's single exit point for failures
        if getattr(args, "debug", False) or os.environ.get("LANTERN_DEBUG"):
            traceback.print_exc()
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
        _abort_peers(EXIT_FAILURE)
        return EXIT_FAILURE
