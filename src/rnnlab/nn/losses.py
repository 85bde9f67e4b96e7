"""Losses: a scalar from predictions and targets, and its gradient with respect to the predictions.

``L = loss(y_pred, y_true, mask=None)`` computes the loss and keeps what the backward pass needs;
``dy = loss.backward()`` returns ``dL/dy_pred`` for that last call (same shape and dtype as
``y_pred``), ready for the model's ``backward``.

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

import math

import numpy as np

from rnnlab._errors import NonFiniteError
from rnnlab._validation import as_bool_mask, check_choice, registry_entry
from rnnlab.nn.functional import log_softmax, sigmoid

__all__ = ["Loss", "MeanSquaredError", "SoftmaxCrossEntropy", "BinaryCrossEntropyWithLogits", "get", "NAMES"]


# --------------------------------------------------------------------------- argument checks
def _check_y_pred(y_pred, min_ndim: int, what: str) -> np.ndarray:
    """A float32/float64 ndarray with at least ``min_ndim`` axes and only finite values."""
    if not isinstance(y_pred, np.ndarray):
        raise TypeError(f"y_pred must be a NumPy float array of {what}, got {type(y_pred).__name__}")
    if y_pred.dtype not in (np.float32, np.float64):
        raise TypeError(f"y_pred must be a float32 or float64 array of {what}, got dtype {y_pred.dtype}")
    if y_pred.ndim < min_ndim:
        raise ValueError(f"y_pred must have at least {min_ndim} axis ({what}), got shape {y_pred.shape}")
    finite = np.isfinite(y_pred)
    if not finite.all():
        bad = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise NonFiniteError(f"y_pred contains NaN or inf: {y_pred[bad]} at index {bad} (of shape {y_pred.shape})",
                             name="y_pred", index=bad)
    return y_pred


def _check_mask(mask, term_shape: tuple, y_pred_shape: tuple) -> np.ndarray | None:
    """``mask`` as a boolean array whose shape is a prefix of ``term_shape`` (the leading step axes)."""
    if mask is None:
        return None
    mask = as_bool_mask(mask)
    allowed = [term_shape[:k] for k in range(1, len(term_shape) + 1)] or [()]
    if mask.shape not in allowed:
        raise ValueError(
            f"mask must have the shape of the leading (step) axes of y_pred of shape {y_pred_shape}, "
            f"one of {', '.join(map(str, allowed))}; got shape {mask.shape}"
        )
    return mask


def _expand(mask: np.ndarray, ndim: int) -> np.ndarray:
    """View ``mask`` with trailing length-1 axes so it broadcasts against an ``ndim``-axis array."""
    return mask.reshape(mask.shape + (1,) * (ndim - mask.ndim))


def _check_real(name: str, y, what: str) -> np.ndarray:
    y = np.asarray(y)
    if not (y.dtype == bool or np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise TypeError(f"{name} must be a real-valued array of {what}, got dtype {y.dtype}")
    return y


def _check_same_shape(y_true: np.ndarray, y_pred: np.ndarray) -> None:
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true must have the same shape as y_pred {y_pred.shape}, got shape {y_true.shape}")


def _as_float_target(y_true: np.ndarray, y_pred: np.ndarray, mask, low=-np.inf, high=np.inf, what="targets"):
    """Cast ``y_true`` to ``y_pred``'s dtype, zero its masked entries, check the valid ones lie in [low, high]."""
    y = y_true.astype(y_pred.dtype)  # a copy: masked entries are overwritten below
    if mask is not None:
        np.copyto(y, 0, where=~_expand(mask, y.ndim))
    ok = np.isfinite(y) & (y >= low) & (y <= high)
    if not ok.all():
        bad = tuple(int(i) for i in np.argwhere(~ok)[0])
        bounds = "finite" if (low, high) == (-np.inf, np.inf) else f"finite and in [{low:g}, {high:g}]"
        raise ValueError(f"y_true must hold {what} that are {bounds}, got {y_true[bad]} at index {bad}")
    return y


