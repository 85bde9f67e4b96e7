"""Gradient norms through time: :class:`GradientFlow`, :func:`gradient_through_time` (a loss on the last
step's state only) and :func:`gradient_through_time_of_loss` (a model's real loss)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rnnlab._validation import as_generator
from rnnlab.lab.diagnostics.probes import (
    _check_recurrent,
    _finite_norms,
    _layer_copy,
    _overflow_means_explosion,
    _processing_mask,
    _traced_copy,
)
from rnnlab.nn.module import Module
from rnnlab.nn.recurrent import Recurrent

__all__ = ["GradientFlow", "gradient_through_time", "gradient_through_time_of_loss"]


@dataclass
class GradientFlow:
    """Gradient norms per sequence and step of one recurrent layer, with their summaries.

    Attributes
    ----------
    h : ndarray, shape (B, T)
        ``||dL/dh_t||`` per sequence and step, processing order, 0 on padded steps.
    c : ndarray, shape (B, T), or None
        LSTM only: ``||dL/dc_t||``, the ``dc_t`` of the LSTM backward equations (c_t's effect through
        ``h_t = o_t tanh(c_t)`` included), the quantity the forget gate carries back as
        ``dc_{t-1} = dc_t * f_t``; 0 on padded steps.
    mask : ndarray of bool, shape (B, T)
        The real steps, processing order.
    probe : ndarray, shape (B, H), or None
        For :func:`gradient_through_time`: the unit vector ``dL_T/dh_T`` given to each sequence.
    kind : "last_step" or "loss"
        A loss on the last step's state only (:func:`gradient_through_time`) or a model's real loss.
    mean_h, mean_c : ndarray, shape (T,)
        Batch means per step over the sequences whose step is real (0 where none is).
    end_to_end : float or None
        Median over the sequences of ``||dL/dh_first|| / ||dL/dh_last||``, first and last being each
        sequence's first and last real steps (so 1 step back is ``decay_per_step``, T - 1 steps back
        this). None when no sequence has two real steps and a non-zero gradient at its last one.
    decay_per_step : float or None
        Median over the sequences of that ratio raised to ``1 / (steps - 1)``: the geometric mean of
        the one-step ratios ``||dL/dh_{t-1}|| / ||dL/dh_t||``; < 1 shrinks, > 1 grows.

    Notes
    -----
    The median, not the mean, summarises the batch: the ratios span many orders of magnitude, and
    one sequence whose gradient dies (a ReLU pattern that zeroes it) should not decide for all.
    """

    h: np.ndarray
    c: np.ndarray | None
    mask: np.ndarray
    probe: np.ndarray | None = None
    kind: str = "last_step"
    mean_h: np.ndarray = field(init=False, repr=False)
    mean_c: np.ndarray | None = field(init=False, repr=False)
    end_to_end: float | None = field(init=False)
    decay_per_step: float | None = field(init=False)

    def __post_init__(self):
        self.mask = np.asarray(self.mask, dtype=bool)
        self.h = np.where(self.mask, self.h, 0.0)  # (B, T)
        self.c = None if self.c is None else np.where(self.mask, self.c, 0.0)  # (B, T)
        counts = self.mask.sum(axis=0)  # (T,)
        self.mean_h = _masked_mean(self.h, counts)
        self.mean_c = None if self.c is None else _masked_mean(self.c, counts)
        B, T = self.mask.shape
        steps = self.mask.sum(axis=1)  # (B,)
        first = self.mask.argmax(axis=1)  # (B,)
        last = T - 1 - self.mask[:, ::-1].argmax(axis=1)  # (B,)
        rows = np.arange(B)
        h_first, h_last = self.h[rows, first], self.h[rows, last]  # (B,)
        ok = (steps >= 2) & (h_last > 0)
        if not ok.any():
            self.end_to_end = self.decay_per_step = None
            return
        with np.errstate(over="ignore"):  # a ratio beyond 1e308 is inf: exploding, said plainly
            ratio = h_first[ok] / h_last[ok]  # (n,)
            decay = ratio ** (1.0 / (steps[ok] - 1))  # (n,)
        self.end_to_end = float(np.median(ratio))
        self.decay_per_step = float(np.median(decay))

    @property
    def timesteps(self) -> int:
        return int(self.mask.shape[1])

    def plot(self, ax=None):
        """Draw ``mean_h`` (and ``mean_c``) against the step on a log scale; returns the axes.

        Needs matplotlib (the ``plot`` extra). Without ``ax`` a new ``matplotlib.figure.Figure`` is made
        (``ax.figure.savefig(path)`` writes it).
        """
        if ax is None:
            try:
                from matplotlib.figure import Figure
            except ImportError:
                raise ImportError("GradientFlow.plot needs matplotlib: pip install 'rnnlab[plot]'") from None
            ax = Figure(figsize=(6, 4)).add_subplot()
        steps = np.arange(1, self.timesteps + 1)
        curves = [("||dL/dh_t||", self.mean_h, "-")]
        if self.mean_c is not None:
            curves.append(("||dL/dc_t||", self.mean_c, "--"))
        for label, values, style in curves:
            shown = values > 0  # a log axis cannot show 0 (steps without data, dead gradients)
            ax.plot(steps[shown], values[shown], style, label=label)
        ax.set_yscale("log")
        what = "loss on the last step" if self.kind == "last_step" else "loss"
        ax.set_xlabel("step t (processing order)")
        ax.set_ylabel(f"gradient norm, batch mean ({what})")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        return ax


def _masked_mean(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Column sums of ``values`` (B, T), zero on padding, divided by ``counts`` (T,); 0 where counts is 0."""
    return np.divide(values.sum(axis=0), counts, out=np.zeros(values.shape[1]), where=counts > 0)


