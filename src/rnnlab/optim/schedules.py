"""Learning-rate schedules: the learning rate of each epoch.

Every schedule answers one question, ``lr(epoch)``: the learning rate to use during ``epoch``
(0-based). The fixed schedules (:class:`Constant`, :class:`StepDecay`, :class:`ExponentialDecay`,
:class:`CosineDecay`) are pure functions of the epoch. :class:`ReduceOnPlateau` depends on how
training went, so it also has ``epoch_end(epoch, logs)``, which the trainer calls with each epoch's
results, and a ``state_dict()`` that checkpoints save and ``load_state_dict()`` restores.

Epoch ``e`` below is 0-based; ``n = e + 1`` is the epoch number a log shows. ``lr`` is the initial
learning rate ``eta_0``.

==================  ===========================================================  ====================================
name                ``lr(e)``                                                    reference
==================  ===========================================================  ====================================
``"constant"``      ``eta_0``
``"step"``          ``eta_0 * factor ** max(0, n - decay_after)``                Zaremba et al. 2014 (SGD lr 1, halved
                                                                                 each epoch after 4: ``decay_after=4,
                                                                                 factor=0.5``)
``"exponential"``   ``eta_0 * gamma ** e``                                       torch ``ExponentialLR``
``"cosine"``        ``min_lr + (eta_0 - min_lr) (1 + cos(pi e / t_max)) / 2``    Loshchilov & Hutter 2017 (SGDR without
                                                                                 restarts), ``CosineAnnealingLR``;
                                                                                 ``min_lr`` for ``e >= t_max``
``"plateau"``       multiplied by ``factor`` (not below ``min_lr``) once the     Keras ``ReduceLROnPlateau``
                    monitored value has not improved for ``patience`` epochs
==================  ===========================================================  ====================================
"""

from __future__ import annotations

import inspect
import math
import numbers

from rnnlab._validation import check_choice

__all__ = ["Schedule", "Constant", "StepDecay", "ExponentialDecay", "CosineDecay", "ReduceOnPlateau", "NAMES", "get"]


