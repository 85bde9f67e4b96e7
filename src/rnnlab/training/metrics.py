"""Evaluation metrics, masked, exact when accumulated over many batches.

Every metric is a sum over *terms* divided by their count, finished by a function of the mean:

======================  ==========================================  =====================  ======
name                    term (per valid position)                   result                 better
======================  ==========================================  =====================  ======
``accuracy``            1 if the prediction is right else 0         mean                   higher
``perplexity``          NLL in nats of the target token             ``exp(mean)``          lower
``bits_per_character``  NLL in nats of the target character         ``mean / ln 2``        lower
``mse``                 ``(y_pred - y_true)^2`` per element         mean                   lower
``mae``                 ``abs(y_pred - y_true)`` per element        mean                   lower
``rmse``                ``(y_pred - y_true)^2`` per element         ``sqrt(mean)``         lower
======================  ==========================================  =====================  ======

so ``m = get("perplexity"); m.update(...) per batch; m.result()`` gives the epoch's perplexity
``exp(total NLL / total tokens)``, not a mean of per-batch perplexities (the same for RMSE). The
functions (``accuracy(y_pred, y_true, mask=None)`` ...) compute one call's value.

Masks
-----
A mask is a boolean (or 0/1) array over the *leading* axes of the terms, as in
:mod:`rnnlab.nn.losses`: ``(B, T)`` for ``(B, T, V)`` logits or a ``(B, T, F)`` forecast, ``(B,)``
for ``(B, C)`` logits. Masked positions are ignored, whatever their targets hold. A result with
no valid position raises ``ValueError`` (rather than returning NaN).

Predictions
-----------
Classification metrics take *logits* by default (``from_logits=False`` for probabilities):

* ``accuracy``: class ids ``y_true`` (...) with scores ``y_pred`` (..., C): right when
  ``argmax y_pred == y_true``; one-hot or probability targets of ``y_pred``'s shape (C >= 2):
  right when the argmaxes agree; binary: ``y_pred`` (...,) or (..., 1) with 0/1 targets of the
  same shape (or without the trailing 1): right when ``(y_pred > threshold) == y_true``, with
  ``threshold`` 0 for logits and 0.5 for probabilities. A per-step binary output is (B, T, 1).
* ``perplexity``/``bits_per_character``: ``y_pred`` (..., V) logits (or probabilities), ``y_true``
  (...) integer ids.

Terms the loss already computed
-------------------------------
A cross-entropy on class ids computes exactly the per-token negative log-likelihoods that
perplexity and bits per character average. After such a loss call on a batch, a trainer hands the
loss to ``metric.update_from_loss(loss)`` instead of ``metric.update(y_pred, y_true, mask)``: the
metric adds the loss's :class:`~rnnlab.nn.losses.LossTerms` (their float64 sum and count) and no
softmax runs a second time. It returns False, adding nothing, when the loss's last terms are not
the metric's (another loss, probability targets, ``from_logits`` read differently, or a metric
such as accuracy that does not average NLLs); the caller then calls ``update``. The loss's terms
are in the outputs' dtype (float32 for a float32 model) and summed in float64, where ``update``
computes the log-softmax in float64: the two results agree to float32 rounding (relative 1e-6 or
better on a mean NLL), not to the last bit. The loss's ``ignore_index`` targets count as masked.
"""

from __future__ import annotations

import math

import numpy as np

from rnnlab._errors import NonFiniteError
from rnnlab._validation import as_bool_mask, registry_entry
from rnnlab.nn.functional import log_softmax

__all__ = ["Metric", "Accuracy", "Perplexity", "BitsPerCharacter", "MeanSquaredError", "MeanAbsoluteError",
           "RootMeanSquaredError", "accuracy", "perplexity", "bits_per_character", "mse", "mae", "rmse",
           "perplexity_from_nll", "bpc_from_nll", "get", "NAMES", "confusion_matrix", "macro_f1"]


# --------------------------------------------------------------------------- checks
def _check_pred(y_pred, what: str) -> np.ndarray:
    if not isinstance(y_pred, np.ndarray):
        raise TypeError(f"y_pred must be a NumPy float array of {what}, got {type(y_pred).__name__}")
    if not np.issubdtype(y_pred.dtype, np.floating):
        raise TypeError(f"y_pred must be a float array of {what}, got dtype {y_pred.dtype}")
    if y_pred.ndim == 0 or y_pred.size == 0:
        raise ValueError(f"y_pred must be a non-empty array of {what}, got shape {y_pred.shape}")
    finite = np.isfinite(y_pred)
    if not finite.all():
        bad = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise NonFiniteError(f"y_pred contains NaN or inf at index {bad} (of shape {y_pred.shape})",
                             name="y_pred", index=bad)
    return y_pred


