"""The vanilla (Elman) cell."""

from __future__ import annotations

import numpy as np

from rnnlab.nn import kernels
from rnnlab.nn.cells.base import Cell, Tape, Workspace
from rnnlab.nn.functional import get_activation


class ElmanCell(Cell):
    """One step of the Elman RNN.

    Notes
    -----
    Forward (``f`` one of tanh, relu, sigmoid, linear)::

        a_t = f(U x_t + W a_{t-1} + b)

    Backward, with ``da_t`` the total gradient reaching ``a_t`` (its output's and step t+1's)::

        dz_t      = da_t * f'(a_t)            f' from the output: 1 - a^2, a(1 - a), 1[a > 0], 1
        da_{t-1}  = dz_t W                     (the path back through time)
        dU = sum_t dz_t^T x_t,  dW = sum_t dz_t^T a_{t-1},  db = sum_t dz_t    (after the loop)

    Shapes: ``U`` (H, D), ``W`` (H, H), ``b`` (H,). PyTorch ``nn.RNN``: ``U = weight_ih_l0``,
    ``W = weight_hh_l0``, ``b = bias_ih_l0 + bias_hh_l0``.

    The tape keeps no separate activation buffer: the pre-activations are written into ``a_t``'s own
    slot and turned into ``a_t`` in place.
    """

    gate_names = ("a",)
    state_names = ("h",)

    def __init__(self, hidden_size: int, activation: str = "tanh"):
        super().__init__(hidden_size)
        self.activation = activation
        self.f, self.f_grad = get_activation(activation)

    def allocate(self, T, B, X, states0, workspace=None):
        H = self.hidden_size
        ws = Workspace() if workspace is None else workspace
        a = ws.empty("state_a", (T + 1, B, H), X.dtype)  # (T+1, B, H)
        a[0] = states0[0]
        tape = Tape(X=X, states=[a], gates=a[1:], workspace=ws,
                    fused=kernels.fused(X.dtype) if self.activation == "tanh" else None)
        tape.extra["za"] = np.empty((B, H), dtype=X.dtype)  # (B, H) scratch: a_{t-1} W^T
        return tape

    def step(self, p, tape: Tape, t: int) -> None:
        a = tape.states[0]
        z = a[t + 1]  # (B, H), holds U x_t (+ b on the NumPy path)
        za = tape.extra["za"]  # (B, H)
        np.matmul(a[t], tape.extra["W_T"], out=za)
        if tape.fused is not None:
            tape.fused.elman_tanh_forward(z, za, p["b"])  # z <- tanh(z + za + b), one pass
            return
        z += za
        self.f(z, out=z)

    def step_backward(self, p, tape: Tape, t: int, dstate, dy=None):
        (da,) = dstate  # (B, H)
        dz = tape.dgates[t]  # (B, H)
        if tape.fused is not None:  # dz = (da + dy) * (1 - a^2), one pass
            tape.fused.elman_tanh_backward(da, *self.output_grad(tape, dy, t), tape.states[0][t + 1], dz)
        else:
            if dy is not None:
                da += dy[:, t]
            self.f_grad(tape.states[0][t + 1], out=dz)
            dz *= da
        pair = tape.extra["da_buffers"]
        da_prev = pair[1] if pair[0] is da else pair[0]  # (B, H), never the buffer da came in
        np.matmul(dz, p["W"], out=da_prev)
        return [da_prev]

    def prepare_backward(self, tape: Tape) -> None:
        B, H = tape.states[0].shape[1:]
        tape.extra["da_buffers"] = [np.empty((B, H), dtype=tape.gates.dtype) for _ in range(2)]

    def get_config(self):
        return {"activation": self.activation}
