"""Choosing the next token from a language model's logits: temperature, top-k, nucleus (top-p), greedy.

The equations are in :class:`SamplingConfig`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rnnlab._validation import as_generator, check_positive_int
from rnnlab.nn.functional import log_softmax

__all__ = ["SamplingConfig", "next_token_probs", "sample_token"]


@dataclass(frozen=True)
class SamplingConfig:
    """How the next token is chosen from the logits ``z`` (V,).

    Parameters
    ----------
    temperature : float
        T > 0: the logits are divided by T. T < 1 sharpens the distribution, T > 1 flattens it,
        T -> 0+ tends to greedy decoding.
    top_k : int, optional
        Keep only the k most probable tokens (ties broken by the lower id); k >= V keeps all.
    top_p : float, optional
        Nucleus sampling: keep the smallest set of most probable tokens whose total probability
        (after temperature and top-k) is >= p, 0 < p <= 1. The most probable token is always kept.
    greedy : bool
        Take the arg-max (the lowest id among ties); temperature, top-k and top-p then change
        nothing, and no random number is drawn.

    Notes
    -----
    In log space, so that nothing overflows (Holtzman et al. 2020 for top-p)::

        s_k = (z_k - max_j z_j) / T                         (<= 0; a tiny T sends s_k to -inf)
        s_k = -inf  for banned tokens and for those outside the top-k / nucleus
        log p_k = s_k - log sum_j exp(s_j)                 (the max term is exp(0) = 1)

    A token is drawn by inverting the cumulative distribution with one uniform number ``u``:
    the first k with ``sum_{j<=k} p_j > u``; a token of probability 0 is never drawn.
    """

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    greedy: bool = False

    def __post_init__(self):
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, (int, float, np.integer, np.floating)):
            raise TypeError(f"temperature must be a number > 0, got {type(t).__name__} {t!r}")
        if not (math.isfinite(t) and t > 0):
            raise ValueError(f"temperature must be a finite number > 0 (use greedy=True for arg-max decoding), got {t}")
        if self.top_k is not None:
            check_positive_int("top_k", self.top_k)
        p = self.top_p
        if p is not None:
            if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
                raise TypeError(f"top_p must be a number in (0, 1] or None, got {type(p).__name__} {p!r}")
            if not 0 < p <= 1:
                raise ValueError(f"top_p must be in (0, 1] (the probability mass kept), got {p}")
        if not isinstance(self.greedy, (bool, np.bool_)):
            raise TypeError(f"greedy must be a bool, got {type(self.greedy).__name__} {self.greedy!r}")


def _check_logits(logits) -> np.ndarray:
    z = np.array(logits, dtype=np.float64)  # (V,), a copy we may write into
    if z.ndim != 1 or z.size == 0:
        raise ValueError(f"logits must be a non-empty 1-D array (V,), got shape {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError(f"logits must be finite, got {z[~np.isfinite(z)][:3].tolist()} at index "
                         f"{int(np.flatnonzero(~np.isfinite(z))[0])}")
    return z


def _check_banned(banned, V: int) -> np.ndarray:
    """``banned`` as a sorted int array of ids in [0, V)."""
    if banned is None:
        return np.zeros(0, dtype=np.int64)
    if isinstance(banned, (int, np.integer)) and not isinstance(banned, bool):
        banned = [banned]
    arr = np.unique(np.asarray(list(banned)))
    if arr.size and (not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() >= V):
        raise ValueError(f"banned must hold token ids in [0, {V}), got {arr.tolist()[:10]}")
    if arr.size >= V:
        raise ValueError(f"banned excludes all {V} tokens: nothing is left to generate")
    return arr.astype(np.int64)


def _filtered_log_probs(z: np.ndarray, config: SamplingConfig, banned: np.ndarray) -> np.ndarray:
    """``log p`` (V,) after banning, temperature, top-k and top-p (see :class:`SamplingConfig`); overwrites z."""
    V = z.shape[0]
    z[banned] = -np.inf
    z -= z.max()  # (V,) <= 0, the maximum exactly 0
    with np.errstate(over="ignore"):
        z /= config.temperature  # (V,) a tiny temperature may overflow to -inf: probability 0, as intended
    if config.top_k is not None and config.top_k < V:
        order = np.argsort(-z, kind="stable")  # (V,) most probable first, ties by id
        z[order[config.top_k:]] = -np.inf
    logp = log_softmax(z)  # (V,)
    if config.top_p is not None and config.top_p < 1:
        order = np.argsort(-logp, kind="stable")  # (V,)
        cum = np.cumsum(np.exp(logp[order]))  # (V,)
        keep = min(int(np.searchsorted(cum, config.top_p, side="left")) + 1, V)
        z[order[keep:]] = -np.inf
        logp = log_softmax(z)
    return logp


def _choose(z: np.ndarray, config: SamplingConfig, banned: np.ndarray, rng: np.random.Generator) -> int:
    """One token id from validated logits z (V,) (overwritten)."""
    if config.greedy:
        z[banned] = -np.inf
        return int(np.argmax(z))
    p = np.exp(_filtered_log_probs(z, config, banned))  # (V,)
    cdf = np.cumsum(p)  # (V,)
    return int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))


def next_token_probs(logits, *, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                     banned=None) -> np.ndarray:
    """The distribution the next token is drawn from, given the logits (V,).

    Returns
    -------
    ndarray of float64, shape (V,)
        ``softmax(z / T)`` restricted to the allowed, top-k and nucleus tokens, renormalised
        (equations in :class:`SamplingConfig`). ``banned`` ids get probability 0.
    """
    config = SamplingConfig(temperature, top_k, top_p)
    z = _check_logits(logits)
    return np.exp(_filtered_log_probs(z, config, _check_banned(banned, z.shape[0])))


def sample_token(logits, rng=None, *, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 greedy: bool = False, banned=None) -> int:
    """Choose one token id from the logits (V,) (see :class:`SamplingConfig`).

    ``rng`` is a ``numpy.random.Generator`` (or an int seed, or None for fresh entropy); greedy
    decoding draws nothing from it.
    """
    config = SamplingConfig(temperature, top_k, top_p, greedy)
    z = _check_logits(logits)
    return _choose(z, config, _check_banned(banned, z.shape[0]), as_generator(rng))
