"""The vanilla (Elman) cell."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rnnlab.nn import kernels
from rnnlab.nn.cells.base import KERNEL, Cell, Scratch, Tape, Workspace
from rnnlab.nn.functional import get_activation


@dataclass(eq=False, repr=False, slots=True)
class ElmanScratch(Scratch):
    """The Elman cell's per-step buffers (besides :class:`~rnnlab.nn.cells.base.Scratch`'s).

    za : (B, H) ``a_{t-1} W^T``, each forward step's product.
    da_pair : two (B, H) buffers the backward steps alternate between for ``da_{t-1}``.
    """

    za: np.ndarray
    da_pair: tuple[np.ndarray, np.ndarray] = field(init=False)


class ElmanCell(Cell[ElmanScratch]):
    r"""One step of the Elman RNN.

    Notes
    -----
    Forward, with $f$ one of tanh, relu, sigmoid, linear:

    $$a_t = f(U x_t + W a_{t-1} + b)$$

    Backward, with $\delta a_t$ the total gradient reaching $a_t$ (its output's and step $t+1$'s) and
    $f'$ written from the output ($1 - a^2$, $a (1 - a)$, $\mathbf{1}[a > 0]$ or $1$):

    $$\begin{array}{rl}
    \delta z_t &= \delta a_t \odot f'(a_t) \\
    \delta a_{t-1} &= \delta z_t W \qquad \text{(the path back through time)} \\
    \delta U &= \sum_t \delta z_t^\top x_t, \qquad \delta W = \sum_t \delta z_t^\top a_{t-1}, \qquad
    \delta b = \sum_t \delta z_t \qquad \text{(after the loop)}
    \end{array}$$

    Shapes: ``U`` (H, D), ``W`` (H, H), ``b`` (H,). PyTorch ``nn.RNN``: ``U = weight_ih_l0``,
    ``W = weight_hh_l0``, ``b = bias_ih_l0 + bias_hh_l0``.

    Computed in place: the pre-activations are written into ``a_t``'s own slot of the state tape and
    turned into ``a_t`` there (a numba kernel for tanh, else ufuncs).
    """

    gate_names = ("a",)
    state_names = ("h",)

    def __init__(self, hidden_size: int, activation: str = "tanh"):
        super().__init__(hidden_size)
        self.activation = activation
        self.f, self.f_grad = get_activation(activation)

    @property
    def has_kernel(self) -> bool:
        return self.activation == "tanh"

    def allocate(self, T, B, X, states0, workspace=None) -> Tape[ElmanScratch]:
        H = self.hidden_size
        ws = Workspace() if workspace is None else workspace
        a = ws.empty("state_a", (T + 1, B, H), X.dtype)  # (T+1, B, H)
        a[0] = states0[0]
        path = self.path(X.dtype, T)
        scratch = self.new_scratch(path, kernels.module() if path is KERNEL else None, T, B, X.dtype, ws)
        return Tape(X=X, states=[a], gates=a[1:], scratch=scratch, workspace=ws)

    def new_scratch(self, path, step_kernels, T, B, dtype, workspace) -> ElmanScratch:
        return ElmanScratch(path, step_kernels, za=np.empty((B, self.hidden_size), dtype=dtype))

    def step(self, p, tape: Tape[ElmanScratch], t: int) -> None:
        a, s = tape.states[0], tape.scratch
        z = a[t + 1]  # (B, H), holds U x_t (+ b on the NumPy path)
        za = s.za  # (B, H)
        np.matmul(self.recurrent_input(tape, t), s.W_T, out=za)
        if s.path is KERNEL:
            s.kernels.elman_tanh_forward(z, za, p["b"])  # z <- tanh(z + za + b), one pass
            return
        z += za
        self.f(z, out=z)

    def step_backward(self, p, tape: Tape[ElmanScratch], t: int, dstate, dy=None):
        (da,) = dstate  # (B, H)
        s = tape.scratch
        dz = tape.dgates[t]  # (B, H)
        a_t = tape.states[0][t + 1]
        if s.backward_path is KERNEL:  # dz = (da + dy) * (1 - a^2), one pass
            s.kernels.elman_tanh_backward(da, *self.output_grad(tape, dy, t), a_t, dz)
        else:
            if dy is not None:
                da += dy[:, t]
            self.f_grad(a_t, out=dz)
            dz *= da
        pair = s.da_pair
        da_prev = pair[1] if pair[0] is da else pair[0]  # (B, H), never the buffer da came in
        np.matmul(dz, p["W"], out=da_prev)
        if tape.recurrent_mask is not None:
            da_prev *= tape.recurrent_mask
        return [da_prev]

    def prepare_backward(self, tape: Tape[ElmanScratch]) -> None:
        super().prepare_backward(tape)
        B, H = tape.states[0].shape[1:]
        tape.scratch.da_pair = (np.empty((B, H), dtype=tape.gates.dtype), np.empty((B, H), dtype=tape.gates.dtype))

    def get_config(self):
        return {"activation": self.activation}
