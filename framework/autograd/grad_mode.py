"""Global autograd switches: grad mode and anomaly mode, as cheap class attributes."""
from __future__ import annotations

import functools


class _State:
    grad_enabled = True
    inference = False
    anomaly = False
    anomaly_check_nan = True


def is_grad_enabled() -> bool:
    return _State.grad_enabled


def is_inference_mode_enabled() -> bool:
    return _State.inference


class _GradModeContext:
    """Base for the grad-mode context managers; each also works as a decorator."""

    _target = True

    def __enter__(self):
        self._prev = _State.grad_enabled
        _State.grad_enabled = self._target
        return self

    def __exit__(self, *exc):
        _State.grad_enabled = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradModeContext):
    """Record no graph: results of ops do not require grad."""

    _target = False


class enable_grad(_GradModeContext):
    _target = True


class set_grad_enabled(_GradModeContext):
    """Set grad mode to `mode`; usable as a function call, a context manager or a decorator."""

    def __init__(self, mode: bool):
        self._prev = _State.grad_enabled
        self._target = bool(mode)
        _State.grad_enabled = self._target  # takes effect at once, as torch's does

    def __enter__(self):
        return self

    def __call__(self, fn):
        mode = self._target
        _State.grad_enabled = self._prev

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)
        return wrapper


class inference_mode(_GradModeContext):
    """Like no_grad; Lantern has no separate inference tensors, so it is no_grad plus a flag."""

    def __init__(self, mode: bool = True):
        self._mode = mode

    def __enter__(self):
        self._prev = (_State.grad_enabled, _State.inference)
        if self._mode:
            _State.grad_enabled, _State.inference = False, True
        return self

    def __exit__(self, *exc):
        _State.grad_enabled, _State.inference = self._prev
        return False

    def __call__(self, fn):
        mode = self._mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with inference_mode(mode):
                return fn(*args, **kwargs)
        return wrapper


class detect_anomaly:
    """Record where each op was created and fail on the first backward that yields NaN or inf,
    naming the op and showing the forward call site."""

    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan

    def __enter__(self):
        self._prev = (_State.anomaly, _State.anomaly_check_nan)
        _State.anomaly, _State.anomaly_check_nan = True, self.check_nan
        return self

    def __exit__(self, *exc):
        _State.anomaly, _State.anomaly_check_nan = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)
        return wrapper


class set_detect_anomaly(detect_anomaly):
    def __init__(self, mode: bool, check_nan: bool = True):
        super().__init__(check_nan)
        self._prev = (_State.anomaly, _State.anomaly_check_nan)
        _State.anomaly, _State.anomaly_check_nan = bool(mode), check_nan

    def __enter__(self):
        return self


def is_anomaly_enabled() -> bool:
    return _State.anomaly
