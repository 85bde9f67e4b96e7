"""The ``exploding`` experiment: one IRNN trained twice on the same data with plain SGD, without and with
gradient clipping, recording the loss and the gradient norm (before clipping) per step: its settings,
computation, findings, table and figure."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rnnlab import optim
from rnnlab._errors import NonFiniteError
from rnnlab.data.synthetic import ADDING_BASELINE_MSE, adding_problem
from rnnlab.lab.experiments._cells import make_recurrent
from rnnlab.lab.experiments._loop import _Diverged
from rnnlab.lab.experiments._report import _positive, _sci
from rnnlab.nn import losses
from rnnlab.nn.layers import Dense
from rnnlab.nn.sequential import Sequential
from rnnlab.training.distributed import spread_over_ranks, world


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


def _gradient(model, loss_fn, x, y, mask=None) -> tuple[float, float]:
    """Forward, loss and backward with float errors raised; returns ``(loss, ||grad||)`` (before clipping).

    This experiment looks at the gradient before it decides to update (a step beyond its bounds is
    recorded, not taken), so it splits the library's training step in two: this half and :func:`_update`.

    The gradients are left in ``model.grads`` (zeroed first). A float overflow or invalid operation,
    a NaN or inf in a gradient, or a gradient norm beyond the float64 range, raises :class:`_Diverged`;
    the weights are untouched. The norm is :func:`rnnlab.optim.global_norm`'s, the one ``clip_grad_norm``
    clips by.
    """
    model.zero_grad()
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            out = model(x, training=True)
            value = float(loss_fn(out, y, mask=mask))
            model.backward(loss_fn.backward(), input_grad=False)
    except FloatingPointError as exc:
        raise _Diverged(f"a float overflowed or became invalid ({exc})") from None
    try:
        norm = optim.global_norm(model.named_grads())
    except NonFiniteError:  # a NaN or inf in a gradient: a divergence to report, not an error
        norm = math.inf
    if not math.isfinite(norm):  # also finite gradients whose norm is beyond the float64 range
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

    def one(job: tuple[str, float | None]) -> dict:
        key, clip = job
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
        result = {"clip_norm": clip, "loss": loss_curve, "grad_norm": norm_curve, "steps": len(loss_curve),
                     "stopped": stop, "overflowed": overflowed,
                     "peak_grad_norm": max(norm_curve) if norm_curve else None,
                     "first_loss": loss_curve[0] if loss_curve else None,
                     "last_loss": loss_curve[-1] if loss_curve else None,
                     "min_loss": min(loss_curve) if loss_curve else None,
                     "clipped_steps": sum(1 for n in norm_curve if clip is not None and n > clip)}
        log(f"exploding: {key}: {len(loss_curve)} steps" + (f", stopped at step {stop['step']}: {stop['reason']}"
                                                            if stop else ""))
        return result

    jobs = [("unclipped", None), ("clipped", s.clip_norm)]  # independent runs: on several MPI ranks, one each
    return {"baseline_mse": ADDING_BASELINE_MSE,
            "runs": dict(zip([key for key, _ in jobs], spread_over_ranks(one, jobs, world())))}


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