# --------------------------------------------------------------------------- base class
class Loss:
    """Base class: validation, masking, reduction and the forward/backward cache.

    Subclasses define ``_terms(y_pred, y_true, mask) -> (terms, ctx)`` (per-position losses ``l_u``,
    masked entries of ``y_true`` already neutralised) and ``_grad(ctx) -> dl`` (``dl_u/dy_pred`` at
    every position, shaped like ``y_pred``); the base applies ``mask`` and the reduction to both.

    Parameters
    ----------
    reduction : str
        One of the class's ``reductions`` (see the module docstring).
    """

    reductions: tuple[str, ...] = ("mean", "sum")
    #: number of trailing axes of ``y_pred`` summed inside one term (1 for the class axis of logits)
    _class_axes = 0
    #: what ``y_pred`` holds, for error messages
    _pred_what = "predictions"

    def __init__(self, reduction: str = "mean"):
        self.reduction = check_choice("reduction", reduction, self.reductions)
        self._cache = None

    def __call__(self, y_pred, y_true, mask=None) -> float:
        """Compute the loss for one batch and cache what ``backward`` needs.

        Parameters
        ----------
        y_pred : ndarray, float32 or float64, shape (..., [C])
            Predictions (MSE), logits (cross-entropies).
        y_true : array
            Targets; the accepted shapes are given by each subclass.
        mask : array of bool or 0/1, shape = leading axes of y_pred, optional
            Valid steps (True / 1); e.g. (B, T) for (B, T, C) logits.

        Returns
        -------
        float
            The reduced loss.
        """
        self._cache = None  # a failed call must not leave the previous gradient behind
        y_pred = _check_y_pred(y_pred, self._class_axes, self._pred_what)
        if self._class_axes and y_pred.shape[-1] == 0:
            raise ValueError(f"y_pred must have at least one class in its last axis, got shape {y_pred.shape}")
        term_shape = y_pred.shape[: y_pred.ndim - self._class_axes]
        mask = _check_mask(mask, term_shape, y_pred.shape)
        terms, ctx = self._terms(y_pred, y_true, mask)  # (*term_shape,)
        if mask is None:
            n_valid = terms.size
            total = float(np.sum(terms, dtype=np.float64))
        else:
            m = _expand(mask, terms.ndim)  # (*mask.shape, 1, ...)
            n_valid = int(mask.sum()) * math.prod(term_shape[mask.ndim:])
            total = float(np.sum(terms, where=m, dtype=np.float64))
        weight = {"mean": 1.0 / n_valid if n_valid else 0.0, "sum": 1.0, "half_sum": 0.5}[self.reduction]
        self._cache = (ctx, mask, weight)
        return total * weight

    def backward(self) -> np.ndarray:
        """``dL/dy_pred`` for the last call: same shape and dtype as its ``y_pred``, zero at masked steps."""
        if self._cache is None:
            raise ValueError(
                f"{type(self).__name__}.backward was called before the loss was computed; "
                "call loss(y_pred, y_true) first"
            )
        ctx, mask, weight = self._cache
        grad = self._grad(ctx)  # shaped like y_pred, a new array
        grad *= weight
        if mask is not None:
            grad *= _expand(mask, grad.ndim)
        return grad

    # subclass hooks ------------------------------------------------------------------
    def _terms(self, y_pred, y_true, mask):  # pragma: no cover - abstract
        raise NotImplementedError

    def _grad(self, ctx):  # pragma: no cover - abstract
        raise NotImplementedError

    # config ----------------------------------------------------------------------
    def get_config(self) -> dict:
        """JSON-serialisable constructor arguments; ``type(self).from_config(cfg)`` rebuilds the loss."""
        return {"reduction": self.reduction}

    @classmethod
    def from_config(cls, config: dict) -> Loss:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


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

    def _terms(self, y_pred, y_true, mask):
        d = _check_real("y_true", y_true, "regression targets")
        _check_same_shape(d, y_pred)
        diff = _as_float_target(d, y_pred, mask)  # (...,) = d, then y - d in place
        np.subtract(y_pred, diff, out=diff)
        return diff * diff, diff

    def _grad(self, diff):
        return diff * 2.0


