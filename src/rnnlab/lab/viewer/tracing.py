"""Tracing: run a model over one sequence and keep every recurrent layer's activations
(:class:`LayerTrace`, :class:`Trace`, :func:`trace`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.functional import softmax
from rnnlab.nn.module import Module
from rnnlab.nn.recurrent import Recurrent
from rnnlab.nn.state import forward_with_states

__all__ = ["QUANTITIES", "LayerTrace", "Trace", "trace"]

#: every quantity a recurrent layer reports, in the order the page lists them
QUANTITIES = ("h", "c", "i", "f", "g", "o", "r", "z", "n")


@dataclass(frozen=True)
class LayerTrace:
    """One recurrent layer's (or one direction's) activations over a sequence.

    Attributes
    ----------
    name : str
        ``"layer 2"``, ``"layer 1 (forward)"``, ``"layer 1 (backward)"``: recurrent layers are
        numbered from 1 in the order the model applies them.
    path : str
        The dotted name of the module in the model (``"2"``, ``"1.forward"``), as in
        ``named_parameters()``.
    cell : str
        The layer's class name (``"LSTM"``, ``"GRU"``, ``"SimpleRNN"``).
    depth : int
        The layer's number (1 for the first recurrent layer).
    values : dict of str to ndarray, each (T, H), float64
        ``layer.activations()`` of the sequence in time order (a layer reading backwards is turned
        around): ``h``, ``c`` and the gates ``i, f, g, o`` (LSTM), ``h`` and ``r, z, n`` (GRU),
        ``h`` (SimpleRNN).
    """

    name: str
    path: str
    cell: str
    depth: int
    values: dict

    @property
    def units(self) -> int:
        """H, the number of units."""
        return next(iter(self.values.values())).shape[1]


@dataclass(frozen=True)
class Trace:
    """What :func:`trace` collects from one sequence of T steps.

    Attributes
    ----------
    layers : tuple of LayerTrace
        One per recurrent layer, two (forward, backward) per ``Bidirectional``, in model order.
    outputs : ndarray
        The model's output for the sequence: (T, K) for a many-to-many model, (K,) for a
        many-to-one one (the batch axis dropped).
    next_token_prob : ndarray of float64, shape (T - 1,), or None
        With ``next_token=True``: ``p_t = softmax(y_t)[x_{t+1}]``, the probability the model gave
        at step t to the token that actually follows.
    """

    layers: tuple
    outputs: np.ndarray
    next_token_prob: np.ndarray | None = None

    @property
    def steps(self) -> int:
        """T, the length of the traced sequence."""
        return self.layers[0].values["h"].shape[0]


def _recurrent_nodes(model: Module) -> list[tuple[str, Module]]:
    """``(dotted_path, module)`` of every Recurrent or Bidirectional inside ``model``, in order, but none
    inside another (a Bidirectional's two halves are reported through it)."""
    found = []
    for path, module in model.named_modules():  # parents before their children
        inside = any(outer == "" or path.startswith(f"{outer}.") for outer, _ in found)
        if isinstance(module, (Recurrent, Bidirectional)) and not inside:
            found.append((path, module))
    return found


def _check_finite(name: str, quantity: str, values: np.ndarray) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        t, u = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name}: {quantity} is not finite at step {t}, unit {u} ({values[t, u]}); "
                         "the model's weights or inputs hold NaN or inf, or the activations overflowed")


