"""Batch iterators for the trainer, and index splits (hold-out and k-fold).

Everything the trainer iterates follows one small protocol, :class:`Batches`::

    batches.set_epoch(epoch)          # choose the epoch: its order depends only on (seed, epoch)
    len(batches)                      # batches per epoch
    for batch in batches: ...         # Batch(x, y, mask, new_sequence)
    batches.batches_from(epoch, k)    # the same epoch's batches k, k+1, ... (resume mid-epoch)

Two implementations:

* :class:`ArrayBatches` -- minibatches of samples held in arrays (classification, regression,
  tagging), optionally *bucketed* by length so that padded sequences of similar lengths share a
  batch and each batch is trimmed to its longest sequence;
* :class:`LMStream` -- language-model batching as Zaremba et al. (2014) train on PTB: one long
  token stream cut into ``batch_size`` contiguous rows and read in windows of ``bptt`` steps, the
  recurrent state carried from each window to the next (``Batch.new_sequence`` says when to reset
  it).

Reproducibility and resuming
----------------------------
An epoch's batches are a pure function of ``(seed, epoch)``: iterating twice, or in another
process, gives the same batches, whatever happened before. ``batches_from(epoch, start)``
computes the epoch's order (a permutation: cheap) and builds only the batches from ``start`` on,
so a run resumed after ``k`` steps of an epoch sees exactly the batches an uninterrupted run
would have seen.

Splits
------
:func:`train_val_split` holds out a (stratified, seeded) fraction of the samples;
:func:`kfold_indices` gives the ``k`` (train, test) index pairs of k-fold cross-validation (the
10-fold protocol of Movie Review polarity), optionally stratified by label.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from rnnlab._validation import as_bool_mask, check_bool, check_positive_int

__all__ = ["Batch", "Batches", "ArrayBatches", "LMStream", "train_val_split", "kfold_indices",
           "BUCKET_CHUNK_BATCHES"]

#: With ``bucket=True``, samples are sorted by length within chunks of this many batches.
BUCKET_CHUNK_BATCHES = 50


# --------------------------------------------------------------------------- argument checks
def _check_nonneg_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a non-negative int, got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value}")
    return int(value)


def _as_array(name: str, value) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (list, tuple)):
        try:
            return np.asarray(value)
        except ValueError as exc:  # ragged nested lists
            raise ValueError(f"{name} must be a rectangular array; pad ragged sequences first "
                             f"(rnnlab.text.pad_sequences): {exc}") from None
    raise TypeError(f"{name} must be a NumPy array, got {type(value).__name__}")


def _epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """The generator of one epoch: a function of ``(seed, epoch)`` only."""
    return np.random.default_rng([seed, epoch])


# --------------------------------------------------------------------------- batch and protocol
@dataclass
class Batch:
    """One minibatch.

    Attributes
    ----------
    x : ndarray, shape (B, T, D) float, or (B, T) int token ids
        The inputs (any leading-batch-axis array for non-sequence data).
    y : ndarray
        The targets: (B,) or (B, 1) labels, (B, C) one-hot or regression targets, (B, T) ids,
        (B, T, K) per-step values, ...
    mask : ndarray of bool, shape (B, T), or None
        True at real steps, False at padding.
    new_sequence : bool
        True when ``x`` starts new sequences (reset the recurrent state); False when ``x``
        continues the sequences of the previous batch (carry the final state into this one, as in
        truncated BPTT over a stream).
    """

    x: np.ndarray
    y: np.ndarray
    mask: np.ndarray | None = None
    new_sequence: bool = True

    def __post_init__(self):
        if self.mask is not None:
            if self.mask.dtype != bool:
                raise TypeError(f"Batch.mask must be a bool array, got dtype {self.mask.dtype}")
            if self.x.ndim < 2 or self.mask.shape != self.x.shape[:2]:
                raise ValueError(f"Batch.mask must have shape (B, T) = x.shape[:2], got mask "
                                 f"{self.mask.shape} for x {self.x.shape}")

    def __len__(self) -> int:
        """The number of samples (rows) B."""
        return int(self.x.shape[0])


@runtime_checkable
class Batches(Protocol):
    """What :class:`rnnlab.train.Trainer` iterates: an epoch of :class:`Batch` objects."""

    def __iter__(self) -> Iterator[Batch]: ...

    def __len__(self) -> int: ...

    def set_epoch(self, epoch: int) -> None: ...


class _EpochBatches:
    """Shared epoch bookkeeping: ``set_epoch``, ``__iter__``, ``iter_from`` on top of ``batches_from``."""

    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch that ``__iter__`` and ``iter_from`` produce (its order is fixed by ``(seed, epoch)``)."""
        self.epoch = _check_nonneg_int("epoch", epoch)

    def __iter__(self) -> Iterator[Batch]:
        return self.batches_from(self.epoch, 0)

    def iter_from(self, index: int) -> Iterator[Batch]:
        """The current epoch's batches from number ``index`` (0-based) on."""
        return self.batches_from(self.epoch, index)

    def batches_from(self, epoch: int, start: int = 0) -> Iterator[Batch]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_start(self, epoch, start) -> tuple[int, int]:
        epoch = _check_nonneg_int("epoch", epoch)
        start = _check_nonneg_int("start", start)
        if start > len(self):
            raise ValueError(f"start must be at most the number of batches per epoch ({len(self)}), got {start}")
        return epoch, start


