"""Gradient flow made measurable: how much of a gradient survives the trip back through time.

For a recurrent layer ``a_t = f(U x_t + W a_{t-1} + b)`` the gradient of a loss at the last step T
reaches step t through the product of the step Jacobians::

    dL_T/ds_t = J_{t+1}^T J_{t+2}^T ... J_T^T dL_T/ds_T,      J_k = ds_k/ds_{k-1}

where ``s_t`` is the state carried out of step t (``h_t``, or ``[h_t; c_t]`` for the LSTM). When the
norms of the ``J_k`` stay below 1 the product shrinks geometrically (vanishing gradients), above 1 it
grows (exploding gradients); Bengio, Simard & Frasconi (1994), Pascanu, Mikolov & Bengio (2013).
This module measures every piece of that picture:

======================================  ========================================================
:func:`gradient_through_time`           ``||dL_T/dh_t||`` (and ``||dL_T/dc_t||``) for t = T..1, of a
                                        loss on the last step's state only: pure propagation
:func:`gradient_through_time_of_loss`   ``||dL/dh_t||`` of a model's real loss, per recurrent layer
:func:`step_jacobians`                  the exact ``J_t`` per sequence and step, (B, T, S, S)
:func:`jacobian_norms`                  ``||J_t||_2`` per step
:func:`running_products`                ``||J_T ... J_{t+1}||_2``: the factor from step T back to t
:func:`weight_spectrum`                 spectral radius and largest singular value of ``W``
:func:`forget_gate_profile`             the LSTM's mean forget gate ``f_t`` per step
:class:`GradientMonitor`                per-parameter gradient norms and update/weight ratios
                                        during training (a :class:`~rnnlab.callbacks.Callback`)
:class:`GradientReport`                 every recurrent layer of a model labelled ``vanishing``,
                                        ``healthy`` or ``exploding``; :func:`diagnose` for a run
                                        directory, ``rnnlab diagnose RUN`` on the command line
======================================  ========================================================

Every probe works on a float64 copy of the layer or model (same weights, converted exactly), so the
user's module is left as it was (flags, gradients, tape, carried state) and a gradient that vanishes
to 1e-40 is measured rather than flushed to zero by float32. Arrays of one layer are in its
*processing order* (reversed time for ``go_backwards``), as ``Recurrent.grad_norms`` is.

The step Jacobians, in the notation of the cells (``s`` the logistic sigmoid)::

    Elman   dh_t/dh_{t-1} = diag(f'(z_t)) W                     f' from the output: 1 - a^2, a(1-a), 1[a > 0]
    LSTM    dc_t/dc_{t-1} = diag(f_t)                            (the cell path, the constant error carousel)
            dc_t/dh_{t-1} = diag(c_{t-1} s'(f)) W_f + diag(g_t s'(i)) W_i + diag(i_t phi'(g)) W_g
            dh_t/dc_{t-1} = diag(o_t (1 - tanh^2 c_t)) diag(f_t)
            dh_t/dh_{t-1} = diag(tanh(c_t) s'(o)) W_o + diag(o_t (1 - tanh^2 c_t)) dc_t/dh_{t-1}
    GRU     dh_t/dh_{t-1} = diag(z_t) + diag(1 - z_t) dn_t/dh_{t-1} + diag(h_{t-1} - n_t) dz_t/dh_{t-1}

so the LSTM's ``dc_t/dc_{t-1}`` is ``diag(f_t)`` plus nothing else: the mean forget gate along the
sequence is how fast the cell path forgets. :func:`step_jacobians` does not code these formulas
again: it obtains the Jacobians from the cells' own backward passes (and the tests compare them with
finite differences of the forward pass).
"""

from __future__ import annotations

import csv
import io
import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rnnlab._files import write_atomic
from rnnlab._validation import as_generator, check_mask, check_positive_int
from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.cells import LSTMCell
from rnnlab.nn.module import Module
from rnnlab.nn.recurrent import Recurrent
from rnnlab.training.callbacks import Callback

__all__ = ["VANISHING_BELOW", "EXPLODING_ABOVE", "LABELS", "GradientFlow", "gradient_through_time",
           "gradient_through_time_of_loss", "step_jacobians", "jacobian_norms", "running_products",
           "weight_spectrum", "forget_gate_profile", "GradientMonitor", "LayerGradient", "GradientReport",
           "classify", "gradient_report", "diagnose", "SPLITS"]

