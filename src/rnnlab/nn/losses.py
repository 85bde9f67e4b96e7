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

import math
from dataclasses import dataclass

import numpy as np

from rnnlab._errors import NonFiniteError
from rnnlab._validation import as_bool_mask, check_choice, registry_entry
from rnnlab.nn import kernels
from rnnlab.nn.functional import log_softmax, sigmoid
from rnnlab.nn.grad_mode import NO_GRAD_MESSAGE, grad_enabled

__all__ = ["Loss", "LossTerms", "MeanSquaredError", "SoftmaxCrossEntropy", "BinaryCrossEntropyWithLogits", "get",
           "NAMES"]


# --------------------------------------------------------------------------- argument checks
def _check_y_pred(y_pred, min_ndim: int, what: str, finite: bool = True) -> np.ndarray:
    """A float32/float64 ndarray with at least ``min_ndim`` axes and (``finite``) only finite values."""
    if not isinstance(y_pred, np.ndarray):
        raise TypeError(f"y_pred must be a NumPy float array of {what}, got {type(y_pred).__name__}")
    if y_pred.dtype not in (np.float32, np.float64):
        raise TypeError(f"y_pred must be a float32 or float64 array of {what}, got dtype {y_pred.dtype}")
    if y_pred.ndim < min_ndim:
        raise ValueError(f"y_pred must have at least {min_ndim} axis ({what}), got shape {y_pred.shape}")
    if finite:
        _check_finite(y_pred)
    return y_pred


def _check_finite(y_pred: np.ndarray) -> None:
    """Raise ``NonFiniteError`` (name ``"y_pred"``) at the first NaN or inf of ``y_pred``."""
    finite = np.isfinite(y_pred)
    if not finite.all():
        bad = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise NonFiniteError(f"y_pred contains NaN or inf: {y_pred[bad]} at index {bad} (of shape {y_pred.shape})",
                             name="y_pred", index=bad)


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


@dataclass(frozen=True, eq=False)
class LossTerms:
    """The per-position terms of a loss's last call, before its reduction.

    Attributes
    ----------
    values : ndarray, shape = the term shape (``y_pred.shape`` without the class axis for cross-entropy)
        ``l_u`` in ``y_pred``'s dtype; 0 at positions that are not valid.
    mask : ndarray of bool or None
        The valid positions, over leading axes of ``values`` (the call's ``mask``; for a
        cross-entropy with ``ignore_index``, also without the ignored targets), None when all are.
    count : int
        ``N``, the number of valid terms.
    total : float
        ``sum_u m_u l_u``, accumulated in float64.
    kind : str
        What a term is: ``"nll"`` (``-log p`` of a target class: cross-entropy with class ids),
        ``"cross_entropy"`` (probability targets), ``"squared_error"``, ``"binary_cross_entropy"``.
    """

    values: np.ndarray
    mask: np.ndarray | None
    count: int
    total: float
    kind: str


_NO_GRAD = object()  # the cache of a call under no_grad(): nothing to differentiate


