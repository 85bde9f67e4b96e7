"""Runs side by side: one quantity of several run directories' histories, as a table and a figure.

:func:`compare` reads each run's ``history.json`` (the epoch results that
:class:`~rnnlab.training.callbacks.HistoryWriter` writes after every epoch, so a run still training can be
compared too) and returns one :class:`RunCurve` per run: its label, the quantity per epoch, its best value
and that value's epoch, and its last value. :func:`table` prints them; :func:`plot` draws the quantity
against the epoch, one line per run, each run's best epoch marked. ``rnnlab compare`` is the command line of
both.

An ablation is the same configuration trained with and without one technique; comparing the two runs shows
what the technique is worth epoch by epoch, not only at the end (the figures of docs/results.md's ablations).
A cross-validation run (``data.cv_folds``: a directory of ``fold-01``, ``fold-02``, ... run directories) stands
for its folds, one curve each, labelled ``"<label>, fold k"``.

"Best" follows the Trainer's rule for ``monitor`` (its ``mode = "auto"``): the
largest value of a quantity naming an accuracy, the smallest of any other. Non-finite values (a diverged
epoch, stored as null) are drawn as gaps and are never the best.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rnnlab.lab.experiments import PlotDependencyError
from rnnlab.lab.tasks import RunError
from rnnlab.optim.schedules import resolve_mode

__all__ = ["RunCurve", "compare", "table", "plot", "HISTORY"]

#: the file of a run directory that :func:`compare` reads
HISTORY = "history.json"


@dataclass(frozen=True)
class RunCurve:
    """One run's ``metric`` per epoch; ``best``/``best_epoch`` are None when no epoch has a finite value."""

    label: str
    run_dir: Path
    metric: str
    epochs: list[int]
    values: list[float | None]
    best: float | None
    best_epoch: int | None

    @property
    def last(self) -> float | None:
        return self.values[-1] if self.values else None


def load_history(run_dir) -> dict[str, list]:
    """The columns of ``run_dir/history.json`` (``{"epoch": [1, 2, ...], "loss": [...], ...}``)."""
    run_dir = Path(run_dir)
    path = run_dir / HISTORY
    if not path.is_file():
        if not run_dir.is_dir():
            raise RunError(f"'{run_dir}' is not a directory")
        if (run_dir / "fold-01").is_dir():
            raise RunError(f"'{run_dir}' is a cross-validation run: compare its folds ('{run_dir / 'fold-01'}', ...)")
        raise RunError(f"'{run_dir}' holds no {HISTORY}: it is not a run directory, or no epoch has ended yet")
    try:
        history = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunError(f"'{path}' is not a readable history: {exc}") from None
    columns = history if isinstance(history, dict) else {}
    epochs = columns.get("epoch")
    if not isinstance(epochs, list) or any(not isinstance(c, list) or len(c) != len(epochs) for c in columns.values()):
        raise RunError(f"'{path}' is not a history: expected an object of equally long lists with the key 'epoch'")
    return columns


def _number(value) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def compare(run_dirs: Sequence, metric: str | None = None, labels: Sequence[str] | None = None) -> list[RunCurve]:
    """One :class:`RunCurve` of ``metric`` per run directory, in the order given.

    ``metric`` is a column of the histories (``"val_loss"``, ``"val_perplexity"``, ``"accuracy"``, ...);
    None takes ``"val_loss"`` when every run has it, else ``"loss"``. ``labels`` name the runs (default: the
    directories' names, or the paths as given when two names are the same). A cross-validation run directory
    gives one curve per fold, labelled ``"<label>, fold k"``.
    """
    if isinstance(run_dirs, (str, Path)) or not run_dirs:
        raise ValueError(f"run_dirs must be a non-empty list of run directories, got {run_dirs!r}")
    paths = [Path(d) for d in run_dirs]
    if labels is None:
        names = [p.name or str(p) for p in paths]
        labels = names if len(set(names)) == len(names) else [str(d) for d in run_dirs]
    elif isinstance(labels, str) or len(labels) != len(paths):
        raise ValueError(f"labels must name each of the {len(paths)} runs, got {labels!r}")
    paths, labels = _folds_expanded(paths, labels)
    histories = [load_history(p) for p in paths]
    if metric is None:
        metric = "val_loss" if all("val_loss" in h for h in histories) else "loss"
    mode = resolve_mode(metric, "auto")
    curves = []
    for path, label, history in zip(paths, labels, histories):
        if metric not in history:
            have = ", ".join(k for k in history if k != "epoch")
            raise ValueError(f"metric {metric!r}: the run '{path}' has no such column; its history has {have}")
        values = [_number(v) for v in history[metric]]
        finite = [(v, int(e)) for v, e in zip(values, history["epoch"]) if v is not None]
        best = (min if mode == "min" else max)(finite, key=lambda ve: ve[0]) if finite else (None, None)
        curves.append(RunCurve(str(label), path, metric, [int(e) for e in history["epoch"]], values, *best))
    return curves


def _folds_expanded(paths: list[Path], labels: Sequence[str]) -> tuple[list[Path], list[str]]:
    """Each cross-validation run directory (no history of its own, ``fold-NN`` directories) replaced by its
    folds in order, labelled ``"<label>, fold k"``; other paths as given."""
    out_paths, out_labels = [], []
    for path, label in zip(paths, labels):
        folds = [] if (path / HISTORY).is_file() or not path.is_dir() else sorted(
            (int(m.group(1)), d) for d in path.iterdir() if d.is_dir() and (m := re.fullmatch(r"fold-(\d+)", d.name)))
        if folds:
            out_paths += [d for _, d in folds]
            out_labels += [f"{label}, fold {k}" for k, _ in folds]
        else:
            out_paths.append(path)
            out_labels.append(label)
    return out_paths, out_labels


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def table(curves: Sequence[RunCurve]) -> str:
    """The runs as aligned text columns: run, epochs, best value, its epoch, last value."""
    metric = curves[0].metric if curves else "value"
    rows = [["run", "epochs", f"best {metric}", "at epoch", f"last {metric}"]]
    rows += [[c.label, str(len(c.epochs)), _fmt(c.best), "-" if c.best_epoch is None else str(c.best_epoch),
              _fmt(c.last)] for c in curves]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                               enumerate(zip(row, widths))).rstrip() for row in rows)


def plot(curves: Sequence[RunCurve], ax=None, *, title: str | None = None, log_scale: bool = False):
    """Draw each run's curve on ``ax`` (a new matplotlib figure's axes when None); returns the figure.

    A run's best epoch is marked with a hollow circle. Needs matplotlib (the ``plot`` extra):
    :class:`~rnnlab.lab.experiments.PlotDependencyError` without it.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise PlotDependencyError("comparing runs in a figure needs matplotlib, which is not installed: "
                                  "pip install 'rnnlab[plot]'") from None
    if ax is None:
        fig = Figure(figsize=(6, 4), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
    for curve in curves:
        values = [math.nan if v is None else v for v in curve.values]
        (line,) = ax.plot(curve.epochs, values, marker=".", label=curve.label)
        if curve.best_epoch is not None:
            ax.plot([curve.best_epoch], [curve.best], marker="o", markersize=9, fillstyle="none",
                    color=line.get_color(), linestyle="none")
    if log_scale:
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs
    ax.set_xlabel("epoch")
    ax.set_ylabel(curves[0].metric if curves else "")
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.figure.tight_layout()
    return ax.figure
