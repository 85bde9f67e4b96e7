"""The ``vanishing`` experiment: ``||dL_T/dh_{T-lag}||`` against the lag for RNN(tanh), RNN(sigmoid),
RNN(relu), LSTM and GRU on the same inputs, through each layer's own backward: its settings, computation,
findings, table and figure."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rnnlab.lab.experiments._cells import _label, make_recurrent
from rnnlab.lab.experiments._report import _finite_list, _positive, _sci
from rnnlab.training.distributed import spread_over_ranks, world


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

    def one(r: int) -> dict:
        x, u = vanishing_draw(seed, r, s)
        out = {}
        for cell in s.cells:
            layer = make_recurrent(cell, s.hidden_size, input_size=s.input_size, seed=vanishing_weights_seed(seed, r),
                                   dtype="float64")
            layer.record_grad_norms = True
            with np.errstate(over="raise", invalid="raise", divide="raise"):
                layer(x)
                layer.backward(u)
            out[cell] = layer.grad_norms["h"][:, ::-1].tolist()  # (B, T): column `lag` holds ||dL_T/dh_{T-1-lag}||
        log(f"vanishing: repeat {r + 1}/{s.repeats} done")
        return out

    for result in spread_over_ranks(one, list(range(s.repeats)), world()):  # repeats are independent: over ranks
        for cell in s.cells:
            norms[cell].append(np.asarray(result[cell], dtype=np.float64))
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
