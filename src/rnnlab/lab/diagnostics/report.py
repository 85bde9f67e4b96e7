"""Every recurrent layer of a model labelled: the thresholds and :func:`classify`, :class:`LayerGradient`,
:class:`GradientReport` and :func:`gradient_report`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from rnnlab.lab.diagnostics.flow import gradient_through_time
from rnnlab.lab.diagnostics.probes import _overflow_means_explosion, _traced_copy
from rnnlab.lab.diagnostics.weights import _forget_gates, weight_spectrum
from rnnlab.nn.cells import LSTMCell
from rnnlab.nn.module import Module
from rnnlab.nn.recurrent import Recurrent

__all__ = ["VANISHING_BELOW", "EXPLODING_ABOVE", "LABELS", "classify", "LayerGradient", "GradientReport",
           "gradient_report"]

#: A layer is ``vanishing`` when the gradient reaching the first step of a sequence is less than this
#: fraction of the gradient at the last step (``||dL_T/dh_1|| / ||dL_T/dh_T||``). Reasoning: the
#: parameter gradient sums the contributions of every step, so at 1e-3 what the first steps
#: contribute weighs a thousandth of what the last ones do and is lost under the contributions of
#: nearby steps and the noise of minibatch estimates: a dependency spanning the sequence (the
#: adding and copy tasks of :mod:`rnnlab.data.synthetic`) is then learnt slowly if at all. It is far above
#: float precision (float32 resolves 6e-8 relative), so the label is about learning, not round-off.
#: The label belongs to the length probed: the same layer may be healthy over 20 steps and vanishing
#: over 200. Measured at initialisation over 50 steps of Gaussian or adding-task inputs: a tanh RNN
#: with orthogonal ``W`` 1e-4 to 2e-3, an LSTM with forget bias 1 about 5e-3, with forget bias 5
#: about 1, a GRU about 1e-7.
VANISHING_BELOW = 1e-3
#: A layer is ``exploding`` when that ratio exceeds this: the first steps then receive a thousand times
#: the gradient of the last, so a learning rate suited to the short-range terms is far too large for
#: the long-range ones and, without clipping, training diverges. Symmetric with
#: :data:`VANISHING_BELOW` in orders of magnitude.
EXPLODING_ABOVE = 1e3

#: The labels of :func:`classify`, from short memory to unstable.
LABELS = ("vanishing", "healthy", "exploding")


def classify(ratio: float) -> str:
    """``"vanishing"``, ``"healthy"`` or ``"exploding"`` for an end-to-end ratio ``||dL/dh_1|| / ||dL/dh_T||``.

    Below :data:`VANISHING_BELOW` vanishing, above :data:`EXPLODING_ABOVE` exploding, healthy between
    (both bounds included in healthy).
    """
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float, np.floating, np.integer)):
        raise TypeError(f"ratio must be a number, got {type(ratio).__name__} {ratio!r}")
    if math.isnan(ratio) or ratio < 0:
        raise ValueError(f"ratio must be a non-negative number, got {ratio}")
    if ratio < VANISHING_BELOW:
        return "vanishing"
    if ratio > EXPLODING_ABOVE:
        return "exploding"
    return "healthy"


@dataclass(frozen=True)
class LayerGradient:
    """One recurrent layer's line of a :class:`GradientReport`.

    Attributes
    ----------
    name : str
        Dotted name in the model (the prefix of its parameters).
    cell : str
        ``"LSTM"``, ``"GRU"`` or ``"SimpleRNN(tanh)"`` and the like.
    hidden_size : int
    timesteps : int
        The median number of real steps of the sequences probed.
    end_to_end, decay_per_step : float
        Of :func:`gradient_through_time` (inf when the layer overflowed float64).
    max_singular_value : float
        Of the whole ``W`` (:func:`weight_spectrum`).
    forget_gate : float or None
        LSTM: the mean forget gate over every real step, sequence and unit.
    label : str
        :func:`classify` of ``end_to_end``.
    """

    name: str
    cell: str
    hidden_size: int
    timesteps: int
    end_to_end: float
    decay_per_step: float
    max_singular_value: float
    forget_gate: float | None
    label: str


def _cell_name(layer: Recurrent) -> str:
    activation = getattr(layer.cell, "activation", None)
    return f"{type(layer).__name__}({activation})" if activation else type(layer).__name__


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3g}"


@dataclass
class GradientReport:
    """Every recurrent layer of a model, its gradient flow, and a label against documented thresholds.

    Build it with :func:`gradient_report` (a model and inputs) or :func:`diagnose` (a run directory).
    ``labels`` maps names to labels; :meth:`table` is what ``rnnlab diagnose`` prints.
    """

    layers: list[LayerGradient]
    batch_size: int
    context: dict = field(default_factory=dict)

    @property
    def labels(self) -> dict[str, str]:
        return {layer.name: layer.label for layer in self.layers}

    def table(self) -> str:
        """An aligned text table, one row per recurrent layer, with the thresholds below it."""
        header = ("layer", "cell", "H", "T", "|dL/dh_1|/|dL/dh_T|", "decay/step", "max sv(W)", "mean f", "label")
        rows = [(layer.name, layer.cell, str(layer.hidden_size), str(layer.timesteps), _fmt(layer.end_to_end),
                 _fmt(layer.decay_per_step), _fmt(layer.max_singular_value), _fmt(layer.forget_gate), layer.label)
                for layer in self.layers]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        numeric = {2, 3, 4, 5, 6, 7}

        def line(cells):
            return "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        out = []
        if self.context:
            out.append("  ".join(f"{k}: {v}" for k, v in self.context.items()))
        out += [line(header), line("-" * w for w in widths), *(line(r) for r in rows)]
        out.append(f"gradient of a loss on the last step, {self.batch_size} sequence(s), median over them; "
                   f"vanishing below {VANISHING_BELOW:g}, exploding above {EXPLODING_ABOVE:g}")
        return "\n".join(out)

    def to_dict(self) -> dict:
        return {"context": dict(self.context), "batch_size": self.batch_size,
                "thresholds": {"vanishing_below": VANISHING_BELOW, "exploding_above": EXPLODING_ABOVE},
                "layers": [asdict(layer) for layer in self.layers]}

    def __str__(self) -> str:
        return self.table()


def gradient_report(model: Module, x, mask=None, *, seed=0) -> GradientReport:
    """Probe every recurrent layer of ``model`` at the inputs ``x`` and label it.

    Each recurrent layer is probed with :func:`gradient_through_time` at the inputs it receives
    inside the model (the model runs once, in inference mode, on a float64 copy, from zero initial
    states); both directions of a Bidirectional layer are reported, ``"<i>.forward"`` and
    ``"<i>.backward"``. A layer whose probe overflows float64 is ``exploding`` with ratios inf.

    Parameters
    ----------
    model : Module
        A model or a single recurrent layer, not modified.
    x : ndarray
        The model's input, (B, T, D) values or (B, T) token ids; T >= 2.
    mask : ndarray of bool, shape (B, T), optional
    seed : int
        Of the probe vectors.

    Returns
    -------
    GradientReport

    Raises
    ------
    FloatingPointError
        If the model's forward pass itself overflows float64 at ``x`` (no layer can then be probed).
    """
    copy, layers, calls = _traced_copy(model)
    with _overflow_means_explosion("gradient_report: at these inputs the model's forward pass"):
        copy(x, mask=mask)
    lines = []
    for name, layer in layers.items():
        if name not in calls:
            continue
        x_in, mask_in, state_in = calls[name]
        try:
            flow = gradient_through_time(layer, x_in, mask_in, initial_state=state_in, seed=seed)
            ratio, decay = flow.end_to_end, flow.decay_per_step
            if ratio is None:
                raise ValueError(f"gradient_report needs sequences of at least 2 real steps; layer {name!r} got "
                                 f"inputs of shape {np.shape(x_in)} with at most {int(flow.mask.sum(axis=1).max())} "
                                 "real step(s) per sequence")
            steps = int(np.median(flow.mask.sum(axis=1)))
        except FloatingPointError:
            ratio = decay = math.inf
            steps = int(np.shape(x_in)[1]) if mask_in is None else int(np.median(np.sum(mask_in, axis=1)))
        forget = None
        if isinstance(layer.cell, LSTMCell):
            f, m = _forget_gates(layer, x_in, mask_in, state_in)
            forget = float(f[m].mean()) if m.any() else None
        lines.append(LayerGradient(name=name, cell=_cell_name(layer), hidden_size=layer.hidden_size, timesteps=steps,
                                   end_to_end=ratio, decay_per_step=decay,
                                   max_singular_value=weight_spectrum(layer)["max_singular_value"],
                                   forget_gate=forget, label=classify(ratio)))
    return GradientReport(lines, batch_size=int(np.shape(x)[0]))
