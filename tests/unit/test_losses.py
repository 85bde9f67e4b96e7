"""Unit tests of rnnlab.losses: argument errors, masking, reductions, stability, config, lookup.

The comparisons against ``torch.nn.functional`` (marked ``reference``) live at the end of this file.
"""

from __future__ import annotations

import json
import math
import os
import re

import numpy as np
import pytest

from rnnlab.nn import losses
from rnnlab.nn.losses import (
    BinaryCrossEntropyWithLogits,
    MeanSquaredError,
    SoftmaxCrossEntropy,
)

B, T, C = 3, 4, 5


def ce_batch(rng, dtype=np.float64):
    return rng.normal(size=(B, T, C)).astype(dtype), rng.integers(0, C, size=(B, T))


def all_losses():
    """One instance of every loss and reduction, with a matching ``(y_pred, y_true)`` factory."""
    cases = []
    for reduction in ("mean", "sum", "half_sum"):
        cases.append((MeanSquaredError(reduction), lambda r: (r.normal(size=(B, T, 2)), r.normal(size=(B, T, 2)))))
    for reduction in ("mean", "sum"):
        cases.append((SoftmaxCrossEntropy(reduction), ce_batch))
        cases.append((SoftmaxCrossEntropy(reduction),
                      lambda r: (r.normal(size=(B, T, C)), np.eye(C)[r.integers(0, C, (B, T))])))
        cases.append((BinaryCrossEntropyWithLogits(reduction),
                      lambda r: (r.normal(size=(B, T, 2)), r.random((B, T, 2)))))
    return cases


LOSS_CASES = all_losses()
LOSS_IDS = [f"{type(loss).__name__}-{loss.reduction}-{i}" for i, (loss, _) in enumerate(LOSS_CASES)]


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "y_pred, exc, match",
    [
        ([[0.1, 0.2]], TypeError, r"y_pred must be a NumPy float array.*got list"),
        (np.zeros((2, 3), dtype=np.int64), TypeError, r"y_pred must be a float32 or float64.*got dtype int64"),
        (np.zeros((2, 3), dtype=np.float16), TypeError, r"y_pred .*got dtype float16"),
        (np.array([[0.0, np.nan, 1.0]]), ValueError, r"y_pred contains NaN or inf: nan at index \(0, 1\)"),
        (np.array([[0.0, 1.0], [-np.inf, 2.0]]), ValueError, r"y_pred contains NaN or inf: -inf at index \(1, 0\)"),
    ],
)
@pytest.mark.parametrize("loss_cls", [MeanSquaredError, SoftmaxCrossEntropy, BinaryCrossEntropyWithLogits])
def test_bad_y_pred(loss_cls, y_pred, exc, match):
    shape = np.shape(y_pred)
    y_true = np.zeros(shape[:-1], dtype=np.int64) if loss_cls is SoftmaxCrossEntropy else np.zeros(shape)
    with pytest.raises(exc, match=match):
        loss_cls()(y_pred, y_true)


def test_cross_entropy_needs_a_class_axis():
    with pytest.raises(ValueError, match=r"y_pred must have at least 1 axis.*got shape \(\)"):
        SoftmaxCrossEntropy()(np.array(1.0), np.array(0))
    with pytest.raises(ValueError, match=r"y_pred must have at least one class.*got shape \(2, 0\)"):
        SoftmaxCrossEntropy()(np.zeros((2, 0)), np.zeros(2, dtype=int))


@pytest.mark.parametrize("loss_cls", [MeanSquaredError, BinaryCrossEntropyWithLogits])
@pytest.mark.parametrize("bad_shape", [(B, T), (B, T, 1), (T, B, 2), (1, T, 2)])
def test_elementwise_losses_never_broadcast(loss_cls, bad_shape, rng):
    y_pred = rng.normal(size=(B, T, 2))
    escaped = re.escape(str(bad_shape))
    with pytest.raises(ValueError,
                       match=rf"y_true must have the same shape as y_pred \(3, 4, 2\), got shape {escaped}"):
        loss_cls()(y_pred, np.zeros(bad_shape))


