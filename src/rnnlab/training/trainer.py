"""Training: :class:`TrainConfig` and :class:`Trainer` (truncated BPTT, clipping, schedules, callbacks,
validation, divergence stop, atomic checkpoints and exact resume).

The loop
--------
For each batch: forward -> loss -> backward -> clip -> optimizer step -> callbacks; at the end of each
epoch: validation, the history row, callbacks (learning-rate schedule, early stopping, history files
and curves, progress, checkpoint; see :mod:`rnnlab.callbacks`). The core stays model-agnostic: it only
uses the module protocol (``model(x, mask=, training=)``, ``backward``, ``zero_grad``,
``named_parameters``/``named_grads``) and the recurrent layers' ``states``.

Backpropagation through time
----------------------------
A batch ``x`` (B, T, ...) is cut into *pieces* of ``k1`` steps; each piece is one optimizer update.
The update for the piece ``[a, e)`` runs the forward from the state at ``s = a - (k2 - k1)`` (so it
spans ``k2`` steps for a full piece), puts the loss on the piece's own ``e - a`` outputs, and
backpropagates through the whole window ``[s, e)``: Williams & Peng's (1990) BPTT(k2; k1), "every k1
steps, backpropagate k2 steps". The state at ``s`` is held constant (gradients do not flow into it).

- ``bptt=k`` is the usual truncated BPTT, ``k1 = k2 = k``: chunks of k steps, each starting from the
  final state of the previous chunk.
- Neither set: one update per batch over all its steps (full BPTT within the batch).
- The windows re-run the forward with the current weights from the *kept* state at ``s``. The trainer
  keeps the state at the end of every piece (an *anchor*); when ``s`` is not an anchor (``k2 - k1``
  not a multiple of ``k1``), it runs the forward from the latest anchor before ``s`` up to ``s``
  first, without gradient (with ``training=True``, as the window's own forward).
- ``Batch.new_sequence = False`` continues the previous batch's sequences: the pieces start from the
  carried state, and a window may reach back into the previous batch (the trainer keeps the inputs
  it needs, at most ``k2 - k1`` steps back).

To carry state the trainer sets ``stateful = True`` on every recurrent layer for the duration of
:meth:`Trainer.run` and assigns each layer's ``states`` before every forward pass (restoring the
flags afterwards). Layers that read a sequence backwards (``Bidirectional``, ``go_backwards``) cannot
carry a state forward, so they only work with full BPTT on independent batches.

Divergence
----------
The forward pass and the loss run under ``np.errstate(over="raise", invalid="raise",
divide="raise")``; the loss and then every gradient are checked for NaN/inf before anything changes.
A failure raises :class:`~rnnlab.models.TrainingDiverged` naming the epoch, the step, the batch and
the parameter whose gradient is not finite (the first in ``named_parameters`` order), with the
weights as they were after the previous step; no checkpoint is written after it, so the last good
one stays the latest.

Checkpoints and resume
----------------------
Layout of ``run_dir``::

    train_config.json      TrainConfig, the loss, the model's config (the run's resolved configuration)
    train.log              every log line
    history.json/.csv      per-epoch results; <quantity>.png curves
    checkpoint.json        the manifest: which checkpoint is the latest, with SHA-256 of its files
    checkpoints/<name>/    model/ (rnnlab.io.save: config.json + weights.npz), optimizer.npz,
                           streams.npz (carried states, anchors, kept inputs), state.json
                           (epoch, batch, step, history, epoch accumulators, every RNG state,
                           schedule / early stopping / callback states)

A checkpoint is written into a fresh directory, each file fsynced, then ``checkpoint.json`` is
replaced atomically (temporary file + ``os.replace``) to point at it, then older checkpoint
directories are deleted. A process killed at any moment leaves the previous complete checkpoint as
the latest. Resuming loads the weights, the optimizer state, the RNG state of the trainer and of
every layer that has one (``_rng``: dropout, layers built lazily), the carried recurrent states,
the schedule, early-stopping and callback states, the history and the position (epoch, batch within
it, step), and asks the data for ``batches_from(epoch, batch)``: the run then goes on exactly as
an uninterrupted run with the same seeds would, bit for bit.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import numbers
import os
import secrets
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnnlab import optim as optim_module
from rnnlab._errors import TrainingDiverged
from rnnlab._files import fsync_directory, sha256_file, write_atomic
from rnnlab.io import files as model_io
from rnnlab.nn import losses as losses_module
from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.module import Module
from rnnlab.nn.recurrent import Recurrent
from rnnlab.nn.state import StateMap, forward_with_states, recurrent_layers
from rnnlab.nn.step import StepDiverged, loss_outputs, train_step
from rnnlab.optim import schedules as schedules_module
from rnnlab.training import metrics as metrics_module
from rnnlab.training.callbacks import (
    BestWeights,
    Callback,
    Checkpointer,
    EarlyStopping,
    HistoryWriter,
    LRScheduler,
    ProgressLogger,
)

__all__ = ["TrainConfig", "Trainer", "TrainingDiverged", "latest_checkpoint"]

CHECKPOINT_FORMAT = "rnnlab-train-checkpoint"
CHECKPOINT_VERSION = 1
MANIFEST = "checkpoint.json"
CHECKPOINTS = "checkpoints"
RUN_CONFIG = "train_config.json"
LOG_FILE = "train.log"

# ====================================================================== configuration
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
        Its other arguments (``{"momentum": 0.9}``); ``lr`` is given separately.
    lr : float > 0
        The initial learning rate (the schedule starts from it).
    clip_norm : float > 0, optional
        Rescale the gradients so their global L2 norm is at most this (``optim.clip_grad_norm``).
    clip_value : float > 0, optional
        Clamp every gradient entry to ``[-clip_value, clip_value]`` (applied before ``clip_norm``).
    bptt : int >= 1, optional
        Truncated BPTT in chunks of ``bptt`` steps (``k1 = k2 = bptt``).
    bptt_k1, bptt_k2 : int >= 1, optional, together
        The general form: every ``k1`` steps, backpropagate ``k2 >= k1`` steps (see the module notes).
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
            raise ValueError(f"TrainConfig.bptt_k1 and bptt_k2 go together; got bptt_k1={self.bptt_k1}, bptt_k2={self.bptt_k2}")
        if self.bptt_k1 is not None and self.bptt_k2 < self.bptt_k1:
            raise ValueError(f"TrainConfig.bptt_k2 must be >= bptt_k1 (the loss covers the last k1 outputs of a "
                             f"k2-step window); got bptt_k1={self.bptt_k1}, bptt_k2={self.bptt_k2}")
        if isinstance(self.metrics, str) or not isinstance(self.metrics, (list, tuple)):
            raise TypeError(_field_error("metrics", "a list of metric names", self.metrics))
        self.metrics = tuple(self.metrics)
        for name in self.metrics:
            if not isinstance(name, str) or not name or name.startswith("val_") or name in ("loss", "epoch", "step", "lr", "time"):
                raise ValueError(f"TrainConfig.metrics holds an invalid metric name {name!r} (a metric name is a non-empty "
                                 "str, not starting with 'val_' nor one of loss, epoch, step, lr, time)")
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
        self.checkpoint_every_steps = _check_int("checkpoint_every_steps", self.checkpoint_every_steps, 1, optional=True)
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


# ====================================================================== carried state of a stream
class _Stream:
    """The recurrent state carried along a stream of batches, for (truncated) BPTT.

    Times count steps since the last ``new_sequence``. ``anchors`` holds ``(time, states)`` for the
    kept boundaries (``states`` per recurrent layer, None for zeros); ``tail_x``/``tail_mask`` hold the
    inputs from the oldest anchor up to ``t`` (what a window reaching back into earlier batches reads).
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.t = 0
        self.anchors: list[tuple[int, list | None]] = [(0, None)]
        self.tail_x: np.ndarray | None = None
        self.tail_mask: np.ndarray | None = None

    @property
    def latest(self) -> list | None:
        return self.anchors[-1][1]

    def anchor_before(self, time_: int) -> tuple[int, list | None]:
        """The latest kept anchor at or before ``time_``."""
        return [a for a in self.anchors if a[0] <= time_][-1]

    def prune(self, overlap: int, x_ext, mask_ext, ext_start: int) -> None:
        """Keep what the next windows (reaching ``overlap`` steps before their piece) can need."""
        keep_from = [a for a in self.anchors if a[0] <= max(0, self.t - overlap)][-1][0]
        self.anchors = [a for a in self.anchors if a[0] >= keep_from]
        if keep_from >= self.t or x_ext is None:
            self.tail_x = self.tail_mask = None
        else:
            self.tail_x = x_ext[:, keep_from - ext_start:].copy()
            self.tail_mask = None if mask_ext is None else mask_ext[:, keep_from - ext_start:].copy()

    # ------------------------------------------------------------------ checkpoint form
    def arrays(self, prefix: str) -> tuple[dict, dict]:
        """``(json_part, arrays)`` describing this stream, for ``state.json`` and ``streams.npz``."""
        arrays, anchors = {}, []
        for i, (t, states) in enumerate(self.anchors):
            layers = None
            if states is not None:
                layers = []
                for j, layer_states in enumerate(states):
                    if layer_states is None:
                        layers.append(None)
                        continue
                    for k, s in enumerate(layer_states):
                        arrays[f"{prefix}.anchor{i}.layer{j}.state{k}"] = s
                    layers.append(len(layer_states))
            anchors.append({"time": t, "layers": layers})
        if self.tail_x is not None:
            arrays[f"{prefix}.tail_x"] = self.tail_x
            if self.tail_mask is not None:
                arrays[f"{prefix}.tail_mask"] = self.tail_mask
        return {"t": self.t, "anchors": anchors}, arrays

    def load(self, prefix: str, meta: dict, arrays: Mapping) -> None:
        self.t = int(meta["t"])
        self.anchors = []
        for i, anchor in enumerate(meta["anchors"]):
            states = None
            if anchor["layers"] is not None:
                states = [None if n is None else tuple(np.array(arrays[f"{prefix}.anchor{i}.layer{j}.state{k}"]) for k in range(n))
                          for j, n in enumerate(anchor["layers"])]
            self.anchors.append((int(anchor["time"]), states))
        self.tail_x = np.array(arrays[f"{prefix}.tail_x"]) if f"{prefix}.tail_x" in arrays else None
        self.tail_mask = np.array(arrays[f"{prefix}.tail_mask"]) if f"{prefix}.tail_mask" in arrays else None