def _unit_vectors(shape: tuple[int, int], seed) -> np.ndarray:
    """One random direction per row, ``||v_b|| = 1``, from ``seed``."""
    v = as_generator(seed).standard_normal(shape)  # (B, H)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def gradient_through_time(layer: Recurrent, x, mask=None, *, initial_state=None, seed=0) -> GradientFlow:
    """``||dL_T/dh_t||`` for every step t of a loss on the last step's state only.

    Parameters
    ----------
    layer : SimpleRNN, LSTM or GRU
        Used as it is: the probe runs on a float64 copy, so the layer's flags, gradients, tape and
        carried state are left unchanged. ``return_sequences`` is ignored: the gradient enters at the
        last step only.
    x : ndarray, shape (B, T, D)
    mask : ndarray of bool, shape (B, T), optional
    initial_state : array or list of arrays, shape (B, H) each, optional
        Zeros by default; pass ``layer.states`` to start where a stateful layer stands.
    seed : int or numpy.random.Generator
        Draws the probe vectors.

    Returns
    -------
    GradientFlow
        ``h[b, T-1] = 1`` at each sequence's last real step, and ``h[b, t]`` the norm that reaches
        step t; for an LSTM also ``c``.

    Raises
    ------
    FloatingPointError
        If the forward or backward pass overflows float64, or a gradient norm does (beyond about
        1.8e308): the state or the gradient explodes.

    Notes
    -----
    ``L_T = v . h_T`` with ``v`` a random unit vector per sequence (``probe``), so ``dL_T/dh_T = v``
    and, through the layer's own backward pass, ``dL_T/ds_t = J_{t+1}^T ... J_T^T [v; 0]`` (see the
    package notes): ``h[b, t] = ||dL_T/dh_t||`` shows propagation alone, with no loss from the
    intermediate steps mixed in. A random direction rather than a fixed one, so that no unit is
    favoured; one per sequence, so that the median over the batch averages over directions too.
    """
    layer = _check_recurrent(layer, "gradient_through_time")
    probe = _layer_copy(layer)
    probe.record_grad_norms = True
    what = f"gradient_through_time: the {type(layer).__name__}'s forward or backward pass"
    with _overflow_means_explosion(what):
        y = probe(x, mask=mask, initial_state=initial_state)  # (B, H)
        v = _unit_vectors(y.shape, seed)  # (B, H)
        probe.backward(v)
    norms = _finite_norms(probe, f"gradient_through_time ({type(layer).__name__})")
    B, T = norms["h"].shape
    return GradientFlow(h=norms["h"], c=norms.get("c"), mask=_processing_mask(layer, mask, B, T), probe=v,
                        kind="last_step")


def gradient_through_time_of_loss(model: Module, x, y, loss, mask=None) -> dict[str, GradientFlow]:
    """``||dL/dh_t||`` of a model's real loss, for each of its recurrent layers.

    Parameters
    ----------
    model : Module
        A model (``Sequential``, ...) or a single layer; used as it is (the computation runs on a
        float64 copy, so its gradients and state are not touched).
    x : ndarray
        The model's input: (B, T, D) values or (B, T) token ids.
    y : ndarray
        The targets, as ``loss`` takes them.
    loss : str or rnnlab.losses.Loss
        A name for ``rnnlab.losses.get`` or an instance (not modified).
    mask : ndarray of bool, shape (B, T), optional

    Returns
    -------
    dict of str -> GradientFlow
        By dotted layer name (``"0"``, ``"2.forward"``, ``"2.backward"``; ``"layer"`` for a bare
        layer), with ``kind="loss"``: the total gradient of the loss reaching each step, the local
        terms of a per-step loss included, so a ratio near 1 here does not mean the long-range part
        survives (:func:`gradient_through_time` isolates that).

    Raises
    ------
    FloatingPointError
        If the forward or backward pass, or a gradient norm, overflows float64.

    Notes
    -----
    The loss sees the model's output mask when it has one matching the output (as the trainer does).
    """
    from rnnlab.nn import losses

    loss_fn = losses.get(loss)
    loss_fn = type(loss_fn).from_config(loss_fn.get_config())  # a fresh instance: the caller's cache stays
    copy, layers, calls = _traced_copy(model)
    for layer in layers.values():
        layer.record_grad_norms = True
    with _overflow_means_explosion("gradient_through_time_of_loss: the model's forward pass"):
        y_pred = copy(x, mask=mask)
    if isinstance(y_pred, (list, tuple)):
        raise TypeError(f"the model returned a {type(y_pred).__name__}; gradient_through_time_of_loss needs one output "
                        "array (a model whose last layer has return_state=False)")
    out_mask = getattr(copy, "output_mask", None)
    if out_mask is not None and (y_pred.ndim < 2 or np.shape(out_mask) != y_pred.shape[:2]):
        out_mask = None
    with _overflow_means_explosion("gradient_through_time_of_loss: the loss or the model's backward pass"):
        loss_fn(y_pred, y, mask=out_mask)
        copy.backward(loss_fn.backward())
    flows = {}
    for name, layer in layers.items():
        if layer.grad_norms is None or name not in calls:
            continue  # a layer the model did not run
        norms = _finite_norms(layer, f"gradient_through_time_of_loss (layer {name!r})")
        B, T = norms["h"].shape
        flows[name] = GradientFlow(h=norms["h"], c=norms.get("c"), mask=_processing_mask(layer, calls[name][1], B, T),
                                   kind="loss")
    return flows