@pytest.mark.parametrize("bad_id", [C, C + 7, -1])
def test_class_id_out_of_range(bad_id, rng):
    logits, ids = ce_batch(rng)
    ids[1, 2] = bad_id
    with pytest.raises(ValueError, match=rf"y_true class ids must lie in \[0, {C}\).*got {bad_id} at index \(1, 2\)"):
        SoftmaxCrossEntropy()(logits, ids)


def test_class_ids_must_be_integers(rng):
    logits, ids = ce_batch(rng)
    with pytest.raises(TypeError, match=r"y_true of shape \(3, 4\) holds class ids.*integer array, got dtype float64"):
        SoftmaxCrossEntropy()(logits, ids.astype(float))


@pytest.mark.parametrize("bad_shape", [(B,), (T, B), (B, T, C + 1), (B, T, 1), (B, T, C, 1)])
def test_cross_entropy_target_shape(bad_shape, rng):
    logits, _ = ce_batch(rng)
    escaped = re.escape(str(bad_shape))
    with pytest.raises(ValueError, match=r"y_true must be class ids of shape \(3, 4\) or class probabilities of shape "
                                         rf"\(3, 4, 5\).*got shape {escaped}"):
        SoftmaxCrossEntropy()(logits, np.zeros(bad_shape, dtype=np.int64))


@pytest.mark.parametrize("value", [-0.5, 1.5, np.nan])
def test_probability_targets_in_unit_interval(value, rng):
    logits, ids = ce_batch(rng)
    probs = np.eye(C)[ids]
    probs[2, 0, 3] = value
    with pytest.raises(ValueError, match=r"y_true must hold class probabilities that are finite and in \[0, 1\], "
                                         rf"got {value} at index \(2, 0, 3\)"):
        SoftmaxCrossEntropy()(logits, probs)


@pytest.mark.parametrize("value", [2.0, -1.0, np.inf])
def test_binary_targets_in_unit_interval(value, rng):
    y = rng.random((B, T))
    y[0, 3] = value
    with pytest.raises(ValueError, match=r"y_true must hold binary targets that are finite and in \[0, 1\], "
                                         rf"got {value} at index \(0, 3\)"):
        BinaryCrossEntropyWithLogits()(rng.normal(size=(B, T)), y)


def test_regression_targets_finite_and_real(rng):
    y = rng.normal(size=(B, T))
    y[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"y_true must hold targets that are finite, got nan at index \(2, 1\)"):
        MeanSquaredError()(rng.normal(size=(B, T)), y)
    with pytest.raises(TypeError, match=r"y_true must be a real-valued array.*got dtype <U1"):
        MeanSquaredError()(rng.normal(size=(1,)), np.array(["a"]))


@pytest.mark.parametrize(
    "mask, exc, match",
    [
        (np.ones((T, B), bool), ValueError, r"mask must have the shape of the leading \(step\) axes of y_pred of shape "
                                            r"\(3, 4, 5\), one of \(3,\), \(3, 4\); got shape \(4, 3\)"),
        (np.ones((B, T, C), bool), ValueError, r"one of \(3,\), \(3, 4\); got shape \(3, 4, 5\)"),
        (np.ones((B, 1), bool), ValueError, r"got shape \(3, 1\)"),
        (np.full((B, T), 2), ValueError, r"mask must hold only 0 and 1 \(or booleans\), got values \[2\]"),
        (np.full((B, T), 0.5), ValueError, r"mask must hold only 0 and 1.*got values \[0.5\]"),
        (np.full((B, T), "x"), TypeError, r"mask must be a boolean or 0/1 array, got dtype <U1"),
    ],
)
def test_bad_mask(mask, exc, match, rng):
    logits, ids = ce_batch(rng)
    with pytest.raises(exc, match=match):
        SoftmaxCrossEntropy()(logits, ids, mask)


