"""The LSTM cell."""

from __future__ import annotations

import numpy as np

from rnnlab.cells.base import Cell, Tape
from rnnlab.functional import get_activation, sigmoid, sigmoid_grad


class LSTMCell(Cell):
    """One step of the long short-term memory cell (Hochreiter & Schmidhuber 1997, with forget gate).

    Notes
    -----
    Gates stacked in PyTorch's order i, f, g, o (``g`` is the candidate ``c~_t``)::

        [i; f; g; o]_pre = U x_t + W h_{t-1} + b
        i_t = s(i_pre)   f_t = s(f_pre)   c~_t = g_t = phi(g_pre)   o_t = s(o_pre)
        c_t = f_t * c_{t-1} + i_t * c~_t
        h_t = o_t * tanh(c_t)

    with ``s`` the logistic sigmoid and ``phi`` tanh (default) or relu. Backward, with ``dh_t`` the total
    gradient reaching ``h_t`` and ``dc_next`` the one reaching ``c_t`` through ``c_{t+1}``::

        dc_t      = dc_next + dh_t * o_t * (1 - tanh^2 c_t)         (= dL/dc_t)
        do_pre    = dh_t * tanh(c_t) * o_t (1 - o_t)
        di_pre    = dc_t * g_t * i_t (1 - i_t)
        df_pre    = dc_t * c_{t-1} * f_t (1 - f_t)
        dg_pre    = dc_t * i_t * phi'(g_t)
        dc_{t-1}  = dc_t * f_t                                     (the cell path: dc_t/dc_{t-1} = f_t + ...)
        dh_{t-1}  = [di; df; dg; do]_pre W

    Shapes: ``U`` (4H, D), ``W`` (4H, H), ``b`` (4H,). PyTorch ``nn.LSTM``: ``U = weight_ih_l0``,
    ``W = weight_hh_l0``, ``b = bias_ih_l0 + bias_hh_l0`` (the two biases only ever appear summed).
    """

    gate_names = ("i", "f", "g", "o")
    state_names = ("h", "c")

    def __init__(self, hidden_size: int, candidate_activation: str = "tanh", forget_bias: float | None = 1.0):
        super().__init__(hidden_size)
        self.candidate_activation = candidate_activation
        self.phi, self.phi_grad = get_activation(candidate_activation, "candidate_activation")
        if forget_bias is not None:
            if isinstance(forget_bias, bool) or not isinstance(forget_bias, (int, float, np.integer, np.floating)):
                raise TypeError(f"forget_bias must be a number or None, got {type(forget_bias).__name__} {forget_bias!r}")
            forget_bias = float(forget_bias)
        self.forget_bias = forget_bias

    def init_params(self, input_size, rng, dtype, kernel_init, recurrent_init, bias_init):
        values = super().init_params(input_size, rng, dtype, kernel_init, recurrent_init, bias_init)
        if self.forget_bias is not None:
            H = self.hidden_size
            values["b"][H:2 * H] = self.forget_bias
        return values

    def allocate(self, T, B, X, states0):
        tape = super().allocate(T, B, X, states0)
        tape.extra["tanh_c"] = np.empty((T, B, self.hidden_size), dtype=X.dtype)  # (T, B, H)
        return tape

    def step(self, p, tape: Tape, t: int) -> None:
        H = self.hidden_size
        h, c = tape.states
        z = tape.gates[t]  # (B, 4H), holds U x_t + b
        z += h[t] @ p["W"].T
        sigmoid(z[:, :2 * H], out=z[:, :2 * H])  # i, f
        self.phi(z[:, 2 * H:3 * H], out=z[:, 2 * H:3 * H])  # g
        sigmoid(z[:, 3 * H:], out=z[:, 3 * H:])  # o
        i, f, g, o = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
        c_t = c[t + 1]  # (B, H)
        np.multiply(f, c[t], out=c_t)
        c_t += i * g
        tanh_c = tape.extra["tanh_c"][t]
        np.tanh(c_t, out=tanh_c)
        np.multiply(o, tanh_c, out=h[t + 1])

    def step_backward(self, p, tape: Tape, t: int, dstate):
        H = self.hidden_size
        dh, dc_next = dstate  # (B, H) each
        z = tape.gates[t]
        i, f, g, o = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
        tanh_c = tape.extra["tanh_c"][t]
        c_prev = tape.states[1][t]
        dz = tape.dgates[t]  # (B, 4H)
        di, df, dg, do = dz[:, :H], dz[:, H:2 * H], dz[:, 2 * H:3 * H], dz[:, 3 * H:]

        dc = 1.0 - tanh_c * tanh_c
        dc *= o
        dc *= dh
        dc += dc_next  # dL/dc_t
        if tape.grad_norms is not None:
            tape.grad_norms["c"][t] = np.sqrt(np.einsum("bh,bh->b", dc, dc))

        np.multiply(dh, tanh_c, out=do)
        do *= sigmoid_grad(o)
        np.multiply(dc, g, out=di)
        di *= sigmoid_grad(i)
        np.multiply(dc, c_prev, out=df)
        df *= sigmoid_grad(f)
        self.phi_grad(g, out=dg)
        dg *= dc
        dg *= i
        dc *= f  # dc_{t-1}
        return [dz @ p["W"], dc]

    def get_config(self):
        return {"candidate_activation": self.candidate_activation, "forget_bias": self.forget_bias}
