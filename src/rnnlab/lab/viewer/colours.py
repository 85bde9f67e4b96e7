"""The colour rule of the page: the scale of each quantity, the end colours and :func:`colour`."""

from __future__ import annotations

import math

__all__ = ["SCALES", "POSITIVE", "NEGATIVE", "UNIT", "colour"]

#: the colour scale of each quantity: "unit" values lie in [0, 1] (sigmoid gates, probabilities),
#: "signed" ones in [-1, 1] (tanh range); "unbounded" ones (the LSTM cell state) are scaled by the
#: selected unit's largest |value| over the text. A quantity whose values leave its range (a relu
#: or linear activation) is shown as "unbounded".
SCALES = {"h": "signed", "c": "unbounded", "i": "unit", "f": "unit", "g": "signed", "o": "unit", "r": "unit",
          "z": "unit", "n": "signed", "p": "unit"}

#: end colour (R, G, B) of the positive values; a value of 0 is white
POSITIVE = (230, 85, 60)
#: end colour (R, G, B) of the negative values
NEGATIVE = (60, 130, 210)
#: end colour (R, G, B) of a ``unit`` scale (gates, probabilities: 0 to 1)
UNIT = (40, 160, 80)


def colour(value: float, scale: str, extent: float = 1.0) -> tuple[int, int, int]:
    """The background colour (R, G, B) of a value on a scale.

    Parameters
    ----------
    value : float
    scale : "unit", "signed" or "unbounded"
        See :data:`SCALES`.
    extent : float
        For "unbounded": the largest |value| of the unit, which maps to the full colour (ignored
        by the other scales). 0 shows everything white.

    Notes
    -----
    With ``s = clip(value, 0, 1)`` and end colour ``UNIT`` on the unit scale, or
    ``s = |clip(value / extent, -1, 1)|`` and end colour ``POSITIVE`` (value >= 0) or ``NEGATIVE``
    on the others (``extent = 1`` for "signed"), each channel is
    ``floor(255 + s * (end - 255) + 0.5)``: white at 0, the end colour at full scale, linear in
    between. The page's script evaluates the same expression in the same float64 order, so both
    give the same integers.
    """
    value = float(value)
    if scale == "unit":
        s, end = min(max(value, 0.0), 1.0), UNIT
    elif scale in ("signed", "unbounded"):
        u = value if scale == "signed" else (value / extent if extent > 0 else 0.0)
        u = min(max(u, -1.0), 1.0)
        s, end = abs(u), (POSITIVE if u >= 0 else NEGATIVE)
    else:
        raise ValueError(f"scale must be one of 'unit', 'signed', 'unbounded'; got {scale!r}")
    return tuple(math.floor(255 + s * (e - 255) + 0.5) for e in end)
