"""Update rules of the optimizers, on raw arrays (NumPy or CuPy), in place.

Each function updates one parameter group: lists of parameter arrays, their gradients and state
arrays, plus the group's hyperparameters. Parameter and state arrays are written in place; the
gradients are never modified. The arithmetic follows PyTorch's single-tensor CPU code step by
step (same formulas, same order of roundings where an in-place ufunc allows it), so float64
trajectories agree to ~1e-15 and float32 ones to a few ulps per step (PyTorch's vectorised
kernels fuse some multiply-adds, NumPy cannot).

Complex parameters are updated through real views (as PyTorch's `view_as_real`), so the second
moments of real and imaginary parts are kept apart.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _cuda_kernels, _jit
from .._parallel import JIT_PARALLEL_ELEMENTS, MIN_PARALLEL_ELEMENTS, parallel_ranges

from .._backend import xp_of

_REAL = {np.dtype(np.complex64): np.dtype(np.float32),
         np.dtype(np.complex128): np.dtype(np.float64)}


def _real(arr):
    """A real view of a complex array (trailing axis of 2: real, imaginary); others as is."""
    if arr is None or arr.dtype.kind != "c":
        return arr
    return arr[..., None].view(_REAL[np.dtype(arr.dtype)])


def _grad(xp, p, g, maximize, weight_decay):
    """The gradient after `maximize` and L2 weight decay (g + wd * p), and whether it is a
    fresh array that the caller may overwrite."""
    if weight_decay != 0:
        out = p * weight_decay
        if maximize:
            out -= g
        else:
            out += g
        return out, True
    if maximize:
        return xp.negative(g), True
    return g, False


def _lerp_(xp, start, end, weight, d=None):
    """start <- lerp(start, end, weight) in place, PyTorch's two-branch formula; returns the
    scratch array it used (`d` if given, else a new one shaped like `start`)."""
    d = xp.subtract(end, start) if d is None else xp.subtract(end, start, out=d)
    if weight < 0.5:
        d *= weight
        start += d
    else:
        d *= 1.0 - weight
        xp.subtract(end, d, out=start)
    return d


def sgd(params, grads, momentum_buffers, *, lr, weight_decay, momentum, dampening, nesterov,
        maximize):
    """SGD with optional momentum/Nesterov. `momentum_buffers[i]` is None before the first step
    of parameter i; the list is updated with the new buffers."""
    for i, p in enumerate(params):
        xp = xp_of(p)
        if xp is not np:  # one fused kernel on the GPU
            buf = momentum_buffers[i]
            first = momentum != 0 and buf is None
            if first:
                buf = xp.empty_like(p)
            if _cuda_kernels.sgd_momentum_step(
                    p, grads[i], buf if momentum != 0 else None, lr=lr,
                    weight_decay=weight_decay, momentum=momentum, dampening=dampening,
                    nesterov=nesterov, maximize=maximize, first=first):
                if momentum != 0:
                    momentum_buffers[i] = buf
                continue
        g, owned = _grad(xp, p, grads[i], maximize, weight_decay)
        if momentum != 0:
            buf = momentum_buffers[i]
            if buf is None:
                buf = momentum_buffers[i] = xp.array(g, copy=True)
            else:
                buf *= momentum
                if dampening == 0:
                    buf += g
                else:
                    buf += g * (1.0 - dampening)
            if nesterov:
                if owned:
                    g += buf * momentum
                else:
                    g = buf * momentum
                    g += grads[i]
                    owned = True
            else:
                g, owned = buf, False
        if owned:
            g *= -lr
            p += g
        else:
            p += g * -lr


def adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, *, amsgrad, beta1, beta2,
         lr, weight_decay, eps, maximize, decoupled_weight_decay):
    """Adam (decoupled_weight_decay=False) and AdamW (True); `steps[i]` is the step count of
    parameter i after this step's increment."""
    jk = _jit.kernels()
    for i, p in enumerate(params):
        xp = xp_of(p)
        g = grads[i]
        m, v = exp_avgs[i], exp_avg_sqs[i]
        vmax = max_exp_avg_sqs[i] if amsgrad else None
        if xp is not np and _cuda_kernels.adam_step(
                p, g, m, v, vmax, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
                weight_decay=weight_decay, decoupled=decoupled_weight_decay,
                maximize=maximize, step=steps[i]):
            continue  # one fused kernel on the GPU
        if jk is not None and not (amsgrad or maximize) and 1.0 - beta1 < 0.5 and \
                (weight_decay == 0 or decoupled_weight_decay) and _jit.eligible(p, g, m, v):
            _adam_jit(jk, p, g, m, v, beta1, beta2, lr, weight_decay, eps, steps[i])
            continue
        args = (beta1, beta2, lr, weight_decay, eps, maximize, decoupled_weight_decay, steps[i])
        if xp is np and p.size >= MIN_PARALLEL_ELEMENTS and p.dtype.kind != "c" and all(
                a.flags.c_contiguous for a in (p, g, m, v) + ((vmax,) if amsgrad else ())):
            # a large tensor: the update is elementwise, so row ranges run on several threads
            flat = [a.reshape(-1) for a in (p, g, m, v)] + \
                [vmax.reshape(-1) if amsgrad else None]

            def chunk(a, b, flat=flat, args=args):
                _adam_one(np, *[x[a:b] if x is not None else None for x in flat], *args)
            parallel_ranges(chunk, p.size)
        else:
            _adam_one(xp, p, g, m, v, vmax, *args)


