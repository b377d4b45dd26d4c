"""Numeric checks for exercise test cells, with Russian failure messages.

Test cells call these so that a failing check tells the student what was
compared, what was expected and how far off the answer is (CS231n-style
relative error), instead of a bare ``AssertionError``.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch


def _to_numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=np.float64)


def rel_error(actual, expected) -> float:
    """max |a - e| / max(1e-8, |a| + |e|), elementwise, as in CS231n."""
    a, e = _to_numpy(actual), _to_numpy(expected)
    return float(np.max(np.abs(a - e) / np.maximum(1e-8, np.abs(a) + np.abs(e))))


@contextlib.contextmanager
def checking(what: str):
    """Report a crash of the student's code inside the block as a failed check with a Russian message that says
    what was being checked, followed by the original error (a wrong shape or dtype otherwise shows only torch's
    English message). A blank exercise's ``NotImplementedError`` and failed checks pass through unchanged."""
    try:
        yield
    except (AssertionError, NotImplementedError):
        raise
    except Exception as exc:
        raise AssertionError(f"{what}: код упал с ошибкой {type(exc).__name__}: {exc}") from exc


def assert_shape(tensor, shape, what: str = "результат") -> None:
    """Fail with a readable message unless ``tensor.shape == shape``."""
    got = tuple(getattr(tensor, "shape", ()))
    if not isinstance(tensor, torch.Tensor):
        raise AssertionError(f"{what}: ожидался torch.Tensor, получен {type(tensor).__name__}")
    if got != tuple(shape):
        raise AssertionError(f"{what}: ожидалась форма {tuple(shape)}, получена {got}")


def assert_close(actual, expected, what: str = "результат", atol: float = 1e-6,
                 rtol: float = 1e-5) -> None:
    """Fail unless ``actual`` matches ``expected`` within ``atol + rtol * |expected|``."""
    if isinstance(expected, torch.Tensor) and not isinstance(actual, torch.Tensor):
        raise AssertionError(f"{what}: ожидался torch.Tensor, получен {type(actual).__name__}")
    a, e = _to_numpy(actual), _to_numpy(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{what}: ожидалась форма {e.shape}, получена {a.shape}")
    if not np.all(np.isfinite(a)):
        raise AssertionError(f"{what}: в ответе есть NaN или бесконечность")
    if not np.allclose(a, e, atol=atol, rtol=rtol):
        diff = float(np.max(np.abs(a - e)))
        raise AssertionError(
            f"{what}: значения не совпадают с эталоном "
            f"(макс. абсолютная разница {diff:.3g}, относительная ошибка "
            f"{rel_error(a, e):.3g}; допуск atol={atol:g}, rtol={rtol:g})"
        )


def numerical_gradient(f, tensor: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Central-difference gradient of the scalar ``f()`` with respect to ``tensor``, changed in place.

    For checks of autograd gradients, second-order ones included (MAML): use a
    float64 ``tensor`` and compare with ``rel_error``; ``tensor`` is restored.
    """
    grad = torch.zeros_like(tensor)
    # Changed through .data, so autograd does not see it and ``f`` may itself differentiate (a reference MAML).
    flat, out = tensor.data.view(-1), grad.view(-1)
    for i in range(flat.numel()):
        old = flat[i].item()
        flat[i] = old + eps
        plus = float(f())
        flat[i] = old - eps
        minus = float(f())
        flat[i] = old
        out[i] = (plus - minus) / (2 * eps)
    return grad


def with_stand_ins(func, **stand_ins):
    """``func`` calling ``stand_ins`` instead of the globals of those names (a student's earlier answers).

    A test of one exercise uses it so that a mistake in an earlier exercise, which ``func`` calls by name, costs
    that earlier exercise's points only; the notebook's own names are restored after every call."""
    import functools

    namespace = getattr(func, "__func__", func).__globals__  # a bound method: its function's module

    @functools.wraps(func)
    def call(*args, **kwargs):
        missing = object()
        saved = {name: namespace.get(name, missing) for name in stand_ins}
        namespace.update(stand_ins)
        try:
            return func(*args, **kwargs)
        finally:
            for name, value in saved.items():
                if value is missing:
                    namespace.pop(name, None)
                else:
                    namespace[name] = value

    return call
