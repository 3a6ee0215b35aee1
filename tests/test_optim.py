"""framework.optim against torch.optim: optimizer trajectories for the same gradients, state
dicts (round trips, and PyTorch <-> Lantern), parameter groups, hooks, errors, and every learning
rate scheduler's sequence."""
import copy
import pickle
import warnings

import numpy as np
import pytest

import framework as F
import framework.optim as optim
from framework.optim import lr_scheduler as lrs


def _torch():
    return pytest.importorskip("torch", reason="torch (the parity extra) is not installed")


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
    rng = np.random.default_rng(seed)

    def draw(s):
        a = rng.standard_normal(s)
        if complex_:
            a = a + 1j * rng.standard_normal(s)
        return np.asarray(a, dtype=dtype)

    inits = [draw(s) for s in SHAPES]
    grads = [[draw(s) for s in SHAPES] for _ in range(steps)]
    # parameter 2 gets no gradient on some steps: its update (and its step count) is skipped
    for t in (3, 7, 8):
        if t < steps:
            grads[t][2] = None
    return inits, grads


def _make_params(inits, device="cpu"):
    ours = [F.tensor(a, device=device, requires_grad=True) for a in inits]
    torch = _torch()
    theirs = [torch.tensor(a, requires_grad=True) for a in inits]
    return ours, theirs


def _set_grads(ours, theirs, grads, device="cpu"):
    torch = _torch()
    for p, q, g in zip(ours, theirs, grads):
        if g is None:
            p.grad = None
            q.grad = None
        else:
            p.grad = F.tensor(g, device=device)
            q.grad = torch.tensor(g)


def _tol(dtype):
    return dict(rtol=1e-10, atol=1e-12) if np.dtype(dtype).itemsize >= 8 and \
        np.dtype(dtype) != np.complex64 else dict(rtol=2e-5, atol=2e-6)


def _compare_state(opt, topt, ours, theirs, tol):
    for p, q in zip(ours, theirs):
        s, ts = opt.state[p], topt.state[q]
        assert sorted(s) == sorted(ts), (sorted(s), sorted(ts))
        for k in ts:
            np.testing.assert_allclose(_np(s[k]), _np(ts[k]), **tol, err_msg=k)
            assert isinstance(s[k], F.Tensor)
            assert tuple(s[k].shape) == tuple(ts[k].shape), k


CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.1, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.8, weight_decay=0.05, maximize=True)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.05, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, maximize=True)),
    ("Adam", dict(lr=0.02, betas=(0.3, 0.9), eps=1e-6)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.05, maximize=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=0.01, maximize=True, betas=(0.8, 0.99))),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, centered=True, momentum=0.5, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, maximize=True, eps=1e-4)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05)),
    ("Adagrad", dict(lr=0.1, weight_decay=0.1, initial_accumulator_value=0.5)),
    ("Adagrad", dict(lr=0.1, eps=1e-3, maximize=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8)),
    ("Adadelta", dict(lr=0.5, weight_decay=0.1, eps=1e-4)),
    ("Adadelta", dict(lr=0.5, maximize=True)),
    ("NAdam", dict(lr=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("NAdam", dict(lr=0.01, momentum_decay=0.01, betas=(0.8, 0.99))),
    ("NAdam", dict(lr=0.01, maximize=True)),
    ("RAdam", dict(lr=0.01)),
    ("RAdam", dict(lr=0.01, weight_decay=0.1)),
    ("RAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("RAdam", dict(lr=0.01, maximize=True, betas=(0.9, 0.99))),
    ("RAdam", dict(lr=0.01, betas=(0.9, 0.6))),  # rho_inf = 4 <= 5: never rectified
]
ALL = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "NAdam", "RAdam"]


def _ids(cfg):
    name, kw = cfg
    return name + "-" + ",".join(f"{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cfg", CONFIGS, ids=[_ids(c) for c in CONFIGS])
def test_trajectory_matches_torch(cfg, dtype, device):
    torch = _torch()
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


@pytest.mark.parametrize("name,kw", [("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
                                     ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
                                     ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)),
                                     ("Adagrad", dict(lr=0.1)), ("Adadelta", dict(lr=0.5)),
                                     ("NAdam", dict(lr=0.01)), ("RAdam", dict(lr=0.01))])