#: A layer is ``vanishing`` when the gradient reaching the first step of a sequence is less than this
#: fraction of the gradient at the last step (``||dL_T/dh_1|| / ||dL_T/dh_T||``). Reasoning: the
#: parameter gradient sums the contributions of every step, so at 1e-3 what the first steps
#: contribute weighs a thousandth of what the last ones do and is lost under the contributions of
#: nearby steps and the noise of minibatch estimates: a dependency spanning the sequence (the
#: adding and copy tasks of :mod:`rnnlab.synthetic`) is then learnt slowly if at all. It is far above
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


# =========================================================================== copies
def _check_recurrent(layer, function: str) -> Recurrent:
    if isinstance(layer, Bidirectional):
        raise TypeError(f"{function} takes one recurrent layer, got a Bidirectional, which holds two: pass "
                        "layer.forward_layer or layer.backward_layer (or use gradient_report for a whole model)")
    if not isinstance(layer, Recurrent):
        raise TypeError(f"{function} takes a recurrent layer (SimpleRNN, LSTM, GRU), got {type(layer).__name__}")
    if not layer.built:
        raise ValueError(f"layer ({type(layer).__name__}) has no weights yet: call it on data or build(input_shape) first")
    return layer


def _layer_copy(layer: Recurrent, **flags) -> Recurrent:
    """A float64 copy of ``layer`` with the same weights, ``stateful=False``, returning only its last output
    unless ``flags`` say otherwise; the initializers are irrelevant since the weights are copied."""
    config = layer.get_config()
    config.update(kernel_initializer="zeros", recurrent_initializer="zeros", bias_initializer="zeros", seed=None,
                  dtype="float64", return_sequences=False, return_state=False, stateful=False, name=None)
    config.update(flags)
    copy = type(layer).from_config(config)
    copy.set_weights(layer.params)
    return copy


def _as_float64(config):
    """``config`` with every ``"dtype"`` entry, at any depth, set to float64."""
    if isinstance(config, dict):
        return {k: "float64" if k == "dtype" else _as_float64(v) for k, v in config.items()}
    if isinstance(config, list):
        return [_as_float64(v) for v in config]
    return config


def _walk(module: Module, prefix: str = ""):
    yield prefix, module
    for name, child in module.children():
        yield from _walk(child, f"{prefix}.{name}" if prefix else name)


def _recurrent_layers(model: Module) -> list[tuple[str, Recurrent]]:
    """Every recurrent layer of ``model`` with its dotted name (the prefix of its parameters; a
    Bidirectional gives ``"<i>.forward"`` and ``"<i>.backward"``); ``"layer"`` for a bare layer."""
    return [(name or "layer", m) for name, m in _walk(model) if isinstance(m, Recurrent)]


def _traced_copy(model: Module) -> tuple[Module, dict[str, Recurrent], dict[str, tuple]]:
    """A float64 copy of ``model`` whose recurrent layers record the arguments of their last call.

    Returns ``(copy, layers, calls)``: ``layers`` maps dotted names to the copy's recurrent layers,
    ``calls`` fills with ``name -> (x, mask, initial_state)`` as the copy runs.
    """
    if not isinstance(model, Module):
        raise TypeError(f"model must be an rnnlab Module, got {type(model).__name__}")
    if not model.built:
        raise ValueError(f"model ({type(model).__name__}) has no weights yet: call it on data or build(input_shape) first")
    if not _recurrent_layers(model):
        raise ValueError(f"model ({type(model).__name__}) has no recurrent layer (SimpleRNN, LSTM, GRU) to diagnose")
    copy = type(model).from_config(_as_float64(model.get_config()))
    if not copy.built and getattr(model, "input_shape", None) is not None:
        copy.build(model.input_shape)
    copy.set_weights(model.params)
    layers = dict(_recurrent_layers(copy))
    calls: dict[str, tuple] = {}
    for name, layer in layers.items():
        def forward(x, mask=None, initial_state=None, training=False, *, _name=name, _forward=layer.forward):
            calls[_name] = (x, mask, initial_state)
            return _forward(x, mask=mask, initial_state=initial_state, training=training)
        layer.forward = forward  # an attribute of the private copy only
    return copy, layers, calls


@contextmanager
def _overflow_means_explosion(what: str):
    """Overflow raises, as a FloatingPointError saying what exploded."""
    try:
        with np.errstate(over="raise", invalid="raise"):
            yield
    except FloatingPointError as exc:
        raise FloatingPointError(f"{what} overflowed float64 ({exc}): its state or its gradient explodes") from None


