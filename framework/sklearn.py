"""scikit-learn estimators that train a Lantern `nn.Module`: `NeuralNetClassifier` and
`NeuralNetRegressor` (in the spirit of skorch).

    from framework.sklearn import NeuralNetClassifier
    clf = NeuralNetClassifier(MLP, module__hidden=64, lr=1e-2, max_epochs=20)
    cross_val_score(make_pipeline(StandardScaler(), clf), X, y, cv=3)

`module` is an nn.Module class or any callable returning a module (called with the
`module__*` parameters), or a module instance (deep-copied at each fit). The criterion and
optimizer are classes (defaults: CrossEntropyLoss / MSELoss and optim.Adam) configured with
`criterion__*` / `optimizer__*` parameters. These routed parameters are the only keyword
arguments beyond the named ones; as scikit-learn asks, `__init__` only stores parameters and
`fit` validates them, so the estimators work with clone, Pipeline, GridSearchCV (which may
tune any of them, e.g. `module__hidden` or `optimizer__weight_decay`) and cross_val_score.

A module can size itself from the data: lazy layers (`nn.LazyLinear`, ...) infer their input
size at a dry run on the first rows before the optimizer is built, and a class or factory
that names a parameter `n_features_in` (X.shape[1]), `n_classes` (classifier: len(classes_))
or `n_outputs` (regressor: number of targets) receives it, unless `module__<name>` sets it.

A classifier's module maps a float32 batch (N, ...) to logits (N, n_classes); labels may be
any sortable values (they are encoded to 0..n_classes-1, see `classes_`). A regressor's
module maps (N, ...) to (N, n_outputs); a 1-D y is trained as (N, 1) and predicted as 1-D.
Inputs are validated with scikit-learn's own helpers (finite X and y, consistent lengths,
`n_features_in_` checked at predict, column-vector y warned about for the classifier).
They pass every check of scikit-learn's `check_estimator` (see docs/differences.md).
"""
from __future__ import annotations

import copy
import inspect

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

try:
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # scikit-learn < 1.6 has it as a method
    def _validate_data(estimator, X="no_validation", y="no_validation", **kwargs):
        return estimator._validate_data(X, y, **kwargs)

__all__ = ["NeuralNetClassifier", "NeuralNetRegressor"]

_PREFIXES = ("module__", "criterion__", "optimizer__")


def _takes_keyword(fn, name: str) -> bool:
    """Whether callable `fn` declares a parameter `name` that can be passed by keyword."""
    try:
        param = inspect.signature(fn).parameters.get(name)
    except (TypeError, ValueError):  # builtins and some C callables have no signature
        return False
    return param is not None and param.kind in (param.POSITIONAL_OR_KEYWORD,
                                                param.KEYWORD_ONLY)