def test_complex_parameters_match_torch(name, kw):
    torch = _torch()
    steps = 12
    inits, grads = _problem(np.complex128, steps, seed=3, complex_=True)
    ours, theirs = _make_params(inits)
    opt = getattr(optim, name)(ours, **kw)
    topt = getattr(torch.optim, name)(theirs, **kw)
    for t in range(steps):
        _set_grads(ours, theirs, grads[t])
        opt.step()
        topt.step()
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(_np(p), _np(q), rtol=1e-10, atol=1e-12)
    _compare_state(opt, topt, ours, theirs, dict(rtol=1e-10, atol=1e-12))


def test_param_groups_match_torch():
    torch = _torch()
    steps = 20
    inits, grads = _problem(np.float64, steps, seed=1)
    ours, theirs = _make_params(inits)

    def groups(ps):
        return [{"params": ps[:2], "lr": 0.01},
                {"params": [ps[2]], "lr": 0.1, "weight_decay": 0.1, "amsgrad": True,
                 "betas": (0.5, 0.9)}]

    opt = optim.Adam(groups(ours), lr=0.5, eps=1e-6)
    topt = torch.optim.Adam(groups(theirs), lr=0.5, eps=1e-6)
    assert opt.param_groups[0]["eps"] == 1e-6 and opt.param_groups[1]["lr"] == 0.1
    for t in range(steps):
        _set_grads(ours, theirs, grads[t])
        opt.step()
        topt.step()
        if t == 9:  # options can be changed between steps
            opt.param_groups[0]["lr"] = topt.param_groups[0]["lr"] = 0.03
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(_np(p), _np(q), rtol=1e-10, atol=1e-12)
    _compare_state(opt, topt, ours, theirs, dict(rtol=1e-10, atol=1e-12))
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    for g, tg in zip(sd["param_groups"], tsd["param_groups"]):
        assert set(g) == set(tg)
        for k in tg:
            assert g[k] == tg[k], k


def test_add_param_group_matches_torch():
    torch = _torch()
    steps = 14
    inits, grads = _problem(np.float64, steps, seed=2)
    ours, theirs = _make_params(inits)
    for name, kw in [("SGD", dict(lr=0.1, momentum=0.9)), ("Adagrad", dict(lr=0.1)),
                     ("RMSprop", dict(lr=0.01, momentum=0.3))]:
        ours, theirs = _make_params(inits)
        opt = getattr(optim, name)(ours[:2], **kw)
        topt = getattr(torch.optim, name)(theirs[:2], **kw)
        for t in range(steps):
            if t == 5:
                opt.add_param_group({"params": ours[2], "lr": 0.02})
                topt.add_param_group({"params": theirs[2], "lr": 0.02})
            _set_grads(ours, theirs, grads[t])
            opt.step()
            topt.step()
        for p, q in zip(ours, theirs):
            np.testing.assert_allclose(_np(p), _np(q), rtol=1e-10, atol=1e-12, err_msg=name)


FLAT_CONFIGS = [dict(lr=0.01), dict(lr=0.01, amsgrad=True, weight_decay=0.1),
                dict(lr=0.02, maximize=True, weight_decay=0.05, betas=(0.3, 0.9)),
                dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, amsgrad=True)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kw", FLAT_CONFIGS, ids=[str(i) for i in range(len(FLAT_CONFIGS))])
def test_adam_flat_path_equals_per_tensor_path_and_torch(kw, dtype, device):
    """Every parameter has a gradient at every step, so the group takes the flat path; it must
    give bit-identical values to foreach=False and match torch."""
    torch = _torch()
    steps = 25
    inits, grads = _problem(dtype, steps, seed=9)
    grads = [[g if g is not None else np.ones_like(inits[2]) for g in gs] for gs in grads]
    flat, theirs = _make_params(inits, device)
    loop = [F.tensor(a, device=device, requires_grad=True) for a in inits]
    opt_flat = optim.Adam(flat, **kw)
    opt_loop = optim.Adam(loop, foreach=False, **kw)
    topt = torch.optim.Adam(theirs, **kw)
    for t in range(steps):
        _set_grads(flat, theirs, grads[t], device)
        for p, g in zip(loop, grads[t]):
            p.grad = F.tensor(g, device=device)
        opt_flat.step()
        opt_loop.step()
        topt.step()
    assert opt_flat._flat_cache[0].views is not None  # the flat path ran
    assert "_flat_cache" not in opt_loop.__dict__
    for a, b, q in zip(flat, loop, theirs):
        np.testing.assert_array_equal(_np(a), _np(b))
        np.testing.assert_allclose(_np(a), _np(q), **_tol(dtype))
    _compare_state(opt_flat, topt, flat, theirs, _tol(dtype))
    for a, b in zip(flat, loop):
        for k in opt_loop.state[b]:
            np.testing.assert_array_equal(_np(opt_flat.state[a][k]), _np(opt_loop.state[b][k]))