def _finite_norms(layer: Recurrent, what: str) -> dict[str, np.ndarray]:
    """``layer.grad_norms``, checked finite (a norm is inf only when the gradient itself overflowed)."""
    if not all(np.isfinite(n).all() for n in layer.grad_norms.values()):
        raise FloatingPointError(f"{what}: the gradient norms overflowed float64 (a norm beyond about 1.8e308): "
                                 "the gradient explodes")
    return layer.grad_norms


def _processing_mask(layer: Recurrent, mask, B: int, T: int) -> np.ndarray:
    """(B, T) bool mask in ``layer``'s processing order (all True without a mask)."""
    m = check_mask(mask, B, T)
    if m is None:
        return np.ones((B, T), dtype=bool)
    return np.ascontiguousarray(m[:, ::-1]) if layer.go_backwards else m.copy()


# =========================================================================== gradient through time
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
    module notes): ``h[b, t] = ||dL_T/dh_t||`` shows propagation alone, with no loss from the
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


# =========================================================================== step Jacobians
def _state_list(initial_state, layer: Recurrent, B: int) -> list[np.ndarray]:
    if initial_state is None:
        return [np.zeros((B, layer.hidden_size)) for _ in layer.state_names]
    if isinstance(initial_state, np.ndarray):
        initial_state = [initial_state]
    return [np.asarray(s, dtype=np.float64) for s in initial_state]


def step_jacobians(layer: Recurrent, x, mask=None, *, initial_state=None) -> np.ndarray:
    """The exact Jacobians ``J_t = ds_t/ds_{t-1}`` of every step of every sequence.

    Parameters
    ----------
    layer : SimpleRNN, LSTM or GRU
        Not modified (the computation runs on float64 copies).
    x : ndarray, shape (B, T, D)
    mask : ndarray of bool, shape (B, T), optional
        Padded steps carry the state unchanged, so their Jacobian is the identity.
    initial_state : array or list of arrays, shape (B, H) each, optional

    Returns
    -------
    ndarray, shape (B, T, S, S), float64
        ``J[b, t, k, j] = d s_t[k] / d s_{t-1}[j]`` in processing order, with ``s_t`` the state carried
        out of step t: ``h_t`` (S = H) or, for the LSTM, ``[h_t; c_t]`` (S = 2H).

    Notes
    -----
    One forward pass gives the state carried into every step. Then every (sequence, step) is
    replicated S times into a single batch of B*T*S one-step calls, each starting from that state,
    and the backward pass of the call receives the S unit vectors ``e_k`` as the gradient of the
    state it returns: the gradient of its initial state is then row k of ``J_t``. All steps and
    units in one batched call, through the cells' own backward code. Memory: B*T*S*S floats for the
    result and about as much for the batched call, so this is meant for small H and T.
    """
    layer = _check_recurrent(layer, "step_jacobians")
    seq = _layer_copy(layer, return_sequences=True)
    seq(x, mask=mask, initial_state=initial_state)
    acts = seq.activations()  # (B, T, H) each, processing order, zeros on padding
    x = np.asarray(x, dtype=np.float64)
    x_proc = x[:, ::-1] if layer.go_backwards else x  # (B, T, D)
    B, T, D = x.shape
    H, names = layer.hidden_size, layer.state_names
    S = len(names) * H
    m = _processing_mask(layer, mask, B, T)  # (B, T)

    # the state carried into step t is the one carried out of the latest real step before t
    latest = np.maximum.accumulate(np.where(m, np.arange(T), -1), axis=1)  # (B, T)
    before = np.concatenate([np.full((B, 1), -1), latest[:, :-1]], axis=1)  # (B, T)
    started = (before >= 0)[:, :, None]  # (B, T, 1)
    idx = np.maximum(before, 0)[:, :, None]  # (B, T, 1)
    states_in = [np.where(started, np.take_along_axis(acts[n], idx, axis=1), s0[:, None, :])  # (B, T, H)
                 for n, s0 in zip(names, _state_list(initial_state, layer, B))]

    one = _layer_copy(layer, go_backwards=False, return_state=True)
    N = B * T * S
    one(np.repeat(x_proc.reshape(B * T, 1, D), S, axis=0),  # (N, 1, D)
        mask=np.repeat(m.reshape(B * T, 1), S, axis=0),  # (N, 1)
        initial_state=[np.repeat(s.reshape(B * T, H), S, axis=0) for s in states_in])  # (N, H) each
    seeds = np.tile(np.eye(S), (B * T, 1))  # (N, S): row (b, t, k) is e_k
    one.backward(np.zeros((N, H)), *(seeds[:, i * H:(i + 1) * H] for i in range(len(names))))
    J = np.concatenate(one.initial_state_grad, axis=1)  # (N, S): row k = d s_t[k] / d s_{t-1}
    return J.reshape(B, T, S, S)


