"""The experiments' training: one update is the library's training step (:func:`_step`, a divergence
turned into :class:`_Diverged`), inference runs in chunks (:func:`_predict`), and a learning curve trains
on fresh batches, evaluated at fixed intervals (:func:`_learning_curve`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rnnlab.nn.state import forward_with_states
from rnnlab.nn.step import StepDiverged, train_step


class _Diverged(Exception):
    """A step produced a value that is not finite (or beyond a stated bound); the message says which."""


def _step(model, loss_fn, optimizer, x, y, mask=None, *, clip_norm: float | None = None, states=None):
    """One update through the library's training step (:func:`rnnlab.nn.step.train_step`), with ``mask``
    marking the outputs the loss counts; :class:`_Diverged` when it finds a value that is not finite
    (the weights are then unchanged). Returns the step's :class:`~rnnlab.nn.step.StepResult`."""
    try:
        return train_step(model, loss_fn, optimizer, x, y, loss_mask=mask, clip_norm=clip_norm, states=states)
    except StepDiverged as exc:
        raise _Diverged(str(exc)) from None


def _predict(model, x, batch: int = 500) -> np.ndarray:
    """The model's outputs on ``x`` in chunks of ``batch`` sequences, inference mode; :class:`_Diverged`
    if a float overflows."""
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            return np.concatenate([model(x[i:i + batch]) for i in range(0, len(x), batch)], axis=0)
    except FloatingPointError as exc:
        raise _Diverged(f"the forward pass on the validation data overflowed ({exc})") from None


def _carry(model, x, states):
    """The state map after reading ``x`` from ``states`` in inference mode (no update); :class:`_Diverged`
    if a float overflows."""
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            return forward_with_states(model, x, states)[1]
    except FloatingPointError as exc:
        raise _Diverged(f"the forward pass overflowed ({exc})") from None


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
            value = _step(model, loss_fn, optimizer, x, y, mask, clip_norm=clip_norm).loss
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

