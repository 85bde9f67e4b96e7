"""What the weights and gates say on their own: the spectrum of the recurrent weights ``W``
(:func:`weight_spectrum`) and the LSTM's forget gates along a sequence (:func:`forget_gate_profile`)."""

from __future__ import annotations

import numpy as np

from rnnlab.lab.diagnostics.probes import _check_recurrent, _layer_copy, _processing_mask
from rnnlab.nn.cells import LSTMCell
from rnnlab.nn.recurrent import Recurrent

__all__ = ["weight_spectrum", "forget_gate_profile"]


def _spectrum(W: np.ndarray) -> dict:
    """Largest singular value, and spectral radius (largest |eigenvalue|) when W is square."""
    sigma = float(np.linalg.norm(W, ord=2))
    radius = float(np.abs(np.linalg.eigvals(W)).max()) if W.shape[0] == W.shape[1] else None
    return {"max_singular_value": sigma, "spectral_radius": radius}


def weight_spectrum(layer: Recurrent) -> dict:
    """Spectral radius and largest singular value of the recurrent weights ``W``, whole and per gate.

    Returns
    -------
    dict
        ``{"max_singular_value": s, "spectral_radius": r, "gates": {...}}``: ``s`` of the whole ``W``
        (G*H, H); ``r`` its spectral radius when it is square (the Elman cell), else None; ``gates``
        maps each gate (LSTM ``i, f, g, o``; GRU ``r, z, n``) to the same two numbers of its (H, H)
        block, empty for the Elman cell.

    Notes
    -----
    For the Elman cell ``||dh_t/dh_{t-1}|| <= max|f'| * s``, so ``s < 1`` with tanh guarantees
    vanishing, while ``r > 1`` is necessary for exploding (Pascanu et al. 2013). The GRU's ``n`` block
    multiplies ``r_t * h_{t-1}`` when ``reset_after=False``.
    """
    layer = _check_recurrent(layer, "weight_spectrum")
    W = np.asarray(layer.params["W"], dtype=np.float64)  # (G*H, H)
    H, gates = layer.hidden_size, layer.cell.gate_names
    out = _spectrum(W)
    out["gates"] = {} if len(gates) == 1 else {g: _spectrum(W[k * H:(k + 1) * H]) for k, g in enumerate(gates)}
    return out


def _forget_gates(layer: Recurrent, x, mask, initial_state) -> tuple[np.ndarray, np.ndarray]:
    layer = _check_recurrent(layer, "forget_gate_profile")
    if not isinstance(layer.cell, LSTMCell):
        raise TypeError(f"forget gates belong to the LSTM; got a {type(layer).__name__} "
                        f"(cell {type(layer.cell).__name__})")
    seq = _layer_copy(layer, return_sequences=True)
    seq(x, mask=mask, initial_state=initial_state)
    f = seq.activations()["f"]  # (B, T, H), zeros on padding
    return f, _processing_mask(layer, mask, f.shape[0], f.shape[1])


def forget_gate_profile(layer: Recurrent, x, mask=None, *, initial_state=None) -> np.ma.MaskedArray:
    """The LSTM's mean forget gate per step, over the sequences and the units; padding excluded.

    ``dc_t/dc_{t-1} = diag(f_t)`` on the cell path, so the product of the ``f_t`` along the sequence
    is how much of a cell gradient survives there: a mean of 0.73 (``s(1)``, forget bias 1) keeps
    2e-7 after 50 steps, 0.99 keeps 0.6.

    Parameters
    ----------
    layer : LSTM
        Not modified. Any other cell raises ``TypeError``.
    x : ndarray, shape (B, T, D)
    mask : ndarray of bool, shape (B, T), optional
    initial_state : (h, c), optional

    Returns
    -------
    numpy.ma.MaskedArray, shape (T,)
        Processing order; a step that is padding in every sequence is masked (it has no forget gate).
    """
    f, m = _forget_gates(layer, x, mask, initial_state)
    counts = m.sum(axis=0) * f.shape[2]  # (T,) real (sequence, unit) pairs per step
    mean = np.divide(f.sum(axis=(0, 2)), counts, out=np.zeros(f.shape[1]), where=counts > 0)
    return np.ma.masked_array(mean, mask=counts == 0)
