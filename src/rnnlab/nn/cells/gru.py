"""The GRU cell, in both of its published forms."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rnnlab.nn.cells.base import KERNEL, Cell, Scratch, Tape
from rnnlab.nn.functional import sigmoid, tanh_grad


@dataclass(eq=False, repr=False, slots=True)
class GRUScratch(Scratch):
    """The GRU cell's buffers (besides :class:`~rnnlab.nn.cells.base.Scratch`'s).

    gh : (B, 3H) ``h_{t-1} W^T`` in a forward step; products of the backward step.
    hn : (T, B, H) ``hn_t = W_n h_{t-1} + b_hn``, kept for the backward pass (``reset_after`` only).
    rh : (T, B, H) ``rh_t = r_t * h_{t-1}``, kept for ``dW_n`` (the original form only).
    act_grad : (B, 3H) the gates' local derivatives in a NumPy backward step.
    dh_pair : two (B, H) buffers the backward steps alternate between for ``dh_{t-1}``.
    dh_total : (B, H) ``dh_t`` plus the output's gradient, in a kernel backward step.
    dgh : (T, B, 3H) the recurrent side's pre-activation gradients (``reset_after`` only).
    """

    gh: np.ndarray
    hn: np.ndarray = field(init=False)
    rh: np.ndarray = field(init=False)
    act_grad: np.ndarray = field(init=False)
    dh_pair: tuple[np.ndarray, np.ndarray] = field(init=False)
    dh_total: np.ndarray = field(init=False)
    dgh: np.ndarray = field(init=False)


class GRUCell(Cell[GRUScratch]):
    r"""One step of the gated recurrent unit (Cho et al. 2014), gates in PyTorch's order r, z, n.

    Notes
    -----
    With $\sigma$ the logistic sigmoid; ``reset_after=True`` (PyTorch's and cuDNN's form; $b_{hn}$ stays
    inside the reset product):

    $$\begin{array}{rl}
    [r; z]_t &= \sigma(U_{rz} x_t + W_{rz} h_{t-1} + b_{rz}) \\
    n_t &= \tanh(U_n x_t + b_n + r_t \odot (W_n h_{t-1} + b_{hn})) \\
    h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}
    \end{array}$$

    ``reset_after=False`` (the original form; the reset gate acts before the product):

    $$n_t = \tanh(U_n x_t + W_n (r_t \odot h_{t-1}) + b_n)$$

    Backward, with $\delta h_t$ the total gradient reaching $h_t$:

    $$\begin{array}{rl}
    \delta n^{\text{pre}}_t &= \delta h_t \odot (1 - z_t) \odot (1 - n_t^2) \\
    \delta z^{\text{pre}}_t &= \delta h_t \odot (h_{t-1} - n_t) \odot z_t (1 - z_t)
    \end{array}$$

    and, ``reset_after`` (with $\hat n_t = W_n h_{t-1} + b_{hn}$):

    $$\begin{array}{rl}
    \delta r^{\text{pre}}_t &= \delta n^{\text{pre}}_t \odot \hat n_t \odot r_t (1 - r_t) \\
    \delta h_{t-1} &= \delta h_t \odot z_t
    + [\delta r^{\text{pre}}_t; \delta z^{\text{pre}}_t; \delta n^{\text{pre}}_t \odot r_t] W
    \end{array}$$

    or, the original form (with $\delta(rh)$ the gradient reaching $r_t \odot h_{t-1}$):

    $$\begin{array}{rl}
    \delta(rh) &= \delta n^{\text{pre}}_t W_n, \qquad
    \delta r^{\text{pre}}_t = \delta(rh) \odot h_{t-1} \odot r_t (1 - r_t) \\
    \delta h_{t-1} &= \delta h_t \odot z_t + \delta(rh) \odot r_t
    + [\delta r^{\text{pre}}_t; \delta z^{\text{pre}}_t] W_{rz}
    \end{array}$$

    Computed after each step's GEMM by one numba kernel (``reset_after``) or by NumPy ufuncs.

    Under recurrent dropout (``Tape.recurrent_mask`` ``m``), every product with ``W`` reads
    ``h_{t-1} * m`` (``W_rz``, ``W_n``, and the original form's ``r_t * (h_{t-1} * m)``: Keras 3's
    ``implementation=1`` with one mask for all gates), while ``z_t * h_{t-1}`` and ``dz_pre``'s
    ``h_{t-1} - n_t`` use the unmasked state; the gradients through ``W`` into ``h_{t-1}`` are multiplied by ``m``.

    Shapes: ``U`` (3H, D), ``W`` (3H, H), ``b`` (3H,), and ``b_hn`` (H,) when ``reset_after``.
    PyTorch ``nn.GRU``: ``U = weight_ih_l0``, ``W = weight_hh_l0``,
    ``b = bias_ih_l0 + [bias_hh_l0[:2H]; 0]``, ``b_hn = bias_hh_l0[2H:]``.
    """

    gate_names = ("r", "z", "n")
    state_names = ("h",)

    def __init__(self, hidden_size: int, reset_after: bool = True):
        super().__init__(hidden_size)
        if not isinstance(reset_after, bool):
            raise TypeError(f"reset_after must be a bool, got {reset_after!r}")
        self.reset_after = reset_after

    takes_chrono = True

    def chrono_biases(self, b, chrono, rng) -> None:
        """The chrono initialisation's GRU counterpart: the update gate ``z`` keeps ``h_{t-1}`` as an LSTM's
        forget gate keeps ``c_{t-1}``, so ``b_z = log(u)``, ``u ~ U(1, T_max - 1)``; ``b_r`` and ``b_n`` stay 0."""
        H = self.hidden_size
        b[H:2 * H] = chrono.draw(H, rng, b.dtype)

    def param_shapes(self, input_size):
        shapes = super().param_shapes(input_size)
        if self.reset_after:
            shapes["b_hn"] = (self.hidden_size,)
        return shapes

    @property
    def has_kernel(self) -> bool:
        return self.reset_after

    def new_scratch(self, path, step_kernels, T, B, dtype, workspace) -> GRUScratch:
        H = self.hidden_size
        s = GRUScratch(path, step_kernels, gh=np.empty((B, 3 * H), dtype=dtype))
        if self.reset_after:
            s.hn = workspace.empty("hn", (T, B, H), dtype)
        else:
            s.rh = workspace.empty("rh", (T, B, H), dtype)
        return s

    def step(self, p, tape: Tape[GRUScratch], t: int) -> None:
        H = self.hidden_size
        h = tape.states[0]
        h_prev = h[t]
        s = tape.scratch
        gates = tape.gates[t]  # (B, 3H), holds U x_t (+ b on the NumPy path)
        rz, n = gates[:, :2 * H], gates[:, 2 * H:]
        W_T = s.W_T  # (H, 3H)
        gh = s.gh  # (B, 3H)
        h_in = self.recurrent_input(tape, t)  # h_{t-1}, or h_{t-1} * m_h under recurrent dropout
        if s.path is KERNEL:  # everything after the GEMM in one kernel, the bias included
            np.matmul(h_in, W_T, out=gh)
            s.kernels.gru_forward(gates, gh, p["b"], p["b_hn"], h_prev, s.hn[t], h[t + 1])
            return
        if self.reset_after:
            np.matmul(h_in, W_T, out=gh)
            rz += gh[:, :2 * H]
            sigmoid(rz, out=rz)
            hn = s.hn[t]
            np.add(gh[:, 2 * H:], p["b_hn"], out=hn)
            rhn = gh[:, :H]  # scratch: r_t * hn_t
            np.multiply(rz[:, :H], hn, out=rhn)
            n += rhn
        else:
            np.matmul(h_in, W_T[:, :2 * H], out=gh[:, :2 * H])
            rz += gh[:, :2 * H]
            sigmoid(rz, out=rz)
            rh = s.rh[t]
            np.multiply(rz[:, :H], h_in, out=rh)
            np.matmul(rh, W_T[:, 2 * H:], out=gh[:, 2 * H:])
            n += gh[:, 2 * H:]
        np.tanh(n, out=n)
        z = rz[:, H:]
        out = h[t + 1]  # h_t = n + z * (h_{t-1} - n)
        np.subtract(h_prev, n, out=out)
        out *= z
        out += n

    def step_backward(self, p, tape: Tape[GRUScratch], t: int, dstate, dy=None):
        H = self.hidden_size
        (dh,) = dstate
        s = tape.scratch
        h_prev = tape.states[0][t]
        gates = tape.gates[t]
        dg = tape.dgates[t]  # (B, 3H)
        W = p["W"]
        gh = s.gh  # (B, 3H), scratch here
        pair = s.dh_pair
        dh_prev = pair[1] if pair[0] is dh else pair[0]  # never the buffer dh came in
        m = tape.recurrent_mask  # (B, H) or None: the products with W read h_{t-1} * m
        if s.backward_path is KERNEL:
            dgh = s.dgh[t]
            s.kernels.gru_backward(dh, *self.output_grad(tape, dy, t), gates, h_prev, s.hn[t], s.dh_total, dg, dgh,
                                   dh_prev)  # one pass
            np.matmul(dgh, W, out=gh[:, :H])
            if m is not None:
                gh[:, :H] *= m
            dh_prev += gh[:, :H]
            return [dh_prev]

        if dy is not None:
            dh += dy[:, t]

        r, z, n = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:]
        dr, dz, dn = dg[:, :H], dg[:, H:2 * H], dg[:, 2 * H:]
        act_grad = s.act_grad  # (B, 3H) scratch: s'(.) on r, z; tanh'(.) on n

        np.subtract(1.0, gates, out=act_grad)
        act_grad *= gates  # s(1 - s) on r, z
        tanh_grad(n, out=act_grad[:, 2 * H:])
        np.subtract(1.0, z, out=dn)
        dn *= dh
        dn *= act_grad[:, 2 * H:]
        np.subtract(h_prev, n, out=dz)
        dz *= dh
        np.multiply(dh, z, out=dh_prev)
        if self.reset_after:
            np.multiply(dn, s.hn[t], out=dr)
            dg[:, :2 * H] *= act_grad[:, :2 * H]
            dgh = s.dgh[t]  # recurrent-side gradient: n block scaled by r_t
            dgh[:, :2 * H] = dg[:, :2 * H]
            np.multiply(dn, r, out=dgh[:, 2 * H:])
            np.matmul(dgh, W, out=gh[:, :H])
            if m is not None:
                gh[:, :H] *= m
            dh_prev += gh[:, :H]
        else:
            drh = gh[:, :H]  # (B, H)
            np.matmul(dn, W[2 * H:], out=drh)
            np.multiply(drh, h_prev if m is None else self.recurrent_input(tape, t), out=dr)
            dg[:, :2 * H] *= act_grad[:, :2 * H]
            drh *= r
            np.matmul(dg[:, :2 * H], W[:2 * H], out=gh[:, H:2 * H])
            if m is None:
                dh_prev += drh
                dh_prev += gh[:, H:2 * H]
            else:  # both paths back into h_{t-1} run through the mask
                drh += gh[:, H:2 * H]
                drh *= m
                dh_prev += drh
        return [dh_prev]

    def accumulate_grads(self, p, g, tape: Tape[GRUScratch]) -> None:
        """As the base class, but the recurrent side's gradient differs from the input side's."""
        H = self.hidden_size
        T, B, D = tape.X.shape
        s = tape.scratch
        dG = tape.dgates.reshape(T * B, 3 * H)
        h_prev = self.recurrent_inputs(tape)  # (T*B, H), h_{t-1} (* m_h under recurrent dropout)
        g["U"] += dG.T @ tape.X.reshape(T * B, D)
        ones = np.ones(T * B, dG.dtype)  # column sums as GEMVs: one BLAS pass each
        g["b"] += np.matmul(ones, dG)
        if self.reset_after:
            dgh = s.dgh.reshape(T * B, 3 * H)
            g["W"] += dgh.T @ h_prev
            g["b_hn"] += np.matmul(ones, dgh[:, 2 * H:])
        else:
            g["W"][:2 * H] += dG[:, :2 * H].T @ h_prev
            g["W"][2 * H:] += dG[:, 2 * H:].T @ s.rh.reshape(T * B, H)

    def skip_step(self, tape: Tape[GRUScratch], t: int) -> None:
        if not self.reset_after:
            tape.scratch.rh[t] = 0

    def skip_step_backward(self, tape: Tape[GRUScratch], t: int) -> None:
        super().skip_step_backward(tape, t)
        if self.reset_after:
            tape.scratch.dgh[t] = 0

    def prepare_backward(self, tape: Tape[GRUScratch]) -> None:
        super().prepare_backward(tape)
        _, B, G_H = tape.gates.shape
        H, dtype = self.hidden_size, tape.gates.dtype
        s = tape.scratch
        s.act_grad = np.empty((B, G_H), dtype=dtype)  # (B, 3H)
        s.dh_pair = (np.empty((B, H), dtype=dtype), np.empty((B, H), dtype=dtype))
        if s.backward_path is KERNEL:
            s.dh_total = np.empty((B, H), dtype=dtype)
        if self.reset_after:
            s.dgh = tape.buffer("dgh", tape.gates.shape)  # (T, B, 3H)

    def get_config(self):
        return {"reset_after": self.reset_after}
