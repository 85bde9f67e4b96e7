"""The fused softmax cross-entropy of class ids against ``torch.nn.functional.cross_entropy``.

Every combination of: the row pass's implementation (NumPy, numba kernel), dtype (float32, float64),
logits of 2 or 3 axes, reduction (mean, sum), no mask / a step mask / a batch mask, and ignored
targets (``ignore_index``) or none. The value, the gradient and the per-token terms must match
PyTorch's (float64 autograd on the same logits), to 1e-10 in float64 and to float32 rounding in
float32. Extreme logits and non-finite ones are checked on both implementations too.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnlab._errors import NonFiniteError
from rnnlab.nn.grad_mode import no_grad
from rnnlab.nn.losses import SoftmaxCrossEntropy

torch = pytest.importorskip("torch")
F = torch.nn.functional

pytestmark = pytest.mark.reference

B, T, C = 4, 5, 11
IGNORE = -100


def _batch(rng, ndim, dtype, mask_kind, ignored):
    shape = (B, T) if ndim == 3 else (B * T,)
    logits = (rng.normal(size=shape + (C,)) * 4).astype(dtype)
    ids = rng.integers(0, C, size=shape)
    mask = None
    if mask_kind == "steps":
        mask = rng.random(shape) < 0.7
    elif mask_kind == "batch":
        mask = rng.random(shape[:1]) < 0.7
    if mask is not None:
        mask.flat[0], mask.flat[-1] = True, False
        ids[~mask] = rng.integers(-5, 3 * C, size=ids[~mask].shape)  # padding: any id
    if ignored:
        ids.flat[1], ids.flat[-2] = IGNORE, IGNORE
    return logits, ids, mask


def _torch_reference(logits, ids, mask, reduction):
    """Value, gradient (float64) and per-token NLL of torch's cross_entropy, masked steps as ignored."""
    valid = np.ones(ids.shape, bool) if mask is None else np.broadcast_to(
        mask.reshape(mask.shape + (1,) * (ids.ndim - mask.ndim)), ids.shape)
    target = torch.tensor(np.where(valid, ids, IGNORE)).reshape(-1)
    z = torch.tensor(logits.astype(np.float64), requires_grad=True)
    value = F.cross_entropy(z.reshape(-1, C), target, reduction=reduction, ignore_index=IGNORE)
    if reduction == "mean" and not (target != IGNORE).any():
        value = z.sum() * 0  # torch's mean over nothing is NaN; rnnlab's is 0
    value.backward()
    nll = F.cross_entropy(z.detach().reshape(-1, C), target, reduction="none", ignore_index=IGNORE)
    return value.item(), z.grad.numpy(), nll.numpy().reshape(ids.shape)


