"""Recurrent layers: a cell run through time, forward and backward (BPTT), with masks and direction.

:class:`Recurrent` owns everything about time: the (batch, time) <-> time-major transposition, the
direction (``go_backwards``), masks, initial and carried (``stateful``) state, and the backward pass
through time. The cell (``rnnlab.cells``) owns the maths of a single step. ``SimpleRNN``, ``LSTM`` and
``GRU`` bind a cell; :class:`Bidirectional` runs two independent layers, one reading each sequence
reversed.

Masks follow Keras: where ``mask[b, t]`` is 0 the state passes through step t unchanged, the output is
zero, and in the backward pass the gradient passes through unchanged, so a padded step changes
nothing, left or right padding alike. A batch row that is all padding outputs zeros and ends in its
initial state.
"""

from __future__ import annotations

import numpy as np

from rnnlab._validation import as_float_array, check_choice, check_mask, check_positive_int, check_sequence_input
from rnnlab.cells import ElmanCell, GRUCell, LSTMCell
from rnnlab.cells.base import Cell, Workspace, resolve_initializers
from rnnlab.functional import row_norms
from rnnlab.initializers import to_config as init_to_config
from rnnlab.module import Module


def seed_config(seed) -> int | None:
    """The JSON form of a ``seed`` argument: the integer, or None for a Generator or no seed."""
    return int(seed) if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) else None


def as_generator(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)):
        return np.random.default_rng(seed)
    raise TypeError(f"seed must be an int, a numpy.random.Generator or None, got {type(seed).__name__} {seed!r}")


class Recurrent(Module):
    """Base of the recurrent layers: a :class:`~rnnlab.cells.base.Cell` run over ``(batch, timesteps, features)``.

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
        (gradients do not flow between calls: truncated BPTT).
    kernel_initializer, recurrent_initializer, bias_initializer : str or callable
        For ``U``, ``W`` and ``b``; see :mod:`rnnlab.initializers`. ``"pytorch"`` for all three gives
        PyTorch's default ``U(-1/sqrt(H), 1/sqrt(H))``.
    seed : int or numpy.random.Generator, optional
        Source of the initial weights.
    dtype : "float32" (default) or "float64"

    Notes
    -----
    BPTT: ``L = sum_t L_t`` and every parameter is shared across time, so ``dL/dW`` sums, over every
    step t, the step's local gradient ``dz_t^T a_{t-1}``, where ``dz_t`` already carries every path from
    later steps back to t (``da_{t-1} = dz_t W``). The backward loop computes only the ``dz_t`` and the
    state gradients; ``dU``, ``dW``, ``db`` and ``dx`` are one GEMM each over all steps afterwards.

    After :meth:`backward`, ``initial_state_grad`` holds the gradient of the initial state(s), and, if
    ``record_grad_norms`` is True, ``grad_norms["h"]`` (and ``["c"]`` for the LSTM) holds
    ``||dL/dh_t||`` per sequence and step, shape (B, T), in processing order.
    """

    cell_class: type[Cell] = Cell

    def __init__(self, hidden_size: int, *, input_size: int | None = None, return_sequences: bool = False,
                 return_state: bool = False, go_backwards: bool = False, stateful: bool = False,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
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
        self._init_specs = (kernel_initializer, recurrent_initializer, bias_initializer)
        self._inits = resolve_initializers(*self._init_specs)
        self.seed = seed
        self._rng = as_generator(seed)
        self.cell = self.cell_class(self.hidden_size, **cell_kwargs)
        self.record_grad_norms = False
        self.grad_norms: dict[str, np.ndarray] | None = None
        self.initial_state_grad: tuple[np.ndarray, ...] | None = None
        self._tape = None
        self._workspace = Workspace()  # the tape's big buffers, reused from call to call
        self._state: list[np.ndarray] | None = None
        if self.input_size is not None:
            self.build((None, None, self.input_size))

    # ------------------------------------------------------------------ building
    def build(self, input_shape) -> None:
        D = check_positive_int("input_size", input_shape[-1])
        if self.built:
            if D != self.input_size:
                raise ValueError(f"{type(self).__name__} was built for input_size={self.input_size}, got input with {D} features")
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

    def _initial_states(self, initial_state, batch: int, argument: str = "initial_state") -> list[np.ndarray]:
        n = len(self.state_names)
        if initial_state is None:
            if self.stateful and self._state is not None:
                if self._state[0].shape[0] != batch:
                    raise ValueError(f"a stateful {type(self).__name__} carries state for batch size "
                                     f"{self._state[0].shape[0]}, got a batch of {batch}; call reset_state() first")
                return [s.copy() for s in self._state]
            return self.initial_state(batch)
        if isinstance(initial_state, np.ndarray):
            initial_state = [initial_state]
        if not isinstance(initial_state, (list, tuple)) or len(initial_state) != n:
            got = f"{len(initial_state)} arrays" if isinstance(initial_state, (list, tuple)) else type(initial_state).__name__
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
        states0 = self._initial_states(initial_state, B)
        p = self._params

        x_tm = x.transpose(1, 0, 2)  # (T, B, D)
        if self.go_backwards:
            x_tm = x_tm[::-1]
        X = self._workspace.empty("X", (T, B, D), self.dtype)  # (T, B, D)
        np.copyto(X, x_tm)
        tape = self.cell.allocate(T, B, X, states0, self._workspace)
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

        self._tape = tape
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
        if self.stateful:
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
        tape = self._need_tape(self._tape)
        T, B, _ = tape.X.shape
        H, n = self.hidden_size, len(self.state_names)
        out_shape = (B, T, H) if self.return_sequences else (B, H)
        dy = as_float_array("dy", dy, self.dtype)
        if dy.shape != out_shape:
            raise ValueError(f"dy must have the output's shape {out_shape}, got {dy.shape}")
        if len(d_states) > n:
            raise ValueError(f"backward takes at most {n} state gradient(s) ({', '.join(self.state_names)}), got {len(d_states)}")

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
        self.cell.prepare_backward(tape)
        tape.grad_norms = None
        if self.record_grad_norms:
            tape.grad_norms = {name: np.zeros((T, B)) for name in self.state_names}  # float64: no overflow
        p = self._params
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

        self.cell.accumulate_grads(p, self._grads, tape)
        self.initial_state_grad = tuple(dstate)
        if tape.grad_norms is not None:
            self.grad_norms = {k: v.T.copy() for k, v in tape.grad_norms.items()}
        if not input_grad:
            return None
        dx = self.cell.input_grad(p, tape)  # (T, B, D), processing order
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
            "seed": seed_config(self.seed),
        }
        config.update(self.cell.get_config())
        config.update(super().get_config())
        return config


