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
    with pytest.raises(ValueError, match="Invalid parameter"):
        c.set_params(no_such_param=1)
    # scikit-learn's convention: __init__ and set_params only store, fit validates. A
    # misspelt parameter survives clone (so cross-validation cannot silently drop it).
    typo = NeuralNetClassifier(MLP, hidden=3, max_epochs=1)
    assert typo.get_params()["hidden"] == 3
    X, y = np.zeros((4, 64), np.float32), np.array([0, 1, 0, 1])
    for est in (typo, clone(typo)):
        with pytest.raises(TypeError, match="unexpected parameter 'hidden'"):
            est.fit(X, y)
    with pytest.raises(TypeError, match="unexpected parameter 'module__'"):
        NeuralNetClassifier(MLP, module__=3).fit(X, y)
    for bad in (dict(batch_size=0), dict(max_epochs=-1), dict(max_epochs=2.5), dict(lr=-1.0),
                dict(lr="fast")):
        est = _clf(**bad)  # stored without complaint ...
        with pytest.raises(ValueError, match=next(iter(bad))):
            est.fit(X, y)  # ... refused at fit


def test_classifier_outputs_labels_and_probabilities(digits):
    X, y = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, names[y], test_size=0.3, random_state=0,
                                          stratify=y)
    clf = _clf(optimizer=optim.SGD, optimizer__momentum=0.9, lr=0.1, max_epochs=10).fit(Xtr, ytr)
    assert list(clf.classes_) == sorted(names)
    proba = clf.predict_proba(Xte)
    assert proba.shape == (len(Xte), 10) and proba.dtype == np.float64
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
    # Continuing needs the same features and no new classes.
    with pytest.raises(ValueError, match="X has 10 features, but NeuralNetClassifier is "
                                         "expecting 64 features as input"):
        warm.fit(X[:, :10], y)
    with pytest.raises(ValueError, match=r"classes \[10\] that the first fit did not see"):
        warm.fit(X, np.where(y == 9, 10, y))
    warm.fit(X[y < 5], y[y < 5])  # a subset of the classes is fine
    assert len(warm.history_) == 6 and list(warm.classes_) == list(range(10))


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


# ---------------------------------------------------------------- scikit-learn's conventions
# Modules that size themselves from the data, the two ways the estimators support: lazy
# layers (input size from a dry run) and factory parameters named n_features_in / n_classes /
# n_outputs (filled in at fit). Module level, so that fitted estimators pickle.
def lazy_classifier(n_classes, hidden=16):
    return nn.Sequential(nn.LazyLinear(hidden), nn.ReLU(), nn.Linear(hidden, n_classes))


def sized_classifier(n_features_in, n_classes, hidden=16):
    return nn.Sequential(nn.Linear(n_features_in, hidden), nn.ReLU(),
                         nn.Linear(hidden, n_classes))


def lazy_regressor(n_outputs, hidden=16):
    return nn.Sequential(nn.LazyLinear(hidden), nn.ReLU(), nn.Linear(hidden, n_outputs))


def sized_regressor(n_features_in, n_outputs, hidden=16):
    return nn.Sequential(nn.Linear(n_features_in, hidden), nn.ReLU(),
                         nn.Linear(hidden, n_outputs))


@pytest.mark.parametrize("cls, factory", [
    (NeuralNetClassifier, lazy_classifier), (NeuralNetClassifier, sized_classifier),
    (NeuralNetRegressor, lazy_regressor), (NeuralNetRegressor, sized_regressor)],
    ids=["classifier-lazy", "classifier-sized", "regressor-lazy", "regressor-sized"])