def test_adam_flat_path_survives_missing_grads_and_reloads():
    """A step where one gradient is missing falls back to the per-tensor path; loading a state
    dict re-gathers the state into flat buffers; the result equals the per-tensor path's."""
    steps = 16
    inits, grads = _problem(np.float64, steps, seed=10)
    for gs in grads:
        gs[2] = np.ones(()) if gs[2] is None else gs[2]
    grads[5][0] = grads[5][1] = None  # the first group skips a step (its counts stay equal)
    grads[12][2] = None
    runs = []
    for foreach in (None, False):
        ps = [F.tensor(a, requires_grad=True) for a in inits]
        opt = optim.AdamW([{"params": ps[:2]}, {"params": ps[2:], "lr": 0.1}], lr=0.01,
                          foreach=foreach)
        for t in range(steps):
            for p, g in zip(ps, grads[t]):
                p.grad = None if g is None else F.tensor(g)
            opt.step()
            if t == 9:  # checkpoint and resume into a fresh optimizer
                sd = pickle.loads(pickle.dumps(opt.state_dict()))
                opt = optim.AdamW([{"params": ps[:2]}, {"params": ps[2:]}], foreach=foreach)
                opt.load_state_dict(sd)
        runs.append((ps, opt))
    (ps_a, opt_a), (ps_b, opt_b) = runs
    for a, b in zip(ps_a, ps_b):
        np.testing.assert_array_equal(_np(a), _np(b))
    # the first group went flat again after the skipped step and after loading (re-gathered)
    flat_m = opt_a._flat_cache[0].M
    assert all(np.shares_memory(opt_a.state[p]["exp_avg"]._data, flat_m) for p in ps_a[:2])
    assert opt_a.state[ps_a[0]]["step"].item() == steps - 1
    for a, b in zip(ps_a, ps_b):
        for k in opt_b.state[b]:
            np.testing.assert_array_equal(_np(opt_a.state[a][k]), _np(opt_b.state[b][k]))


def test_adam_flat_state_is_shared_views():
    ps = [F.tensor(np.ones(s), requires_grad=True) for s in [(3, 2), (4,)]]
    opt = optim.Adam(ps, foreach=True)
    for p in ps:
        p.grad = F.ones_like(p)
    opt.step()
    m0 = opt.state[ps[0]]["exp_avg"]
    flat_m = opt._flat_cache[0].M
    assert flat_m.shape == (10,)
    assert all(np.shares_memory(opt.state[p]["exp_avg"]._data, flat_m) for p in ps)
    sd = opt.state_dict()
    assert sd["state"][0]["exp_avg"] is m0 and tuple(m0.shape) == (3, 2)
    opt.step()
    np.testing.assert_allclose(_np(m0), 1 - 0.9 ** 2)  # the state tensor stays live
    # foreach=None leaves a group of large tensors on the per-tensor path
    big = [F.tensor(np.ones(40000), requires_grad=True) for _ in range(2)]
    opt2 = optim.Adam(big)
    for p in big:
        p.grad = F.ones_like(p)
    opt2.step()
    assert not opt2._flat_cache[0].eligible and opt2._flat_cache[0].views is None


def test_step_on_real_backward_and_zero_grad():
    torch = _torch()
    rng = np.random.default_rng(5)
    w0, x = rng.standard_normal((4, 3)), rng.standard_normal((8, 4))
    w = F.tensor(w0, requires_grad=True)
    tw = torch.tensor(w0, requires_grad=True)
    opt = optim.AdamW([w], lr=0.05)
    topt = torch.optim.AdamW([tw], lr=0.05)
    for _ in range(15):
        opt.zero_grad()
        topt.zero_grad()
        assert w.grad is None
        ((F.tensor(x) @ w).tanh() ** 2).sum().backward()
        ((torch.tensor(x) @ tw).tanh() ** 2).sum().backward()
        opt.step()
        topt.step()
    np.testing.assert_allclose(_np(w), _np(tw), rtol=1e-10, atol=1e-12)
    # set_to_none=False keeps a zero-filled gradient
    opt.zero_grad(set_to_none=False)
    assert w.grad is not None and not np.any(_np(w.grad)) and not w.grad.requires_grad


