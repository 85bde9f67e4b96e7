"""How to train: :class:`TrainConfig`, every knob of the :class:`~rnnlab.training.Trainer`, validated on construction
and round-tripped through plain dicts (the ``[train]`` table of a run configuration, ``train_config.json``)."""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rnnlab import optim as optim_module
from rnnlab.optim import schedules as schedules_module

__all__ = ["TrainConfig"]


def _field_error(name: str, expected: str, value) -> str:
    return f"TrainConfig.{name} must be {expected}, got {type(value).__name__} {value!r}"


def _check_int(name: str, value, minimum: int, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    expected = f"an int >= {minimum}" + (" or None" if optional else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(_field_error(name, expected, value))
    if value < minimum:
        raise ValueError(_field_error(name, expected, value))
    return int(value)


def _check_float(name: str, value, *, positive: bool, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    expected = f"a finite number {'> 0' if positive else '>= 0'}" + (" or None" if optional else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(_field_error(name, expected, value))
    value = float(value)
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(_field_error(name, expected, value))
    return value


def _check_name(name: str, value, choices) -> str:
    choices = list(choices)
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"TrainConfig.{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")
    return value


@dataclass
class TrainConfig:
    """How to train: every knob of :class:`Trainer`, validated on construction.

    Parameters
    ----------
    epochs : int >= 1
        Passes over the training batches.
    optimizer : str
        A name of ``rnnlab.optim.NAMES`` (``"sgd"``, ``"adam"``, ...).
    optimizer_args : dict
        Its other arguments (``{"momentum": 0.9}``); ``lr`` is given separately. For ``"asgd"``,
        ``{"t0": N}`` averages the weights from step ``N + 2`` and ``{"nonmono": K}`` from the end of
        the first epoch whose ``val_loss`` is worse than the best of more than ``K`` epochs before
        (NT-ASGD; see :mod:`rnnlab.training.trainer`, "Averaged weights").
    lr : float > 0
        The initial learning rate (the schedule starts from it).
    clip_norm : float > 0, optional
        Rescale the gradients so their global L2 norm is at most this (``optim.clip_grad_norm``).
    clip_value : float > 0, optional
        Clamp every gradient entry to ``[-clip_value, clip_value]`` (applied before ``clip_norm``).
    bptt : int >= 1, optional
        Truncated BPTT in chunks of ``bptt`` steps (``k1 = k2 = bptt``).
    bptt_k1, bptt_k2 : int >= 1, optional, together
        The general form: every ``k1`` steps, backpropagate ``k2 >= k1`` steps (see :mod:`rnnlab.training.bptt`).
    schedule : str
        A name of ``rnnlab.schedules.NAMES``: ``"constant"`` (default), ``"step"``, ``"exponential"``,
        ``"cosine"`` (``t_max`` defaults to ``epochs``), ``"plateau"`` (``monitor``/``mode`` default to
        the fields below).
    schedule_args : dict
        Its arguments (``{"decay_after": 4, "factor": 0.5}``).
    patience : int >= 1, optional
        Early stopping: stop after ``patience`` epochs without improvement of ``monitor``.
    monitor : str
        ``"val_loss"`` (default), ``"loss"``, or a metric, with ``"val_"`` for its validation value.
    mode : "auto", "min" or "max"
        Whether ``monitor`` should decrease or increase (``"auto"``: increase for accuracies).
    min_delta : float >= 0
        The smallest change that counts as an improvement.
    restore_best : bool
        End training with the weights of the epoch where ``monitor`` was best (kept in ``best.npz``
        of the run directory, so resuming keeps them), as Keras' ``restore_best_weights``.
    metrics : sequence of str
        Computed per epoch on the training and validation batches: names of ``rnnlab.metrics.NAMES``
        (``"accuracy"``, ``"perplexity"``, ``"bits_per_character"``, ``"mse"``, ``"mae"``, ...) or of
        metrics given to the Trainer. Each is exact over the epoch (sums of terms and counts, then
        e.g. ``exp`` for perplexity), not a mean of batch values.
    seed : int >= 0
        Seeds ``trainer.rng`` (for callbacks that draw, such as sampling). The initial weights and
        dropout come from the layers' own seeds, the data order from the batches' seed.
    checkpoint_every_steps : int >= 1, optional
        Also checkpoint whenever the step count passes a multiple of this (besides every epoch).
    log_every : int >= 1
        Without a progress bar, a log line every this many steps.
    max_steps : int >= 1, optional
        Stop after the batch during which the step count reaches this; that epoch is closed
        (validated, recorded, checkpointed) as it stands.
    """

    epochs: int = 10
    optimizer: str = "adam"
    optimizer_args: dict = field(default_factory=dict)
    lr: float = 1e-3
    clip_norm: float | None = None
    clip_value: float | None = None
    bptt: int | None = None
    bptt_k1: int | None = None
    bptt_k2: int | None = None
    schedule: str = "constant"
    schedule_args: dict = field(default_factory=dict)
    patience: int | None = None
    monitor: str = "val_loss"
    mode: str = "auto"
    min_delta: float = 0.0
    restore_best: bool = False
    metrics: Sequence[str] = ()
    seed: int = 0
    checkpoint_every_steps: int | None = None
    log_every: int = 50
    max_steps: int | None = None

    def __post_init__(self):
        self.epochs = _check_int("epochs", self.epochs, 1)
        self.optimizer = _check_name("optimizer", self.optimizer, optim_module.NAMES)
        self.lr = _check_float("lr", self.lr, positive=True)
        self.optimizer_args = self._check_args("optimizer_args", self.optimizer_args)
        if "lr" in self.optimizer_args:
            raise ValueError("TrainConfig.optimizer_args must not contain 'lr': set TrainConfig.lr instead")
        try:
            optim_module.get(self.optimizer, lr=self.lr, **self.optimizer_args)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"TrainConfig.optimizer_args {self.optimizer_args!r} do not suit optimizer "
                            f"{self.optimizer!r}: {exc}") from None
        self.clip_norm = _check_float("clip_norm", self.clip_norm, positive=True, optional=True)
        self.clip_value = _check_float("clip_value", self.clip_value, positive=True, optional=True)
        self.bptt = _check_int("bptt", self.bptt, 1, optional=True)
        self.bptt_k1 = _check_int("bptt_k1", self.bptt_k1, 1, optional=True)
        self.bptt_k2 = _check_int("bptt_k2", self.bptt_k2, 1, optional=True)
        if self.bptt is not None and (self.bptt_k1 is not None or self.bptt_k2 is not None):
            raise ValueError(f"TrainConfig: give either bptt (= k1 = k2) or bptt_k1 and bptt_k2, not both; got "
                             f"bptt={self.bptt}, bptt_k1={self.bptt_k1}, bptt_k2={self.bptt_k2}")
        if (self.bptt_k1 is None) != (self.bptt_k2 is None):
            raise ValueError(f"TrainConfig.bptt_k1 and bptt_k2 go together; got "
                             f"bptt_k1={self.bptt_k1}, bptt_k2={self.bptt_k2}")
        if self.bptt_k1 is not None and self.bptt_k2 < self.bptt_k1:
            raise ValueError(f"TrainConfig.bptt_k2 must be >= bptt_k1 (the loss covers the last k1 outputs of a "
                             f"k2-step window); got bptt_k1={self.bptt_k1}, bptt_k2={self.bptt_k2}")
        if isinstance(self.metrics, str) or not isinstance(self.metrics, (list, tuple)):
            raise TypeError(_field_error("metrics", "a list of metric names", self.metrics))
        self.metrics = tuple(self.metrics)
        for name in self.metrics:
            if (not isinstance(name, str) or not name or name.startswith("val_")
                    or name in ("loss", "epoch", "step", "lr", "time")):
                raise ValueError(f"TrainConfig.metrics holds an invalid metric name {name!r} (a metric name is a "
                                 "non-empty str, not starting with 'val_' nor one of loss, epoch, step, lr, time)")
        if len(set(self.metrics)) != len(self.metrics):
            raise ValueError(f"TrainConfig.metrics lists a metric twice: {list(self.metrics)}")
        self.patience = _check_int("patience", self.patience, 1, optional=True)
        if not isinstance(self.monitor, str):
            raise TypeError(_field_error("monitor", "a str", self.monitor))
        _check_name("monitor", self.monitor, self.monitor_choices)
        self.mode = _check_name("mode", self.mode, ("auto", "min", "max"))
        self.min_delta = _check_float("min_delta", self.min_delta, positive=False)
        if not isinstance(self.restore_best, bool):
            raise TypeError(_field_error("restore_best", "a bool", self.restore_best))
        self.schedule = _check_name("schedule", self.schedule, schedules_module.NAMES)
        self.schedule_args = self._check_args("schedule_args", self.schedule_args)
        try:
            self.make_schedule()
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"TrainConfig.schedule_args {self.schedule_args!r} do not suit schedule "
                            f"{self.schedule!r}: {exc}") from None
        if self.schedule == "plateau":
            _check_name("schedule_args['monitor']", self.make_schedule().monitor, self.monitor_choices)
        self.seed = _check_int("seed", self.seed, 0)
        self.checkpoint_every_steps = _check_int("checkpoint_every_steps", self.checkpoint_every_steps, 1,
                                                 optional=True)
        self.log_every = _check_int("log_every", self.log_every, 1)
        self.max_steps = _check_int("max_steps", self.max_steps, 1, optional=True)

    @staticmethod
    def _check_args(name: str, value) -> dict:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise TypeError(_field_error(name, "a dict of argument names to values", value))
        return dict(value)

    # ------------------------------------------------------------------ derived
    @property
    def monitor_choices(self) -> list[str]:
        """The keys an epoch's results have: loss and the metrics, each also with ``val_``."""
        names = ["loss", *self.metrics]
        return names + ["val_" + n for n in names]

    @property
    def truncation(self) -> tuple[int, int] | None:
        """``(k1, k2)``, or None for full BPTT within each batch."""
        if self.bptt is not None:
            return self.bptt, self.bptt
        if self.bptt_k1 is not None:
            return self.bptt_k1, self.bptt_k2
        return None

    @property
    def uses_validation(self) -> list[str]:
        """The fields that read validation results (so need validation data)."""
        used = []
        if self.patience is not None and self.monitor.startswith("val_"):
            used.append(f"monitor={self.monitor!r} (early stopping)")
        if self.restore_best and self.monitor.startswith("val_"):
            used.append(f"monitor={self.monitor!r} (restore_best)")
        if self.optimizer_args.get("nonmono") is not None:
            used.append(f"optimizer_args nonmono={self.optimizer_args['nonmono']!r} (NT-ASGD watches val_loss)")
        if self.schedule == "plateau" and self.make_schedule().monitor.startswith("val_"):
            used.append(f"schedule 'plateau' monitoring {self.make_schedule().monitor!r}")
        return used

    def make_optimizer(self) -> optim_module.Optimizer:
        return optim_module.get(self.optimizer, lr=self.lr, **self.optimizer_args)

    def make_schedule(self) -> schedules_module.Schedule:
        args = dict(self.schedule_args)
        if self.schedule == "cosine":
            args.setdefault("t_max", self.epochs)
        if self.schedule == "plateau":
            args.setdefault("monitor", self.monitor)
            args.setdefault("mode", self.mode)
        return schedules_module.get(self.schedule, self.lr, **args)

    # ------------------------------------------------------------------ dict round trip
    def to_dict(self) -> dict:
        """JSON-serialisable fields; ``TrainConfig.from_dict(cfg.to_dict()) == cfg``."""
        out = dataclasses.asdict(self)
        out["metrics"] = list(self.metrics)
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> TrainConfig:
        """Build from a mapping (a TOML table, JSON); unknown keys raise, naming them and the valid ones."""
        if not isinstance(data, Mapping):
            raise TypeError(f"TrainConfig.from_dict needs a mapping, got {type(data).__name__}")
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in data if k not in valid]
        if unknown:
            raise ValueError(f"unknown TrainConfig key(s) {unknown}; valid keys are {', '.join(valid)}")
        return cls(**dict(data))