def test_mse_mask_may_cover_every_axis_but_no_more(rng):
    y, d = rng.normal(size=(B, T)), rng.normal(size=(B, T))
    MeanSquaredError()(y, d, np.ones((B, T), bool))  # elementwise mask: fine
    with pytest.raises(ValueError, match=r"one of \(3,\), \(3, 4\); got shape \(3, 4, 1\)"):
        MeanSquaredError()(y, d, np.ones((B, T, 1), bool))


@pytest.mark.parametrize(
    "factory, match",
    [
        (lambda: MeanSquaredError("avg"), r"reduction must be one of 'mean', 'sum', 'half_sum'; got 'avg'"),
        (lambda: SoftmaxCrossEntropy("half_sum"), r"reduction must be one of 'mean', 'sum'; got 'half_sum'"),
        (lambda: BinaryCrossEntropyWithLogits("none"), r"reduction must be one of 'mean', 'sum'; got 'none'"),
    ],
)
def test_unknown_reduction(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_from_logits_must_be_bool():
    with pytest.raises(TypeError, match=r"from_logits must be a bool, got str 'yes'"):
        SoftmaxCrossEntropy(from_logits="yes")


def test_probabilities_must_be_probabilities(rng):
    _, ids = ce_batch(rng)
    loss = SoftmaxCrossEntropy(from_logits=False)
    with pytest.raises(ValueError,
                       match=r"y_pred must hold probabilities in \[0, 1\] when from_logits=False, got values from -"):
        loss(rng.normal(size=(B, T, C)), ids)
    p = np.full((B, T, C), 1.0 / C)
    p[1, 1] = np.eye(C)[(ids[1, 1] + 1) % C]  # all the mass off the target class
    with pytest.raises(ValueError, match=r"probability 0 to a target class at step \(1, 1\)"):
        loss(p, ids)
    mask = np.ones((B, T), bool)
    mask[1, 1] = False
    assert math.isfinite(loss(p, ids, mask))  # ... unless that step is masked


@pytest.mark.parametrize("loss, make", LOSS_CASES, ids=LOSS_IDS)
def test_backward_before_call(loss, make):
    fresh = type(loss).from_config(loss.get_config())
    with pytest.raises(ValueError, match=rf"{type(loss).__name__}.backward was called before the loss was computed"):
        fresh.backward()


def test_failed_call_forgets_the_previous_gradient(rng):
    logits, ids = ce_batch(rng)
    loss = SoftmaxCrossEntropy()
    loss(logits, ids)
    ids[0, 0] = C
    with pytest.raises(ValueError, match="class ids"):
        loss(logits, ids)
    with pytest.raises(ValueError, match="backward was called before the loss was computed"):
        loss.backward()


# --------------------------------------------------------------------------- masking and reductions
@pytest.mark.parametrize("loss, make", LOSS_CASES, ids=LOSS_IDS)
def test_all_masked_is_zero_not_nan(loss, make, rng):
    y_pred, y_true = make(rng)
    with np.errstate(all="raise"):
        value = loss(y_pred, y_true, np.zeros((B, T), bool))
        grad = loss.backward()
    assert value == 0.0 and isinstance(value, float)
    assert grad.shape == y_pred.shape and not grad.any()


@pytest.mark.parametrize("loss, make", LOSS_CASES, ids=LOSS_IDS)
def test_masked_steps_change_nothing(loss, make, rng):
    """Padding: any prediction or target at a masked step leaves the loss and the gradient alone."""
    y_pred, y_true = make(rng)
    mask = rng.random((B, T)) < 0.5
    mask[0, 0], mask[-1, -1] = True, False
    value, grad = loss(y_pred, y_true, mask), loss.backward()
    y_pred2, y_true2 = y_pred.copy(), y_true.copy()
    y_pred2[~mask] = rng.normal(size=y_pred2[~mask].shape) * 10
    if isinstance(loss, SoftmaxCrossEntropy) and y_true.ndim == 2:
        y_true2[~mask] = -100  # padding ids need not be valid classes
    else:
        y_true2[~mask] = np.nan  # nor padding values finite
    assert loss(y_pred2, y_true2, mask) == pytest.approx(value, rel=1e-12)
    grad2 = loss.backward()
    np.testing.assert_allclose(grad2, grad, rtol=1e-12, atol=0)
    assert not grad2[~mask].any()


@pytest.mark.parametrize("loss, make", LOSS_CASES, ids=LOSS_IDS)
def test_masked_loss_equals_loss_on_the_valid_steps(loss, make, rng):
    y_pred, y_true = make(rng)
    mask = rng.random((B, T)) < 0.5
    mask[0, 0] = True
    assert loss(y_pred, y_true, mask) == pytest.approx(loss(y_pred[mask], y_true[mask]), rel=1e-12)
    int_mask = mask.astype(np.int8)
    assert loss(y_pred, y_true, int_mask) == pytest.approx(loss(y_pred[mask], y_true[mask]), rel=1e-12)


def test_batch_mask_covers_whole_sequences(rng):
    logits, ids = ce_batch(rng)
    keep = np.array([True, False, True])
    loss = SoftmaxCrossEntropy()
    assert loss(logits, ids, keep) == pytest.approx(loss(logits[keep], ids[keep]), rel=1e-12)


def test_sum_is_the_sum_over_steps_and_mean_averages_valid_steps(rng):
    """L = sum_t L_t over valid steps and the batch; "mean" divides by the number of valid steps."""
    logits, ids = ce_batch(rng)
    mask = rng.random((B, T)) < 0.7
    mask[0, 0] = True
    per_step = [-math.log(np.exp(logits[b, t, ids[b, t]]) / np.exp(logits[b, t]).sum())
                for b in range(B) for t in range(T) if mask[b, t]]
    assert SoftmaxCrossEntropy("sum")(logits, ids, mask) == pytest.approx(sum(per_step), rel=1e-12)
    assert SoftmaxCrossEntropy("mean")(logits, ids, mask) == pytest.approx(sum(per_step) / len(per_step), rel=1e-12)


def test_mse_reductions(rng):
    y, d = rng.normal(size=(B, T, 2)), rng.normal(size=(B, T, 2))
    mask = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=bool)
    sq = [(y[b, t, f] - d[b, t, f]) ** 2 for b in range(B) for t in range(T) for f in range(2) if mask[b, t]]
    assert MeanSquaredError("sum")(y, d, mask) == pytest.approx(sum(sq), rel=1e-12)
    assert MeanSquaredError("half_sum")(y, d, mask) == pytest.approx(sum(sq) / 2, rel=1e-12)
    assert MeanSquaredError("mean")(y, d, mask) == pytest.approx(sum(sq) / (7 * 2), rel=1e-12)  # valid steps x features
    loss = MeanSquaredError("half_sum")
    loss(y, d)
    np.testing.assert_allclose(loss.backward(), y - d, rtol=1e-15)  # the notes' dL/dy = y - d