def test_closure_runs_with_grad_enabled():
    torch = _torch()
    rng = np.random.default_rng(6)
    w0 = rng.standard_normal(3)
    w = F.tensor(w0, requires_grad=True)
    tw = torch.tensor(w0, requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.5)
    topt = torch.optim.SGD([tw], lr=0.1, momentum=0.5)

    def closure():
        opt.zero_grad()
        loss = ((w - 1.0) ** 2).sum()
        loss.backward()
        return loss

    def tclosure():
        topt.zero_grad()
        loss = ((tw - 1.0) ** 2).sum()
        loss.backward()
        return loss

    with F.no_grad():
        for _ in range(5):
            loss = opt.step(closure)
            tloss = topt.step(tclosure)
            assert abs(loss.item() - tloss.item()) < 1e-12
    np.testing.assert_allclose(_np(w), _np(tw), rtol=1e-12)


CONFIGS_BY_NAME = {
    "SGD": dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    "Adam": dict(lr=0.01, amsgrad=True),
    "AdamW": dict(lr=0.01, weight_decay=0.1),
    "RMSprop": dict(lr=0.01, centered=True, momentum=0.5),
    "Adagrad": dict(lr=0.1, lr_decay=0.01),
    "Adadelta": dict(lr=0.5),
    "NAdam": dict(lr=0.01),
    "RAdam": dict(lr=0.01, decoupled_weight_decay=True, weight_decay=0.1),
}


def _to_ours(sd):
    torch = _torch()
    state = {k: {kk: (F.tensor(vv.detach().numpy().copy()) if torch.is_tensor(vv) else vv)
                 for kk, vv in v.items()} for k, v in sd["state"].items()}
    return {"state": state, "param_groups": copy.deepcopy(sd["param_groups"])}


def _to_torch(sd):
    torch = _torch()
    state = {k: {kk: (torch.from_numpy(np.array(_np(vv))) if isinstance(vv, F.Tensor) else vv)
                 for kk, vv in v.items()} for k, v in sd["state"].items()}
    return {"state": state, "param_groups": copy.deepcopy(sd["param_groups"])}


@pytest.mark.parametrize("name", ALL)
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
        if name == "NAdam":
            # As in PyTorch, loading casts 'mu_product' (a float32 scalar) to the parameter's
            # dtype, so the resumed product is then kept in float64: equal to rounding.
            np.testing.assert_allclose(_np(p2), _np(r), rtol=1e-11)
        else:
            np.testing.assert_array_equal(_np(p2), _np(r))
        np.testing.assert_array_equal(_np(p), _np(r))  # the original was not disturbed


