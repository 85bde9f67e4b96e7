"""Divergence beyond NaN and inf: a loss that explodes, and weights that blow up while staying finite.

A run can diverge without a single NaN: the weights grow to 1e23, every value stays finite, and the
next forward pass overflows. A checkpoint of such weights is no "last good checkpoint": resuming from
it diverges again at once. Two checks catch this before it is written down:

* **the loss**: an update whose loss ``L`` exceeds ``LOSS_JUMP`` times its baseline stops the run
  before the optimizer step (``train_step(max_loss=)``). The baseline is the larger of the median of
  the last ``WINDOW`` losses (the running median) and ``FLOOR`` times the median of the run's first
  ``WARMUP`` losses (so that a model fitted to a loss near zero may still meet an ordinary noisy
  batch); there is no limit before ``WARMUP`` losses;
* **the weights**: no checkpoint is written, and none is resumed from, while a parameter is not
  finite or ``|w|`` exceeds ``MAX_WEIGHT``.

The watch's losses are part of a checkpoint (``state_dict``), so a resumed run decides exactly as an
uninterrupted one.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from rnnlab.nn.module import Module

__all__ = ["LOSS_JUMP", "MAX_WEIGHT", "LossWatch", "blown_up"]

#: a loss above this many times its baseline stops the run (see the module's text)
LOSS_JUMP = 1e4
FLOOR = 1e-3
WINDOW = 100
WARMUP = 3
#: no checkpoint is written or resumed from while a weight's magnitude exceeds this
MAX_WEIGHT = 1e6

RULE = (f"the limit is {LOSS_JUMP:g} times the loss's running median over the last {WINDOW} updates, "
        f"or {LOSS_JUMP * FLOOR:g} times its median over the first {WARMUP} if that is more")


class LossWatch:
    """The running record of a run's losses that :func:`limit` turns into the largest acceptable loss."""

    def __init__(self):
        self.first: list[float] = []
        self.recent: deque[float] = deque(maxlen=WINDOW)

    def limit(self) -> float | None:
        """The largest loss the next update may have; None until ``WARMUP`` losses are recorded."""
        if len(self.first) < WARMUP:
            return None
        baseline = max(float(np.median(self.recent)), FLOOR * float(np.median(self.first)))
        return LOSS_JUMP * baseline if baseline > 0 else None

    def record(self, loss: float) -> None:
        if len(self.first) < WARMUP:
            self.first.append(float(loss))
        self.recent.append(float(loss))

    def state_dict(self) -> dict:
        return {"first": list(self.first), "recent": list(self.recent)}

    def load_state_dict(self, state: dict) -> None:
        self.first = [float(v) for v in state["first"]]
        self.recent = deque((float(v) for v in state["recent"]), maxlen=WINDOW)


def blown_up(model: Module) -> str | None:
    """What is wrong with ``model``'s weights: a parameter that is not finite or beyond ``MAX_WEIGHT`` in
    magnitude (the first in ``named_parameters`` order); None when they are fine."""
    for name, p in model.named_parameters():
        if p.size == 0:
            continue
        high, low = float(p.max()), float(p.min())
        if not (math.isfinite(high) and math.isfinite(low)):
            return f"parameter {name!r} holds NaN or inf"
        peak = max(high, -low)
        if peak > MAX_WEIGHT:
            return f"parameter {name!r} has blown up (|w| up to {peak:.3g}, beyond {MAX_WEIGHT:g})"
    return None
