"""rnnlab.metrics: values by hand, masks, accumulation over batches, the registry, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnlab.training import metrics
from rnnlab.training.metrics import (
    accuracy,
    bits_per_character,
    mae,
    mse,
    perplexity,
    rmse,
)


# ---------------------------------------------------------------------------- accuracy
def test_accuracy_from_class_ids_by_hand():
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert accuracy(logits, np.array([0, 1, 1])) == pytest.approx(2 / 3)
    assert accuracy(logits, np.array([0, 1, 1]), mask=np.array([1, 1, 0])) == 1.0
    assert accuracy(logits, np.eye(2)[[0, 1, 1]]) == pytest.approx(2 / 3)  # one-hot targets


def test_accuracy_per_step_with_mask():
    logits = np.zeros((2, 3, 4))
    logits[0, :, 1] = 1.0  # row 0 predicts class 1 everywhere
    logits[1, :, 2] = 1.0  # row 1 predicts class 2 everywhere
    y = np.array([[1, 1, 3], [2, 0, 0]])
    mask = np.array([[True, True, True], [True, False, False]])
    assert accuracy(logits, y) == pytest.approx(3 / 6)
    assert accuracy(logits, y, mask) == pytest.approx(3 / 4)


def test_binary_accuracy_with_logits_and_probabilities():
    logits = np.array([[0.3], [-1.0], [2.0], [-0.1]])
    y = np.array([1, 0, 0, 0])
    assert accuracy(logits, y) == 0.75
    assert accuracy(logits, y[:, None]) == 0.75
    probs = np.array([0.7, 0.2, 0.4, 0.55])
    assert accuracy(probs, np.array([1, 0, 1, 1]), threshold=0.5) == 0.75


# ---------------------------------------------------------------------------- perplexity and bpc
def test_uniform_logits_give_perplexity_v_and_log2_v_bits():
    logits = np.zeros((3, 5, 8))
    y = np.arange(15).reshape(3, 5) % 8
    assert perplexity(logits, y) == pytest.approx(8.0)
    assert bits_per_character(logits, y) == pytest.approx(3.0)


def test_perplexity_and_bpc_from_probabilities_by_hand():
    probs = np.array([[0.5, 0.25, 0.25], [0.25, 0.25, 0.5]])
    y = np.array([0, 1])  # target probabilities 1/2 and 1/4: NLL ln 2 and 2 ln 2
    assert perplexity(probs, y, from_logits=False) == pytest.approx(2 ** 1.5)
    assert bits_per_character(probs, y, from_logits=False) == pytest.approx(1.5)
    assert perplexity(np.log(probs), y) == pytest.approx(2 ** 1.5)  # log-probs are valid logits
    assert perplexity(probs, y, mask=np.array([True, False]), from_logits=False) == pytest.approx(2.0)


def test_perplexity_accumulates_tokens_not_batch_means():
    probs_a = np.array([[[0.5, 0.5]]])               # 1 token, NLL ln 2
    probs_b = np.full((1, 3, 2), 0.5)
    probs_b[0, :, 0] = [0.125, 0.125, 0.125]         # 3 tokens of NLL ln 8
    y_a, y_b = np.zeros((1, 1), int), np.zeros((1, 3), int)
    m = metrics.get("perplexity", from_logits=False)
    m.update(probs_a, y_a)
    m.update(probs_b, y_b)
    # exp((ln 2 + 3 ln 8) / 4) = 2^(10/4); the mean of the batch perplexities would be (2 + 8) / 2
    assert m.result() == pytest.approx(2 ** 2.5)
    assert m.count == 4
    m.reset()
    with pytest.raises(ValueError, match="perplexity: no valid positions to average"):
        m.result()


def test_perplexity_of_a_diverged_model_is_inf_not_an_error():
    assert perplexity(np.array([[1000.0, 0.0]]), np.array([1])) == math.inf
    assert metrics.perplexity_from_nll(math.log(7.0)) == pytest.approx(7.0)
    assert metrics.bpc_from_nll(math.log(2.0)) == pytest.approx(1.0)


# ---------------------------------------------------------------------------- regression
def test_regression_metrics_by_hand_with_mask_over_features():
    y_true = np.zeros((2, 2, 2))
    y_pred = np.array([[[1.0, -1.0], [2.0, 0.0]], [[3.0, 3.0], [4.0, 0.0]]])
    assert mse(y_pred, y_true) == pytest.approx((1 + 1 + 4 + 0 + 9 + 9 + 16 + 0) / 8)
    assert mae(y_pred, y_true) == pytest.approx((1 + 1 + 2 + 0 + 3 + 3 + 4 + 0) / 8)
    mask = np.array([[True, True], [False, False]])  # (B, T): row 1 is padding
    assert mse(y_pred, y_true, mask) == pytest.approx(6 / 4)
    assert mae(y_pred, y_true, mask) == pytest.approx(4 / 4)
    assert rmse(y_pred, y_true, mask) == pytest.approx(math.sqrt(6 / 4))
    assert mse(y_pred, y_true, mask=np.array([False, True])) == pytest.approx(34 / 4)  # (B,) mask


def test_rmse_accumulates_before_the_root():
    m = metrics.get("rmse")
    m.update(np.array([3.0]), np.array([0.0]))
    m.update(np.array([1.0, 1.0, 1.0]), np.zeros(3))
    assert m.result() == pytest.approx(math.sqrt((9 + 3) / 4))


# ---------------------------------------------------------------------------- registry
def test_registry():
    assert isinstance(metrics.get("acc"), metrics.Accuracy)
    assert isinstance(metrics.get("bpc"), metrics.BitsPerCharacter)
    assert metrics.get("accuracy").greater_is_better and not metrics.get("ppl").greater_is_better
    assert metrics.get("mae") is not metrics.get("mae")  # a fresh accumulator each time
    m = metrics.Accuracy(threshold=0.5)
    assert metrics.get(m) is m
    assert metrics.get("accuracy", threshold=0.5).threshold == 0.5
    with pytest.raises(ValueError, match="metric must be one of 'accuracy', 'acc', .*; got 'f1'"):
        metrics.get("f1")
    with pytest.raises(ValueError, match="metric is already a Accuracy instance; cannot apply"):
        metrics.get(m, threshold=0.1)


# ---------------------------------------------------------------------------- errors
def test_metric_errors():
    logits = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"y_true must be class ids of shape \(2,\), one-hot targets of shape \(2, 3\)"
                                         r".*got y_true \(3,\)"):
        accuracy(logits, np.zeros(3, int))
    with pytest.raises(ValueError,
                       match=r"y_true ids must lie in \[0, 3\) for 3 classes in y_pred, got values from 0 to 3"):
        accuracy(logits, np.array([0, 3]))
    with pytest.raises(TypeError, match="y_true must hold integer class ids, got dtype float64"):
        perplexity(logits, np.array([0.0, 1.0]))
    with pytest.raises(ValueError,
                       match=r"y_true must hold the target ids, shape y_pred.shape\[:-1\] = \(2,\), got \(2, 3\)"):
        perplexity(logits, np.zeros((2, 3), int))
    with pytest.raises(ValueError, match=r"mask must have the leading shape of the terms \(2,\).*got \(3,\)"):
        accuracy(logits, np.array([0, 1]), mask=np.ones(3, bool))
    with pytest.raises(ValueError, match="accuracy: the mask selects no position"):
        accuracy(logits, np.array([0, 1]), mask=np.zeros(2, bool))
    with pytest.raises(ValueError, match=r"y_true must have y_pred's shape \(2, 3\), got \(2,\)"):
        mse(logits, np.zeros(2))
    with pytest.raises(ValueError, match=r"y_pred contains NaN or inf at index \(0, 1\)"):
        mse(np.array([[0.0, np.nan]]), np.zeros((1, 2)))
    with pytest.raises(TypeError, match="y_pred must be a float array of predictions, got dtype int64"):
        mae(np.zeros(3, int), np.zeros(3))
    with pytest.raises(ValueError, match=r"y_pred must hold probabilities in \[0, 1\] with from_logits=False"):
        perplexity(np.array([[2.0, -1.0]]), np.array([0]), from_logits=False)
    with pytest.raises(ValueError,
                       match=r"y_true must hold 0/1 labels for a binary y_pred of shape \(2, 1\), got values \[0, 2\]"):
        accuracy(np.zeros((2, 1)), np.array([0, 2]))


# ---------------------------------------------------------------------------- terms from the loss
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["perplexity", "bits_per_character"])
def test_update_from_loss_equals_update(name, dtype, rng, kernel_backend):
    """Fed the cross-entropy's own per-token NLLs, the metric gives what update() computes (float64 log-softmax),
    to float32 rounding in float32 and to the last bits in float64; masks and ignored targets are honoured."""
    from rnnlab.nn.losses import SoftmaxCrossEntropy

    loss = SoftmaxCrossEntropy(ignore_index=-1)
    direct, fed = metrics.get(name), metrics.get(name)
    for _ in range(3):
        logits = (rng.normal(size=(4, 6, 9)) * 3).astype(dtype)
        y = rng.integers(0, 9, size=(4, 6))
        mask = rng.random((4, 6)) < 0.8
        loss(logits, np.where(mask, y, -1))  # the mask given as ignored targets
        assert fed.update_from_loss(loss)
        direct.update(logits, y, mask=mask)
    assert fed.count == direct.count
    rel = 1e-6 if dtype == np.float32 else 1e-12
    assert fed.result() == pytest.approx(direct.result(), rel=rel)


def test_update_from_loss_declines_terms_that_are_not_its_own(rng):
    from rnnlab.nn.losses import MeanSquaredError, SoftmaxCrossEntropy

    logits, y = rng.normal(size=(3, 5)), rng.integers(0, 5, size=3)
    ppl = metrics.get("perplexity")
    assert not ppl.update_from_loss(SoftmaxCrossEntropy())  # no call yet
    loss = SoftmaxCrossEntropy()
    loss(logits, np.eye(5)[y])  # probability targets: cross-entropies, not NLLs of a token
    assert not ppl.update_from_loss(loss)
    probs = SoftmaxCrossEntropy(from_logits=False)
    probs(np.full((3, 5), 0.2), y)  # NLLs, but of y_pred read as probabilities
    assert not ppl.update_from_loss(probs)
    assert metrics.get("perplexity", from_logits=False).update_from_loss(probs)
    mse = MeanSquaredError()
    mse(logits, logits + 1)
    assert not ppl.update_from_loss(mse)
    loss(logits, y)
    assert not metrics.get("accuracy").update_from_loss(loss)  # accuracy does not average NLLs
    assert ppl.count == 0
    assert ppl.update_from_loss(loss) and ppl.count == 3
