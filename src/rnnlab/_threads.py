"""Threads for passes over independent rows that release the GIL (the numba kernels' row passes).

Used by the softmax cross-entropy's row pass (``rnnlab.nn.losses``) and the fused optimizer updates
(``rnnlab.optim``); described in :mod:`rnnlab.nn.kernels` ("Threads").
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

THREADS_ENV = "RNNLAB_NUM_THREADS"
_threads: int | None = None  # num_threads(), looked up once
_pool: ThreadPoolExecutor | None = None
_pool_pid: int | None = None  # a pool's threads do not survive fork: a child makes its own


def num_threads() -> int:
    """Threads for :func:`split_rows`: ``RNNLAB_NUM_THREADS``, else ``OPENBLAS_NUM_THREADS`` or
    ``OMP_NUM_THREADS`` (a process pinned to one BLAS thread stays on one core), else the cores this
    process may run on; at least 1. Looked up once; a value that is not a positive int is ignored."""
    global _threads
    if _threads is None:
        for name in (THREADS_ENV, "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
            value = os.environ.get(name, "").strip()
            if value.isdigit() and int(value) > 0:
                _threads = int(value)
                break
        else:
            _threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return _threads


def split_rows(fn: Callable[[int, int], object], n: int, min_rows: int) -> list:
    """``fn(lo, hi)`` over ``[0, n)`` in up to :func:`num_threads` contiguous blocks of at least
    ``min_rows`` rows, run at once on a thread pool (``fn`` must release the GIL to gain anything,
    as the numba kernels do); returns the blocks' results in row order. One block is a plain call."""
    global _pool, _pool_pid
    parts = max(1, min(num_threads(), n // max(min_rows, 1)))
    if parts == 1:
        return [fn(0, n)]
    bounds = [n * k // parts for k in range(parts + 1)]
    if _pool is None or _pool_pid != os.getpid():
        _pool, _pool_pid = ThreadPoolExecutor(max_workers=num_threads(), thread_name_prefix="rnnlab"), os.getpid()
    futures = [_pool.submit(fn, lo, hi) for lo, hi in zip(bounds[1:-1], bounds[2:])]
    first = fn(bounds[0], bounds[1])  # this thread takes the first block
    return [first] + [f.result() for f in futures]