def test_one_hot_and_ids_agree(rng):
    logits, ids = ce_batch(rng)
    loss = SoftmaxCrossEntropy()
    a, ga = loss(logits, ids), loss.backward()
    b, gb = loss(logits, np.eye(C)[ids]), loss.backward()
    assert a == pytest.approx(b, rel=1e-12)
    np.testing.assert_allclose(ga, gb, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ga.sum(axis=-1), 0, atol=1e-15)  # softmax - onehot sums to 0 per row


# --------------------------------------------------------------------------- stability and dtypes
def test_cross_entropy_extreme_logits():
    logits = np.array([[1000.0, 0.0], [0.0, 1000.0], [-1000.0, 1000.0]])
    ids = np.array([0, 0, 0])
    loss = SoftmaxCrossEntropy("sum")
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = loss(logits, ids)
        grad = loss.backward()
    # -log softmax: 0 (up to e^-1000), 1000, 2000
    assert value == pytest.approx(3000.0, rel=1e-15)
    np.testing.assert_allclose(grad, [[0.0, 0.0], [-1.0, 1.0], [-1.0, 1.0]], atol=1e-300)


def test_bce_extreme_logits():
    z = np.array([1000.0, -1000.0, 1000.0, -1000.0, 0.0])
    y = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    loss = BinaryCrossEntropyWithLogits("sum")
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = loss(z, y)
        grad = loss.backward()
    assert value == pytest.approx(2000.0 + math.log(2.0), rel=1e-15)
    np.testing.assert_allclose(grad, [0.0, 0.0, 1.0, -1.0, -0.5], atol=1e-300)


