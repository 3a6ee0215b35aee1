"""optim.Adafactor against torch.optim.Adafactor: trajectories, state, resume, errors."""
from __future__ import annotations

import numpy as np
import pytest

import framework
from conftest import torch_or_skip

CONFIGS = [dict(), dict(lr=0.05, weight_decay=0.1), dict(maximize=True, d=2.0),
           dict(eps=(1e-30, 1e-2), beta2_decay=-0.5)]


def _run(torch, kw, dtype, steps, resume_at=None):
    rng = np.random.default_rng(1)
    ps = [rng.standard_normal(s).astype(dtype) for s in [(5, 4), (3,), (2, 3, 4)]]
    lp = [framework.nn.Parameter(framework.tensor(p)) for p in ps]
    tp = [torch.nn.Parameter(torch.tensor(p)) for p in ps]
    lo, to = framework.optim.Adafactor(lp, **kw), torch.optim.Adafactor(tp, **kw)
    for k in range(steps):
        if k == resume_at:  # our state through save/load into a fresh optimizer
            path_state = lo.state_dict()
            lo = framework.optim.Adafactor(lp, **kw)
            lo.load_state_dict(path_state)
        for a, b in zip(lp, tp):
            g = rng.standard_normal(a.shape).astype(dtype)
            a.grad, b.grad = framework.tensor(g), torch.tensor(g)
        lo.step()
        to.step()
    return lp, tp, lo, to


@pytest.mark.parametrize("kw", CONFIGS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_trajectory_and_state_match_torch(kw, dtype):
    torch = torch_or_skip()
    lp, tp, lo, to = _run(torch, kw, dtype, 12, resume_at=6)
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    for a, b in zip(lp, tp):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), **tol)
        ls, ts = lo.state[a], to.state[b]
        assert list(ls) == list(ts)
        for k in ts:
            np.testing.assert_allclose(np.asarray(ls[k].numpy()), ts[k].numpy(), **tol)


def test_errors():
    p = [framework.nn.Parameter(framework.zeros(2))]
    for kw, msg in [(dict(lr=-1.0), "Learning rate should be >= 0"),
                    (dict(beta2_decay=0.5), "beta2_decay should be <= 0"),
                    (dict(eps=(-1.0, 1e-3)), "epsilon1 should be >= 0"),
                    (dict(d=0.5), "Clipping threshold d should be >= 1"),
                    (dict(weight_decay=-1.0), "weight_decay should be >= 0")]:
        with pytest.raises(ValueError, match=msg):
            framework.optim.Adafactor(p, **kw)
    z = framework.nn.Parameter(framework.zeros(2, dtype=framework.complex64))
    z.grad = framework.zeros(2, dtype=framework.complex64)
    with pytest.raises(RuntimeError, match="does not support complex"):
        framework.optim.Adafactor([z]).step()
