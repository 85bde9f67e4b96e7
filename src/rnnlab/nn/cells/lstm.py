"""The LSTM cell."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rnnlab.nn import initializers
from rnnlab.nn.cells.base import HALVED, KERNEL, Cell, Scratch, Tape
from rnnlab.nn.functional import get_activation, row_norms, sigmoid

_Pair = tuple[np.ndarray, np.ndarray]


@dataclass(eq=False, repr=False, slots=True)
class LSTMScratch(Scratch):
    """The LSTM cell's per-step buffers (besides :class:`~rnnlab.nn.cells.base.Scratch`'s).

    zh : (B, 4H) ``h_{t-1} W^T``, each forward step's product.
    ig : (B, H) ``i_t * g_t``, then ``tanh(c_t)``, in a NumPy forward step.
    act_grad : (B, 4H) the gates' local derivatives in a NumPy backward step.
    tanh_c : (B, H) ``tanh(c_t)``, recomputed by each backward step.
    pairs : two (dh, dc) pairs of (B, H) buffers the backward steps alternate between.
    """

    zh: np.ndarray
    ig: np.ndarray
    act_grad: np.ndarray = field(init=False)
    tanh_c: np.ndarray = field(init=False)
    pairs: tuple[_Pair, _Pair] = field(init=False)


class LSTMCell(Cell[LSTMScratch]):
    r"""One step of the long short-term memory cell (Hochreiter & Schmidhuber 1997, with forget gate).

    Notes
    -----
    Gates stacked in PyTorch's order i, f, g, o ($g_t$ is the candidate $\tilde c_t$), with $\sigma$ the
    logistic sigmoid and $\phi$ tanh (default) or relu:

    $$\begin{array}{rl}
    [i; f; g; o]^{\text{pre}}_t &= U x_t + W h_{t-1} + b \\
    i_t &= \sigma(i^{\text{pre}}_t), \quad f_t = \sigma(f^{\text{pre}}_t), \quad o_t = \sigma(o^{\text{pre}}_t) \\
    \tilde c_t = g_t &= \phi(g^{\text{pre}}_t) \\
    c_t &= f_t \odot c_{t-1} + i_t \odot \tilde c_t \\
    h_t &= o_t \odot \tanh(c_t)
    \end{array}$$

    Backward, with $\delta h_t$ the total gradient reaching $h_t$ and $\delta c^{\text{next}}_t$ the one
    reaching $c_t$ through $c_{t+1}$:

    $$\begin{array}{rl}
    \delta c_t &= \delta c^{\text{next}}_t + \delta h_t \odot o_t \odot (1 - \tanh^2 c_t)
    \qquad (= \partial L / \partial c_t) \\
    \delta o^{\text{pre}}_t &= \delta h_t \odot \tanh(c_t) \odot o_t (1 - o_t) \\
    \delta i^{\text{pre}}_t &= \delta c_t \odot g_t \odot i_t (1 - i_t) \\
    \delta f^{\text{pre}}_t &= \delta c_t \odot c_{t-1} \odot f_t (1 - f_t) \\
    \delta g^{\text{pre}}_t &= \delta c_t \odot i_t \odot \phi'(g_t) \\
    \delta c_{t-1} &= \delta c_t \odot f_t \qquad \text{(the cell path)} \\
    \delta h_{t-1} &= [\delta i; \delta f; \delta g; \delta o]^{\text{pre}}_t W
    \end{array}$$

    Under recurrent dropout (``Tape.recurrent_mask`` ``m``, Keras 3's form) the GEMM reads
    ``h_{t-1} * m`` and ``dh_{t-1} = ([di; df; dg; do]_pre W) * m``; ``c_{t-1}`` is never masked.

    Computed after each step's GEMM by one numba kernel, or by NumPy ufuncs; for a tanh candidate
    over several steps NumPy multiplies by copies of ``U``, ``W``, ``b`` with the i, f, o rows halved,
    so that one ``tanh`` over the (B, 4H) block gives every gate (``s(x) = (1 + tanh(x/2))/2``).

    Shapes: ``U`` (4H, D), ``W`` (4H, H), ``b`` (4H,). PyTorch ``nn.LSTM``: ``U = weight_ih_l0``,
    ``W = weight_hh_l0``, ``b = bias_ih_l0 + bias_hh_l0`` (the two biases only ever appear summed).
    """

    gate_names = ("i", "f", "g", "o")
    state_names = ("h", "c")
    kernel_records_grad_norms = False  # the kernel does not record ||dL/dc_t||

    def __init__(self, hidden_size: int, candidate_activation: str = "tanh", forget_bias: float | None = 1.0):
        super().__init__(hidden_size)
        self.candidate_activation = candidate_activation
        self.phi, self.phi_grad = get_activation(candidate_activation, "candidate_activation")
        if forget_bias is not None:
            if isinstance(forget_bias, bool) or not isinstance(forget_bias, (int, float, np.integer, np.floating)):
                raise TypeError(f"forget_bias must be a number or None, got "
                                f"{type(forget_bias).__name__} {forget_bias!r}")
            forget_bias = float(forget_bias)
        self.forget_bias = forget_bias

    takes_chrono = True

    def chrono_biases(self, b, chrono, rng) -> None:
        """Tallec & Ollivier's chrono initialisation: ``b_f = log(u)``, ``u ~ U(1, T_max - 1)``, ``b_i = -b_f``."""
        H = self.hidden_size
        b[H:2 * H] = chrono.draw(H, rng, b.dtype)
        b[:H] = -b[H:2 * H]

    def init_params(self, input_size, rng, dtype, kernel_init, recurrent_init, bias_init):
        values = super().init_params(input_size, rng, dtype, kernel_init, recurrent_init, bias_init)
        if self.forget_bias is not None and not isinstance(bias_init, initializers.chrono):
            H = self.hidden_size
            values["b"][H:2 * H] = self.forget_bias
        return values

    @property
    def has_kernel(self) -> bool:
        return self.candidate_activation == "tanh"

    @property
    def has_halved(self) -> bool:
        return self.candidate_activation == "tanh"

    # ------------------------------------------------------------------ forward
    def new_scratch(self, path, step_kernels, T, B, dtype, workspace) -> LSTMScratch:
        H = self.hidden_size
        return LSTMScratch(path, step_kernels, zh=np.empty((B, 4 * H), dtype=dtype), ig=np.empty((B, H), dtype=dtype))

    def _gate_scale(self, dtype) -> np.ndarray:
        """(4H,) 1/2 on the sigmoid rows (i, f, o), 1 on the candidate's: ``s(x) = (1 + tanh(x/2)) / 2``."""
        H = self.hidden_size
        scale = np.full(4 * H, 0.5, dtype=dtype)
        scale[2 * H:3 * H] = 1.0
        return scale

    def input_projection(self, p, tape: Tape[LSTMScratch]) -> None:
        """As the base class; on the :data:`~rnnlab.nn.cells.base.Path.HALVED` path with the sigmoid rows
        of ``U``, ``b`` and ``W^T`` halved (exactly: a power of two), so the pre-activations there are
        half the usual ones, bit for bit."""
        if tape.scratch.path is not HALVED:
            return super().input_projection(p, tape)
        T, B, D = tape.X.shape
        scale = self._gate_scale(tape.X.dtype)
        U_half = p["U"] * scale[:, None]  # (4H, D)
        np.matmul(tape.X.reshape(T * B, D), U_half.T, out=tape.gates.reshape(T * B, -1))
        tape.gates += p["b"] * scale
        W_T = self.recurrent_weight(p, tape)  # (H, 4H): a copy, or a view of the parameter itself
        tape.scratch.W_T = W_T * scale if np.shares_memory(W_T, p["W"]) else np.multiply(W_T, scale, out=W_T)
        return None

    def step(self, p, tape: Tape[LSTMScratch], t: int) -> None:
        H = self.hidden_size
        h, c = tape.states
        s = tape.scratch
        z = tape.gates[t]  # (B, 4H), holds U x_t (+ b on the NumPy paths; sigmoid rows halved on HALVED)
        zh = s.zh
        np.matmul(self.recurrent_input(tape, t), s.W_T, out=zh)
        if s.path is KERNEL:  # the rest in one kernel: bias, gates, c_t, tanh(c_t), h_t
            s.kernels.lstm_forward(z, zh, p["b"], c[t], c[t + 1], h[t + 1])
            return
        z += zh
        if s.path is HALVED:
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
        ig = s.ig
        np.multiply(i, g, out=ig)
        c_t += ig
        np.tanh(c_t, out=ig)
        np.multiply(o, ig, out=h[t + 1])

    # ------------------------------------------------------------------ backward
    def prepare_backward(self, tape: Tape[LSTMScratch]) -> None:
        """The backward path, and scratch for the loop: the gates' local derivatives, ``tanh(c_t)``
        (recomputed from ``c_t``) and two alternating (dh, dc) pairs."""
        super().prepare_backward(tape)
        _, B, G_H = tape.gates.shape
        H, dtype = self.hidden_size, tape.gates.dtype
        s = tape.scratch
        s.act_grad = np.empty((B, G_H), dtype=dtype)  # (B, 4H)
        s.tanh_c = np.empty((B, H), dtype=dtype)  # (B, H)
        s.pairs = ((np.empty((B, H), dtype=dtype), np.empty((B, H), dtype=dtype)),
                   (np.empty((B, H), dtype=dtype), np.empty((B, H), dtype=dtype)))

    def step_backward(self, p, tape: Tape[LSTMScratch], t: int, dstate, dy=None):
        H = self.hidden_size
        dh, dc_next = dstate  # (B, H) each
        s = tape.scratch
        z = tape.gates[t]
        tanh_c = s.tanh_c  # (B, H) scratch
        c_t, c_prev = tape.states[1][t + 1], tape.states[1][t]
        dz = tape.dgates[t]  # (B, 4H)
        pairs = s.pairs
        dh_prev, dc = pairs[1] if pairs[0][1] is dc_next else pairs[0]  # never the buffers dstate came in
        if s.backward_path is KERNEL:  # dz and dc_{t-1} in one pass
            s.kernels.lstm_backward(dh, *self.output_grad(tape, dy, t), dc_next, z, c_t, c_prev, tanh_c, dz, dc)
            np.matmul(dz, p["W"], out=dh_prev)
            if tape.recurrent_mask is not None:
                dh_prev *= tape.recurrent_mask
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

        act_grad = s.act_grad  # (B, 4H): s'(.) = s(1 - s) on i, f, o; phi'(.) on g
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
        if tape.recurrent_mask is not None:
            dh_prev *= tape.recurrent_mask
        return [dh_prev, dc]

    def get_config(self):
        return {"candidate_activation": self.candidate_activation, "forget_bias": self.forget_bias}
