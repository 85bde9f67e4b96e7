"""The :class:`Trainer`: the loop over epochs and batches, truncated BPTT over each batch, validation,
callbacks, divergence stop, checkpoints and exact resume.

The loop
--------
For each batch: one :func:`rnnlab.nn.step.train_step` per piece of truncated BPTT (forward -> loss ->
backward -> finite checks -> clip -> optimizer step), then the callbacks; at the end of each epoch:
validation, the history row, callbacks (learning-rate schedule, early stopping, history files and
curves, progress, checkpoint; see :mod:`rnnlab.training.callbacks`). The core stays model-agnostic:
it only uses the module protocol (``model(x, mask=, training=)``, ``backward``, ``zero_grad``,
``named_parameters``/``named_grads``, ``named_modules``).

Recurrent state
---------------
The windows of BPTT(k2; k1) and the state kept along a stream of batches are in
:mod:`rnnlab.training.bptt`. The trainer passes the state to the model explicitly: each forward pass
gets a state map ``{recurrent layer name: states}`` as ``initial_state`` and returns the final map
(:func:`rnnlab.nn.state.forward_with_states`); the layers' ``stateful`` flags and carried states
are neither used nor changed. Layers that read a sequence backwards (``Bidirectional``,
``go_backwards``) cannot carry a state forward, so they only work with full BPTT on independent
batches; a model that is not a ``Sequential`` (nor a recurrent layer) cannot take a state map, so it
trains on independent batches only.

Divergence
----------
The forward pass and the loss run under ``np.errstate(over="raise", invalid="raise",
divide="raise")``; the loss and then every gradient are checked for NaN/inf before anything changes,
and the loss against the limit of an exploding loss (:mod:`rnnlab.training.divergence`). A failure
raises :class:`~rnnlab._errors.TrainingDiverged` naming the epoch, the step, the batch and the
parameter whose gradient is not finite (the first in ``named_parameters`` order), with the weights
as they were after the previous step, and saying whether the run can resume from its last good
checkpoint (with a lower learning rate: the same settings repeat the same step) or must start again;
no checkpoint is written after it, so the last good one stays the latest. A checkpoint is never
written (nor resumed from) with weights that are not finite or have blown up beyond
``divergence.MAX_WEIGHT``.

Checkpoints and the run directory are described in :mod:`rnnlab.training.checkpoint`.

Averaged weights
----------------
With an optimizer that keeps a running average of the weights (:class:`rnnlab.optim.ASGD`, or any
optimizer with ``use_ema``: its ``keeps_average``), the run evaluates with the average: while :meth:`Trainer.run` runs,
:meth:`Trainer.evaluate` and :class:`~rnnlab.training.callbacks.BestWeights` (``restore_best``) see
the averaged weights, swapped in and out around them (:meth:`Trainer.averaged_weights`); the
training steps and the checkpoints keep the iterates (the checkpoint's optimizer state holds the
average), so a resumed run continues bit for bit. When the run ends normally, the model takes the
averaged weights (then ``restore_best`` the best epoch's averaged ones), as AWD-LSTM saves and
evaluates its model. With ``optimizer_args = {nonmono = K}`` the averaging starts (NT-ASGD, Merity et
al. 2018) at the end of the first epoch whose ``val_loss`` is worse than the best ``val_loss`` of the
epochs more than ``K`` epochs before it; the step it started at is in the optimizer's state (``t0``).

Stopping on SIGTERM
-------------------
While :meth:`Trainer.run` runs in the main thread of a single process (not under MPI) and SIGTERM
has its default action, a SIGTERM (a job scheduler's notice, ``kill``, the end of a session) asks the
run to stop after the step in progress: a checkpoint is written there (at the end of an epoch, the
epoch's own, after validation) and :class:`~rnnlab._errors.TrainingStopped` is raised, so ``--resume``
loses nothing and continues bit for bit. A second SIGTERM before that ends the process at once.
:meth:`Trainer.request_stop` does the same from code. Ctrl-C (SIGINT) still stops at once, from the
latest checkpoint.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from rnnlab._errors import NonFiniteError, TrainingDiverged, TrainingStopped
from rnnlab._files import write_atomic
from rnnlab.io import files as model_io
from rnnlab.nn import kernels
from rnnlab.nn import losses as losses_module
from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.grad_mode import no_grad
from rnnlab.nn.module import Module
from rnnlab.nn.recurrent import Recurrent
from rnnlab.nn.state import StateMap, forward_with_states, recurrent_layers
from rnnlab.nn.step import StepDiverged, loss_outputs, train_step
from rnnlab.training import metrics as metrics_module
from rnnlab.training.bptt import Stream, extended, windows
from rnnlab.training.callbacks import (
    BestWeights,
    Callback,
    Checkpointer,
    EarlyStopping,
    HistoryWriter,
    LRScheduler,
    ProgressLogger,
)
from rnnlab.training.checkpoint import (
    LOG_FILE,
    MANIFEST,
    RUN_CONFIG,
    claim_run_dir,
    latest_checkpoint,
    loss_from_config,
    loss_to_config,
    read_checkpoint,
    restore_rng_states,
    rng_states,
    write_checkpoint,
    writing,
)
from rnnlab.training.config import TrainConfig
from rnnlab.training.divergence import RULE, LossWatch, blown_up

__all__ = ["TrainConfig", "Trainer", "TrainingDiverged", "latest_checkpoint"]


def _batch_fields(batch) -> tuple:
    """``(x, y, mask, new_sequence)`` of a batch following the ``rnnlab.data.Batch`` contract."""
    for name in ("x", "y"):
        if not hasattr(batch, name):
            raise TypeError(f"a batch must have attributes x, y, mask, new_sequence (rnnlab.data.Batch); "
                            f"got a {type(batch).__name__} without {name!r}")
    return batch.x, batch.y, getattr(batch, "mask", None), bool(getattr(batch, "new_sequence", True))


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
            raise ValueError(f"val is None, but the config reads validation results: "
                             f"{'; '.join(config.uses_validation)}; pass validation batches or monitor 'loss'")
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
        self._stream = Stream()
        self._acc: dict[str, list[float]] = {}
        self._losses = LossWatch()
        self._restored = False
        self._evaluated: dict[tuple, tuple] = {}  # (id(data), backend, weights fingerprint) -> (data, results)
        self.distributed = None  # a training.distributed.DataParallel when training on several MPI ranks (attach)
        self._stop_request: str | None = None  # why the run should stop after the current step (request_stop)
        self._running = False  # inside run(): evaluation uses the optimizer's averaged weights, if it keeps them

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
        """Append ``message`` to ``train.log``, then print it (through the progress bar when one is
        shown): a run stopped by its output (``| head``) has the line in its log all the same."""
        if self.distributed is not None and not self.distributed.is_root:
            return  # rank 0 alone logs
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            with open(self.run_dir / LOG_FILE, "a", encoding="utf-8") as f:
                f.write(message + "\n")
        finally:
            (self.print_fn or (lambda m: print(m, flush=True)))(message)

    @property
    def finished(self) -> bool:
        max_steps = self.config.max_steps
        return (self.stop_training or self.epoch >= self.config.epochs
                or (max_steps is not None and self.step >= max_steps))

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
        if self.distributed is None or self.distributed.is_root:  # rank 0 alone writes the run directory
            claim_run_dir(self.run_dir)  # refuses a directory of someone else's files
        self._restored = True  # from here on run_dir's checkpoints are this trainer's own
        self.error = None
        try:
            with writing(self.run_dir, "the run's files", self._kept):
                self._write_run_config()
                self._emit("on_train_begin")
                with self._stop_on_sigterm():
                    self._running = True
                    while not self.finished:
                        self._run_epoch()
                        if not self.finished:
                            self._stop_if_requested()
                    self._running = False
                    self._adopt_average()
        except BaseException as exc:
            self.error = exc
            ckpt = latest_checkpoint(self.run_dir)
            with contextlib.suppress(OSError):  # a full disk must not hide the reason the run stopped
                self.log(str(exc) if isinstance(exc, (TrainingDiverged, TrainingStopped)) else
                         f"training stopped by {type(exc).__name__} at epoch {self.epoch + 1}, step {self.step}; "
                         + (f"run(resume=True) continues from {ckpt}" if ckpt else "no checkpoint was written yet"))
            raise
        finally:
            self._running = False
            self._emit("on_train_end")
        return self.history

    def request_stop(self, reason: str = "request_stop()") -> None:
        """Stop the run after the step in progress: a checkpoint is written there (or the epoch's own,
        when the step ends an epoch) and :meth:`run` raises :class:`~rnnlab._errors.TrainingStopped`
        naming ``reason``. SIGTERM calls this (module docstring, "Stopping on SIGTERM")."""
        self._stop_request = str(reason)

    @contextlib.contextmanager
    def _stop_on_sigterm(self):
        """SIGTERM -> :meth:`request_stop` while the block runs, when this process may take it over: the
        main thread, no MPI, SIGTERM's default action in force; a second SIGTERM ends the process."""
        if (self.distributed is not None or threading.current_thread() is not threading.main_thread()
                or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
            yield
            return

        def on_sigterm(signum, frame):
            if self._stop_request is not None:  # the second one: stop now, as without the handler
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGTERM)
            self.request_stop("SIGTERM")

        signal.signal(signal.SIGTERM, on_sigterm)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    # ------------------------------------------------------------------ averaged weights
    @contextlib.contextmanager
    def averaged_weights(self):
        """Within the block, the model holds the optimizer's averaged weights, when the optimizer keeps
        them (``keeps_average``) and :meth:`run` is running; the iterates are swapped back after it, bit
        for bit. Elsewhere it changes nothing."""
        keeps = self._running and getattr(self.optimizer, "keeps_average", False)
        swap = self.optimizer.swap_average if keeps else None
        if swap is None:
            yield
            return
        swap(self.model)
        try:
            yield
        finally:
            swap(self.model)

    def _adopt_average(self) -> None:
        """At the end of a run: the model takes the averaged weights (module docstring, "Averaged weights")."""
        if getattr(self.optimizer, "averaging", False):
            self.optimizer.load_average(self.model)
            self.log(f"the model holds {self.optimizer.describe_average()}")

    def _start_averaging_if_stalled(self) -> None:
        """NT-ASGD: start the optimizer's averaging when ``val_loss`` is worse than the best of the epochs
        more than ``nonmono`` epochs ago (Merity et al. 2018, AWD-LSTM's rule)."""
        k = getattr(self.optimizer, "nonmono", None)
        losses = self.history.get("val_loss", [])
        if k is None or self.optimizer.averaging or len(losses) <= k + 1:
            return
        best = min(losses[:-k - 1])
        if losses[-1] > best:
            self.optimizer.start_averaging()
            start = int(self.optimizer.t0) + 2
            self.log(f"val_loss {losses[-1]:.6g} of epoch {len(losses)} is worse than {best:.6g}, the best before "
                     f"the last {k} epochs (nonmono = {k}): averaging the weights from step {start} on")

    def _stop_if_requested(self) -> None:
        """After a step (or an epoch): honour :meth:`request_stop` with a checkpoint of this point."""
        if self._stop_request is None:
            return
        reason, self._stop_request = self._stop_request, None
        ckpt = self.save_checkpoint() if self.batch else latest_checkpoint(self.run_dir)  # an epoch's end: saved
        raise TrainingStopped(f"stopped by {reason} after step {self.step}, checkpoint {ckpt}", signal_name=reason,
                              checkpoint=ckpt)

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
            self._stop_if_requested()
        logs = {"epoch": epoch + 1, "step": self.step, "lr": float(self.optimizer.lr)}
        if self.distributed is not None:
            self.distributed.reduce_results([0.0, 0.0], self.metrics)
        logs.update(self._results(self._acc.get("loss"), self.metrics))
        if self.val is not None:
            logs.update({f"val_{k}": v for k, v in self.evaluate(self.val).items()})
        logs["time"] = self._acc.get("time", [0.0])[0] + time.perf_counter() - t0
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)
        self._start_averaging_if_stalled()
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
            what = ("truncated BPTT (TrainConfig.bptt/bptt_k1)" if truncation is not None
                    else "a batch with new_sequence=False")
            raise ValueError(f"{what} carries the state forward in time, which layers reading the sequence backwards "
                             f"cannot do: {', '.join(repr(n) for n in self._backward_reading)}; train them with full "
                             "BPTT on independent batches")
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
        x_ext, mask_ext = extended(stream, x, mask)
        a0 = stream.t
        totals = {}
        updates = 0
        for s, a, e in windows(a0, T, k1, k2):
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
        max_loss = self._losses.limit()
        try:
            result = train_step(self.model, self.loss, self.optimizer, x, y, mask=mask, states=self._state_map(state0),
                                n_out=n_out, clip_value=self.config.clip_value, clip_norm=self.config.clip_norm,
                                max_loss=max_loss,
                                after_backward=None if self.distributed is None else self.distributed.reduce_gradients)
        except StepDiverged as exc:
            exploded = exc.name == "loss"
            raise self._diverged(step, f"{exc} ({RULE})" if exploded else str(exc),
                                 parameter=None if exploded else exc.name) from None
        self.step = step
        self._losses.record(result.loss)
        for m in self.metrics.values():  # train_step's one loss call was on result.outputs, y, result.mask
            if not m.update_from_loss(self.loss):
                m.update(result.outputs, y, mask=result.mask)
        stats = {"loss": result.loss, "weight": _n_targets(y, result.mask)}
        if self.distributed is not None:
            stats.update(self.distributed.step_stats())  # the global batch's
        if result.grad_norm is not None:
            stats["grad_norm"] = result.grad_norm
        return self._state_list(result.states), stats

    def _advance(self, x, mask, state0) -> list:
        """The states after running ``x`` from ``state0`` (a forward pass without backward)."""
        with np.errstate(all="ignore"):
            _, final = forward_with_states(self.model, x, self._state_map(state0), mask=mask, training=True)
        return self._state_list(final)

    def _kept(self) -> str:
        ckpt = latest_checkpoint(self.run_dir)
        if ckpt is None:
            return "no checkpoint had been written yet"
        return f"the last good checkpoint, {ckpt}, is kept"

    def _advice(self) -> str:
        """What to do after a divergence: resume from the last good checkpoint with other settings, or restart."""
        if latest_checkpoint(self.run_dir) is not None:
            return ("Resuming with the same settings repeats the divergence exactly: lower the learning rate or clip "
                    "the gradients (clip_norm), then resume from that checkpoint.")
        return ("Lower the learning rate or clip the gradients (clip_norm) and start the run again: there is no "
                "checkpoint to resume from.")

    def _diverged(self, step: int, what: str, parameter: str | None = None) -> TrainingDiverged:
        """The error of a run that diverged at update ``step``, saying whether it can resume or must restart."""
        exc = TrainingDiverged(f"training diverged at epoch {self.epoch + 1}, step {step} (batch {self.batch + 1} of "
                               f"{len(self.train)}): {what}. The weights are left as they were after step {step - 1}; "
                               f"{self._kept()}. {self._advice()}")
        exc.epoch, exc.step, exc.parameter = self.epoch + 1, step, parameter
        return exc

    # ------------------------------------------------------------------ recurrent state
    def _state_map(self, states: list | None) -> StateMap:
        """The stream's states (one entry per recurrent layer, None for zeros) as the model's state map."""
        return {} if states is None else dict(zip(self._recurrent, states))

    def _state_list(self, final: StateMap) -> list:
        return [final.get(name) for name in self._recurrent]

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, data, *, reuse: bool = True) -> dict[str, float]:
        """Mean loss and metrics over ``data`` (``batches_from(0, 0)``), in inference mode.

        Each batch starts from zeros when ``new_sequence`` and from the previous batch's final state
        otherwise; the training state is untouched. The forward passes and the loss run under
        :func:`~rnnlab.nn.grad_mode.no_grad` (no tape, no gradient buffer, ``training=False``), and
        metrics that average the loss's own terms (perplexity, bits per character after a
        cross-entropy on class ids) take them from the loss (:meth:`Metric.update_from_loss`).

        The results are remembered with a fingerprint of the weights (a hash of every parameter's
        bytes): evaluating the same ``data`` object again with the same weights (and kernel backend)
        returns them without running the model, e.g. the final metrics after the last epoch's
        validation, or after ``restore_best`` put back the weights of an epoch already validated.
        During :meth:`run`, an optimizer's averaged weights are evaluated (:meth:`averaged_weights`).
        ``reuse=False`` runs the model all the same (and remembers the new results), as a benchmark
        timing the evaluation needs.
        """
        with self.averaged_weights():
            key = (id(data), kernels.backend(), self._weights_fingerprint())
            cached = self._evaluated.get(key)
            if reuse and cached is not None and cached[0] is data:
                return dict(cached[1])
            results = self._evaluate(data)
        self._evaluated[key] = (data, dict(results))
        return results

    def _evaluate(self, data) -> dict[str, float]:
        stream, loss_acc = Stream(), [0.0, 0.0]
        data = data if self.distributed is None else self.distributed.shard(data)
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
            with no_grad():
                with np.errstate(all="ignore"):
                    y_pred, final = forward_with_states(self.model, x, self._state_map(stream.latest), mask=mask,
                                                        training=False)
                stream.anchors = [(0, self._state_list(final))]
                y_out, out_mask = loss_outputs(self.model, y_pred, mask)
                try:  # the loss checks its y_pred for NaN and inf within its own passes
                    value = float(self.loss(y_out, y, mask=out_mask))
                except NonFiniteError as exc:
                    if exc.name != "y_pred":
                        raise
                    raise TrainingDiverged(f"the model's output on the validation data is not finite (after epoch "
                                           f"{self.epoch + 1}, step {self.step})") from None
            weight = _n_targets(y, out_mask)
            loss_acc[0] += weight * value
            loss_acc[1] += weight
            for m in metrics.values():  # the loss was just computed on y_out, y, out_mask
                if not m.update_from_loss(self.loss):
                    m.update(y_out, y, mask=out_mask)
        if self.distributed is not None:
            self.distributed.reduce_results(loss_acc, metrics)
        return self._results(loss_acc, metrics)

    def _weights_fingerprint(self) -> str:
        """A hash of every parameter's name, dtype, shape and bytes."""
        digest = hashlib.blake2b(digest_size=16)
        for name, p in self.model.named_parameters():
            digest.update(f"{name}:{p.dtype.str}:{p.shape};".encode())
            digest.update(memoryview(np.ascontiguousarray(p)).cast("B"))
        return digest.hexdigest()

    # ------------------------------------------------------------------ run configuration
    def _write_run_config(self) -> None:
        document = {"config": self.config.to_dict(), "loss": loss_to_config(self.loss),
                    "model": {"class_name": type(self.model).__name__}}
        try:
            document["model"]["config"] = self.model.get_config()
        except Exception:  # a custom model without a JSON config is still trainable  # noqa: BLE001
            document["model"]["config"] = None
        if self.distributed is not None:
            document["world_size"] = self.distributed.world_size
            if not self.distributed.is_root:
                return
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
    def _callback_keys(self) -> list[tuple[str, Callback]]:
        keys, seen = [], {}
        for cb in self.callbacks:
            base = type(cb).__name__
            seen[base] = seen.get(base, 0) + 1
            keys.append((base if seen[base] == 1 else f"{base}#{seen[base]}", cb))
        return keys

    def save_checkpoint(self) -> Path:
        """Write a complete checkpoint of the current state and make it the latest (atomically).

        Returns its directory. Refuses (``TrainingDiverged``) if a weight is not finite or has blown up
        (:func:`rnnlab.training.divergence.blown_up`), so a bad state never replaces a good checkpoint.
        A write that fails (a full disk, a read-only run directory) raises
        :class:`~rnnlab.training.checkpoint.RunDirectoryError` and keeps the last good checkpoint too.
        """
        problem = blown_up(self.model)
        if problem is not None:
            raise self._diverged(self.step + 1, f"not checkpointing: {problem} after step {self.step}")
        stream_meta, stream_arrays = self._stream.arrays("train")
        if self.distributed is not None:  # rank 0 writes every rank's rows and the metrics summed
            stream_arrays = self.distributed.gather_stream(stream_arrays)
            self.distributed.merge_metrics(self.metrics)
        state = {
            "epoch": self.epoch,
            "batch": self.batch,
            "step": self.step,
            "stop_training": self.stop_training,
            "history": self.history,
            "epoch_accumulators": self._acc,
            "metric_accumulators": {name: [m.total, m.count] for name, m in self.metrics.items()},
            "rng": rng_states(self.rng, self.model),
            "stream": stream_meta,
            "callbacks": {key: cb.state_dict() for key, cb in self._callback_keys()},
            "optimizer": self.config.optimizer,
            "losses": self._losses.state_dict(),
        }
        if self.distributed is not None:
            return self.distributed.root_writes(write_checkpoint, self.run_dir, self.model,
                                                self.optimizer.state_dict(), stream_arrays, state)
        return write_checkpoint(self.run_dir, self.model, self.optimizer.state_dict(), stream_arrays, state)

    def load_checkpoint(self) -> Path:
        """Restore everything from the latest checkpoint of ``run_dir``; returns its directory.

        Raises ``FileNotFoundError`` when there is none, ``ValueError`` when a file does not match the
        manifest's checksum or the checkpoint does not fit this model/optimizer.
        """
        ckpt = read_checkpoint(self.run_dir)
        state = ckpt.state
        ckpt.restore_weights(self.model)
        problem = blown_up(self.model)
        if problem is not None:
            raise TrainingDiverged(f"the latest checkpoint, {ckpt.directory}, holds weights that diverged ({problem}): "
                                   "resuming from it would diverge again; start the run again with a lower learning "
                                   "rate or clip_norm")
        note = ckpt.restore_optimizer(self.optimizer, self.config.optimizer, self.run_dir)
        if note is not None:
            self.log(note)
        restore_rng_states(self.rng, self.model, state["rng"])
        if "losses" in state:
            self._losses.load_state_dict(state["losses"])
        callback_states = state["callbacks"]
        for key, cb in self._callback_keys():
            if key in callback_states:
                cb.load_state_dict(callback_states[key])
        streams = ckpt.streams if self.distributed is None else self.distributed.scatter_stream(ckpt.streams)
        self._stream.load("train", state["stream"], streams)
        self.epoch, self.batch, self.step = int(state["epoch"]), int(state["batch"]), int(state["step"])
        self.stop_training = bool(state["stop_training"])
        self.history = {k: list(v) for k, v in state["history"].items()}
        self._acc = {k: list(v) for k, v in state["epoch_accumulators"].items()}
        for name, m in self.metrics.items():
            m.reset()
            if name in state["metric_accumulators"]:
                m.total, m.count = state["metric_accumulators"][name]
                if self.distributed is not None and not self.distributed.is_root:
                    m.total, m.count = 0.0, 0  # rank 0 holds the sums
        self._restored = True
        self.log(f"resumed from {ckpt.directory} at epoch {self.epoch + 1}, batch {self.batch}, step {self.step}")
        return ckpt.directory

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
        trainer = cls(model, loss_from_config(document["loss"]), TrainConfig.from_dict(document["config"]), train, val,
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
