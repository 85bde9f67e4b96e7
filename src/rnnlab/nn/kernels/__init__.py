"""Which implementation runs the elementwise work of the time loops: NumPy ufuncs or fused kernels.

Each step of a recurrent layer is one GEMM (``h_{t-1} W^T`` forward, ``dz_t W`` backward) and
elementwise work on the gates. With NumPy the elementwise work is a sequence of ufunc calls, about
ten passes over (B, H)-(B, G*H) arrays forward and fifteen backward, each a separate call from
Python. With `numba <https://numba.pydata.org>`_ installed (``pip install rnnlab[fast]``), one
compiled kernel per step does it all in one pass (:mod:`rnnlab.nn.kernels.numba_kernels`, described by
:class:`StepKernels`): the GEMMs stay NumPy's. The same backend choice runs the row pass of the softmax
cross-entropy with class ids (max, exp, sum, term and gradient of each row of logits in one compiled
pass; :class:`rnnlab.nn.losses.SoftmaxCrossEntropy`).

Backends
--------
``"auto"`` (default)
    The fused kernels for float32 when numba is importable, NumPy otherwise. Float64 stays on NumPy:
    its vectorised ``tanh`` is faster there than the scalar libm one a kernel would call.
``"numba"``
    The fused kernels for every dtype (an error when numba is missing). Float64 kernels use libm's
    ``tanh``; float32 kernels a rational approximation accurate to a few units in the last place
    (:func:`rnnlab.nn.kernels.numba_kernels.tanh32`), which vectorises.
``"numpy"``
    The ufunc sequence everywhere.

The environment variable ``RNNLAB_KERNELS`` sets the backend at import; :func:`use` (or
:func:`set_backend`) changes it at run time: ``kernels.use("numpy")`` switches for the rest of the
process, ``with kernels.use("numpy"): ...`` for a block. An invalid ``RNNLAB_KERNELS`` does not stop
the import: the first layer call raises the ``ValueError`` naming it (:func:`environment_error`; the
command line reports it before doing anything), unless a backend is chosen in code first.
Both implementations compute the same equations from the same buffers (a tape written by one can
be differentiated by the other), and the gradient-check and PyTorch reference suites run on each.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Protocol

import numpy as np

from rnnlab._threads import num_threads, split_rows  # noqa: F401  (re-exported: the kernels' thread blocks)

BACKENDS = ("auto", "numba", "numpy")
ENV = "RNNLAB_KERNELS"

_backend = "auto"
_module: StepKernels | None = None  # rnnlab.nn.kernels.numba_kernels once imported
_available: bool | None = None  # whether numba is installed, looked up once (the lookup takes ~50 us)
_env_error: str | None = None  # why RNNLAB_KERNELS was refused, until a backend is chosen in code


def available() -> bool:
    """True when numba can be imported (the ``fast`` extra is installed)."""
    global _available
    if _available is None:
        _available = importlib.util.find_spec("numba") is not None
    return _available


def _check(name) -> str:
    if name not in BACKENDS:
        raise ValueError(f"kernel backend must be one of {', '.join(repr(b) for b in BACKENDS)}; got {name!r}")
    if name == "numba" and not available():
        raise ValueError("kernel backend 'numba' needs numba: pip install rnnlab[fast] (or pip install numba)")
    return name


def backend() -> str:
    """The backend in force: ``"auto"``, ``"numba"`` or ``"numpy"``."""
    return _backend


def set_backend(name: str) -> None:
    """Choose the backend for every later forward and backward call (see the module docstring)."""
    global _backend, _env_error
    _backend = _check(name)
    _env_error = None


def environment_error() -> str | None:
    """Why the ``RNNLAB_KERNELS`` of this process was refused (None when it was not, or a backend was set since)."""
    return _env_error


class use:
    """Switch the backend: ``kernels.use("numpy")`` from now on, ``with kernels.use("numpy"): ...`` for a block.

    The name is checked at the call either way (a ``ValueError`` for an unknown one). As a context
    manager the backend in force before the call comes back when the block ends.
    """

    def __init__(self, name: str):
        self.previous = backend()
        set_backend(name)
        self.name = name

    def __enter__(self) -> use:
        return self

    def __exit__(self, *exc_info) -> None:
        set_backend(self.previous)

    def __repr__(self) -> str:
        return f"kernels.use({self.name!r})"


class StepKernels(Protocol):
    """The fused step kernels as the cells call them (:mod:`rnnlab.nn.kernels.numba_kernels`).

    Each runs one time step's elementwise work after its GEMM, in one pass, reading and writing the
    cells' own buffers under the cells' names (the equations are in the cells' docstrings). Every
    array is C-contiguous; ``dy`` is the whole (B, T, H) output gradient and ``t`` the step to read
    from it. Outputs are written in place; nothing is returned.
    """

    def lstm_forward(self, z: np.ndarray, zh: np.ndarray, b: np.ndarray, c_prev: np.ndarray, c_t: np.ndarray,
                     h_t: np.ndarray) -> None: ...

    def lstm_backward(self, dh: np.ndarray, dy: np.ndarray, t: int, dc_next: np.ndarray, z: np.ndarray,
                      c_t: np.ndarray, c_prev: np.ndarray, tanh_c: np.ndarray, dz: np.ndarray,
                      dc: np.ndarray) -> None: ...

    def gru_forward(self, gates: np.ndarray, gh: np.ndarray, b: np.ndarray, b_hn: np.ndarray, h_prev: np.ndarray,
                    hn: np.ndarray, h_t: np.ndarray) -> None: ...

    def gru_backward(self, dh: np.ndarray, dy: np.ndarray, t: int, gates: np.ndarray, h_prev: np.ndarray,
                     hn: np.ndarray, dh_total: np.ndarray, dg: np.ndarray, dgh: np.ndarray,
                     dh_prev: np.ndarray) -> None: ...

    def elman_tanh_forward(self, z: np.ndarray, za: np.ndarray, b: np.ndarray) -> None: ...

    def elman_tanh_backward(self, da: np.ndarray, dy: np.ndarray, t: int, a_t: np.ndarray, dz: np.ndarray) -> None: ...

    # the row pass of the softmax cross-entropy with class ids (rnnlab.nn.losses.SoftmaxCrossEntropy)
    def softmax_xent_rows(self, z: np.ndarray, zi: np.ndarray, ids: np.ndarray, valid: np.ndarray, weight,
                          grad: np.ndarray, keep: bool, bits: np.ndarray, scale: np.ndarray, m_bits: np.ndarray,
                          m_val: np.ndarray, absmask, shift, inf_bits, terms: np.ndarray) -> int: ...


def module() -> StepKernels:
    """The numba kernels, imported (and their compiled code loaded) on first use; needs numba."""
    global _module
    if _module is None:
        from rnnlab.nn.kernels import numba_kernels

        _module = numba_kernels
    return _module


def fused(dtype) -> StepKernels | None:
    """The fused kernels to use for arrays of ``dtype`` under the backend in force, or None for NumPy."""
    if _env_error is not None:
        raise ValueError(_env_error)
    if _backend == "numpy" or (_backend == "auto" and (dtype != np.float32 or not available())):
        return None
    return module()


_env = os.environ.get(ENV)
if _env:
    try:
        set_backend(_env)
    except ValueError as exc:  # not raised here: an import that fails is a traceback in every program using rnnlab
        _env_error = f"environment variable {ENV}={_env!r}: {exc}"
