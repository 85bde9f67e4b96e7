"""Experiments: the notes' story of gradients through time, each reproducible with one command.

::

    rnnlab experiment NAME [--full] [--out DIR] [--seed S]
    rnnlab experiment --list

=============  =============================================================================
name           what it measures
=============  =============================================================================
vanishing      ``||dL_T/dh_{T-lag}||`` against the lag for RNN(tanh), RNN(sigmoid), RNN(relu),
               LSTM and GRU on the same inputs: how fast the gradient of a loss on the last
               step fades going back in time
adding         the adding problem (Le et al. 2015) at several T: validation MSE against the
               training sequences seen for RNN(tanh), IRNN, LSTM and GRU, against the 1/6 baseline
copy           the copy-memory task (Arjovsky et al. 2016): cross-entropy against training
               sequences for LSTM, GRU and RNN(tanh), against the memoryless baseline
exploding      one IRNN trained twice on the same data, without and with gradient clipping:
               loss and gradient norm (before clipping) per step
truncation     an LSTM trained with truncated BPTT windows of k steps on a delayed recall task:
               recall accuracy per lag, the longest lag learned against k
=============  =============================================================================

Every run writes into its output directory (default ``experiments/NAME``): ``results.json`` (the
settings, every number plotted, and the findings), one or more PNG figures, and ``report.html``, a
self-contained page (the figures embedded as base64) with the command line, the settings, tables,
and findings written from the numbers of this run. Each experiment has a *fast* mode (seconds; the
tests run it) and a *full* mode (``--full``; its results go into ``docs/results.md``).

The notation is the notes': a recurrent layer computes ``a_t = f(U x_t + W a_{t-1} + b)`` (for the
LSTM and GRU, ``h_t`` from their gates), the output layer ``y_t = g(V a_t + c)``. Everything is
seeded: the same ``--seed`` gives the same data, weights and numbers (up to the BLAS library's
summation order).

Training here uses a small loop of its own (forward, loss, backward, gradient norm, optional
clipping, optimizer step) rather than :class:`rnnlab.train.Trainer`, because the experiments need
per-step records (the gradient norm before clipping at every update, where a run diverged) and no
checkpoints. Truncated BPTT carries the state between windows through a ``stateful`` layer.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import itertools
import json
import math
import numbers
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from rnnlab import optim
from rnnlab._files import write_atomic
from rnnlab.data.synthetic import (
    ADDING_BASELINE_MSE,
    ADDING_SOLVED_MSE,
    COPY_LENGTH,
    COPY_SYMBOLS,
    adding_problem,
    copy_memory,
    copy_memory_baseline,
)
from rnnlab.lab.config import ConfigError
from rnnlab.nn import losses
from rnnlab.nn.layers import Dense, OneHot
from rnnlab.nn.recurrent import GRU, LSTM, Recurrent, SimpleRNN
from rnnlab.nn.sequential import Sequential

__all__ = [
    "CELLS",
    "DEFAULT_OUT",
    "EXPERIMENTS",
    "MODES",
    "Experiment",
    "PlotDependencyError",
    "command_line",
    "configure_cli",
    "delayed_recall",
    "get",
    "make_recurrent",
    "run_cli",
]

MODES = ("fast", "full")
#: the default output directory, relative to the working directory: ``experiments/NAME``
DEFAULT_OUT = "experiments"

#: cell name -> (layer class, constructor arguments, label in plots and reports)
CELLS: dict[str, tuple[type[Recurrent], dict, str]] = {
    "rnn_tanh": (SimpleRNN, {"activation": "tanh"}, "RNN(tanh)"),
    "rnn_sigmoid": (SimpleRNN, {"activation": "sigmoid"}, "RNN(sigmoid)"),
    "rnn_relu": (SimpleRNN, {"activation": "relu"}, "RNN(relu)"),
    # Le, Jaitly & Hinton (2015): relu units, W = I, b = 0
    "irnn": (SimpleRNN, {"activation": "relu", "recurrent_initializer": "identity", "bias_initializer": "zeros"},
             "IRNN"),
    "lstm": (LSTM, {"forget_bias": 1.0}, "LSTM"),
    "gru": (GRU, {}, "GRU"),
}


class PlotDependencyError(ImportError):
    """matplotlib, the optional ``plot`` extra, is missing: the figures cannot be drawn."""


def make_recurrent(cell: str, hidden_size: int, *, input_size: int, seed, dtype="float32", **kwargs) -> Recurrent:
    """The recurrent layer ``cell`` names (a key of :data:`CELLS`), with its initialisation.

    Parameters
    ----------
    cell : str
        ``"rnn_tanh"``, ``"rnn_sigmoid"``, ``"rnn_relu"`` (``a_t = f(U x_t + W a_{t-1} + b)``, W
        orthogonal), ``"irnn"`` (relu, ``W = I``, ``b = 0``), ``"lstm"`` (forget bias 1) or ``"gru"``.
    hidden_size : int
        H.
    input_size : int
        D.
    seed : int or numpy.random.Generator
        Source of the initial weights.
    dtype : "float32" or "float64"
    **kwargs
        More arguments of the layer (``return_sequences``, ``stateful``, ...).
    """
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {', '.join(repr(c) for c in CELLS)}; got {cell!r}")
    cls, preset, _ = CELLS[cell]
    return cls(hidden_size, input_size=input_size, seed=seed, dtype=dtype, **preset, **kwargs)


def _label(cell: str) -> str:
    return CELLS[cell][2]


# ============================================================================ training helpers
class _Diverged(Exception):
    """A step produced a value that is not finite (or beyond a stated bound); the message says which."""


def _grad_norm(model) -> float:
    """The global L2 norm of every gradient, ``sqrt(sum ||g||^2)``, accumulated in float64 without
    overflow (each array scaled by its largest entry first); ``inf`` if an entry is not finite."""
    total = 0.0
    for _, g in model.named_grads():
        if g.size == 0:
            continue
        peak = float(np.max(np.abs(g)))
        if not math.isfinite(peak):
            return math.inf
        if peak == 0.0:
            continue
        norm = peak * float(np.linalg.norm((g.astype(np.float64) / peak).ravel()))
        try:
            total = math.hypot(total, norm)
        except OverflowError:
            return math.inf
    return total


def _gradient(model, loss_fn, x, y, mask=None) -> tuple[float, float]:
    """Forward, loss and backward with float errors raised; returns ``(loss, ||grad||)`` (before clipping).

    The gradients are left in ``model.grads`` (zeroed first). A float overflow or invalid operation,
    or a gradient norm beyond the float64 range, raises :class:`_Diverged`; the weights are untouched.
    """
    model.zero_grad()
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            out = model(x, training=True)
            value = float(loss_fn(out, y, mask=mask))
            model.backward(loss_fn.backward(), input_grad=False)
    except FloatingPointError as exc:
        raise _Diverged(f"a float overflowed or became invalid ({exc})") from None
    norm = _grad_norm(model)
    if not math.isfinite(norm):
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


# ============================================================================ small formatting helpers
def _sci(value: float, digits: int = 2) -> str:
    """``0.0887``, ``135`` or ``3.2e-12``: three significant digits between 0.01 and 1000, else scientific."""
    if value == 0:
        return "0"
    return f"{value:.{digits + 1}g}" if 1e-2 <= abs(value) < 1e3 else f"{value:.{digits - 1}e}"


def _count(n: int) -> str:
    return f"{n:,}"


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def _finite_list(values, what: str) -> list[float]:
    """``values`` as a list of floats, refusing NaN and inf (never written silently)."""
    out = [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]
    bad = [i for i, v in enumerate(out) if not math.isfinite(v)]
    if bad:
        raise FloatingPointError(f"{what} holds a non-finite value {out[bad[0]]} at index {bad[0]}")
    return out


# ============================================================================ vanishing
@dataclass(frozen=True)
class VanishingSettings:
    """Sizes of the ``vanishing`` experiment (both modes use float64 so tiny gradients stay exact)."""

    hidden_size: int      # H
    timesteps: int        # T
    input_size: int       # D
    batch: int            # B sequences per repeat
    repeats: int          # independent draws of inputs and weights, averaged
    cells: tuple[str, ...] = ("rnn_tanh", "rnn_sigmoid", "rnn_relu", "lstm", "gru")


def vanishing_draw(seed: int, repeat: int, settings: VanishingSettings) -> tuple[np.ndarray, np.ndarray]:
    """The inputs of one repeat: ``x`` (B, T, D) ~ N(0, 1) and ``u`` (B, H), unit rows.

    Both come from ``np.random.default_rng([seed, repeat])``, ``x`` first; ``u`` is a standard normal
    draw divided by its row norms. ``u`` is ``dL_T/dh_T``: the loss is ``L_T = sum_b u_b . h_T[b]``.
    """
    rng = np.random.default_rng([seed, repeat])
    x = rng.standard_normal((settings.batch, settings.timesteps, settings.input_size))  # (B, T, D)
    u = rng.standard_normal((settings.batch, settings.hidden_size))  # (B, H)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    return x, u


def vanishing_weights_seed(seed: int, repeat: int) -> np.random.Generator:
    """The generator every cell draws its initial weights from in one repeat: ``default_rng([seed, repeat, 1])``."""
    return np.random.default_rng([seed, repeat, 1])


def _compute_vanishing(s: VanishingSettings, seed: int, log) -> dict:
    """``||dL_T/dh_{T-lag}||`` per cell, sequence and repeat, through each layer's own backward.

    Notes
    -----
    With ``L_T = u . h_T`` the gradient reaching ``h_T`` is ``u`` (norm 1), and the layer's backward
    carries it back, ``dh_{t-1} = (dL/dh_t) dh_t/dh_{t-1}`` (for the tanh RNN
    ``da_{t-1} = (da_t * (1 - a_t^2)) W``), recording ``||dL_T/dh_t||`` at every step
    (``record_grad_norms``). Statistics over the B x repeats sequences: the mean (plotted), the 10th
    and 90th percentiles (the band), and the mean per repeat. The decay rate per step is ``10^s``
    with ``s`` the least-squares slope of ``log10(mean)`` against the lag.
    """
    T = s.timesteps
    norms = {cell: [] for cell in s.cells}  # cell -> list of (B, T) arrays, index 0 = lag 0
    for r in range(s.repeats):
        x, u = vanishing_draw(seed, r, s)
        for cell in s.cells:
            layer = make_recurrent(cell, s.hidden_size, input_size=s.input_size, seed=vanishing_weights_seed(seed, r),
                                   dtype="float64")
            layer.record_grad_norms = True
            with np.errstate(over="raise", invalid="raise", divide="raise"):
                layer(x)
                layer.backward(u)
            g = layer.grad_norms["h"][:, ::-1]  # (B, T): column `lag` holds ||dL_T/dh_{T-1-lag}||
            norms[cell].append(g)
        log(f"vanishing: repeat {r + 1}/{s.repeats} done")
    out = {"lags": list(range(T)), "cells": {}}
    for cell, arrays in norms.items():
        g = np.concatenate(arrays, axis=0)  # (repeats*B, T)
        mean = g.mean(axis=0)  # (T,)
        positive = mean > 0
        lags = np.arange(T)[positive]
        slope = float(np.polyfit(lags, np.log10(mean[positive]), 1)[0]) if positive.sum() >= 2 else None
        out["cells"][cell] = {
            "label": _label(cell),
            "mean": _finite_list(mean, f"{cell} mean gradient norm"),
            "p10": _finite_list(np.percentile(g, 10, axis=0), f"{cell} 10th percentile"),
            "p90": _finite_list(np.percentile(g, 90, axis=0), f"{cell} 90th percentile"),
            "per_repeat": [_finite_list(a.mean(axis=0), f"{cell} repeat mean") for a in arrays],
            "decay_per_step": None if slope is None else 10.0 ** slope,
        }
    return out


def _log10_ratio(mean: list[float], lag: int) -> float | None:
    """``log10(mean[lag] / mean[0])``, None when a value is zero."""
    return math.log10(mean[lag] / mean[0]) if mean[lag] > 0 and mean[0] > 0 else None


def _vanishing_lags(T: int) -> list[int]:
    return sorted({lag for lag in (1, 10, 50, 100, T - 1) if 0 < lag < T})


def _findings_vanishing(res: dict) -> list[str]:
    T = res["settings"]["timesteps"]
    lines = []
    for c in res["cells"].values():
        parts = []
        for lag in sorted({min(50, T - 1), T - 1}):
            r = _log10_ratio(c["mean"], lag)
            parts.append(f"is 0 at lag {lag}" if r is None else
                         f"falls by a factor 10^{r:.1f} over {lag} steps" if r < 0 else
                         f"grows by a factor 10^+{r:.1f} over {lag} steps")
        rate = c["decay_per_step"]
        trend = "" if rate is None else f" (fitted: x{rate:.3f} per step)"
        lines.append(f"{c['label']}: ||dL_T/dh_(T-lag)|| " + "; it ".join(parts) + trend + ".")
    last = {cell: c["mean"][T - 1] for cell, c in res["cells"].items()}
    order = sorted(last, key=last.get, reverse=True)
    lines.append(f"At the largest lag ({T - 1}) the gradient norms rank: "
                 + " > ".join(f"{res['cells'][c]['label']} ({_sci(last[c])})" for c in order) + ".")
    if "lstm" in last and "rnn_tanh" in last and last["rnn_tanh"] > 0:
        lines.append(f"The LSTM (forget bias 1) keeps {_sci(last['lstm'] / last['rnn_tanh'])} times the tanh RNN's "
                     f"gradient norm at lag {T - 1}.")
    return lines


def _tables_vanishing(res: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    T = res["settings"]["timesteps"]
    lags = _vanishing_lags(T)
    rows = []
    for c in res["cells"].values():
        rate = c["decay_per_step"]
        rows.append([c["label"]] + [_sci(c["mean"][lag]) for lag in lags] + ["-" if rate is None else f"{rate:.3f}"])
    header = ["cell"] + [f"lag {lag}" for lag in lags] + ["factor per step"]
    return [("Mean ||dL_T/dh_(T-lag)|| (||dL_T/dh_T|| = 1)", header, rows)]


def _draw_vanishing(res: dict, mpl) -> list[tuple[str, str, bytes]]:
    fig, (ax,) = mpl.figure(7, 4.5)
    lags = np.array(res["lags"])
    for c in res["cells"].values():
        line, = ax.plot(lags, _positive(c["mean"]), label=c["label"])
        ax.fill_between(lags, _positive(c["p10"]), _positive(c["p90"]), color=line.get_color(), alpha=0.15, linewidth=0)
    ax.set_yscale("log")
    ax.set_xlabel("lag (steps back from the last step T)")
    ax.set_ylabel("||dL_T / dh_(T-lag)||")
    s = res["settings"]
    ax.set_title(f"Gradient of a last-step loss through time (H={s['hidden_size']}, T={s['timesteps']})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return [("gradient_vs_lag.png",
             ("Mean gradient norm against the lag, log scale; bands: 10th to 90th percentile over sequences "
              "and repeats."),
             mpl.png(fig))]


def _positive(values) -> np.ndarray:
    """Values for a log axis: zeros and negatives become NaN (not drawn)."""
    a = np.asarray([math.nan if v is None else v for v in values], dtype=np.float64)
    a[~(a > 0)] = math.nan
    return a


# ============================================================================ adding
@dataclass(frozen=True)
class CurveSettings:
    """Sizes of a learning-curve experiment (``adding``, ``copy``)."""

    timesteps: tuple[int, ...]
    cells: tuple[str, ...]
    hidden_size: int
    batch_size: int
    max_sequences: int      # training sequences per run, at most
    eval_every: int         # evaluate every this many training sequences
    val_size: int           # validation sequences (fixed per T, the same for every cell)
    lr: float               # Adam
    clip_norm: float
    stop_when_solved: bool


def _curve_seeds(seed: int, T: int):
    """Training stream, validation set and weights generators of one (task, T) run: the same for every cell."""
    return (np.random.default_rng([seed, T, 0]), np.random.default_rng([seed, T, 1]),
            np.random.default_rng([seed, T, 2]))


def _compute_adding(s: CurveSettings, seed: int, log) -> dict:
    """Adam on fresh batches of the adding problem; validation MSE on a fixed set per T."""
    runs = []
    for T in s.timesteps:
        for cell in s.cells:
            train_rng, val_rng, weight_rng = _curve_seeds(seed, T)
            x_val, y_val = adding_problem(s.val_size, T, val_rng)
            model = Sequential([make_recurrent(cell, s.hidden_size, input_size=2, seed=weight_rng),
                                Dense(1, seed=weight_rng)])
            loss_fn = losses.get("mse")

            def evaluate(model=model, x_val=x_val, y_val=y_val):
                pred = _predict(model, x_val)
                return {"val_mse": float(np.mean((pred.astype(np.float64) - y_val) ** 2))}

            def draw(T=T, rng=train_rng):
                x, y = adding_problem(s.batch_size, T, rng)
                return x, y, None

            curve = _learning_curve(model, loss_fn, optim.get("adam", lr=s.lr), draw, evaluate,
                                    batch_size=s.batch_size, max_sequences=s.max_sequences, eval_every=s.eval_every,
                                    clip_norm=s.clip_norm, solved=lambda m: m["val_mse"] < ADDING_SOLVED_MSE,
                                    stop_when_solved=s.stop_when_solved, log=log, label=f"adding {_label(cell)} T={T}")
            runs.append({"cell": cell, "label": _label(cell), "T": T, **curve,
                         "best_val_mse": min(curve["val_mse"])})
    return {"baseline_mse": ADDING_BASELINE_MSE, "solved_mse": ADDING_SOLVED_MSE, "runs": runs}


def _reached(run: dict) -> str:
    return "not reached" if run["solved_at"] is None else _count(run["solved_at"])


def _findings_adding(res: dict) -> list[str]:
    s = res["settings"]
    lines = []
    for T in s["timesteps"]:
        runs = [r for r in res["runs"] if r["T"] == T]
        solved = sorted((r for r in runs if r["solved_at"] is not None), key=lambda r: r["solved_at"])
        unsolved = [r for r in runs if r["solved_at"] is None]
        parts = [f"{r['label']} after {_count(r['solved_at'])} sequences" for r in solved]
        text = f"T = {T}: " + ("; ".join(parts) + " reached" if parts else "no cell reached")
        text += f" validation MSE < {res['solved_mse']}"
        if unsolved:
            text += ("; not within the budget: " if parts else f" within {_count(s['max_sequences'])} sequences: ")
            text += ", ".join(f"{r['label']} (best {r['best_val_mse']:.3g}, "
                              f"{'below' if r['best_val_mse'] < res['baseline_mse'] else 'not below'} the baseline "
                              f"{res['baseline_mse']:.3f})" for r in unsolved)
        lines.append(text + ".")
        for r in runs:
            if r["stopped"].startswith("diverged"):
                lines.append(f"T = {T}: {r['label']} {r['stopped']}.")
    return lines


def _tables_adding(res: dict):
    rows = [[f"{r['T']}", r["label"], _reached(r), f"{r['best_val_mse']:.4g}", f"{r['val_mse'][-1]:.4g}",
             _count(r["sequences"][-1]), r["stopped"]] for r in res["runs"]]
    caption = (f"Adding problem: training sequences until validation MSE < {res['solved_mse']} "
               f"(baseline {res['baseline_mse']:.3f})")
    return [(caption,
             ["T", "cell", "sequences to MSE < 0.01", "best MSE", "last MSE", "sequences trained", "end"], rows)]


def _draw_curves(res: dict, mpl, *, metric: str, ylabel: str, baseline: Callable[[int], float], title: str,
                 solved_line: float | None, filename: str, caption: str) -> list[tuple[str, str, bytes]]:
    Ts = res["settings"]["timesteps"]
    cols = min(2, len(Ts))
    rows = math.ceil(len(Ts) / cols)
    fig, axes = mpl.figure(5.5 * cols, 3.8 * rows, rows=rows, cols=cols)
    for ax, T in zip(axes, Ts):
        for r in (r for r in res["runs"] if r["T"] == T):
            ax.plot(r["sequences"], _positive(r[metric]), marker=".", label=r["label"])
        ax.axhline(baseline(T), color="black", linestyle="--", linewidth=1, label=f"baseline {baseline(T):.3f}")
        if solved_line is not None:
            ax.axhline(solved_line, color="grey", linestyle=":", linewidth=1, label=f"solved ({solved_line})")
        ax.set_yscale("log")
        ax.set_xlabel("training sequences")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{title}, T = {T}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes[len(Ts):]:
        ax.set_visible(False)
    return [(filename, caption, mpl.png(fig))]


def _draw_adding(res: dict, mpl):
    return _draw_curves(res, mpl, metric="val_mse", ylabel="validation MSE", baseline=lambda T: res["baseline_mse"],
                        title="Adding problem", solved_line=res["solved_mse"], filename="adding_mse.png",
                        caption="Validation MSE against training sequences, log scale; dashed: the baseline 1/6 of "
                                "always predicting 1; dotted: the 0.01 'solved' line.")


# ============================================================================ copy
#: recall accuracy (on the 10 symbols to reproduce) that counts as solved
COPY_SOLVED_ACCURACY = 0.99


def _compute_copy(s: CurveSettings, seed: int, log) -> dict:
    """Adam on fresh batches of the copy-memory task; mean per-step cross-entropy and recall accuracy."""
    runs = []
    for T in s.timesteps:
        for cell in s.cells:
            train_rng, val_rng, weight_rng = _curve_seeds(seed, T)
            x_val, y_val = copy_memory(s.val_size, T, val_rng)
            classes = COPY_SYMBOLS + 2
            model = Sequential([OneHot(classes),
                                make_recurrent(cell, s.hidden_size, input_size=classes, seed=weight_rng,
                                               return_sequences=True),
                                Dense(classes, seed=weight_rng)])
            loss_fn = losses.get("cross_entropy")

            def evaluate(model=model, x_val=x_val, y_val=y_val):
                logits = _predict(model, x_val)  # (n, T+20, 10)
                value = float(losses.get("cross_entropy")(logits, y_val))
                recall = logits[:, -COPY_LENGTH:].argmax(axis=-1) == y_val[:, -COPY_LENGTH:]
                return {"val_loss": value, "recall_accuracy": float(recall.mean())}

            def draw(T=T, rng=train_rng):
                x, y = copy_memory(s.batch_size, T, rng)
                return x, y, None

            curve = _learning_curve(model, loss_fn, optim.get("adam", lr=s.lr), draw, evaluate,
                                    batch_size=s.batch_size, max_sequences=s.max_sequences, eval_every=s.eval_every,
                                    clip_norm=s.clip_norm,
                                    solved=lambda m: m["recall_accuracy"] >= COPY_SOLVED_ACCURACY,
                                    stop_when_solved=s.stop_when_solved, log=log, label=f"copy {_label(cell)} T={T}")
            below = [n for n, v in zip(curve["sequences"], curve["val_loss"]) if v < copy_memory_baseline(T)]
            runs.append({"cell": cell, "label": _label(cell), "T": T, "baseline": copy_memory_baseline(T), **curve,
                         "best_val_loss": min(curve["val_loss"]), "best_recall_accuracy": max(curve["recall_accuracy"]),
                         "below_baseline_at": below[0] if below else None})
    return {"solved_accuracy": COPY_SOLVED_ACCURACY, "chance_accuracy": 1.0 / COPY_SYMBOLS, "runs": runs}


def _findings_copy(res: dict) -> list[str]:
    lines = []
    for r in res["runs"]:
        ratio = r["best_val_loss"] / r["baseline"]
        text = (f"T = {r['T']}, {r['label']}: best validation cross-entropy {r['best_val_loss']:.4g} "
                f"({ratio:.2f} x the memoryless baseline {r['baseline']:.4g}; "
                + ("never below it" if r["below_baseline_at"] is None else
                   f"first below it after {_count(r['below_baseline_at'])} sequences")
                + f"), best recall accuracy {_pct(r['best_recall_accuracy'])} (chance {_pct(res['chance_accuracy'])})")
        text += ("; not solved" if r["solved_at"] is None else
                 f"; recall >= {_pct(res['solved_accuracy'])} after {_count(r['solved_at'])} sequences")
        if r["stopped"].startswith("diverged"):
            text += f"; {r['stopped']}"
        lines.append(text + ".")
    return lines


def _tables_copy(res: dict):
    rows = [[f"{r['T']}", r["label"], f"{r['baseline']:.4g}", f"{r['best_val_loss']:.4g}",
             "never" if r["below_baseline_at"] is None else _count(r["below_baseline_at"]),
             _pct(r["best_recall_accuracy"]), _reached(r), _count(r["sequences"][-1])] for r in res["runs"]]
    return [("Copy memory: validation cross-entropy (nats per step) and recall accuracy on the 10 symbols",
             ["T", "cell", "baseline", "best loss", "sequences to beat the baseline", "best recall accuracy",
              f"sequences to recall >= {_pct(res['solved_accuracy'])}", "sequences trained"], rows)]


def _draw_copy(res: dict, mpl):
    return _draw_curves(res, mpl, metric="val_loss", ylabel="validation cross-entropy (nats/step)",
                        baseline=copy_memory_baseline, title="Copy memory", solved_line=None, filename="copy_loss.png",
                        caption="Validation cross-entropy per step against training sequences, log scale; dashed: "
                                "the memoryless baseline 10 ln 8 / (T + 20).")


# ============================================================================ exploding
@dataclass(frozen=True)
class ExplodingSettings:
    """Sizes of the ``exploding`` experiment: an IRNN (relu, ``W = I``) on the adding problem, plain SGD."""

    timesteps: int
    hidden_size: int
    batch_size: int
    steps: int            # updates per run, at most
    lr: float             # SGD: high for an unclipped relu RNN
    clip_norm: float
    loss_bound: float     # a run stops when the loss exceeds this ...
    grad_bound: float     # ... or the gradient norm exceeds this (or anything is not finite)


def _compute_exploding(s: ExplodingSettings, seed: int, log) -> dict:
    """The same model, data and seed trained twice: without clipping, then with ``clip_grad_norm``.

    Notes
    -----
    float64 throughout, so an explosion is measured up to the stated bounds instead of being cut short
    by float32 overflow. Per step: the loss and the global gradient norm ``||g||`` before clipping.
    A run stops at the first step whose loss or gradient norm is not finite or exceeds its bound
    (that step's values are recorded when finite; no update is made from it). A step whose forward
    or backward pass overflows even float64 is recorded as ``overflowed`` (its norm is beyond
    1.8e308, so none is stored).
    """
    batches = [adding_problem(s.batch_size, s.timesteps, np.random.default_rng([seed, 0, step]), dtype="float64")
               for step in range(s.steps)]
    runs = {}
    for key, clip in (("unclipped", None), ("clipped", s.clip_norm)):
        weight_rng = np.random.default_rng([seed, 1])
        model = Sequential([make_recurrent("irnn", s.hidden_size, input_size=2, seed=weight_rng, dtype="float64"),
                            Dense(1, seed=weight_rng, dtype="float64")])
        loss_fn, optimizer = losses.get("mse"), optim.get("sgd", lr=s.lr)
        loss_curve, norm_curve, stop, overflowed = [], [], None, False
        for step, (x, y) in enumerate(batches, start=1):
            try:
                value, norm = _gradient(model, loss_fn, x, y)
            except _Diverged as exc:
                reason = f"float64 overflow in the forward or backward pass: {exc}"
                stop, overflowed = {"step": step, "reason": reason}, True
                break
            loss_curve.append(value)
            norm_curve.append(norm)
            if norm > s.grad_bound:
                reason = f"the gradient norm {_sci(norm)} exceeds the bound {_sci(s.grad_bound)}"
                stop = {"step": step, "reason": reason}
            elif value > s.loss_bound:
                stop = {"step": step, "reason": f"the loss {_sci(value)} exceeds the bound {_sci(s.loss_bound)}"}
            if stop is not None:
                break
            try:
                _update(model, optimizer, clip)
            except _Diverged as exc:
                stop, overflowed = {"step": step, "reason": str(exc)}, True
                break
        runs[key] = {"clip_norm": clip, "loss": loss_curve, "grad_norm": norm_curve, "steps": len(loss_curve),
                     "stopped": stop, "overflowed": overflowed,
                     "peak_grad_norm": max(norm_curve) if norm_curve else None,
                     "first_loss": loss_curve[0] if loss_curve else None,
                     "last_loss": loss_curve[-1] if loss_curve else None,
                     "min_loss": min(loss_curve) if loss_curve else None,
                     "clipped_steps": sum(1 for n in norm_curve if clip is not None and n > clip)}
        log(f"exploding: {key}: {len(loss_curve)} steps" + (f", stopped at step {stop['step']}: {stop['reason']}"
                                                            if stop else ""))
    return {"baseline_mse": ADDING_BASELINE_MSE, "runs": runs}


def _findings_exploding(res: dict) -> list[str]:
    lines = []
    s = res["settings"]
    for r in res["runs"].values():
        name = "Without clipping" if r["clip_norm"] is None else f"With clip_grad_norm({r['clip_norm']:g})"
        peak = "none recorded" if r["peak_grad_norm"] is None else _sci(r["peak_grad_norm"])
        if r["stopped"] is not None:
            text = (f"{name} the run stopped at step {r['stopped']['step']} of {s['steps']}: {r['stopped']['reason']}; "
                    f"the largest gradient norm recorded was {peak}")
        else:
            text = f"{name} all {s['steps']} steps ran; the gradient norm before clipping peaked at {peak}"
        if r["clip_norm"] is not None:
            text += f" and exceeded {r['clip_norm']:g} (so was clipped) at {r['clipped_steps']} steps"
        if r["last_loss"] is not None:
            text += (f"; the loss went from {_sci(r['first_loss'], 3)} to {_sci(r['last_loss'], 3)} (lowest "
                     f"{_sci(r['min_loss'], 3)}; baseline {res['baseline_mse']:.3f})")
        lines.append(text + ".")
    u, c = res["runs"]["unclipped"], res["runs"]["clipped"]
    if u["overflowed"] and not c["overflowed"] and c["peak_grad_norm"] is not None:
        lines.append(f"Without clipping the gradient overflowed float64 (beyond 1.8e308) at step "
                     f"{u['stopped']['step']}; with clipping its largest norm (before clipping) was "
                     f"{_sci(c['peak_grad_norm'])}.")
    elif u["peak_grad_norm"] is not None and c["peak_grad_norm"] is not None:
        lines.append(f"The largest gradient norm without clipping is {_sci(u['peak_grad_norm'] / c['peak_grad_norm'])} "
                     "times the largest with clipping (norms before clipping).")
    return lines


def _tables_exploding(res: dict):
    rows = []
    for key, r in res["runs"].items():
        rows.append([key, "-" if r["clip_norm"] is None else f"{r['clip_norm']:g}", f"{r['steps']}",
                     "-" if r["stopped"] is None else f"step {r['stopped']['step']}: {r['stopped']['reason']}",
                     "-" if r["peak_grad_norm"] is None else _sci(r["peak_grad_norm"]),
                     "-" if r["last_loss"] is None else _sci(r["last_loss"], 3),
                     "-" if r["min_loss"] is None else _sci(r["min_loss"], 3)])
    return [("Training with and without gradient clipping (same data, same initial weights)",
             ["run", "clip_norm", "steps run", "stopped", "peak gradient norm", "last loss", "lowest loss"], rows)]


def _draw_exploding(res: dict, mpl):
    fig, axes = mpl.figure(11, 4, rows=1, cols=2)
    for r in res["runs"].values():
        steps = np.arange(1, len(r["loss"]) + 1)
        label = "no clipping" if r["clip_norm"] is None else f"clip_grad_norm({r['clip_norm']:g})"
        marker = "o" if len(steps) <= 50 else None
        line, = axes[0].plot(steps, _positive(r["loss"]), label=label, marker=marker, markersize=3)
        axes[1].plot(steps, _positive(r["grad_norm"]), label=label, color=line.get_color(), marker=marker, markersize=3)
        if r["stopped"] is not None:
            for ax in axes:
                ax.axvline(r["stopped"]["step"], color=line.get_color(), linestyle=":", linewidth=1)
            if r["overflowed"]:
                axes[1].annotate(f"float64 overflow at step {r['stopped']['step']}", (r["stopped"]["step"], 1.0),
                                 xycoords=("data", "axes fraction"), xytext=(4, -12), textcoords="offset points",
                                 color=line.get_color(), fontsize="small")
    axes[0].axhline(res["baseline_mse"], color="black", linestyle="--", linewidth=1, label="baseline 1/6")
    if res["runs"]["clipped"]["clip_norm"] is not None:
        axes[1].axhline(res["runs"]["clipped"]["clip_norm"], color="grey", linestyle="--", linewidth=1,
                        label="clipping threshold")
    for ax, what in zip(axes, ("training loss (MSE)", "gradient norm before clipping")):
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    s = res["settings"]
    fig.suptitle(f"IRNN on the adding problem (T={s['timesteps']}, H={s['hidden_size']}), SGD lr={s['lr']:g}")
    caption = "Loss and gradient norm (before clipping) per step, log scale; a dotted line marks where a run stopped."
    return [("exploding.png", caption, mpl.png(fig))]


# ============================================================================ truncation
@dataclass(frozen=True)
class TruncationSettings:
    """Sizes of the ``truncation`` experiment: one LSTM per (window k, lag) on a delayed recall stream."""

    windows: tuple[int, ...]      # truncated BPTT window k
    lags: tuple[int, ...]         # delay between cue and query
    hidden_size: int
    batch: int                    # parallel streams
    steps: int                    # training steps per stream (the same data budget for every k)
    val_batch: int
    val_steps: int
    lr: float                     # Adam
    clip_norm: float
    threshold: float              # recall accuracy that counts as learned
    symbols: int = 4              # cue symbols (the classes)
    distractors: int = 4          # distractor symbols between trials
    max_gap: int = 10             # distractor steps between trials: uniform in 0..max_gap


def delayed_recall(n: int, length: int, lag: int, seed, *, symbols: int = 4, distractors: int = 4,
                   max_gap: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Streams of delayed recall trials: at each query step the target is the input ``lag`` steps earlier.

    Parameters
    ----------
    n : int
        Streams.
    length : int
        Steps per stream.
    lag : int
        Steps from a cue to its query, at least 1.
    seed : int or numpy.random.Generator
    symbols, distractors : int
        Cue symbols are ids ``0 .. symbols-1`` (also the target classes); distractors ``symbols ..
        symbols+distractors-1``; the query marker is ``symbols + distractors``.
    max_gap : int
        Distractor steps before each trial: uniform in ``0 .. max_gap`` (they shift the trials
        against any fixed window grid).

    Returns
    -------
    x : (n, length) int64
        Input ids (one-hot them with ``OneHot(symbols + distractors + 1)``).
    y : (n, length) int64
        The cue at each query step, 0 elsewhere.
    mask : (n, length) bool
        True at the query steps: the only steps with a target.

    Notes
    -----
    One trial: a gap of distractors, the cue ``s`` at step ``p``, distractors at ``p+1 .. p+lag-1``,
    the query marker at ``p + lag`` with target ``s``; trials follow each other until the stream
    ends (a trial that would not fit is dropped). Every non-cue, non-query input is a uniformly
    drawn distractor, so a cue is only remembered if the network protects it from ``lag - 1``
    intervening inputs.
    """
    for name, value in (("n", n), ("length", length), ("lag", lag), ("symbols", symbols),
                        ("distractors", distractors)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if isinstance(max_gap, bool) or not isinstance(max_gap, numbers.Integral) or max_gap < 0:
        raise ValueError(f"max_gap must be a non-negative int, got {max_gap!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    x = rng.integers(symbols, symbols + distractors, size=(n, length))  # (n, length) distractors everywhere first
    y = np.zeros((n, length), dtype=np.int64)
    mask = np.zeros((n, length), dtype=bool)
    trials = length // (lag + 1) + 1  # more than can fit
    for row in range(n):
        gaps = rng.integers(0, max_gap + 1, size=trials)  # (trials,)
        cues = rng.integers(0, symbols, size=trials)  # (trials,)
        starts = np.cumsum(gaps) + np.arange(trials) * (lag + 1)  # (trials,) cue positions
        fits = starts + lag < length
        p, c = starts[fits], cues[fits]
        x[row, p] = c
        x[row, p + lag] = symbols + distractors
        y[row, p + lag] = c
        mask[row, p + lag] = True
    return x.astype(np.int64), y, mask


def _train_truncated(s: TruncationSettings, k: int, lag: int, seed: int) -> dict:
    """One LSTM trained on a delayed recall stream with truncated BPTT windows of k steps.

    Returns the validation recall accuracy (the whole validation stream in one forward pass from a
    zero state), the number of updates and the query steps trained on.
    """
    vocab = s.symbols + s.distractors + 1
    x, y, mask = delayed_recall(s.batch, s.steps, lag, np.random.default_rng([seed, lag, 0]), symbols=s.symbols,
                                distractors=s.distractors, max_gap=s.max_gap)
    xv, yv, mv = delayed_recall(s.val_batch, s.val_steps, lag, np.random.default_rng([seed, lag, 1]),
                                symbols=s.symbols, distractors=s.distractors, max_gap=s.max_gap)
    weight_rng = np.random.default_rng([seed, 2])
    layer = make_recurrent("lstm", s.hidden_size, input_size=vocab, seed=weight_rng, return_sequences=True,
                           stateful=True)
    model = Sequential([OneHot(vocab), layer, Dense(s.symbols, seed=weight_rng)])
    loss_fn, optimizer = losses.get("cross_entropy"), optim.get("adam", lr=s.lr)
    updates, stopped = 0, None
    for a in range(0, s.steps, k):
        xb, yb, mb = x[:, a:a + k], y[:, a:a + k], mask[:, a:a + k]
        try:
            if not mb.any():  # no target in this window: only carry the state forward
                _predict(model, xb, batch=len(xb))
                continue
            _gradient(model, loss_fn, xb, yb, mb)  # the layer starts from the state the previous window left
            _update(model, optimizer, s.clip_norm)
        except _Diverged as exc:
            stopped = f"diverged at step {a}: {exc}"
            break
        updates += 1
    model.reset_state()
    layer.stateful = False
    logits = _predict(model, xv, batch=len(xv))  # (val_batch, val_steps, symbols)
    accuracy = float((logits.argmax(axis=-1) == yv)[mv].mean())
    return {"k": k, "lag": lag, "accuracy": accuracy, "updates": updates, "queries": int(mask.sum()),
            "stopped": stopped}


def _compute_truncation(s: TruncationSettings, seed: int, log) -> dict:
    runs = []
    for k in s.windows:
        for lag in s.lags:
            run = _train_truncated(s, k, lag, seed)
            runs.append(run)
            log(f"truncation: k={k} lag={lag}: recall accuracy {run['accuracy']:.3f}")
    longest = {}
    for k in s.windows:
        learned = [r["lag"] for r in runs if r["k"] == k and r["accuracy"] >= s.threshold]
        longest[str(k)] = max(learned) if learned else None
    return {"chance_accuracy": 1.0 / s.symbols, "runs": runs, "longest_learned": longest}


def _findings_truncation(res: dict) -> list[str]:
    s = res["settings"]
    lines = []
    longest = res["longest_learned"]
    for k in s["windows"]:
        value = longest[str(k)]
        lines.append(f"k = {k}: " + ("no lag learned" if value is None else f"longest lag learned {value}")
                     + f" (recall accuracy >= {s['threshold']:g}; chance {res['chance_accuracy']:.2f}); "
                     f"a window of k steps links a query to a cue at most k - 1 = {k - 1} steps back.")
    values = [(-1 if longest[str(k)] is None else longest[str(k)]) for k in s["windows"]]
    shown = ", ".join("none" if v < 0 else str(v) for v in values)
    if all(b >= a for a, b in itertools.pairwise(values)) and values[-1] > values[0]:
        lines.append(f"The longest learned dependency grows with the window k ({shown} for k = "
                     f"{', '.join(map(str, s['windows']))}).")
    elif all(v == values[0] for v in values):
        lines.append(f"The longest learned dependency does not change with k here ({shown}).")
    else:
        lines.append(f"The longest learned dependency does not grow monotonically with k here ({shown} for k = "
                     f"{', '.join(map(str, s['windows']))}).")
    outside = [r for r in res["runs"] if r["lag"] >= r["k"]]
    beyond = [r for r in outside if r["accuracy"] >= s["threshold"]]
    if beyond:
        lines.append("Learned although no window holds both a cue and its query (lag >= k): "
                     + ", ".join(f"k={r['k']} lag={r['lag']} ({r['accuracy']:.2f})" for r in beyond) + ".")
    elif outside:
        best = max(outside, key=lambda r: r["accuracy"])
        lines.append(f"None of the {len(outside)} runs with lag >= k (no window holds both a cue and its query) "
                     f"reached the threshold; the best of them: k={best['k']} lag={best['lag']} "
                     f"({best['accuracy']:.2f}).")
    most = {k: max(r["updates"] for r in res["runs"] if r["k"] == k) for k in s["windows"]}
    k_lo, k_hi = min(most), max(most)
    lines.append(f"Every run trained on the same {_count(s['steps'])} steps of {s['batch']} streams; a window of k steps "
                 f"makes one update per window holding a query: up to {_count(most[k_lo])} updates for k = {k_lo}, "
                 f"up to {_count(most[k_hi])} for k = {k_hi}.")
    diverged = [r for r in res["runs"] if r["stopped"]]
    for r in diverged:
        lines.append(f"k = {r['k']}, lag {r['lag']}: {r['stopped']}.")
    return lines


def _tables_truncation(res: dict):
    s = res["settings"]
    acc = {(r["k"], r["lag"]): r["accuracy"] for r in res["runs"]}
    rows = []
    for k in s["windows"]:
        value = res["longest_learned"][str(k)]
        cells = [f"{acc[(k, lag)]:.2f}" for lag in s["lags"]]
        rows.append([f"{k}", *cells, "none" if value is None else f"{value}"])
    caption = (f"Recall accuracy per lag (chance {res['chance_accuracy']:.2f}); longest lag with accuracy >= "
               f"{s['threshold']:g}")
    return [(caption, ["k \\ lag"] + [f"{lag}" for lag in s["lags"]] + ["longest learned"], rows)]


def _draw_truncation(res: dict, mpl):
    s = res["settings"]
    fig, axes = mpl.figure(11, 4.2, rows=1, cols=2)
    ax = axes[0]
    for k in s["windows"]:
        runs = [r for r in res["runs"] if r["k"] == k]
        line, = ax.plot([r["lag"] for r in runs], [r["accuracy"] for r in runs], marker="o", label=f"k = {k}")
        ax.axvline(k, color=line.get_color(), linestyle=":", linewidth=1)
    ax.axhline(res["chance_accuracy"], color="black", linestyle="--", linewidth=1, label="chance")
    ax.axhline(s["threshold"], color="grey", linestyle="-.", linewidth=1, label="learned")
    ax.set_xticks(list(s["lags"]))
    ax.set_xlabel("lag (steps from cue to query)")
    ax.set_ylabel("validation recall accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    ax = axes[1]
    ks = list(s["windows"])
    longest = [res["longest_learned"][str(k)] for k in ks]
    ax.plot(ks, [math.nan if v is None else v for v in longest], marker="o", label="longest lag learned")
    ax.plot(ks, [k - 1 for k in ks], color="grey", linestyle="--", label="k - 1 (the window's reach)")
    ax.set_xticks(ks)
    ax.set_xlabel("truncated BPTT window k")
    ax.set_ylabel("lag")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.suptitle(f"Truncated BPTT: delayed recall with an LSTM (H={s['hidden_size']})")
    caption = ("Left: recall accuracy against the lag for each window k (dotted: the lag k). Right: the longest lag "
               "learned against k.")
    return [("truncation.png", caption, mpl.png(fig))]


# ============================================================================ plotting
class _Matplotlib:
    """The Agg-backed figure factory (no pyplot state), imported only when an experiment runs."""

    def __init__(self):
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError as exc:
            raise PlotDependencyError(
                "the experiments draw their figures with matplotlib, which is not installed: "
                "pip install rnnlab[plot]") from exc
        self._Figure, self._Canvas = Figure, FigureCanvasAgg

    def figure(self, width: float, height: float, rows: int = 1, cols: int = 1):
        """A new figure and the flat list of its ``rows x cols`` axes."""
        fig = self._Figure(figsize=(width, height), dpi=100)
        self._Canvas(fig)
        axes = [fig.add_subplot(rows, cols, i + 1) for i in range(rows * cols)]
        return fig, axes

    @staticmethod
    def png(fig) -> bytes:
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()


# ============================================================================ the registry
@dataclass(frozen=True)
class Experiment:
    """One experiment: its settings per mode and how to compute, tabulate, interpret and draw it.

    ``run(out_dir, mode=, seed=, progress=)`` does everything and returns the results dict (what
    ``results.json`` holds).
    """

    name: str
    title: str
    summary: str                          # one line, for ``--list``
    settings: Mapping[str, object]        # mode -> a frozen settings dataclass
    compute: Callable                     # (settings, seed, log) -> dict of numbers
    findings: Callable                    # results -> list of sentences written from the numbers
    tables: Callable                      # results -> list of (caption, header, rows)
    draw: Callable                        # (results, _Matplotlib) -> list of (file name, caption, PNG bytes)
    full_estimate: str                    # the full mode's run time on one core, measured or estimated

    def _check_timesteps(self, timesteps) -> tuple[int, ...]:
        """``timesteps`` as a tuple of positive ints, for an experiment whose settings hold a tuple of T."""
        def several_lengths(e: Experiment) -> bool:
            return isinstance(getattr(e.settings["fast"], "timesteps", None), tuple)

        if not several_lengths(self):
            several = [e.name for e in EXPERIMENTS.values() if several_lengths(e)]
            raise ValueError(f"timesteps can be chosen for the experiments that run several sequence lengths "
                             f"({', '.join(several)}), not for {self.name!r}")
        if isinstance(timesteps, (str, bytes)) or not isinstance(timesteps, (list, tuple)) or not timesteps:
            raise TypeError(f"timesteps must be a non-empty list of positive ints, got {timesteps!r}")
        for T in timesteps:
            if isinstance(T, bool) or not isinstance(T, numbers.Integral) or T < 1:
                raise ValueError(f"timesteps must be positive ints, got {T!r} in {list(timesteps)!r}")
        return tuple(int(T) for T in timesteps)

    def run(self, out_dir, *, mode: str = "fast", seed: int = 0, timesteps=None,
            progress: Callable[[str], None] | None = None) -> dict:
        """Run the experiment and write ``results.json``, the PNG figures and ``report.html`` into ``out_dir``.

        Parameters
        ----------
        out_dir : str or os.PathLike
            Created if missing; files in it with the same names are replaced (atomically).
        mode : "fast" or "full"
            Fast: seconds, small sizes (tests). Full: the sizes the documentation reports.
        seed : int >= 0
            Seeds the data and the weights.
        timesteps : sequence of int > 0, optional
            The sequence lengths T to run instead of the mode's (``adding`` and ``copy`` only). Each T
            has its own data and weight seeds, so a T gives the same curves alone as among others.
        progress : callable(str), optional
            Receives a line per milestone (a run finished, an evaluation).

        Returns
        -------
        dict
            JSON-serialisable: ``experiment``, ``mode``, ``seed``, ``command``, ``settings``, the
            experiment's numbers, ``findings`` (sentences) and ``figures`` (file names and captions).

        Raises
        ------
        PlotDependencyError
            Before any computation, when matplotlib is missing.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(repr(m) for m in MODES)}; got {mode!r}")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"seed must be a non-negative int, got {type(seed).__name__} {seed!r}")
        if seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed}")
        if not isinstance(out_dir, (str, os.PathLike)):
            raise TypeError(f"out_dir must be a path (str or os.PathLike), got {type(out_dir).__name__} {out_dir!r}")
        if progress is not None and not callable(progress):
            raise TypeError(f"progress must be a callable taking a str, or None; got {type(progress).__name__}")
        mpl = _Matplotlib()  # fail before computing, not after
        log = progress or (lambda message: None)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        settings = self.settings[mode]
        if timesteps is not None:
            settings = replace(settings, timesteps=self._check_timesteps(timesteps))
        started = time.perf_counter()
        measured = self.compute(settings, int(seed), log)
        command = command_line(self.name, mode, int(seed), out_dir,
                               None if timesteps is None else settings.timesteps)
        results = {"experiment": self.name, "title": self.title, "mode": mode, "seed": int(seed),
                   "command": command, "settings": asdict(settings),
                   **measured, "elapsed_seconds": round(time.perf_counter() - started, 2)}
        results["findings"] = self.findings(results)
        _write_json(out / "results.json", results)  # the numbers are safe before anything is drawn
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a cosmetic matplotlib warning must not lose a finished run
            figures = self.draw(results, mpl)
        for filename, _, png in figures:
            write_atomic(out / filename, png)
        results["figures"] = [{"file": filename, "caption": caption} for filename, caption, _ in figures]
        _write_json(out / "results.json", results)
        write_atomic(out / "report.html", _report_html(results, self.tables(results), figures).encode("utf-8"))
        return results


def command_line(name: str, mode: str, seed: int, out_dir, timesteps=None) -> str:
    """The ``rnnlab experiment`` command that reproduces a run (``--out`` only when not the default)."""
    parts = ["rnnlab", "experiment", name]
    if mode == "full":
        parts.append("--full")
    if timesteps is not None:
        parts += ["--timesteps", *map(str, timesteps)]
    if seed != 0:
        parts += ["--seed", str(seed)]
    if Path(out_dir) != Path(DEFAULT_OUT) / name:
        parts += ["--out", str(out_dir)]
    return " ".join(parts)


def _jsonable(value, where: str = "results"):
    """Plain JSON types; a NaN or inf raises (a missing value must be None, stated on purpose)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist(), where)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value}: results must hold finite numbers (None for a missing value)")
        return value
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"{where} is a {type(value).__name__}, which JSON cannot hold")


def _write_json(path: Path, results: dict) -> None:
    text = json.dumps(_jsonable(results), indent=1, allow_nan=False) + "\n"
    write_atomic(path, text.encode("utf-8"))


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f2f2f2}code,pre{background:#f6f6f6;padding:2px 4px}img{max-width:100%}figure{margin:1.5em 0}
figcaption{color:#555;font-size:.95em}"""


def _table_html(caption: str, header: list[str], rows: list[list[str]]) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><caption>{esc(caption)}</caption><tr>{head}</tr>{body}</table>"


def _report_html(results: dict, tables, figures) -> str:
    """A self-contained page: title, command, settings, findings, tables, the figures embedded."""
    esc = html.escape
    settings_rows = [[k, ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)]
                     for k, v in results["settings"].items()]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>rnnlab experiment {esc(results['experiment'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(results['title'])}</h1>",
        (f"<p>Reproduce with <code>{esc(results['command'])}</code> ({esc(results['mode'])} mode, seed "
         f"{results['seed']}; {results['elapsed_seconds']:.2f} s of computation).</p>"),
        "<h2>Findings</h2><p>Written from this run's numbers.</p><ul>",
        *(f"<li>{esc(line)}</li>" for line in results["findings"]),
        "</ul><h2>Results</h2>",
        *(_table_html(*t) for t in tables),
        "<h2>Figures</h2>",
        _table_html("Figures of this report", ["file", "shows"], [[f, c] for f, c, _ in figures]),
    ]
    for filename, caption, png in figures:
        data = base64.b64encode(png).decode("ascii")
        parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{esc(caption)}">'
                     f"<figcaption>{esc(filename)}: {esc(caption)}</figcaption></figure>")
    parts += ["<h2>Settings</h2>", _table_html("Settings of this run", ["setting", "value"], settings_rows),
              "<p>All numbers are in <code>results.json</code> beside this page.</p></body></html>"]
    return "\n".join(parts) + "\n"


EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (
    Experiment(
        name="vanishing",
        title="Vanishing gradients: ||dL_T/dh_(T-lag)|| against the lag",
        summary="gradient norm of a last-step loss against the time lag, RNN(tanh/sigmoid/relu), LSTM, GRU, log scale",
        settings={"fast": VanishingSettings(hidden_size=16, timesteps=40, input_size=4, batch=4, repeats=2),
                  "full": VanishingSettings(hidden_size=64, timesteps=200, input_size=8, batch=32, repeats=5)},
        compute=_compute_vanishing, findings=_findings_vanishing, tables=_tables_vanishing, draw=_draw_vanishing,
        full_estimate="about 5 seconds"),
    Experiment(
        name="adding",
        title="The adding problem: validation MSE against training sequences",
        summary="adding problem at T = 50, 100, 200, 400: RNN(tanh), IRNN, LSTM, GRU against the 1/6 baseline",
        settings={"fast": CurveSettings(timesteps=(10,), cells=("rnn_tanh", "irnn", "lstm", "gru"), hidden_size=8,
                                        batch_size=20, max_sequences=400, eval_every=100, val_size=100, lr=1e-2,
                                        clip_norm=1.0, stop_when_solved=False),
                  "full": CurveSettings(timesteps=(50, 100, 200, 400), cells=("rnn_tanh", "irnn", "lstm", "gru"),
                                        hidden_size=128, batch_size=50, max_sequences=100_000, eval_every=2_500,
                                        val_size=500, lr=1e-3, clip_norm=1.0, stop_when_solved=True)},
        compute=_compute_adding, findings=_findings_adding, tables=_tables_adding, draw=_draw_adding,
        full_estimate="at most about 40 minutes; a run stops once solved"),
    Experiment(
        name="copy",
        title="The copy-memory task: cross-entropy against training sequences",
        summary="copy memory at T = 100 and 200: LSTM, GRU, RNN(tanh) against the memoryless baseline",
        settings={"fast": CurveSettings(timesteps=(5,), cells=("lstm", "gru", "rnn_tanh"), hidden_size=8,
                                        batch_size=20, max_sequences=300, eval_every=100, val_size=60, lr=1e-2,
                                        clip_norm=1.0, stop_when_solved=False),
                  "full": CurveSettings(timesteps=(100, 200), cells=("lstm", "gru", "rnn_tanh"), hidden_size=128,
                                        batch_size=50, max_sequences=200_000, eval_every=5_000, val_size=500,
                                        lr=1e-3, clip_norm=1.0, stop_when_solved=True)},
        compute=_compute_copy, findings=_findings_copy, tables=_tables_copy, draw=_draw_copy,
        full_estimate="at most about 40 minutes; a run stops once solved"),
    Experiment(
        name="exploding",
        title="Exploding gradients: training with and without gradient clipping",
        summary="an IRNN trained twice with a high SGD learning rate, without and with clip_grad_norm: loss and norm",
        settings={"fast": ExplodingSettings(timesteps=40, hidden_size=16, batch_size=20, steps=60, lr=1e-2,
                                            clip_norm=1.0, loss_bound=1e6, grad_bound=1e12),
                  "full": ExplodingSettings(timesteps=100, hidden_size=64, batch_size=20, steps=2000, lr=1e-3,
                                            clip_norm=1.0, loss_bound=1e6, grad_bound=1e12)},
        compute=_compute_exploding, findings=_findings_exploding, tables=_tables_exploding, draw=_draw_exploding,
        full_estimate="about 10 seconds"),
    Experiment(
        name="truncation",
        title="Truncated BPTT: the window k against the longest dependency learned",
        summary="an LSTM learns delayed recall with truncated BPTT windows k: accuracy per lag, longest lag per k",
        settings={"fast": TruncationSettings(windows=(2, 6), lags=(1, 3), hidden_size=8, batch=8, steps=1200,
                                             val_batch=16, val_steps=300, lr=1e-2, clip_norm=1.0, threshold=0.9),
                  "full": TruncationSettings(windows=(2, 5, 10, 20, 40), lags=(1, 2, 4, 8, 12, 16, 24, 32),
                                             hidden_size=32, batch=32, steps=30_000, val_batch=64, val_steps=3_000,
                                             lr=1e-2, clip_norm=1.0, threshold=0.9)},
        compute=_compute_truncation, findings=_findings_truncation, tables=_tables_truncation, draw=_draw_truncation,
        full_estimate="about 4 minutes"),
)}