def _check_jacobians(J) -> np.ndarray:
    if not isinstance(J, np.ndarray):
        raise TypeError(f"J must be a NumPy array of step Jacobians (B, T, S, S), got {type(J).__name__}")
    if J.ndim != 4 or J.shape[2] != J.shape[3] or 0 in J.shape:
        raise ValueError(f"J must have shape (B, T, S, S) with S > 0 (as step_jacobians returns), got {J.shape}")
    if not np.issubdtype(J.dtype, np.floating) or not np.isfinite(J).all():
        raise ValueError(f"J must hold finite floats, got dtype {J.dtype}"
                         + ("" if not np.issubdtype(J.dtype, np.floating) else " with NaN or inf"))
    return J


def jacobian_norms(J: np.ndarray) -> np.ndarray:
    """Spectral norms ``||J_t||_2`` (largest singular values) of step Jacobians (B, T, S, S); returns (B, T)."""
    return np.linalg.norm(_check_jacobians(J), ord=2, axis=(-2, -1))


def running_products(J: np.ndarray) -> np.ndarray:
    """``||J_T J_{T-1} ... J_{t+1}||_2`` for every t: the most a gradient at the last step can grow or
    shrink on its way back to step t. Returns (B, T); the last step's entry is ``||I|| = 1``.

    ``dL/ds_t = (J_T ... J_{t+1})^T dL/ds_T``, so ``||dL/ds_t|| <= running_products(J)[:, t] ||dL/ds_T||``,
    with equality for the worst direction. The products are built from the last step back,
    ``M_{t} = M_{t+1} J_{t+1}``, one batched matrix product per step.
    """
    J = _check_jacobians(J)
    B, T, S, _ = J.shape
    M = np.empty((T, B, S, S), dtype=np.float64)  # M[t] = J_T ... J_{t+1}, time-major for contiguous steps
    M[T - 1] = np.eye(S)
    J_tm = J.transpose(1, 0, 2, 3)  # (T, B, S, S) view
    for t in range(T - 2, -1, -1):
        np.matmul(M[t + 1], J_tm[t + 1], out=M[t])
    return np.linalg.norm(M, ord=2, axis=(-2, -1)).T.copy()  # (B, T)


# =========================================================================== weights and gates
def _spectrum(W: np.ndarray) -> dict:
    """Largest singular value, and spectral radius (largest |eigenvalue|) when W is square."""
    sigma = float(np.linalg.norm(W, ord=2))
    radius = float(np.abs(np.linalg.eigvals(W)).max()) if W.shape[0] == W.shape[1] else None
    return {"max_singular_value": sigma, "spectral_radius": radius}


def weight_spectrum(layer: Recurrent) -> dict:
    """Spectral radius and largest singular value of the recurrent weights ``W``, whole and per gate.

    Returns
    -------
    dict
        ``{"max_singular_value": s, "spectral_radius": r, "gates": {...}}``: ``s`` of the whole ``W``
        (G*H, H); ``r`` its spectral radius when it is square (the Elman cell), else None; ``gates``
        maps each gate (LSTM ``i, f, g, o``; GRU ``r, z, n``) to the same two numbers of its (H, H)
        block, empty for the Elman cell.

    Notes
    -----
    For the Elman cell ``||dh_t/dh_{t-1}|| <= max|f'| * s``, so ``s < 1`` with tanh guarantees
    vanishing, while ``r > 1`` is necessary for exploding (Pascanu et al. 2013). The GRU's ``n`` block
    multiplies ``r_t * h_{t-1}`` when ``reset_after=False``.
    """
    layer = _check_recurrent(layer, "weight_spectrum")
    W = np.asarray(layer.params["W"], dtype=np.float64)  # (G*H, H)
    H, gates = layer.hidden_size, layer.cell.gate_names
    out = _spectrum(W)
    out["gates"] = {} if len(gates) == 1 else {g: _spectrum(W[k * H:(k + 1) * H]) for k, g in enumerate(gates)}
    return out