def _number(name: str, value, *, low: float = 0.0, low_open: bool = True, high: float | None = None,
            high_open: bool = False) -> float:
    """A finite real in the given range, else an error naming ``name``, the value and the range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    ok = math.isfinite(value) and (value > low if low_open else value >= low)
    if high is not None:
        ok = ok and (value < high if high_open else value <= high)
    if not ok:
        lo = f"{'(' if low_open else '['}{low:g}"
        hi = "inf)" if high is None else f"{high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a finite number in {lo}, {hi}, got {value!r}")
    return value


def _count(name: str, value, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {minimum}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def _check_epoch(epoch) -> int:
    return _count("epoch", epoch, minimum=0)


class Schedule:
    """Base class: ``lr(epoch)``, a no-op ``epoch_end``, and an empty state.

    Parameters
    ----------
    lr : float
        ``eta_0 > 0``, the learning rate of epoch 0.
    """

    name = "constant"

    def __init__(self, lr: float):
        self.initial_lr = _number("lr", lr)

    def lr(self, epoch: int) -> float:
        """The learning rate to use during ``epoch`` (0-based)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def epoch_end(self, epoch: int, logs: dict) -> None:
        """Called with each finished epoch's results; only :class:`ReduceOnPlateau` uses them."""

    def state_dict(self) -> dict:
        """What changes while training (JSON-serialisable); empty for the fixed schedules."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} keeps no state, got {sorted(state)}")

    def get_config(self) -> dict:
        return {"lr": self.initial_lr}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


class Constant(Schedule):
    """``lr(e) = eta_0``."""

    def lr(self, epoch: int) -> float:
        _check_epoch(epoch)
        return self.initial_lr


class StepDecay(Schedule):
    """Constant for ``decay_after`` epochs, then multiplied by ``factor`` every epoch (Zaremba et al. 2014).

    Parameters
    ----------
    lr : float
        ``eta_0``.
    decay_after : int >= 0
        Epochs trained at ``eta_0`` before the first decay.
    factor : float in (0, 1]
        The multiplier per epoch after that (0.5 for Zaremba's small model, 1/1.15 for the large).

    Notes
    -----
    ``lr(e) = eta_0 * factor ** max(0, e + 1 - decay_after)``: with ``decay_after=4, factor=0.5``,
    epochs 1-4 (e = 0..3) use ``eta_0``, epoch 5 ``eta_0/2``, epoch 6 ``eta_0/4``, ...
    """

    name = "step"

    def __init__(self, lr: float, decay_after: int = 4, factor: float = 0.5):
        super().__init__(lr)
        self.decay_after = _count("decay_after", decay_after, minimum=0)
        self.factor = _number("factor", factor, high=1.0)

    def lr(self, epoch: int) -> float:
        e = _check_epoch(epoch)
        return self.initial_lr * self.factor ** max(0, e + 1 - self.decay_after)

    def get_config(self):
        return {"lr": self.initial_lr, "decay_after": self.decay_after, "factor": self.factor}


class ExponentialDecay(Schedule):
    """``lr(e) = eta_0 * gamma ** e`` (``torch.optim.lr_scheduler.ExponentialLR``), ``gamma`` in (0, 1]."""

    name = "exponential"

    def __init__(self, lr: float, gamma: float = 0.9):
        super().__init__(lr)
        self.gamma = _number("gamma", gamma, high=1.0)

    def lr(self, epoch: int) -> float:
        return self.initial_lr * self.gamma ** _check_epoch(epoch)

    def get_config(self):
        return {"lr": self.initial_lr, "gamma": self.gamma}


class CosineDecay(Schedule):
    """Half a cosine from ``eta_0`` down to ``min_lr`` over ``t_max`` epochs (Loshchilov & Hutter 2017).

    Parameters
    ----------
    lr : float
        ``eta_0``.
    t_max : int >= 1
        Epochs of the descent; ``lr(t_max) = min_lr`` and it stays there. The trainer passes the
        run's ``epochs`` when ``t_max`` is not given.
    min_lr : float in [0, eta_0]
        ``eta_min``.

    Notes
    -----
    ``lr(e) = eta_min + (eta_0 - eta_min) (1 + cos(pi min(e, t_max) / t_max)) / 2``, the closed form
    of PyTorch's ``CosineAnnealingLR``.
    """

    name = "cosine"

    def __init__(self, lr: float, t_max: int = 10, min_lr: float = 0.0):
        super().__init__(lr)
        self.t_max = _count("t_max", t_max, minimum=1)
        self.min_lr = _number("min_lr", min_lr, low_open=False, high=self.initial_lr)

    def lr(self, epoch: int) -> float:
        e = min(_check_epoch(epoch), self.t_max)
        return self.min_lr + (self.initial_lr - self.min_lr) * (1.0 + math.cos(math.pi * e / self.t_max)) / 2.0

    def get_config(self):
        return {"lr": self.initial_lr, "t_max": self.t_max, "min_lr": self.min_lr}


class ReduceOnPlateau(Schedule):
    """Multiply the learning rate by ``factor`` when ``monitor`` stops improving (Keras ``ReduceLROnPlateau``).

    Parameters
    ----------
    lr : float
        ``eta_0``.
    monitor : str
        The key of the epoch results to watch (``"val_loss"``, ``"loss"``, ``"val_accuracy"``, ...).
    mode : "min", "max" or "auto"
        Whether smaller or larger is better; ``"auto"`` means ``"max"`` for keys naming accuracy and
        ``"min"`` otherwise.
    factor : float in (0, 1)
        The multiplier at each reduction.
    patience : int >= 1
        Reduce after this many epochs in a row without improvement.
    min_delta : float >= 0
        An improvement must beat the best value by more than this.
    cooldown : int >= 0
        Epochs to wait after a reduction before counting epochs without improvement again.
    min_lr : float >= 0
        The learning rate never goes below this.

    Notes
    -----
    At the end of each epoch, with ``v = logs[monitor]``: if ``v`` improves on ``best`` (``v < best -
    min_delta`` in min mode), ``best = v`` and ``wait = 0``; otherwise, unless the epoch is one of the
    ``cooldown`` epochs right after a reduction, ``wait += 1``, and when ``wait == patience`` the rate
    becomes ``max(lr * factor, min_lr)`` and ``wait = 0``. The new rate applies from the next epoch
    on. E.g. with ``factor=0.5, patience=2``, values 3, 2, 2.5, 2.4, 2.2, 1.0 leave the rate at 1,
    1, 1, 0.5, 0.5, 0.5 for the epochs after each.
    """

    name = "plateau"

    def __init__(self, lr: float, monitor: str = "val_loss", mode: str = "auto", factor: float = 0.1,
                 patience: int = 10, min_delta: float = 0.0, cooldown: int = 0, min_lr: float = 0.0):
        super().__init__(lr)
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"monitor must be a non-empty str, got {type(monitor).__name__} {monitor!r}")
        self.monitor = monitor
        self.mode = resolve_mode(monitor, mode)
        self._mode_spec = mode
        self.factor = _number("factor", factor, high=1.0, high_open=True)
        self.patience = _count("patience", patience, minimum=1)
        self.min_delta = _number("min_delta", min_delta, low_open=False)
        self.cooldown = _count("cooldown", cooldown, minimum=0)
        self.min_lr = _number("min_lr", min_lr, low_open=False)
        self.current = self.initial_lr
        self.best: float | None = None
        self.wait = 0
        self.cooldown_left = 0

    def lr(self, epoch: int) -> float:
        _check_epoch(epoch)
        return self.current

    def epoch_end(self, epoch: int, logs: dict) -> None:
        if self.monitor not in logs:
            raise KeyError(f"ReduceOnPlateau monitors {self.monitor!r}, which the epoch results lack; "
                           f"they have {', '.join(sorted(logs))}")
        value = float(logs[self.monitor])
        in_cooldown = self.cooldown_left > 0
        if in_cooldown:
            self.cooldown_left -= 1
        if improved(value, self.best, self.mode, self.min_delta):
            self.best, self.wait = value, 0
        elif not in_cooldown:
            self.wait += 1
            if self.wait >= self.patience:
                self.current = max(self.current * self.factor, self.min_lr)
                self.wait, self.cooldown_left = 0, self.cooldown

    def state_dict(self) -> dict:
        return {"current": self.current, "best": self.best, "wait": self.wait, "cooldown_left": self.cooldown_left}

    def load_state_dict(self, state: dict) -> None:
        expected = {"current", "best", "wait", "cooldown_left"}
        if set(state) != expected:
            raise ValueError(f"ReduceOnPlateau state must have keys {sorted(expected)}, got {sorted(state)}")
        self.current = _number("current", state["current"], low_open=False)
        self.best = None if state["best"] is None else float(state["best"])
        self.wait = _count("wait", state["wait"], minimum=0)
        self.cooldown_left = _count("cooldown_left", state["cooldown_left"], minimum=0)

    def get_config(self):
        return {"lr": self.initial_lr, "monitor": self.monitor, "mode": self._mode_spec, "factor": self.factor,
                "patience": self.patience, "min_delta": self.min_delta, "cooldown": self.cooldown,
                "min_lr": self.min_lr}


def resolve_mode(monitor: str, mode: str) -> str:
    """``"min"`` or ``"max"``; ``"auto"`` is ``"max"`` for accuracies and ``"min"`` for losses and errors."""
    check_choice("mode", mode, ("auto", "min", "max"))
    if mode != "auto":
        return mode
    return "max" if "acc" in monitor.lower() else "min"


def improved(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    """Whether ``value`` beats ``best`` by more than ``min_delta`` (anything beats None)."""
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


#: schedule name -> class, what ``get`` accepts
NAMES: dict[str, type[Schedule]] = {
    "constant": Constant,
    "step": StepDecay,
    "exponential": ExponentialDecay,
    "cosine": CosineDecay,
    "plateau": ReduceOnPlateau,
}


def get(name: str, lr: float, **kwargs) -> Schedule:
    """The schedule called ``name`` (one of ``NAMES``) starting from ``lr``, with its own arguments.

    Unknown arguments raise ``TypeError`` naming them and the schedule's valid ones.
    """
    cls = NAMES[check_choice("schedule", name, NAMES)]
    valid = [k for k in inspect.signature(cls).parameters if k != "lr"]
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise TypeError(f"schedule {name!r} got unknown argument(s) {unknown}; its arguments are {valid}")
    return cls(lr, **kwargs)
