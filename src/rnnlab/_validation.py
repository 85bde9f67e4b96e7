"""Argument checks shared by every module.

Each check raises ``TypeError`` or ``ValueError`` whose message names the argument, what it got
(shape, dtype or value) and what was expected, so a user can fix the call without reading the code.
An array holding NaN or inf raises :class:`~rnnlab._errors.NonFiniteError` (a ``ValueError``), which
callers catch by type.
"""

from __future__ import annotations

import importlib
import math
import numbers
from collections.abc import Iterable

import numpy as np

from rnnlab._errors import NonFiniteError

FLOAT_DTYPES = {"float32": np.float32, "float64": np.float64}


def resolve_dtype(dtype) -> np.dtype:
    """Return ``np.float32`` or ``np.float64`` for a name or NumPy dtype; reject everything else."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.name not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return resolved


def check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a positive int, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return int(value)


def check_choice(name: str, value, choices: Iterable[str]):
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")
    return value


def check_rate(name: str, value, *, high_inclusive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    ok = 0.0 <= value <= 1.0 if high_inclusive else 0.0 <= value < 1.0
    if not ok:
        bound = "[0, 1]" if high_inclusive else "[0, 1)"
        raise ValueError(f"{name} must be in {bound}, got {value}")
    return float(value)


def check_features(owner: str, input_shape) -> int:
    """The number of features (the last entry) of ``input_shape``, which must be a positive int; the error
    names the input's shape (what the caller passed), not an argument it never gave."""
    D = input_shape[-1] if len(input_shape) else None
    if isinstance(D, bool) or not isinstance(D, (int, np.integer)) or D < 1:
        raise ValueError(f"{owner} needs inputs with at least one feature on their last axis; got input shape "
                         f"{tuple(input_shape)}")
    return int(D)


def as_float_array(name: str, x, dtype: np.dtype, ndim: int | None = None) -> np.ndarray:
    """Validate a floating input and cast it to ``dtype`` (a copy only when the dtype differs).

    Rejects non-arrays of the wrong rank, non-float dtypes (integers are token ids, meant for an
    ``Embedding``) and non-finite values.
    """
    if not isinstance(x, np.ndarray):
        if isinstance(x, (list, tuple)) or np.isscalar(x):
            x = np.asarray(x)
        else:
            raise TypeError(f"{name} must be a NumPy array, got {type(x).__name__}")
    if x.dtype.kind != "f":  # (np.issubdtype says the same, ten times slower: this runs on every call)
        hint = " (integer token ids go through an Embedding or rnnlab.one_hot first)" if x.dtype.kind in "iu" else ""
        raise TypeError(f"{name} must be a float array, got dtype {x.dtype}{hint}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {x.shape}")
    x = cast_float(name, x, dtype)
    if not all_finite(x):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
        raise NonFiniteError(f"{name} contains NaN or inf (first at index {bad})", name=name, index=bad)
    return x


def cast_float(name: str, x: np.ndarray, dtype, *, shown: np.ndarray | None = None) -> np.ndarray:
    """The float array ``x`` cast to ``dtype``; a finite value the cast would make infinite is a ``ValueError``
    naming it, its index and the dtype's range (instead of NumPy's overflow warning and an ``inf``).

    ``shown``, of ``x``'s shape, holds the values to name in the message (e.g. before a scaling).
    """
    dtype = np.dtype(dtype)
    if x.dtype == dtype:
        return x
    with np.errstate(over="ignore", invalid="ignore"):
        y = x.astype(dtype)
    if x.dtype.itemsize > dtype.itemsize and not all_finite(y):
        overflow = np.isinf(y) & np.isfinite(x)
        if overflow.any():
            bad = tuple(int(i) for i in np.argwhere(overflow)[0])
            value = (x if shown is None else shown)[bad]
            raise ValueError(f"{name} holds {value:.6g} at index {bad}, out of {dtype.name}'s range (magnitudes up "
                             f"to {np.finfo(dtype).max:.4g}), so it cannot be computed in {dtype.name}; scale the "
                             f"data down or use a float64 model")
    return y


_FINITE_BY_DOT = 1 << 14  # from this size on, a dot product beats np.isfinite(x).all() (no bool temporary)


