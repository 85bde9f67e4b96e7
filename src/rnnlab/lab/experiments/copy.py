"""The ``copy`` experiment: the copy-memory task (Arjovsky et al. 2016), cross-entropy and recall against
training sequences for LSTM, chrono-initialised LSTM (``T_max`` = the delay T) and GRU, or the cells chosen,
against the memoryless baseline: its computation, findings, table and figure (the settings are
:class:`~rnnlab.lab.experiments._curves.CurveSettings`)."""

from __future__ import annotations

from rnnlab import optim
from rnnlab.data.synthetic import COPY_LENGTH, COPY_SYMBOLS, copy_memory, copy_memory_baseline
from rnnlab.lab.experiments._cells import CHRONO_CELLS, _label, make_recurrent
from rnnlab.lab.experiments._curves import CurveSettings, _curve_seeds, _draw_curves, _reached
from rnnlab.lab.experiments._loop import CurveCheckpoints, _learning_curve, _predict
from rnnlab.lab.experiments._report import _count, _pct
from rnnlab.nn import losses
from rnnlab.nn.layers import Dense, OneHot
from rnnlab.nn.sequential import Sequential
from rnnlab.training.distributed import spread_over_ranks, world

#: recall accuracy (on the 10 symbols to reproduce) that counts as solved
COPY_SOLVED_ACCURACY = 0.99


def _compute_copy(s: CurveSettings, seed: int, log, checkpoints: CurveCheckpoints | None = None) -> dict:
    """Adam on fresh batches of the copy-memory task; mean per-step cross-entropy and recall accuracy."""
    def one(T_cell):
        T, cell = T_cell
        train_rng, val_rng, weight_rng = _curve_seeds(seed, T)
        x_val, y_val = copy_memory(s.val_size, T, val_rng)
        classes = COPY_SYMBOLS + 2
        model = Sequential([OneHot(classes),
                            make_recurrent(cell, s.hidden_size, input_size=classes, seed=weight_rng, T_max=T,
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
                                stop_when_solved=s.stop_when_solved, log=log, label=f"copy {_label(cell)} T={T}",
                                checkpoints=checkpoints, rng=train_rng,
                                key=None if checkpoints is None else f"copy-{cell}-T{T}")
        below = [n for n, v in zip(curve["sequences"], curve["val_loss"]) if v < copy_memory_baseline(T)]
        return {"cell": cell, "label": _label(cell), "T": T, "chrono_T_max": T if cell in CHRONO_CELLS else None,
                "baseline": copy_memory_baseline(T), **curve,
                "best_val_loss": min(curve["val_loss"]), "best_recall_accuracy": max(curve["recall_accuracy"]),
                "below_baseline_at": below[0] if below else None}

    runs = spread_over_ranks(one, [(T, cell) for T in s.timesteps for cell in s.cells], world())
    return {"solved_accuracy": COPY_SOLVED_ACCURACY, "chance_accuracy": 1.0 / COPY_SYMBOLS, "runs": runs}


def _findings_copy(res: dict) -> list[str]:
    s = res["settings"]
    lines = []
    for T in s["timesteps"]:  # per T: which cells were solved, at how many sequences; the best recall of the others
        runs = [r for r in res["runs"] if r["T"] == T]
        solved = sorted((r for r in runs if r["solved_at"] is not None), key=lambda r: r["solved_at"])
        unsolved = [r for r in runs if r["solved_at"] is None]
        text = f"T = {T}: " + ("; ".join(f"{r['label']} after {_count(r['solved_at'])} sequences" for r in solved)
                               + " reached" if solved else "no cell reached")
        text += f" recall >= {_pct(res['solved_accuracy'])}"
        if unsolved:
            text += ("; not within the budget: " if solved else f" within {_count(s['max_sequences'])} sequences: ")
            text += ", ".join(f"{r['label']} (best recall {_pct(r['best_recall_accuracy'])})" for r in unsolved)
        lines.append(text + ".")
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
