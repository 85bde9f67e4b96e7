"""Callbacks: everything the training loop does besides training.

The loop of :class:`rnnlab.train.Trainer` only trains and validates; the rest hangs off five hooks
(mingpt's ``trainer.py`` keeps the same split). The trainer runs its callbacks in this order::

    ProgressLogger, LRScheduler, EarlyStopping, BestWeights, <yours>, HistoryWriter, Checkpointer

so that at the end of an epoch the progress line comes first, the learning rate and the stop
decision are settled before the history is written and the checkpoint taken, and a checkpoint holds
everything the epoch changed.

Hooks (all optional; ``trainer`` gives access to ``model``, ``optimizer``, ``config``, ``epoch``
(0-based), ``batch`` (batches done in the epoch), ``step`` (optimizer updates so far), ``history``,
``log(message)`` and ``stop_training``):

- ``on_train_begin(trainer)``, also when a run resumes;
- ``on_epoch_begin(trainer, epoch)``, also when a run resumes in the middle of ``epoch``;
- ``on_batch_end(trainer, logs)``: ``logs`` has ``loss``, ``lr``, ``step``, ``batch`` and, with
  ``clip_norm``, ``grad_norm`` (before clipping) of the batch just trained;
- ``on_epoch_end(trainer, epoch, logs)``: ``logs`` is the epoch's row of the history;
- ``on_train_end(trainer)``, however the run ends; ``trainer.error`` is the exception that ended it,
  or None.

A callback whose behaviour depends on the past returns it from ``state_dict()`` (JSON-serialisable)
and takes it back in ``load_state_dict()``: checkpoints store it, so a resumed run decides exactly as
an uninterrupted one would.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from rnnlab._files import write_atomic
from rnnlab._validation import check_positive_int
from rnnlab.optim.schedules import Schedule, improved, resolve_mode

__all__ = ["Callback", "LRScheduler", "EarlyStopping", "BestWeights", "HistoryWriter", "ProgressLogger", "Checkpointer",
           "write_atomic"]


class Callback:
    """Base class: every hook does nothing and there is no state to save."""

    def on_train_begin(self, trainer) -> None: ...

    def on_epoch_begin(self, trainer, epoch: int) -> None: ...

    def on_batch_end(self, trainer, logs: dict) -> None: ...

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None: ...

    def on_train_end(self, trainer) -> None: ...

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} keeps no state, got {sorted(state)}")


# ---------------------------------------------------------------------- learning rate
class LRScheduler(Callback):
    """Set ``optimizer.lr = schedule.lr(epoch)`` at each epoch's start; feed each epoch's results back."""

    def __init__(self, schedule: Schedule):
        if not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be an rnnlab.schedules.Schedule, got {type(schedule).__name__}")
        self.schedule = schedule

    def on_epoch_begin(self, trainer, epoch):
        trainer.optimizer.lr = self.schedule.lr(epoch)

    def on_epoch_end(self, trainer, epoch, logs):
        self.schedule.epoch_end(epoch, logs)

    def state_dict(self):
        return self.schedule.state_dict()

    def load_state_dict(self, state):
        self.schedule.load_state_dict(state)


# ---------------------------------------------------------------------- early stopping
class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs in a row.

    Parameters
    ----------
    monitor : str
        A key of the epoch results: ``"val_loss"`` (default), ``"loss"``, ``"val_accuracy"``, ...
    patience : int >= 1
    mode : "auto" (default), "min" or "max"
        ``"auto"`` maximises keys naming an accuracy and minimises the rest.
    min_delta : float >= 0
        An improvement must beat the best value by more than this.

    Notes
    -----
    With ``best`` the best value so far and ``wait`` the epochs since it: an epoch whose value
    improves on ``best`` (``v < best - min_delta`` when minimising) sets ``wait = 0``; any other sets
    ``wait += 1``, and training stops after the epoch where ``wait`` reaches ``patience``. So with
    ``patience = 2`` and validation losses 3, 2, 2.5, 2.4, 1 the run stops after epoch 4.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, mode: str = "auto", min_delta: float = 0.0):
        self.monitor = monitor
        self.patience = check_positive_int("patience", patience)
        self.mode = resolve_mode(monitor, mode)
        if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float)) or not 0 <= min_delta < math.inf:
            raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta!r}")
        self.min_delta = float(min_delta)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0

    def on_epoch_end(self, trainer, epoch, logs):
        if self.monitor not in logs:
            raise KeyError(f"EarlyStopping monitors {self.monitor!r}, which the epoch results lack; they have "
                           f"{', '.join(sorted(logs))}")
        value = float(logs[self.monitor])
        if improved(value, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch + 1, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            trainer.stop_training = True
            trainer.log(f"early stopping after epoch {epoch + 1}: {self.monitor} has not improved for "
                        f"{self.wait} epoch(s); best {self.best:.6g} at epoch {self.best_epoch}")

    def state_dict(self):
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, state):
        if set(state) != {"best", "best_epoch", "wait"}:
            raise ValueError(f"EarlyStopping state must have keys best, best_epoch, wait; got {sorted(state)}")
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], int(state["wait"])


# ---------------------------------------------------------------------- history files and curves
class HistoryWriter(Callback):
    """After each epoch, write ``history.json`` and ``history.csv``; draw one PNG curve per quantity.

    ``history.json`` is the history as columns (``{"epoch": [1, 2], "loss": [...], ...}``, the value
    :meth:`Trainer.run` returns; non-finite values as null), ``history.csv`` the same as one row per
    epoch. The curves (``loss.png``, ``<metric>.png``: training and validation against the epoch)
    need matplotlib; without it the run logs once that it skips them. They are drawn after the first
    epoch, then after an epoch only if ``plot_interval`` seconds have passed since the last drawing
    (drawing costs about 0.1 s), and at the end of the run. Every file is replaced atomically.
    """

    #: columns that are bookkeeping, not curves
    NOT_CURVES = ("epoch", "step", "lr", "time")

    def __init__(self, plot_interval: float = 30.0):
        self.plot_interval = plot_interval
        self._warned = False
        self._last_plot = None  # (time, number of epochs drawn)

    def on_epoch_end(self, trainer, epoch, logs):
        due = self._last_plot is None or time.monotonic() - self._last_plot[0] >= self.plot_interval
        self.write(trainer.run_dir, trainer.history, trainer.log, plot=due)
        if due:
            self._last_plot = (time.monotonic(), len(trainer.history["epoch"]))

    def on_train_end(self, trainer):
        drawn = 0 if self._last_plot is None else self._last_plot[1]
        if trainer.history and len(trainer.history["epoch"]) > drawn:
            self.plot(trainer.run_dir, trainer.history, trainer.log)

    def write(self, run_dir: Path, history: dict, log=print, plot: bool = True) -> None:
        run_dir = Path(run_dir)
        clean = {k: [v if not isinstance(v, float) or math.isfinite(v) else None for v in col]
                 for k, col in history.items()}
        write_atomic(run_dir / "history.json", (json.dumps(clean, indent=1) + "\n").encode("utf-8"))
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        keys = list(history)
        writer.writerow(keys)
        for row in zip(*(history[k] for k in keys)):
            writer.writerow([repr(v) if isinstance(v, float) else v for v in row])
        write_atomic(run_dir / "history.csv", buf.getvalue().encode("utf-8"))
        if plot:
            self.plot(run_dir, history, log)

    def plot(self, run_dir: Path, history: dict, log=print) -> list[Path]:
        """Write ``<quantity>.png`` for the loss and each metric; returns the files written."""
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError:
            if not self._warned:
                log("matplotlib is not installed: no PNG curves are written (pip install matplotlib to get them)")
                self._warned = True
            return []
        written = []
        epochs = history.get("epoch", [])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a cosmetic matplotlib warning must not stop a training run
                for key in history:
                    if key in self.NOT_CURVES or key.startswith("val_"):
                        continue
                    fig = Figure(figsize=(5, 3.5), dpi=100)
                    FigureCanvasAgg(fig)
                    ax = fig.add_subplot()
                    ax.plot(epochs, _plottable(history[key]), marker="o", label="train")
                    if "val_" + key in history:
                        ax.plot(epochs, _plottable(history["val_" + key]), marker="o", label="validation")
                    ax.set_xlabel("epoch")
                    ax.set_ylabel(key)
                    ax.grid(True, alpha=0.3)
                    ax.legend()
                    fig.tight_layout()
                    buf = io.BytesIO()
                    fig.savefig(buf, format="png")
                    write_atomic(run_dir / f"{key}.png", buf.getvalue())
                    written.append(run_dir / f"{key}.png")
        except Exception as exc:  # noqa: BLE001 - curves are a side output: report, never lose the run over them
            log(f"could not draw the curves ({type(exc).__name__}: {exc}); training goes on")
        return written


def _plottable(values):
    return [v if isinstance(v, (int, float)) and math.isfinite(v) else math.nan for v in values]


# ---------------------------------------------------------------------- progress
class ProgressLogger(Callback):
    """A tqdm bar per epoch on a terminal; otherwise a log line every ``log_every`` steps and per epoch.

    The bar is used when ``stream.isatty()`` and tqdm can be imported; in any other case (a file,
    a pipe, CI, tests, or tqdm missing) progress is plain lines through ``trainer.log``, which also
    appends them to ``train.log`` in the run directory.
    """

    def __init__(self, log_every: int = 50, stream=None):
        self.log_every = log_every
        self.stream = stream
        self.bar = None
        self._tqdm = None
        self._t0 = None
        self._steps0 = 0

    def on_train_begin(self, trainer):
        stream = self.stream or sys.stdout
        self._tqdm = None
        if getattr(stream, "isatty", lambda: False)():
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            self._tqdm = tqdm
        if self._tqdm is not None:
            trainer.print_fn = lambda message: self._tqdm.write(message, file=stream)

    def on_epoch_begin(self, trainer, epoch):
        self._t0, self._steps0 = time.perf_counter(), trainer.step
        if self._tqdm is not None:
            self.bar = self._tqdm(total=len(trainer.train), initial=trainer.batch,
                                  desc=f"epoch {epoch + 1}/{trainer.config.epochs}",
                                  file=self.stream or sys.stdout, leave=True, dynamic_ncols=True)

    def on_batch_end(self, trainer, logs):
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{logs['loss']:.4g}", lr=f"{logs['lr']:.3g}", refresh=False)
        elif trainer.step // self.log_every != (trainer.step - logs["updates"]) // self.log_every:
            rate = (trainer.step - self._steps0) / max(time.perf_counter() - self._t0, 1e-9)
            trainer.log(f"epoch {trainer.epoch + 1}/{trainer.config.epochs} batch {trainer.batch}/{len(trainer.train)} "
                        f"step {trainer.step}: loss {logs['loss']:.4f} (epoch mean {trainer.running_loss:.4f}) "
                        f"lr {logs['lr']:.3g} ({rate:.1f} steps/s)")

    def on_epoch_end(self, trainer, epoch, logs):
        self._close()
        shown = ", ".join(f"{k} {_fmt(v)}" for k, v in logs.items() if k not in ("epoch", "time"))
        trainer.log(f"epoch {epoch + 1}/{trainer.config.epochs} done in {logs['time']:.1f} s: {shown}")

    def on_train_end(self, trainer):
        self._close()
        trainer.print_fn = None

    def _close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class BestWeights(Callback):
    """Keep the weights of the epoch where ``monitor`` was best, and end training with them.

    After every epoch that improves on the best value (the rule of :class:`EarlyStopping`), the
    weights validated (with an averaging optimizer, its averaged weights: ``trainer.averaged_weights``)
    are copied and, when the trainer has a run directory, written to ``best.npz`` there
    (atomically, before the epoch's checkpoint), so a resumed run restores the same weights. When
    training ends normally, the model gets them back and the log says from which epoch; a run that
    ends by an error keeps its current weights.
    """

    FILE = "best.npz"

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", min_delta: float = 0.0):
        self.monitor = monitor
        self.mode = resolve_mode(monitor, mode)
        self.min_delta = float(min_delta)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.weights: dict | None = None

    def on_epoch_end(self, trainer, epoch, logs):
        if self.monitor not in logs:
            raise KeyError(f"BestWeights monitors {self.monitor!r}, which the epoch results lack; they have "
                           f"{', '.join(sorted(logs))}")
        value = float(logs[self.monitor])
        if not improved(value, self.best, self.mode, self.min_delta):
            return
        self.best, self.best_epoch = value, epoch + 1
        with trainer.averaged_weights():  # the weights validated: an averaging optimizer's average
            self.weights = {name: p.copy() for name, p in trainer.model.named_parameters()}
        buffer = io.BytesIO()
        np.savez(buffer, **self.weights)
        write_atomic(Path(trainer.run_dir) / self.FILE, buffer.getvalue())

    def on_train_end(self, trainer):
        if trainer.error is not None or self.best_epoch is None:
            return
        if self.weights is None:  # resumed: the weights are on disk
            with np.load(Path(trainer.run_dir) / self.FILE, allow_pickle=False) as data:
                self.weights = {k: data[k] for k in data.files}
        trainer.model.set_weights(self.weights)
        trainer.log(f"restored the weights of epoch {self.best_epoch}, the best {self.monitor} ({self.best:.6g})")

    def state_dict(self):
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state):
        if set(state) != {"best", "best_epoch"}:
            raise ValueError(f"BestWeights state must have keys best and best_epoch, got {sorted(state)}")
        self.best, self.best_epoch, self.weights = state["best"], state["best_epoch"], None


# ---------------------------------------------------------------------- checkpoints
class Checkpointer(Callback):
    """Checkpoint at the end of every epoch and, with ``every_steps``, whenever the step count passes a
    multiple of it inside an epoch (the last batch of an epoch is left to the epoch's checkpoint,
    which follows it after validation)."""

    def __init__(self, every_steps: int | None = None):
        self.every_steps = every_steps

    def on_batch_end(self, trainer, logs):
        n = self.every_steps
        if not n or trainer.batch >= len(trainer.train):
            return
        if trainer.step // n != (trainer.step - logs["updates"]) // n:
            trainer.save_checkpoint()

    def on_epoch_end(self, trainer, epoch, logs):
        trainer.save_checkpoint()
