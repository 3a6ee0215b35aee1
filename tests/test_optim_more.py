"""framework.optim's Adamax, ASGD, Rprop and LBFGS against torch.optim: trajectories for the same
gradients (LBFGS: for the same closures), state dicts (round trips, PyTorch <-> Lantern, resuming)
and argument errors."""
import copy
import pickle

import numpy as np
import pytest

import framework as F
import framework.optim as optim
from conftest import torch_or_skip


def _np(t):
    """A framework or torch tensor as a NumPy array (CPU)."""
    if isinstance(t, F.Tensor):
        t = t.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        return np.array(t.numpy())
    return t.detach().cpu().numpy()


SHAPES = [(3, 4), (5,), ()]


def _problem(dtype, steps, seed=0, complex_=False):
    """Initial values and per-step gradients of three parameters. Some gradient entries are 0
    (Rprop's sign cases) and parameter 2 gets no gradient on some steps (its update and step
    count are skipped)."""
    rng = np.random.default_rng(seed)

    def draw(s):
        a = rng.standard_normal(s)
        if complex_:
            a = a + 1j * rng.standard_normal(s)
        return np.asarray(a, dtype=dtype)

    inits = [draw(s) for s in SHAPES]
    grads = [[draw(s) for s in SHAPES] for _ in range(steps)]
    for t in range(0, steps, 4):
        grads[t][0][0, :2] = 0
    for t in (3, 7, 8):
        if t < steps:
            grads[t][2] = None
    return inits, grads


def _make_params(inits, device="cpu"):
    torch = torch_or_skip()
    ours = [F.tensor(a, device=device, requires_grad=True) for a in inits]
    theirs = [torch.tensor(a, requires_grad=True) for a in inits]
    return ours, theirs


def _set_grads(ours, theirs, grads, device="cpu"):
    torch = torch_or_skip()
    for p, q, g in zip(ours, theirs, grads):
        p.grad = None if g is None else F.tensor(g, device=device)
        q.grad = None if g is None else torch.tensor(g)


def _tol(dtype):
    if np.dtype(dtype).itemsize >= 8 and np.dtype(dtype) != np.complex64:
        return dict(rtol=1e-10, atol=1e-12)
    return dict(rtol=2e-5, atol=2e-6)


def _assert_state_close(ours, theirs, tol, where="state"):
    """Our state value (Tensors, lists, numbers) equals PyTorch's in structure and, to `tol`,
    in value; a Tensor stands exactly where PyTorch has a tensor."""
    torch = torch_or_skip()
    if torch.is_tensor(theirs):
        assert isinstance(ours, F.Tensor), (where, type(ours))
        assert tuple(ours.shape) == tuple(theirs.shape), where
        np.testing.assert_allclose(_np(ours), _np(theirs), **tol, err_msg=where)
    elif isinstance(theirs, dict):
        assert sorted(ours) == sorted(theirs), (where, sorted(ours), sorted(theirs))
        for k in theirs:
            _assert_state_close(ours[k], theirs[k], tol, f"{where}[{k!r}]")
    elif isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs)):
            _assert_state_close(a, b, tol, f"{where}[{i}]")
    elif theirs is None or isinstance(theirs, (bool, int)):
        assert ours == theirs and type(ours) is type(theirs), (where, ours, theirs)
    else:
        assert type(ours) is type(theirs), (where, type(ours), type(theirs))
        np.testing.assert_allclose(ours, theirs, **tol, err_msg=where)


def _compare_state(opt, topt, ours, theirs, tol):
    for i, (p, q) in enumerate(zip(ours, theirs)):
        _assert_state_close(opt.state[p], topt.state[q], tol, f"state of parameter {i}")


