"""Buffers a layer keeps from one call to the next: scratch it alone reads, and results it hands out.

A (B*T, V) logit block of a language model is 16 MB in float32; allocating it (and its gradient, and
the temporaries of a backward GEMM) afresh on every call costs page faults and cache misses the
arithmetic does not need. :class:`Buffers` keeps such arrays across calls, in two kinds:

``scratch(name, shape, dtype)``
    Internal work space, never returned to a caller: handed out again on every call of the same
    shape and dtype (the recurrent layers' :class:`~rnnlab.nn.cells.base.Workspace` follows the same
    rule for their tapes).

``result(name, shape, dtype)``
    An array the layer returns (an output, an input gradient). The rule: **a result buffer is
    reused only when nothing outside the layer still refers to it** — not the array the caller got
    from the previous call, nor any view of it (a slice, a reshape, ``torch.from_numpy``), since
    every view keeps a reference to the buffer it looks into. Otherwise a new array is allocated
    and the old one is left to whoever holds it. So what a call returned never changes under its
    holder: ``y1 = dense(x1); y2 = dense(x2)`` leaves ``y1`` intact, and ``outputs.append(dense(x))``
    in a loop collects distinct arrays; while a training loop that drops the previous step's
    logits before the next forward call (as :func:`rnnlab.nn.step.train_step` does) gets the same
    buffer back every step. The layer must itself drop the references its tape holds before asking
    (it is about to replace its tape anyway). Only references NumPy can see count: a raw pointer
    taken from ``__array_interface__`` or ``ctypes`` and kept past the next call is not protected.

Whether anything else refers to a buffer is read from its reference count
(:func:`sys.getrefcount`), measured against the count of a buffer nobody else holds, taken at the
same place in the code, so the comparison does not depend on how the interpreter counts its own
temporary references. On an interpreter without reference counts every result is a new array.

Copies (``copy.deepcopy``, pickling) start with no buffers.
"""

from __future__ import annotations

import sys

import numpy as np

__all__ = ["Buffers"]

_getrefcount = getattr(sys, "getrefcount", None)


class Buffers:
    """A layer's kept arrays by name (see the module docstring for the two kinds and the reuse rule)."""

    __slots__ = ("_arrays", "_free_refs")

    def __init__(self):
        self._arrays: dict[str, np.ndarray] = {}
        # the reference count of a result buffer nobody outside holds, read where ``result`` reads it
        self._free_refs: int | None = None

    def scratch(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        """An uninitialised array for the layer's own use, the same one on every call of this shape and dtype."""
        array = self._arrays.get(name)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = self._arrays[name] = np.empty(shape, dtype=dtype)
        return array

    def result(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        """An uninitialised array to return to the caller: the kept one when it has this shape and dtype and
        nothing outside the layer refers to it any more, else a new one (then kept)."""
        array = self._arrays.get(name)
        if (array is not None and array.shape == shape and array.dtype == dtype
                and _getrefcount is not None and _getrefcount(array) == self._free_refs):
            return array
        array = np.empty(shape, dtype=dtype)
        self._arrays[name] = array
        if _getrefcount is not None:
            self._free_refs = _getrefcount(array)  # held by the dict and this frame only, as in the test above
        return array

    def clear(self) -> None:
        """Forget every kept array (they stay valid for whoever still holds them)."""
        self._arrays.clear()

    def __len__(self) -> int:
        return len(self._arrays)

    # copies and pickles start empty: the buffers are a cache, not state
    def __reduce__(self):
        return (Buffers, ())

    def __deepcopy__(self, memo):
        return Buffers()