def _forget_gates(layer: Recurrent, x, mask, initial_state) -> tuple[np.ndarray, np.ndarray]:
    layer = _check_recurrent(layer, "forget_gate_profile")
    if not isinstance(layer.cell, LSTMCell):
        raise TypeError(f"forget gates belong to the LSTM; got a {type(layer).__name__} (cell {type(layer.cell).__name__})")
    seq = _layer_copy(layer, return_sequences=True)
    seq(x, mask=mask, initial_state=initial_state)
    f = seq.activations()["f"]  # (B, T, H), zeros on padding
    return f, _processing_mask(layer, mask, f.shape[0], f.shape[1])


def forget_gate_profile(layer: Recurrent, x, mask=None, *, initial_state=None) -> np.ma.MaskedArray:
    """The LSTM's mean forget gate per step, over the sequences and the units; padding excluded.

    ``dc_t/dc_{t-1} = diag(f_t)`` on the cell path, so the product of the ``f_t`` along the sequence
    is how much of a cell gradient survives there: a mean of 0.73 (``s(1)``, forget bias 1) keeps
    2e-7 after 50 steps, 0.99 keeps 0.6.

    Parameters
    ----------
    layer : LSTM
        Not modified. Any other cell raises ``TypeError``.
    x : ndarray, shape (B, T, D)
    mask : ndarray of bool, shape (B, T), optional
    initial_state : (h, c), optional

    Returns
    -------
    numpy.ma.MaskedArray, shape (T,)
        Processing order; a step that is padding in every sequence is masked (it has no forget gate).
    """
    f, m = _forget_gates(layer, x, mask, initial_state)
    counts = m.sum(axis=0) * f.shape[2]  # (T,) real (sequence, unit) pairs per step
    mean = np.divide(f.sum(axis=(0, 2)), counts, out=np.zeros(f.shape[1]), where=counts > 0)
    return np.ma.masked_array(mean, mask=counts == 0)


# =========================================================================== during training
def _norm(a: np.ndarray) -> float:
    return float(np.sqrt(np.sum(np.square(a, dtype=np.float64))))


class GradientMonitor(Callback):
    """Record per-parameter gradient norms and update-to-weight ratios every ``every`` batches.

    Parameters
    ----------
    every : int >= 1
        Record after batches ``every, 2 * every, ...`` (counted over the whole run).

    Attributes
    ----------
    history : list of dict
        One row per record: ``step``, ``epoch`` (1-based), ``batch`` (within the epoch, 1-based),
        ``loss`` (the batch's), ``grad_norm`` (global), and per parameter ``grad_norm/<name>`` =
        ``||g||`` and ``update_ratio/<name>`` = ``||W_after - W_before|| / ||W_after||`` for the
        update(s) of that batch (0 when nothing moved, inf if the weight became exactly zero).

    Notes
    -----
    The gradients are those the optimizer applied, read at the end of the batch: after clipping
    (the trainer's ``grad_norm`` log, when clipping, is the norm before), and of the last update of
    the batch under truncated BPTT. There is no batch-begin hook, so the monitor copies the weights
    at the end of the batch *before* each recorded one (at the start of training when that is the
    first): the ratio is then exactly that of the recorded batch's update, the quantity whose rule
    of thumb is about 1e-3 (much smaller: the layer barely learns; much larger: it is unstable).
    The copy costs one model's worth of memory and one copy per ``every`` batches. The counter and
    the history are in ``state_dict()``, so a resumed run records exactly what an uninterrupted one
    would (a checkpoint is taken at a batch end, where the weights equal the copy it would have made).
    """

    def __init__(self, every: int = 1):
        self.every = check_positive_int("every", every)
        self.batches = 0
        self.history: list[dict] = []
        self._before: dict[str, np.ndarray] | None = None

    def _snapshot_if_next_is_recorded(self, model: Module) -> None:
        if (self.batches + 1) % self.every == 0:
            self._before = {name: p.copy() for name, p in model.named_parameters()}

    def on_train_begin(self, trainer) -> None:
        self._snapshot_if_next_is_recorded(trainer.model)

    def on_batch_end(self, trainer, logs: dict) -> None:
        self.batches += 1
        if self.batches % self.every == 0:
            self.history.append(self._record(trainer, logs))
        self._snapshot_if_next_is_recorded(trainer.model)

    def _record(self, trainer, logs: dict) -> dict:
        if self._before is None:
            raise ValueError("GradientMonitor records the weights at on_train_begin, which was not called; use it "
                             "through rnnlab.train.Trainer(callbacks=[...])")
        row = {"step": int(trainer.step), "epoch": int(trainer.epoch) + 1, "batch": int(trainer.batch),
               "loss": float(logs["loss"])}
        grads = dict(trainer.model.named_grads())
        norms = {name: _norm(g) for name, g in grads.items()}
        row["grad_norm"] = math.sqrt(sum(n * n for n in norms.values()))
        row.update((f"grad_norm/{name}", n) for name, n in norms.items())
        for name, p in trainer.model.named_parameters():
            delta = _norm(p - self._before[name])
            weight = _norm(p)
            row[f"update_ratio/{name}"] = delta / weight if weight > 0 else (0.0 if delta == 0 else math.inf)
        return row

    def to_csv(self, path) -> Path:
        """Write the history as CSV (one row per record, columns as in ``history``), atomically."""
        path = Path(path)
        columns = list(dict.fromkeys(k for row in self.history for k in row)) or [
            "step", "epoch", "batch", "loss", "grad_norm"]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in self.history:
            writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
        write_atomic(path, buf.getvalue().encode("utf-8"))
        return path

    def state_dict(self) -> dict:
        return {"batches": self.batches, "history": [dict(row) for row in self.history]}

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(state, dict) or set(state) != {"batches", "history"}:
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"GradientMonitor state must have keys batches, history; got {got}")
        self.batches = int(state["batches"])
        self.history = [dict(row) for row in state["history"]]


