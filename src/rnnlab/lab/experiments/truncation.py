"""The ``truncation`` experiment: an LSTM trained with truncated BPTT windows of k steps on a delayed recall
task (:func:`delayed_recall`), recall accuracy per lag and the longest lag learned against k: its settings,
data, computation, findings, table and figure."""

from __future__ import annotations

import itertools
import math
import numbers
from dataclasses import dataclass

import numpy as np

from rnnlab import optim
from rnnlab.lab.experiments._cells import make_recurrent
from rnnlab.lab.experiments._loop import _carry, _Diverged, _predict, _step
from rnnlab.lab.experiments._report import _count
from rnnlab.nn import losses
from rnnlab.nn.layers import Dense, OneHot
from rnnlab.nn.sequential import Sequential
from rnnlab.training.distributed import spread_over_ranks, world


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
    layer = make_recurrent("lstm", s.hidden_size, input_size=vocab, seed=weight_rng, return_sequences=True)
    model = Sequential([OneHot(vocab), layer, Dense(s.symbols, seed=weight_rng)])
    loss_fn, optimizer = losses.get("cross_entropy"), optim.get("adam", lr=s.lr)
    updates, stopped, states = 0, None, {}  # the state map each window starts from: zeros, then carried
    for a in range(0, s.steps, k):
        xb, yb, mb = x[:, a:a + k], y[:, a:a + k], mask[:, a:a + k]
        try:
            if not mb.any():  # no target in this window: only carry the state forward
                states = _carry(model, xb, states)
                continue
            states = _step(model, loss_fn, optimizer, xb, yb, mb, clip_norm=s.clip_norm, states=states).states
        except _Diverged as exc:
            stopped = f"diverged at step {a}: {exc}"
            break
        updates += 1
    logits = _predict(model, xv, batch=len(xv))  # (val_batch, val_steps, symbols)
    accuracy = float((logits.argmax(axis=-1) == yv)[mv].mean())
    return {"k": k, "lag": lag, "accuracy": accuracy, "updates": updates, "queries": int(mask.sum()),
            "stopped": stopped}


def _compute_truncation(s: TruncationSettings, seed: int, log) -> dict:
    def one(k_lag):
        k, lag = k_lag
        run = _train_truncated(s, k, lag, seed)
        log(f"truncation: k={k} lag={lag}: recall accuracy {run['accuracy']:.3f}")
        return run

    runs = spread_over_ranks(one, [(k, lag) for k in s.windows for lag in s.lags], world())  # independent runs
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
    lines.append(f"Every run trained on the same {_count(s['steps'])} steps of {s['batch']} streams; "
                 f"a window of k steps makes one update per window holding a query: "
                 f"up to {_count(most[k_lo])} updates for k = {k_lo}, "
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
