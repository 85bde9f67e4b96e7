"""One-pass optimizer updates, compiled by numba when it is installed (the optional ``fast`` extra).

The NumPy form of an update (``rnnlab.optim.optimizers``) makes five to ten passes over a parameter
and its buffers, each rounding its result to the parameter's dtype. The kernels here do the same
operations in the same order on one element at a time, so they round identically: no fast-math flags
(no fused multiply-add, no reassociation), and every scalar is handed over already in the
parameter's dtype, as NumPy casts a Python float against a float32 array. The tests check that both
forms give the same bits. The loops are flat (``p.reshape(-1)``); parameters are C-contiguous.

``kernels()`` returns None without numba, or when ``RNNLAB_FUSED_OPTIM=0`` (for comparisons); the
optimizers then use their NumPy form.
"""

from __future__ import annotations

import math
import os

from rnnlab._threads import split_rows

_KERNELS = None
_MIN_SIZE = 1024  # below this, the NumPy form costs no more than the call
_MIN_SPLIT = 1 << 17  # elements per thread below which an update is not split (a hand-off costs ~20 us)


def kernels():
    """The compiled kernels as a namespace, or None when numba is missing or disabled."""
    global _KERNELS
    if _KERNELS is None:
        _KERNELS = _build() if os.environ.get("RNNLAB_FUSED_OPTIM", "1") != "0" else False
    return _KERNELS or None


def usable(p, g) -> bool:
    """Whether ``p`` and its gradient ``g`` can take a kernel (large, contiguous, the same float dtype)."""
    return (p.size >= _MIN_SIZE and p.dtype.char in "fd" and g.dtype == p.dtype and p.flags.c_contiguous
            and g.flags.c_contiguous and kernels() is not None)


def blocks(kernel, arrays, scalars) -> None:
    """``kernel(*arrays, *scalars)`` on contiguous blocks of the flat ``arrays`` (the parameter, its
    gradient, its buffers; an empty buffer stays empty) on :func:`rnnlab._threads.split_rows`' threads.
    Elementwise, so the bits do not depend on the blocks."""
    def run(lo, hi):
        kernel(*(a[lo:hi] if a.size else a for a in arrays), *scalars)
    split_rows(run, arrays[0].size, _MIN_SPLIT)


def _build():
    try:
        from numba import njit
    except ImportError:
        return False

    jit = njit(cache=True, nogil=True, error_model="numpy", boundscheck=False)

    @jit
    def sgd(p, g, buf, lr, wd, mu, one_minus_damp, damp, first, nesterov):
        """``rnnlab.optim.SGD._update``; ``buf`` is unused (size 0) without momentum."""
        use_buf = buf.size > 0
        for i in range(p.size):
            gi = g[i]
            if wd != 0:
                gi = p[i] * wd + gi
            if use_buf:
                if first:
                    b = gi
                else:
                    b = buf[i] * mu
                    b = b + (gi * one_minus_damp if damp != 0 else gi)
                buf[i] = b
                gi = b * mu + gi if nesterov else b
            p[i] = p[i] - gi * lr

    @jit
    def adam(p, g, m, v, vmax, wd, decay, w, one_minus_w, small_w, beta2, one_minus_beta2, root_bc2, eps,
             step_size):
        """``rnnlab.optim.Adam._update`` (AdamW with ``decay`` != 1); ``vmax`` has size 0 without AMSGrad."""
        ams = vmax.size > 0
        for i in range(p.size):
            pi = p[i]
            if decay != 1:
                pi = pi * decay
            gi = g[i]
            if wd != 0:
                gi = pi * wd + gi
            d = gi - m[i]
            mi = m[i] + d * w if small_w else gi - d * one_minus_w
            m[i] = mi
            vi = v[i] * beta2
            vi = vi + gi * one_minus_beta2 * gi
            v[i] = vi
            if ams:
                vi = max(vmax[i], vi)
                vmax[i] = vi
            denom = math.sqrt(vi) / root_bc2 + eps
            p[i] = pi - mi / denom * step_size

    class Kernels:
        pass

    k = Kernels()
    k.sgd, k.adam = sgd, adam
    return k