class SimpleRNN(Recurrent):
    """The vanilla (Elman) RNN: ``a_t = f(U x_t + W a_{t-1} + b)``.

    ``activation`` is one of ``"tanh"`` (default), ``"relu"``, ``"sigmoid"``, ``"linear"``. Parameters
    ``U`` (H, D), ``W`` (H, H), ``b`` (H,): ``H*D + H*H + H`` in all. See
    :class:`~rnnlab.cells.elman.ElmanCell` for the backward equations and the PyTorch name map, and
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
    :class:`~rnnlab.cells.lstm.LSTMCell` for the equations and :class:`Recurrent` for the rest.
    """

    cell_class = LSTMCell

    def __init__(self, hidden_size: int, candidate_activation: str = "tanh", forget_bias: float | None = 1.0, **kwargs):
        super().__init__(hidden_size, candidate_activation=candidate_activation, forget_bias=forget_bias, **kwargs)


class GRU(Recurrent):
    """Gated recurrent unit: gates r, z, n (PyTorch's order), ``h_t = (1 - z_t)*n_t + z_t*h_{t-1}``.

    ``reset_after=True`` (default) is PyTorch's/cuDNN's form ``n = tanh(W_in x + b_in + r*(W_hn h + b_hn))``
    with a separate ``b_hn``; ``reset_after=False`` is the original ``n = tanh(W_in x + W_hn (r*h) + b_n)``.
    See :class:`~rnnlab.cells.gru.GRUCell` for the equations and :class:`Recurrent` for the rest.
    """

    cell_class = GRUCell

    def __init__(self, hidden_size: int, reset_after: bool = True, **kwargs):
        super().__init__(hidden_size, reset_after=reset_after, **kwargs)


