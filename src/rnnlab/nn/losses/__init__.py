"""Losses: a scalar from predictions and targets, and its gradient with respect to the predictions.

``L = loss(y_pred, y_true, mask=None)`` computes the loss and keeps what the backward pass needs;
``dy = loss.backward()`` returns ``dL/dy_pred`` for that last call (same shape and dtype as
``y_pred``), ready for the model's ``backward``.

The gradient is a buffer of the loss, valid until its next call
-----------------------------------------------------------------
``SoftmaxCrossEntropy`` with class-id targets and logits writes ``dL/dz`` into a buffer it keeps
and reuses from call to call (a (B, T, V) language-model gradient is too big to allocate every
batch): ``backward()`` returns that buffer, the same array on every ``backward()`` of one call,
and the next call of the loss overwrites it. Copy it to keep it (``loss.backward().copy()``).
The layers' ``backward`` only read their ``dy`` and keep nothing of it. The other losses and
target forms return a new array; code that must work with any loss treats every ``backward()``
result as valid until the loss's next call.

Terms of the last call
----------------------
After each call, ``loss.terms`` is a :class:`LossTerms`: the per-position terms ``l_u`` (zero at
masked positions), the valid mask, their count ``N`` and their float64 sum. A metric that averages
the same terms reads them there instead of computing them again (see
:meth:`rnnlab.training.metrics.Metric.update_from_loss`): for ``SoftmaxCrossEntropy`` with class ids
they are the per-token negative log-likelihoods (``kind == "nll"``) that perplexity averages.

Inference
---------
Under :func:`rnnlab.nn.grad_mode.no_grad` a loss computes its value and terms only: no gradient
buffer is written and ``backward()`` raises.

Steps, terms and masks
----------------------
Every loss first builds per-position *terms* ``l_u``: one per element of ``y_pred`` for
``MeanSquaredError`` and ``BinaryCrossEntropyWithLogits``, one per row of logits (the class axis
summed away) for ``SoftmaxCrossEntropy``. A ``mask`` is a boolean (or 0/1) array over the
*leading* axes of those terms: ``(B, T)`` for ``(B, T, C)`` logits or a ``(B, T, F)`` forecast,
``(B,)`` for ``(B, C)`` logits. Masked positions contribute zero loss and zero gradient, and their
targets are ignored (padding may hold any id or value). With ``m_u`` the mask broadcast to the
terms and ``N = sum_u m_u`` the number of valid terms, the reductions are

=============  ==========================  ===================
reduction      ``L``                       ``dL/dl_u``
=============  ==========================  ===================
``"mean"``     ``(1/N) sum_u m_u l_u``     ``m_u / N``
``"sum"``      ``sum_u m_u l_u``           ``m_u``
``"half_sum"`` ``(1/2) sum_u m_u l_u``     ``m_u / 2`` (MSE only)
=============  ==========================  ===================

so ``"sum"`` is the notes' ``L = sum_t L_t`` over the valid steps and the batch, and ``"mean"``
for MSE averages over valid steps x features. With ``N = 0`` (everything masked) the loss is 0.0
and the gradient is zero, never NaN.

Names for ``get``: ``"mse"``, ``"mean_squared_error"``, ``"half_sse"`` (MSE with
``reduction="half_sum"``); ``"cross_entropy"``, ``"softmax_cross_entropy"``,
``"sparse_categorical_crossentropy"``, ``"categorical_crossentropy"`` (all
``SoftmaxCrossEntropy``, logits by default: the target form is read from its shape);
``"bce_with_logits"``, ``"binary_crossentropy"``.
"""

from __future__ import annotations

import numpy as np

from rnnlab._validation import registry_entry
from rnnlab.nn.functional import sigmoid
from rnnlab.nn.losses.base import Loss, LossTerms, _as_float_target, _check_real, _check_same_shape
from rnnlab.nn.losses.cross_entropy import SoftmaxCrossEntropy

__all__ = ["Loss", "LossTerms", "MeanSquaredError", "SoftmaxCrossEntropy", "BinaryCrossEntropyWithLogits", "get",
           "NAMES"]


