"""The experiments' small training loop: a forward, loss and backward with float errors turned into
:class:`_Diverged` (:func:`_gradient`, which also measures the global gradient norm before clipping),
an optional clipping and an optimizer step (:func:`_update`), inference in chunks (:func:`_predict`),
and a learning curve on fresh batches evaluated at fixed intervals (:func:`_learning_curve`)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from rnnlab import optim
from rnnlab._errors import NonFiniteError


class _Diverged(Exception):
    """A step produced a value that is not finite (or beyond a stated bound); the message says which."""


def _gradient(model, loss_fn, x, y, mask=None) -> tuple[float, float]:
    """Forward, loss and backward with float errors raised; returns ``(loss, ||grad||)`` (before clipping).

    The gradients are left in ``model.grads`` (zeroed first). A float overflow or invalid operation,
    a NaN or inf in a gradient, or a gradient norm beyond the float64 range, raises :class:`_Diverged`;
    the weights are untouched. The norm is :func:`rnnlab.optim.global_norm`'s, the one ``clip_grad_norm``
    clips by.
    """
    model.zero_grad()
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            out = model(x, training=True)
            value = float(loss_fn(out, y, mask=mask))
            model.backward(loss_fn.backward(), input_grad=False)
    except FloatingPointError as exc:
        raise _Diverged(f"a float overflowed or became invalid ({exc})") from None
    try:
        norm = optim.global_norm(model.named_grads())
    except NonFiniteError:  # a NaN or inf in a gradient: a divergence to report, not an error
        norm = math.inf
    if not math.isfinite(norm):  # also finite gradients whose norm is beyond the float64 range
        raise _Diverged("the gradient norm is beyond the float64 range")
    return value, norm


def _update(model, optimizer, clip_norm: float | None) -> None:
    """Clip the global gradient norm to ``clip_norm`` (if given), then take an optimizer step."""
    if clip_norm is not None:
        optim.clip_grad_norm(model, clip_norm)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        try:
            optimizer.step(model)
        except FloatingPointError as exc:
            raise _Diverged(f"the optimizer step overflowed ({exc})") from None


def _predict(model, x, batch: int = 500) -> np.ndarray:
    """The model's outputs on ``x`` in chunks of ``batch`` sequences, inference mode; :class:`_Diverged`
    if a float overflows."""
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            return np.concatenate([model(x[i:i + batch]) for i in range(0, len(x), batch)], axis=0)
    except FloatingPointError as exc:
        raise _Diverged(f"the forward pass on the validation data overflowed ({exc})") from None


def _learning_curve(model, loss_fn, optimizer, draw_batch: Callable[[], tuple], evaluate: Callable[[], dict], *,
                    batch_size: int, max_sequences: int, eval_every: int, clip_norm: float | None,
                    solved: Callable[[dict], bool], stop_when_solved: bool, log: Callable[[str], None],
                    label: str) -> dict:
    """Train on fresh batches, evaluating every ``eval_every`` training sequences (and before training).

    Returns ``{"sequences": [...], <metric>: [...], "train_loss": [...], "solved_at": int | None,
    "stopped": str}``: ``train_loss[i]`` is the mean training loss of the updates since the previous
    evaluation (None at the first point), ``solved_at`` the training sequences seen at the first
    evaluation where ``solved(metrics)`` holds, and ``stopped`` why the run ended.
    """
    record: dict = {"sequences": [], "train_loss": []}
    seen, since = 0, []
    state = {"solved_at": None}

    def checkpoint() -> bool:
        metrics = evaluate()
        record["sequences"].append(seen)
        record["train_loss"].append(float(np.mean(since)) if since else None)
        for key, value in metrics.items():
            record.setdefault(key, []).append(value)
        since.clear()
        if state["solved_at"] is None and solved(metrics):
            state["solved_at"] = seen
        log(f"{label}: {seen:,} sequences, " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        return state["solved_at"] is not None

    stopped = f"the budget of {max_sequences:,} training sequences was used"
    try:
        done = checkpoint()
        next_eval = eval_every
        while seen < max_sequences and not (done and stop_when_solved):
            x, y, mask = draw_batch()
            value, _ = _gradient(model, loss_fn, x, y, mask)
            _update(model, optimizer, clip_norm)
            seen += batch_size
            since.append(value)
            if seen >= next_eval or seen >= max_sequences:
                done = checkpoint()
                next_eval += eval_every
        if done and stop_when_solved:
            stopped = f"solved after {state['solved_at']:,} sequences (the run stops once solved)"
    except _Diverged as exc:
        stopped = f"diverged after {seen:,} sequences: {exc}"
        log(f"{label}: {stopped}")
    record["solved_at"] = state["solved_at"]
    record["stopped"] = stopped
    return record

