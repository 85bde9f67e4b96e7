"""The exact step Jacobians ``J_t = ds_t/ds_{t-1}`` of a recurrent layer (:func:`step_jacobians`), their
spectral norms (:func:`jacobian_norms`) and the norms of their running products from the last step
back (:func:`running_products`)."""

from __future__ import annotations

import numpy as np

from rnnlab.lab.diagnostics.probes import _check_recurrent, _layer_copy, _processing_mask
from rnnlab.nn.recurrent import Recurrent

__all__ = ["step_jacobians", "jacobian_norms", "running_products"]


def _state_list(initial_state, layer: Recurrent, B: int) -> list[np.ndarray]:
    if initial_state is None:
        return [np.zeros((B, layer.hidden_size)) for _ in layer.state_names]
    if isinstance(initial_state, np.ndarray):
        initial_state = [initial_state]
    return [np.asarray(s, dtype=np.float64) for s in initial_state]


def step_jacobians(layer: Recurrent, x, mask=None, *, initial_state=None) -> np.ndarray:
    """The exact Jacobians ``J_t = ds_t/ds_{t-1}`` of every step of every sequence.

    Parameters
    ----------
    layer : SimpleRNN, LSTM or GRU
        Not modified (the computation runs on float64 copies).
    x : ndarray, shape (B, T, D)
    mask : ndarray of bool, shape (B, T), optional
        Padded steps carry the state unchanged, so their Jacobian is the identity.
    initial_state : array or list of arrays, shape (B, H) each, optional

    Returns
    -------
    ndarray, shape (B, T, S, S), float64
        ``J[b, t, k, j] = d s_t[k] / d s_{t-1}[j]`` in processing order, with ``s_t`` the state carried
        out of step t: ``h_t`` (S = H) or, for the LSTM, ``[h_t; c_t]`` (S = 2H).

    Notes
    -----
    One forward pass gives the state carried into every step. Then every (sequence, step) is
    replicated S times into a single batch of B*T*S one-step calls, each starting from that state,
    and the backward pass of the call receives the S unit vectors ``e_k`` as the gradient of the
    state it returns: the gradient of its initial state is then row k of ``J_t``. All steps and
    units in one batched call, through the cells' own backward code. Memory: B*T*S*S floats for the
    result and about as much for the batched call, so this is meant for small H and T.
    """
    layer = _check_recurrent(layer, "step_jacobians")
    seq = _layer_copy(layer, return_sequences=True)
    seq(x, mask=mask, initial_state=initial_state)
    acts = seq.activations()  # (B, T, H) each, processing order, zeros on padding
    x = np.asarray(x, dtype=np.float64)
    x_proc = x[:, ::-1] if layer.go_backwards else x  # (B, T, D)
    B, T, D = x.shape
    H, names = layer.hidden_size, layer.state_names
    S = len(names) * H
    m = _processing_mask(layer, mask, B, T)  # (B, T)

    # the state carried into step t is the one carried out of the latest real step before t
    latest = np.maximum.accumulate(np.where(m, np.arange(T), -1), axis=1)  # (B, T)
    before = np.concatenate([np.full((B, 1), -1), latest[:, :-1]], axis=1)  # (B, T)
    started = (before >= 0)[:, :, None]  # (B, T, 1)
    idx = np.maximum(before, 0)[:, :, None]  # (B, T, 1)
    states_in = [np.where(started, np.take_along_axis(acts[n], idx, axis=1), s0[:, None, :])  # (B, T, H)
                 for n, s0 in zip(names, _state_list(initial_state, layer, B))]

    one = _layer_copy(layer, go_backwards=False, return_state=True)
    N = B * T * S
    one(np.repeat(x_proc.reshape(B * T, 1, D), S, axis=0),  # (N, 1, D)
        mask=np.repeat(m.reshape(B * T, 1), S, axis=0),  # (N, 1)
        initial_state=[np.repeat(s.reshape(B * T, H), S, axis=0) for s in states_in])  # (N, H) each
    seeds = np.tile(np.eye(S), (B * T, 1))  # (N, S): row (b, t, k) is e_k
    one.backward(np.zeros((N, H)), *(seeds[:, i * H:(i + 1) * H] for i in range(len(names))))
    J = np.concatenate(one.initial_state_grad, axis=1)  # (N, S): row k = d s_t[k] / d s_{t-1}
    return J.reshape(B, T, S, S)


def _check_jacobians(J) -> np.ndarray:
    if not isinstance(J, np.ndarray):
        raise TypeError(f"J must be a NumPy array of step Jacobians (B, T, S, S), got {type(J).__name__}")
    if J.ndim != 4 or J.shape[2] != J.shape[3] or 0 in J.shape:
        raise ValueError(f"J must have shape (B, T, S, S) with S > 0 (as step_jacobians returns), got {J.shape}")
    if not np.issubdtype(J.dtype, np.floating) or not np.isfinite(J).all():
        raise ValueError(f"J must hold finite floats, got dtype {J.dtype}"
                         + ("" if not np.issubdtype(J.dtype, np.floating) else " with NaN or inf"))
    return J


def jacobian_norms(J: np.ndarray) -> np.ndarray:
    """Spectral norms ``||J_t||_2`` (largest singular values) of step Jacobians (B, T, S, S); returns (B, T)."""
    return np.linalg.norm(_check_jacobians(J), ord=2, axis=(-2, -1))


def running_products(J: np.ndarray) -> np.ndarray:
    """``||J_T J_{T-1} ... J_{t+1}||_2`` for every t: the most a gradient at the last step can grow or
    shrink on its way back to step t. Returns (B, T); the last step's entry is ``||I|| = 1``.

    ``dL/ds_t = (J_T ... J_{t+1})^T dL/ds_T``, so ``||dL/ds_t|| <= running_products(J)[:, t] ||dL/ds_T||``,
    with equality for the worst direction. The products are built from the last step back,
    ``M_{t} = M_{t+1} J_{t+1}``, one batched matrix product per step.
    """
    J = _check_jacobians(J)
    B, T, S, _ = J.shape
    M = np.empty((T, B, S, S), dtype=np.float64)  # M[t] = J_T ... J_{t+1}, time-major for contiguous steps
    M[T - 1] = np.eye(S)
    J_tm = J.transpose(1, 0, 2, 3)  # (T, B, S, S) view
    for t in range(T - 2, -1, -1):
        np.matmul(M[t + 1], J_tm[t + 1], out=M[t])
    return np.linalg.norm(M, ord=2, axis=(-2, -1)).T.copy()  # (B, T)