def test_check_estimator_passes_every_check(cls, factory):
    import inspect
    import warnings
    from sklearn.utils.estimator_checks import check_estimator
    if "on_fail" not in inspect.signature(check_estimator).parameters:
        pytest.skip("collecting every check's result needs scikit-learn >= 1.6")
    # The checks' data sets are small (10 to 300 rows): 20 epochs at lr 1e-2 reach the
    # accuracy (> 0.83) and R^2 (> 0.5) that check_classifiers_train/check_regressors_train ask.
    est = cls(factory, lr=1e-2, max_epochs=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the checks feed deliberately odd data
        results = check_estimator(est, on_fail=None, on_skip=None)
    by_status = {}
    for r in results:
        by_status.setdefault(r["status"], []).append(r)
    failed = [(r["check_name"], repr(r["exception"])[:300]) for r in by_status.get("failed", [])]
    assert not failed, failed
    assert not by_status.get("xfail"), "no check is expected to fail (docs/differences.md)"
    skipped = by_status.get("skipped", [])
    passed = by_status.get("passed", [])
    # Skips are the checks whose optional dependency is absent here (pandas, array API).
    for r in skipped:
        assert any(w in str(r["exception"]) for w in ("pandas", "ARRAY_API", "array_api",
                                                      "polars", "pyarrow")), r
    assert len(passed) == len(results) - len(skipped) and len(passed) >= 50, len(passed)
    names = {r["check_name"] for r in passed}
    assert {"check_n_features_in_after_fitting", "check_supervised_y_no_nan",
            "check_supervised_y_2d", "check_do_not_raise_errors_in_init_or_set_params",
            "check_estimators_pickle", "check_fit_idempotent"} <= names
    assert ("check_classifiers_train" if cls is NeuralNetClassifier
            else "check_regressors_train") in names


def test_input_validation_follows_sklearn():
    import warnings
    from sklearn.exceptions import DataConversionWarning
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    clf = NeuralNetClassifier(sized_classifier, lr=1e-2, max_epochs=5, random_state=0)
    reg = NeuralNetRegressor(sized_regressor, lr=1e-2, max_epochs=5, random_state=0)
    clf.fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but NeuralNetClassifier is "
                                         "expecting 4 features as input"):
        clf.predict(X[:, :3])
    with pytest.raises(ValueError, match="Unknown label type"):
        clone(clf).fit(X, X[:, 0])  # a continuous target is not a classification one
    for bad_y in (np.where(np.arange(60) == 5, np.inf, X[:, 0]),
                  np.where(np.arange(60) == 5, np.nan, X[:, 0])):
        with pytest.raises(ValueError, match="Input y contains (infinity|NaN)"):
            clone(reg).fit(X, bad_y)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        clone(clf).fit(np.where(X > 2, np.nan, X), y)
    with pytest.raises(ValueError, match="requires y to be passed"):
        clone(reg).fit(X, None)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clone(reg).fit(X, X[:-1, 0])
    # A column-vector y: the classifier warns as scikit-learn's do and trains as on 1-D y;
    # the regressor (multi-output) takes it as one target and predicts (N, 1).
    with pytest.warns(DataConversionWarning, match="column-vector y"):
        col = clone(clf).fit(X, y[:, None])
    np.testing.assert_array_equal(col.predict_proba(X), clf.predict_proba(X))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg2d = clone(reg).fit(X, X[:, :1])
    reg1d = clone(reg).fit(X, X[:, 0])
    assert reg2d.predict(X).shape == (60, 1) and reg1d.predict(X).shape == (60,)
    assert reg1d.predict(X).dtype == np.float64  # as scikit-learn's regressors predict
    np.testing.assert_array_equal(reg2d.predict(X)[:, 0], reg1d.predict(X))
    # __init__ and set_params accept anything (validated at fit): check_estimator's smoke test
    for value in (-1, "x", [1], {}):
        NeuralNetRegressor(value, kwargs=value).set_params(module=value, kwargs=value)