def get(name: str) -> Experiment:
    """The experiment called ``name``; a :class:`~rnnlab.config.ConfigError` names the valid choices."""
    if not isinstance(name, str) or name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; valid choices: {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


# ============================================================================ command line
def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def configure_cli(parser: argparse.ArgumentParser) -> None:
    """Options of ``rnnlab experiment NAME [--full] [--out DIR] [--seed S] [--timesteps T ...]`` and
    ``rnnlab experiment --list``."""
    parser.add_argument("name", nargs="?", metavar="NAME", help=f"the experiment: {', '.join(EXPERIMENTS)}")
    parser.add_argument("--list", action="store_true", help="list the experiments, one line each, and exit")
    parser.add_argument("--full", action="store_true",
                        help="the full mode, whose results docs/results.md reports (minutes); default: the fast mode")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help=f"output directory (default: {DEFAULT_OUT}/NAME)")
    parser.add_argument("--seed", type=_seed, default=0, help="seed of the data and the weights (default: %(default)s)")
    parser.add_argument("--timesteps", type=int, nargs="+", metavar="T", default=None,
                        help="sequence lengths to run instead of the mode's (adding, copy)")


def run_cli(args: argparse.Namespace) -> int:
    """Run ``rnnlab experiment``: print the findings and where the report is; 0 on success, 1 when
    matplotlib is missing; an unknown or missing name raises ConfigError (exit code 2)."""
    if args.list:
        width = max(map(len, EXPERIMENTS))
        for e in EXPERIMENTS.values():
            print(f"{e.name.ljust(width)}  {e.summary} [full mode on one core: {e.full_estimate}]")
        return 0
    if args.name is None:
        raise ConfigError(f"an experiment name is required (or --list); valid choices: {', '.join(EXPERIMENTS)}")
    experiment = get(args.name)
    if args.timesteps is not None:
        try:
            experiment._check_timesteps(args.timesteps)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"--timesteps: {exc}") from None
    out = args.out if args.out is not None else str(Path(DEFAULT_OUT) / experiment.name)
    mode = "full" if args.full else "fast"

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        results = experiment.run(out, mode=mode, seed=args.seed, timesteps=args.timesteps, progress=progress)
    except PlotDependencyError as exc:
        print(f"rnnlab experiment: error: {exc}", file=sys.stderr)
        return 1
    print(f"{experiment.title} ({mode} mode, seed {args.seed}, {results['elapsed_seconds']:.1f} s)")
    for line in results["findings"]:
        print(f"- {line}")
    print(f"report: {Path(out) / 'report.html'} (figures: {', '.join(f['file'] for f in results['figures'])}; "
          f"numbers: {Path(out) / 'results.json'})")
    return 0
