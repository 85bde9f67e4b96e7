"""The GRU cell, in both of its published forms."""

from __future__ import annotations

import numpy as np

from rnnlab.nn.cells.base import Cell, Tape
from rnnlab.nn.functional import sigmoid, tanh_grad


class GRUCell(Cell):
    """One step of the gated recurrent unit (Cho et al. 2014), gates in PyTorch's order r, z, n.

    Notes
    -----
    ``reset_after=True`` (PyTorch's and cuDNN's form; ``b_hn`` stays inside the reset product)::

        [r; z]_t = s(U_rz x_t + W_rz h_{t-1} + b_rz)
        n_t      = tanh(U_n x_t + b_n + r_t * (W_n h_{t-1} + b_hn))
        h_t      = (1 - z_t) * n_t + z_t * h_{t-1}

    ``reset_after=False`` (the original form; the reset gate acts before the product)::

        n_t      = tanh(U_n x_t + W_n (r_t * h_{t-1}) + b_n)

    Backward, with ``dh_t`` the total gradient reaching ``h_t``::

        dn_pre = dh_t * (1 - z_t) * (1 - n_t^2)
        dz_pre = dh_t * (h_{t-1} - n_t) * z_t (1 - z_t)
        reset_after:   dr_pre = dn_pre * hn_t * r_t (1 - r_t),   hn_t = W_n h_{t-1} + b_hn
                       dh_{t-1} = dh_t * z_t + [dr_pre; dz_pre; dn_pre * r_t] W
        original:      d(rh)  = dn_pre W_n,   dr_pre = d(rh) * h_{t-1} * r_t (1 - r_t)
                       dh_{t-1} = dh_t * z_t + d(rh) * r_t + [dr_pre; dz_pre] W_rz

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

    def param_shapes(self, input_size):
        shapes = super().param_shapes(input_size)
        if self.reset_after:
            shapes["b_hn"] = (self.hidden_size,)
        return shapes

    def kernel_step(self, tape: Tape) -> bool:
        return tape.fused is not None and self.reset_after

    def allocate(self, T, B, X, states0, workspace=None):
        tape = super().allocate(T, B, X, states0, workspace)
        H, dtype = self.hidden_size, X.dtype
        # reset_after: hn_t = W_n h_{t-1} + b_hn;  original: rh_t = r_t * h_{t-1}
        name = "hn" if self.reset_after else "rh"
        tape.extra[name] = tape.buffer(name, (T, B, H))  # (T, B, H)
        tape.extra["gh"] = np.empty((B, 3 * H), dtype=dtype)  # (B, 3H) scratch: h_{t-1} W^T
        return tape

    def step(self, p, tape: Tape, t: int) -> None:
        H = self.hidden_size
        h = tape.states[0]
        h_prev = h[t]
        z_all = tape.gates[t]  # (B, 3H), holds U x_t (+ b on the NumPy path)
        rz, n = z_all[:, :2 * H], z_all[:, 2 * H:]
        W_T = tape.extra["W_T"]  # (H, 3H)
        gh = tape.extra["gh"]  # (B, 3H)
        if self.kernel_step(tape):  # everything after the GEMM in one kernel, the bias included
            np.matmul(h_prev, W_T, out=gh)
            tape.fused.gru_forward(z_all, gh, p["b"], p["b_hn"], h_prev, tape.extra["hn"][t], h[t + 1])
            return
        if self.reset_after:
            np.matmul(h_prev, W_T, out=gh)
            rz += gh[:, :2 * H]
            sigmoid(rz, out=rz)
            hn = tape.extra["hn"][t]
            np.add(gh[:, 2 * H:], p["b_hn"], out=hn)
            rhn = gh[:, :H]  # scratch: r_t * hn_t
            np.multiply(rz[:, :H], hn, out=rhn)
            n += rhn
        else:
            np.matmul(h_prev, W_T[:, :2 * H], out=gh[:, :2 * H])
            rz += gh[:, :2 * H]
            sigmoid(rz, out=rz)
            rh = tape.extra["rh"][t]
            np.multiply(rz[:, :H], h_prev, out=rh)
            np.matmul(rh, W_T[:, 2 * H:], out=gh[:, 2 * H:])
            n += gh[:, 2 * H:]
        np.tanh(n, out=n)
        z = rz[:, H:]
        out = h[t + 1]  # h_t = n + z * (h_{t-1} - n)
        np.subtract(h_prev, n, out=out)
        out *= z
        out += n

    def step_backward(self, p, tape: Tape, t: int, dstate, dy=None):
        H = self.hidden_size
        (dh,) = dstate
        h_prev = tape.states[0][t]
        gates = tape.gates[t]
        dg = tape.dgates[t]  # (B, 3H)
        W = p["W"]
        scratch = tape.extra["gh"]  # (B, 3H)
        pair = tape.extra["dh_buffers"]
        dh_prev = pair[1] if pair[0] is dh else pair[0]  # never the buffer dh came in
        if self.kernel_step(tape):
            dgh = tape.extra["dgh"][t]
            tape.fused.gru_backward(dh, *self.output_grad(tape, dy, t), gates, h_prev, tape.extra["hn"][t],
                                    tape.extra["dh_total"], dg, dgh, dh_prev)  # one pass
            np.matmul(dgh, W, out=scratch[:, :H])
            dh_prev += scratch[:, :H]
            return [dh_prev]

        if dy is not None:
            dh += dy[:, t]

        r, z, n = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:]
        dr, dz, dn = dg[:, :H], dg[:, H:2 * H], dg[:, 2 * H:]
        act_grad = tape.extra["act_grad"]  # (B, 3H) scratch: s'(.) on r, z; tanh'(.) on n

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
            np.multiply(dn, tape.extra["hn"][t], out=dr)
            dg[:, :2 * H] *= act_grad[:, :2 * H]
            dgh = tape.extra["dgh"][t]  # recurrent-side gradient: n block scaled by r_t
            dgh[:, :2 * H] = dg[:, :2 * H]
            np.multiply(dn, r, out=dgh[:, 2 * H:])
            np.matmul(dgh, W, out=scratch[:, :H])
            dh_prev += scratch[:, :H]
        else:
            drh = scratch[:, :H]  # (B, H)
            np.matmul(dn, W[2 * H:], out=drh)
            np.multiply(drh, h_prev, out=dr)
            dg[:, :2 * H] *= act_grad[:, :2 * H]
            drh *= r
            dh_prev += drh
            np.matmul(dg[:, :2 * H], W[:2 * H], out=scratch[:, H:2 * H])
            dh_prev += scratch[:, H:2 * H]
        return [dh_prev]

    def accumulate_grads(self, p, g, tape: Tape) -> None:
        """As the base class, but the recurrent side's gradient differs from the input side's."""
        H = self.hidden_size
        T, B, D = tape.X.shape
        dG = tape.dgates.reshape(T * B, 3 * H)
        h_prev = tape.states[0][:-1].reshape(T * B, H)
        g["U"] += dG.T @ tape.X.reshape(T * B, D)
        g["b"] += dG.sum(axis=0)
        if self.reset_after:
            dgh = tape.extra["dgh"].reshape(T * B, 3 * H)
            g["W"] += dgh.T @ h_prev
            g["b_hn"] += dgh[:, 2 * H:].sum(axis=0)
        else:
            g["W"][:2 * H] += dG[:, :2 * H].T @ h_prev
            g["W"][2 * H:] += dG[:, 2 * H:].T @ tape.extra["rh"].reshape(T * B, H)

    def skip_step(self, tape: Tape, t: int) -> None:
        if not self.reset_after:
            tape.extra["rh"][t] = 0

    def skip_step_backward(self, tape: Tape, t: int) -> None:
        super().skip_step_backward(tape, t)
        if self.reset_after:
            tape.extra["dgh"][t] = 0

    def prepare_backward(self, tape: Tape) -> None:
        _, B, G_H = tape.gates.shape
        dtype = tape.gates.dtype
        tape.extra["act_grad"] = np.empty((B, G_H), dtype=dtype)  # (B, 3H)
        tape.extra["dh_buffers"] = [np.empty((B, self.hidden_size), dtype=dtype) for _ in range(2)]
        if self.kernel_step(tape):  # the kernel's dh_t = dh_{t+1 path} + dy_t
            tape.extra["dh_total"] = np.empty((B, self.hidden_size), dtype=dtype)
        if self.reset_after:
            tape.extra["dgh"] = tape.buffer("dgh", tape.gates.shape)  # (T, B, 3H)

    def get_config(self):
        return {"reset_after": self.reset_after}