def test_module_sized_from_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 7)).astype(np.float32)
    y = np.array(["a", "b", "c"])[np.arange(90) % 3]
    clf = NeuralNetClassifier(sized_classifier, module__hidden=5, max_epochs=1).fit(X, y)
    assert (clf.module_[0].in_features, clf.module_[0].out_features,
            clf.module_[2].out_features) == (7, 5, 3)
    # A module__ parameter overrides a data size (here the module then mismatches classes_).
    over = NeuralNetClassifier(sized_classifier, module__n_classes=4, max_epochs=1).fit(X, y)
    assert over.module_[2].out_features == 4
    with pytest.raises(ValueError, match=r"must output \(N, 3\) logits"):
        over.predict(X)
    # Sizes are passed only to parameters a factory names: MLP(n_in, hidden, n_out) gets none.
    assert NeuralNetClassifier(MLP, module__n_in=7, module__n_out=3,
                               max_epochs=1).fit(X, y).module_.net[2].out_features == 3
    reg = NeuralNetRegressor(lazy_regressor, max_epochs=1).fit(X, np.stack([X[:, 0]] * 2, 1))
    assert reg.n_outputs_ == 2 and reg.module_[0].in_features == 7
    assert type(reg.module_[0]) is nn.Linear  # the lazy layer materialized at the dry run
    # A lazy module instance with Adagrad, whose state is sized when it is built: the dry run
    # before the optimizer makes this work (without it the first step fails on (0,) state).
    template = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(1))
    target = X @ np.arange(7, dtype=np.float32)
    lazy = NeuralNetRegressor(template, optimizer=optim.Adagrad, lr=0.1, max_epochs=30,
                              random_state=0).fit(X, target)
    assert type(template[0]) is nn.LazyLinear  # the template itself stays lazy
    assert lazy.score(X, target) > 0.9
    # Images (N, C, H, W): n_features_in is the channel count, checked again at predict.
    images = rng.normal(size=(12, 2, 6, 6)).astype(np.float32)

    def conv(n_features_in, n_classes):
        return nn.Sequential(nn.Conv2d(n_features_in, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                             nn.Flatten(), nn.Linear(4, n_classes))
    cnn = NeuralNetClassifier(conv, max_epochs=1).fit(images, y[:12])
    assert cnn.n_features_in_ == 2 and cnn.module_[0].in_channels == 2
    assert cnn.predict(images).shape == (12,)
    with pytest.raises(ValueError, match="X has 1 features, but NeuralNetClassifier is "
                                         "expecting 2 features"):
        cnn.predict(images[:, :1])


def test_readonly_memmap_inputs(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 6)).astype(np.float32)
    y = (X[:, :3].sum(1) > 0).astype(np.int64)
    t = X @ np.arange(6, dtype=np.float32)
    maps = []
    for name, a in (("X", X), ("y", y), ("t", t)):
        a.tofile(tmp_path / name)
        maps.append(np.memmap(tmp_path / name, dtype=a.dtype, mode="r", shape=a.shape))
    Xm, ym, tm = maps
    assert not Xm.flags.writeable
    for est, target, target_m in ((NeuralNetClassifier(sized_classifier), y, ym),
                                  (NeuralNetRegressor(sized_regressor), t, tm)):
        est.set_params(lr=1e-2, max_epochs=3, batch_size=16, random_state=0)
        on_disk = clone(est).fit(Xm, target_m)
        in_memory = clone(est).fit(X, target)
        np.testing.assert_array_equal(on_disk.predict(Xm), in_memory.predict(X))


def test_meta_estimators_reproduce_a_direct_fit(digits):
    """clone, Pipeline, GridSearchCV's refit and cross_val_score train exactly the model a
    direct fit with the same random_state trains."""
    from sklearn.model_selection import KFold
    X, y = digits
    X, y = X[:360], y[:360]
    est = NeuralNetClassifier(sized_classifier, module__hidden=24, lr=1e-2, max_epochs=8,
                              random_state=0)
    Xs = StandardScaler().fit_transform(X)
    direct = clone(est).fit(Xs, y).predict_proba(Xs)
    assert np.mean(direct.argmax(1) == y) > 0.95
    np.testing.assert_array_equal(clone(est).fit(Xs, y).predict_proba(Xs), direct)
    pipe = make_pipeline(StandardScaler(), clone(est)).fit(X, y)
    np.testing.assert_array_equal(pipe.predict_proba(X), direct)
    grid = GridSearchCV(clone(est), {"module__hidden": [8, 24]}, cv=3).fit(Xs, y)
    assert grid.best_params_ == {"module__hidden": 24}
    np.testing.assert_array_equal(grid.predict_proba(Xs), direct)
    folds = KFold(3, shuffle=True, random_state=0)
    scores = cross_val_score(clone(est), Xs, y, cv=folds)
    by_hand = [clone(est).fit(Xs[tr], y[tr]).score(Xs[te], y[te]) for tr, te in folds.split(Xs)]
    np.testing.assert_array_equal(scores, by_hand)
    assert scores.mean() > 0.85