@pytest.mark.parametrize("name", ALL)
def test_torch_state_dict_loads_into_ours_and_back(name):
    torch = _torch()
    steps = 16
    inits, grads = _problem(np.float32, steps, seed=8)
    kw = CONFIGS_BY_NAME[name]
    _, theirs = _make_params(inits)
    topt = getattr(torch.optim, name)(theirs, **kw)
    tol = _tol(np.float32)
    for t in range(steps // 2):
        for q, g in zip(theirs, grads[t]):
            q.grad = None if g is None else torch.tensor(g)
        topt.step()
    # torch -> ours
    ours = [F.tensor(_np(q).copy(), requires_grad=True) for q in theirs]
    opt = getattr(optim, name)(ours, **kw)
    opt.load_state_dict(_to_ours(topt.state_dict()))
    for p, q in zip(ours, theirs):
        st = opt.state[p]
        assert sorted(st) == sorted(topt.state[q])
        if "step" in st:
            assert st["step"].dtype == F.float32 and st["step"].item() == topt.state[q]["step"]
    # ours -> a fresh torch optimizer
    theirs2 = [torch.tensor(_np(q).copy(), requires_grad=True) for q in theirs]
    topt2 = getattr(torch.optim, name)(theirs2, **kw)
    topt2.load_state_dict(_to_torch(opt.state_dict()))
    for t in range(steps // 2, steps):
        for p, q, q2, g in zip(ours, theirs, theirs2, grads[t]):
            p.grad = None if g is None else F.tensor(g)
            q.grad = None if g is None else torch.tensor(g)
            q2.grad = None if g is None else torch.tensor(g)
        opt.step()
        topt.step()
        topt2.step()
    for p, q, q2 in zip(ours, theirs, theirs2):
        np.testing.assert_allclose(_np(p), _np(q), **tol)
        np.testing.assert_array_equal(_np(q2), _np(q))


def test_load_state_dict_casts_to_the_parameter_dtype_and_copies():
    a = F.tensor(np.ones(3, np.float32), requires_grad=True)
    opt = optim.Adam([a], lr=0.1)
    sd = {"state": {0: {"step": F.tensor(3.0), "exp_avg": F.tensor(np.full(3, 0.5)),
                        "exp_avg_sq": F.tensor(np.full(3, 0.25))}},
          "param_groups": [dict(opt.state_dict()["param_groups"][0])]}
    opt.load_state_dict(sd)
    st = opt.state[a]
    assert st["exp_avg"].dtype == F.float32 and st["exp_avg_sq"].dtype == F.float32
    a.grad = F.tensor(np.ones(3, np.float32))
    opt.step()
    assert st["step"].item() == 4.0
    np.testing.assert_array_equal(_np(sd["state"][0]["exp_avg"]), np.full(3, 0.5))


def test_state_values_are_updated_in_place():
    a = F.tensor(np.ones(4), requires_grad=True)
    opt = optim.Adam([a], lr=0.1)
    a.grad = F.tensor(np.ones(4))
    opt.step()
    m, v, step = (opt.state[a][k] for k in ("exp_avg", "exp_avg_sq", "step"))
    m_arr, v_arr = m._data, v._data
    for _ in range(3):
        opt.step()
    assert opt.state[a]["exp_avg"] is m and m._data is m_arr and v._data is v_arr
    assert opt.state[a]["step"] is step and step.item() == 4.0


def test_optimizer_step_bumps_the_parameter_version():
    w = F.tensor(np.ones(3), requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    loss = (w * w).sum()  # saves w for backward
    w.grad = F.tensor(np.ones(3))
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation|version"):
        loss.backward()


def test_hooks():
    w = F.tensor(np.ones(2), requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    calls = []
    h1 = opt.register_step_pre_hook(lambda o, a, k: calls.append(("pre", o is opt)))
    h2 = opt.register_step_post_hook(lambda o, a, k: calls.append(("post", o is opt)))
    h3 = optim.optimizer.register_optimizer_step_pre_hook(lambda o, a, k: calls.append("global"))
    opt.register_state_dict_post_hook(lambda o, sd: {**sd, "extra": 1})
    opt.register_load_state_dict_pre_hook(lambda o, sd: calls.append("load-pre"))
    opt.register_load_state_dict_post_hook(lambda o: calls.append("load-post"))
    w.grad = F.tensor(np.ones(2))
    opt.step()
    assert calls == ["global", ("pre", True), ("post", True)]
    h1.remove()
    h2.remove()
    h3.remove()
    opt.step()
    assert len(calls) == 3
    sd = opt.state_dict()
    assert sd["extra"] == 1
    opt.load_state_dict(sd)
    assert calls[-2:] == ["load-pre", "load-post"]


def test_named_parameters_and_repr():
    a = F.tensor(np.ones(2), requires_grad=True)
    b = F.tensor(np.ones(3), requires_grad=True)
    opt = optim.SGD([("a", a), ("b", b)], lr=0.1)
    g = opt.state_dict()["param_groups"][0]
    assert g["param_names"] == ["a", "b"] and g["params"] == [0, 1]
    with pytest.raises(ValueError, match="with/without names"):
        opt.add_param_group({"params": [F.tensor(np.ones(1), requires_grad=True)]})
    text = repr(opt)
    assert text.startswith("SGD (") and "lr: 0.1" in text and "Parameter Group 0" in text


def test_errors():
    w = F.tensor(np.ones(3), requires_grad=True)
    for cls in (optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop, optim.Adagrad,
                optim.Adadelta, optim.NAdam, optim.RAdam):
        with pytest.raises(ValueError, match="Invalid learning rate"):
            cls([w], lr=-0.1)
    for cls in (optim.Adam, optim.AdamW, optim.NAdam, optim.RAdam):
        with pytest.raises(ValueError, match="beta parameter at index 0"):
            cls([w], betas=(1.0, 0.999))
        with pytest.raises(ValueError, match="beta parameter at index 1"):
            cls([w], betas=(0.9, -0.1))
        with pytest.raises(ValueError, match="epsilon"):
            cls([w], eps=-1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        optim.Adam([w], weight_decay=-1)
    with pytest.raises(ValueError, match="momentum"):
        optim.SGD([w], lr=0.1, momentum=-0.5)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([w], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="rho"):
        optim.Adadelta([w], rho=1.5)
    with pytest.raises(ValueError, match="alpha"):
        optim.RMSprop([w], alpha=-1)
    with pytest.raises(ValueError, match="lr_decay"):
        optim.Adagrad([w], lr_decay=-1)
    with pytest.raises(ValueError, match="momentum_decay"):
        optim.NAdam([w], momentum_decay=-1)
    nonleaf = w * 2
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([nonleaf], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(TypeError, match="iterable of Tensors"):
        optim.Adam(w)
    with pytest.raises(TypeError, match="can only optimize Tensors"):
        optim.Adam([np.ones(3)])
    with pytest.raises(TypeError, match="ordered collections"):
        optim.Adam({w})
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [w]}, {"params": [w]}], lr=0.1)
    with pytest.raises(NotImplementedError, match="differentiable"):
        optim.Adam([w], differentiable=True)
    with pytest.raises(RuntimeError, match="fused.*foreach"):
        optim.Adam([w], fused=True, foreach=True)
    # gradient that does not match its parameter
    opt = optim.Adam([w])
    w.grad = F.tensor(np.ones(4))
    with pytest.raises(RuntimeError, match=r"shape \(3,\).*shape \(4,\)"):
        opt.step()
    w.grad = F.tensor(np.ones(3, np.float32))
    with pytest.raises(RuntimeError, match="dtype"):
        opt.step()


def test_load_state_dict_errors():
    a = F.tensor(np.ones(3), requires_grad=True)
    b = F.tensor(np.ones(2), requires_grad=True)
    opt = optim.Adam([a, b], lr=0.1)
    a.grad, b.grad = F.tensor(np.ones(3)), F.tensor(np.ones(2))
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="different number of parameter groups"):
        optim.Adam([{"params": [a]}, {"params": [b]}]).load_state_dict(sd)
    with pytest.raises(ValueError, match="doesn't match the size"):
        optim.Adam([a]).load_state_dict(sd)
    swapped = optim.Adam([b, a])
    with pytest.raises(ValueError, match="'exp_avg' of parameter 0 has shape"):
        swapped.load_state_dict(sd)
    with pytest.raises(KeyError, match="param_groups"):
        opt.load_state_dict({"state": {}})


def test_float64_default_dtype_gives_float64_step():
    prev = F.get_default_dtype()
    F.set_default_dtype(F.float64)
    try:
        a = F.tensor(np.ones(2), requires_grad=True)
        opt = optim.Adam([a])
        a.grad = F.tensor(np.ones(2))
        opt.step()
        assert opt.state[a]["step"].dtype == F.float64
    finally:
        F.set_default_dtype(prev)


# ------------------------------------------------------------------------ lr schedulers
def _sched_pair(make, opt_name="SGD", opt_kw=None, n_groups=2):
    torch = _torch()
    opt_kw = dict(lr=0.1, momentum=0.9) if opt_kw is None else opt_kw
    ours = [F.tensor(np.ones(2), requires_grad=True) for _ in range(n_groups)]
    theirs = [torch.ones(2, requires_grad=True) for _ in range(n_groups)]
    groups = [{"params": [p], "lr": 0.1 * (i + 1)} for i, p in enumerate(ours)]
    tgroups = [{"params": [p], "lr": 0.1 * (i + 1)} for i, p in enumerate(theirs)]
    opt = getattr(optim, opt_name)(groups, **opt_kw)
    topt = getattr(torch.optim, opt_name)(tgroups, **opt_kw)
    return opt, topt, make(lrs, opt), make(torch.optim.lr_scheduler, topt)


def _check_groups(opt, topt, keys=("lr",)):
    for g, tg in zip(opt.param_groups, topt.param_groups):
        for k in keys:
            if k == "betas":
                assert g[k] == pytest.approx(tg[k], rel=1e-13, abs=1e-15)
            elif k in tg:
                assert g[k] == pytest.approx(tg[k], rel=1e-13, abs=1e-15), k


SCHEDULERS = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=7, gamma=0.5),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[5, 12, 12, 30], gamma=0.3),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.93),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=15, eta_min=0.001),
    "CosineAnnealingWarmRestarts": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2,
                                                                              eta_min=0.01),
    "LinearLR": lambda m, o: m.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=17),
    "ConstantLR": lambda m, o: m.ConstantLR(o, factor=0.25, total_iters=9),
    "LambdaLR": lambda m, o: m.LambdaLR(o, lr_lambda=lambda e: 0.97 ** e + 0.01 * (e % 4)),
    "LambdaLR-per-group": lambda m, o: m.LambdaLR(o, [lambda e: 1 / (e + 1), lambda e: 0.9 ** e]),
    "MultiplicativeLR": lambda m, o: m.MultiplicativeLR(o, lr_lambda=lambda e: 0.95),
    "PolynomialLR": lambda m, o: m.PolynomialLR(o, total_iters=40, power=2.0),
    "OneCycleLR-cos": lambda m, o: m.OneCycleLR(o, max_lr=[1.0, 2.0], total_steps=60),
    "OneCycleLR-linear": lambda m, o: m.OneCycleLR(o, max_lr=0.5, epochs=6, steps_per_epoch=10,
                                                   anneal_strategy="linear", pct_start=0.25),
    "OneCycleLR-three-phase": lambda m, o: m.OneCycleLR(o, max_lr=0.8, total_steps=60,
                                                        three_phase=True, div_factor=10.0),
    "CyclicLR-triangular2": lambda m, o: m.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=6,
                                                    step_size_down=4, mode="triangular2"),
    "CyclicLR-exp_range": lambda m, o: m.CyclicLR(o, base_lr=[0.01, 0.02], max_lr=0.1,
                                                  step_size_up=5, mode="exp_range", gamma=0.97),
    "SequentialLR": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=10), m.CosineAnnealingLR(o, T_max=30)],
        milestones=[10]),
    "SequentialLR-3": lambda m, o: m.SequentialLR(
        o, [m.ConstantLR(o, factor=0.5, total_iters=100), m.ExponentialLR(o, gamma=0.9),
            m.StepLR(o, step_size=4, gamma=0.5)], milestones=[8, 20]),
    "ChainedScheduler": lambda m, o: m.ChainedScheduler(
        [m.ConstantLR(o, factor=0.5, total_iters=6), m.ExponentialLR(o, gamma=0.95)]),
}


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_scheduler_sequence_matches_torch(name):
    make = SCHEDULERS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt, topt, s, ts = _sched_pair(make)
    _check_groups(opt, topt, ("lr", "momentum", "initial_lr", "max_lr", "min_lr"))
    assert s.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-13)
    for epoch in range(60):
        opt.step()
        topt.step()
        s.step()
        ts.step()
        _check_groups(opt, topt, ("lr", "momentum"))
        assert s.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-13, abs=1e-15), epoch
        assert getattr(s, "last_epoch", None) == getattr(ts, "last_epoch", None)