def _adam_jit(jk, p, g, m, v, beta1, beta2, lr, weight_decay, eps, step):
    """The common case of _adam_one as one compiled pass over the elements (see _jit)."""
    t = p.dtype.type
    flat = [a.reshape(-1) for a in (p, g, m, v)]
    args = (t(1.0 - lr * weight_decay), t(1.0 - beta1), t(beta2), t(1.0 - beta2), t(eps),
            t(lr / (1 - beta1 ** step)), t((1 - beta2 ** step) ** 0.5))
    parallel_ranges(lambda a, b: jk.adam_update(*flat, *args, a, b), p.size, p.size,
                    JIT_PARALLEL_ELEMENTS)


def _adam_one(xp, p, g, m, v, vmax, beta1, beta2, lr, weight_decay, eps, maximize,
              decoupled_weight_decay, step):
    if weight_decay != 0 and decoupled_weight_decay:
        p *= 1.0 - lr * weight_decay
        g, _ = _grad(xp, p, g, maximize, 0)
    else:
        g, _ = _grad(xp, p, g, maximize, weight_decay)
    if p.dtype.kind == "c":
        p, g, m, v, vmax = _real(p), _real(g), _real(m), _real(v), _real(vmax)
    p -= adam_direction(xp, g, m, v, vmax, None, step, beta1, beta2, lr, eps)


def adam_direction(xp, g, m, v, vmax, tmp, step, beta1, beta2, lr, eps):
    """Update Adam's moments m, v (and the running max vmax, or None) in place from the gradient
    g and return the step to subtract from the parameter, written into `tmp` (a scratch array
    shaped like m, or None to allocate one)."""
    tmp = _lerp_(xp, m, g, 1.0 - beta1, tmp)
    # exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    xp.multiply(g, 1.0 - beta2, out=tmp)
    tmp *= g
    v *= beta2
    v += tmp
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2 ** 0.5
    if vmax is not None:
        xp.maximum(vmax, v, out=vmax)
        xp.sqrt(vmax, out=tmp)
    else:
        xp.sqrt(v, out=tmp)
    tmp /= bias_correction2_sqrt
    tmp += eps
    # param.addcdiv_(exp_avg, denom, value=-step_size)
    xp.divide(m, tmp, out=tmp)
    tmp *= step_size
    return tmp


def rmsprop(params, grads, square_avgs, grad_avgs, momentum_buffers, *, lr, alpha, eps,
            weight_decay, momentum, centered, maximize):
    for i, p in enumerate(params):
        xp = xp_of(p)
        g, _ = _grad(xp, p, grads[i], maximize, weight_decay)
        sq = square_avgs[i]
        if p.dtype.kind == "c":
            p, g, sq = _real(p), _real(g), _real(sq)
        tmp = g * (1.0 - alpha)
        tmp *= g
        sq *= alpha
        sq += tmp
        if centered:
            ga = _real(grad_avgs[i])
            tmp = _lerp_(xp, ga, g, 1.0 - alpha)
            # square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
            xp.multiply(ga, -1.0, out=tmp)
            tmp *= ga
            tmp += sq
            xp.sqrt(tmp, out=tmp)
        else:
            xp.sqrt(sq, out=tmp)
        tmp += eps
        if momentum > 0:
            buf = _real(momentum_buffers[i])
            buf *= momentum
            xp.divide(g, tmp, out=tmp)
            buf += tmp
            xp.multiply(buf, -lr, out=tmp)
            p += tmp
        else:
            # param.addcdiv_(grad, avg, value=-lr)
            xp.divide(g, tmp, out=tmp)
            tmp *= lr
            p -= tmp


