"""`AdaptiveLogSoftmaxWithLoss`: the efficient softmax of Grave et al. (2016) for large output
spaces, as torch.nn.AdaptiveLogSoftmaxWithLoss (same parameters, state_dict keys and
numbers). Frequent classes (below cutoffs[0]) are scored by the head together with one logit
per tail cluster; a rarer class's log-probability is its cluster's head log-probability plus
its log-probability within the cluster, whose projection is narrower by div_value per level.
"""
from __future__ import annotations

from collections import namedtuple
from typing import Sequence

import numpy as np

from ... import creation
from ..._tensor import Tensor
from ...ops import reduction as _reduction
from ...ops.shape import cat
from .container import ModuleList, Sequential
from .linear import Linear
from .module import Module

__all__ = ["AdaptiveLogSoftmaxWithLoss"]

_ASMoutput = namedtuple("_ASMoutput", ["output", "loss"])


def _log_softmax(x: Tensor) -> Tensor:
    return _reduction.log_softmax(x, 1)


class AdaptiveLogSoftmaxWithLoss(Module):
    def __init__(self, in_features: int, n_classes: int, cutoffs: Sequence[int],
                 div_value: float = 4.0, head_bias: bool = False, device=None,
                 dtype=None) -> None:
        super().__init__()
        cutoffs = list(cutoffs)
        if len(cutoffs) == 0:
            raise ValueError("cutoffs should be a sequence of length larger than 0")
        if (cutoffs != sorted(cutoffs) or min(cutoffs) <= 0 or max(cutoffs) > n_classes - 1
                or len(set(cutoffs)) != len(cutoffs) or any(int(c) != c for c in cutoffs)):
            raise ValueError("cutoffs should be a sequence of unique, positive integers sorted "
                             "in an increasing order, where each value is between 1 and "
                             "n_classes-1")
        self.in_features = in_features
        self.n_classes = n_classes
        self.cutoffs = cutoffs + [n_classes]
        self.div_value = div_value
        self.head_bias = head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        kw = {"device": device, "dtype": dtype}
        self.head = Linear(in_features, self.head_size, bias=head_bias, **kw)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hsz = int(in_features // (div_value ** (i + 1)))
            osz = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(Sequential(Linear(in_features, hsz, bias=False, **kw),
                                        Linear(hsz, osz, bias=False, **kw)))

    def reset_parameters(self) -> None:
        self.head.reset_parameters()
        for i2h, h2o in self.tail:
            i2h.reset_parameters()
            h2o.reset_parameters()

    def forward(self, input_: Tensor, target_: Tensor) -> _ASMoutput:
        """(output, loss): each row's log-probability of its target, and the mean negative
        log-likelihood."""
        targ_dim = target_.dim()
        if targ_dim == 1:
            if input_.size(0) != target_.size(0):
                raise RuntimeError("Input and target should have the same size in the batch "
                                   f"dimension (input {list(input_.shape)}, target "
                                   f"{list(target_.shape)})")
            if input_.dim() != 2:
                raise RuntimeError("1D target tensor expects 2D input tensors, but found inputs "
                                   f"with size {list(input_.shape)}")
        elif targ_dim == 0:
            if input_.dim() != 1:
                raise RuntimeError("0D target tensor expects 1D input tensors, but found inputs "
                                   f"with size {list(input_.shape)}")
        else:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        batched = targ_dim > 0
        inp = input_ if batched else input_.unsqueeze(0)
        target = target_ if batched else target_.unsqueeze(0)
        t = np.asarray(target.detach().cpu().numpy()).astype(np.int64)
        if t.size and (t.min() < 0 or t.max() >= self.n_classes):
            raise RuntimeError(f"Target values should be in [0, {self.n_classes - 1}], but "
                               f"values in range [{t.min()}, {t.max()}] were found. ")
        # the head column each row reads: its own class, or its cluster's logit
        cluster = np.searchsorted(np.asarray(self.cutoffs), t, side="right")
        head_col = np.where(cluster == 0, t, self.shortlist_size + cluster - 1)
        dev = inp.device
        head_logprob = _log_softmax(self.head(inp))
        output = head_logprob.gather(1, creation.tensor(head_col[:, None], device=dev))
        output = output.squeeze(1)
        for i in range(1, self.n_clusters + 1):
            rows = np.nonzero(cluster == i)[0]
            if rows.size == 0:
                continue
            rows_t = creation.tensor(rows, device=dev)
            rel = creation.tensor((t[rows] - self.cutoffs[i - 1])[:, None], device=dev)
            local = _log_softmax(self.tail[i - 1](inp.index_select(0, rows_t))).gather(1, rel)
            output = output.index_add(0, rows_t, local.squeeze(1))
        loss = (-output).mean()
        return _ASMoutput(output if batched else output.squeeze(0), loss)

    def _get_full_log_prob(self, input: Tensor, head_output: Tensor) -> Tensor:
        head_logprob = _log_softmax(head_output)
        parts = [head_logprob[:, :self.shortlist_size]]
        for i in range(self.n_clusters):
            cluster_logprob = _log_softmax(self.tail[i](input))
            parts.append(cluster_logprob +
                         head_logprob[:, self.shortlist_size + i].unsqueeze(1))
        return cat(parts, 1)

    def log_prob(self, input: Tensor) -> Tensor:
        """Log-probabilities of every class, (N, n_classes) (or (n_classes,))."""
        batched = input.dim() > 1
        x = input if batched else input.unsqueeze(0)
        out = self._get_full_log_prob(x, self.head(x))
        return out if batched else out.squeeze(0)

    def predict(self, input: Tensor) -> Tensor:
        """The most likely class of each row (scoring the tail only for rows whose best head
        entry is a cluster)."""
        batched = input.dim() > 1
        x = input if batched else input.unsqueeze(0)
        head_output = self.head(x)
        output = head_output.argmax(dim=1)
        not_in_shortlist = output >= self.shortlist_size
        if bool(not_in_shortlist.any()):
            rows = not_in_shortlist.nonzero().squeeze(1)
            log_prob = self._get_full_log_prob(x.index_select(0, rows),
                                               head_output.index_select(0, rows))
            output = output.clone()
            output[rows] = log_prob.argmax(dim=1)
        return output if batched else output.squeeze(0)