@pytest.mark.parametrize("kind", ["OneCycleLR", "CyclicLR"])
def test_momentum_cycling_of_adam_betas(kind):
    def make(m, o):
        if kind == "OneCycleLR":
            return m.OneCycleLR(o, max_lr=0.01, total_steps=55, base_momentum=0.8,
                                max_momentum=0.92)
        return m.CyclicLR(o, base_lr=0.001, max_lr=0.01, step_size_up=7, base_momentum=0.8,
                          max_momentum=0.9)

    opt, topt, s, ts = _sched_pair(make, "Adam", dict(lr=0.01, betas=(0.9, 0.99)))
    for _ in range(54):
        opt.step()
        topt.step()
        s.step()
        ts.step()
        _check_groups(opt, topt, ("lr", "betas"))


def test_cosine_warm_restarts_fractional_epochs():
    opt, topt, s, ts = _sched_pair(
        lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.001))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in range(12):
            for i in range(4):
                e = epoch + i / 4
                s.step(e)
                ts.step(e)
                assert s.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-13)
                assert s.T_cur == pytest.approx(ts.T_cur) and s.T_i == ts.T_i


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
                                  "LinearLR", "ConstantLR", "PolynomialLR"])
def test_closed_form_with_explicit_epoch(name):
    opt, topt, s, ts = _sched_pair(SCHEDULERS[name])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for e in [3, 7, 8, 14, 15, 30, 31, 50]:
            s.step(e)
            ts.step(e)
            assert s.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-13, abs=1e-15), e


