"""What the learning-curve experiments (``adding``, ``copy``) share: their settings (:class:`CurveSettings`),
the seeds of one (task, T) run, and the figure of validation curves against training sequences, one panel per T."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rnnlab.lab.experiments._report import _count, _positive


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


def _reached(run: dict) -> str:
    return "not reached" if run["solved_at"] is None else _count(run["solved_at"])


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
