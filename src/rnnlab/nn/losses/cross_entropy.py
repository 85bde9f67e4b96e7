"""Softmax cross-entropy, fused: one log-sum-exp pass per row and the gradient written in place (a numba
row kernel where the kernel backend has one, NumPy otherwise)."""

from __future__ import annotations

import numpy as np

from rnnlab.nn import kernels
from rnnlab.nn.functional import log_softmax
from rnnlab.nn.grad_mode import grad_enabled
from rnnlab.nn.losses.base import Loss, _as_float_target, _check_finite, _check_real, _expand


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


#: logits per thread below which the row pass is not split (a thread's hand-off costs tens of microseconds)
_MIN_SPLIT = 1 << 18
#: float dtype -> (the integer type of its width, the bits of +inf)
_INT_VIEW = {np.dtype(np.float32): (np.int32, np.int32(0x7F800000)),
             np.dtype(np.float64): (np.int64, np.int64(0x7FF0000000000000))}


def _run_xent_kernel(step_kernels, z2, ids, valid, weight, grad, keep, terms) -> int:
    """Call ``softmax_xent_rows`` with its integer views and scratch, over blocks of rows on
    :func:`rnnlab.nn.kernels.split_rows`' threads (each row computed as by one thread); returns the
    first non-finite row or -1."""
    itype, inf_bits = _INT_VIEW[z2.dtype]
    zi, w = z2.view(itype), z2.dtype.type(weight)
    absmask, shift = itype(np.iinfo(itype).max), itype(np.iinfo(itype).bits - 1)

    def rows(lo: int, hi: int) -> int:
        bits = np.empty(z2.shape[1] if z2.dtype == np.float32 else 1, dtype=itype)  # the float32 exp's 2^n per class
        m_bits = np.empty(1, dtype=itype)  # the row maximum's bits, read back as a float
        g = grad[lo:hi] if keep else grad
        bad = int(step_kernels.softmax_xent_rows(z2[lo:hi], zi[lo:hi], ids[lo:hi], valid[lo:hi], w, g, keep, bits,
                                                 bits.view(z2.dtype), m_bits, m_bits.view(z2.dtype), absmask, shift,
                                                 inf_bits, terms[lo:hi]))
        return bad if bad < 0 else lo + bad

    bad = [b for b in kernels.split_rows(rows, z2.shape[0], max(1, _MIN_SPLIT // max(z2.shape[1], 1))) if b >= 0]
    return min(bad) if bad else -1