class _NeuralNet(BaseEstimator):
    """Shared fit/predict machinery; see the module docstring."""

    def __init__(self, module, *, criterion=None, optimizer=None, lr=1e-3, max_epochs=20,
                 batch_size=64, shuffle=True, device="cpu", random_state=None,
                 warm_start=False, verbose=0, **kwargs):
        self.module = module
        self.criterion = criterion
        self.optimizer = optimizer
        self.lr = lr
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.device = device
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        # The routed parameters: stored as given (a misspelt one too, so that clone keeps it
        # and fit reports it) and validated at fit, as scikit-learn's conventions require.
        self._extra_params = list(kwargs)
        for key, value in kwargs.items():
            setattr(self, key, value)

    # ------------------------------------------------------------ parameters (sklearn API)
    def _extra_names(self) -> list:
        if "_extra_params" not in self.__dict__:  # unpickled from before the list was kept
            self._extra_params = [k for k in vars(self) if k.startswith(_PREFIXES)]
        return self._extra_params

    def _routed_params(self) -> dict:
        return {k: getattr(self, k) for k in self._extra_names()}

    def get_params(self, deep=True):
        params = super().get_params(deep=deep)
        params.update(self._routed_params())
        return params

    def set_params(self, **params):
        plain = {}
        for key, value in params.items():
            if key.startswith(_PREFIXES) or key in self._extra_names():
                if key not in self._extra_params:
                    self._extra_params.append(key)
                setattr(self, key, value)
            else:
                plain[key] = value
        if plain:
            super().set_params(**plain)
        return self

    def _kwargs(self, prefix: str) -> dict:
        n = len(prefix)
        return {k[n:]: v for k, v in self._routed_params().items() if k.startswith(prefix)}

    def _check_params(self) -> None:
        for key in self._extra_names():
            if not key.startswith(_PREFIXES) or key in _PREFIXES:
                raise TypeError(f"{type(self).__name__} got an unexpected parameter {key!r}; "
                                f"extra parameters must start with {', '.join(_PREFIXES)}")
        for name, low in (("batch_size", 1), ("max_epochs", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float, np.number)) \
                or not self.lr >= 0:
            raise ValueError(f"lr must be a number >= 0, got {self.lr!r}")

    # ------------------------------------------------------------ building
    def _default_criterion(self):
        raise NotImplementedError

    def _data_sizes(self) -> dict:
        """Sizes a module factory may ask for by parameter name (see the module docstring)."""
        raise NotImplementedError

    def _build_module(self):
        from framework import nn
        module_kwargs = self._kwargs("module__")
        if isinstance(self.module, nn.Module):
            if module_kwargs:
                raise ValueError("module__* parameters need `module` to be a class or factory, "
                                 "not a module instance")
            return copy.deepcopy(self.module)
        if not callable(self.module):
            raise TypeError(f"module must be an nn.Module class, a factory or an instance, got "
                            f"{type(self.module).__name__}")
        sizes = {k: v for k, v in self._data_sizes().items()
                 if k not in module_kwargs and _takes_keyword(self.module, k)}
        module = self.module(**sizes, **module_kwargs)
        if not isinstance(module, nn.Module):
            raise TypeError(f"module factory returned {type(module).__name__}, not an nn.Module")
        return module

    def _initialize(self, X: np.ndarray, seed: int | None) -> None:
        """Build module_, criterion_ and optimizer_ (fit calls this unless warm-starting)."""
        import framework
        from framework import optim
        from framework.nn.parameter import is_lazy
        if seed is not None:
            framework.manual_seed(seed)
        self.module_ = self._build_module().to(self.device)
        if any(is_lazy(t) for t in (*self.module_.parameters(), *self.module_.buffers())):
            # Lazy layers take their sizes from a first call; an optimizer must see the
            # materialized parameters (some size their state when built).
            self.module_.eval()
            with framework.no_grad():
                self.module_(framework.from_numpy(X[:2]).to(self.device))
        crit_cls = self.criterion if self.criterion is not None else self._default_criterion()
        self.criterion_ = crit_cls(**self._kwargs("criterion__"))
        opt_cls = self.optimizer if self.optimizer is not None else optim.Adam
        self.optimizer_ = opt_cls(self.module_.parameters(), lr=self.lr,
                                  **self._kwargs("optimizer__"))
        self.history_ = []

    # ------------------------------------------------------------ training / inference
    def _warm(self) -> bool:
        return bool(self.warm_start) and hasattr(self, "module_")

    def _fit_arrays(self, X: np.ndarray, y: np.ndarray):
        import framework
        seed = None
        if self.random_state is not None:
            # an int seeds as given; a RandomState draws one (scikit-learn's convention)
            seed = (int(self.random_state) if isinstance(self.random_state, (int, np.integer))
                    else int(check_random_state(self.random_state).randint(2**31 - 1)))
        if not self._warm():
            self._initialize(X, seed)
        elif seed is not None:
            framework.manual_seed(seed)
        rng = np.random.default_rng(seed)
        n, bs = len(X), int(self.batch_size)
        self.module_.train()
        for epoch in range(int(self.max_epochs)):
            order = rng.permutation(n) if self.shuffle else np.arange(n)
            total = 0.0
            for start in range(0, n, bs):
                idx = order[start:start + bs]
                xb = framework.from_numpy(X[idx]).to(self.device)
                yb = framework.from_numpy(y[idx]).to(self.device)
                loss = self.criterion_(self.module_(xb), yb)
                self.optimizer_.zero_grad()
                loss.backward()
                self.optimizer_.step()
                total += float(loss.item()) * len(idx)
            self.history_.append(total / n)
            if self.verbose:
                print(f"epoch {epoch + 1}/{self.max_epochs}  train loss {self.history_[-1]:.4f}")
        return self

    def _check_X(self, X) -> np.ndarray:
        check_is_fitted(self)
        return _validate_data(self, X, reset=False, dtype=np.float32, allow_nd=True)

    def forward(self, X) -> np.ndarray:
        """The module's outputs for X (in eval mode, batched, without autograd)."""
        import framework
        X = self._check_X(X)
        self.module_.eval()
        outs = []
        bs = int(self.batch_size)
        with framework.no_grad():
            for start in range(0, len(X), bs):
                xb = framework.from_numpy(X[start:start + bs]).to(self.device)
                outs.append(np.asarray(self.module_(xb).detach().cpu().numpy()))
        return np.concatenate(outs, axis=0)