@pytest.mark.parametrize("ignored", [False, True], ids=["all-targets", "ignore_index"])
@pytest.mark.parametrize("mask_kind", ["none", "steps", "batch"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_class_ids_against_torch(dtype, ndim, reduction, mask_kind, ignored, rng, kernel_backend):
    logits, ids, mask = _batch(rng, ndim, dtype, mask_kind, ignored)
    if mask_kind == "batch" and ndim == 2:
        mask = mask[:, None][:, 0]  # a (N,) mask is the step mask of 2-D logits
    loss = SoftmaxCrossEntropy(reduction, ignore_index=IGNORE if ignored else None)
    if not ignored and mask is None:
        assert loss.ignore_index is None
    value = loss(logits, ids, mask)
    grad = loss.backward()
    expected_value, expected_grad, expected_nll = _torch_reference(logits, ids, mask, reduction)
    tol = 1e-10 if dtype == np.float64 else 2e-6
    assert value == pytest.approx(expected_value, rel=tol, abs=tol)
    assert grad.dtype == dtype and grad.shape == logits.shape
    np.testing.assert_allclose(grad, expected_grad, rtol=tol, atol=tol * (1 if reduction == "sum" else 0.1))
    terms = loss.terms
    assert terms.kind == "nll"
    valid = expected_nll != 0
    np.testing.assert_allclose(terms.values, expected_nll, rtol=tol, atol=tol * 10)
    assert not terms.values[~valid].any()
    valid_count = int(np.count_nonzero(np.where(np.broadcast_to(
        np.ones(ids.shape, bool) if mask is None else mask.reshape(mask.shape + (1,) * (ids.ndim - mask.ndim)),
        ids.shape), ids != IGNORE if ignored else True, False)))
    assert terms.count == valid_count
    assert terms.total == pytest.approx(float(expected_nll.sum()), rel=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_everything_ignored_is_zero(dtype, rng, kernel_backend):
    logits = rng.normal(size=(3, C)).astype(dtype)
    loss = SoftmaxCrossEntropy(ignore_index=IGNORE)
    assert loss(logits, np.full(3, IGNORE)) == 0.0
    assert not loss.backward().any() and loss.terms.count == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits(dtype, kernel_backend):
    big = 1000.0 if dtype == np.float64 else 80.0
    logits = np.array([[big, 0.0, 0.0], [0.0, big, -big], [-big, big, 0.0]], dtype=dtype)
    ids = np.array([0, 0, 2])
    loss = SoftmaxCrossEntropy("sum")
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = loss(logits, ids)
        grad = loss.backward()
    z = torch.tensor(logits.astype(np.float64), requires_grad=True)
    expected = F.cross_entropy(z, torch.tensor(ids), reduction="sum")
    expected.backward()
    assert value == pytest.approx(expected.item(), rel=1e-6)
    np.testing.assert_allclose(grad, z.grad.numpy(), atol=1e-6)
    assert np.isfinite(grad).all()


@pytest.mark.parametrize("where", ["valid", "masked", "ignored"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_logits_are_named(dtype, bad, where, rng, kernel_backend):
    """NaN or inf anywhere in y_pred, even in a masked or ignored row, raises NonFiniteError naming it."""
    logits, ids, _ = _batch(rng, 3, dtype, "none", False)
    mask = np.ones((B, T), bool)
    logits[2, 3, 7] = bad
    if where == "masked":
        mask[2, 3] = False
    if where == "ignored":
        ids[2, 3] = IGNORE
    loss = SoftmaxCrossEntropy(ignore_index=IGNORE)
    with pytest.raises(NonFiniteError, match=r"y_pred contains NaN or inf.* at index \(2, 3, 7\)") as info:
        loss(logits, ids, mask)
    assert info.value.name == "y_pred" and info.value.index == (2, 3, 7)
    assert loss.terms is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_grad_gives_the_same_terms_and_refuses_backward(dtype, rng, kernel_backend):
    logits, ids, mask = _batch(rng, 3, dtype, "steps", True)
    loss = SoftmaxCrossEntropy(ignore_index=IGNORE)
    value = loss(logits, ids, mask)
    terms = loss.terms.values.copy()
    with no_grad():
        assert loss(logits, ids, mask) == value
    np.testing.assert_array_equal(loss.terms.values, terms)
    with pytest.raises(ValueError, match=r"SoftmaxCrossEntropy.backward: its last forward call ran under "
                                         r"rnnlab.nn.no_grad\(\)"):
        loss.backward()
    loss(logits, ids, mask)
    assert loss.backward().shape == logits.shape  # outside no_grad again


def test_kernel_and_numpy_paths_agree_in_float32(rng):
    from rnnlab.nn import kernels

    if not kernels.available():
        pytest.skip("numba is not installed")
    logits, ids, mask = _batch(rng, 3, np.float32, "steps", True)
    out = {}
    for backend in ("numpy", "numba"):
        with kernels.use(backend):
            loss = SoftmaxCrossEntropy(ignore_index=IGNORE)
            out[backend] = (loss(logits, ids, mask), loss.backward().copy(), loss.terms.values.copy())
    assert out["numpy"][0] == pytest.approx(out["numba"][0], rel=1e-6)
    np.testing.assert_allclose(out["numpy"][1], out["numba"][1], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(out["numpy"][2], out["numba"][2], rtol=1e-5, atol=1e-6)
    assert math.isfinite(out["numba"][0])
