"""framework.sklearn: NeuralNetClassifier / NeuralNetRegressor with scikit-learn's tools, on
scikit-learn's bundled digits (real data, no download)."""
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import framework
from framework import nn, optim
from framework.sklearn import NeuralNetClassifier, NeuralNetRegressor


class MLP(nn.Module):
    def __init__(self, n_in=64, hidden=32, n_out=10):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))

    def forward(self, x):
        return self.net(x)


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return d.data.astype(np.float32), d.target


def _clf(**kw):
    params = dict(module=MLP, module__hidden=32, lr=1e-2, max_epochs=15, batch_size=64,
                  random_state=0)
    params.update(kw)
    return NeuralNetClassifier(**params)


def test_cross_val_score_on_digits(digits):
    X, y = digits
    scores = cross_val_score(make_pipeline(StandardScaler(), _clf()), X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.9, scores


def test_grid_search_over_lr_and_module_params(digits):
    X, y = digits
    grid = GridSearchCV(_clf(max_epochs=15), {"lr": [1e-5, 1e-2], "module__hidden": [16, 32]},
                        cv=3)
    grid.fit(X / 16.0, y)
    assert grid.best_params_["lr"] == 1e-2  # 1e-5 barely moves in 15 epochs
    assert grid.best_score_ > 0.9
    assert len(grid.cv_results_["params"]) == 4
    slow = grid.cv_results_["mean_test_score"][np.asarray(grid.cv_results_["param_lr"]) == 1e-5]
    assert slow.max() < 0.8
    # The refitted best estimator carries the tuned module parameter into its module.
    best = grid.best_estimator_
    assert best.module_.net[0].out_features == grid.best_params_["module__hidden"]
    assert best.score(X / 16.0, y) > 0.9


def test_clone_and_params():
    est = _clf(optimizer=optim.SGD, optimizer__momentum=0.9, criterion__label_smoothing=0.1)
    params = est.get_params()
    assert params["module__hidden"] == 32 and params["optimizer__momentum"] == 0.9
    assert params["criterion__label_smoothing"] == 0.1 and params["module"] is MLP
    c = clone(est)
    assert c is not est and c.get_params() == params and not hasattr(c, "module_")
    c.set_params(lr=0.5, module__hidden=7, optimizer__momentum=0.5)
    assert (c.lr, c.module__hidden, c.optimizer__momentum) == (0.5, 7, 0.5)
    assert est.lr == 1e-2 and est.module__hidden == 32
    assert "module__hidden=7" in repr(c)
    with pytest.raises(TypeError, match="unexpected parameter 'hidden'"):
        NeuralNetClassifier(MLP, hidden=3)
    with pytest.raises(ValueError, match="Invalid parameter"):
        c.set_params(no_such_param=1)


def test_classifier_outputs_labels_and_probabilities(digits):
    X, y = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, names[y], test_size=0.3, random_state=0,
                                          stratify=y)
    clf = _clf(optimizer=optim.SGD, optimizer__momentum=0.9, lr=0.1, max_epochs=10).fit(Xtr, ytr)
    assert list(clf.classes_) == sorted(names)
    proba = clf.predict_proba(Xte)
    assert proba.shape == (len(Xte), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    pred = clf.predict(Xte)
    assert pred.dtype == names.dtype and np.mean(pred == yte) > 0.9
    np.testing.assert_array_equal(pred, clf.classes_[proba.argmax(1)])
    assert len(clf.history_) == 10 and clf.history_[-1] < clf.history_[0]
    assert clf.n_features_in_ == 64
    with pytest.raises(ValueError, match="64"):
        clf.predict(Xte[:, :10])


def test_random_state_makes_fits_repeatable_and_warm_start_continues(digits):
    X, y = digits
    X = X[:300] / 16.0
    y = y[:300]
    a = _clf(max_epochs=3).fit(X, y)
    b = _clf(max_epochs=3).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    warm = _clf(max_epochs=2, warm_start=True).fit(X, y)
    first = warm.module_
    warm.fit(X, y)
    assert warm.module_ is first and len(warm.history_) == 4


def test_module_instance_and_factory(digits):
    X, y = digits
    X, y = X[:200] / 16.0, y[:200]
    framework.manual_seed(0)
    template = MLP(hidden=8)
    before = template.net[0].weight.detach().numpy().copy()
    clf = NeuralNetClassifier(template, max_epochs=2, lr=1e-2).fit(X, y)
    assert clf.module_ is not template  # the given module is copied, not trained in place
    np.testing.assert_array_equal(template.net[0].weight.detach().numpy(), before)
    with pytest.raises(ValueError, match="module instance"):
        NeuralNetClassifier(template, module__hidden=3).fit(X, y)
    fac = NeuralNetClassifier(lambda width: MLP(hidden=width), module__width=5, max_epochs=1)
    assert fac.fit(X, y).module_.net[0].out_features == 5
    with pytest.raises(TypeError, match="not an nn.Module"):
        NeuralNetClassifier(lambda: 3, max_epochs=1).fit(X, y)
    with pytest.raises(NotFittedError):
        NeuralNetClassifier(MLP).predict(X)


def test_regressor_in_pipeline():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5)).astype(np.float32) * [1, 10, 0.1, 1, 5]
    w = np.array([1.5, -0.2, 3.0, 0.0, 0.4])
    y = X @ w + 0.05 * rng.normal(size=400)
    reg = make_pipeline(StandardScaler(), NeuralNetRegressor(
        MLP, module__n_in=5, module__hidden=16, module__n_out=1, lr=1e-2, max_epochs=60,
        batch_size=32, random_state=0))
    reg.fit(X[:300], y[:300])
    pred = reg.predict(X[300:])
    assert pred.shape == (100,)
    assert reg.score(X[300:], y[300:]) > 0.95
    # Two targets: (N, 2) in, (N, 2) out; criterion is configurable.
    Y = np.stack([y, -2 * y], axis=1)
    multi = NeuralNetRegressor(MLP, module__n_in=5, module__n_out=2, criterion=nn.L1Loss,
                               max_epochs=2, random_state=0).fit(X, Y)
    assert multi.predict(X).shape == (400, 2)
    assert cross_val_score(NeuralNetRegressor(MLP, module__n_in=5, module__n_out=1, lr=1e-2,
                                              max_epochs=20, random_state=0),
                           StandardScaler().fit_transform(X), y, cv=2).mean() > 0.8


def test_fit_on_device(digits, device):
    X, y = digits
    clf = _clf(device=device, max_epochs=5).fit(X[:600] / 16.0, y[:600])
    assert next(clf.module_.parameters()).device == framework.device(device)
    assert clf.score(X[600:] / 16.0, y[600:]) > 0.85
