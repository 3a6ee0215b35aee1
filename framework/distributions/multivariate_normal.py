"""The multivariate normal distribution, parameterised by a covariance, precision or lower
Cholesky factor."""
from __future__ import annotations

import math

import numpy as np

from .._tensor import Size, Tensor
from ..creation import eye
from ..linalg import cholesky, solve_triangular
from . import constraints
from .distribution import Distribution
from .utils import lazy_property, standard_normal, to_size

__all__ = ["MultivariateNormal"]


def _batch_mv(mat: Tensor, vec: Tensor) -> Tensor:
    """mat @ vec over broadcast batch dims."""
    return (mat @ vec.unsqueeze(-1)).squeeze(-1)


def _batch_mahalanobis(scale_tril: Tensor, x: Tensor) -> Tensor:
    """|L^-1 x|^2 for x (..., n) against lower L (..., n, n). When x's batch ends with L's,
    the leading (sample) dims become extra right-hand sides of one solve per L."""
    n = x.shape[-1]
    lb, xb = tuple(scale_tril.shape[:-2]), tuple(x.shape[:-1])
    k = len(xb) - len(lb)
    if k >= 0 and xb[k:] == lb:
        lead = xb[:k]
        cols = x.reshape(-1, *lb, n).movedim(0, -1)  # (*lb, n, prod(lead))
        m = solve_triangular(scale_tril, cols, upper=False).pow(2).sum(-2)  # (*lb, prod(lead))
        return m.movedim(-1, 0).reshape(*lead, *lb)
    m = solve_triangular(scale_tril, x.unsqueeze(-1), upper=False).squeeze(-1)
    return m.pow(2).sum(-1)


def _precision_to_scale_tril(precision: Tensor) -> Tensor:
    """Lower L with L L^T = precision^-1. With the exchange matrix J, chol(J P J) = M gives
    P = U U^T for the upper U = J M J, so P^-1 = U^-T U^-1 and L = U^-T (lower)."""
    m = cholesky(precision.flip((-2, -1)))
    upper = m.flip((-2, -1))
    ident = eye(precision.shape[-1], dtype=precision.dtype, device=precision.device)
    return solve_triangular(upper.mT, ident, upper=False)


class MultivariateNormal(Distribution):
    """N(loc, Sigma) over vectors of size n = loc.shape[-1]. Give exactly one of
    covariance_matrix (Sigma), precision_matrix (Sigma^-1) or scale_tril (the lower Cholesky
    factor L, Sigma = L L^T); batch dims of loc and the matrix broadcast."""

    arg_constraints = {"loc": constraints.real_vector,
                       "covariance_matrix": constraints.positive_definite,
                       "precision_matrix": constraints.positive_definite,
                       "scale_tril": constraints.lower_cholesky}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc: Tensor, covariance_matrix: Tensor | None = None,
                 precision_matrix: Tensor | None = None, scale_tril: Tensor | None = None,
                 validate_args: bool | None = None):
        if loc.dim() < 1:
            raise ValueError("loc must be at least one-dimensional.")
        if (covariance_matrix is not None) + (scale_tril is not None) + \
                (precision_matrix is not None) != 1:
            raise ValueError("Exactly one of covariance_matrix or precision_matrix or "
                             "scale_tril may be specified.")
        given = next(m for m in (scale_tril, covariance_matrix, precision_matrix)
                     if m is not None)
        name = ("scale_tril" if scale_tril is not None else
                "covariance_matrix" if covariance_matrix is not None else "precision_matrix")
        if given.dim() < 2:
            what = "scale_tril matrix" if name == "scale_tril" else name.replace("_", " ")
            raise ValueError(f"{what} must be at least two-dimensional, with optional leading "
                             "batch dimensions")
        n = loc.shape[-1]
        if tuple(given.shape[-2:]) != (n, n):
            raise ValueError(f"{name} must be {n} x {n} to match loc of size {n}, got "
                             f"{tuple(given.shape[-2:])}")
        batch_shape = Size(np.broadcast_shapes(tuple(given.shape[:-2]), tuple(loc.shape[:-1])))
        setattr(self, name, given.expand(*batch_shape, n, n))
        self.loc = loc.expand(*batch_shape, n)
        super().__init__(batch_shape, Size((n,)), validate_args=validate_args)
        if scale_tril is not None:
            self._unbroadcasted_scale_tril = scale_tril
        elif covariance_matrix is not None:
            self._unbroadcasted_scale_tril = cholesky(covariance_matrix)
        else:
            self._unbroadcasted_scale_tril = _precision_to_scale_tril(precision_matrix)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(MultivariateNormal, _instance)
        batch_shape = to_size(batch_shape)
        n = self._event_shape[0]
        new.loc = self.loc.expand(*batch_shape, n)
        new._unbroadcasted_scale_tril = self._unbroadcasted_scale_tril
        for name in ("covariance_matrix", "scale_tril", "precision_matrix"):
            if name in self.__dict__:
                setattr(new, name, self.__dict__[name].expand(*batch_shape, n, n))
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _matrix_shape(self):
        return tuple(self._batch_shape) + tuple(self._event_shape) * 2

    @lazy_property
    def scale_tril(self) -> Tensor:
        return self._unbroadcasted_scale_tril.expand(*self._matrix_shape())

    @lazy_property
    def covariance_matrix(self) -> Tensor:
        low = self._unbroadcasted_scale_tril
        return (low @ low.mT).expand(*self._matrix_shape())

    @lazy_property
    def precision_matrix(self) -> Tensor:
        low = self._unbroadcasted_scale_tril
        ident = eye(low.shape[-1], dtype=low.dtype, device=low.device)
        inv = solve_triangular(low, ident, upper=False)
        return (inv.mT @ inv).expand(*self._matrix_shape())

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        var = self._unbroadcasted_scale_tril.pow(2).sum(-1)
        return var.expand(*self._batch_shape, *self._event_shape)

    def rsample(self, sample_shape=Size()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        eps = standard_normal(shape, self.loc.dtype, self.loc.device)
        return self.loc + _batch_mv(self._unbroadcasted_scale_tril, eps)

    def _half_log_det(self) -> Tensor:
        return self._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        m = _batch_mahalanobis(self._unbroadcasted_scale_tril, value - self.loc)
        n = self._event_shape[0]
        return -0.5 * (n * math.log(2 * math.pi) + m) - self._half_log_det()

    def entropy(self) -> Tensor:
        n = self._event_shape[0]
        h = 0.5 * n * (1.0 + math.log(2 * math.pi)) + self._half_log_det()
        return h if len(self._batch_shape) == 0 else h.expand(*self._batch_shape)
