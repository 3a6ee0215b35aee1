"""scikit-learn estimators that train a Lantern `nn.Module`: `NeuralNetClassifier` and
`NeuralNetRegressor` (in the spirit of skorch).

    from framework.sklearn import NeuralNetClassifier
    clf = NeuralNetClassifier(MLP, module__hidden=64, lr=1e-2, max_epochs=20)
    cross_val_score(make_pipeline(StandardScaler(), clf), X, y, cv=3)

`module` is an nn.Module class or any callable returning a module (called with the
`module__*` parameters), or a module instance (deep-copied at each fit). The criterion and
optimizer are classes (defaults: CrossEntropyLoss / MSELoss and optim.Adam) configured with
`criterion__*` / `optimizer__*` parameters. `__init__` only stores parameters, so the
estimators work with clone, Pipeline, GridSearchCV (which may tune any of them, e.g.
`module__hidden` or `optimizer__weight_decay`) and cross_val_score.

A classifier's module maps a float32 batch (N, ...) to logits (N, n_classes); labels may be
any sortable values (they are encoded to 0..n_classes-1, see `classes_`). A regressor's
module maps (N, ...) to (N, n_targets); a 1-D y is trained as (N, 1) and predicted as 1-D.
"""
from __future__ import annotations

import copy

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_array, check_is_fitted

__all__ = ["NeuralNetClassifier", "NeuralNetRegressor"]

_PREFIXES = ("module__", "criterion__", "optimizer__")


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
        for key, value in kwargs.items():
            if not key.startswith(_PREFIXES) or key in _PREFIXES:
                raise TypeError(f"{type(self).__name__} got an unexpected parameter {key!r}; "
                                f"extra parameters must start with {', '.join(_PREFIXES)}")
            setattr(self, key, value)

    # ------------------------------------------------------------ parameters (sklearn API)
    def _prefixed_params(self) -> dict:
        return {k: v for k, v in vars(self).items() if k.startswith(_PREFIXES)}

    def get_params(self, deep=True):
        params = super().get_params(deep=deep)
        params.update(self._prefixed_params())
        return params

    def set_params(self, **params):
        plain = {}
        for key, value in params.items():
            if key.startswith(_PREFIXES):
                setattr(self, key, value)
            else:
                plain[key] = value
        if plain:
            super().set_params(**plain)
        return self

    def _kwargs(self, prefix: str) -> dict:
        n = len(prefix)
        return {k[n:]: v for k, v in self._prefixed_params().items() if k.startswith(prefix)}

    # ------------------------------------------------------------ building
    def _default_criterion(self):
        raise NotImplementedError

    def initialize(self):
        """Build module_, criterion_ and optimizer_ from the parameters (fit calls this)."""
        import framework
        from framework import nn, optim
        if self.random_state is not None:
            framework.manual_seed(int(self.random_state))
        module_kwargs = self._kwargs("module__")
        if isinstance(self.module, nn.Module):
            if module_kwargs:
                raise ValueError("module__* parameters need `module` to be a class or factory, "
                                 "not a module instance")
            module = copy.deepcopy(self.module)
        elif callable(self.module):
            module = self.module(**module_kwargs)
        else:
            raise TypeError(f"module must be an nn.Module class, a factory or an instance, got "
                            f"{type(self.module).__name__}")
        if not isinstance(module, nn.Module):
            raise TypeError(f"module factory returned {type(module).__name__}, not an nn.Module")
        self.module_ = module.to(self.device)
        crit_cls = self.criterion if self.criterion is not None else self._default_criterion()
        self.criterion_ = crit_cls(**self._kwargs("criterion__"))
        opt_cls = self.optimizer if self.optimizer is not None else optim.Adam
        self.optimizer_ = opt_cls(self.module_.parameters(), lr=self.lr,
                                  **self._kwargs("optimizer__"))
        self.history_ = []
        return self

    # ------------------------------------------------------------ training / inference
    def _check_X(self, X, reset: bool):
        X = check_array(X, dtype=np.float32, allow_nd=True)
        if reset:
            self.n_features_in_ = X.shape[1]
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} was "
                             f"fitted with {self.n_features_in_}")
        return X

    def _fit_arrays(self, X: np.ndarray, y: np.ndarray):
        import framework
        if int(self.batch_size) < 1 or int(self.max_epochs) < 0:
            raise ValueError(f"batch_size must be >= 1 and max_epochs >= 0, got "
                             f"{self.batch_size} and {self.max_epochs}")
        if not (self.warm_start and hasattr(self, "module_")):
            self.initialize()
        rng = np.random.default_rng(self.random_state)
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
            self.history_.append(total / max(n, 1))
            if self.verbose:
                print(f"epoch {epoch + 1}/{self.max_epochs}  train loss {self.history_[-1]:.4f}")
        return self

    def forward(self, X) -> np.ndarray:
        """The module's outputs for X (in eval mode, batched, without autograd)."""
        import framework
        check_is_fitted(self, "module_")
        X = self._check_X(X, reset=False)
        self.module_.eval()
        outs = []
        with framework.no_grad():
            for start in range(0, len(X), int(self.batch_size)):
                xb = framework.from_numpy(X[start:start + int(self.batch_size)]).to(self.device)
                outs.append(np.asarray(self.module_(xb).detach().cpu().numpy()))
        if not outs:
            return np.empty((0,), dtype=np.float32)
        return np.concatenate(outs, axis=0)


class NeuralNetClassifier(ClassifierMixin, _NeuralNet):
    """Train a Lantern module that outputs class logits; sklearn classifier API."""

    def _default_criterion(self):
        from framework import nn
        return nn.CrossEntropyLoss

    def fit(self, X, y):
        X = self._check_X(X, reset=True)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"y must be 1-D with one label per row of X: X has {len(X)} rows, "
                             f"y has shape {y.shape}")
        self.classes_, encoded = np.unique(y, return_inverse=True)
        return self._fit_arrays(X, encoded.astype(np.int64))

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, ("module_", "classes_"))
        logits = self.forward(X)
        if logits.ndim != 2 or logits.shape[1] != len(self.classes_):
            raise ValueError(f"the module outputs shape {logits.shape}, but a classifier's "
                             f"module must output (N, {len(self.classes_)}) logits")
        z = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, ("module_", "classes_"))
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class NeuralNetRegressor(RegressorMixin, _NeuralNet):
    """Train a Lantern module that outputs (N, n_targets); sklearn regressor API."""

    def _default_criterion(self):
        from framework import nn
        return nn.MSELoss

    def fit(self, X, y):
        X = self._check_X(X, reset=True)
        y = np.asarray(y, dtype=np.float32)
        if len(y) != len(X) or y.ndim not in (1, 2):
            raise ValueError(f"y must be (N,) or (N, n_targets) with N = {len(X)}, got shape "
                             f"{y.shape}")
        self._y_1d = y.ndim == 1
        return self._fit_arrays(X, y.reshape(len(y), -1))

    def predict(self, X) -> np.ndarray:
        out = self.forward(X)
        if getattr(self, "_y_1d", False):
            if out.ndim != 2 or out.shape[1] != 1:
                raise ValueError(f"the module outputs shape {out.shape}, but y was 1-D: the "
                                 "module must output (N, 1)")
            return out[:, 0]
        return out