# --------------------------------------------------------------------------- losses
class MeanSquaredError(Loss):
    """Squared error between predictions and real targets (forecasting, regression).

    Parameters
    ----------
    reduction : {"mean", "sum", "half_sum"}
        ``"half_sum"`` is the notes' ``L = 1/2 sum (d - y)^2``, whose gradient is ``y - d``.

    Notes
    -----
    With prediction ``y`` and target (desired output) ``d``, both of shape (..., F), one term per
    element: ``l_u = (y_u - d_u)^2`` and ``dl_u/dy_u = 2 (y_u - d_u)``. Then

    - ``"mean"``: ``L = (1/N) sum_u m_u (y_u - d_u)^2``, ``dL/dy_u = 2 m_u (y_u - d_u) / N`` with
      ``N`` the valid steps x features (``torch.nn.functional.mse_loss(reduction="mean")``);
    - ``"sum"``: ``L = sum_u m_u (y_u - d_u)^2``, ``dL/dy_u = 2 m_u (y_u - d_u)``;
    - ``"half_sum"``: ``L = 1/2 sum_u m_u (d_u - y_u)^2``, ``dL/dy_u = m_u (y_u - d_u)``.

    ``y_true`` must have exactly ``y_pred``'s shape (no silent broadcasting); ``mask`` covers any
    leading axes, e.g. (B, T) for a (B, T, F) forecast.
    """

    reductions = ("mean", "sum", "half_sum")
    _kind = "squared_error"

    def _terms(self, y_pred, y_true, mask):
        d = _check_real("y_true", y_true, "regression targets")
        _check_same_shape(d, y_pred)
        diff = _as_float_target(d, y_pred, mask)  # (...,) = d, then y - d in place
        np.subtract(y_pred, diff, out=diff)
        return diff * diff, diff

    def _grad(self, diff):
        return diff * 2.0


class BinaryCrossEntropyWithLogits(Loss):
    """Binary cross-entropy of ``sigmoid(z)``, computed from the logits ``z`` for stability.

    Parameters
    ----------
    reduction : {"mean", "sum"}
        Mean over valid elements (``torch.nn.functional.binary_cross_entropy_with_logits``'s
        default) or their sum.

    Notes
    -----
    Logits ``z`` and targets ``d`` in [0, 1] (hard or soft labels) of the same shape, one term per
    element::

        l = -d log s(z) - (1 - d) log(1 - s(z)) = max(z, 0) - z d + log(1 + exp(-|z|))
        dl/dz = s(z) - d,      s(z) = 1 / (1 + exp(-z))

    The right-hand form never overflows (``exp`` only sees ``-|z| <= 0``).
    """

    _pred_what = "logits"
    _kind = "binary_cross_entropy"

    def _terms(self, y_pred, y_true, mask):
        d = _check_real("y_true", y_true, "binary targets")
        _check_same_shape(d, y_pred)
        d = _as_float_target(d, y_pred, mask, 0.0, 1.0, "binary targets")
        terms = np.abs(y_pred)  # (...) -> log(1 + exp(-|z|)), built in place
        np.negative(terms, out=terms)
        np.exp(terms, out=terms)
        np.log1p(terms, out=terms)
        terms += np.maximum(y_pred, 0.0)
        terms -= y_pred * d
        return terms, (sigmoid(y_pred), d)

    def _grad(self, ctx):
        s, d = ctx
        return s - d


# --------------------------------------------------------------------------- lookup
#: loss name -> (class, keyword arguments), what ``get`` accepts
NAMES: dict[str, tuple[type[Loss], dict]] = {
    "mse": (MeanSquaredError, {}),
    "mean_squared_error": (MeanSquaredError, {}),
    "half_sse": (MeanSquaredError, {"reduction": "half_sum"}),
    "cross_entropy": (SoftmaxCrossEntropy, {}),
    "softmax_cross_entropy": (SoftmaxCrossEntropy, {}),
    "sparse_categorical_crossentropy": (SoftmaxCrossEntropy, {}),
    "categorical_crossentropy": (SoftmaxCrossEntropy, {}),
    "bce_with_logits": (BinaryCrossEntropyWithLogits, {}),
    "binary_crossentropy": (BinaryCrossEntropyWithLogits, {}),
}


def get(name_or_instance, /, **kwargs) -> Loss:
    """Return a loss from its name (constructed with ``kwargs``) or an existing ``Loss`` unchanged.

    Parameters
    ----------
    name_or_instance : str or Loss
        One of ``NAMES`` (e.g. ``"mse"``, ``"cross_entropy"``), or a ``Loss`` instance.
    **kwargs
        Constructor arguments, e.g. ``reduction="sum"``; not allowed with an instance, nor in
        conflict with the name (``"half_sse"`` fixes ``reduction="half_sum"``).
    """
    entry = registry_entry("loss", name_or_instance, Loss, NAMES, kwargs)
    if isinstance(entry, Loss):
        return entry
    cls, preset = entry
    for key, value in preset.items():
        if key in kwargs and kwargs[key] != value:
            raise ValueError(f"loss {name_or_instance!r} means {key}={value!r}; got {key}={kwargs[key]!r}")
    return cls(**{**preset, **kwargs})
