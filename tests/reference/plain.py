"""A second oracle beside PyTorch: each cell as the textbook loop over time, in plain NumPy float64.

Nothing here is shared with :mod:`rnnlab`: the equations are written out per gate with fresh arrays for
every intermediate (no preallocated buffers, no ``out=``, no kernels, no halved weights, no fused
GEMMs over all steps), forward one step at a time and backward by straightforward BPTT.

A cell is an object with ``state_names``, ``step(p, x_t, states) -> (new_states, cache)`` and
``step_back(p, cache, d_new_states) -> (d_states, dx_t, grads)``; :func:`forward` and :func:`backward`
run one through time. ``p`` holds the layer's parameters by rnnlab's names (``U``, ``W``, ``b``, and
``b_hn`` for the GRU's ``reset_after`` form), gate blocks stacked in PyTorch's order.

Masks follow Keras: where ``mask[b, t]`` is 0 the state passes the step unchanged, the output is zero,
and the gradient passes back unchanged. ``go_backwards`` reads the sequence from its end; the outputs
(and their gradients) come in processing order, the input gradient in time order.
"""

from __future__ import annotations

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# name -> (f, f') with f' taken at the pre-activation z
ACTIVATIONS = {
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float)),
    "sigmoid": (sigmoid, lambda z: sigmoid(z) * (1.0 - sigmoid(z))),
    "linear": (lambda z: z, np.ones_like),
}


def blocks(a, n):
    """The n gate blocks of a stacked parameter, along its first axis."""
    return np.split(np.asarray(a, dtype=float), n, axis=0)