# --------------------------------------------------------------------------- array batches
class ArrayBatches(_EpochBatches):
    """Minibatches of samples held in arrays, shuffled per epoch, optionally bucketed by length.

    Parameters
    ----------
    x : ndarray, shape (N, ...)
        N samples: (N, T, D) float sequences, (N, T) padded token ids, or any (N, ...) array.
    y : ndarray, shape (N, ...)
        Their targets.
    batch_size : int
        B, samples per batch (the last batch of an epoch may be smaller, see ``drop_last``).
    mask : ndarray of bool or 0/1, shape (N, T), optional
        True at real steps of ``x``; required when ``bucket=True``.
    shuffle : bool
        Draw a new order each epoch from ``(seed, epoch)``; otherwise keep the stored order.
    seed : int
        Non-negative; with ``epoch`` it fixes every epoch's order.
    drop_last : bool
        Drop the N mod B samples that would form a short last batch (the dropped samples change
        with the epoch when shuffling).
    bucket : bool
        Put sequences of similar lengths (``mask.sum(1)``) in the same batch and trim each batch
        to the steps its sequences use, see Notes.
    sequence_targets : bool, optional
        Whether ``y`` holds per-step targets (its first two axes are (N, T)), which bucketing must
        trim with ``x``. By default it is inferred: ``y.ndim >= 2 and y.shape[:2] == mask.shape``;
        pass False for e.g. one-hot (N, C) labels whose C happens to equal T.

    Notes
    -----
    Order of an epoch: the indices ``0..N-1`` are permuted by ``default_rng([seed, epoch])``
    (identity when ``shuffle=False``), truncated to a multiple of B when ``drop_last``, then cut
    into consecutive batches of B.

    Bucketing (``bucket=True``) follows the usual recipe (e.g. torchtext's ``BucketIterator``):
    the permuted indices are cut into chunks of ``BUCKET_CHUNK_BATCHES`` x B samples, each chunk
    is sorted by length (stable sort) and cut into batches, then the order of all the batches is
    shuffled with the same epoch generator. Each sample still appears exactly once per epoch and
    the number of batches is unchanged. Each batch is then trimmed to the columns
    ``[first, last]`` where any of its sequences has a real step, which serves both post-padding
    (drops the trailing padding) and pre-padding (drops the leading padding); ``y`` is trimmed the
    same way when it holds per-step targets.

    Examples
    --------
    >>> x = np.arange(10).reshape(5, 2); y = np.arange(5)
    >>> [b.y.tolist() for b in ArrayBatches(x, y, batch_size=2, shuffle=False)]
    [[0, 1], [2, 3], [4]]
    """

    def __init__(self, x, y, *, batch_size: int, mask=None, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False, bucket: bool = False, sequence_targets: bool | None = None):
        x = _as_array("x", x)
        y = _as_array("y", y)
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(f"x must hold at least one sample along its first axis, got shape {x.shape}")
        if y.ndim == 0 or y.shape[0] != x.shape[0]:
            raise ValueError(f"y must have one target per sample of x along the first axis: x has "
                             f"{x.shape[0]} samples (shape {x.shape}), y has shape {y.shape}")
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.shuffle = check_bool("shuffle", shuffle)
        self.seed = _check_nonneg_int("seed", seed)
        self.drop_last = check_bool("drop_last", drop_last)
        self.bucket = check_bool("bucket", bucket)
        if mask is not None:
            mask = as_bool_mask(mask)
            if x.ndim < 2 or mask.shape != x.shape[:2]:
                raise ValueError(f"mask must have shape (N, T) = x.shape[:2], got mask {mask.shape} for x {x.shape}")
        elif self.bucket:
            raise ValueError("bucket=True needs mask (N, T) to know each sequence's length; got mask=None")
        N = x.shape[0]
        if self.drop_last and N < self.batch_size:
            raise ValueError(f"drop_last=True with {N} samples and batch_size={self.batch_size} leaves no batch")
        if sequence_targets is None:
            sequence_targets = mask is not None and y.ndim >= 2 and y.shape[:2] == mask.shape
        elif check_bool("sequence_targets", sequence_targets) and (y.ndim < 2 or y.shape[:2] != x.shape[:2]):
            raise ValueError(f"sequence_targets=True needs y of shape (N, T, ...) = {x.shape[:2]} + ..., got {y.shape}")
        self.sequence_targets = bool(sequence_targets)
        self.x, self.y, self.mask = x, y, mask
        self.lengths = None if mask is None else mask.sum(axis=1)  # (N,)
        self.epoch = 0

    def __len__(self) -> int:
        N, B = self.x.shape[0], self.batch_size
        return N // B if self.drop_last else math.ceil(N / B)

    def batch_indices(self, epoch: int) -> list[np.ndarray]:
        """The sample indices of each batch of ``epoch``, in order (a function of ``(seed, epoch)``)."""
        epoch = _check_nonneg_int("epoch", epoch)
        N, B = self.x.shape[0], self.batch_size
        rng = _epoch_rng(self.seed, epoch)
        order = rng.permutation(N) if self.shuffle else np.arange(N)
        if self.drop_last:
            order = order[: (N // B) * B]
        if not self.bucket:
            return [order[i:i + B] for i in range(0, len(order), B)]
        chunk = BUCKET_CHUNK_BATCHES * B
        batches = []
        for c in range(0, len(order), chunk):
            part = order[c:c + chunk]
            part = part[np.argsort(self.lengths[part], kind="stable")]
            batches.extend(part[i:i + B] for i in range(0, len(part), B))
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def _make_batch(self, idx: np.ndarray) -> Batch:
        x, y = self.x[idx], self.y[idx]
        mask = None if self.mask is None else self.mask[idx]
        if self.bucket:
            used = np.flatnonzero(mask.any(axis=0))
            lo, hi = (int(used[0]), int(used[-1]) + 1) if used.size else (0, 1)
            x, mask = x[:, lo:hi], mask[:, lo:hi]
            if self.sequence_targets:
                y = y[:, lo:hi]
        return Batch(x=x, y=y, mask=mask, new_sequence=True)

    def batches_from(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """Batches ``start, start + 1, ...`` of ``epoch``; only those batches are built."""
        epoch, start = self._check_start(epoch, start)
        indices = self.batch_indices(epoch)[start:]
        return (self._make_batch(idx) for idx in indices)

    def __repr__(self) -> str:
        return (f"ArrayBatches(N={self.x.shape[0]}, batch_size={self.batch_size}, batches={len(self)}, "
                f"shuffle={self.shuffle}, seed={self.seed}, drop_last={self.drop_last}, bucket={self.bucket})")


# --------------------------------------------------------------------------- language-model stream
class LMStream(_EpochBatches):
    """Language-model batches from one token stream, with the state carried across windows.

    Parameters
    ----------
    ids : ndarray of int, shape (L,)
        The corpus as one stream of token ids (sentences joined by their end-of-sentence id).
    batch_size : int
        B, the number of parallel rows the stream is cut into.
    bptt : int
        k, the number of steps per window (truncated-BPTT length; 20 or 35 in Zaremba et al.).
    seed : int, optional
        None (default): every epoch reads the same windows, exactly as Zaremba et al. With a seed,
        each epoch starts the stream at a random offset ``o`` in ``[0, bptt)`` drawn from
        ``(seed, epoch)``, so window boundaries move between epochs (see Notes).

    Notes
    -----
    With ``o = 0`` and ``N = L // B`` (or, with a seed, ``N = (L - bptt + 1) // B``, so that
    every offset leaves the same N), the stream ``ids[o : o + B N]`` is reshaped row-major to
    ``rows`` (B, N): row ``b`` is the contiguous piece ``ids[o + b N : o + (b + 1) N]``. Window
    ``j`` starts at ``t = j k`` and has ``k_j = min(k, N - 1 - t)`` steps::

        Batch(x=rows[:, t : t + k_j], y=rows[:, t + 1 : t + k_j + 1], new_sequence=(t == 0))

    so the targets are the inputs shifted by one step, the windows tile ``rows[:, :N-1]``
    exactly, and the last window is kept even when shorter than k. There are
    ``ceil((N - 1) / k)`` windows per epoch, the same for every epoch. ``new_sequence`` is True
    only for the first window: the trainer resets the state there and otherwise carries the
    final state of window j into window j + 1 (without backpropagating through it). The tokens
    the reshape leaves over (fewer than B, plus the offset) are not read that epoch.

    Examples
    --------
    >>> s = LMStream(np.arange(12), batch_size=2, bptt=2)
    >>> for b in s:
    ...     print(b.x.tolist(), b.y.tolist(), b.new_sequence)
    [[0, 1], [6, 7]] [[1, 2], [7, 8]] True
    [[2, 3], [8, 9]] [[3, 4], [9, 10]] False
    [[4], [10]] [[5], [11]] False
    """

    def __init__(self, ids, *, batch_size: int, bptt: int, seed: int | None = None):
        ids = _as_array("ids", ids)
        if ids.ndim != 1:
            raise ValueError(f"ids must be a 1-D stream of token ids, got shape {ids.shape}")
        if not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"ids must hold integer token ids, got dtype {ids.dtype}")
        if ids.size and np.issubdtype(ids.dtype, np.signedinteger) and ids.min() < 0:  # (unsigned: a memory map
            # of a corpus on disk is not read through)
            raise ValueError(f"ids must be non-negative token ids, got minimum {ids.min()}")
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.bptt = check_positive_int("bptt", bptt)
        self.seed = None if seed is None else _check_nonneg_int("seed", seed)
        usable = len(ids) if self.seed is None else len(ids) - self.bptt + 1
        self.row_length = max(usable, 0) // self.batch_size  # N
        if self.row_length < 2:
            extra = "" if self.seed is None else f" after reserving bptt - 1 = {self.bptt - 1} for the random offset"
            raise ValueError(f"ids is too short: {len(ids)} tokens give rows of {self.row_length} tokens for "
                             f"batch_size={self.batch_size}{extra}; each row needs at least 2 "
                             "(an input and its target)")
        self.ids = ids
        self.epoch = 0

    def __len__(self) -> int:
        return math.ceil((self.row_length - 1) / self.bptt)

    def offset(self, epoch: int) -> int:
        """Where ``epoch`` starts reading the stream: 0 without a seed, else drawn from ``(seed, epoch)``."""
        epoch = _check_nonneg_int("epoch", epoch)
        if self.seed is None:
            return 0
        return int(_epoch_rng(self.seed, epoch).integers(self.bptt))

    def rows(self, epoch: int) -> np.ndarray:
        """The (B, N) array of contiguous rows that ``epoch`` reads (a view of ``ids``)."""
        o, B, N = self.offset(epoch), self.batch_size, self.row_length
        return self.ids[o:o + B * N].reshape(B, N)

    @property
    def tokens_per_epoch(self) -> int:
        """Predicted tokens per epoch, B (N - 1): the denominator of the epoch's perplexity."""
        return self.batch_size * (self.row_length - 1)

    def batches_from(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """Windows ``start, start + 1, ...`` of ``epoch`` (window ``start`` has ``new_sequence`` only if
        ``start == 0``)."""
        epoch, start = self._check_start(epoch, start)
        rows = self.rows(epoch)  # (B, N)
        N, k = self.row_length, self.bptt
        for t in range(start * k, N - 1, k):
            k_t = min(k, N - 1 - t)
            yield Batch(x=rows[:, t:t + k_t], y=rows[:, t + 1:t + k_t + 1], mask=None, new_sequence=(t == 0))

    def __repr__(self) -> str:
        return (f"LMStream(tokens={len(self.ids)}, batch_size={self.batch_size}, bptt={self.bptt}, "
                f"seed={self.seed}, rows=({self.batch_size}, {self.row_length}), batches={len(self)})")


# --------------------------------------------------------------------------- splits
def _check_labels(stratify, n: int) -> np.ndarray | None:
    if stratify is None:
        return None
    labels = np.asarray(stratify)
    if labels.ndim == 2 and labels.shape[1] > 1:  # one-hot rows
        labels = labels.argmax(axis=1)
    elif labels.ndim == 2:
        labels = labels[:, 0]
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"stratify must hold one label per sample ({n}), got shape {np.shape(stratify)}")
    return labels


def _grouped_order(n: int, labels: np.ndarray | None, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled sample indices, one group per class (one group without labels), classes sorted."""
    if labels is None:
        return [rng.permutation(n)]
    return [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]


def _take(a, idx: np.ndarray):
    if isinstance(a, np.ndarray):
        return a[idx]
    return [a[i] for i in idx]


def train_val_split(*arrays, val_frac: float = 0.1, seed: int = 0, shuffle: bool = True, stratify=None) -> list:
    """Split arrays (or lists) of samples into a training part and a held-out validation part.

    Parameters
    ----------
    *arrays : ndarray or list, each of length n
        Samples aligned along the first axis (e.g. ``x, y``, or a list of raw texts and labels).
    val_frac : float in (0, 1)
        Fraction held out: ``round(n * val_frac)`` samples (per class when stratified), at least 1
        and at most n - 1 in total.
    seed : int
        Fixes the random choice.
    shuffle : bool
        False holds out the *last* samples (no randomness; as Keras ``validation_split``).
    stratify : array of labels, shape (n,) or one-hot (n, C), optional
        Hold out the same fraction of every class.

    Returns
    -------
    list
        ``[a_train, a_val, b_train, b_val, ...]`` (scikit-learn order). Arrays stay arrays, other
        sequences become lists. Each part keeps the original order of the samples.
    """
    if not arrays:
        raise TypeError("train_val_split needs at least one array")
    n = len(arrays[0])
    for i, a in enumerate(arrays):
        if isinstance(a, (str, bytes)) or not hasattr(a, "__len__"):
            raise TypeError(f"arrays[{i}] must be an array or a list of samples, got {type(a).__name__}")
        if len(a) != n:
            raise ValueError(f"all arrays must have the same length: arrays[0] has {n}, arrays[{i}] has {len(a)}")
    if isinstance(val_frac, bool) or not isinstance(val_frac, (float, int, np.floating)) or not 0 < val_frac < 1:
        raise ValueError(f"val_frac must be a number in (0, 1), got {val_frac!r}")
    if n < 2:
        raise ValueError(f"train_val_split needs at least 2 samples, got {n}")
    seed = _check_nonneg_int("seed", seed)
    shuffle = check_bool("shuffle", shuffle)
    labels = _check_labels(stratify, n)
    if not shuffle:
        if labels is not None:
            raise ValueError("stratify needs shuffle=True (a stratified split is a random choice per class)")
        n_val = min(max(round(n * val_frac), 1), n - 1)
        val = np.arange(n - n_val, n)
    else:
        groups = _grouped_order(n, labels, np.random.default_rng(seed))
        val = np.concatenate([g[:round(len(g) * val_frac)] for g in groups])
        if val.size == 0:
            val = groups[int(np.argmax([len(g) for g in groups]))][:1]
        elif val.size == n:
            val = val[:-1]
    in_val = np.zeros(n, dtype=bool)
    in_val[val] = True
    train_idx, val_idx = np.flatnonzero(~in_val), np.flatnonzero(in_val)
    out = []
    for a in arrays:
        out += [_take(a, train_idx), _take(a, val_idx)]
    return out


def kfold_indices(n: int, k: int, seed: int = 0, *, stratify=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (train, test) index pairs of k-fold cross-validation.

    Parameters
    ----------
    n : int
        Number of samples.
    k : int
        Number of folds, 2 <= k <= n (10 for the Movie Review protocol).
    seed : int
        Fixes the assignment of samples to folds.
    stratify : array of labels, shape (n,) or one-hot (n, C), optional
        Spread every class evenly over the folds.

    Returns
    -------
    list of k tuples (train_idx, test_idx)
        Sorted int64 index arrays. Every sample is in exactly one test fold; fold sizes differ by
        at most one (and, when stratified, so do each class's counts per fold). A class with
        fewer than k samples is missing from some test folds.

    Notes
    -----
    The samples are shuffled with ``default_rng(seed)`` (within each class when stratified, the
    classes taken in sorted order) and dealt to the folds in turn: position ``i`` of that
    order goes to fold ``i mod k``.
    """
    n = check_positive_int("n", n)
    k = check_positive_int("k", k)
    if not 2 <= k <= n:
        raise ValueError(f"k must satisfy 2 <= k <= n = {n}, got k={k}")
    seed = _check_nonneg_int("seed", seed)
    labels = _check_labels(stratify, n)
    order = np.concatenate(_grouped_order(n, labels, np.random.default_rng(seed)))
    fold = np.empty(n, dtype=np.int64)
    fold[order] = np.arange(n) % k
    return [(np.flatnonzero(fold != f), np.flatnonzero(fold == f)) for f in range(k)]
