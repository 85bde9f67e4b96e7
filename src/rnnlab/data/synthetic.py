"""Synthetic long-range-dependency tasks: the adding problem and the copy-memory task.

Both are generated from a seed (an int or an ``np.random.Generator``), so a data set is
reproducible, and both come with the loss of the best *memoryless* predictor, the baseline a
model must beat to show that it remembers across T steps:

=================  ====================================  =====================================
task               shapes                                 baseline
=================  ====================================  =====================================
adding problem     x (n, T, 2) float, y (n, 1)            MSE 1/6 (predict 1)
copy memory        x, y (n, T + 20) int ids in 0..9       cross-entropy 10 ln 8 / (T + 20)
=================  ====================================  =====================================
"""

from __future__ import annotations

import math

import numpy as np

from rnnlab._validation import check_positive_int, resolve_dtype

__all__ = ["adding_problem", "copy_memory", "ADDING_BASELINE_MSE", "ADDING_SOLVED_MSE", "copy_memory_baseline",
           "COPY_BLANK", "COPY_DELIMITER", "COPY_LENGTH", "COPY_SYMBOLS"]

#: MSE of always predicting 1, the mean of the target: Var(u1 + u2) = 2 / 12.
ADDING_BASELINE_MSE = 1.0 / 6.0
#: The usual "solved" line of the adding problem: a test MSE below 0.01 (Le, Jaitly & Hinton 2015).
ADDING_SOLVED_MSE = 0.01

COPY_BLANK = 0        #: a_0, the blank
COPY_DELIMITER = 9    #: a_9, "now reproduce the sequence"
COPY_SYMBOLS = 8      #: the sequence to copy uses a_1..a_8
COPY_LENGTH = 10      #: length of the sequence to copy


def _generator(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be a non-negative int or a numpy.random.Generator, got {type(seed).__name__} "
                        f"{seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}")
    return np.random.default_rng(int(seed))


def adding_problem(n: int, T: int, seed=0, *, dtype="float32") -> tuple[np.ndarray, np.ndarray]:
    """The adding problem (Hochreiter & Schmidhuber 1997), in the form of Le, Jaitly & Hinton (2015).

    Parameters
    ----------
    n : int
        Number of sequences.
    T : int
        Sequence length, at least 2.
    seed : int or numpy.random.Generator
    dtype : "float32" or "float64"

    Returns
    -------
    x : ndarray, shape (n, T, 2)
        ``x[:, t, 0]`` the values ~ U(0, 1); ``x[:, t, 1]`` the markers, 1 at exactly two steps
        and 0 elsewhere.
    y : ndarray, shape (n, 1)
        The sum of the two marked values.

    Notes
    -----
    Le et al. (2015), sec. 4.1, following Hochreiter & Schmidhuber: the first marker lies
    uniformly at random in the first half of the sequence, the second uniformly at random in the
    second half. Here the first half is steps ``[0, T // 2)`` and the second ``[T // 2, T)``. The
    target has mean 1 and variance 2 / 12, so always predicting 1 gives MSE 1/6
    (``ADDING_BASELINE_MSE``); a model must get well below it (MSE < 0.01 is the usual "solved")
    to show that it reads the markers across T steps.
    """
    n = check_positive_int("n", n)
    T = check_positive_int("T", T)
    if T < 2:
        raise ValueError(f"T must be at least 2 (one marker in each half), got {T}")
    dtype = resolve_dtype(dtype)
    rng = _generator(seed)
    values = rng.random((n, T), dtype=dtype)         # (n, T) ~ U[0, 1), drawn in dtype: never rounds to 1
    first = rng.integers(0, T // 2, size=n)          # (n,) in the first half
    second = rng.integers(T // 2, T, size=n)         # (n,) in the second half
    rows = np.arange(n)
    markers = np.zeros((n, T), dtype=dtype)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1)  # (n, T, 2)
    y = (values[rows, first] + values[rows, second])[:, None]  # (n, 1)
    return x, y


def copy_memory(n: int, T: int, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """The copy-memory task of Arjovsky, Shah & Bengio (2016), sec. 4.1, exactly as laid out there.

    Parameters
    ----------
    n : int
        Number of sequences.
    T : int
        The delay: how many steps the 10 symbols must be remembered; at least 1.
    seed : int or numpy.random.Generator

    Returns
    -------
    x : ndarray of int64, shape (n, T + 20)
    y : ndarray of int64, shape (n, T + 20)
        Category ids 0..9 (feed ``x`` through ``OneHot(10)`` or ``Embedding(10, ...)``; the
        output layer has 10 classes).

    Notes
    -----
    Categories ``a_0`` (blank, id 0), ``a_1..a_8`` (symbols, ids 1..8), ``a_9`` (delimiter,
    id 9). Layout of one sequence, positions 0-based::

        input   s_1 .. s_10 | 0 x (T - 1)      | 9     | 0 x 10
        target  0 x (T + 10)                           | s_1 .. s_10
        index   0 .. 9      | 10 .. T + 8      | T + 9 | T + 10 .. T + 19

    The 10 symbols are drawn uniformly, independently and with replacement from 1..8. The
    memoryless strategy predicts the blank for the first T + 10 steps (no loss) and a uniform
    guess over the 8 symbols for the last 10 (ln 8 each), so its mean cross-entropy per step is
    ``10 ln 8 / (T + 20)`` (``copy_memory_baseline(T)``).
    """
    n = check_positive_int("n", n)
    T = check_positive_int("T", T)
    rng = _generator(seed)
    K = COPY_LENGTH
    symbols = rng.integers(1, COPY_SYMBOLS + 1, size=(n, K))  # (n, 10) in 1..8
    x = np.full((n, T + 2 * K), COPY_BLANK, dtype=np.int64)   # (n, T+20)
    x[:, :K] = symbols
    x[:, T + K - 1] = COPY_DELIMITER
    y = np.full((n, T + 2 * K), COPY_BLANK, dtype=np.int64)   # (n, T+20)
    y[:, T + K:] = symbols
    return x, y


def copy_memory_baseline(T: int) -> float:
    """Mean per-step cross-entropy (nats) of the memoryless strategy: ``10 ln 8 / (T + 20)``."""
    T = check_positive_int("T", T)
    return COPY_LENGTH * math.log(COPY_SYMBOLS) / (T + 2 * COPY_LENGTH)