@pytest.mark.parametrize("loss, make", LOSS_CASES, ids=LOSS_IDS)
def test_float32_in_float32_gradient_out(loss, make, rng):
    y_pred, y_true = make(rng)
    y32 = y_pred.astype(np.float32)
    value = loss(y32, y_true)
    grad = loss.backward()
    assert isinstance(value, float)
    assert grad.dtype == np.float32 and grad.shape == y32.shape
    reference = loss(y32.astype(np.float64), y_true)
    assert value == pytest.approx(reference, rel=1e-5)
    np.testing.assert_allclose(grad, loss.backward(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("loss, make", LOSS_CASES, ids=LOSS_IDS)
def test_backward_is_valid_until_the_next_call_and_inputs_are_untouched(loss, make, rng):
    """``backward()`` may be called again (same values, not scaled twice); inputs are never written."""
    y_pred, y_true = make(rng)
    before_pred, before_true = y_pred.copy(), y_true.copy()
    loss(y_pred, y_true, rng.random((B, T)) < 0.5)
    first = loss.backward().copy()
    np.testing.assert_array_equal(loss.backward(), first)
    np.testing.assert_array_equal(y_pred, before_pred)
    np.testing.assert_array_equal(y_true, before_true)


def test_class_id_gradient_is_a_reused_buffer(rng, kernel_backend):
    """The fused path writes every call's gradient into one buffer (per shape and dtype): the array
    ``backward()`` returned holds the next call's gradient after that call."""
    logits, ids = ce_batch(rng)
    loss = SoftmaxCrossEntropy()
    loss(logits, ids)
    first = loss.backward()
    kept = first.copy()
    assert loss.backward() is first
    loss(logits * 2, ids)
    second = loss.backward()
    assert np.shares_memory(first, second)
    assert not np.allclose(first, kept)
    loss(logits, ids)
    np.testing.assert_array_equal(loss.backward(), kept)
    loss(logits.astype(np.float32), ids)  # another dtype: another buffer
    assert loss.backward().dtype == np.float32 and not np.shares_memory(loss.backward(), first)


# --------------------------------------------------------------------------- config and lookup
@pytest.mark.parametrize("loss, make", LOSS_CASES, ids=LOSS_IDS)
def test_config_round_trip(loss, make, rng):
    config = json.loads(json.dumps(loss.get_config()))
    clone = type(loss).from_config(config)
    assert clone.get_config() == loss.get_config()
    y_pred, y_true = make(rng)
    assert clone(y_pred, y_true) == loss(y_pred, y_true)
    assert repr(clone) == repr(loss)


@pytest.mark.parametrize(
    "name, cls, reduction",
    [
        ("mse", MeanSquaredError, "mean"),
        ("mean_squared_error", MeanSquaredError, "mean"),
        ("half_sse", MeanSquaredError, "half_sum"),
        ("cross_entropy", SoftmaxCrossEntropy, "mean"),
        ("softmax_cross_entropy", SoftmaxCrossEntropy, "mean"),
        ("sparse_categorical_crossentropy", SoftmaxCrossEntropy, "mean"),
        ("categorical_crossentropy", SoftmaxCrossEntropy, "mean"),
        ("bce_with_logits", BinaryCrossEntropyWithLogits, "mean"),
        ("binary_crossentropy", BinaryCrossEntropyWithLogits, "mean"),
    ],
)
def test_get_by_name(name, cls, reduction):
    loss = losses.get(name)
    assert type(loss) is cls and loss.reduction == reduction
    if name != "half_sse":
        assert losses.get(name, reduction="sum").reduction == "sum"


def test_get_errors():
    with pytest.raises(ValueError, match=r"loss must be one of 'mse', .*'binary_crossentropy'; got 'msee'"):
        losses.get("msee")
    with pytest.raises(TypeError, match=r"loss must be a name \(str\) or an instance of Loss, got int 3"):
        losses.get(3)
    with pytest.raises(ValueError, match=r"loss 'half_sse' means reduction='half_sum'; got reduction='mean'"):
        losses.get("half_sse", reduction="mean")
    instance = SoftmaxCrossEntropy()
    assert losses.get(instance) is instance
    with pytest.raises(ValueError, match=r"loss is already a SoftmaxCrossEntropy instance"):
        losses.get(instance, reduction="sum")
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'from_logits'"):
        losses.get("mse", from_logits=True)


# --------------------------------------------------------------------------- against PyTorch
def _torch():
    torch = pytest.importorskip("torch")
    return torch, torch.nn.functional


def _torch_value_and_grad(fn, y_pred, *args):
    torch, _ = _torch()
    y = torch.tensor(y_pred, dtype=torch.float64, requires_grad=True)
    value = fn(y, *args)
    value.backward()
    return value.item(), y.grad.numpy()


def _compare(loss, y_pred, y_true, mask, expected_value, expected_grad):
    value = loss(y_pred, y_true, mask)
    assert value == pytest.approx(expected_value, rel=1e-10, abs=1e-10)
    np.testing.assert_allclose(loss.backward(), expected_grad, rtol=1e-10, atol=1e-10)


MASK_KINDS = ["none", "steps", "batch"]


def _mask(kind, rng):
    if kind == "none":
        return None
    mask = rng.random((B, T) if kind == "steps" else (B,)) < 0.6
    mask.flat[0], mask.flat[-1] = True, False
    return mask


def _select(mask, shape):
    """A torch boolean index selecting the valid steps (the whole array without a mask)."""
    torch, _ = _torch()
    return torch.ones(shape, dtype=torch.bool) if mask is None else torch.tensor(mask)


@pytest.mark.reference
@pytest.mark.parametrize("mask_kind", MASK_KINDS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "half_sum"])
def test_mse_against_torch(reduction, mask_kind, rng):
    torch, F = _torch()
    y_pred, y_true, mask = rng.normal(size=(B, T, 2)), rng.normal(size=(B, T, 2)), _mask(mask_kind, rng)
    sel = _select(mask, (B, T))
    target = torch.tensor(y_true)

    def reference(y):
        if reduction == "half_sum":
            return 0.5 * F.mse_loss(y[sel], target[sel], reduction="sum")
        return F.mse_loss(y[sel], target[sel], reduction=reduction)

    _compare(MeanSquaredError(reduction), y_pred, y_true, mask, *_torch_value_and_grad(reference, y_pred))


@pytest.mark.reference
@pytest.mark.parametrize("target_form", ["ids", "probs"])
@pytest.mark.parametrize("mask_kind", MASK_KINDS)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_against_torch(reduction, mask_kind, target_form, rng):
    torch, F = _torch()
    logits, ids = ce_batch(rng)
    logits *= 3
    y_true = ids if target_form == "ids" else rng.dirichlet(np.ones(C), size=(B, T))
    mask = _mask(mask_kind, rng)
    sel = _select(mask, (B, T))
    target = torch.tensor(y_true)[sel]
    target = target.reshape(-1) if target_form == "ids" else target.reshape(-1, C)  # (N,) or (N, C)

    def reference(z):
        return F.cross_entropy(z[sel].reshape(-1, C), target, reduction=reduction)

    value, grad = _torch_value_and_grad(reference, logits)
    _compare(SoftmaxCrossEntropy(reduction), logits, y_true, mask, value, grad)


@pytest.mark.reference
@pytest.mark.parametrize("target_form", ["ids", "probs"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_from_probabilities_against_torch(reduction, target_form, rng):
    torch, F = _torch()
    p = rng.dirichlet(np.ones(C), size=(B, T))
    _, ids = ce_batch(rng)
    y_true = ids if target_form == "ids" else rng.dirichlet(np.ones(C), size=(B, T))
    mask = _mask("steps", rng)
    sel = _select(mask, (B, T))
    target = torch.tensor(y_true)[sel]

    def reference(q):
        logq = torch.log(q[sel])  # (N, C)
        if target_form == "ids":
            return F.nll_loss(logq, target, reduction=reduction)
        per_step = -(target * logq).sum(-1)
        return per_step.mean() if reduction == "mean" else per_step.sum()

    _compare(SoftmaxCrossEntropy(reduction, from_logits=False), p, y_true, mask, *_torch_value_and_grad(reference, p))


@pytest.mark.reference
@pytest.mark.parametrize("mask_kind", MASK_KINDS)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bce_with_logits_against_torch(reduction, mask_kind, rng):
    torch, F = _torch()
    z, y = rng.normal(size=(B, T, 2)) * 4, rng.random((B, T, 2))
    y[0, 0] = [0.0, 1.0]
    mask = _mask(mask_kind, rng)
    sel = _select(mask, (B, T))
    target = torch.tensor(y)[sel]
    value, grad = _torch_value_and_grad(
        lambda t: F.binary_cross_entropy_with_logits(t[sel], target, reduction=reduction), z)
    _compare(BinaryCrossEntropyWithLogits(reduction), z, y, mask, value, grad)


# --------------------------------------------------------------------------- ignore_index and the terms record
def test_ignore_index_config_and_checks(rng):
    loss = SoftmaxCrossEntropy("sum", ignore_index=-100)
    assert loss.get_config() == {"reduction": "sum", "from_logits": True, "ignore_index": -100}
    assert SoftmaxCrossEntropy.from_config(json.loads(json.dumps(loss.get_config()))).ignore_index == -100
    assert SoftmaxCrossEntropy().get_config()["ignore_index"] is None
    older_run = {"reduction": "mean", "from_logits": True}  # a config written before ignore_index
    assert SoftmaxCrossEntropy.from_config(older_run).ignore_index is None
    for bad in (1.5, True, "-100"):
        with pytest.raises(TypeError, match="ignore_index must be an int or None"):
            SoftmaxCrossEntropy(ignore_index=bad)
    logits, ids = ce_batch(rng)
    ids[0, 0] = -1
    with pytest.raises(ValueError, match=r"class ids must lie in \[0, 5\) \(or ignore_index=-100\).*got -1"):
        loss(logits, ids)
    ids[0, 0] = -100
    with pytest.raises(ValueError, match=r"class ids must lie in \[0, 5\) for 5 classes, got -100"):
        SoftmaxCrossEntropy()(logits, ids)  # without ignore_index, -100 is no class


def test_ignore_index_is_a_mask(rng):
    logits, ids = ce_batch(rng)
    mask = rng.random((B, T)) < 0.7
    mask[0, 0] = True
    ignored = np.where(mask, ids, 3 * C)
    for reduction in ("mean", "sum"):
        masked = SoftmaxCrossEntropy(reduction)
        value, grad = masked(logits, ids, mask), masked.backward().copy()
        loss = SoftmaxCrossEntropy(reduction, ignore_index=3 * C)
        assert loss(logits, ignored) == pytest.approx(value, rel=1e-12)
        np.testing.assert_allclose(loss.backward(), grad, rtol=1e-12, atol=1e-15)
        assert loss.terms.count == masked.terms.count == int(mask.sum())
        np.testing.assert_array_equal(loss.terms.mask, mask)
    # probability targets: ignore_index does not apply
    probs = np.eye(C)[ids]
    assert SoftmaxCrossEntropy(ignore_index=0)(logits, probs) == pytest.approx(SoftmaxCrossEntropy()(logits, probs))


@pytest.mark.parametrize("loss, make", LOSS_CASES, ids=LOSS_IDS)
def test_terms_of_the_last_call(loss, make, rng):
    y_pred, y_true = make(rng)
    mask = rng.random((B, T)) < 0.5
    mask[0, 0] = True
    value = loss(y_pred, y_true, mask)
    terms = loss.terms
    kind = {MeanSquaredError: "squared_error", BinaryCrossEntropyWithLogits: "binary_cross_entropy"}.get(
        type(loss), "nll" if y_true.ndim == 2 else "cross_entropy")
    assert terms.kind == kind
    per_step = np.prod(y_pred.shape[2:]) if not isinstance(loss, SoftmaxCrossEntropy) else 1
    assert terms.count == int(mask.sum()) * per_step
    assert terms.total == pytest.approx(float(terms.values.sum()), rel=1e-12)
    assert not terms.values[~mask].any()
    scale = {"mean": 1 / terms.count, "sum": 1.0, "half_sum": 0.5}[loss.reduction]
    assert value == pytest.approx(terms.total * scale, rel=1e-12)
    with pytest.raises(ValueError):
        loss(y_pred[..., :0] if isinstance(loss, SoftmaxCrossEntropy) else y_pred, y_true[:1])
    assert loss.terms is None  # a failed call leaves no terms behind


# --------------------------------------------------------------------------- the row pass on several threads
@pytest.fixture
def threads(monkeypatch):
    """Set :func:`rnnlab.nn.kernels.num_threads` for one test (and a small split size, so that a test
    batch is split at all)."""
    from rnnlab import _threads
    from rnnlab.nn.losses import cross_entropy

    monkeypatch.setattr(cross_entropy, "_MIN_SPLIT", 64)

    def set_threads(n):
        monkeypatch.setattr(_threads, "_threads", n)
    return set_threads


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_pass_on_threads_is_bit_identical(threads, rng, dtype):
    """The kernel's rows split between 1, 2 and 3 threads give the same loss, terms and gradient bit for
    bit, with a mask and uneven blocks."""
    pytest.importorskip("numba")
    from rnnlab.nn import kernels

    logits = rng.standard_normal((7, 5, 33)).astype(dtype)
    ids = rng.integers(0, 33, (7, 5))
    mask = rng.random((7, 5)) > 0.3
    results = []
    for n in (1, 2, 3):
        threads(n)
        with kernels.use("numba"):
            loss = SoftmaxCrossEntropy()
            value = loss(logits, ids, mask=mask)
            results.append((value, loss.backward().copy()))
    for value, grad in results[1:]:
        assert value == results[0][0]
        np.testing.assert_array_equal(grad, results[0][1])
    assert np.abs(results[0][1]).sum() > 0


def test_row_pass_on_threads_names_the_first_bad_row(threads, rng):
    """A NaN or inf only in the second thread's block is found, and named at its position."""
    pytest.importorskip("numba")
    from rnnlab.nn import kernels

    threads(2)
    logits = rng.standard_normal((4, 6, 40)).astype(np.float32)
    ids = rng.integers(0, 40, (4, 6))
    logits[3, 1, 7] = np.nan  # row 19 of 24: the second block
    with kernels.use("numba"), pytest.raises(ValueError, match=r"nan at index \(3, 1, 7\)"):
        SoftmaxCrossEntropy()(logits, ids)


def test_split_rows_blocks(monkeypatch):
    """split_rows covers [0, n) once, in order, in at most num_threads blocks of at least min_rows."""
    from rnnlab import _threads as kernels

    monkeypatch.setattr(kernels, "_threads", 3)
    assert kernels.split_rows(lambda lo, hi: (lo, hi), 10, 2) == [(0, 3), (3, 6), (6, 10)]
    assert kernels.split_rows(lambda lo, hi: (lo, hi), 10, 6) == [(0, 10)]
    assert kernels.split_rows(lambda lo, hi: (lo, hi), 0, 1) == [(0, 0)]


@pytest.mark.parametrize("env, value, expected", [
    ("RNNLAB_NUM_THREADS", "3", 3), ("OPENBLAS_NUM_THREADS", "1", 1), ("RNNLAB_NUM_THREADS", "zero", None)])
def test_num_threads_from_the_environment(monkeypatch, env, value, expected):
    from rnnlab import _threads as kernels

    for name in ("RNNLAB_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(env, value)
    monkeypatch.setattr(kernels, "_threads", None)
    n = kernels.num_threads()
    assert n == (expected if expected is not None else len(os.sched_getaffinity(0)))
