"""Recurrent layers: a cell run through time, forward and backward (BPTT), with masks and direction.

:class:`Recurrent` owns everything about time: the (batch, time) <-> time-major transposition, the
direction (``go_backwards``), masks, initial and carried (``stateful``) state, and the backward pass
through time. The cell (``rnnlab.nn.cells``) owns the maths of a single step. ``SimpleRNN``, ``LSTM`` and
``GRU`` bind a cell; :class:`Bidirectional` runs two independent layers, one reading each sequence
reversed.

Masks follow Keras: where ``mask[b, t]`` is 0 the state passes through step t unchanged, the output is
zero, and in the backward pass the gradient passes through unchanged, so a padded step changes
nothing, left or right padding alike. A batch row that is all padding outputs zeros and ends in its
initial state.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnnlab._validation import (
    as_float_array,
    as_generator,
    check_choice,
    check_features,
    check_mask,
    check_positive_int,
    check_rate,
    check_sequence_input,
    seed_config,
)
from rnnlab.nn.cells import ElmanCell, GRUCell, LSTMCell
from rnnlab.nn.cells.base import Cell, Workspace, resolve_initializers
from rnnlab.nn.functional import row_norms
from rnnlab.nn.grad_mode import NO_GRAD_MESSAGE, grad_enabled
from rnnlab.nn.initializers import chrono
from rnnlab.nn.initializers import to_config as init_to_config
from rnnlab.nn.module import Module

_NO_GRAD = object()  # the tape of a forward call under no_grad(): none


class Recurrent(Module):
    """Base of the recurrent layers: a :class:`~rnnlab.nn.cells.base.Cell` run over ``(batch, timesteps, features)``.

    Parameters
    ----------
    hidden_size : int
        H, the number of units (neurons) in the state.
    input_size : int, optional
        D; inferred from the first input when omitted.
    return_sequences : bool
        Return the outputs of every step, ``(B, T, H)``, instead of the last one, ``(B, H)``.
    return_state : bool
        Also return the final state: ``y, h`` (``y, h, c`` for the LSTM).
    go_backwards : bool
        Read each sequence from its end; the outputs come in processing order (as in Keras).
    stateful : bool
        The final state of a call is the initial state of the next until :meth:`reset_state`
        (gradients do not flow between calls: truncated BPTT). A call given a state map (below)
        neither reads nor updates the carried state.
    kernel_initializer, recurrent_initializer, bias_initializer : str or callable
        For ``U``, ``W`` and ``b``; see :mod:`rnnlab.nn.initializers`. ``"pytorch"`` for all three gives
        PyTorch's default ``U(-1/sqrt(H), 1/sqrt(H))``.
    dropout : float in [0, 1)
        Keras's ``dropout``: the fraction of the input features dropped in training, one mask per
        sequence (variational dropout), the same at every step.
    recurrent_dropout : float in [0, 1)
        Keras's ``recurrent_dropout``: the fraction of the units of ``h_{t-1}`` dropped where the
        recurrent kernel ``W`` reads it, one mask per sequence, the same at every step.
    weight_dropout : float in [0, 1)
        Weight drop (DropConnect on ``W``; Merity et al. 2018, AWD-LSTM): the fraction of the entries of
        the recurrent matrix dropped in training, one mask per call (per batch), shared by every
        sequence and step.
    seed : int or numpy.random.Generator, optional
        Source of the initial weights, then of the dropout masks.
    dtype : "float32" (default) or "float64"

    Notes
    -----
    BPTT: ``L = sum_t L_t`` and every parameter is shared across time, so ``dL/dW`` sums, over every
    step t, the step's local gradient ``dz_t^T a_{t-1}``, where ``dz_t`` already carries every path from
    later steps back to t (``da_{t-1} = dz_t W``). The backward loop computes only the ``dz_t`` and the
    state gradients; ``dU``, ``dW``, ``db`` and ``dx`` are one GEMM each over all steps afterwards.

    ``initial_state`` is a list of (B, H) arrays (``[h]``, ``[h, c]`` for the LSTM), or a state map
    ``{"": [h, ...]}`` (``{}`` for zeros; see :mod:`rnnlab.nn.state`). After every forward call,
    ``final_state`` holds the state after the last step, ``s_T``, a tuple of (B, H) arrays.

    A forward call keeps its tape (the time-major buffers, from the layer's workspace) for the backward
    call, whatever ``training`` says; the backward pass's own buffers are made by :meth:`backward`. Under
    :func:`rnnlab.nn.grad_mode.no_grad` the call keeps no tape: its outputs are the same, bit for bit,
    and :meth:`backward` and :meth:`activations` raise until a forward call outside it.

    Dropout (Gal & Ghahramani 2016, as Keras 3 applies it) is active only in a call with
    ``training=True``. Such a call draws, from the layer's generator, ``m_x`` (B, D) and ``m_h``
    (B, H), entries ``Bernoulli(1 - rate) / (1 - rate)`` (inverted scaling), and every step reads
    ``x_t * m_x`` in place of ``x_t`` and ``h_{t-1} * m_h`` in every product with ``W`` (one mask
    for all gates); the state carried to the next step (``c_{t-1}``, and the GRU's ``z_t * h_{t-1}``)
    is not masked. So the input projection stays one GEMM over the masked ``X``, and backward is
    exact: ``dx_t = (dz_t U) * m_x``, ``dh_{t-1} += (dz_t W) * m_h``, ``dW = sum_t dz_t^T (h_{t-1} * m_h)``.
    Each forward call draws new masks: one per sequence of the call, so a ``stateful`` layer under
    truncated BPTT uses a fresh mask per window. The reversed layer of a ``Bidirectional`` draws its
    own. With both rates 0 (the default) the layer does no extra work.

    Weight drop draws ``M`` (G*H, H) per training call and runs the call with ``W * M``: backward
    runs with the same matrix, and ``dW = M * sum_t dz_t^T h_{t-1}`` (exact).

    ``bias_initializer="chrono:T_MAX"`` is the chrono initialisation of the LSTM's forget and input
    gates and of the GRU's update gate (Tallec & Ollivier 2018; see :mod:`rnnlab.nn.initializers`);
    on an LSTM it replaces ``forget_bias``.

    After :meth:`backward`, ``initial_state_grad`` holds the gradient of the initial state(s), and, if
    ``record_grad_norms`` is True, ``grad_norms["h"]`` (and ``["c"]`` for the LSTM) holds
    ``||dL/dh_t||`` per sequence and step, shape (B, T), in processing order.
    """

    cell_class: type[Cell] = Cell
    takes_state_map = True

    def __init__(self, hidden_size: int, *, input_size: int | None = None, return_sequences: bool = False,
                 return_state: bool = False, go_backwards: bool = False, stateful: bool = False,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 dropout: float = 0.0, recurrent_dropout: float = 0.0, weight_dropout: float = 0.0,
                 seed=None, dtype="float32", name: str | None = None, **cell_kwargs):
        super().__init__(dtype=dtype, name=name)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.input_size = None if input_size is None else check_positive_int("input_size", input_size)
        for flag, value in (("return_sequences", return_sequences), ("return_state", return_state),
                            ("go_backwards", go_backwards), ("stateful", stateful)):
            if not isinstance(value, bool):
                raise TypeError(f"{flag} must be a bool, got {value!r}")
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = go_backwards
        self.stateful = stateful
        self.dropout = check_rate("dropout", dropout)
        self.recurrent_dropout = check_rate("recurrent_dropout", recurrent_dropout)
        self.weight_dropout = check_rate("weight_dropout", weight_dropout)
        self._init_specs = (kernel_initializer, recurrent_initializer, bias_initializer)
        self._inits = resolve_initializers(*self._init_specs)
        self.seed = seed
        self._rng = as_generator(seed)
        self.cell = self.cell_class(self.hidden_size, **cell_kwargs)
        if isinstance(self._inits[2], chrono) and not self.cell.takes_chrono:
            raise ValueError(f"bias_initializer {self._init_specs[2]!r}: the chrono initialisation sets the gate "
                             f"biases of an LSTM or GRU; {type(self).__name__} has no gates")
        self.record_grad_norms = False
        self.grad_norms: dict[str, np.ndarray] | None = None
        self.initial_state_grad: tuple[np.ndarray, ...] | None = None
        self.final_state: tuple[np.ndarray, ...] | None = None
        self._tape = None
        self._workspace = Workspace()  # the tape's big buffers, reused from call to call
        self._state: list[np.ndarray] | None = None
        if self.input_size is not None:
            self.build((None, None, self.input_size))

    # ------------------------------------------------------------------ building
    def build(self, input_shape) -> None:
        D = check_features(type(self).__name__, input_shape)
        if self.built:
            if D != self.input_size:
                raise ValueError(f"{type(self).__name__} was built for input_size={self.input_size}, "
                                 f"got input with {D} features")
            return
        self.input_size = D
        for key, value in self.cell.init_params(D, self._rng, self.dtype, *self._inits).items():
            self.add_param(key, value)
        self.built = True

    def output_shape(self, input_shape):
        B, T = input_shape[0], input_shape[1]
        return (B, T, self.hidden_size) if self.return_sequences else (B, self.hidden_size)

    def compute_mask(self, mask, x=None):
        return mask if self.return_sequences else None

    @property
    def state_names(self) -> tuple[str, ...]:
        return self.cell.state_names

    # ------------------------------------------------------------------ state
    def initial_state(self, batch: int) -> list[np.ndarray]:
        """Zeros, one (B, H) array per state tensor."""
        return [np.zeros((batch, self.hidden_size), dtype=self.dtype) for _ in self.state_names]

    def reset_state(self) -> None:
        """Forget the carried state of a ``stateful`` layer."""
        self._state = None

    @property
    def states(self) -> tuple[np.ndarray, ...] | None:
        """The carried state of a ``stateful`` layer (None before the first call or after reset).

        Assigning a tuple of (B, H) arrays (or None) sets it, e.g. to restore a checkpoint or to rewind
        truncated BPTT; the arrays are copied.
        """
        return None if self._state is None else tuple(s.copy() for s in self._state)

    @states.setter
    def states(self, value) -> None:
        if value is None:
            self._state = None
            return
        batch = np.shape(value[0])[0] if isinstance(value, (list, tuple)) and len(value) else 0
        self._state = [s.copy() for s in self._initial_states(list(value), batch, "states")]

    def _initial_states(self, initial_state, batch: int, argument: str = "initial_state",
                        carried: bool = True) -> list[np.ndarray]:
        n = len(self.state_names)
        if initial_state is None:
            if carried and self.stateful and self._state is not None:
                if self._state[0].shape[0] != batch:
                    raise ValueError(f"a stateful {type(self).__name__} carries state for batch size "
                                     f"{self._state[0].shape[0]}, got a batch of {batch}; call reset_state() first")
                return [s.copy() for s in self._state]
            return self.initial_state(batch)
        if isinstance(initial_state, np.ndarray):
            initial_state = [initial_state]
        if not isinstance(initial_state, (list, tuple)) or len(initial_state) != n:
            got = (f"{len(initial_state)} arrays" if isinstance(initial_state, (list, tuple))
                   else type(initial_state).__name__)
            raise ValueError(f"{argument} must be {n} array(s) ({', '.join(self.state_names)}) of shape "
                             f"(batch, hidden_size) = {(batch, self.hidden_size)}, got {got}")
        states = []
        for name, s in zip(self.state_names, initial_state):
            s = as_float_array(f"{argument} ({name})", s, self.dtype)
            if s.shape != (batch, self.hidden_size):
                raise ValueError(f"{argument} ({name}) must have shape (batch, hidden_size) = "
                                 f"{(batch, self.hidden_size)}, got {s.shape}")
            states.append(s)
        return states

    # ------------------------------------------------------------------ forward
    def forward(self, x, mask=None, initial_state=None, training: bool = False):
        """Run the layer over ``x`` (B, T, D); see the class docstring for what comes back."""
        x = check_sequence_input("x", x, self.dtype, self.input_size)
        B, T, D = x.shape
        self.build(x.shape)
        mask = check_mask(mask, B, T)
        explicit = isinstance(initial_state, Mapping)  # a state map: the carried state is left alone
        if explicit:
            unknown = sorted(str(k) for k in initial_state if k != "")
            if unknown:
                raise ValueError(f"initial_state must be {len(self.state_names)} array(s) "
                                 f"({', '.join(self.state_names)}) of shape (batch, hidden_size) = "
                                 f"{(B, self.hidden_size)}, or a state map whose one entry '' (the layer itself) "
                                 f"holds them; got dict with keys {unknown}")
            initial_state = initial_state.get("")
        states0 = self._initial_states(initial_state, B, carried=not explicit)
        p = self._params

        x_tm = x.transpose(1, 0, 2)  # (T, B, D)
        if self.go_backwards:
            x_tm = x_tm[::-1]
        X = self._workspace.empty("X", (T, B, D), self.dtype)  # (T, B, D)
        np.copyto(X, x_tm)
        m_x = m_h = M_W = None
        if training and (self.dropout or self.recurrent_dropout or self.weight_dropout):
            self.dropout_masks = {}
            if self.weight_dropout:
                M_W = self._dropout_mask("weight", p["W"].shape, self.weight_dropout, self._rng, self.dtype)
                p = dict(p, W=p["W"] * M_W)  # (G*H, H): this call's W
            if self.dropout:
                m_x = self._dropout_mask("input", (B, D), self.dropout, self._rng, self.dtype)  # (B, D)
                X *= m_x
            if self.recurrent_dropout:
                m_h = self._dropout_mask("recurrent", (B, self.hidden_size), self.recurrent_dropout, self._rng,
                                         self.dtype)  # (B, H)
        tape = self.cell.allocate(T, B, X, states0, self._workspace)
        tape.input_mask, tape.recurrent_mask = m_x, m_h
        if M_W is not None:
            tape.weight_mask, tape.W_dropped = M_W, p["W"]
        if mask is not None:
            m = mask.T[::-1] if self.go_backwards else mask.T
            tape.mask = np.ascontiguousarray(m)[:, :, None]  # (T, B, 1)
        self.cell.input_projection(p, tape)

        if tape.mask is not None:
            step_has_data, step_all_data = tape.mask.any(axis=(1, 2)), tape.mask.all(axis=(1, 2))  # (T,)
            padded = ~tape.mask  # (T, B, 1)
        for t in range(T):
            if tape.mask is None:
                self.cell.step(p, tape, t)
                continue
            if step_has_data[t]:  # a step that is padding for the whole batch costs nothing
                self.cell.step(p, tape, t)
                if not step_all_data[t]:
                    for s in tape.states:
                        np.copyto(s[t + 1], s[t], where=padded[t])
            else:
                for s in tape.states:
                    s[t + 1] = s[t]
                self.cell.skip_step(tape, t)

        self._tape = tape if grad_enabled() else _NO_GRAD  # under no_grad(): nothing kept for a backward call
        h = tape.states[0]
        if self.return_sequences:
            y = h[1:].transpose(1, 0, 2).copy()  # (B, T, H)
            if tape.mask is not None:
                y *= tape.mask.transpose(1, 0, 2)
        else:
            y = h[T].copy()  # (B, H)
            if tape.mask is not None:
                y *= tape.mask.any(axis=0)  # a row that is all padding has no last output: zeros
        final = [s[T].copy() for s in tape.states]
        self.final_state = tuple(final)
        if self.stateful and not explicit:
            self._state = [s.copy() for s in final]
        return (y, *final) if self.return_state else y

    def activations(self) -> dict[str, np.ndarray]:
        """What the last forward call computed inside the layer, by name, each (B, T, H), in processing order.

        The states carried out of every step (``"h"``; ``"h"`` and ``"c"`` for the LSTM) and the gate
        activations: LSTM ``"i", "f", "g", "o"`` (``c_t = f_t*c_{t-1} + i_t*g_t``, ``h_t = o_t*tanh(c_t)``),
        GRU ``"r", "z", "n"`` (``h_t = (1 - z_t)*n_t + z_t*h_{t-1}``); an Elman layer's only activation
        is its state ``a_t = f(U x_t + W a_{t-1} + b)``. Padded steps hold zeros. The arrays are copies.
        """
        if self._tape is None:
            raise ValueError(f"{type(self).__name__}.activations() needs a forward call first")
        if self._tape is _NO_GRAD:
            raise ValueError(f"{type(self).__name__}.activations(): {NO_GRAD_MESSAGE}")
        tape, H = self._tape, self.hidden_size
        named = {name: s[1:] for name, s in zip(self.state_names, tape.states)}  # (T, B, H) each
        if not np.shares_memory(tape.gates, tape.states[0]):  # the Elman cell's gate is its state
            named.update((g, tape.gates[:, :, k * H:(k + 1) * H]) for k, g in enumerate(self.cell.gate_names))
        if tape.mask is None:
            return {k: v.transpose(1, 0, 2).copy() for k, v in named.items()}
        # where(), not a product: a step that is padding for the whole batch never ran and holds garbage
        return {k: np.where(tape.mask, v, 0).transpose(1, 0, 2).copy() for k, v in named.items()}

    # ------------------------------------------------------------------ backward
    def backward(self, dy, *d_states, input_grad: bool = True):
        """BPTT for the last forward call; returns ``dL/dx`` (B, T, D) and adds into ``grads``.

        ``dy`` is the gradient of the output; with ``return_state``, the gradients of the returned
        states may follow (``None`` for any that is zero). ``input_grad=False`` skips the GEMM
        ``dx_t = dz_t U`` and returns None (the parameter and initial-state gradients are unchanged).
        """
        if self._tape is _NO_GRAD:
            raise ValueError(f"{type(self).__name__}.backward: {NO_GRAD_MESSAGE}")
        tape = self._need_tape(self._tape)
        T, B, _ = tape.X.shape
        H, n = self.hidden_size, len(self.state_names)
        out_shape = (B, T, H) if self.return_sequences else (B, H)
        dy = as_float_array("dy", dy, self.dtype)
        if dy.shape != out_shape:
            raise ValueError(f"dy must have the output's shape {out_shape}, got {dy.shape}")
        if len(d_states) > n:
            raise ValueError(f"backward takes at most {n} state gradient(s) ({', '.join(self.state_names)}), "
                             f"got {len(d_states)}")

        dstate = []
        for i, name in enumerate(self.state_names):
            ds = np.zeros((B, H), dtype=self.dtype)
            if i < len(d_states) and d_states[i] is not None:
                given = as_float_array(f"d_states ({name})", d_states[i], self.dtype)
                if given.shape != (B, H):
                    raise ValueError(f"the gradient of state {name} must have shape {(B, H)}, got {given.shape}")
                ds += given
            dstate.append(ds)
        dY = None
        if self.return_sequences:
            dY = dy.transpose(1, 0, 2)  # (T, B, H)
            if tape.mask is not None:
                dY = dY * tape.mask
        else:
            dstate[0] += dy if tape.mask is None else dy * tape.mask.any(axis=0)

        tape.dgates = tape.buffer("dgates", tape.gates.shape)  # (T, B, G*H)
        tape.grad_norms = None
        if self.record_grad_norms:
            tape.grad_norms = {name: np.zeros((T, B)) for name in self.state_names}  # float64: no overflow
        self.cell.prepare_backward(tape)
        p, grads = self._params, self._grads
        if tape.weight_mask is not None:  # the call ran with W * M: so does its backward pass
            p = dict(p, W=tape.W_dropped)
            grads = dict(grads, W=np.zeros_like(grads["W"]))
        if tape.mask is not None:
            step_has_data, step_all_data = tape.mask.any(axis=(1, 2)), tape.mask.all(axis=(1, 2))  # (T,)
            keep = tape.mask.astype(self.dtype)  # (T, B, 1)
            pad = 1.0 - keep
            carried = [np.empty((B, H), dtype=self.dtype) for _ in dstate]
            padded_rows = ~tape.mask[:, :, 0]  # (T, B)
        # unmasked and unrecorded: the cell adds dy[:, t] within its own pass over the step
        dy_folded = None
        if dY is not None and tape.mask is None and tape.grad_norms is None:
            dy_folded = np.ascontiguousarray(dy)  # (B, T, H)
        for t in reversed(range(T)):
            if dy_folded is not None:
                dstate = self.cell.step_backward(p, tape, t, dstate, dy_folded)
                continue
            if dY is not None:
                dstate[0] += dY[t]
            if tape.grad_norms is not None:
                tape.grad_norms["h"][t] = row_norms(dstate[0])
            if tape.mask is None:
                dstate = self.cell.step_backward(p, tape, t, dstate)
                continue
            if not step_has_data[t]:
                self.cell.skip_step_backward(tape, t)
                if tape.grad_norms is not None:  # the carried states' gradients pass unchanged
                    for name, d in zip(self.state_names[1:], dstate[1:]):
                        tape.grad_norms[name][t] = row_norms(d)
                continue
            if step_all_data[t]:
                dstate = self.cell.step_backward(p, tape, t, dstate)
                continue
            # dstate = step_backward(m * d) + (1 - m) * d: the padded rows pass the step unchanged
            for d, c in zip(dstate, carried):
                np.multiply(d, pad[t], out=c)
                d *= keep[t]
            dstate = self.cell.step_backward(p, tape, t, dstate)
            for d, c in zip(dstate, carried):
                d += c
            if tape.grad_norms is not None:  # the cell recorded the data rows; the padded ones carried
                for name, c in zip(self.state_names[1:], carried[1:]):
                    np.copyto(tape.grad_norms[name][t], row_norms(c), where=padded_rows[t])

        self.cell.accumulate_grads(p, grads, tape)
        if tape.weight_mask is not None:
            self._grads["W"] += grads["W"] * tape.weight_mask  # dW = M * dW'
        self.initial_state_grad = tuple(dstate)
        if tape.grad_norms is not None:
            self.grad_norms = {k: v.T.copy() for k, v in tape.grad_norms.items()}
        if not input_grad:
            return None
        dx = self.cell.input_grad(p, tape)  # (T, B, D), processing order
        if tape.input_mask is not None:
            dx *= tape.input_mask
        if self.go_backwards:
            dx = dx[::-1]
        return np.ascontiguousarray(dx.transpose(1, 0, 2))

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict:
        config = {
            "hidden_size": self.hidden_size,
            "input_size": self.input_size,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "kernel_initializer": init_to_config(self._init_specs[0]),
            "recurrent_initializer": init_to_config(self._init_specs[1]),
            "bias_initializer": init_to_config(self._init_specs[2]),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "weight_dropout": self.weight_dropout,
            "seed": seed_config(self.seed),
        }
        config.update(self.cell.get_config())
        config.update(super().get_config())
        return config


class SimpleRNN(Recurrent):
    """The vanilla (Elman) RNN: ``a_t = f(U x_t + W a_{t-1} + b)``.

    ``activation`` is one of ``"tanh"`` (default), ``"relu"``, ``"sigmoid"``, ``"linear"``. Parameters
    ``U`` (H, D), ``W`` (H, H), ``b`` (H,): ``H*D + H*H + H`` in all. See
    :class:`~rnnlab.nn.cells.elman.ElmanCell` for the backward equations and the PyTorch name map, and
    :class:`Recurrent` for the arguments shared by every recurrent layer.
    """

    cell_class = ElmanCell

    def __init__(self, hidden_size: int, activation: str = "tanh", **kwargs):
        super().__init__(hidden_size, activation=activation, **kwargs)


class LSTM(Recurrent):
    """Long short-term memory: gates i, f, g, o (PyTorch's order), ``c_t = f_t*c_{t-1} + i_t*c~_t``,
    ``h_t = o_t*tanh(c_t)``.

    ``candidate_activation`` is tanh (default) or relu, for ``c~_t``. ``forget_bias`` (default 1.0, as
    Jozefowicz et al. 2015 advise) is the initial value of the forget-gate bias; None keeps what
    ``bias_initializer`` drew. Parameters ``U`` (4H, D), ``W`` (4H, H), ``b`` (4H,). See
    :class:`~rnnlab.nn.cells.lstm.LSTMCell` for the equations and :class:`Recurrent` for the rest.
    """

    cell_class = LSTMCell

    def __init__(self, hidden_size: int, candidate_activation: str = "tanh", forget_bias: float | None = 1.0, **kwargs):
        super().__init__(hidden_size, candidate_activation=candidate_activation, forget_bias=forget_bias, **kwargs)


class GRU(Recurrent):
    """Gated recurrent unit: gates r, z, n (PyTorch's order), ``h_t = (1 - z_t)*n_t + z_t*h_{t-1}``.

    ``reset_after=True`` (default) is PyTorch's/cuDNN's form ``n = tanh(W_in x + b_in + r*(W_hn h + b_hn))``
    with a separate ``b_hn``; ``reset_after=False`` is the original ``n = tanh(W_in x + W_hn (r*h) + b_n)``.
    See :class:`~rnnlab.nn.cells.gru.GRUCell` for the equations and :class:`Recurrent` for the rest.
    """

    cell_class = GRUCell

    def __init__(self, hidden_size: int, reset_after: bool = True, **kwargs):
        super().__init__(hidden_size, reset_after=reset_after, **kwargs)


#: the recurrent layers by the name that run configurations, tasks, the demos and the experiments use
RECURRENT: dict[str, type[Recurrent]] = {"rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}


def recurrent_class(name: str) -> type[Recurrent]:
    """The layer class of a cell name of :data:`RECURRENT` (``"lstm"`` -> :class:`LSTM`)."""
    return RECURRENT[check_choice("cell", name, tuple(RECURRENT))]