def trace(model: Module, inputs, *, next_token: bool = False) -> Trace:
    """Run ``model`` over one sequence and collect every recurrent layer's activations.

    Parameters
    ----------
    model : Module
        Any module holding recurrent layers, typically a ``Sequential`` of ``Embedding``/``OneHot``
        -> recurrent layers (plain, stacked or ``Bidirectional``) -> ``Dense``. It runs as built
        (a many-to-one model's last recurrent layer still reports every step), with
        ``training=False`` (no dropout) and zero initial states (an empty state map): the state a
        ``stateful`` layer carries is neither read nor changed.
    inputs : array_like
        One sequence: token ids (T,) of an integer dtype, or real values (T, F).
    next_token : bool
        The model is a language model: also compute, for every step but the last, the probability
        its output gives to the token that follows (needs ids, and outputs (T, V)).

    Returns
    -------
    Trace

    Raises
    ------
    TypeError
        If ``model`` is not a Module, or ``inputs`` are neither integer ids nor real values.
    ValueError
        If ``inputs`` are empty or of the wrong rank, the model holds no recurrent layer, an
        activation is not finite, or ``next_token`` is asked of a model that does not output (T, V).

    Notes
    -----
    For an Elman layer the trace holds ``h_t = a_t = f(U x_t + W a_{t-1} + b)``; for an LSTM also
    ``i, f, g, o`` (``[i; f; g; o] = [sigm; sigm; tanh; sigm](U x_t + W h_{t-1} + b)``),
    ``c_t = f_t * c_{t-1} + i_t * g_t`` and ``h_t = o_t * tanh(c_t)``; for a GRU ``r, z, n`` and
    ``h_t = (1 - z_t) * n_t + z_t * h_{t-1}``. With ``y_t = V h_t + c`` the output layer's logits,
    ``next_token_prob[t] = softmax(y_t)[x_{t+1}]``, t = 0 .. T-2.
    """
    if not isinstance(model, Module):
        raise TypeError(f"model must be an rnnlab Module (e.g. a Sequential), got {type(model).__name__}")
    if not isinstance(next_token, bool):
        raise TypeError(f"next_token must be a bool, got {type(next_token).__name__} {next_token!r}")
    x = np.asarray(inputs)
    if np.issubdtype(x.dtype, np.integer):
        if x.ndim != 1 or x.size == 0:
            raise ValueError(f"inputs of token ids must be a non-empty 1-D sequence (T,), got shape {x.shape}")
    elif np.issubdtype(x.dtype, np.floating):
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"inputs of real values must be a non-empty (T, F) array, got shape {x.shape}")
        if next_token:
            raise ValueError("next_token=True needs token ids as inputs (the next token is the next input), got "
                             f"real values of shape {x.shape}")
    else:
        raise TypeError(f"inputs must be token ids (an integer array (T,)) or real values (a float array (T, F)), "
                        f"got dtype {x.dtype}")
    nodes = _recurrent_nodes(model)
    if not nodes:
        raise ValueError(f"model ({type(model).__name__}) holds no recurrent layer (SimpleRNN, LSTM, GRU, "
                         "Bidirectional) to inspect")
    out, _ = forward_with_states(model, x[None], {})  # from zeros; a stateful layer keeps what it carries
    out = np.asarray(out[0] if isinstance(out, (tuple, list)) else out)[0]  # (T, K) or (K,)

    traced = []
    for depth, (path, node) in enumerate(nodes, start=1):
        if isinstance(node, Bidirectional):
            both = node.activations()  # both in time order
            parts = [(f"layer {depth} ({d})", f"{path}.{d}", both[d], getattr(node, f"{d}_layer")) for d in
                     ("forward", "backward")]
        else:
            acts = node.activations()  # processing order
            if node.go_backwards:
                acts = {k: v[:, ::-1] for k, v in acts.items()}
            parts = [(f"layer {depth}" + (" (reading backwards)" if node.go_backwards else ""), path, acts, node)]
        for name, where, acts, layer in parts:
            values = {}
            for q, v in acts.items():
                values[q] = np.array(v[0], dtype=np.float64)  # (T, H)
                _check_finite(name, q, values[q])
            traced.append(LayerTrace(name, where or "(model)", type(layer).__name__, depth, values))

    prob = None
    if next_token:
        T = x.shape[0]
        if out.ndim != 2 or out.shape[0] != T:
            raise ValueError(f"next_token=True needs a language model's per-step outputs (T, V) = ({T}, V), got shape "
                             f"{out.shape}")
        if x.max() >= out.shape[1]:
            raise ValueError(f"next_token=True: the ids reach {int(x.max())} but the model outputs {out.shape[1]} "
                             "classes per step")
        logits = out[:-1].astype(np.float64)  # (T-1, V)
        if not np.isfinite(logits).all():
            raise ValueError("next_token=True: the model's outputs are not finite")
        prob = softmax(logits)[np.arange(T - 1), x[1:]]  # (T-1,)
    return Trace(tuple(traced), out, prob)