def _concat_time(a, b):
    return b if a is None else np.concatenate([a, b], axis=1)


def _extended(stream: _Stream, x, mask):
    """The inputs from the oldest kept anchor: the kept tail followed by this batch."""
    if stream.tail_x is None:
        return x, mask
    if mask is None and stream.tail_mask is None:
        ext_mask = None
    else:
        tail_mask = stream.tail_mask if stream.tail_mask is not None else np.ones(stream.tail_x.shape[:2], bool)
        batch_mask = mask if mask is not None else np.ones(np.shape(x)[:2], bool)
        ext_mask = _concat_time(tail_mask, batch_mask)
    return _concat_time(stream.tail_x, x), ext_mask


# ====================================================================== small helpers
def _to_json(value):
    """An RNG state (nested dicts with ints and maybe arrays) in JSON form; :func:`_from_json` inverts it."""
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, np.integer):
        return int(value)
    return value


def _from_json(value):
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return np.array(value["__ndarray__"], dtype=value["dtype"])
        return {k: _from_json(v) for k, v in value.items()}
    return value


def _save_npz(path: Path, arrays: Mapping) -> None:
    with open(path, "wb") as f:
        np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})
        f.flush()
        os.fsync(f.fileno())


def _load_npz(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _loss_to_config(loss) -> dict:
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def _loss_from_config(spec: dict):
    cls = getattr(losses_module, spec["class_name"], None)
    if not (isinstance(cls, type) and issubclass(cls, losses_module.Loss)):
        raise ValueError(f"unknown loss class {spec['class_name']!r} in {RUN_CONFIG}")
    return cls.from_config(spec["config"])


def latest_checkpoint(run_dir) -> Path | None:
    """The directory of the latest complete checkpoint of ``run_dir``, or None if there is none."""
    manifest = Path(run_dir) / MANIFEST
    if not manifest.exists():
        return None
    return Path(run_dir) / json.loads(manifest.read_text("utf-8"))["path"]


def _batch_fields(batch) -> tuple:
    """``(x, y, mask, new_sequence)`` of a batch following the ``rnnlab.data.Batch`` contract."""
    for name in ("x", "y"):
        if not hasattr(batch, name):
            raise TypeError(f"a batch must have attributes x, y, mask, new_sequence (rnnlab.data.Batch); "
                            f"got a {type(batch).__name__} without {name!r}")
    return batch.x, batch.y, getattr(batch, "mask", None), bool(getattr(batch, "new_sequence", True))


# ====================================================================== trainer
class Trainer:
    """Trains a model on batches, validating every epoch, checkpointing, and resuming exactly.

    Parameters
    ----------
    model : Module
        Any module following the rnnlab protocol (``Sequential``, ``Seq2Seq``, ...).
    loss : str or rnnlab.losses.Loss
        A name for ``rnnlab.losses.get`` or an instance.
    config : TrainConfig
    train : Batches
        Training batches: ``len()``, ``batches_from(epoch, start)`` (epoch 0-based), each a ``Batch``
        with ``x``, ``y``, ``mask`` and ``new_sequence`` (see ``rnnlab.data``).
    val : Batches, optional
        Validation batches, evaluated after every epoch (``training=False``: no dropout; a stream's
        state carried as in training).
    run_dir : str or os.PathLike
        Where checkpoints, history, curves and the log go (created if missing).
    callbacks : sequence of Callback
        Run after the built-in progress, schedule and early stopping, before history and checkpoint.
    metrics : mapping of name -> rnnlab.metrics.Metric, optional
        Metric objects for names in ``config.metrics`` that ``rnnlab.metrics.get`` does not know, or
        configured differently (``{"accuracy": Accuracy(threshold=0.5)}``).

    Attributes
    ----------
    epoch : int
        The current epoch, 0-based (``config.epochs`` once done).
    batch : int
        Batches of the current epoch already trained.
    step : int
        Optimizer updates so far (several per batch with truncated BPTT).
    history : dict of lists
        One entry per finished epoch: ``epoch`` (1-based), ``step``, ``lr``, ``loss``, the metrics,
        their ``val_`` counterparts, ``time`` (seconds).
    optimizer, schedule, rng, stop_training, error
    """

    def __init__(self, model: Module, loss, config: TrainConfig, train, val, run_dir, *,
                 callbacks: Sequence[Callback] = (), metrics: Mapping[str, metrics_module.Metric] | None = None):
        if not isinstance(model, Module):
            raise TypeError(f"model must be an rnnlab Module, got {type(model).__name__}")
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        for name, data in (("train", train), ("val", val)):
            if data is None and name == "val":
                continue
            missing = [m for m in ("__len__", "batches_from") if not hasattr(data, m)]
            if missing:
                raise TypeError(f"{name} must follow the Batches protocol (len, batches_from(epoch, start)); "
                                f"{type(data).__name__} lacks {', '.join(missing)}")
        if len(train) == 0:
            raise ValueError("train has no batches (len(train) == 0)")
        if val is None and config.uses_validation:
            raise ValueError(f"val is None, but the config reads validation results: {'; '.join(config.uses_validation)}; "
                             "pass validation batches or monitor 'loss'")
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be rnnlab.callbacks.Callback instances, got {type(cb).__name__}")
        self.model = model
        self.loss = losses_module.get(loss)
        self.config = config
        self.train, self.val = train, val
        self.run_dir = Path(run_dir)
        self.metrics = self._resolve_metrics(config.metrics, metrics or {})
        self.optimizer = config.make_optimizer()
        self.schedule = config.make_schedule()
        self.rng = np.random.default_rng(config.seed)

        self.callbacks: list[Callback] = [ProgressLogger(config.log_every), LRScheduler(self.schedule)]
        if config.patience is not None:
            self.callbacks.append(EarlyStopping(config.monitor, config.patience, config.mode, config.min_delta))
        if config.restore_best:
            self.callbacks.append(BestWeights(config.monitor, config.mode, config.min_delta))
        self.callbacks += list(callbacks)
        self.callbacks += [HistoryWriter(), Checkpointer(config.checkpoint_every_steps)]

        self._recurrent = [name for name, _ in recurrent_layers(model)]  # the stream's states, in this order
        self._backward_reading = [name for name, m in model.named_modules()
                                  if isinstance(m, Bidirectional) or (isinstance(m, Recurrent) and m.go_backwards)]
        self.epoch = 0
        self.batch = 0
        self.step = 0
        self.history: dict[str, list] = {}
        self.stop_training = False
        self.error: BaseException | None = None
        self.print_fn: Callable[[str], None] | None = None
        self._stream = _Stream()
        self._acc: dict[str, list[float]] = {}
        self._restored = False

    # ------------------------------------------------------------------ setup helpers
    @staticmethod
    def _resolve_metrics(names, given: Mapping) -> dict[str, metrics_module.Metric]:
        extra = sorted(set(given) - set(names))
        if extra:
            raise ValueError(f"metrics {extra} are given to the Trainer but not listed in config.metrics {list(names)}")
        out = {}
        for name in names:
            if name in given and not isinstance(given[name], metrics_module.Metric):
                raise TypeError(f"metric {name!r} must be an rnnlab.metrics.Metric, got {type(given[name]).__name__}")
            try:
                out[name] = copy.deepcopy(given[name]) if name in given else metrics_module.get(name)
            except ValueError as exc:
                raise ValueError(f"config.metrics: {exc}; or give Trainer(metrics={{{name!r}: a Metric}})") from None
            out[name].reset()
        return out

    def log(self, message: str) -> None:
        """Print ``message`` (through the progress bar when one is shown) and append it to ``train.log``."""
        (self.print_fn or (lambda m: print(m, flush=True)))(message)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / LOG_FILE, "a", encoding="utf-8") as f:
            f.write(message + "\n")

    @property
    def finished(self) -> bool:
        max_steps = self.config.max_steps
        return self.stop_training or self.epoch >= self.config.epochs or (max_steps is not None and self.step >= max_steps)

    @property
    def running_loss(self) -> float:
        """The mean training loss of the current epoch so far."""
        total, weight = self._acc.get("loss", (0.0, 0.0))
        return total / weight if weight else math.nan

    def _emit(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    # ------------------------------------------------------------------ the run
    def run(self, resume: bool = False) -> dict[str, list]:
        """Train until ``config.epochs`` (or early stopping, or ``max_steps``); returns the history.

        With ``resume=True``, first restore the latest checkpoint of ``run_dir`` (see
        :meth:`load_checkpoint`). Without it, a ``run_dir`` that already holds a checkpoint is refused
        rather than overwritten.
        """
        if resume:
            self.load_checkpoint()
        elif not self._restored and latest_checkpoint(self.run_dir) is not None:
            raise FileExistsError(f"'{self.run_dir}' already holds a training checkpoint; pass resume=True to continue "
                                  "that run, or choose another run_dir")
        self._restored = True  # from here on run_dir's checkpoints are this trainer's own
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._write_run_config()
        self.error = None
        try:
            self._emit("on_train_begin")
            while not self.finished:
                self._run_epoch()
        except BaseException as exc:
            self.error = exc
            ckpt = latest_checkpoint(self.run_dir)
            self.log(str(exc) if isinstance(exc, TrainingDiverged) else
                     f"training stopped by {type(exc).__name__} at epoch {self.epoch + 1}, step {self.step}; "
                     + (f"run(resume=True) continues from {ckpt}" if ckpt else "no checkpoint was written yet"))
            raise
        finally:
            self._emit("on_train_end")
        return self.history

    def _run_epoch(self) -> None:
        epoch, n_batches = self.epoch, len(self.train)
        self._emit("on_epoch_begin", epoch)
        t0 = time.perf_counter()
        for batch in self.train.batches_from(epoch, self.batch):
            logs = self._train_batch(batch)
            self.batch += 1
            self._acc.setdefault("time", [0.0])[0] += time.perf_counter() - t0
            t0 = time.perf_counter()
            self._emit("on_batch_end", logs)
            if self.stop_training or self.finished or self.batch >= n_batches:
                break
        logs = {"epoch": epoch + 1, "step": self.step, "lr": float(self.optimizer.lr)}
        logs.update(self._results(self._acc.get("loss"), self.metrics))
        if self.val is not None:
            logs.update({f"val_{k}": v for k, v in self.evaluate(self.val).items()})
        logs["time"] = self._acc.get("time", [0.0])[0] + time.perf_counter() - t0
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)
        self.epoch, self.batch, self._acc = epoch + 1, 0, {}
        for m in self.metrics.values():
            m.reset()
        self._emit("on_epoch_end", epoch, logs)

    # ------------------------------------------------------------------ one batch
    def _train_batch(self, batch) -> dict:
        x, y, mask, new_sequence = _batch_fields(batch)
        stream = self._stream
        if new_sequence:
            stream.reset()
        truncation = self.config.truncation
        if self._backward_reading and (truncation is not None or not new_sequence):
            what = "truncated BPTT (TrainConfig.bptt/bptt_k1)" if truncation is not None else "a batch with new_sequence=False"
            raise ValueError(f"{what} carries the state forward in time, which layers reading the sequence backwards "
                             f"cannot do: {', '.join(repr(n) for n in self._backward_reading)}; train them with full BPTT "
                             "on independent batches")
        if truncation is None:
            # one update over the whole batch, from the carried state
            final, stats = self._update(x, y, mask, stream.latest, n_out=None)
            stream.anchors = [(stream.t, final)]
            stats["updates"] = 1
            return self._batch_logs(stats)

        k1, k2 = truncation
        overlap = k2 - k1
        x, mask = np.asarray(x), None if mask is None else np.asarray(mask)
        if x.ndim < 2:
            raise ValueError(f"truncated BPTT needs sequence inputs x of shape (B, T, ...), got shape {x.shape}")
        T = x.shape[1]
        y = np.asarray(y)
        if y.ndim < 2 or y.shape[:2] != x.shape[:2]:
            raise ValueError(f"truncated BPTT needs one target per step, y of shape (B, T, ...) = {x.shape[:2]} + ..., "
                             f"got y of shape {y.shape}")
        ext_start = stream.anchors[0][0]
        x_ext, mask_ext = _extended(stream, x, mask)
        a0 = stream.t
        totals = {}
        updates = 0
        for a in range(a0, a0 + T, k1):
            e = min(a + k1, a0 + T)
            s = max(0, a - overlap)
            b, state = stream.anchor_before(s)
            if b < s:  # re-run from the latest kept state up to the window's start, without gradient
                state = self._advance(x_ext[:, b - ext_start:s - ext_start],
                                      None if mask_ext is None else mask_ext[:, b - ext_start:s - ext_start], state)
            whole = (s == a0 and e == a0 + T and x_ext is x)
            x_win = x if whole else x_ext[:, s - ext_start:e - ext_start]
            m_win = mask if whole else (None if mask_ext is None else mask_ext[:, s - ext_start:e - ext_start])
            y_piece = y if whole else y[:, a - a0:e - a0]
            final, stats = self._update(x_win, y_piece, m_win, state, n_out=None if whole else e - a)
            stream.anchors.append((e, final))
            updates += 1
            for key, value in stats.items():
                totals.setdefault(key, []).append(value)
        stream.t = a0 + T
        stream.prune(overlap, x_ext, mask_ext, ext_start)
        weight = sum(totals["weight"])
        stats = {"loss": sum(w * v for v, w in zip(totals["loss"], totals["weight"])) / weight if weight else math.nan,
                 "weight": weight, "updates": updates}
        if "grad_norm" in totals:
            stats["grad_norm"] = max(totals["grad_norm"])
        return self._batch_logs(stats)

    def _batch_logs(self, stats: dict) -> dict:
        acc = self._acc.setdefault("loss", [0.0, 0.0])
        acc[0] += stats["weight"] * stats["loss"]
        acc[1] += stats["weight"]
        logs = {k: v for k, v in stats.items() if k != "weight"}
        logs.update(lr=float(self.optimizer.lr), step=self.step, batch=self.batch)
        return logs

    @staticmethod
    def _results(loss_acc, metrics: Mapping[str, metrics_module.Metric]) -> dict:
        """The epoch's mean loss and metric values (NaN for what had no valid target)."""
        total, weight = loss_acc if loss_acc else (0.0, 0.0)
        out = {"loss": total / weight if weight else math.nan}
        for name, m in metrics.items():
            out[name] = m.result() if m.count else math.nan
        return out

    # ------------------------------------------------------------------ one update
    def _update(self, x, y, mask, state0, n_out: int | None) -> tuple[list, dict]:
        """One :func:`~rnnlab.nn.step.train_step` from the states ``state0``, the loss on the last ``n_out``
        outputs (all if None); returns the final states and the statistics of the update."""
        step = self.step + 1
        try:
            result = train_step(self.model, self.loss, self.optimizer, x, y, mask=mask, states=self._state_map(state0),
                                n_out=n_out, clip_value=self.config.clip_value, clip_norm=self.config.clip_norm)
        except StepDiverged as exc:
            raise self._diverged(step, str(exc), parameter=exc.name) from None
        self.step = step
        for m in self.metrics.values():
            m.update(result.outputs, y, mask=result.mask)
        stats = {"loss": result.loss, "weight": _n_targets(y, result.mask)}
        if result.grad_norm is not None:
            stats["grad_norm"] = result.grad_norm
        return self._state_list(result.states), stats

    def _advance(self, x, mask, state0) -> list:
        """The states after running ``x`` from ``state0`` (a forward pass without backward)."""
        with np.errstate(all="ignore"):
            _, final = forward_with_states(self.model, x, self._state_map(state0), mask=mask, training=True)
        return self._state_list(final)

    def _diverged(self, step: int, what: str, parameter: str | None = None) -> TrainingDiverged:
        ckpt = latest_checkpoint(self.run_dir)
        kept = (f"the last good checkpoint, {ckpt}, is kept" if ckpt is not None else "no checkpoint had been written yet")
        exc = TrainingDiverged(f"training diverged at epoch {self.epoch + 1}, step {step} (batch {self.batch + 1} of "
                               f"{len(self.train)}): {what}. The weights are left as they were after step {step - 1}; "
                               f"{kept}. Lower the learning rate or clip the gradients (clip_norm).")
        exc.epoch, exc.step, exc.parameter = self.epoch + 1, step, parameter
        return exc

    # ------------------------------------------------------------------ recurrent state
    def _state_map(self, states: list | None) -> StateMap:
        """The stream's states (one entry per recurrent layer, None for zeros) as the model's state map."""
        return {} if states is None else dict(zip(self._recurrent, states))

    def _state_list(self, final: StateMap) -> list:
        return [final.get(name) for name in self._recurrent]

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, data) -> dict[str, float]:
        """Mean loss and metrics over ``data`` (``batches_from(0, 0)``), in inference mode.

        Each batch starts from zeros when ``new_sequence`` and from the previous batch's final state
        otherwise; the training state is untouched.
        """
        stream, loss_acc = _Stream(), [0.0, 0.0]
        metrics = {name: copy.deepcopy(m) for name, m in self.metrics.items()}
        for m in metrics.values():
            m.reset()
        for batch in data.batches_from(0, 0):
            x, y, mask, new_sequence = _batch_fields(batch)
            if new_sequence:
                stream.reset()
            if self._backward_reading and not new_sequence:
                raise ValueError("validation batches with new_sequence=False carry the state forward, which layers "
                                 f"reading backwards cannot do: {', '.join(self._backward_reading)}")
            with np.errstate(all="ignore"):
                y_pred, final = forward_with_states(self.model, x, self._state_map(stream.latest), mask=mask,
                                                    training=False)
            stream.anchors = [(0, self._state_list(final))]
            y_out, out_mask = loss_outputs(self.model, y_pred, mask)
            if not np.isfinite(y_out).all():
                raise TrainingDiverged(f"the model's output on the validation data is not finite (after epoch "
                                       f"{self.epoch + 1}, step {self.step})")
            weight = _n_targets(y, out_mask)
            loss_acc[0] += weight * float(self.loss(y_out, y, mask=out_mask))
            loss_acc[1] += weight
            for m in metrics.values():
                m.update(y_out, y, mask=out_mask)
        return self._results(loss_acc, metrics)

    # ------------------------------------------------------------------ run configuration
    def _write_run_config(self) -> None:
        document = {"config": self.config.to_dict(), "loss": _loss_to_config(self.loss),
                    "model": {"class_name": type(self.model).__name__}}
        try:
            document["model"]["config"] = self.model.get_config()
        except Exception:  # a custom model without a JSON config is still trainable  # noqa: BLE001
            document["model"]["config"] = None
        text = json.dumps(document, indent=2, default=str) + "\n"
        path = self.run_dir / RUN_CONFIG
        before = json.loads(path.read_text("utf-8"))["config"] if path.exists() else None
        write_atomic(path, text.encode("utf-8"))
        if before is not None:
            changed = {k: (before.get(k), v) for k, v in document["config"].items() if before.get(k) != v}
            if changed:
                self.log("configuration changed since the run started: "
                         + ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items()))
        else:
            self.log(f"training {type(self.model).__name__} in {self.run_dir}: "
                     + json.dumps(self.config.to_dict(), default=str))

    # ------------------------------------------------------------------ checkpoints
    def _rng_states(self) -> dict:
        out = {"trainer": _to_json(self.rng.bit_generator.state), "modules": {}}
        for name, module in self.model.named_modules():
            rng = getattr(module, "_rng", None)
            if isinstance(rng, np.random.Generator):
                out["modules"][name] = _to_json(rng.bit_generator.state)
        return out

    def _callback_keys(self) -> list[tuple[str, Callback]]:
        keys, seen = [], {}
        for cb in self.callbacks:
            base = type(cb).__name__
            seen[base] = seen.get(base, 0) + 1
            keys.append((base if seen[base] == 1 else f"{base}#{seen[base]}", cb))
        return keys

    def save_checkpoint(self) -> Path:
        """Write a complete checkpoint of the current state and make it the latest (atomically).

        Returns its directory. Refuses (``TrainingDiverged``) if a weight is not finite, so a bad state
        never replaces a good checkpoint.
        """
        bad = [name for name, p in self.model.named_parameters() if not np.isfinite(p).all()]
        if bad:
            raise TrainingDiverged(f"not checkpointing: parameter {bad[0]!r} holds NaN or inf; the last good checkpoint "
                                   f"{latest_checkpoint(self.run_dir)} is kept")
        root = self.run_dir / CHECKPOINTS
        root.mkdir(parents=True, exist_ok=True)
        name = f"epoch{self.epoch:04d}-batch{self.batch:06d}-step{self.step:09d}-{secrets.token_hex(3)}"
        tmp = root / f".tmp-{name}"
        tmp.mkdir()
        model_io.save(self.model, tmp / "model")
        _save_npz(tmp / "optimizer.npz", self.optimizer.state_dict())
        stream_meta, stream_arrays = self._stream.arrays("train")
        _save_npz(tmp / "streams.npz", stream_arrays)
        state = {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_VERSION,
            "epoch": self.epoch,
            "batch": self.batch,
            "step": self.step,
            "stop_training": self.stop_training,
            "history": self.history,
            "epoch_accumulators": self._acc,
            "metric_accumulators": {name: [m.total, m.count] for name, m in self.metrics.items()},
            "rng": self._rng_states(),
            "stream": stream_meta,
            "callbacks": {key: cb.state_dict() for key, cb in self._callback_keys()},
        }
        with open(tmp / "state.json", "w", encoding="utf-8") as f:
            json.dump(state, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        fsync_directory(tmp)
        final = root / name
        os.replace(tmp, final)
        fsync_directory(root)
        manifest = {"format": CHECKPOINT_FORMAT, "path": f"{CHECKPOINTS}/{name}", "epoch": self.epoch,
                    "batch": self.batch, "step": self.step,
                    "sha256": {f: sha256_file(final / f) for f in ("state.json", "optimizer.npz", "streams.npz")}}
        write_atomic(self.run_dir / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode("utf-8"))
        fsync_directory(self.run_dir)
        for old in root.iterdir():  # older checkpoints and any left half-written by a killed run
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
        return final

    def load_checkpoint(self) -> Path:
        """Restore everything from the latest checkpoint of ``run_dir``; returns its directory.

        Raises ``FileNotFoundError`` when there is none, ``ValueError`` when a file does not match the
        manifest's checksum or the checkpoint does not fit this model/optimizer.
        """
        manifest_path = self.run_dir / MANIFEST
        if not manifest_path.exists():
            raise FileNotFoundError(f"no checkpoint to resume from in '{self.run_dir}' (looked for '{manifest_path}')")
        manifest = json.loads(manifest_path.read_text("utf-8"))
        directory = self.run_dir / manifest["path"]
        for fname, digest in manifest["sha256"].items():
            if not (directory / fname).exists():
                raise FileNotFoundError(f"checkpoint '{directory}' lacks {fname}, which {manifest_path} lists")
            if sha256_file(directory / fname) != digest:
                raise ValueError(f"checkpoint file '{directory / fname}' does not match its SHA-256 in {manifest_path}: "
                                 "it is corrupt or from another checkpoint")
        state = json.loads((directory / "state.json").read_text("utf-8"))
        if state.get("format") != CHECKPOINT_FORMAT or state.get("format_version", 0) > CHECKPOINT_VERSION:
            raise ValueError(f"'{directory / 'state.json'}' is not a checkpoint this rnnlab can read "
                             f"(format {state.get('format')!r}, version {state.get('format_version')!r})")
        saved = model_io.load(directory / "model")
        if not self.model.built:
            input_shape = model_io.read_config(directory / "model").get("input_shape")
            if input_shape is None:
                raise ValueError("the model is not built and the checkpoint does not record its input shape; "
                                 "build the model (model.build(input_shape)) before resuming")
            self.model.build(tuple(input_shape))
        self.model.set_weights(dict(saved.named_parameters()))
        self.optimizer.load_state_dict(_load_npz(directory / "optimizer.npz"))

        rngs = state["rng"]
        self.rng.bit_generator.state = _from_json(rngs["trainer"])
        modules = dict(self.model.named_modules())
        unknown = sorted(set(rngs["modules"]) - set(modules))
        if unknown:
            raise ValueError(f"the checkpoint holds random-generator states for modules {unknown}, which this model lacks")
        for name, rng_state in rngs["modules"].items():
            rng = getattr(modules[name], "_rng", None)
            if not isinstance(rng, np.random.Generator):
                raise ValueError(f"the checkpoint holds a random-generator state for module {name!r}, which has none")
            rng.bit_generator.state = _from_json(rng_state)

        callback_states = state["callbacks"]
        for key, cb in self._callback_keys():
            if key in callback_states:
                cb.load_state_dict(callback_states[key])
        self._stream.load("train", state["stream"], _load_npz(directory / "streams.npz"))
        self.epoch, self.batch, self.step = int(state["epoch"]), int(state["batch"]), int(state["step"])
        self.stop_training = bool(state["stop_training"])
        self.history = {k: list(v) for k, v in state["history"].items()}
        self._acc = {k: list(v) for k, v in state["epoch_accumulators"].items()}
        for name, m in self.metrics.items():
            m.reset()
            if name in state["metric_accumulators"]:
                m.total, m.count = state["metric_accumulators"][name]
        self._restored = True
        self.log(f"resumed from {directory} at epoch {self.epoch + 1}, batch {self.batch}, step {self.step}")
        return directory

    @classmethod
    def resume(cls, run_dir, train, val=None, *, callbacks: Sequence[Callback] = (),
               metrics: Mapping[str, metrics_module.Metric] | None = None) -> Trainer:
        """A trainer restored from ``run_dir`` alone: its config, loss and latest checkpoint (model included).

        The data are not saved, so they are passed again (built the same way). ``.run()`` continues.
        """
        run_dir = Path(run_dir)
        config_path = run_dir / RUN_CONFIG
        if not config_path.exists():
            raise FileNotFoundError(f"'{run_dir}' is not a training run directory (looked for '{config_path}')")
        document = json.loads(config_path.read_text("utf-8"))
        ckpt = latest_checkpoint(run_dir)
        if ckpt is None:
            raise FileNotFoundError(f"no checkpoint to resume from in '{run_dir}' (looked for '{run_dir / MANIFEST}')")
        model = model_io.load(ckpt / "model")
        trainer = cls(model, _loss_from_config(document["loss"]), TrainConfig.from_dict(document["config"]), train, val,
                      run_dir, callbacks=callbacks, metrics=metrics)
        trainer.load_checkpoint()
        return trainer


def _n_targets(y, mask) -> float:
    """How many targets a batch's mean loss averages over (its weight in the epoch's mean)."""
    size = int(np.size(y))
    if mask is None:
        return float(size)
    m = np.asarray(mask)
    return float(int(m.sum()) * (size // max(m.size, 1)))
