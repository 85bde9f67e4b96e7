"""Weight initialisers.

Every initialiser is called as ``init(shape, rng, dtype, fan_in=None, fan_out=None, **kwargs)`` and returns a new
array. For the gate-stacked matrices of LSTM and GRU (``(G*H, D)`` or ``(G*H, H)``), the recurrent
layers call it once per gate block, so ``orthogonal`` and ``identity`` act on each ``H x H`` block
as Keras and the IRNN paper intend, and fans are those of one gate.

========================  ==================================================================
name                      rule
========================  ==================================================================
``glorot_uniform``        ``U(-a, a)``, ``a = sqrt(6 / (fan_in + fan_out))`` (Glorot & Bengio 2010)
``orthogonal``            ``Q`` from the QR decomposition of a Gaussian matrix, sign-corrected
                          (Saxe et al. 2014)
``identity``              ``I`` (Le, Jaitly & Hinton 2015, IRNN; rectangular: ones on the diagonal)
``uniform``               ``U(-scale, scale)``; ``uniform(0.1)`` is Zaremba et al.'s ``U(-0.1, 0.1)``
``pytorch``               ``U(-k, k)``, ``k = 1/sqrt(H)`` in recurrent layers, ``1/sqrt(fan_in)`` in Dense
``zeros`` / ``ones``      constants
``normal``                ``N(0, scale^2)``
``chrono:T_MAX``          the gate biases of an LSTM or GRU only (``bias_initializer``; Tallec &
                          Ollivier 2018): LSTM ``b_f = log(u)``, ``u ~ U(1, T_MAX - 1)``, ``b_i = -b_f``;
                          GRU ``b_z = log(u)`` on its update gate; every other bias 0
========================  ==================================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

Initializer = Callable[..., np.ndarray]


def _fans(shape, fan_in, fan_out):
    if fan_in is None:
        fan_in = shape[-1] if len(shape) > 1 else shape[0]
    if fan_out is None:
        fan_out = shape[0]
    return fan_in, fan_out


def glorot_uniform(shape, rng, dtype, fan_in=None, fan_out=None, **kwargs):
    fan_in, fan_out = _fans(shape, fan_in, fan_out)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def orthogonal(shape, rng, dtype, fan_in=None, fan_out=None, gain=1.0, **kwargs):
    rows, cols = shape[0], int(np.prod(shape[1:]))
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))  # makes the decomposition unique (uniform over the orthogonal group)
    if rows < cols:
        q = q.T
    return (gain * q[:rows, :cols]).reshape(shape).astype(dtype)


def identity(shape, rng, dtype, fan_in=None, fan_out=None, gain=1.0, **kwargs):
    if len(shape) != 2:
        raise ValueError(f"the identity initialiser needs a 2-D shape, got {shape}")
    return (gain * np.eye(*shape)).astype(dtype)


def zeros(shape, rng, dtype, fan_in=None, fan_out=None, **kwargs):
    return np.zeros(shape, dtype=dtype)


def ones(shape, rng, dtype, fan_in=None, fan_out=None, **kwargs):
    return np.ones(shape, dtype=dtype)


class uniform:
    """``U(-scale, scale)``; ``uniform(0.1)`` is Zaremba et al.'s initialisation."""

    def __init__(self, scale: float = 0.05):
        if not scale > 0:
            raise ValueError(f"uniform initialiser scale must be > 0, got {scale}")
        self.scale = float(scale)

    def __call__(self, shape, rng, dtype, fan_in=None, fan_out=None, **kwargs):
        return rng.uniform(-self.scale, self.scale, size=shape).astype(dtype)

    def __repr__(self):
        return f"uniform({self.scale})"


class normal:
    """``N(0, scale^2)``."""

    def __init__(self, scale: float = 0.05):
        if not scale > 0:
            raise ValueError(f"normal initialiser scale must be > 0, got {scale}")
        self.scale = float(scale)

    def __call__(self, shape, rng, dtype, fan_in=None, fan_out=None, **kwargs):
        return (self.scale * rng.standard_normal(size=shape)).astype(dtype)

    def __repr__(self):
        return f"normal({self.scale})"