def _to_ours(value):
    """A torch state_dict (or part of one) with every tensor converted to a Lantern Tensor."""
    torch = torch_or_skip()
    if torch.is_tensor(value):
        return F.tensor(value.detach().numpy().copy())
    if isinstance(value, dict):
        return {k: _to_ours(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_ours(v) for v in value]
    return copy.deepcopy(value)


def _to_torch(value):
    torch = torch_or_skip()
    if isinstance(value, F.Tensor):
        return torch.from_numpy(np.array(_np(value)))
    if isinstance(value, dict):
        return {k: _to_torch(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_torch(v) for v in value]
    return copy.deepcopy(value)


# ---------------------------------------------------------------------- Adamax, ASGD, Rprop
CONFIGS = [
    ("Adamax", dict()),
    ("Adamax", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-4)),
    ("Adamax", dict(lr=0.01, weight_decay=0.1)),
    ("Adamax", dict(lr=0.01, maximize=True)),
    ("Adamax", dict(lr=0.01, weight_decay=0.05, maximize=True)),
    ("ASGD", dict()),  # t0 = 1e6: the average is a copy of the parameter
    ("ASGD", dict(lr=0.05, lambd=0.01, alpha=0.5, t0=5)),
    ("ASGD", dict(lr=0.05, t0=0, weight_decay=0.1)),
    ("ASGD", dict(lr=0.05, t0=3, maximize=True)),
    ("ASGD", dict(lr=0.02, lambd=1e-3, t0=10, weight_decay=0.05, maximize=True)),
    ("Rprop", dict()),
    ("Rprop", dict(lr=0.05, etas=(0.3, 1.5))),
    ("Rprop", dict(lr=0.05, step_sizes=(1e-3, 0.08))),  # both clamps are hit
    ("Rprop", dict(lr=0.05, maximize=True)),
    ("Rprop", dict(lr=0.1, etas=(0.6, 1.1), step_sizes=(0.02, 1.0), maximize=True)),
]
NAMES = ["Adamax", "ASGD", "Rprop"]
CONFIGS_BY_NAME = {
    "Adamax": dict(lr=0.01, weight_decay=0.05),
    "ASGD": dict(lr=0.05, lambd=0.01, t0=4, weight_decay=0.01),
    "Rprop": dict(lr=0.05, step_sizes=(1e-3, 0.2)),
}


def _ids(cfg):
    name, kw = cfg
    return name + "-" + ",".join(f"{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cfg", CONFIGS, ids=[_ids(c) for c in CONFIGS])
def test_trajectory_matches_torch(cfg, dtype, device):
    torch = torch_or_skip()
    name, kw = cfg
    steps = 25
    inits, grads = _problem(dtype, steps)
    ours, theirs = _make_params(inits, device)
    opt = getattr(optim, name)(ours, **kw)
    topt = getattr(torch.optim, name)(theirs, **kw)
    tol = _tol(dtype)
    for t in range(steps):
        _set_grads(ours, theirs, grads[t], device)
        opt.step()
        topt.step()
        for p, q in zip(ours, theirs):
            np.testing.assert_allclose(_np(p), _np(q), **tol, err_msg=f"step {t}")
    for p in ours:
        assert p.dtype == F.tensor(np.zeros(0, dtype)).dtype and p.is_leaf and p.requires_grad
    _compare_state(opt, topt, ours, theirs, tol)
    for p in ours:
        st = opt.state[p]
        assert st["step"].dtype == F.float32
        if name == "ASGD":  # eta and mu are float32 scalars, as in PyTorch
            assert st["eta"].dtype == F.float32 and st["mu"].dtype == F.float32


@pytest.mark.parametrize("name,kw", [("Adamax", dict(lr=0.01, weight_decay=0.1)),
                                     ("ASGD", dict(lr=0.05, t0=3, weight_decay=0.1)),
                                     ("Rprop", dict(lr=0.05))])
def test_complex_parameters_match_torch(name, kw):
    torch = torch_or_skip()
    steps = 12
    inits, grads = _problem(np.complex128, steps, seed=3, complex_=True)
    ours, theirs = _make_params(inits)
    opt = getattr(optim, name)(ours, **kw)
    topt = getattr(torch.optim, name)(theirs, **kw)
    for t in range(steps):
        _set_grads(ours, theirs, grads[t])
        opt.step()
        topt.step()
    tol = dict(rtol=1e-10, atol=1e-12)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(_np(p), _np(q), **tol)
    _compare_state(opt, topt, ours, theirs, tol)


def test_asgd_schedule_follows_the_default_dtype():
    # eta and mu are stored (and rounded) in the default dtype, as torch.as_tensor does
    torch = torch_or_skip()
    prev, tprev = F.get_default_dtype(), torch.get_default_dtype()
    F.set_default_dtype(F.float64)
    torch.set_default_dtype(torch.float64)
    try:
        steps = 12
        inits, grads = _problem(np.float64, steps, seed=6)
        ours, theirs = _make_params(inits)
        kw = dict(lr=0.05, lambd=0.01, t0=3)
        opt, topt = optim.ASGD(ours, **kw), torch.optim.ASGD(theirs, **kw)
        for t in range(steps):
            _set_grads(ours, theirs, grads[t])
            opt.step()
            topt.step()
        for p, q in zip(ours, theirs):
            np.testing.assert_allclose(_np(p), _np(q), rtol=1e-12, atol=1e-14)
            assert opt.state[p]["eta"].dtype == F.float64
        _compare_state(opt, topt, ours, theirs, dict(rtol=1e-12, atol=1e-14))
    finally:
        F.set_default_dtype(prev)
        torch.set_default_dtype(tprev)


def test_rprop_nan_gradient_is_skipped_as_in_torch():
    # torch.sign(nan) is 0: the step size is kept and the element does not move
    torch = torch_or_skip()
    ours, theirs = _make_params([np.linspace(-1.0, 1.0, 6)])
    opt, topt = optim.Rprop(ours, lr=0.1), torch.optim.Rprop(theirs, lr=0.1)
    rng = np.random.default_rng(2)
    for t in range(6):
        g = rng.standard_normal(6)
        if t in (1, 2):
            g[[0, 3]] = np.nan
        _set_grads(ours, theirs, [g])
        opt.step()
        topt.step()
        np.testing.assert_allclose(_np(ours[0]), _np(theirs[0]), rtol=1e-12, atol=0)
    _compare_state(opt, topt, ours, theirs, dict(rtol=1e-12, atol=0))


def test_param_groups_match_torch():
    torch = torch_or_skip()
    steps = 15
    inits, grads = _problem(np.float64, steps, seed=1)
    ours, theirs = _make_params(inits)
    for name, g0, g1 in [("Adamax", dict(lr=0.01), dict(lr=0.05, betas=(0.5, 0.9))),
                         ("ASGD", dict(lr=0.01), dict(lr=0.05, t0=2, lambd=0.1)),
                         ("Rprop", dict(lr=0.01), dict(lr=0.1, etas=(0.2, 2.0)))]:
        ours, theirs = _make_params(inits)
        opt = getattr(optim, name)([dict(params=ours[:2], **g0), dict(params=ours[2:], **g1)])
        topt = getattr(torch.optim, name)([dict(params=theirs[:2], **g0),
                                           dict(params=theirs[2:], **g1)])
        for t in range(steps):
            _set_grads(ours, theirs, grads[t])
            opt.step()
            topt.step()
        for p, q in zip(ours, theirs):
            np.testing.assert_allclose(_np(p), _np(q), rtol=1e-10, atol=1e-12, err_msg=name)
        _compare_state(opt, topt, ours, theirs, dict(rtol=1e-10, atol=1e-12))


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_continues_the_trajectory(name):
    steps = 20
    inits, grads = _problem(np.float64, steps, seed=4)
    kw = CONFIGS_BY_NAME[name]
    ref = [F.tensor(a, requires_grad=True) for a in inits]
    ref_opt = getattr(optim, name)(ref, **kw)
    for t in range(steps):
        for p, g in zip(ref, grads[t]):
            p.grad = None if g is None else F.tensor(g)
        ref_opt.step()

    ps = [F.tensor(a, requires_grad=True) for a in inits]
    opt = getattr(optim, name)(ps, **kw)
    for t in range(steps // 2):
        for p, g in zip(ps, grads[t]):
            p.grad = None if g is None else F.tensor(g)
        opt.step()
    # checkpoint through pickle, then resume in a fresh optimizer over fresh parameters
    blob = pickle.dumps({"params": [_np(p) for p in ps], "opt": opt.state_dict()})
    ckpt = pickle.loads(blob)
    ps2 = [F.tensor(a, requires_grad=True) for a in ckpt["params"]]
    opt2 = getattr(optim, name)(ps2, **kw)
    opt2.load_state_dict(ckpt["opt"])
    for t in range(steps // 2, steps):
        for p, p2, g in zip(ps, ps2, grads[t]):
            p.grad = p2.grad = None if g is None else F.tensor(g)
        opt.step()
        opt2.step()
    for p, p2, r in zip(ps, ps2, ref):
        np.testing.assert_array_equal(_np(p2), _np(r))
        np.testing.assert_array_equal(_np(p), _np(r))  # the original was not disturbed


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", NAMES)
def test_state_dicts_convert_both_ways_and_resume_alike(name, dtype):
    # Lantern -> torch -> Lantern: every resumed run follows the uninterrupted torch run
    torch = torch_or_skip()
    steps = 16
    inits, grads = _problem(dtype, steps, seed=8)
    kw = CONFIGS_BY_NAME[name]
    ours, theirs = _make_params(inits)
    opt = getattr(optim, name)(ours, **kw)
    topt = getattr(torch.optim, name)(theirs, **kw)
    for t in range(steps // 2):
        _set_grads(ours, theirs, grads[t])
        opt.step()
        topt.step()
    # ours -> a fresh torch optimizer
    theirs2 = [torch.tensor(_np(p).copy(), requires_grad=True) for p in ours]
    topt2 = getattr(torch.optim, name)(theirs2, **kw)
    topt2.load_state_dict(_to_torch(opt.state_dict()))
    # that torch optimizer's state -> a fresh one of ours
    ours2 = [F.tensor(_np(q).copy(), requires_grad=True) for q in theirs2]
    opt2 = getattr(optim, name)(ours2, **kw)
    opt2.load_state_dict(_to_ours(topt2.state_dict()))
    _compare_state(opt2, topt2, ours2, theirs2, dict(rtol=0, atol=0))
    for p in ours2:
        assert opt2.state[p]["step"].dtype == F.float32
    for t in range(steps // 2, steps):
        _set_grads(ours, theirs, grads[t])
        _set_grads(ours2, theirs2, grads[t])
        for o in (opt, topt, opt2, topt2):
            o.step()
    tol = _tol(dtype)
    for p, q, p2, q2 in zip(ours, theirs, ours2, theirs2):
        np.testing.assert_allclose(_np(p), _np(q), **tol)
        np.testing.assert_allclose(_np(p2), _np(q2), **tol)
    _compare_state(opt2, topt2, ours2, theirs2, tol)


def _raised(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the exception itself is what is compared
        return e
    raise AssertionError("no exception raised")


@pytest.mark.parametrize("name,kw", [
    ("Adamax", dict(lr=-1.0)), ("Adamax", dict(eps=-1e-8)), ("Adamax", dict(betas=(1.0, 0.9))),
    ("Adamax", dict(betas=(0.9, -0.1))), ("Adamax", dict(weight_decay=-0.1)),
    ("ASGD", dict(lr=-0.1)), ("ASGD", dict(weight_decay=-1)),
    ("Rprop", dict(lr=-0.1)), ("Rprop", dict(etas=(1.5, 2.0))), ("Rprop", dict(etas=(0.5, 0.9))),
    ("Rprop", dict(etas=(0.0, 1.2))),
    ("LBFGS", dict(lr=-1)),
])
def test_invalid_arguments_raise_like_torch(name, kw):
    torch = torch_or_skip()
    theirs = _raised(lambda: getattr(torch.optim, name)([torch.zeros(3, requires_grad=True)],
                                                        **kw))
    ours = _raised(lambda: getattr(optim, name)([F.zeros(3, requires_grad=True)], **kw))
    assert type(ours) is type(theirs) and str(ours) == str(theirs), (ours, theirs)


def test_errors():
    w = F.tensor(np.zeros(3), requires_grad=True)
    for cls in (optim.Adamax, optim.ASGD, optim.Rprop):
        with pytest.raises(NotImplementedError, match="differentiable"):
            cls([w], differentiable=True)
        opt = cls([w])
        w.grad = F.tensor(np.ones(4))
        with pytest.raises(RuntimeError, match=r"shape \(3,\).*shape \(4,\)"):
            opt.step()
        w.grad = None
    with pytest.raises(TypeError):
        optim.LBFGS([w]).step()  # the closure is required
    with pytest.raises(TypeError, match="closure"):
        optim.LBFGS([w]).step(None)


# ---------------------------------------------------------------------- LBFGS
def _rosenbrock(ps, lib, data):
    (x,) = ps
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def _least_squares(ps, lib, data):
    # `unused` never gets a gradient: it enters the flat gradient as zeros
    w, b, _unused = ps
    a, y = (lib.tensor(v) for v in data)
    return ((a @ w + b - y) ** 2).sum()


def _lbfgs_problem(kind, dtype):
    rng = np.random.default_rng(11)
    if kind == "rosenbrock":
        return _rosenbrock, [np.array([-1.5, 2.0], dtype)], None
    a = rng.standard_normal((12, 3)).astype(dtype)
    y = rng.standard_normal((12, 2)).astype(dtype)
    inits = [rng.standard_normal((3, 2)).astype(dtype), np.zeros(2, dtype),
             rng.standard_normal(4).astype(dtype)]
    return _least_squares, inits, (a, y)


def _closure(opt, ps, loss_fn, lib, data):
    def closure():
        opt.zero_grad()
        loss = loss_fn(ps, lib, data)
        loss.backward()
        return loss
    return closure


LBFGS_CONFIGS = [
    ("rosenbrock", dict(lr=0.1, max_iter=10)),
    ("rosenbrock", dict(lr=1, max_iter=4, history_size=3)),
    ("rosenbrock", dict(line_search_fn="strong_wolfe")),
    ("rosenbrock", dict(line_search_fn="strong_wolfe", history_size=4, max_iter=6)),
    ("least_squares", dict(lr=0.5, max_iter=5)),
    ("least_squares", dict(lr=0.2, history_size=2, max_eval=7)),
    ("least_squares", dict(line_search_fn="strong_wolfe", max_iter=4)),
    ("least_squares", dict(line_search_fn="strong_wolfe", history_size=2,
                           tolerance_grad=1e-5, tolerance_change=1e-6)),
]

# PyTorch's dot products (MKL) and `add_(..., alpha=)` (a fused multiply-add) round differently
# in the last bit from NumPy's. Over 8 steps of up to 20 iterations that grows to ~1e-9 here
# (Rosenbrock's curved valley; the flat bottom of the least-squares problem, where both stop
# once a step changes the loss by less than tolerance_change). The state holds differences of
# nearly equal gradients, which lose digits to cancellation.
_LBFGS_TOL = dict(rtol=1e-8, atol=1e-10)
_LBFGS_STATE_TOL = dict(rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("kind,kw", LBFGS_CONFIGS, ids=[_ids(c) for c in LBFGS_CONFIGS])
def test_lbfgs_iterates_match_torch(kind, kw):
    torch = torch_or_skip()
    loss_fn, inits, data = _lbfgs_problem(kind, np.float64)
    ours, theirs = _make_params(inits)
    opt = optim.LBFGS(ours, **kw)
    topt = torch.optim.LBFGS(theirs, **kw)
    closure = _closure(opt, ours, loss_fn, F, data)
    tclosure = _closure(topt, theirs, loss_fn, torch, data)
    for t in range(8):
        loss, tloss = opt.step(closure), topt.step(tclosure)
        assert isinstance(loss, F.Tensor)
        np.testing.assert_allclose(loss.item(), tloss.item(), **_LBFGS_TOL)
        for p, q in zip(ours, theirs):
            np.testing.assert_allclose(_np(p), _np(q), **_LBFGS_TOL, err_msg=f"step {t}")
        _compare_state(opt, topt, ours[:1], theirs[:1], _LBFGS_STATE_TOL)
        assert not opt.state[ours[-1]] if len(ours) > 1 else True  # state is on the first only
    if kind == "rosenbrock" and kw.get("line_search_fn"):
        np.testing.assert_allclose(_np(ours[0]), [1.0, 1.0], atol=1e-4)


@pytest.mark.parametrize("kind", ["rosenbrock", "least_squares"])
@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_float32_matches_torch(kind, line_search_fn):
    torch = torch_or_skip()
    loss_fn, inits, data = _lbfgs_problem(kind, np.float32)
    kw = dict(line_search_fn=line_search_fn, lr=1 if line_search_fn else 0.05, max_iter=5)
    ours, theirs = _make_params(inits)
    opt, topt = optim.LBFGS(ours, **kw), torch.optim.LBFGS(theirs, **kw)
    closure = _closure(opt, ours, loss_fn, F, data)
    tclosure = _closure(topt, theirs, loss_fn, torch, data)
    for _ in range(3):
        opt.step(closure)
        topt.step(tclosure)
    # float32 rounding differences grow along the ill-conditioned Rosenbrock valley
    tol = dict(rtol=1e-3, atol=1e-3) if kind == "rosenbrock" else dict(rtol=1e-4, atol=1e-5)
    for p, q in zip(ours, theirs):
        assert p.dtype == F.float32
        np.testing.assert_allclose(_np(p), _np(q), **tol)
    st = opt.state[ours[0]]
    assert st["d"].dtype == F.float32 and all(r.dtype == F.float32 for r in st["ro"])


@pytest.mark.parametrize("kind,kw", [
    ("rosenbrock", dict(line_search_fn="strong_wolfe", history_size=3, max_iter=5)),
    ("least_squares", dict(lr=0.5, max_iter=3, history_size=2)),
])
def test_lbfgs_state_dict_round_trips_and_resumes(kind, kw):
    torch = torch_or_skip()
    loss_fn, inits, data = _lbfgs_problem(kind, np.float64)

    def run(ps, opt, lib, steps):
        closure = _closure(opt, ps, loss_fn, lib, data)
        for _ in range(steps):
            opt.step(closure)

    ref = [F.tensor(a, requires_grad=True) for a in inits]
    run(ref, optim.LBFGS(ref, **kw), F, 6)

    ps = [F.tensor(a, requires_grad=True) for a in inits]
    opt = optim.LBFGS(ps, **kw)
    run(ps, opt, F, 3)
    # Lantern -> pickle -> Lantern resumes exactly
    ckpt = pickle.loads(pickle.dumps({"params": [_np(p) for p in ps], "opt": opt.state_dict()}))
    ps2 = [F.tensor(a, requires_grad=True) for a in ckpt["params"]]
    opt2 = optim.LBFGS(ps2, **kw)
    opt2.load_state_dict(ckpt["opt"])
    # Lantern -> torch -> Lantern
    theirs = [torch.tensor(_np(p).copy(), requires_grad=True) for p in ps]
    topt = torch.optim.LBFGS(theirs, **kw)
    topt.load_state_dict(_to_torch(opt.state_dict()))
    ps3 = [F.tensor(_np(q).copy(), requires_grad=True) for q in theirs]
    opt3 = optim.LBFGS(ps3, **kw)
    opt3.load_state_dict(_to_ours(topt.state_dict()))
    _compare_state(opt3, topt, ps3[:1], theirs[:1], dict(rtol=0, atol=0))

    run(ps2, opt2, F, 3)
    run(ps3, opt3, F, 3)
    run(theirs, topt, torch, 3)
    for p2, p3, q, r in zip(ps2, ps3, theirs, ref):
        np.testing.assert_array_equal(_np(p2), _np(r))
        np.testing.assert_array_equal(_np(p3), _np(r))
        np.testing.assert_allclose(_np(q), _np(r), **_LBFGS_TOL)


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_complex_parameters_match_torch(line_search_fn):
    # complex parameters enter the flat vectors as (real, imaginary) pairs, as in PyTorch
    torch = torch_or_skip()
    rng = np.random.default_rng(5)
    w = rng.uniform(0.5, 2.0, (2, 3))
    c1, c2 = (rng.standard_normal((2, 3)) + 1j * rng.standard_normal((2, 3)) for _ in range(2))
    inits = [rng.standard_normal((2, 3)) + 1j * rng.standard_normal((2, 3)),
             rng.standard_normal(2)]

    def loss_fn(ps, lib, data):
        z, r = ps
        return ((lib.tensor(w) * (z - lib.tensor(c1)).abs() ** 2).sum()
                + 0.1 * ((z - lib.tensor(c2)).abs() ** 4).sum() + ((r - 1.0) ** 4).sum())

    kw = dict(lr=0.2 if line_search_fn is None else 1, max_iter=5, line_search_fn=line_search_fn)
    ours, theirs = _make_params(inits)
    opt, topt = optim.LBFGS(ours, **kw), torch.optim.LBFGS(theirs, **kw)
    closure = _closure(opt, ours, loss_fn, F, None)
    tclosure = _closure(topt, theirs, loss_fn, torch, None)
    for t in range(4):
        opt.step(closure)
        topt.step(tclosure)
        for p, q in zip(ours, theirs):
            np.testing.assert_allclose(_np(p), _np(q), **_LBFGS_TOL, err_msg=f"step {t}")
    assert opt.state[ours[0]]["d"].shape == (14,)  # 6 complex as 12 reals, then 2 reals


def test_lbfgs_stops_at_a_stationary_point_and_on_tolerances():
    torch = torch_or_skip()
    loss_fn, inits, data = _lbfgs_problem("least_squares", np.float64)
    ours, theirs = _make_params(inits)
    kw = dict(line_search_fn="strong_wolfe", tolerance_grad=1e-9, tolerance_change=1e-12)
    opt, topt = optim.LBFGS(ours, **kw), torch.optim.LBFGS(theirs, **kw)
    closure = _closure(opt, ours, loss_fn, F, data)
    tclosure = _closure(topt, theirs, loss_fn, torch, data)
    for _ in range(4):
        opt.step(closure)
        topt.step(tclosure)
    st, tst = opt.state[ours[0]], topt.state[theirs[0]]
    assert (st["func_evals"], st["n_iter"]) == (tst["func_evals"], tst["n_iter"])
    # at the minimum a step only evaluates the closure once
    evals = st["func_evals"]
    before = [_np(p).copy() for p in ours]
    opt.step(closure)
    assert st["func_evals"] == evals + 1
    for p, b in zip(ours, before):
        np.testing.assert_array_equal(_np(p), b)


def test_lbfgs_errors_like_torch():
    torch = torch_or_skip()
    # a second parameter group, at construction and when added later
    e = _raised(lambda: optim.LBFGS([{"params": [F.zeros(2, requires_grad=True)]},
                                     {"params": [F.zeros(2, requires_grad=True)]}]))
    te = _raised(lambda: torch.optim.LBFGS([{"params": [torch.zeros(2, requires_grad=True)]},
                                            {"params": [torch.zeros(2, requires_grad=True)]}]))
    assert type(e) is type(te) and str(e) == str(te)
    w = F.tensor(np.array([1.0, -2.0]), requires_grad=True)
    opt = optim.LBFGS([w])
    opt.add_param_group({"params": [F.zeros(2, requires_grad=True)]})
    with pytest.raises(ValueError, match="parameter groups"):
        opt.step(lambda: (w ** 2).sum())
    # an unknown line search
    tw = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    topt = torch.optim.LBFGS([tw], line_search_fn="backtracking")
    opt = optim.LBFGS([w], line_search_fn="backtracking")

    def closure(opt, x):
        def f():
            opt.zero_grad()
            loss = (x ** 2).sum()
            loss.backward()
            return loss
        return f

    te = _raised(lambda: topt.step(closure(topt, tw)))
    e = _raised(lambda: opt.step(closure(opt, w)))
    assert type(e) is type(te) and str(e) == str(te)