PLATEAU = [
    dict(),
    dict(mode="max", factor=0.5, patience=2, threshold=0.01),
    dict(mode="min", factor=0.5, patience=1, threshold=0.05, threshold_mode="abs", cooldown=3),
    dict(mode="max", factor=0.3, patience=0, threshold_mode="abs", min_lr=[0.01, 0.05]),
    dict(factor=0.5, patience=1, min_lr=0.02, eps=0.01),
]


@pytest.mark.parametrize("kw", PLATEAU, ids=[str(i) for i in range(len(PLATEAU))])
def test_reduce_lr_on_plateau_matches_torch(kw):
    rng = np.random.default_rng(11)
    # a metric that improves, stalls, improves a little, oscillates
    metrics = np.concatenate([np.linspace(1.0, 0.5, 10), np.full(15, 0.5),
                              0.5 - 0.001 * np.arange(10), 0.4 + 0.05 * rng.standard_normal(40)])
    opt, topt, s, ts = _sched_pair(lambda m, o: m.ReduceLROnPlateau(o, **kw))
    for i, v in enumerate(metrics):
        opt.step()
        topt.step()
        s.step(F.tensor(v) if i % 2 else float(v))
        ts.step(float(v))
        _check_groups(opt, topt)
        assert s.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-13)
        assert (s.num_bad_epochs, s.cooldown_counter, s.best) == \
            (ts.num_bad_epochs, ts.cooldown_counter, ts.best)
    assert opt.param_groups[0]["lr"] < 0.1  # something was reduced