# --------------------------------------------------------------------------- base class
class Loss:
    """Base class: validation, masking, reduction and the forward/backward cache.

    Subclasses define ``_terms(y_pred, y_true, mask) -> (terms, ctx)`` (per-position losses ``l_u``,
    masked entries of ``y_true`` already neutralised) and ``_grad(ctx) -> dl`` (``dl_u/dy_pred`` at
    every position, shaped like ``y_pred``); the base applies ``mask`` and the reduction to both.
    ``_valid(y_true, mask, term_shape)`` may narrow the mask first (``ignore_index``), and
    ``_gradient(ctx, mask, weight)`` may replace the default "``_grad``, times ``weight``, masked"; a
    loss that writes its gradient within ``_terms`` reads the call's ``dL/dl_u`` from ``self._weight``.

    Parameters
    ----------
    reduction : str
        One of the class's ``reductions`` (see the module docstring).

    Attributes
    ----------
    terms : LossTerms or None
        The terms of the last successful call (None before one, and after a failed one).
    """

    reductions: tuple[str, ...] = ("mean", "sum")
    #: number of trailing axes of ``y_pred`` summed inside one term (1 for the class axis of logits)
    _class_axes = 0
    #: what ``y_pred`` holds, for error messages
    _pred_what = "predictions"
    #: ``LossTerms.kind`` of this loss's terms
    _kind = "term"

    def __init__(self, reduction: str = "mean"):
        self.reduction = check_choice("reduction", reduction, self.reductions)
        self._cache = None
        self.terms: LossTerms | None = None

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
        self.terms = None
        y_pred = _check_y_pred(y_pred, self._class_axes, self._pred_what, finite=not self._checks_finite_itself())
        if self._class_axes and y_pred.shape[-1] == 0:
            raise ValueError(f"y_pred must have at least one class in its last axis, got shape {y_pred.shape}")
        term_shape = y_pred.shape[: y_pred.ndim - self._class_axes]
        mask = self._valid(y_true, _check_mask(mask, term_shape, y_pred.shape), term_shape)
        self._weight = self._reduction_weight(mask, term_shape)
        terms, ctx = self._terms(y_pred, y_true, mask)  # (*term_shape,)
        if mask is None:
            n_valid = terms.size
            total = float(np.sum(terms, dtype=np.float64))
        else:
            m = _expand(mask, terms.ndim)  # (*mask.shape, 1, ...)
            n_valid = self._count(mask, term_shape)
            np.copyto(terms, 0, where=~m)
            total = float(np.sum(terms, dtype=np.float64))
        weight = self._weight
        self.terms = LossTerms(terms, mask, n_valid, total, self._term_kind(ctx))
        self._cache = (ctx, mask, weight) if grad_enabled() else _NO_GRAD
        return total * weight

    @staticmethod
    def _count(mask, term_shape: tuple) -> int:
        """The number of valid terms under ``mask`` (over leading axes of ``term_shape``)."""
        if mask is None:
            return math.prod(term_shape)
        return int(np.count_nonzero(mask)) * math.prod(term_shape[mask.ndim:])

    def _reduction_weight(self, mask, term_shape: tuple) -> float:
        """``dL/dl_u`` at a valid position: ``1/N`` ("mean", 0 when ``N = 0``), 1 ("sum"), 1/2 ("half_sum")."""
        if self.reduction == "mean":
            n_valid = self._count(mask, term_shape)
            return 1.0 / n_valid if n_valid else 0.0
        return {"sum": 1.0, "half_sum": 0.5}[self.reduction]

    def backward(self) -> np.ndarray:
        """``dL/dy_pred`` for the last call: same shape and dtype as its ``y_pred``, zero at masked steps.

        Valid until the loss's next call (see the module docstring: it may be a buffer of the loss).
        """
        if self._cache is _NO_GRAD:
            raise ValueError(f"{type(self).__name__}.backward: {NO_GRAD_MESSAGE}")
        if self._cache is None:
            raise ValueError(
                f"{type(self).__name__}.backward was called before the loss was computed; "
                "call loss(y_pred, y_true) first"
            )
        ctx, mask, weight = self._cache
        return self._gradient(ctx, mask, weight)

    # subclass hooks ------------------------------------------------------------------
    def _checks_finite_itself(self) -> bool:
        """True when ``_terms`` checks ``y_pred`` for NaN and inf itself (within its own passes)."""
        return False

    def _term_kind(self, ctx) -> str:
        """``LossTerms.kind`` of the call whose context is ``ctx``."""
        return self._kind

    def _valid(self, y_true, mask, term_shape: tuple):
        """The mask the terms are reduced with: ``mask`` itself unless a subclass narrows it."""
        return mask

    def _terms(self, y_pred, y_true, mask):  # pragma: no cover - abstract
        raise NotImplementedError

    def _grad(self, ctx):  # pragma: no cover - abstract
        raise NotImplementedError

    def _gradient(self, ctx, mask, weight) -> np.ndarray:
        """``_grad(ctx)`` (a new array) times ``weight``, zero at masked positions."""
        grad = self._grad(ctx)  # shaped like y_pred, a new array
        grad *= weight
        if mask is not None:
            grad *= _expand(mask, grad.ndim)
        return grad

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
    _kind = "squared_error"

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
    ignore_index : int, optional
        With class-id targets, the steps whose target equals it are masked, as
        ``torch.nn.functional.cross_entropy(ignore_index=...)`` (whose default is -100; here None:
        every id must be a class). They count in neither the loss, nor ``N``, nor the gradient.
        With everything ignored the loss is 0 (PyTorch's mean gives NaN).

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

    Class ids with logits (a language model's case) take a fused path: per row, the log-sum-exp
    ``lse = m + log s`` with ``m = max z``, ``s = sum_j exp(z_j - m)``, the term ``lse - z_id``, and
    ``exp(z - m)`` written into the loss's gradient buffer, which ``backward`` scales by ``weight / s``
    before subtracting ``weight`` at the target (``weight`` the reduction's ``dL/dl``); no one-hot
    matrix, no log-softmax array, masked rows zero. ``backward()`` returns that buffer, valid until
    the next call (module docstring). When :mod:`rnnlab.nn.kernels` provides fused kernels for the
    dtype (numba, float32 under ``"auto"``), one compiled pass per row does all of it, the gradient
    included; else NumPy does it in a few whole-array passes. Both give the same numbers up to
    rounding (the kernel's float32 ``exp`` is within about 1 ulp).
    """

    _class_axes = 1

    def __init__(self, reduction: str = "mean", from_logits: bool = True, ignore_index: int | None = None):
        super().__init__(reduction)
        if not isinstance(from_logits, (bool, np.bool_)):
            raise TypeError(f"from_logits must be a bool, got {type(from_logits).__name__} {from_logits!r}")
        if ignore_index is not None and (isinstance(ignore_index, (bool, np.bool_))
                                         or not isinstance(ignore_index, (int, np.integer))):
            raise TypeError(f"ignore_index must be an int or None, got {type(ignore_index).__name__} "
                            f"{ignore_index!r}")
        self.from_logits = bool(from_logits)
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        self._pred_what = "logits (..., C)" if self.from_logits else "probabilities (..., C)"
        self._buffer: np.ndarray | None = None  # the gradient buffer of the fused path, reused

    def _checks_finite_itself(self) -> bool:
        return self.from_logits  # the fused path's passes find NaN/inf; the others call _check_finite

    def _valid(self, y_true, mask, term_shape):
        if self.ignore_index is None:
            return mask
        d = np.asarray(y_true)
        if d.shape != term_shape or not np.issubdtype(d.dtype, np.integer):
            return mask  # not class ids: _target explains what is wrong, or they are probabilities
        keep = d != self.ignore_index  # (...)
        if keep.all():
            return mask
        return keep if mask is None else keep & _expand(mask, keep.ndim)

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
                ignore = "" if self.ignore_index is None else f" (or ignore_index={self.ignore_index})"
                raise ValueError(f"y_true class ids must lie in [0, {C}){ignore} for {C} classes, "
                                 f"got {ids[bad]} at index {bad}")
            return ids, None
        if d.shape == y_pred.shape:
            return None, _as_float_target(d, y_pred, mask, 0.0, 1.0, "class probabilities")
        raise ValueError(
            f"y_true must be class ids of shape {y_pred.shape[:-1]} or class probabilities of shape "
            f"{y_pred.shape} for y_pred of shape {y_pred.shape}, got shape {d.shape}"
        )

    def _term_kind(self, ctx) -> str:
        return "nll" if isinstance(ctx, _Fused) or ctx[1] is not None else "cross_entropy"

    def _terms(self, y_pred, y_true, mask):
        ids, probs = self._target(y_true, y_pred, mask)
        if self.from_logits and ids is not None:
            return self._fused_terms(y_pred, ids, mask)
        if self.from_logits:
            _check_finite(y_pred)
            logp = log_softmax(y_pred)  # (..., C)
            p = np.exp(logp)  # (..., C) softmax(z), kept for the gradient
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
        if self.from_logits:  # probability targets (class ids take the fused path)
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

    # ------------------------------------------------------------------ the fused path (class ids, logits)
    def _gradient_buffer(self, shape: tuple, dtype) -> np.ndarray:
        """The buffer (``y_pred``'s shape) ``exp(z - m)`` and then the gradient go into, kept from call to call."""
        buf = self._buffer
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self._buffer = np.empty(shape, dtype=dtype)
        return buf

    def _fused_terms(self, z, ids, mask):
        C = z.shape[-1]
        z2 = np.ascontiguousarray(z.reshape(-1, C))  # (N, C), a view of a C-contiguous z
        ids1 = np.ascontiguousarray(ids.reshape(-1), dtype=np.intp)  # (N,), valid ids (0 at masked rows)
        N = z2.shape[0]
        valid = None if mask is None else np.broadcast_to(_expand(mask, ids.ndim), ids.shape).reshape(-1)  # (N,)
        keep = grad_enabled()
        step_kernels = kernels.fused(z.dtype)
        if step_kernels is not None:
            terms = np.empty(N, dtype=z.dtype)
            grad = self._gradient_buffer(z.shape, z.dtype) if keep else np.empty((1, C), dtype=z.dtype)
            if valid is None:
                valid = np.ones(N, dtype=bool)
            bad = _run_xent_kernel(step_kernels, z2, ids1, valid, self._weight, grad.reshape(-1, C), keep, terms)
            if bad >= 0:
                _check_finite(z)  # raises, naming the first NaN/inf
            return terms.reshape(ids.shape), _Fused(grad if keep else None, None, ids1, None, done=True)
        m = z2.max(axis=1)  # (N,): NaN and +inf propagate; -inf shows in the minimum
        if not (np.isfinite(m).all() and np.isfinite(z2.min() if z2.size else 0.0)):
            _check_finite(z)
        grad = self._gradient_buffer(z.shape, z.dtype)
        e = grad.reshape(N, C)  # a view
        np.subtract(z2, m[:, None], out=e)  # z - m <= 0
        rows = np.arange(N)
        terms = -e[rows, ids1]  # (N,) m - z_id
        np.exp(e, out=e)
        s = e.sum(axis=1)  # (N,) >= 1
        terms += np.log(s)  # lse - z_id
        if valid is not None:
            terms[~valid] = 0
        return terms.reshape(ids.shape), _Fused(grad if keep else None, s, ids1, valid, done=False)

    def _gradient(self, ctx, mask, weight) -> np.ndarray:
        if not isinstance(ctx, _Fused):
            return super()._gradient(ctx, mask, weight)
        if not ctx.done:  # NumPy path: exp(z - m) -> weight * (softmax - onehot), once
            g = ctx.grad.reshape(-1, ctx.grad.shape[-1])  # (N, C), a view
            scale = (weight / ctx.s).astype(g.dtype, copy=False)  # (N,)
            hit = np.full(scale.shape, weight, dtype=g.dtype)
            if ctx.valid is not None:
                scale[~ctx.valid] = 0
                hit[~ctx.valid] = 0
            g *= scale[:, None]
            g[np.arange(g.shape[0]), ctx.ids] -= hit
            ctx.done = True
        return ctx.grad

    def get_config(self) -> dict:
        return {**super().get_config(), "from_logits": self.from_logits, "ignore_index": self.ignore_index}


class _Fused:
    """The fused path's context: the gradient buffer (``y_pred``'s shape; ``exp(z - m)`` until ``done``),
    the row sums ``s``, the target ids and the valid rows (N,)."""

    __slots__ = ("grad", "s", "ids", "valid", "done")

    def __init__(self, grad, s, ids, valid, done):
        self.grad, self.s, self.ids, self.valid, self.done = grad, s, ids, valid, done


#: float dtype -> (the integer type of its width, the bits of +inf)
_INT_VIEW = {np.dtype(np.float32): (np.int32, np.int32(0x7F800000)),
             np.dtype(np.float64): (np.int64, np.int64(0x7FF0000000000000))}


def _run_xent_kernel(step_kernels, z2, ids, valid, weight, grad, keep, terms) -> int:
    """Call ``softmax_xent_rows`` with its integer views and scratch; returns its first non-finite row or -1."""
    itype, inf_bits = _INT_VIEW[z2.dtype]
    bits = np.empty(z2.shape[1] if z2.dtype == np.float32 else 1, dtype=itype)  # the float32 exp's 2^n per class
    m_bits = np.empty(1, dtype=itype)  # the row maximum's bits, read back as a float
    return int(step_kernels.softmax_xent_rows(
        z2, z2.view(itype), ids, valid, z2.dtype.type(weight), grad, keep, bits, bits.view(z2.dtype), m_bits,
        m_bits.view(z2.dtype), itype(np.iinfo(itype).max), itype(np.iinfo(itype).bits - 1), inf_bits, terms))


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
