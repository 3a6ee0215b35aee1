"""What every application's `models` and `zoo-build` commands share: listing a domain's
registered models with their weights and figures, and rebuilding a weights record by running
the training command it records."""
from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path
from typing import Callable

import models

from .checkpoint import LAST
from .cli import CLIError

__all__ = ["describe_models", "zoo_build", "metric_line"]


def metric_line(w) -> str:
    """'<dataset> <metric> <value>' for the record's headline figure."""
    m = w.metrics
    for key in ("accuracy", "mean_return", "dice", "cosine"):
        if isinstance(m.get(key), (int, float)):
            return f"{m.get('dataset', '?')} {key} {m[key]:.4f}"
    return str(m.get("dataset", ""))


def describe_models(domain: str, name: str | None = None) -> int:
    """Print the models of `domain` (parameters, weights and their figures), or one model."""
    if name:
        entry = models.get_entry(name)
        print(f"{entry.name} ({entry.domain}): {entry.doc}")
        print(f"parameters: {models.num_parameters(entry.name):,}")
        for w in entry.weights.values():
            print(f"weights {w.name}: {json.dumps(w.meta(), indent=2)}")
        return 0
    names = models.list_models(domain)
    width = max([len(n) for n in names] + [5])
    print(f"{'model':<{width}} {'parameters':>12}  weights")
    for n in names:
        entry = models.get_entry(n)
        tags = ", ".join(f"{w.tag} ({metric_line(w)})" for w in entry.weights.values())
        print(f"{n:<{width}} {models.num_parameters(n):>12,}  {tags or '-'}")
    return 0


def zoo_build(name: str, app: str, add_parser: Callable, train: Callable, export: Callable,
              out: str | None = None, *, headline: Callable[[dict], str] | None = None,
              recorded: Callable | None = None) -> int:
    """Run the `lantern <app> train ...` command recorded in weights `name`, then export the
    run's final model to $LANTERN_HOME/zoo/<name>.safetensors and compare the figures:
    `headline(metrics.json)` against `recorded(weights record)` (default: test accuracy)."""
    import datasets
    w = models.get_weights(name)
    argv = shlex.split(w.recipe)
    if argv[:3] != ["lantern", app, "train"]:
        raise CLIError(f"{w.name}: its recipe is not a `lantern {app} train` command: "
                       f"{w.recipe}")
    parser = argparse.ArgumentParser(prog="lantern")
    add_parser(parser.add_subparsers(dest="group"), app)
    targs = parser.parse_args(argv[1:])
    targs.out = out or f"runs/zoo/{w.name}"
    rc = train(targs)
    if rc:
        return rc
    dest = datasets.lantern_home() / "zoo" / f"{w.name}.safetensors"
    export(argparse.Namespace(checkpoint=str(Path(targs.out) / LAST), model=None,
                              out=str(dest), debug=False))
    figures = json.loads((Path(targs.out) / "metrics.json").read_text())
    headline = headline or (lambda m: f"test accuracy {m['test']['accuracy']:.4f}")
    recorded = recorded or (lambda rec: f"accuracy {rec.metrics.get('accuracy')}")
    print(f"{w.name}: {headline(figures)} (recorded {recorded(w)}); weights {dest}")
    return 0