# ---------------------------------------------------------------------------- the time loop
def forward(cell, p, x, states0, mask=None, go_backwards=False):
    """Run ``cell`` over ``x`` (B, T, D) from ``states0``.

    Returns ``(y, states, tape)``: the outputs (B, T, H) in processing order (zero where masked), the
    final states, and the per-step record :func:`backward` needs.
    """
    B, T, _ = x.shape
    times = range(T - 1, -1, -1) if go_backwards else range(T)
    valid = np.ones((B, T), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    states = [np.array(s, dtype=float) for s in states0]
    ys, tape = [], []
    for t in times:
        new, cache = cell.step(p, np.asarray(x[:, t], dtype=float), states)
        m = valid[:, t, None]  # (B, 1)
        ys.append(np.where(m, new[0], 0.0))
        states = [np.where(m, s_new, s) for s_new, s in zip(new, states)]
        tape.append((t, m, cache))
    return np.stack(ys, axis=1), states, tape


def backward(cell, p, tape, x_shape, dy, d_states):
    """BPTT over the record of :func:`forward`.

    ``dy`` (B, T, H) is the gradient of the outputs (processing order), ``d_states`` those of the final
    states. Returns ``(dx, d_states0, grads)``: dx (B, T, D) in time order, the initial states'
    gradients, and the parameters' by name.
    """
    grads = {k: np.zeros(np.shape(v)) for k, v in p.items()}
    dx = np.zeros(x_shape)
    ds = [np.array(d, dtype=float) for d in d_states]
    for k in reversed(range(len(tape))):
        t, m, cache = tape[k]
        d_new = [np.where(m, d, 0.0) for d in ds]  # the valid rows' gradients reach the step's new states
        d_new[0] = d_new[0] + np.where(m, dy[:, k], 0.0)  # ... and the output's
        d_prev, dx_t, g = cell.step_back(p, cache, d_new)
        ds = [dp + np.where(m, 0.0, d) for dp, d in zip(d_prev, ds)]  # the padded rows pass unchanged
        dx[:, t] = dx_t
        for name, value in g.items():
            grads[name] += value
    return dx, ds, grads


# ---------------------------------------------------------------------------- Elman
class Elman:
    """``h_t = f(U x_t + W h_{t-1} + b)``."""

    state_names = ("h",)

    def __init__(self, activation="tanh"):
        self.f, self.df = ACTIVATIONS[activation]

    def step(self, p, x, states):
        (h,) = states
        z = x @ p["U"].T + h @ p["W"].T + p["b"]
        return [self.f(z)], (x, h, z)

    def step_back(self, p, cache, d_new):
        x, h, z = cache
        (dh,) = d_new
        dz = dh * self.df(z)
        grads = {"U": dz.T @ x, "W": dz.T @ h, "b": dz.sum(axis=0)}
        return [dz @ p["W"]], dz @ p["U"], grads


# ---------------------------------------------------------------------------- LSTM
class LSTM:
    """Gates i, f, g, o: ``c_t = f*c_{t-1} + i*phi(g_pre)``, ``h_t = o*tanh(c_t)``."""

    state_names = ("h", "c")

    def __init__(self, candidate_activation="tanh"):
        self.phi, self.dphi = ACTIVATIONS[candidate_activation]

    def step(self, p, x, states):
        h, c = states
        U, W, b = blocks(p["U"], 4), blocks(p["W"], 4), blocks(p["b"], 4)
        pre = [x @ U[k].T + h @ W[k].T + b[k] for k in range(4)]
        i, f, g, o = sigmoid(pre[0]), sigmoid(pre[1]), self.phi(pre[2]), sigmoid(pre[3])
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        return [h_new, c_new], (x, h, c, i, f, g, o, pre[2], c_new)

    def step_back(self, p, cache, d_new):
        x, h, c, i, f, g, o, g_pre, c_new = cache
        dh, dc = d_new
        U, W = blocks(p["U"], 4), blocks(p["W"], 4)
        tanh_c = np.tanh(c_new)
        do = dh * tanh_c
        dc = dc + dh * o * (1.0 - tanh_c ** 2)  # dL/dc_t
        di, df, dg, dc_prev = dc * g, dc * c, dc * i, dc * f
        d_pre = [di * i * (1 - i), df * f * (1 - f), dg * self.dphi(g_pre), do * o * (1 - o)]
        grads = {"U": np.concatenate([d.T @ x for d in d_pre]),
                 "W": np.concatenate([d.T @ h for d in d_pre]),
                 "b": np.concatenate([d.sum(axis=0) for d in d_pre])}
        dx = sum(d @ U[k] for k, d in enumerate(d_pre))
        dh_prev = sum(d @ W[k] for k, d in enumerate(d_pre))
        return [dh_prev, dc_prev], dx, grads


# ---------------------------------------------------------------------------- GRU
class GRU:
    """Gates r, z, n; ``h_t = (1 - z)*n + z*h_{t-1}`` with, ``reset_after`` (PyTorch's form),
    ``n = tanh(U_n x + b_n + r*(W_n h + b_hn))``, else ``n = tanh(U_n x + W_n (r*h) + b_n)``."""

    state_names = ("h",)

    def __init__(self, reset_after=True):
        self.reset_after = reset_after

    def step(self, p, x, states):
        (h,) = states
        (U_r, U_z, U_n), (W_r, W_z, W_n), (b_r, b_z, b_n) = blocks(p["U"], 3), blocks(p["W"], 3), blocks(p["b"], 3)
        r = sigmoid(x @ U_r.T + h @ W_r.T + b_r)
        z = sigmoid(x @ U_z.T + h @ W_z.T + b_z)
        if self.reset_after:
            hn = h @ W_n.T + p["b_hn"]
            n = np.tanh(x @ U_n.T + b_n + r * hn)
        else:
            hn = None
            n = np.tanh(x @ U_n.T + (r * h) @ W_n.T + b_n)
        h_new = (1.0 - z) * n + z * h
        return [h_new], (x, h, r, z, n, hn)

    def step_back(self, p, cache, d_new):
        x, h, r, z, n, hn = cache
        (dh,) = d_new
        (U_r, U_z, U_n), (W_r, W_z, W_n) = blocks(p["U"], 3), blocks(p["W"], 3)
        dn_pre = dh * (1.0 - z) * (1.0 - n ** 2)
        dz_pre = dh * (h - n) * z * (1.0 - z)
        dh_prev = dh * z
        grads = {}
        if self.reset_after:
            dhn = dn_pre * r  # gradient of hn = W_n h + b_hn
            dr_pre = dn_pre * hn * r * (1.0 - r)
            dh_prev = dh_prev + dhn @ W_n
            dW_n = dhn.T @ h
            grads["b_hn"] = dhn.sum(axis=0)
        else:
            drh = dn_pre @ W_n  # gradient of r*h
            dr_pre = drh * h * r * (1.0 - r)
            dh_prev = dh_prev + drh * r
            dW_n = dn_pre.T @ (r * h)
        dh_prev = dh_prev + dr_pre @ W_r + dz_pre @ W_z
        grads["U"] = np.concatenate([dr_pre.T @ x, dz_pre.T @ x, dn_pre.T @ x])
        grads["W"] = np.concatenate([dr_pre.T @ h, dz_pre.T @ h, dW_n])
        grads["b"] = np.concatenate([dr_pre.sum(axis=0), dz_pre.sum(axis=0), dn_pre.sum(axis=0)])
        dx = dr_pre @ U_r + dz_pre @ U_z + dn_pre @ U_n
        return [dh_prev], dx, grads