def adagrad(params, grads, state_sums, steps, *, lr, weight_decay, lr_decay, eps, maximize):
    for i, p in enumerate(params):
        xp = xp_of(p)
        g, _ = _grad(xp, p, grads[i], maximize, weight_decay)
        s = state_sums[i]
        if p.dtype.kind == "c":
            p, g, s = _real(p), _real(g), _real(s)
        clr = lr / (1 + (steps[i] - 1) * lr_decay)
        tmp = g * g
        s += tmp
        xp.sqrt(s, out=tmp)
        tmp += eps
        xp.divide(g, tmp, out=tmp)
        tmp *= clr
        p -= tmp


def adadelta(params, grads, square_avgs, acc_deltas, *, lr, rho, eps, weight_decay, maximize):
    for i, p in enumerate(params):
        xp = xp_of(p)
        g, _ = _grad(xp, p, grads[i], maximize, weight_decay)
        sq, acc = square_avgs[i], acc_deltas[i]
        if p.dtype.kind == "c":
            p, g, sq, acc = _real(p), _real(g), _real(sq), _real(acc)
        std = g * (1.0 - rho)
        std *= g
        sq *= rho
        sq += std
        xp.add(sq, eps, out=std)
        xp.sqrt(std, out=std)
        delta = acc + eps
        xp.sqrt(delta, out=delta)
        delta /= std
        delta *= g
        # acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
        xp.multiply(delta, 1.0 - rho, out=std)
        std *= delta
        acc *= rho
        acc += std
        delta *= -lr
        p += delta


def nadam(params, grads, exp_avgs, exp_avg_sqs, mu_products, steps, *, beta1, beta2, lr,
          weight_decay, momentum_decay, eps, decoupled_weight_decay, maximize):
    """NAdam; `mu_products[i]` is the 'mu_product' state Tensor (a CPU scalar, multiplied by this
    step's mu here), `steps[i]` the step count after the increment."""
    for i, p in enumerate(params):
        xp = xp_of(p)
        g = grads[i]
        step = steps[i]
        bias_correction2 = 1 - beta2 ** step
        if weight_decay != 0 and decoupled_weight_decay:
            p *= 1.0 - lr * weight_decay
            g, _ = _grad(xp, p, g, maximize, 0)
        else:
            g, _ = _grad(xp, p, g, maximize, weight_decay)
        m, v = exp_avgs[i], exp_avg_sqs[i]
        if p.dtype.kind == "c":
            p, g, m, v = _real(p), _real(g), _real(m), _real(v)
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
        # The product is kept in the state tensor's own precision (float32), as in PyTorch.
        mp = mu_products[i]
        mp._data = mp._data * mu
        mu_product = float(mp._data)
        tmp = _lerp_(xp, m, g, 1.0 - beta1)
        xp.multiply(g, 1.0 - beta2, out=tmp)
        tmp *= g
        v *= beta2
        v += tmp
        denom = v / bias_correction2
        xp.sqrt(denom, out=denom)
        mu_product_next = mu_product * mu_next
        denom += eps
        # param.addcdiv_(grad, denom, value=-lr*(1-mu)/(1-mu_product))
        xp.multiply(g, -lr * (1.0 - mu) / (1.0 - mu_product), out=tmp)
        tmp /= denom
        p += tmp
        xp.multiply(m, (-lr * mu_next) / (1.0 - mu_product_next), out=tmp)
        tmp /= denom
        p += tmp


def radam(params, grads, exp_avgs, exp_avg_sqs, steps, *, beta1, beta2, lr, weight_decay, eps,
          decoupled_weight_decay, maximize):
    for i, p in enumerate(params):
        xp = xp_of(p)
        g = grads[i]
        if weight_decay != 0 and decoupled_weight_decay:
            p *= 1.0 - lr * weight_decay
            g, _ = _grad(xp, p, g, maximize, 0)
        else:
            g, _ = _grad(xp, p, g, maximize, weight_decay)
        m, v = exp_avgs[i], exp_avg_sqs[i]
        if p.dtype.kind == "c":
            p, g, m, v = _real(p), _real(g), _real(m), _real(v)
        step = steps[i]
        tmp = _lerp_(xp, m, g, 1.0 - beta1)
        xp.multiply(g, 1.0 - beta2, out=tmp)
        tmp *= g
        v *= beta2
        v += tmp
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        # bias_corrected_exp_avg * lr [* adaptive_lr * rect]
        xp.divide(m, bias_correction1, out=tmp)
        tmp *= lr
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2
        if rho_t > 5.0:
            adaptive = xp.sqrt(v)
            adaptive += eps
            xp.divide(bias_correction2 ** 0.5, adaptive, out=adaptive)
            tmp *= adaptive
            rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                             / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            tmp *= rect
        p -= tmp