# ---------------------------------------------------------------------- bidirectional
def _concat_backward(dy, y_f, y_b):
    H = y_f.shape[-1]
    return dy[..., :H], dy[..., H:]


MERGE_MODES = {
    # name: (merge(y_f, y_b), split(dy, y_f, y_b) -> (dy_f, dy_b), output size from H)
    "concat": (lambda f, b: np.concatenate([f, b], axis=-1), _concat_backward, lambda H: 2 * H),
    "sum": (lambda f, b: f + b, lambda dy, f, b: (dy, dy), lambda H: H),
    "mul": (lambda f, b: f * b, lambda dy, f, b: (dy * b, dy * f), lambda H: H),
    "ave": (lambda f, b: 0.5 * (f + b), lambda dy, f, b: (0.5 * dy, 0.5 * dy), lambda H: H),
    None: (lambda f, b: [f, b], lambda dy, f, b: tuple(dy), lambda H: H),
}


class Bidirectional(Module):
    """Two independent recurrent layers over the same input, one reading each sequence reversed.

    The backward layer is a fresh copy of ``layer`` (same configuration, its own weights) with
    ``go_backwards`` flipped; its outputs are put back in time order before merging, so step t of the
    result sees the whole sequence. With a mask the backward layer passes over the padding first and
    starts each sequence from its own last valid step, exactly as PyTorch's packed sequences do.

    Parameters
    ----------
    layer : Recurrent
        The forward layer (its ``return_sequences``, ``return_state``, ``stateful`` apply to both).
    merge_mode : "concat" (default), "sum", "mul", "ave" or None
        How the two outputs are combined per step; None returns them as a list ``[y_f, y_b]``.

    With ``return_state`` the call returns ``y, *states_f, *states_b``; ``initial_state`` takes the
    forward states then the backward ones. Parameters are named ``forward.*`` and ``backward.*``.
    """

    def __init__(self, layer: Recurrent, merge_mode: str | None = "concat", *, name: str | None = None):
        if not isinstance(layer, Recurrent):
            raise TypeError(f"layer must be a recurrent layer (SimpleRNN, LSTM, GRU), got {type(layer).__name__}")
        check_choice("merge_mode", merge_mode, MERGE_MODES)
        super().__init__(dtype=layer.dtype, name=name)
        self.merge_mode = merge_mode
        self.forward_layer = layer
        config = layer.get_config()
        config["go_backwards"] = not layer.go_backwards
        config["seed"] = layer._rng  # draws after the forward layer: independent weights, one seed
        self.backward_layer = type(layer).from_config(config)
        self._cache = None
        self.initial_state_grad = None
        self.built = layer.built

    def children(self):
        return [("forward", self.forward_layer), ("backward", self.backward_layer)]

    def build(self, input_shape):
        self.forward_layer.build(input_shape)
        self.backward_layer.build(input_shape)
        self.built = True

    @property
    def return_sequences(self):
        return self.forward_layer.return_sequences

    @property
    def return_state(self):
        return self.forward_layer.return_state

    def output_shape(self, input_shape):
        shape = self.forward_layer.output_shape(input_shape)
        return shape[:-1] + (MERGE_MODES[self.merge_mode][2](shape[-1]),)

    def compute_mask(self, mask, x=None):
        return self.forward_layer.compute_mask(mask, x)

    def reset_state(self):
        self.forward_layer.reset_state()
        self.backward_layer.reset_state()

    def forward(self, x, mask=None, initial_state=None, training: bool = False):
        n = len(self.forward_layer.state_names)
        init_f = init_b = None
        if initial_state is not None:
            if not isinstance(initial_state, (list, tuple)) or len(initial_state) != 2 * n:
                got = (f"{len(initial_state)} arrays" if isinstance(initial_state, (list, tuple))
                       else f"a {type(initial_state).__name__}")
                raise ValueError(f"initial_state of a Bidirectional layer must be {2 * n} arrays (the forward "
                                 f"layer's states, then the backward layer's), got {got}")
            init_f, init_b = list(initial_state[:n]), list(initial_state[n:])
        out_f = self.forward_layer(x, mask=mask, initial_state=init_f, training=training)
        out_b = self.backward_layer(x, mask=mask, initial_state=init_b, training=training)
        states = []
        if self.return_state:
            (y_f, *s_f), (y_b, *s_b) = out_f, out_b
            states = s_f + s_b
        else:
            y_f, y_b = out_f, out_b
        if self.return_sequences:
            y_b = y_b[:, ::-1]  # back to time order
        self.built = True
        self._cache = (y_f, y_b)
        y = MERGE_MODES[self.merge_mode][0](y_f, y_b)
        return (y, *states) if self.return_state else y

    def activations(self) -> dict[str, dict[str, np.ndarray]]:
        """``{"forward": ..., "backward": ...}``: each direction's :meth:`Recurrent.activations`, both in
        the input's time order (the backward layer's are reversed back from its processing order)."""
        backward = {k: v[:, ::-1].copy() for k, v in self.backward_layer.activations().items()}
        return {"forward": self.forward_layer.activations(), "backward": backward}

    def backward(self, dy, *d_states, input_grad: bool = True):
        y_f, y_b = self._need_tape(self._cache)
        if self.merge_mode is None:
            if not isinstance(dy, (list, tuple)) or len(dy) != 2:
                raise ValueError("with merge_mode=None, dy must be a pair [dy_forward, dy_backward]")
        else:
            dy = as_float_array("dy", dy, self.dtype)
            expected = y_f.shape[:-1] + (MERGE_MODES[self.merge_mode][2](y_f.shape[-1]),)
            if dy.shape != expected:
                raise ValueError(f"dy must have the output's shape {expected}, got {dy.shape}")
        dy_f, dy_b = MERGE_MODES[self.merge_mode][1](dy, y_f, y_b)
        if self.return_sequences:
            dy_b = np.asarray(dy_b)[:, ::-1]
        n = len(self.forward_layer.state_names)
        d_states = list(d_states) + [None] * (2 * n - len(d_states))
        dx = self.forward_layer.backward(dy_f, *d_states[:n], input_grad=input_grad)
        dx_b = self.backward_layer.backward(dy_b, *d_states[n:2 * n], input_grad=input_grad)
        self.initial_state_grad = self.forward_layer.initial_state_grad + self.backward_layer.initial_state_grad
        if not input_grad:
            return None
        dx += dx_b
        return dx

    def get_config(self):
        return {"layer": {"class_name": type(self.forward_layer).__name__, "config": self.forward_layer.get_config()},
                "merge_mode": self.merge_mode, "name": self.name}

    @classmethod
    def from_config(cls, config):
        from rnnlab.module import registered

        config = dict(config)
        inner = config.pop("layer")
        layer = registered(inner["class_name"]).from_config(inner["config"])
        return cls(layer, **config)