def _as_array(name: str, value) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (list, tuple)) or np.isscalar(value):
        return np.asarray(value)
    raise TypeError(f"{name} must be a NumPy array, got {type(value).__name__}")


def _check_ids(y_true: np.ndarray, num_classes: int) -> np.ndarray:
    if not np.issubdtype(y_true.dtype, np.integer):
        raise TypeError(f"y_true must hold integer class ids, got dtype {y_true.dtype}")
    if y_true.size and (y_true.min() < 0 or y_true.max() >= num_classes):
        raise ValueError(f"y_true ids must lie in [0, {num_classes}) for {num_classes} classes in y_pred, "
                         f"got values from {y_true.min()} to {y_true.max()}")
    return y_true


def _weights(mask, shape: tuple[int, ...]) -> np.ndarray | None:
    """The mask as bool over ``shape`` (it must equal the leading axes of ``shape``), or None."""
    if mask is None:
        return None
    mask = as_bool_mask(_as_array("mask", mask))
    if mask.ndim > len(shape) or mask.shape != shape[:mask.ndim]:
        raise ValueError(f"mask must have the leading shape of the terms {shape} (e.g. {shape[:1]} or "
                         f"{shape[:2]}), got {mask.shape}")
    return np.broadcast_to(mask.reshape(mask.shape + (1,) * (len(shape) - mask.ndim)), shape)


def _total(terms: np.ndarray, mask) -> tuple[float, int]:
    """``(sum of the valid terms, number of valid terms)`` in float64."""
    w = _weights(mask, terms.shape)
    if w is None:
        return float(terms.sum(dtype=np.float64)), int(terms.size)
    return float(terms[w].sum(dtype=np.float64)), int(w.sum())


def _nll(y_pred, y_true, from_logits: bool) -> np.ndarray:
    """Per-position negative log-likelihood (nats) of the target ids, shape ``y_true.shape``."""
    y_pred = _check_pred(y_pred, "scores (..., V)")
    y_true = _as_array("y_true", y_true)
    if y_true.shape != y_pred.shape[:-1]:
        raise ValueError(f"y_true must hold the target ids, shape y_pred.shape[:-1] = {y_pred.shape[:-1]}, "
                         f"got {y_true.shape}")
    _check_ids(y_true, y_pred.shape[-1])
    if from_logits:
        logp = log_softmax(y_pred.astype(np.float64, copy=False), axis=-1)
    else:
        if y_pred.min() < 0 or y_pred.max() > 1:
            raise ValueError(f"y_pred must hold probabilities in [0, 1] with from_logits=False, got values "
                             f"from {y_pred.min()} to {y_pred.max()}")
        with np.errstate(divide="ignore"):
            logp = np.log(y_pred.astype(np.float64, copy=False))
    return -np.take_along_axis(logp, y_true[..., None].astype(np.intp), axis=-1)[..., 0]


def _regression_terms(y_pred, y_true) -> np.ndarray:
    y_pred = _check_pred(y_pred, "predictions")
    y_true = _as_array("y_true", y_true)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true must have y_pred's shape {y_pred.shape}, got {y_true.shape}")
    if not (np.issubdtype(y_true.dtype, np.floating) or np.issubdtype(y_true.dtype, np.integer)):
        raise TypeError(f"y_true must hold numbers, got dtype {y_true.dtype}")
    return y_pred.astype(np.float64) - y_true.astype(np.float64)