def adamax(params, grads, exp_avgs, exp_infs, steps, *, beta1, beta2, lr, weight_decay, eps,
           maximize):
    """Adamax; `steps[i]` is the step count of parameter i after this step's increment."""
    for i, p in enumerate(params):
        xp = xp_of(p)
        g, _ = _grad(xp, p, grads[i], maximize, weight_decay)
        m, u = exp_avgs[i], exp_infs[i]
        if p.dtype.kind == "c":
            p, g, m, u = _real(p), _real(g), _real(m), _real(u)
        tmp = _lerp_(xp, m, g, 1.0 - beta1)
        # torch.maximum(exp_inf.mul_(beta2), grad.abs().add_(eps), out=exp_inf)
        u *= beta2
        xp.abs(g, out=tmp)
        tmp += eps
        xp.maximum(u, tmp, out=u)
        clr = lr / (1 - beta1 ** steps[i])
        # param.addcdiv_(exp_avg, exp_inf, value=-clr), which computes (value * exp_avg) / exp_inf
        xp.multiply(m, -clr, out=tmp)
        tmp /= u
        p += tmp


def _set_scalar(t, value: float) -> None:
    """Write `value` into a 0-d state tensor in its own dtype (as PyTorch's `copy_`): a NumPy
    scalar is replaced, a 0-d array (NumPy, or CuPy after loading onto a GPU) written in place."""
    a = t._data
    if isinstance(a, np.generic):
        t._data = a.dtype.type(value)
    else:
        a[...] = value


def asgd(params, grads, axs, mus, etas, steps, *, lambd, lr, t0, alpha, weight_decay, maximize,
         scalar_type):
    """ASGD; `etas[i]` and `mus[i]` are parameter i's 'eta' and 'mu' state Tensors (0-d, updated
    here for the next step), `steps[i]` its step count after the increment. The new eta and mu
    are rounded to `scalar_type` (the default dtype's NumPy type) before they are stored, as
    PyTorch's ``torch.as_tensor(value)`` does even when the state was loaded as float64."""
    for i, p in enumerate(params):
        xp = xp_of(p)
        g, _ = _grad(xp, p, grads[i], maximize, weight_decay)
        ax = axs[i]
        if p.dtype.kind == "c":
            p, g, ax = _real(p), _real(g), _real(ax)
        eta = float(etas[i]._data)
        p *= 1 - lambd * eta
        # param.add_(grad, alpha=-eta)
        tmp = g * -eta
        p += tmp
        mu = float(mus[i]._data)
        if mu != 1:
            # ax.add_(param.sub(ax).mul_(mu))
            xp.subtract(p, ax, out=tmp)
            tmp *= mu
            ax += tmp
        else:
            ax[...] = p
        step = steps[i]
        _set_scalar(etas[i], scalar_type(lr / ((1 + lambd * lr * step) ** alpha)))
        _set_scalar(mus[i], scalar_type(1 / max(1, step - t0)))


def _torch_sign(xp, x, out=None):
    """torch.sign on real arrays: -1, 0 or 1, and 0 for NaN (where NumPy's sign gives NaN)."""
    return xp.subtract((x > 0).astype(x.dtype), x < 0, out=out)


def rprop(params, grads, prevs, step_sizes, *, step_size_min, step_size_max, etaminus, etaplus,
          maximize):
    for i, p in enumerate(params):
        xp = xp_of(p)
        g = xp.negative(grads[i]) if maximize else grads[i]
        prev, step_size = prevs[i], step_sizes[i]
        if p.dtype.kind == "c":
            p, g, prev, step_size = _real(p), _real(g), _real(prev), _real(step_size)
        sign = g * prev
        _torch_sign(xp, sign, out=sign)
        sign[sign > 0] = etaplus
        sign[sign < 0] = etaminus
        sign[sign == 0] = 1
        step_size *= sign
        xp.clip(step_size, step_size_min, step_size_max, out=step_size)
        # where the gradient changed sign, this step skips the parameter and forgets the gradient
        g = g.copy() if not maximize else g
        g[sign == etaminus] = 0
        # param.addcmul_(grad.sign(), step_size, value=-1)
        upd = _torch_sign(xp, g)
        upd *= step_size
        p -= upd
        prev[...] = g