# =========================================================================== the report
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
        rows = [(l.name, l.cell, str(l.hidden_size), str(l.timesteps), _fmt(l.end_to_end), _fmt(l.decay_per_step),
                 _fmt(l.max_singular_value), _fmt(l.forget_gate), l.label) for l in self.layers]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        numeric = {2, 3, 4, 5, 6, 7}

        def line(cells):
            return "  ".join(c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

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


# =========================================================================== a run directory
SPLITS = ("train", "val", "test")


def _sample_batch(batches, batch_size: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """``(x, mask)`` of up to ``batch_size`` sequences of a split, chosen by ``seed``."""
    rng = np.random.default_rng(seed)
    if hasattr(batches, "x") and isinstance(batches.x, np.ndarray):  # ArrayBatches: samples in arrays
        N = batches.x.shape[0]
        idx = np.sort(rng.choice(N, size=min(batch_size, N), replace=False))
        mask = getattr(batches, "mask", None)
        return batches.x[idx], None if mask is None else mask[idx]
    if hasattr(batches, "ids") and hasattr(batches, "bptt"):  # LMStream: windows of the token stream
        ids = np.asarray(batches.ids)
        T = min(int(batches.bptt), len(ids))
        starts = rng.integers(0, len(ids) - T + 1, size=batch_size)
        return np.stack([ids[s:s + T] for s in starts]), None
    first = next(iter(batches.batches_from(0, 0)))  # any other Batches: its first batch
    mask = getattr(first, "mask", None)
    return first.x[:batch_size], None if mask is None else mask[:batch_size]


def diagnose(run_dir, *, data_dir=None, batch_size: int = 16, split: str = "val", seed: int = 0) -> GradientReport:
    """The :class:`GradientReport` of a trained run's model on ``batch_size`` sequences of its data.

    Parameters
    ----------
    run_dir : path
        A run directory written by ``rnnlab train`` (the final model, or the latest checkpoint's).
    data_dir : path, optional
        The data directory (``$RNNLAB_DATA`` by default); the synthetic tasks need none.
    batch_size : int
        Sequences to probe: drawn from the split by ``seed`` (windows of ``bptt`` tokens at random
        offsets for a language model).
    split : "train", "val" or "test"
    seed : int
        Of the sequences drawn and of the probe vectors.

    Raises
    ------
    rnnlab.tasks.RunError
        If ``run_dir`` is not a usable run, or its data has no such split.
    """
    from rnnlab.lab.tasks import RunError, build_task, load_run

    batch_size = check_positive_int("batch_size", batch_size)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(repr(s) for s in SPLITS)}; got {split!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    run = load_run(run_dir)
    task = build_task(run.config, data_dir, vocab=run.vocab, scaler=run.scaler)
    parts = task.splits()
    if split not in parts:
        raise RunError(f"this {run.config.data.task} run has no {split!r} part; it has {', '.join(parts)}")
    x, mask = _sample_batch(parts[split], batch_size, int(seed))
    if np.shape(x)[1] < 2:
        raise RunError(f"the {split!r} sequences of this run have {np.shape(x)[1]} step(s); gradient flow needs at least 2")
    report = gradient_report(run.model, x, mask, seed=int(seed))
    report.context = {"run": str(run.run_dir), "task": run.config.data.task, "split": split}
    return report
