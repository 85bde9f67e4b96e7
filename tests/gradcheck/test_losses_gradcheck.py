"""Finite-difference checks of every loss's ``backward`` (float64, central differences).

For each loss, reduction, mask layout and target form, ``dL/dy_pred`` from ``backward()`` must
agree with ``(L(y + eps e_i) - L(y - eps e_i)) / (2 eps)`` for every element ``i`` to a relative
error (in the 2-norm over all elements) below 1e-7. The fused cross-entropy of class ids is checked
on both implementations of its row pass (NumPy and the numba kernel, float64 on both).
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.nn.functional import softmax
from rnnlab.nn.gradcheck import numerical_gradient
from rnnlab.nn.losses import (
    BinaryCrossEntropyWithLogits,
    MeanSquaredError,
    SoftmaxCrossEntropy,
)

EPS = 1e-6
TOL = 1e-7
B, T, C = 3, 4, 5

MASKS = ["none", "steps", "batch"]  # no mask, a (B, T) mask, a (B,) mask


def numerical_grad(f, x: np.ndarray) -> np.ndarray:
    return numerical_gradient(f, x, EPS)


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    scale = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return 0.0 if scale == 0 else float(np.linalg.norm(analytic - numeric) / scale)


def make_mask(kind: str, rng) -> np.ndarray | None:
    if kind == "none":
        return None
    shape = (B, T) if kind == "steps" else (B,)
    mask = rng.random(shape) < 0.6
    mask.flat[0], mask.flat[-1] = True, False  # at least one valid and one masked entry
    return mask


def check(loss, y_pred, y_true, mask):
    loss(y_pred, y_true, mask)
    analytic = loss.backward().copy()  # a loss may reuse its gradient buffer in its next call
    assert analytic.shape == y_pred.shape and analytic.dtype == y_pred.dtype
    numeric = numerical_grad(lambda y: loss(y, y_true, mask), y_pred.copy())
    assert relative_error(analytic, numeric) < TOL
    if mask is not None:  # masked steps get exactly zero gradient
        assert not analytic[~mask].any()
    assert np.abs(analytic).max() > 0  # something was actually checked


@pytest.mark.parametrize("mask_kind", MASKS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "half_sum"])
def test_mse(reduction, mask_kind, rng):
    y_pred = rng.normal(size=(B, T, 2))
    y_true = rng.normal(size=(B, T, 2))
    check(MeanSquaredError(reduction), y_pred, y_true, make_mask(mask_kind, rng))


@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("target", ["ids", "one_hot", "soft", "unnormalised"])
@pytest.mark.parametrize("mask_kind", MASKS)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_softmax_cross_entropy(reduction, mask_kind, target, from_logits, rng, kernel_backend):
    logits = rng.normal(size=(B, T, C)) * 2
    ids = rng.integers(0, C, size=(B, T))
    y_true = {
        "ids": ids,
        "one_hot": np.eye(C)[ids],
        "soft": softmax(rng.normal(size=(B, T, C))),
        "unnormalised": rng.random((B, T, C)),  # e.g. label smoothing without renormalisation
    }[target]
    # probabilities away from 0: the truncation error of central differences of -log p grows as 1/p^3
    y_pred = logits if from_logits else softmax(logits / 4)
    check(SoftmaxCrossEntropy(reduction, from_logits=from_logits), y_pred, y_true, make_mask(mask_kind, rng))


@pytest.mark.parametrize("target", ["hard", "soft"])
@pytest.mark.parametrize("mask_kind", MASKS)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_binary_cross_entropy_with_logits(reduction, mask_kind, target, rng):
    y_pred = rng.normal(size=(B, T, 2)) * 3
    y_true = (rng.random((B, T, 2)) < 0.5).astype(float) if target == "hard" else rng.random((B, T, 2))
    check(BinaryCrossEntropyWithLogits(reduction), y_pred, y_true, make_mask(mask_kind, rng))


def test_cross_entropy_single_row_of_logits(rng, kernel_backend):
    """Logits of shape (C,) with one class id of shape () (no batch axis at all)."""
    check(SoftmaxCrossEntropy(), rng.normal(size=C), np.int64(2), None)


@pytest.mark.parametrize("mask_kind", MASKS)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_ignore_index(reduction, mask_kind, rng, kernel_backend):
    """Ignored targets (any id, here -100 and 7 >= C) get zero gradient and leave the others' alone."""
    logits = rng.normal(size=(B, T, C)) * 2
    ids = rng.integers(0, C, size=(B, T))
    ids[0, 1], ids[2, 2] = -100, -100
    check(SoftmaxCrossEntropy(reduction, ignore_index=-100), logits, ids, make_mask(mask_kind, rng))
    ids[1, 0] = 7
    loss = SoftmaxCrossEntropy(reduction, ignore_index=7)
    check(loss, logits, np.where(ids == -100, 0, ids), make_mask(mask_kind, rng))
    assert not loss.backward()[1, 0].any()