@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR", "OneCycleLR-cos", "LambdaLR",
                                  "SequentialLR", "ChainedScheduler", "CyclicLR-triangular2"])
def test_scheduler_state_dict_resumes(name):
    make = SCHEDULERS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt, topt, s, ts = _sched_pair(make)
        for _ in range(20):
            opt.step()
            s.step()
        sd_opt, sd_s = copy.deepcopy(opt.state_dict()), pickle.loads(pickle.dumps(s.state_dict()))
        ps = [F.tensor(np.ones(2), requires_grad=True) for _ in range(2)]
        opt2 = optim.SGD([{"params": [p], "lr": 0.1 * (i + 1)} for i, p in enumerate(ps)],
                         lr=0.1, momentum=0.9)
        opt2.load_state_dict(sd_opt)
        s2 = make(lrs, opt2)
        s2.load_state_dict(sd_s)
        opt2.load_state_dict(sd_opt)  # the new scheduler's constructor stepped the rates
        for _ in range(25):
            opt.step()
            opt2.step()
            s.step()
            s2.step()
            assert s2.get_last_lr() == s.get_last_lr()
            assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]


def test_scheduler_warns_when_stepped_before_optimizer():
    w = F.tensor(np.ones(2), requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    s = lrs.StepLR(opt, 3)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        s.step()
    opt2 = optim.SGD([w], lr=0.1)
    s2 = lrs.StepLR(opt2, 3)
    opt2.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s2.step()


def test_scheduler_errors():
    w = F.tensor(np.ones(2), requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        lrs.StepLR(object(), 3)
    with pytest.raises(KeyError, match="initial_lr"):
        lrs.StepLR(optim.SGD([w], lr=0.1), 3, last_epoch=5)
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        lrs.ReduceLROnPlateau(opt, factor=1.5)
    with pytest.raises(ValueError, match="mode"):
        lrs.ReduceLROnPlateau(opt, mode="lowest")
    with pytest.raises(ValueError, match="total_steps"):
        lrs.OneCycleLR(opt, max_lr=0.1)
    with pytest.raises(ValueError, match="anneal_strategy"):
        lrs.OneCycleLR(opt, max_lr=0.1, total_steps=10, anneal_strategy="exp")
    with pytest.raises(ValueError, match="momentum"):
        lrs.OneCycleLR(optim.Adagrad([w]), max_lr=0.1, total_steps=10)
    with pytest.raises(ValueError, match="milestone"):
        lrs.SequentialLR(opt, [lrs.StepLR(opt, 2), lrs.StepLR(opt, 3)], milestones=[])
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        lrs.ChainedScheduler([lrs.ReduceLROnPlateau(opt)])
    with pytest.raises(ValueError, match="T_0"):
        lrs.CosineAnnealingWarmRestarts(opt, T_0=0)
    with pytest.raises(ValueError, match="same length"):
        lrs.OneCycleLR(opt, max_lr=[0.1, 0.2], total_steps=10)
    s = lrs.OneCycleLR(optim.SGD([w], lr=0.1, momentum=0.9), max_lr=0.1, total_steps=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3):
            s.step()
        with pytest.raises(ValueError, match="Tried to step 4 times"):
            s.step()