# --------------------------------------------------------------------------- metric objects
class Metric:
    """A metric that accumulates ``(sum of terms, count)`` over batches.

    ``update(y_pred, y_true, mask=None)`` adds a batch; ``result()`` finishes the accumulated
    value; ``reset()`` starts over; calling the metric computes one batch's value without
    touching the accumulator. ``greater_is_better`` tells early stopping and reduce-on-plateau
    which way to go.
    """

    name = "metric"
    greater_is_better = False

    def __init__(self):
        self.reset()

    # subclasses: _terms(y_pred, y_true) -> terms array; _finish(mean) -> float
    def _terms(self, y_pred, y_true) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _finish(self, mean: float) -> float:
        return mean

    def stats(self, y_pred, y_true, mask=None) -> tuple[float, int]:
        """``(sum of the valid terms, number of valid terms)`` of one batch."""
        return _total(self._terms(y_pred, y_true), mask)

    def reset(self) -> None:
        self.total, self.count = 0.0, 0

    def update(self, y_pred, y_true, mask=None) -> None:
        """Add one batch: ``stats(y_pred, y_true, mask)`` to the running total and count."""
        total, count = self.stats(y_pred, y_true, mask)
        self.total += total
        self.count += count

    def update_from_loss(self, loss) -> bool:
        """Add the terms ``loss`` computed in its last call, if they are this metric's terms.

        Returns True when it added them: ``loss.terms`` (:class:`~rnnlab.nn.losses.LossTerms`) holds
        what :meth:`update` would compute from that call's ``(y_pred, y_true, mask)``. Returns False,
        adding nothing, when they are not (this base class always): the caller then calls
        ``update(y_pred, y_true, mask)``. The caller is responsible for the pairing: the loss's
        last call must have been on the batch it means to add.
        """
        return False

    def result(self) -> float:
        if self.count == 0:
            raise ValueError(f"{self.name}: no valid positions to average (nothing updated, or everything masked)")
        return float(self._finish(self.total / self.count))

    def __call__(self, y_pred, y_true, mask=None) -> float:
        total, count = self.stats(y_pred, y_true, mask)
        if count == 0:
            raise ValueError(f"{self.name}: the mask selects no position")
        return float(self._finish(total / count))

    def get_config(self) -> dict:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Accuracy(Metric):
    """Fraction of right predictions (class ids, one-hot targets, or binary; module docstring).

    Parameters
    ----------
    threshold : float
        Binary case only: predict 1 where ``y_pred > threshold`` (0 for logits, 0.5 for
        probabilities).
    """

    name = "accuracy"
    greater_is_better = True

    def __init__(self, threshold: float = 0.0):
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating, np.integer)):
            raise TypeError(f"threshold must be a number, got {type(threshold).__name__} {threshold!r}")
        self.threshold = float(threshold)
        super().__init__()

    def _terms(self, y_pred, y_true):
        y_pred = _check_pred(y_pred, "scores")
        y_true = _as_array("y_true", y_true)
        binary_pred = y_pred.ndim == 1 or y_pred.shape[-1] == 1
        if binary_pred and (y_true.shape == y_pred.shape or (y_pred.ndim > 1 and y_true.shape == y_pred.shape[:-1])):
            labels = y_true.reshape(y_pred.shape)
            if not np.isin(labels, (0, 1)).all():
                raise ValueError(f"y_true must hold 0/1 labels for a binary y_pred of shape {y_pred.shape}, "
                                 f"got values {np.unique(labels)[:5].tolist()}")
            right = (y_pred > self.threshold) == labels.astype(bool)
            return (right if y_pred.ndim == 1 else right[..., 0]).astype(np.float64)
        if y_true.shape == y_pred.shape[:-1]:
            right = y_pred.argmax(axis=-1) == _check_ids(y_true, y_pred.shape[-1])
        elif y_true.shape == y_pred.shape:
            right = y_pred.argmax(axis=-1) == y_true.argmax(axis=-1)
        else:
            raise ValueError(f"y_true must be class ids of shape {y_pred.shape[:-1]}, one-hot targets of shape "
                             f"{y_pred.shape}, or 0/1 labels for a binary y_pred (..., 1); got y_true "
                             f"{y_true.shape} for y_pred {y_pred.shape}")
        return right.astype(np.float64)

    def get_config(self) -> dict:
        return {"threshold": self.threshold}


class _TokenNLL(Metric):
    def __init__(self, from_logits: bool = True):
        if not isinstance(from_logits, (bool, np.bool_)):
            raise TypeError(f"from_logits must be True or False, got {type(from_logits).__name__} {from_logits!r}")
        self.from_logits = bool(from_logits)
        super().__init__()

    def _terms(self, y_pred, y_true):
        return _nll(y_pred, y_true, self.from_logits)

    def update_from_loss(self, loss) -> bool:
        """Add the loss's per-token NLLs: those of a cross-entropy on class ids that read ``y_pred`` as
        this metric does (the same ``from_logits``); False otherwise (see :meth:`Metric.update_from_loss`)."""
        terms = getattr(loss, "terms", None)
        if terms is None or terms.kind != "nll" or getattr(loss, "from_logits", None) != self.from_logits:
            return False
        self.total += terms.total
        self.count += terms.count
        return True

    def get_config(self) -> dict:
        return {"from_logits": self.from_logits}


class Perplexity(_TokenNLL):
    """``exp`` of the mean negative log-likelihood (nats) per target token."""

    name = "perplexity"

    def _finish(self, mean):
        return perplexity_from_nll(mean)


class BitsPerCharacter(_TokenNLL):
    """Mean negative log-likelihood per target character in bits: ``mean NLL (nats) / ln 2``."""

    name = "bits_per_character"

    def _finish(self, mean):
        return bpc_from_nll(mean)


