"""The one timing loop of the benchmarks: ``warmup`` untimed calls, then ``reps`` timed ones."""

from __future__ import annotations

import time
from collections.abc import Callable


def timed(fn: Callable[[], object], warmup: int, reps: int) -> list[float]:
    """Seconds of each of ``reps`` calls of ``fn``, after ``warmup`` calls that are not timed."""
    for _ in range(warmup):
        fn()
    runs = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return runs
