"""Elementwise activations and their derivatives, written from the outputs.

Each activation ``y = f(x)`` comes with ``f_grad(y)``: the derivative expressed through the output,
so the backward pass reuses what the forward pass cached instead of recomputing it:

- ``sigmoid``: ``s(x) = 1 / (1 + e^-x)``, ``s' = s (1 - s)``; computed as ``(1 + tanh(x/2)) / 2``,
  which cannot overflow.
- ``tanh``: ``tanh' = 1 - y^2``.
- ``relu``: ``max(x, 0)``, derivative ``1[y > 0]``.
- ``linear``: identity, derivative 1.

All functions accept ``out=`` (which may be ``x`` itself) so the recurrent loops work in place.
"""

from __future__ import annotations

import numpy as np

from rnnlab._validation import check_choice


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``s(x) = 1 / (1 + e^-x)``, computed as ``(1 + tanh(x/2)) / 2`` (no overflow)."""
    out = np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


def sigmoid_grad(y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``s'(x) = y (1 - y)`` for ``y = s(x)`` (``out`` may be ``y`` itself)."""
    if out is None or np.may_share_memory(out, y):
        return np.multiply(y, 1.0 - y, out=out)
    np.subtract(1.0, y, out=out)  # into ``out``: no temporary
    out *= y
    return out


def tanh(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``tanh(x)``."""
    return np.tanh(x, out=out)


def tanh_grad(y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``tanh'(x) = 1 - y^2`` for ``y = tanh(x)``."""
    out = np.multiply(y, y, out=out)
    np.subtract(1.0, out, out=out)
    return out


def relu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``max(x, 0)``."""
    return np.maximum(x, 0.0, out=out)


def relu_grad(y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``1[y > 0]`` (the subgradient 0 is taken at 0, as PyTorch does)."""
    if out is None:
        return (y > 0).astype(y.dtype)
    np.greater(y, 0, out=out, casting="unsafe")
    return out


def linear(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The identity (a copy of ``x``, or ``x`` written into ``out``)."""
    if out is None:
        return x.copy()
    if out is not x:
        np.copyto(out, x)
    return out


def linear_grad(y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Ones, the identity's derivative."""
    if out is None:
        return np.ones_like(y)
    out.fill(1.0)
    return out


ACTIVATIONS = {
    "tanh": (tanh, tanh_grad),
    "sigmoid": (sigmoid, sigmoid_grad),
    "relu": (relu, relu_grad),
    "linear": (linear, linear_grad),
}


def get_activation(name: str, argument: str = "activation"):
    """Return ``(f, f_grad)`` for an activation name, or raise naming ``argument``."""
    check_choice(argument, name, ACTIVATIONS)
    return ACTIVATIONS[name]


def row_norms(d: np.ndarray) -> np.ndarray:
    """``||d_b||_2`` for each row of a (B, H) array, as float64, finite for every finite ``d``.

    The squares are summed in float64 (a float32 gradient of 1e20 does not overflow); rows whose
    squares would overflow or underflow float64 (entries beyond about 1e154 or below 1e-154) are
    scaled by their largest entry first.
    """
    out = np.sqrt(np.einsum("bh,bh->b", d, d, dtype=np.float64))
    # rows whose squares overflowed (entries beyond ~1e154) or may have underflowed (below ~1e-154)
    unsafe = ~((out > 1e-150) & (out < 1e150)) & np.isfinite(d).all(axis=1) & (d != 0).any(axis=1)
    if unsafe.any():
        rows = d[unsafe].astype(np.float64)
        scale = np.abs(rows).max(axis=1, keepdims=True)  # (b, 1), > 0
        out[unsafe] = scale[:, 0] * np.sqrt(np.einsum("bh,bh->b", rows / scale, rows / scale))
    return out


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """``softmax(z)_k = e^{z_k - max z} / sum_j e^{z_j - max z}`` (shifted, so it cannot overflow).

    One array the size of ``z`` is allocated (the result); the shift, ``exp`` and the division run in it.
    """
    e = np.subtract(z, z.max(axis=axis, keepdims=True))
    np.exp(e, out=e)
    e /= e.sum(axis=axis, keepdims=True)
    return e


def log_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """``log softmax(z)_k = z_k - max z - log sum_j e^{z_j - max z}``.

    Two arrays the size of ``z`` are allocated, the result and ``e^{z - max z}`` for its sum (three
    before, the same operations in the same order: the same numbers bit for bit).
    """
    out = np.subtract(z, z.max(axis=axis, keepdims=True))  # z - max z
    lse = np.log(np.exp(out).sum(axis=axis, keepdims=True))
    out -= lse
    return out


def one_hot(indices, num_classes: int, dtype="float32") -> np.ndarray:
    """Encode integer ids of any shape as one-hot vectors along a new last axis."""
    from rnnlab._validation import check_positive_int, resolve_dtype

    num_classes = check_positive_int("num_classes", num_classes)
    indices = np.asarray(indices)
    if not np.issubdtype(indices.dtype, np.integer):
        raise TypeError(f"indices must be integers, got dtype {indices.dtype}")
    if indices.size and (indices.min() < 0 or indices.max() >= num_classes):
        raise ValueError(
            f"indices must lie in [0, {num_classes}) for num_classes={num_classes}, "
            f"got values from {indices.min()} to {indices.max()}"
        )
    out = np.zeros(indices.shape + (num_classes,), dtype=resolve_dtype(dtype))
    np.put_along_axis(out, indices[..., None], 1.0, axis=-1)
    return out
