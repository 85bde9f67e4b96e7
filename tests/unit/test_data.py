"""rnnlab.data: Batch, ArrayBatches (shuffling, bucketing, resuming), LMStream, splits."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.data.batches import (
    ArrayBatches,
    Batch,
    Batches,
    LMStream,
    kfold_indices,
    train_val_split,
)


def sample_ids(batches) -> list[list[int]]:
    """The sample ids (stored in y) of every batch, in order."""
    return [b.y.tolist() for b in batches]


def padded(lengths, T, padding="post"):
    """Token ids (N, T) whose sample i holds the tokens 1000 i + 1, ..., and their mask."""
    N = len(lengths)
    x = np.zeros((N, T), dtype=np.int64)
    mask = np.zeros((N, T), dtype=bool)
    for i, n in enumerate(lengths):
        cols = slice(0, n) if padding == "post" else slice(T - n, T)
        x[i, cols] = 1000 * i + np.arange(1, n + 1)
        mask[i, cols] = True
    return x, mask


# ---------------------------------------------------------------------------- Batch
def test_batch_checks_mask_shape_and_dtype():
    x = np.zeros((2, 3, 4))
    assert Batch(x, np.zeros(2), np.ones((2, 3), bool)).new_sequence is True
    assert len(Batch(x, np.zeros(2))) == 2
    with pytest.raises(ValueError, match=r"mask must have shape \(B, T\).*\(2, 4\).*\(2, 3, 4\)"):
        Batch(x, np.zeros(2), np.ones((2, 4), bool))
    with pytest.raises(TypeError, match="mask must be a bool array, got dtype int64"):
        Batch(x, np.zeros(2), np.ones((2, 3), np.int64))


# ---------------------------------------------------------------------------- ArrayBatches
def test_array_batches_without_shuffle_keep_order_and_shapes(rng):
    x = rng.normal(size=(10, 3, 2))
    y = np.arange(10)
    batches = ArrayBatches(x, y, batch_size=4, shuffle=False)
    assert isinstance(batches, Batches)
    assert len(batches) == 3
    out = list(batches)
    assert sample_ids(out) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [b.x.shape for b in out] == [(4, 3, 2), (4, 3, 2), (2, 3, 2)]
    np.testing.assert_array_equal(out[1].x, x[4:8])
    assert all(b.mask is None and b.new_sequence for b in out)


def test_array_batches_drop_last():
    batches = ArrayBatches(np.zeros((10, 2)), np.arange(10), batch_size=4, drop_last=True, seed=3)
    assert len(batches) == 2
    out = sample_ids(batches)
    assert len(out) == 2 and all(len(b) == 4 for b in out)
    assert len(set(sum(out, []))) == 8


def test_shuffled_epoch_is_a_permutation_fixed_by_seed_and_epoch():
    x, y = np.zeros((23, 5)), np.arange(23)
    a = ArrayBatches(x, y, batch_size=5, seed=7)
    b = ArrayBatches(x, y, batch_size=5, seed=7)
    epoch0 = sample_ids(a)
    assert sorted(sum(epoch0, [])) == list(range(23))
    assert epoch0 != [list(range(i, min(i + 5, 23))) for i in range(0, 23, 5)]  # really shuffled
    assert sample_ids(a) == epoch0  # iterating again gives the same epoch
    # epoch 3 does not depend on the epochs iterated before it
    a.set_epoch(1)
    list(a)
    a.set_epoch(2)
    list(a)
    a.set_epoch(3)
    b.set_epoch(3)
    assert sample_ids(a) == sample_ids(b)
    assert sample_ids(a) != epoch0
    c = ArrayBatches(x, y, batch_size=5, seed=8)
    assert sample_ids(c) != epoch0


@pytest.mark.parametrize("bucket", [False, True])
def test_batches_from_resumes_mid_epoch(bucket, rng):
    x, mask = padded(rng.integers(1, 12, size=37), T=12)
    batches = ArrayBatches(x, np.arange(37), batch_size=4, mask=mask, seed=11, bucket=bucket)
    batches.set_epoch(5)
    full = list(batches)
    for k in (0, 1, 4, len(full)):
        resumed = list(batches.batches_from(5, k))
        assert len(resumed) == len(full) - k
        for got, want in zip(resumed, full[k:]):
            np.testing.assert_array_equal(got.x, want.x)
            np.testing.assert_array_equal(got.y, want.y)
            np.testing.assert_array_equal(got.mask, want.mask)
        assert [b.y.tolist() for b in batches.iter_from(k)] == [b.y.tolist() for b in full[k:]]
    with pytest.raises(ValueError, match=f"start must be at most the number of batches per epoch \\({len(full)}\\), "
                                         f"got {len(full) + 1}"):
        batches.batches_from(5, len(full) + 1)


def test_bucketing_keeps_every_sample_once_and_groups_similar_lengths(rng):
    lengths = rng.integers(1, 30, size=90)
    x, mask = padded(lengths, T=30)
    batches = ArrayBatches(x, np.arange(90), batch_size=8, mask=mask, seed=2, bucket=True)
    assert len(batches) == 12
    out = list(batches)
    ids = sum((b.y.tolist() for b in out), [])
    assert sorted(ids) == list(range(90))
    # one chunk (90 < 50 x 8): the batches are consecutive runs of the samples sorted by length,
    # so their length ranges do not overlap
    ranges = sorted((lengths[b.y].min(), lengths[b.y].max()) for b in out)
    assert all(hi <= next_lo for (_, hi), (next_lo, _) in zip(ranges, ranges[1:]))
    for b in out:
        # trimmed to the longest sequence of the batch, every real token kept
        assert b.x.shape == b.mask.shape == (len(b.y), lengths[b.y].max())
        for row, i in enumerate(b.y):
            np.testing.assert_array_equal(b.x[row][b.mask[row]], x[i][mask[i]])
    # the batch order is shuffled, not sorted by length
    assert [lengths[b.y].min() for b in out] != sorted(lengths[b.y].min() for b in out)


def test_bucketing_sorts_within_chunks_of_50_batches(rng):
    lengths = rng.integers(1, 50, size=230)
    x, mask = padded(lengths, T=50)
    # without shuffling, the chunks are samples 0-99, 100-199, 200-229 (50 batches of 2 each),
    # each sorted by length (ties by index) and cut into pairs
    fixed = ArrayBatches(x, np.arange(230), batch_size=2, mask=mask, shuffle=False, bucket=True)
    expected = []
    for lo, hi in ((0, 100), (100, 200), (200, 230)):
        chunk = sorted(range(lo, hi), key=lambda i: (lengths[i], i))
        expected += [chunk[j:j + 2] for j in range(0, len(chunk), 2)]
    assert sample_ids(fixed) == expected
    shuffled = list(ArrayBatches(x, np.arange(230), batch_size=2, mask=mask, seed=0, bucket=True))
    assert len(shuffled) == 115 and sorted(sum((b.y.tolist() for b in shuffled), [])) == list(range(230))
    # neighbours in a sorted chunk of 100 lengths in 1..49: a batch's spread is far below the
    # ~16 of a random pair
    assert np.mean([np.ptp(lengths[b.y]) for b in shuffled]) < 3.0


def test_bucketing_trims_pre_padding_from_the_left(rng):
    lengths = rng.integers(1, 9, size=20)
    x, mask = padded(lengths, T=10, padding="pre")
    for b in ArrayBatches(x, np.arange(20), batch_size=3, mask=mask, bucket=True, seed=1):
        assert b.x.shape[1] == lengths[b.y].max()
        assert b.mask[:, -1].all()  # pre-padded sequences all end at the last column
        for row, i in enumerate(b.y):
            np.testing.assert_array_equal(b.x[row][b.mask[row]], x[i][mask[i]])


def test_bucketing_trims_per_step_targets_but_not_labels(rng):
    lengths = rng.integers(1, 7, size=12)
    x, mask = padded(lengths, T=8)
    tags = x * 10  # (N, T) per-step targets
    for b in ArrayBatches(x, tags, batch_size=4, mask=mask, bucket=True):
        assert b.y.shape == b.x.shape
        np.testing.assert_array_equal(b.y, b.x * 10)
    onehot = np.eye(8)[np.arange(12) % 8]  # (N, C) labels with C == T: say so explicitly
    for b in ArrayBatches(x, onehot, batch_size=4, mask=mask, bucket=True, sequence_targets=False):
        assert b.y.shape == (len(b.x), 8)


def test_bucketing_with_drop_last_keeps_full_batches(rng):
    x, mask = padded(rng.integers(1, 6, size=11), T=6)
    out = list(ArrayBatches(x, np.arange(11), batch_size=4, mask=mask, bucket=True, drop_last=True))
    assert [len(b) for b in out] == [4, 4]
    assert len(set(sum((b.y.tolist() for b in out), []))) == 8


def test_array_batches_errors():
    x = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"y must have one target per sample.*x has 4 samples.*y has shape \(3,\)"):
        ArrayBatches(x, np.zeros(3), batch_size=2)
    with pytest.raises(ValueError, match=r"bucket=True needs mask \(N, T\).*got mask=None"):
        ArrayBatches(x, np.zeros(4), batch_size=2, bucket=True)
    with pytest.raises(ValueError,
                       match=r"mask must have shape \(N, T\) = x.shape\[:2\], got mask \(4, 2\) for x \(4, 3\)"):
        ArrayBatches(x, np.zeros(4), batch_size=2, mask=np.ones((4, 2)))
    with pytest.raises(ValueError, match="mask must hold only 0 and 1"):
        ArrayBatches(x, np.zeros(4), batch_size=2, mask=np.full((4, 3), 2))
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        ArrayBatches(x, np.zeros(4), batch_size=0)
    with pytest.raises(TypeError, match="seed must be a non-negative int, got float 1.5"):
        ArrayBatches(x, np.zeros(4), batch_size=2, seed=1.5)
    with pytest.raises(ValueError, match="drop_last=True with 4 samples and batch_size=5 leaves no batch"):
        ArrayBatches(x, np.zeros(4), batch_size=5, drop_last=True)
    with pytest.raises(ValueError, match=r"x must hold at least one sample.*\(0, 3\)"):
        ArrayBatches(np.zeros((0, 3)), np.zeros(0), batch_size=2)
    with pytest.raises(ValueError, match=r"sequence_targets=True needs y of shape \(N, T, ...\) = \(4, 3\)"):
        ArrayBatches(x, np.zeros(4), batch_size=2, mask=np.ones((4, 3)), sequence_targets=True)
    with pytest.raises(TypeError, match="x must be a NumPy array, got dict"):
        ArrayBatches({}, np.zeros(4), batch_size=2)
    with pytest.raises(ValueError, match="epoch must be a non-negative int, got -1"):
        ArrayBatches(x, np.zeros(4), batch_size=2).set_epoch(-1)


# ---------------------------------------------------------------------------- LMStream
def test_lm_stream_windows_by_hand():
    ids = np.arange(103)
    stream = LMStream(ids, batch_size=4, bptt=5)
    assert isinstance(stream, Batches)
    # 103 // 4 = 25 tokens per row; 24 input steps per row -> windows of 5, 5, 5, 5, 4
    out = list(stream)
    assert len(stream) == len(out) == 5
    assert [b.x.shape for b in out] == [(4, 5)] * 4 + [(4, 4)]
    assert [b.new_sequence for b in out] == [True, False, False, False, False]
    assert out[0].x[1].tolist() == [25, 26, 27, 28, 29]
    assert out[0].y[1].tolist() == [26, 27, 28, 29, 30]
    assert out[-1].x[3].tolist() == [95, 96, 97, 98]
    assert out[-1].y[3].tolist() == [96, 97, 98, 99]
    assert stream.tokens_per_epoch == 4 * 24
    assert all(b.mask is None for b in out)


@pytest.mark.parametrize("length, B, bptt", [(1000, 7, 13), (50, 5, 3), (40, 2, 50), (24, 3, 7)])
def test_lm_stream_reassembles_the_stream_and_shifts_targets(length, B, bptt, rng):
    ids = rng.integers(0, 50, size=length)
    out = list(LMStream(ids, batch_size=B, bptt=bptt))
    N = length // B
    x = np.concatenate([b.x for b in out], axis=1)  # (B, N - 1)
    y = np.concatenate([b.y for b in out], axis=1)
    for r in range(B):
        np.testing.assert_array_equal(x[r], ids[r * N:(r + 1) * N - 1])
        np.testing.assert_array_equal(y[r], ids[r * N + 1:(r + 1) * N])
    for b in out:
        np.testing.assert_array_equal(b.y[:, :-1], b.x[:, 1:])  # targets = inputs shifted by one
        assert 1 <= b.x.shape[1] <= bptt
    assert all(b.x.shape[1] == bptt for b in out[:-1])


def test_lm_stream_resumes_mid_epoch():
    stream = LMStream(np.arange(500), batch_size=3, bptt=9, seed=4)
    stream.set_epoch(2)
    full = list(stream)
    resumed = list(stream.batches_from(2, 6))
    assert len(resumed) == len(full) - 6
    assert resumed[0].new_sequence is False
    for got, want in zip(resumed, full[6:]):
        np.testing.assert_array_equal(got.x, want.x)
        np.testing.assert_array_equal(got.y, want.y)
    assert [b.x.tolist() for b in stream.iter_from(6)] == [b.x.tolist() for b in resumed]


def test_lm_stream_random_offsets_move_the_windows_but_not_the_count():
    ids = np.arange(400)
    stream = LMStream(ids, batch_size=4, bptt=10, seed=1)
    N = (400 - 10 + 1) // 4  # rows long enough for every offset
    starts = set()
    for epoch in range(8):
        stream.set_epoch(epoch)
        out = list(stream)
        assert len(out) == len(stream) == -(-(N - 1) // 10)
        x = np.concatenate([b.x for b in out], axis=1)
        o = int(x[0, 0])
        assert 0 <= o < 10
        for r in range(4):
            np.testing.assert_array_equal(x[r], ids[o + r * N:o + (r + 1) * N - 1])
        starts.add(o)
        again = LMStream(ids, batch_size=4, bptt=10, seed=1)
        again.set_epoch(epoch)
        assert next(iter(again)).x[0, 0] == o  # fixed by (seed, epoch)
    assert len(starts) > 1
    fixed = LMStream(ids, batch_size=4, bptt=10)  # no seed: every epoch reads the same windows
    fixed.set_epoch(3)
    assert next(iter(fixed)).x[0, 0] == 0


def test_lm_stream_errors():
    with pytest.raises(ValueError, match=r"ids must be a 1-D stream of token ids, got shape \(2, 3\)"):
        LMStream(np.zeros((2, 3), int), batch_size=1, bptt=2)
    with pytest.raises(TypeError, match="ids must hold integer token ids, got dtype float64"):
        LMStream(np.zeros(10), batch_size=1, bptt=2)
    with pytest.raises(ValueError, match="ids is too short: 7 tokens give rows of 1 tokens for batch_size=4"):
        LMStream(np.arange(7), batch_size=4, bptt=2)
    with pytest.raises(ValueError, match="bptt must be a positive int, got 0"):
        LMStream(np.arange(10), batch_size=1, bptt=0)
    with pytest.raises(ValueError, match="ids must be non-negative token ids, got minimum -1"):
        LMStream(np.array([1, -1, 2, 3]), batch_size=1, bptt=2)


# ---------------------------------------------------------------------------- splits
def test_train_val_split_sizes_cover_and_determinism():
    x, y = np.arange(50) * 10, np.arange(50)
    x_tr, x_va, y_tr, y_va = train_val_split(x, y, val_frac=0.2, seed=3)
    assert len(x_va) == 10 and len(x_tr) == 40
    np.testing.assert_array_equal(x_tr, y_tr * 10)  # rows stay aligned
    assert sorted(np.concatenate([y_tr, y_va]).tolist()) == list(range(50))
    assert np.all(np.diff(y_tr) > 0) and np.all(np.diff(y_va) > 0)  # original order kept
    assert train_val_split(y, val_frac=0.2, seed=3)[1].tolist() == y_va.tolist()
    assert train_val_split(y, val_frac=0.2, seed=4)[1].tolist() != y_va.tolist()
    assert train_val_split(y, val_frac=0.2, shuffle=False)[1].tolist() == list(range(40, 50))


def test_train_val_split_lists_and_stratify():
    texts = [f"t{i}" for i in range(40)]
    labels = np.array([0] * 30 + [1] * 10)
    t_tr, t_va, l_tr, l_va = train_val_split(texts, labels, val_frac=0.2, stratify=labels, seed=0)
    assert isinstance(t_va, list) and len(t_va) == 8
    assert (l_va == 0).sum() == 6 and (l_va == 1).sum() == 2
    assert [int(t[1:]) for t in t_va] == [i for i in range(40) if f"t{i}" in t_va]


def test_train_val_split_errors():
    with pytest.raises(ValueError,
                       match="all arrays must have the same length: arrays\\[0\\] has 3, arrays\\[1\\] has 2"):
        train_val_split(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match=r"val_frac must be a number in \(0, 1\), got 1.0"):
        train_val_split(np.zeros(3), val_frac=1.0)
    with pytest.raises(ValueError, match="stratify must hold one label per sample \\(3\\), got shape \\(2,\\)"):
        train_val_split(np.zeros(3), stratify=np.zeros(2))


def test_kfold_partitions_the_samples():
    folds = kfold_indices(23, 5, seed=1)
    assert len(folds) == 5
    tests = [te for _, te in folds]
    assert sorted(np.concatenate(tests).tolist()) == list(range(23))
    assert sorted(len(te) for te in tests) == [4, 4, 5, 5, 5]
    for tr, te in folds:
        assert sorted(np.concatenate([tr, te]).tolist()) == list(range(23))
        assert not set(tr.tolist()) & set(te.tolist())
    assert [te.tolist() for _, te in kfold_indices(23, 5, seed=1)] == [te.tolist() for te in tests]
    assert [te.tolist() for _, te in kfold_indices(23, 5, seed=2)] != [te.tolist() for te in tests]


def test_kfold_stratified_spreads_each_class(rng):
    labels = rng.permutation(np.array([0] * 53 + [1] * 31 + [2] * 16))
    folds = kfold_indices(100, 10, seed=0, stratify=labels)
    assert sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(100))
    for c, n_c in ((0, 53), (1, 31), (2, 16)):
        counts = [int((labels[te] == c).sum()) for _, te in folds]
        assert sum(counts) == n_c and max(counts) - min(counts) <= 1
    assert max(len(te) for _, te in folds) - min(len(te) for _, te in folds) <= 1
    onehot = np.eye(3)[labels]
    assert [te.tolist() for _, te in kfold_indices(100, 10, stratify=onehot)] == [te.tolist() for _, te in folds]


def test_kfold_errors():
    with pytest.raises(ValueError, match="k must satisfy 2 <= k <= n = 5, got k=6"):
        kfold_indices(5, 6)
    with pytest.raises(ValueError, match="k must satisfy 2 <= k <= n = 5, got k=1"):
        kfold_indices(5, 1)
    with pytest.raises(TypeError, match="n must be a positive int, got float 5.0"):
        kfold_indices(5.0, 2)
