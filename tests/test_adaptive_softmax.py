"""nn.AdaptiveLogSoftmaxWithLoss against torch with the same weights."""
from __future__ import annotations

import numpy as np
import pytest

import framework
from conftest import torch_or_skip


def _pair(torch, head_bias):
    lm = framework.nn.AdaptiveLogSoftmaxWithLoss(16, 30, [5, 12, 20], div_value=2.0,
                                                 head_bias=head_bias).double()
    tm = torch.nn.AdaptiveLogSoftmaxWithLoss(16, 30, [5, 12, 20], div_value=2.0,
                                             head_bias=head_bias).double()
    assert list(lm.state_dict()) == list(tm.state_dict())
    tm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in lm.state_dict().items()})
    return lm, tm


@pytest.mark.parametrize("head_bias", [False, True])
def test_forward_backward_log_prob_predict_match_torch(head_bias):
    torch = torch_or_skip()
    lm, tm = _pair(torch, head_bias)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 16))
    t = np.array([0, 4, 5, 11, 12, 19, 20, 29, 3, 25, 7, 14])
    lx, tx = framework.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    lo, to = lm(lx, framework.tensor(t)), tm(tx, torch.tensor(t))
    np.testing.assert_allclose(lo.output.detach().numpy(), to.output.detach().numpy(),
                               rtol=1e-10)
    np.testing.assert_allclose(lo.loss.item(), to.loss.item(), rtol=1e-10)
    lo.loss.backward()
    to.loss.backward()
    np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    lp = dict(lm.named_parameters())
    for name, p in tm.named_parameters():
        np.testing.assert_allclose(lp[name].grad.numpy(), p.grad.numpy(), rtol=1e-9,
                                   atol=1e-12, err_msg=name)
    np.testing.assert_allclose(lm.log_prob(lx).detach().numpy(),
                               tm.log_prob(tx).detach().numpy(), rtol=1e-10)
    np.testing.assert_array_equal(lm.predict(lx).numpy(), tm.predict(tx).numpy())
    # unbatched
    o1 = lm(lx[0], framework.tensor(t[0]))
    np.testing.assert_allclose(o1.output.item(), lo.output[0].item(), rtol=1e-12)


def test_errors():
    m = framework.nn.AdaptiveLogSoftmaxWithLoss(8, 10, [3, 6])
    with pytest.raises(ValueError, match="cutoffs should be a sequence of unique"):
        framework.nn.AdaptiveLogSoftmaxWithLoss(8, 10, [6, 3])
    with pytest.raises(RuntimeError, match="Target values should be in \\[0, 9\\]"):
        m(framework.zeros(2, 8), framework.tensor([0, 10]))
    with pytest.raises(RuntimeError, match="same size in the batch"):
        m(framework.zeros(3, 8), framework.tensor([0, 1]))