class NeuralNetClassifier(ClassifierMixin, _NeuralNet):
    """Train a Lantern module that outputs class logits; sklearn classifier API."""

    def _default_criterion(self):
        from framework import nn
        return nn.CrossEntropyLoss

    def _data_sizes(self) -> dict:
        return {"n_features_in": self.n_features_in_, "n_classes": len(self.classes_)}

    def fit(self, X, y):
        self._check_params()
        warm = self._warm()
        X, y = _validate_data(self, X, y, reset=not warm, dtype=np.float32, allow_nd=True)
        check_classification_targets(y)
        if warm:
            unseen = np.setdiff1d(y, self.classes_)
            if unseen.size:
                raise ValueError(f"warm_start: y has classes {unseen.tolist()} that the first "
                                 f"fit did not see (classes_ = {self.classes_.tolist()})")
            encoded = np.searchsorted(self.classes_, y)
        else:
            self.classes_, encoded = np.unique(y, return_inverse=True)
        return self._fit_arrays(X, encoded.astype(np.int64))

    def predict_proba(self, X) -> np.ndarray:
        logits = self.forward(X)
        if logits.ndim != 2 or logits.shape[1] != len(self.classes_):
            raise ValueError(f"the module outputs shape {logits.shape}, but a classifier's "
                             f"module must output (N, {len(self.classes_)}) logits")
        z = logits.astype(np.float64)  # float64, as scikit-learn's classifiers return
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)  # checks fitted before classes_ is read
        return self.classes_[np.argmax(proba, axis=1)]


class NeuralNetRegressor(RegressorMixin, _NeuralNet):
    """Train a Lantern module that outputs (N, n_outputs); sklearn regressor API."""

    def _default_criterion(self):
        from framework import nn
        return nn.MSELoss

    def _data_sizes(self) -> dict:
        return {"n_features_in": self.n_features_in_, "n_outputs": self.n_outputs_}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _more_tags(self):  # the tags of scikit-learn < 1.6
        return {"multioutput": True}

    def fit(self, X, y):
        self._check_params()
        warm = self._warm()
        X, y = _validate_data(self, X, y, reset=not warm, dtype=np.float32, allow_nd=True,
                              multi_output=True, y_numeric=True)
        y = np.asarray(y, dtype=np.float32)
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        if warm and n_outputs != self.n_outputs_:
            raise ValueError(f"warm_start: y has {n_outputs} targets, but the first fit had "
                             f"{self.n_outputs_}")
        self.n_outputs_ = n_outputs
        self._y_1d = y.ndim == 1
        return self._fit_arrays(X, y.reshape(len(y), -1))

    def predict(self, X) -> np.ndarray:
        # float64, as scikit-learn's regressors predict (the module computes in float32)
        out = self.forward(X).astype(np.float64)
        if self._y_1d:
            if out.ndim != 2 or out.shape[1] != 1:
                raise ValueError(f"the module outputs shape {out.shape}, but y was 1-D: the "
                                 "module must output (N, 1)")
            return out[:, 0]
        return out

