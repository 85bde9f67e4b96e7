"""The page's data: every value as one byte on its unit's own range (:func:`decode` reads one back),
and the layer list of a :class:`~rnnlab.lab.viewer.tracing.Trace` encoded for the page."""

from __future__ import annotations

import base64

import numpy as np

from rnnlab.lab.viewer.colours import SCALES
from rnnlab.lab.viewer.tracing import Trace

__all__ = ["DESCRIPTIONS", "decode"]

#: what each quantity means, for the page
DESCRIPTIONS = {
    "h": "hidden state h_t", "c": "cell state c_t", "i": "input gate i_t", "f": "forget gate f_t",
    "g": "candidate g_t", "o": "output gate o_t", "r": "reset gate r_t", "z": "update gate z_t",
    "n": "candidate n_t", "p": "probability of the next token",
}

_CODES = 255  # an 8-bit code k stands for lo + (hi - lo) * k / 255
_TOP_UNITS = 10  # units listed by variance on the page


def decode(code, lo: float, hi: float) -> float:
    """The value an 8-bit code stands for: ``lo + (hi - lo) * code / 255`` (evaluated in this order,
    in float64, exactly as the page's script does)."""
    return lo + (hi - lo) * int(code) / _CODES


def _sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def _encode(values: np.ndarray, missing: np.ndarray | None) -> dict:
    """Codes and ranges of a (H, T) array: one byte per value on each unit's own [lo, hi]."""
    present = values if missing is None else values[:, ~missing]  # (H, T')
    lo = np.array([_sig(v) for v in present.min(axis=1)])  # (H,) 4 significant digits
    hi = np.array([_sig(v) for v in present.max(axis=1)])  # (H,)
    span = hi - lo  # (H,)
    safe = np.where(span > 0, span, 1.0)
    codes = np.floor((values - lo[:, None]) / safe[:, None] * _CODES + 0.5)  # (H, T)
    codes = np.clip(np.where(span[:, None] > 0, codes, 0), 0, _CODES).astype(np.uint8)
    if missing is not None:
        codes[:, missing] = 0
    std = present.std(axis=1)  # (H,)
    top = np.argsort(-std, kind="stable")[:_TOP_UNITS]
    return {"lo": lo.tolist(), "hi": hi.tolist(), "codes": base64.b64encode(codes.tobytes()).decode("ascii"),
            "top": [[int(u), _sig(float(std[u]), 3)] for u in top]}


def _scale_of(quantity: str, values: np.ndarray) -> str:
    scale = SCALES.get(quantity, "unbounded")
    low, high = {"unit": (0.0, 1.0), "signed": (-1.0, 1.0)}.get(scale, (-np.inf, np.inf))
    return scale if values.min() >= low and values.max() <= high else "unbounded"


def _page_layers(traced: Trace) -> list[dict]:
    """The layer list of the page, with every quantity encoded (the output row last, if any)."""
    layers = []
    for lt in traced.layers:
        quantities = {}
        for q, v in lt.values.items():
            quantities[q] = {"scale": _scale_of(q, v), "label": DESCRIPTIONS.get(q, q), **_encode(v.T, None)}
        layers.append({"name": lt.name, "path": lt.path, "cell": lt.cell, "units": lt.units, "quantities": quantities})
    if traced.next_token_prob is not None and traced.next_token_prob.size:
        T = traced.steps
        p = np.zeros((1, T))
        p[0, :T - 1] = traced.next_token_prob
        missing = np.zeros(T, dtype=bool)
        missing[T - 1] = True  # the last token has no next one
        layers.append({"name": "output: next token", "path": "output", "cell": "softmax", "units": 1,
                       "quantities": {"p": {"scale": "unit", "label": DESCRIPTIONS["p"], "missing": [T - 1],
                                            **_encode(p, missing)}}})
    return layers