def stack(layer_class: type[Recurrent], hidden_size: int, num_layers: int = 1, *, bidirectional: bool = False,
          merge_mode: str | None = "concat", dropout: float = 0.0, return_sequences: bool = True, seed=None, **kwargs):
    """A ``num_layers``-deep stack of one recurrent layer type, as ``torch.nn.LSTM(num_layers=...)`` builds.

    Every layer but the last returns sequences; ``return_sequences`` applies to the last. With
    ``dropout > 0`` a :class:`~rnnlab.layers.Dropout` sits between consecutive layers (not after the
    last), as in PyTorch. ``kwargs`` go to every layer (``input_size`` only to the first).

    Returns
    -------
    Sequential
    """
    from rnnlab.layers import Dropout
    from rnnlab.models import Sequential

    if not (isinstance(layer_class, type) and issubclass(layer_class, Recurrent)):
        raise TypeError(f"layer_class must be SimpleRNN, LSTM, GRU or another Recurrent subclass, got {layer_class!r}")
    num_layers = check_positive_int("num_layers", num_layers)
    rng = as_generator(seed)
    input_size = kwargs.pop("input_size", None)
    layers = []
    for i in range(num_layers):
        last = i == num_layers - 1
        layer = layer_class(hidden_size, input_size=input_size if i == 0 else None,
                            return_sequences=return_sequences if last else True, seed=rng, **kwargs)
        layers.append(Bidirectional(layer, merge_mode) if bidirectional else layer)
        if dropout and not last:
            layers.append(Dropout(dropout, seed=rng, dtype=layer.dtype))
    return Sequential(layers)
