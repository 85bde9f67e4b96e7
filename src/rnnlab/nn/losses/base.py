"""The losses' shared machinery: argument checks, :class:`LossTerms` and the :class:`Loss` base class
(validation, masking, reduction, the forward/backward cache). The conventions are in :mod:`rnnlab.nn.losses`."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rnnlab._errors import NonFiniteError
from rnnlab._validation import as_bool_mask, check_choice
from rnnlab.nn.grad_mode import NO_GRAD_MESSAGE, grad_enabled


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
