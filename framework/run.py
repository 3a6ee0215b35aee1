"""Run an unchanged PyTorch script on Lantern:

    python -m framework.run train.py --epochs 3     (or: lantern run train.py --epochs 3)

`torch` and every `torch.<sub>` module resolve to `framework` / `framework.<sub>` through an
import hook, then the script runs as `__main__` with `sys.argv` set and its folder first on
`sys.path`, as `python train.py --epochs 3` would run it. What the script uses that Lantern
lacks fails with an error naming it: `import torch.foo` raises ModuleNotFoundError("Lantern has
no torch.foo (framework.foo)"), `torch.nn.foo` raises AttributeError("Lantern has no
torch.nn.foo ...").

Child processes of the script see the same mapping: a forked child inherits it, and a child
started with "spawn" or "forkserver" (torch.multiprocessing scripts often ask for spawn) installs
it before it re-imports the script, because the data multiprocessing sends it says to.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.abc
import importlib.util
import os
import runpy
import sys
import traceback
import types
from typing import Sequence

__all__ = ["install", "uninstall", "run_script", "main", "add_parser"]

_PREFIX, _TARGET = "torch", "framework"


def _framework_name(torch_name: str) -> str:
    return _TARGET + torch_name[len(_PREFIX):]


def _torch_name(framework_name: str) -> str:
    return _PREFIX + framework_name[len(_TARGET):]


def _is_framework_module(value) -> bool:
    name = getattr(value, "__name__", None)
    return isinstance(value, types.ModuleType) and isinstance(name, str) and \
        (name == _TARGET or name.startswith(_TARGET + "."))


class _TorchModule(types.ModuleType):
    """`torch` or `torch.<sub>` as the script sees it: each attribute is the framework
    module's (a submodule comes back as its own torch alias), an assignment goes to the
    framework module (`torch.backends.cudnn.benchmark = True` sets Lantern's flag), and a
    missing name is an AttributeError that names torch.<...>."""

    def __init__(self, name: str, target: types.ModuleType):
        super().__init__(name, getattr(target, "__doc__", None))
        d = self.__dict__
        d["_lantern_target"] = target
        d["__path__"] = []   # a package, so that `import torch.<sub>.<x>` asks our finder
        d["__package__"] = name
        d["__spec__"] = importlib.util.spec_from_loader(name, _LOADER, is_package=True)
        d["__loader__"] = _LOADER
        if getattr(target, "__file__", None):
            d["__file__"] = target.__file__   # error messages then show Lantern's file

    def __getattr__(self, name: str):
        target = self.__dict__["_lantern_target"]
        try:
            value = getattr(target, name)
        except AttributeError:
            value = _missing
        if value is _missing and not name.startswith("__"):
            # a submodule not imported yet (real torch imports most of its own eagerly)
            try:
                value = importlib.import_module(f"{target.__name__}.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{target.__name__}.{name}":
                    raise
        if value is _missing:
            if name == "__all__":
                return [n for n in dir(target) if not n.startswith("_")]
            raise AttributeError(f"Lantern has no {self.__name__}.{name} ({target.__name__} "
                                 f"has no attribute {name!r})")
        if _is_framework_module(value):
            return _alias(_torch_name(value.__name__), value)
        return value

    def __setattr__(self, name: str, value) -> None:
        if name.startswith("__") and name.endswith("__"):   # the import system's bookkeeping
            self.__dict__[name] = value
        else:
            setattr(self.__dict__["_lantern_target"], name, value)

    def __delattr__(self, name: str) -> None:
        if name in self.__dict__:
            del self.__dict__[name]
        else:
            delattr(self.__dict__["_lantern_target"], name)

    def __dir__(self):
        return dir(self.__dict__["_lantern_target"])

    def __repr__(self):
        return f"<module {self.__name__!r} (Lantern's {self.__dict__['_lantern_target'].__name__})>"


_missing = object()


def _alias(torch_name: str, target: types.ModuleType) -> _TorchModule:
    mod = sys.modules.get(torch_name)
    if isinstance(mod, _TorchModule) and mod.__dict__["_lantern_target"] is target:
        return mod
    mod = _TorchModule(torch_name, target)
    sys.modules[torch_name] = mod
    return mod


class _AliasLoader(importlib.abc.Loader):
    def create_module(self, spec):
        return _alias(spec.name, importlib.import_module(_framework_name(spec.name)))

    def exec_module(self, module) -> None:
        pass   # the framework module already ran


_LOADER = _AliasLoader()


class _TorchFinder(importlib.abc.MetaPathFinder):
    """Finds `torch` and `torch.<sub>` as aliases of `framework` and `framework.<sub>`."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != _PREFIX and not fullname.startswith(_PREFIX + "."):
            return None
        target_name = _framework_name(fullname)
        try:
            importlib.import_module(target_name)
        except ModuleNotFoundError as exc:
            # only when the module itself is missing; an import failing inside Lantern's
            # module is a bug with a message of its own
            if exc.name is None or not (target_name == exc.name
                                        or target_name.startswith(exc.name + ".")):
                raise
            raise ModuleNotFoundError(f"Lantern has no {fullname} ({target_name})",
                                      name=fullname) from None
        return importlib.util.spec_from_loader(fullname, _LOADER, is_package=True)


_FINDER = _TorchFinder()


class _InstallInChild:
    """Put into the preparation data that multiprocessing sends a spawned (or forkserver)
    child: unpickling it there calls `install()` before the child re-imports the script."""

    def __reduce__(self):
        import framework.run   # by its importable name (this file may be running as __main__)
        return (framework.run.install, ())


def _patch_spawn() -> None:
    import multiprocessing.spawn as spawn
    original = spawn.get_preparation_data
    if getattr(original, "_lantern_torch_alias", False):
        return

    def get_preparation_data(name):
        data = original(name)
        data["lantern_torch_alias"] = _InstallInChild()   # (prepare() ignores unknown keys)
        return data

    get_preparation_data._lantern_torch_alias = True
    get_preparation_data._original = original
    spawn.get_preparation_data = get_preparation_data


def install() -> None:
    """Map `torch` to `framework` in this process (for imports from now on) and in the child
    processes it starts."""
    real = sys.modules.get(_PREFIX)
    if real is not None and not isinstance(real, _TorchModule):
        raise RuntimeError("PyTorch is already imported in this process, so `torch` cannot be "
                           "mapped to Lantern; run the script with python -m framework.run")
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    _patch_spawn()


def uninstall() -> None:
    """Undo `install`: remove the hook and the torch aliases from sys.modules."""
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
    import multiprocessing.spawn as spawn
    original = getattr(spawn.get_preparation_data, "_original", None)
    if original is not None:
        spawn.get_preparation_data = original
    for name in [n for n, m in sys.modules.items() if isinstance(m, _TorchModule)]:
        del sys.modules[name]


def run_script(path, argv: Sequence[str] = ()) -> dict:
    """Run the script at `path` as `__main__` with `sys.argv = [path, *argv]` and `torch`
    mapped to `framework`; returns its globals. sys.argv and sys.path are restored after."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such script")
    install()
    saved_argv = sys.argv[:]
    script_dir = os.path.dirname(os.path.abspath(path))
    sys.argv = [path, *argv]
    sys.path.insert(0, script_dir)   # as `python script.py`: its own modules import
    try:
        return runpy.run_path(path, run_name="__main__")
    finally:
        sys.argv = saved_argv
        try:
            sys.path.remove(script_dir)
        except ValueError:
            pass


_USAGE = "usage: python -m framework.run SCRIPT [ARG ...]"


def _print_script_error(exc: BaseException, script: str) -> None:
    """The traceback as `python script.py` shows it: from the script's frame on (the
    runner's and runpy's frames before it say nothing about the script)."""
    tb = exc.__traceback__
    target = os.path.abspath(script)
    t = tb
    while t is not None and os.path.abspath(t.tb_frame.f_code.co_filename) != target:
        t = t.tb_next
    traceback.print_exception(type(exc), exc, t if t is not None else tb)


def _run_and_report(script: str, argv: Sequence[str]) -> int:
    if not os.path.isfile(script):
        raise FileNotFoundError(f"{script}: no such script")
    try:
        run_script(script, argv)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - the script's own error, shown as python would
        _print_script_error(exc, script)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m framework.run SCRIPT [ARG ...]`: the script's exit status (1 if it
    raised, after its traceback)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_USAGE, file=sys.stdout if args else sys.stderr)
        if args:
            print(__doc__)
        return 0 if args else 2
    try:
        return _run_and_report(args[0], args[1:])
    except FileNotFoundError as exc:
        print(f"python -m framework.run: error: {exc}", file=sys.stderr)
        return 2


# --------------------------------------------------------------------------- `lantern run`
def _run_cmd(args: argparse.Namespace) -> int:
    return _run_and_report(args.script, args.args)


def add_parser(sub, name: str = "run", help_: str = "") -> argparse.ArgumentParser:
    """The `lantern run SCRIPT [ARG ...]` subcommand."""
    p = sub.add_parser(name, help=help_, description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  lantern run train.py --epochs 3\n"
                              "  lantern run main.py --batch-size 32 --save-model\n")
    p.add_argument("script", help="the PyTorch script to run")
    p.add_argument("args", nargs=argparse.REMAINDER, help="the script's own arguments")
    p.set_defaults(func=_run_cmd)
    return p


if __name__ == "__main__":
    # run the importable copy of this module, so that the script, its children and
    # `import framework.run` all share one hook
    from framework.run import main as _main
    sys.exit(_main())