def all_finite(x: np.ndarray) -> bool:
    """Whether every entry of the float array ``x`` is finite (``np.isfinite(x).all()``, about twice as fast
    on large arrays).

    A large contiguous array is first checked by ``x . x`` (one BLAS pass, no temporary): a NaN or an
    infinity makes the sum of squares NaN or infinite (the squares are never negative, so infinities
    cannot cancel), so a finite result proves every entry finite. A non-finite result may also be an
    overflow of finite squares; then the exact elementwise test decides.
    """
    if x.size >= _FINITE_BY_DOT and x.dtype.char in "fd" and x.flags.c_contiguous:
        flat = x.reshape(-1)
        with np.errstate(all="ignore"):
            if math.isfinite(np.dot(flat, flat)):
                return True
    return bool(np.isfinite(x).all())


def check_sequence_input(name: str, x, dtype: np.dtype, input_size: int | None) -> np.ndarray:
    """Check a ``(batch, timesteps, features)`` float input."""
    x = as_float_array(name, x, dtype, ndim=3)
    B, T, D = x.shape
    if B == 0:
        raise ValueError(f"{name} must have at least one sequence in the batch, got shape {x.shape}")
    if T == 0:
        raise ValueError(f"{name} must have at least one time step, got shape {x.shape} (batch, timesteps, features)")
    if input_size is not None and D != input_size:
        raise ValueError(f"{name} must have {input_size} features in its last axis, got shape {x.shape}")
    return x


def as_bool_mask(mask) -> np.ndarray:
    """``mask`` as a boolean array; integers and floats must hold only 0 and 1."""
    mask = np.asarray(mask)
    if mask.dtype != bool:
        if not (np.issubdtype(mask.dtype, np.integer) or np.issubdtype(mask.dtype, np.floating)):
            raise TypeError(f"mask must be a boolean or 0/1 array, got dtype {mask.dtype}")
        bad = np.unique(mask[~np.isin(mask, (0, 1))])
        if bad.size:
            raise ValueError(f"mask must hold only 0 and 1 (or booleans), got values {bad[:5].tolist()}")
        mask = mask.astype(bool)
    return mask


def check_mask(mask, batch: int, timesteps: int) -> np.ndarray | None:
    """Return ``mask`` as a boolean ``(batch, timesteps)`` array, or None."""
    if mask is None:
        return None
    mask = as_bool_mask(mask)
    if mask.shape != (batch, timesteps):
        raise ValueError(f"mask must have shape (batch, timesteps) = {(batch, timesteps)}, got {mask.shape}")
    return mask


def registry_entry(argument: str, spec, base: type, names: dict, kwargs: dict):
    """Resolve a name-or-instance argument (``loss="mse"``, ``optimizer=Adam(...)``).

    Returns ``spec`` itself when it is an instance of ``base`` (then ``kwargs`` must be empty), else
    ``names[spec]``; anything else raises, naming ``argument``, what it got and the valid names.
    """
    if isinstance(spec, base):
        if kwargs:
            raise ValueError(f"{argument} is already a {type(spec).__name__} instance; cannot apply {kwargs}")
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"{argument} must be a name (str) or an instance of {base.__name__}, "
                        f"got {type(spec).__name__} {spec!r}")
    if spec not in names:
        raise ValueError(f"{argument} must be one of {', '.join(repr(n) for n in names)}; got {spec!r}")
    return names[spec]


def seed_config(seed) -> int | None:
    """The JSON form of a ``seed`` argument: the integer, or None for a Generator or no seed."""
    return int(seed) if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) else None


def as_generator(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)):
        return np.random.default_rng(seed)
    raise TypeError(f"seed must be an int, a numpy.random.Generator or None, got {type(seed).__name__} {seed!r}")


def check_number(name: str, value, *, positive: bool = False) -> float:
    """A finite real number that is ``>= 0`` (or ``> 0`` with ``positive``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, got {value}")
    return value


def check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def optional_module(name: str, needed_by: str, install: str):
    """Import the optional package ``name``, or raise ``ImportError`` saying what needs it and how to install it.

    ``needed_by`` names the caller (``"rnnlab.onnx.export"``), ``install`` the command (``pip install 'rnnlab[onnx]'``).
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(f"{needed_by} needs {name}, an optional dependency of rnnlab; install it with "
                          f"{install}") from exc
