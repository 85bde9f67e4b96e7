"""The ``adding`` experiment: the adding problem (Le et al. 2015) at several T, validation MSE against the
training sequences seen for RNN(tanh), IRNN, LSTM, chrono-initialised LSTM (``T_max = T``) and GRU, or the
cells chosen, against the 1/6 baseline: its computation, findings, table and figure (the settings are
:class:`~rnnlab.lab.experiments._curves.CurveSettings`)."""

from __future__ import annotations

import numpy as np

from rnnlab import optim
from rnnlab.data.synthetic import ADDING_BASELINE_MSE, ADDING_SOLVED_MSE, adding_problem
from rnnlab.lab.experiments._cells import CHRONO_CELLS, _label, make_recurrent
from rnnlab.lab.experiments._curves import CurveSettings, _curve_seeds, _draw_curves, _reached
from rnnlab.lab.experiments._loop import CurveCheckpoints, _learning_curve, _predict
from rnnlab.lab.experiments._report import _count
from rnnlab.nn import losses
from rnnlab.nn.layers import Dense
from rnnlab.nn.sequential import Sequential
from rnnlab.training.distributed import spread_over_ranks, world


def _compute_adding(s: CurveSettings, seed: int, log, checkpoints: CurveCheckpoints | None = None) -> dict:
    """Adam on fresh batches of the adding problem; validation MSE on a fixed set per T."""
    def one(T_cell):
        T, cell = T_cell
        train_rng, val_rng, weight_rng = _curve_seeds(seed, T)
        x_val, y_val = adding_problem(s.val_size, T, val_rng)
        model = Sequential([make_recurrent(cell, s.hidden_size, input_size=2, seed=weight_rng, T_max=T),
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
                                stop_when_solved=s.stop_when_solved, log=log, label=f"adding {_label(cell)} T={T}",
                                checkpoints=checkpoints, rng=train_rng,
                                key=None if checkpoints is None else f"adding-{cell}-T{T}")
        return {"cell": cell, "label": _label(cell), "T": T, "chrono_T_max": T if cell in CHRONO_CELLS else None,
                **curve, "best_val_mse": min(curve["val_mse"])}

    runs = spread_over_ranks(one, [(T, cell) for T in s.timesteps for cell in s.cells], world())
    return {"baseline_mse": ADDING_BASELINE_MSE, "solved_mse": ADDING_SOLVED_MSE, "runs": runs}


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


def _draw_adding(res: dict, mpl):
    return _draw_curves(res, mpl, metric="val_mse", ylabel="validation MSE", baseline=lambda T: res["baseline_mse"],
                        title="Adding problem", solved_line=res["solved_mse"], filename="adding_mse.png",
                        caption="Validation MSE against training sequences, log scale; dashed: the baseline 1/6 of "
                                "always predicting 1; dotted: the 0.01 'solved' line.")