class SoftmaxCrossEntropy(Loss):
    """Cross-entropy of a softmax over the last axis, fused with it for stability.

    Parameters
    ----------
    reduction : {"mean", "sum"}
        Mean over valid steps (``torch.nn.functional.cross_entropy``'s default) or their sum.
    from_logits : bool
        True (default): ``y_pred`` are logits ``z`` and the softmax is part of the loss.
        False: ``y_pred`` are probabilities ``p`` already (``L = -sum_k d_k log p_k``, whose
        gradient ``-d_k / p_k`` is unbounded; prefer logits).

    Notes
    -----
    Logits ``z`` of shape (..., C). Targets ``d`` either as integer class ids of shape (...) (in
    ``[0, C)``; ids at masked steps are ignored) or as probabilities / one-hot rows of shape
    (..., C) (entries in [0, 1]; rows need not sum to 1, e.g. label smoothing). One term per row::

        l = -sum_k d_k log softmax(z)_k,
        log softmax(z)_k = z_k - max z - log sum_j exp(z_j - max z)          (never overflows)
        dl/dz_k = softmax(z)_k * sum_j d_j - d_k     (= softmax(z)_k - d_k for a one-hot/normalised d)

    The reduction then scales by ``m / N`` ("mean") or ``m`` ("sum"). Matches
    ``torch.nn.functional.cross_entropy(z.reshape(-1, C), d)`` with class-index or probability
    targets; with ``from_logits=False``, ``nll_loss(log p, d)``.
    """

    _class_axes = 1

    def __init__(self, reduction: str = "mean", from_logits: bool = True):
        super().__init__(reduction)
        if not isinstance(from_logits, (bool, np.bool_)):
            raise TypeError(f"from_logits must be a bool, got {type(from_logits).__name__} {from_logits!r}")
        self.from_logits = bool(from_logits)
        self._pred_what = "logits (..., C)" if self.from_logits else "probabilities (..., C)"

    def _target(self, y_true, y_pred, mask):
        """Return ``(ids, None)`` for class ids (masked ids set to 0) or ``(None, probs)``."""
        d = _check_real("y_true", y_true, "class ids or class probabilities")
        C = y_pred.shape[-1]
        if d.shape == y_pred.shape[:-1]:
            if not np.issubdtype(d.dtype, np.integer):
                raise TypeError(
                    f"y_true of shape {d.shape} holds class ids (y_pred has shape {y_pred.shape}) and must be "
                    f"an integer array, got dtype {d.dtype}; pass probabilities with shape {y_pred.shape}"
                )
            ids = np.where(_expand(mask, d.ndim), d, 0) if mask is not None else d  # (...)
            if ids.size and (ids.min() < 0 or ids.max() >= C):
                bad = tuple(int(i) for i in np.argwhere((ids < 0) | (ids >= C))[0])
                raise ValueError(f"y_true class ids must lie in [0, {C}) for {C} classes, "
                                 f"got {ids[bad]} at index {bad}")
            return ids, None
        if d.shape == y_pred.shape:
            return None, _as_float_target(d, y_pred, mask, 0.0, 1.0, "class probabilities")
        raise ValueError(
            f"y_true must be class ids of shape {y_pred.shape[:-1]} or class probabilities of shape "
            f"{y_pred.shape} for y_pred of shape {y_pred.shape}, got shape {d.shape}"
        )

    def _terms(self, y_pred, y_true, mask):
        ids, probs = self._target(y_true, y_pred, mask)
        if self.from_logits:
            logp = log_softmax(y_pred)  # (..., C)
            p = np.exp(logp)  # (..., C) softmax(z), kept for the gradient
            if ids is not None:
                terms = -np.take_along_axis(logp, ids[..., None], axis=-1)[..., 0]  # (...)
            else:
                terms = -np.einsum("...k,...k->...", probs, logp)  # (...)
            return terms, (p, ids, probs)
        # probabilities: check the range, and that no valid target has probability 0 (infinite loss)
        if y_pred.min() < 0 or y_pred.max() > 1:
            raise ValueError(
                f"y_pred must hold probabilities in [0, 1] when from_logits=False, got values from "
                f"{y_pred.min()} to {y_pred.max()} (pass logits with from_logits=True)"
            )
        if ids is not None:
            p_target = np.take_along_axis(y_pred, ids[..., None], axis=-1)[..., 0]  # (...)
            zero = p_target == 0
            if mask is not None:
                zero &= _expand(mask, zero.ndim)
        else:
            zero = ((probs > 0) & (y_pred == 0)).any(axis=-1)  # (...); masked rows of probs are 0
        if zero.any():
            bad = tuple(int(i) for i in np.argwhere(zero)[0])
            raise ValueError(
                f"y_pred gives probability 0 to a target class at step {bad}, so the cross-entropy is infinite; "
                "pass logits with from_logits=True for a numerically stable loss"
            )
        if ids is not None:
            p_safe = np.where(p_target > 0, p_target, 1.0)  # masked rows may hold p = 0
            return -np.log(p_safe), (y_pred, ids, None)
        logp = np.log(y_pred, out=np.zeros_like(y_pred), where=probs > 0)  # (..., C), 0 where d = 0
        return -np.einsum("...k,...k->...", probs, logp), (y_pred, None, probs)

    def _grad(self, ctx):
        p, ids, probs = ctx
        if self.from_logits:
            if ids is not None:
                grad = p.copy()  # (..., C): softmax(z) - onehot(d)
                idx = ids[..., None]  # (..., 1)
                np.put_along_axis(grad, idx, np.take_along_axis(p, idx, axis=-1) - 1.0, axis=-1)
                return grad
            grad = p * probs.sum(axis=-1, keepdims=True)  # (..., C): softmax(z) sum(d) - d
            grad -= probs
            return grad
        grad = np.zeros_like(p)  # (..., C): -d_k / p_k where d_k > 0
        if ids is not None:
            idx = ids[..., None]
            p_target = np.take_along_axis(p, idx, axis=-1)
            np.put_along_axis(grad, idx, -1.0 / np.where(p_target > 0, p_target, 1.0), axis=-1)
            return grad
        np.divide(probs, p, out=grad, where=probs > 0)
        np.negative(grad, out=grad)
        return grad

    def get_config(self) -> dict:
        return {**super().get_config(), "from_logits": self.from_logits}


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
