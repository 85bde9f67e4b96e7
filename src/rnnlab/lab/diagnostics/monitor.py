"""Gradients during training: :class:`GradientMonitor`, a callback recording per-parameter gradient norms
and update-to-weight ratios."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from rnnlab._files import write_atomic
from rnnlab._validation import check_positive_int
from rnnlab.nn.module import Module
from rnnlab.optim.clipping import global_norm
from rnnlab.training.callbacks import Callback

__all__ = ["GradientMonitor"]


def _norm(a: np.ndarray) -> float:
    return float(np.sqrt(np.sum(np.square(a, dtype=np.float64))))


class GradientMonitor(Callback):
    """Record per-parameter gradient norms and update-to-weight ratios every ``every`` batches.

    Parameters
    ----------
    every : int >= 1
        Record after batches ``every, 2 * every, ...`` (counted over the whole run).

    Attributes
    ----------
    history : list of dict
        One row per record: ``step``, ``epoch`` (1-based), ``batch`` (within the epoch, 1-based),
        ``loss`` (the batch's), ``grad_norm`` (global, :func:`rnnlab.optim.global_norm`), and per
        parameter ``grad_norm/<name>`` = ``||g||`` and ``update_ratio/<name>`` =
        ``||W_after - W_before|| / ||W_after||`` for the update(s) of that batch (0 when nothing moved,
        inf if the weight became exactly zero).

    Notes
    -----
    The gradients are those the optimizer applied, read at the end of the batch: after clipping
    (the trainer's ``grad_norm`` log, when clipping, is the norm before), and of the last update of
    the batch under truncated BPTT. There is no batch-begin hook, so the monitor copies the weights
    at the end of the batch *before* each recorded one (at the start of training when that is the
    first): the ratio is then exactly that of the recorded batch's update, the quantity whose rule
    of thumb is about 1e-3 (much smaller: the layer barely learns; much larger: it is unstable).
    The copy costs one model's worth of memory and one copy per ``every`` batches. The counter and
    the history are in ``state_dict()``, so a resumed run records exactly what an uninterrupted one
    would (a checkpoint is taken at a batch end, where the weights equal the copy it would have made).
    """

    def __init__(self, every: int = 1):
        self.every = check_positive_int("every", every)
        self.batches = 0
        self.history: list[dict] = []
        self._before: dict[str, np.ndarray] | None = None

    def _snapshot_if_next_is_recorded(self, model: Module) -> None:
        if (self.batches + 1) % self.every == 0:
            self._before = {name: p.copy() for name, p in model.named_parameters()}

    def on_train_begin(self, trainer) -> None:
        self._snapshot_if_next_is_recorded(trainer.model)

    def on_batch_end(self, trainer, logs: dict) -> None:
        self.batches += 1
        if self.batches % self.every == 0:
            self.history.append(self._record(trainer, logs))
        self._snapshot_if_next_is_recorded(trainer.model)

    def _record(self, trainer, logs: dict) -> dict:
        if self._before is None:
            raise ValueError("GradientMonitor records the weights at on_train_begin, which was not called; use it "
                             "through rnnlab.train.Trainer(callbacks=[...])")
        row = {"step": int(trainer.step), "epoch": int(trainer.epoch) + 1, "batch": int(trainer.batch),
               "loss": float(logs["loss"])}
        grads = dict(trainer.model.named_grads())
        norms = {name: _norm(g) for name, g in grads.items()}
        row["grad_norm"] = global_norm(grads.items())
        row.update((f"grad_norm/{name}", n) for name, n in norms.items())
        for name, p in trainer.model.named_parameters():
            delta = _norm(p - self._before[name])
            weight = _norm(p)
            row[f"update_ratio/{name}"] = delta / weight if weight > 0 else (0.0 if delta == 0 else math.inf)
        return row

    def to_csv(self, path) -> Path:
        """Write the history as CSV (one row per record, columns as in ``history``), atomically."""
        path = Path(path)
        columns = list(dict.fromkeys(k for row in self.history for k in row)) or [
            "step", "epoch", "batch", "loss", "grad_norm"]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in self.history:
            writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
        write_atomic(path, buf.getvalue().encode("utf-8"))
        return path

    def state_dict(self) -> dict:
        return {"batches": self.batches, "history": [dict(row) for row in self.history]}

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(state, dict) or set(state) != {"batches", "history"}:
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"GradientMonitor state must have keys batches, history; got {got}")
        self.batches = int(state["batches"])
        self.history = [dict(row) for row in state["history"]]
