"""Gradient clipping and the global gradient norm, the one place rnnlab computes ``||g||`` over a model."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from rnnlab._errors import NonFiniteError
from rnnlab._validation import check_number


def global_norm(named_arrays: Iterable[tuple[str, np.ndarray]]) -> float:
    """``sqrt(sum over arrays of sum a^2)``, without overflow, for ``(name, array)`` pairs.

    Each array's norm is taken by ``np.linalg.norm`` and, when its squares overflow, again from the
    array scaled by its largest entry (in float64); the norms are combined by ``math.hypot``.

    Raises
    ------
    NonFiniteError
        If an array holds NaN or inf, naming it and the first index.
    """
    norms = []
    for name, a in named_arrays:
        with np.errstate(over="ignore", invalid="ignore"):  # a non-finite norm is handled just below
            n = float(np.linalg.norm(a.reshape(-1)))
        if not math.isfinite(n):
            finite = np.isfinite(a)
            if not finite.all():
                bad = tuple(int(i) for i in np.argwhere(~finite)[0])
                raise NonFiniteError(f"gradient of parameter {name!r} contains NaN or inf ({a[bad]} at index {bad})",
                                     name=name, index=bad)
            scale = float(np.max(np.abs(a)))  # finite entries whose squares overflowed: rescale
            n = scale * float(np.linalg.norm(a.reshape(-1).astype(np.float64) / scale))
        norms.append(n)
    return math.hypot(*norms)


def clip_grad_norm(model, max_norm: float) -> float:
    """Scale all gradients in place so their global L2 norm is at most ``max_norm``.

    Parameters
    ----------
    model
        Anything with ``named_grads()`` yielding ``(dotted_name, ndarray)``.
    max_norm : float
        ``c > 0``.

    Returns
    -------
    float
        The global norm before clipping, ``||g|| = sqrt(sum over parameters of sum g^2)`` (:func:`global_norm`).

    Raises
    ------
    NonFiniteError
        If a gradient holds NaN or inf (naming the parameter); no gradient is changed then.

    Notes
    -----
    As ``torch.nn.utils.clip_grad_norm_``: with ``k = c / (||g|| + 1e-6)``, every gradient is
    multiplied by ``k`` when ``k < 1`` and left alone otherwise.
    """
    max_norm = check_number("max_norm", max_norm, positive=True)
    grads = list(model.named_grads())
    total = global_norm(grads)
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for _, g in grads:
            g *= coef
    return total


def clip_grad_value(model, clip_value: float) -> None:
    """Clamp every gradient entry in place to ``[-clip_value, clip_value]`` (``torch.nn.utils.clip_grad_value_``)."""
    clip_value = check_number("clip_value", clip_value, positive=True)
    for _, g in model.named_grads():
        np.clip(g, -clip_value, clip_value, out=g)