class MeanSquaredError(Metric):
    """Mean of ``(y_pred - y_true)^2`` over the valid elements."""

    name = "mse"

    def _terms(self, y_pred, y_true):
        return _regression_terms(y_pred, y_true) ** 2


class MeanAbsoluteError(Metric):
    """Mean of ``abs(y_pred - y_true)`` over the valid elements."""

    name = "mae"

    def _terms(self, y_pred, y_true):
        return np.abs(_regression_terms(y_pred, y_true))


class RootMeanSquaredError(MeanSquaredError):
    """Square root of the mean squared error (of everything accumulated, not a mean of roots)."""

    name = "rmse"

    def _finish(self, mean):
        return math.sqrt(mean)


# --------------------------------------------------------------------------- functions
def perplexity_from_nll(mean_nll: float) -> float:
    """``exp(mean_nll)``; ``inf`` past the float range (a diverged model), never an overflow error."""
    try:
        return math.exp(mean_nll)
    except OverflowError:
        return math.inf


def bpc_from_nll(mean_nll: float) -> float:
    """Bits per character from a mean NLL in nats: ``mean_nll / ln 2``."""
    return mean_nll / math.log(2.0)


def accuracy(y_pred, y_true, mask=None, *, threshold: float = 0.0) -> float:
    """Fraction of right predictions; see :class:`Accuracy`."""
    return Accuracy(threshold)(y_pred, y_true, mask)


def perplexity(y_pred, y_true, mask=None, *, from_logits: bool = True) -> float:
    """``exp(mean NLL in nats)`` of the target ids under ``y_pred`` (..., V)."""
    return Perplexity(from_logits)(y_pred, y_true, mask)


def bits_per_character(y_pred, y_true, mask=None, *, from_logits: bool = True) -> float:
    """``mean NLL / ln 2`` of the target ids under ``y_pred`` (..., V)."""
    return BitsPerCharacter(from_logits)(y_pred, y_true, mask)


def mse(y_pred, y_true, mask=None) -> float:
    """Mean squared error over the valid elements."""
    return MeanSquaredError()(y_pred, y_true, mask)


def mae(y_pred, y_true, mask=None) -> float:
    """Mean absolute error over the valid elements."""
    return MeanAbsoluteError()(y_pred, y_true, mask)


def rmse(y_pred, y_true, mask=None) -> float:
    """Root mean squared error over the valid elements."""
    return RootMeanSquaredError()(y_pred, y_true, mask)


# --------------------------------------------------------------------------- registry
#: metric name -> class, what ``get`` accepts
NAMES: dict[str, type[Metric]] = {
    "accuracy": Accuracy, "acc": Accuracy,
    "perplexity": Perplexity, "ppl": Perplexity,
    "bits_per_character": BitsPerCharacter, "bpc": BitsPerCharacter,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "rmse": RootMeanSquaredError, "root_mean_squared_error": RootMeanSquaredError,
}


def get(name_or_instance, /, **kwargs) -> Metric:
    """A new metric from its name (constructed with ``kwargs``), or a ``Metric`` instance unchanged.

    Names: ``"accuracy"`` (``"acc"``), ``"perplexity"`` (``"ppl"``), ``"bits_per_character"``
    (``"bpc"``), ``"mse"``, ``"mae"``, ``"rmse"`` (and their long ``mean_..._error`` forms).
    """
    entry = registry_entry("metric", name_or_instance, Metric, NAMES, kwargs)
    return entry if isinstance(entry, Metric) else entry(**kwargs)


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """``C`` (K, K) int64: ``C[i, j]`` counts the samples of true class i predicted as class j.

    >>> confusion_matrix([0, 1, 1], [0, 0, 1], 2).tolist()
    [[1, 0], [1, 1]]
    """
    y_true, y_pred = np.asarray(y_true, dtype=np.int64).ravel(), np.asarray(y_pred, dtype=np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same length, got {y_true.size} and {y_pred.size}")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(f"{name} must hold class ids in [0, {num_classes}), got {int(y.min())}..{int(y.max())}")
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes)


def macro_f1(confusion) -> float:
    """The mean over the classes of F1 = 2 TP / (2 TP + FP + FN), from a confusion matrix (K, K).

    A class with no true and no predicted sample (F1 = 0/0) is left out of the mean, as it has no
    sample to be right or wrong about.

    >>> round(macro_f1([[1, 0], [1, 1]]), 4)
    0.6667
    """
    c = np.asarray(confusion, dtype=np.float64)  # (K, K)
    tp = np.diag(c)  # (K,)
    denominator = c.sum(axis=0) + c.sum(axis=1)  # 2 TP + FP + FN
    present = denominator > 0
    if not present.any():
        return float("nan")
    return float(np.mean(2 * tp[present] / denominator[present]))
