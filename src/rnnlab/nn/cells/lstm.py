"""The LSTM cell."""

from __future__ import annotations

import numpy as np

from rnnlab.nn.cells.base import Cell, Tape
from rnnlab.nn.functional import get_activation, row_norms, sigmoid


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

    Implementation: with numba (:mod:`rnnlab.kernels`), everything after a step's GEMM is one fused
    kernel, forward and backward. On the NumPy path over more than one step with a tanh candidate,
    the loop multiplies by copies of ``U``, ``W``, ``b`` whose i, f, o rows are halved (exact in binary
    floating point), so a single ``tanh`` over the contiguous (B, 4H) pre-activations yields
    ``tanh(x/2)`` on i, f, o and ``tanh(x)`` on g, and ``s(x) = tanh(x/2)/2 + 1/2`` finishes the
    sigmoids: the same numbers as :func:`rnnlab.functional.sigmoid`, in fewer passes. The tape keeps
    ``c_t`` but not ``tanh(c_t)``, which the backward step recomputes (cheaper than reading a copy
    back from memory). Per-step products go into preallocated scratch (``np.matmul(..., out=)``);
    the backward loop alternates two (dh, dc) buffer pairs.

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

    # ------------------------------------------------------------------ forward
    def kernel_step(self, tape: Tape) -> bool:
        return tape.fused is not None and self.candidate_activation == "tanh"

    def _halved(self, tape: Tape) -> bool:
        """The NumPy path's one ``tanh`` call for all four gates: for a tanh candidate, over more than
        one step (the halved weight copies cost about one step's GEMM, so a single step skips it)."""
        return not self.kernel_step(tape) and self.candidate_activation == "tanh" and tape.X.shape[0] > 1

    def _gate_scale(self, dtype) -> np.ndarray:
        """(4H,) 1/2 on the sigmoid rows (i, f, o), 1 on the candidate's: ``s(x) = (1 + tanh(x/2)) / 2``."""
        H = self.hidden_size
        scale = np.full(4 * H, 0.5, dtype=dtype)
        scale[2 * H:3 * H] = 1.0
        return scale

    def allocate(self, T, B, X, states0, workspace=None):
        tape = super().allocate(T, B, X, states0, workspace)
        H, dtype = self.hidden_size, X.dtype
        tape.extra["zh"] = np.empty((B, 4 * H), dtype=dtype)  # (B, 4H) scratch: h_{t-1} W^T
        tape.extra["ig"] = np.empty((B, H), dtype=dtype)  # (B, H) scratch: i_t * g_t, then tanh(c_t)
        return tape

    def input_projection(self, p, tape: Tape) -> None:
        """As the base class; on the NumPy path over several steps, with the sigmoid rows of ``U``,
        ``b`` and ``W^T`` halved.

        Halving is exact in binary floating point, so ``x (U/2)^T + b/2`` is bit for bit half of
        ``x U^T + b`` and one ``tanh`` over the whole (B, 4H) row gives every gate: ``tanh(x/2)`` on
        i, f, o (turned into ``s(x)`` by ``y/2 + 1/2``) and ``tanh(x)`` on g. (The fused kernel
        halves inside its one pass instead.)
        """
        if not self._halved(tape):
            return super().input_projection(p, tape)
        T, B, D = tape.X.shape
        scale = self._gate_scale(tape.X.dtype)
        U_half = p["U"] * scale[:, None]  # (4H, D)
        np.matmul(tape.X.reshape(T * B, D), U_half.T, out=tape.gates.reshape(T * B, -1))
        tape.gates += p["b"] * scale
        W_T = self.recurrent_weight(p, tape)  # (H, 4H): a copy, or a view of the parameter itself
        tape.extra["W_T"] = W_T * scale if np.shares_memory(W_T, p["W"]) else np.multiply(W_T, scale, out=W_T)
        return None

    def step(self, p, tape: Tape, t: int) -> None:
        H = self.hidden_size
        h, c = tape.states
        z = tape.gates[t]  # (B, 4H), holds U x_t (+ b on the NumPy path; sigmoid rows halved there)
        zh = tape.extra["zh"]
        np.matmul(h[t], tape.extra["W_T"], out=zh)
        if self.kernel_step(tape):  # the rest in one kernel: bias, gates, c_t, tanh(c_t), h_t
            tape.fused.lstm_forward(z, zh, p["b"], c[t], c[t + 1], h[t + 1])
            return
        z += zh
        if self._halved(tape):
            np.tanh(z, out=z)  # tanh(pre/2) on i, f, o; tanh(pre) on g
            for sig in (z[:, :2 * H], z[:, 3 * H:]):
                sig *= 0.5
                sig += 0.5
        else:
            sigmoid(z[:, :2 * H], out=z[:, :2 * H])  # i, f
            self.phi(z[:, 2 * H:3 * H], out=z[:, 2 * H:3 * H])  # g
            sigmoid(z[:, 3 * H:], out=z[:, 3 * H:])  # o
        i, f, g, o = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
        c_t = c[t + 1]  # (B, H)
        np.multiply(f, c[t], out=c_t)
        ig = tape.extra["ig"]
        np.multiply(i, g, out=ig)
        c_t += ig
        np.tanh(c_t, out=ig)
        np.multiply(o, ig, out=h[t + 1])

    # ------------------------------------------------------------------ backward
    def prepare_backward(self, tape: Tape) -> None:
        """Scratch for the loop: the gates' local derivatives, ``tanh(c_t)`` (recomputed from ``c_t``:
        the forward pass keeps no copy of it) and two alternating (dh, dc) pairs."""
        _, B, G_H = tape.gates.shape
        H, dtype = self.hidden_size, tape.gates.dtype
        tape.extra["act_grad"] = np.empty((B, G_H), dtype=dtype)  # (B, 4H)
        tape.extra["tanh_c"] = np.empty((B, H), dtype=dtype)  # (B, H)
        tape.extra["dstate_buffers"] = [[np.empty((B, H), dtype=dtype), np.empty((B, H), dtype=dtype)]
                                        for _ in range(2)]

    def step_backward(self, p, tape: Tape, t: int, dstate, dy=None):
        H = self.hidden_size
        dh, dc_next = dstate  # (B, H) each
        z = tape.gates[t]
        tanh_c = tape.extra["tanh_c"]  # (B, H) scratch
        c_t, c_prev = tape.states[1][t + 1], tape.states[1][t]
        dz = tape.dgates[t]  # (B, 4H)
        pair = tape.extra["dstate_buffers"]
        dh_prev, dc = pair[1] if pair[0][1] is dc_next else pair[0]  # never the buffers dstate came in
        if self.kernel_step(tape) and tape.grad_norms is None:  # dz and dc_{t-1} in one pass
            tape.fused.lstm_backward(dh, *self.output_grad(tape, dy, t), dc_next, z, c_t, c_prev, tanh_c, dz, dc)
            np.matmul(dz, p["W"], out=dh_prev)
            return [dh_prev, dc]

        if dy is not None:
            dh += dy[:, t]
        np.tanh(c_t, out=tanh_c)
        i, f, g, o = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
        di, df, dg, do = dz[:, :H], dz[:, H:2 * H], dz[:, 2 * H:3 * H], dz[:, 3 * H:]

        np.multiply(tanh_c, tanh_c, out=dc)
        np.subtract(1.0, dc, out=dc)
        dc *= o
        dc *= dh
        dc += dc_next  # dL/dc_t
        if tape.grad_norms is not None:
            tape.grad_norms["c"][t] = row_norms(dc)

        act_grad = tape.extra["act_grad"]  # (B, 4H): s'(.) = s(1 - s) on i, f, o; phi'(.) on g
        np.subtract(1.0, z, out=act_grad)
        act_grad *= z
        self.phi_grad(g, out=act_grad[:, 2 * H:3 * H])
        np.multiply(dc, g, out=di)
        np.multiply(dc, c_prev, out=df)
        np.multiply(dc, i, out=dg)
        np.multiply(dh, tanh_c, out=do)
        dz *= act_grad
        dc *= f  # dc_{t-1}
        np.matmul(dz, p["W"], out=dh_prev)
        return [dh_prev, dc]

    def get_config(self):
        return {"candidate_activation": self.candidate_activation, "forget_bias": self.forget_bias}
