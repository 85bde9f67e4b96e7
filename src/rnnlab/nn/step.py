"""One training update, the step that :meth:`Sequential.fit` and :class:`rnnlab.training.Trainer` both take.

For parameters ``θ``, inputs ``x`` (B, T, ...), targets ``t`` and a state map ``s_0``::

    y   = f(x; θ, s_0)                     forward, training=True
    L   = loss(y_[-n:], t)                 on the last n outputs (all of them by default), masked
    g   = dL/dθ                            backward into the zeroed model.grads
    check y, L and every g finite          nothing has changed yet when one is not (nor when L > max_loss)
    g  <- clip(g, -v, v)                   clip_value v, optional
    g  <- g * min(1, c / (||g|| + 1e-6))   clip_norm c, optional (rnnlab.optim.clip_grad_norm)
    θ  <- optimizer(θ, g)

The forward pass and the loss run under ``np.errstate(over="raise", invalid="raise",
divide="raise")``. An overflow, or an output, loss or gradient that is not finite, raises
:class:`StepDiverged` (a :class:`~rnnlab._errors.NonFiniteError`) before the weights change; its
message says what was not finite and its ``name`` is the parameter when a gradient was. Callers
wrap it in :class:`~rnnlab._errors.TrainingDiverged` with their own position (epoch, step,
batch). Inputs that are not finite are the caller's error: the model's own check raises
``NonFiniteError`` naming them, which passes through. When ``x`` is finite, the same check failing
inside the model (a layer's input is another layer's output) means the weights are no longer
finite, which is divergence: :class:`StepDiverged` naming the parameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rnnlab._errors import NonFiniteError
from rnnlab._validation import all_finite
from rnnlab.nn.losses import Loss
from rnnlab.nn.module import Module
from rnnlab.nn.state import StateMap, forward_with_states
from rnnlab.optim import Optimizer, clip_grad_norm, clip_grad_value

__all__ = ["StepDiverged", "StepResult", "loss_outputs", "train_step"]


class StepDiverged(NonFiniteError):
    """An update found the forward pass, the output, the loss or a gradient not finite; the weights are
    unchanged. ``name`` is the first parameter whose gradient is not finite, None otherwise."""


@dataclass
class StepResult:
    """What one update computed.

    Attributes
    ----------
    loss : float
        ``L``, the loss of the update (before the optimizer step).
    outputs : ndarray
        The outputs the loss saw, ``y_[-n:]``.
    mask : ndarray or None
        Their mask, as the loss saw it.
    states : dict
        The state map after the forward pass, ``s_T`` (see :mod:`rnnlab.nn.state`).
    grad_norm : float or None
        ``||g||`` before clipping, with ``clip_norm``; None without.
    """

    loss: float
    outputs: np.ndarray
    mask: np.ndarray | None
    states: StateMap
    grad_norm: float | None = None


def loss_outputs(model: Module, y_pred, mask, n_out: int | None = None, steps: int | None = None):
    """``(y_out, out_mask)``: the outputs the loss sees and their mask.

    The mask is the model's ``output_mask`` when it has one (else ``mask``), dropped unless it covers
    the leading (B, T) axes of ``y_pred``. With ``n_out``, the last ``n_out`` of ``steps`` outputs
    (B, steps, ...) -> (B, n_out, ...); a model that does not return one output per step raises.
    """
    if isinstance(y_pred, (list, tuple)):
        raise TypeError(f"the model returned a {type(y_pred).__name__}; training needs one output array "
                        "(a model whose last layer has return_state=False)")
    out_mask = model.output_mask if hasattr(model, "output_mask") else mask
    if out_mask is not None and (y_pred.ndim < 2 or np.shape(out_mask) != y_pred.shape[:2]):
        out_mask = None
    if n_out is None:
        return y_pred, out_mask
    if y_pred.ndim < 2 or y_pred.shape[1] != steps:
        raise ValueError(f"truncated BPTT needs one output per step (return_sequences=True on the last recurrent "
                         f"layer); a window of {steps} steps gave an output of shape {y_pred.shape}")
    return y_pred[:, -n_out:], None if out_mask is None else out_mask[:, -n_out:]


def _raise_if_not_finite(model: Module) -> None:
    """Raise :class:`StepDiverged` naming every parameter whose gradient is not finite (when one is not)."""
    bad = [name for name, g in model.named_grads() if not np.isfinite(g).all()]
    if bad:
        more = f" (also {', '.join(repr(b) for b in bad[1:])})" if len(bad) > 1 else ""
        raise StepDiverged(f"the gradient of parameter {bad[0]!r} is not finite{more}", name=bad[0])


def train_step(model: Module, loss: Loss, optimizer: Optimizer, x, y, *, mask=None, loss_mask=None,
               states: StateMap | None = None, n_out: int | None = None, clip_value: float | None = None,
               clip_norm: float | None = None, max_loss: float | None = None, after_backward=None) -> StepResult:
    """One update of ``model`` on ``(x, y)``: forward, loss, backward, finite checks, clipping, optimizer step.

    Parameters
    ----------
    model : Module
    loss : Loss
    optimizer : Optimizer
    x, y : array_like
        A batch and its targets (``y`` for the last ``n_out`` steps only when ``n_out`` is given).
    mask : ndarray of bool (B, T), optional
        Valid input steps.
    loss_mask : ndarray of bool, optional
        The outputs the loss counts, when that is not the input mask: every input step is read, and
        only these outputs are scored (the query steps of a recall task). Replaces the mask the loss
        would otherwise get.
    states : state map, optional
        The state the forward pass starts from (``{}``: zeros; None: the layers' own, see
        :func:`~rnnlab.nn.state.forward_with_states`). No gradient flows into it.
    n_out : int, optional
        Put the loss on the last ``n_out`` outputs only (truncated BPTT: the window's own piece);
        the output gradient of the steps before is zero.
    clip_value, clip_norm : float, optional
        See :func:`rnnlab.optim.clip_grad_value` and :func:`rnnlab.optim.clip_grad_norm`.
    max_loss : float, optional
        A loss above it is divergence too (the trainer's limit on an exploding loss).
    after_backward : callable, optional
        ``after_backward(model, loss)``, called right after the backward pass, before the checks and
        the clipping (data-parallel training sums the ranks' gradients there; it is called even when
        the backward pass found a non-finite value, so every rank reaches it).

    Raises
    ------
    StepDiverged
        When the forward pass overflows, or the output, the loss or a gradient is not finite, or the
        loss exceeds ``max_loss``; the weights are unchanged by this step. ``name`` is the first
        parameter (in ``named_grads`` order) whose gradient (or, when the forward pass found a
        non-finite value inside the model, whose value) is not finite, ``"loss"`` when the loss
        exceeds ``max_loss``, None otherwise.
    """
    model.zero_grad()
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            y_pred, final = forward_with_states(model, x, states, mask=mask, training=True)
    except FloatingPointError as exc:
        raise StepDiverged(f"the forward pass overflowed ({exc})") from None
    except NonFiniteError as exc:  # a layer's input check: the caller's x, or a value the model made
        if not _finite(x):
            raise
        bad = [name for name, p in model.named_parameters() if not np.isfinite(p).all()]
        where = f"parameter {bad[0]!r} is not finite" if bad else f"a value inside the model is not finite ({exc})"
        raise StepDiverged(f"the forward pass went non-finite: {where}", name=bad[0] if bad else None) from None
    y_out, out_mask = loss_outputs(model, y_pred, mask, n_out, None if n_out is None else np.shape(x)[1])
    if loss_mask is not None:
        out_mask = loss_mask
    if not isinstance(loss, Loss) and not np.isfinite(y_out).all():  # an rnnlab Loss checks y_pred itself
        raise StepDiverged("the model's output is not finite")
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            value = float(loss(y_out, y, mask=out_mask))
    except FloatingPointError as exc:
        raise StepDiverged(f"the loss overflowed ({exc})") from None
    except NonFiniteError as exc:  # the loss found NaN or inf in its y_pred: the model's output
        if exc.name != "y_pred":
            raise
        raise StepDiverged("the model's output is not finite") from None
    if not math.isfinite(value):
        raise StepDiverged(f"the loss is {value}")
    if max_loss is not None and value > max_loss:
        raise StepDiverged(f"the loss exploded to {value:.6g}, above its limit {max_loss:.6g}", name="loss")
    dy = loss.backward()
    if n_out is not None:
        full = np.zeros_like(y_pred)
        full[:, -n_out:] = dy
        dy = full
    problem = None
    try:
        with np.errstate(all="ignore"):  # non-finite gradients are found just below, by parameter
            model.backward(dy, input_grad=False)
    except NonFiniteError as exc:  # an array checked inside the model (a layer's dy) is not finite
        problem = exc
    if after_backward is not None:
        after_backward(model, loss)
    grad_norm = None
    if clip_norm is not None and clip_value is None and problem is None:
        # one pass: the global norm is finite only when every gradient is, and it raises before changing any
        try:
            grad_norm = clip_grad_norm(model, clip_norm)
        except NonFiniteError:
            _raise_if_not_finite(model)
            raise
    else:
        if not all(all_finite(g) for _, g in model.named_grads()):
            _raise_if_not_finite(model)
        if problem is not None:
            raise StepDiverged(f"a gradient inside the model is not finite ({problem})")
        if clip_value is not None:
            clip_grad_value(model, clip_value)
        grad_norm = None if clip_norm is None else clip_grad_norm(model, clip_norm)
    optimizer.step(model)
    return StepResult(value, y_out, out_mask, final, grad_norm)


def _finite(x) -> bool:
    """Whether the model's input (an array, or a tuple of them for a multi-input model) is all finite."""
    if isinstance(x, (tuple, list)):
        return all(_finite(part) for part in x)
    a = np.asarray(x)
    return not np.issubdtype(a.dtype, np.inexact) or bool(np.isfinite(a).all())
