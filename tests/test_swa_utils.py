"""optim.swa_utils against torch.optim.swa_utils: averaged weights, SWALR rates, update_bn."""
from __future__ import annotations

import numpy as np
import pytest

import framework
from conftest import torch_or_skip
from framework.optim import swa_utils


def _pair(torch):
    rng = np.random.default_rng(0)
    lm = framework.nn.Sequential(framework.nn.Linear(4, 8), framework.nn.BatchNorm1d(8),
                                 framework.nn.ReLU(), framework.nn.Linear(8, 2)).double()
    tm = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(),
                             torch.nn.Linear(8, 2)).double()
    tm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in lm.state_dict().items()})
    data = [rng.standard_normal((16, 4)) for _ in range(5)]
    return lm, tm, data


@pytest.mark.parametrize("kind", ["swa", "ema_multi", "ema_fn", "swa_buffers"])
def test_averaged_model_matches_torch(kind):
    torch = torch_or_skip()
    lm, tm, data = _pair(torch)
    kw_l, kw_t = {}, {}
    if kind == "ema_multi":
        kw_l["multi_avg_fn"] = swa_utils.get_ema_multi_avg_fn(0.9)
        kw_t["multi_avg_fn"] = torch.optim.swa_utils.get_ema_multi_avg_fn(0.9)
    if kind == "ema_fn":
        kw_l["avg_fn"] = swa_utils.get_ema_avg_fn(0.8)
        kw_t["avg_fn"] = torch.optim.swa_utils.get_ema_avg_fn(0.8)
    if kind == "swa_buffers":
        kw_l["use_buffers"] = kw_t["use_buffers"] = True
    la = swa_utils.AveragedModel(lm, **kw_l)
    ta = torch.optim.swa_utils.AveragedModel(tm, **kw_t)
    lo = framework.optim.SGD(lm.parameters(), lr=0.1)
    to = torch.optim.SGD(tm.parameters(), lr=0.1)
    for x in data:
        for m, o, lib in ((lm, lo, framework), (tm, to, torch)):
            o.zero_grad()
            m(lib.tensor(x)).pow(2).mean().backward()
            o.step()
        la.update_parameters(lm)
        ta.update_parameters(tm)
    ls, ts = la.state_dict(), ta.state_dict()
    assert list(ls) == list(ts)
    for k in ts:
        np.testing.assert_allclose(ls[k].numpy(), ts[k].numpy(), rtol=1e-12, atol=1e-12,
                                   err_msg=k)
    x = framework.tensor(data[0])
    np.testing.assert_allclose(la(x).detach().numpy(),
                               ta(torch.tensor(data[0])).detach().numpy(), rtol=1e-10)


def test_update_bn_matches_torch():
    torch = torch_or_skip()
    lm, tm, data = _pair(torch)
    swa_utils.update_bn([(framework.tensor(x), 0) for x in data], lm)
    torch.optim.swa_utils.update_bn([(torch.tensor(x), 0) for x in data], tm)
    for k, v in tm.state_dict().items():
        np.testing.assert_allclose(lm.state_dict()[k].numpy(), v.numpy(), rtol=1e-12,
                                   err_msg=k)
    assert lm[1].momentum == tm[1].momentum == 0.1
    assert lm.training


@pytest.mark.parametrize("strategy, anneal", [("cos", 3), ("linear", 4), ("cos", 0)])
def test_swalr_rates_match_torch(strategy, anneal):
    torch = torch_or_skip()
    lp = [framework.nn.Parameter(framework.zeros(2))]
    tp = [torch.nn.Parameter(torch.zeros(2))]
    lo = framework.optim.SGD([{"params": lp, "lr": 0.5}], lr=0.5)
    to = torch.optim.SGD([{"params": tp, "lr": 0.5}], lr=0.5)
    ls = swa_utils.SWALR(lo, swa_lr=0.05, anneal_epochs=anneal, anneal_strategy=strategy)
    ts = torch.optim.swa_utils.SWALR(to, swa_lr=0.05, anneal_epochs=anneal,
                                     anneal_strategy=strategy)
    got, want = [], []
    for _ in range(7):
        lo.step()
        to.step()
        ls.step()
        ts.step()
        got.append(ls.get_last_lr()[0])
        want.append(ts.get_last_lr()[0])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    resumed = swa_utils.SWALR(lo, swa_lr=0.05, anneal_epochs=anneal, anneal_strategy=strategy)
    resumed.load_state_dict(ls.state_dict())
    assert resumed.anneal_func(0.5) == ls.anneal_func(0.5)


def test_swa_errors():
    p = [framework.nn.Parameter(framework.zeros(2))]
    opt = framework.optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="anneal_strategy"):
        swa_utils.SWALR(opt, swa_lr=0.01, anneal_strategy="step")
    with pytest.raises(ValueError, match="same length"):
        swa_utils.SWALR(opt, swa_lr=[0.01, 0.02])
    with pytest.raises(AssertionError, match="Only one of"):
        swa_utils.AveragedModel(framework.nn.Linear(2, 2), avg_fn=lambda *a: a[0],
                                multi_avg_fn=lambda *a: None)