class chrono:
    """Chrono initialisation (Tallec & Ollivier 2018) of a gated recurrent layer's biases, for
    dependencies of up to about ``T_max`` steps: ``log(U(1, T_max - 1))`` on the forget (LSTM) or update
    (GRU) gate, so that the gate's characteristic forgetting times spread over ``[1, T_max]``.

    Only the LSTM and GRU cells know their gates (``LSTMCell``/``GRUCell.init_params`` call
    :meth:`draw`); called as an ordinary initialiser (any other weight) it raises.
    """

    def __init__(self, T_max: float):
        if isinstance(T_max, bool) or not isinstance(T_max, (int, float, np.integer, np.floating)) or not T_max > 2:
            raise ValueError(f"chrono initialiser T_max must be a number > 2 (the longest dependency, in steps), "
                             f"got {T_max!r}")
        self.T_max = float(T_max)

    def draw(self, size: int, rng: np.random.Generator, dtype) -> np.ndarray:
        """``log(u)``, ``u ~ U(1, T_max - 1)``, ``size`` values."""
        return np.log(rng.uniform(1.0, self.T_max - 1.0, size=size)).astype(dtype)

    def __call__(self, shape, rng, dtype, fan_in=None, fan_out=None, **kwargs):
        raise ValueError(f"{self!r} initialises the gate biases of an LSTM or GRU only (their bias_initializer)")

    def __repr__(self):
        return f"chrono({self.T_max:g})"


def pytorch(shape, rng, dtype, fan_in=None, fan_out=None, hidden_size=None, **kwargs):
    """PyTorch's defaults: ``U(-k, k)`` with ``k = 1/sqrt(H)`` in recurrent layers (every weight and
    bias), ``k = 1/sqrt(fan_in)`` elsewhere (``nn.Linear``)."""
    fan_in, _ = _fans(shape, fan_in, fan_out)
    k = 1.0 / math.sqrt(hidden_size if hidden_size is not None else fan_in)
    return rng.uniform(-k, k, size=shape).astype(dtype)


_NAMED = {
    "glorot_uniform": glorot_uniform,
    "orthogonal": orthogonal,
    "identity": identity,
    "zeros": zeros,
    "ones": ones,
    "uniform": uniform(0.05),
    "normal": normal(0.05),
    "pytorch": pytorch,
}


def get(spec, argument: str = "initializer") -> Initializer:
    """Resolve an initialiser: a name, ``"uniform:0.1"`` / ``"normal:0.01"``, or a callable."""
    if callable(spec):
        return spec
    if isinstance(spec, str):
        if ":" in spec:
            kind, _, value = spec.partition(":")
            if kind in ("uniform", "normal", "chrono"):
                try:
                    scale = float(value)
                except ValueError:
                    raise ValueError(f"{argument} {spec!r}: the {'T_max' if kind == 'chrono' else 'scale'} after ':' "
                                     "must be a number") from None
                if kind == "chrono":
                    try:
                        return chrono(scale)
                    except ValueError as exc:
                        raise ValueError(f"{argument} {spec!r}: {exc}") from None
                return uniform(scale) if kind == "uniform" else normal(scale)
        elif spec in _NAMED:
            return _NAMED[spec]
    raise ValueError(
        f"{argument} must be one of {', '.join(sorted(_NAMED))}, 'uniform:SCALE', 'normal:SCALE', 'chrono:T_MAX' "
        f"(gate biases) or a callable; "
        f"got {spec!r}"
    )


def to_config(spec):
    """A JSON-serialisable form of an initialiser spec (names pass through; callables need a name)."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, (uniform, normal)):
        return f"{type(spec).__name__}:{spec.scale}"
    if isinstance(spec, chrono):
        return f"chrono:{spec.T_max:g}"
    for name, builtin in _NAMED.items():
        if spec is builtin:
            return name
    raise ValueError(f"initialiser {spec!r} is a custom callable and cannot be saved in a config; pass a name instead")
