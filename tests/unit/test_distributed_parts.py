"""The parts of data-parallel training that need no MPI: shards, dealing out work, the flat gradient buffer,
and the gradient reduction on a world of one (``tests/integration/test_distributed.py`` runs two ranks)."""

from __future__ import annotations

import numpy as np
import pytest

import rnnlab
from rnnlab.data.batches import ArrayBatches, LMStream
from rnnlab.training.distributed import DataParallel, GradientBuffer, ShardedBatches, shard_bounds, split_work


@pytest.mark.parametrize("n, size", [(10, 2), (5, 2), (7, 3), (3, 3), (2, 4)])
def test_shards_are_contiguous_in_rank_order_and_cover_every_row_once(n, size):
    bounds = [shard_bounds(n, r, size) for r in range(size)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(hi == lo for (_, hi), (lo, _) in zip(bounds, bounds[1:]))
    sizes = [hi - lo for lo, hi in bounds]
    assert max(sizes) - min(sizes) <= 1


def test_work_is_dealt_out_round_robin():
    items = list(range(1, 11))
    dealt = [split_work(items, r, 3) for r in range(3)]
    assert sorted(sum(dealt, [])) == items and dealt[1] == [2, 5, 8]


def test_sharded_array_batches_give_each_rank_its_rows_of_every_global_batch():
    x, y = np.arange(14).reshape(7, 2), np.arange(7)
    batches = ArrayBatches(x, y, batch_size=4, shuffle=True, seed=3)
    shards = [ShardedBatches(batches, r, 2, training=True) for r in range(2)]
    assert len(shards[0]) == len(batches) == 2
    for whole, *parts in zip(batches.batches_from(1), *(s.batches_from(1) for s in shards)):
        np.testing.assert_array_equal(np.concatenate([p.y for p in parts]), whole.y)
        np.testing.assert_array_equal(np.concatenate([p.x for p in parts]), whole.x)


def test_a_stream_rank_owns_the_same_rows_in_every_window():
    stream = LMStream(np.arange(200), batch_size=4, bptt=5)
    first = [b.x[:, 0] for b in ShardedBatches(stream, 1, 2, training=True).batches_from(0)]
    rows = stream.rows(0)
    assert all(np.array_equal(f, rows[2:4, 5 * j]) for j, f in enumerate(first))


def test_a_training_batch_smaller_than_the_world_is_refused_and_skipped_in_evaluation():
    batches = ArrayBatches(np.zeros((3, 2)), np.zeros(3), batch_size=2, shuffle=False)  # the last batch: 1 row
    with pytest.raises(ValueError, match="a training batch of 1 rows cannot be shared by 2 ranks"):
        list(ShardedBatches(batches, 0, 2, training=True).batches_from(0))  # rank 0 has none of its rows
    assert [len(b) for b in ShardedBatches(batches, 0, 2, training=False).batches_from(0)] == [1]
    assert [len(b) for b in ShardedBatches(batches, 1, 2, training=False).batches_from(0)] == [1, 1]


def _model(dtype="float64"):
    model = rnnlab.Sequential([rnnlab.Embedding(7, 3, seed=0, dtype=dtype), rnnlab.LSTM(4, seed=1, dtype=dtype),
                               rnnlab.Dense(2, seed=2, dtype=dtype)])
    model.build((None, 5))
    return model


def test_the_gradients_become_views_of_one_flat_buffer_and_keep_their_values():
    model = _model()
    before = {}
    for i, (name, g) in enumerate(model.named_grads()):
        g[...] = i + 1
        before[name] = g.copy()
    buffer = GradientBuffer(model, extra=2)
    assert buffer.flat.size == sum(g.size for g in before.values()) + 2
    for name, g in model.named_grads():
        assert np.shares_memory(g, buffer.flat) and np.array_equal(g, before[name])
    buffer.grads[:] = 0.5
    assert all((g == 0.5).all() for _, g in model.named_grads())
    model.zero_grad()
    assert not buffer.grads.any()


class _WorldOfOne:
    rank, size, is_root = 0, 1, True

    def allreduce_(self, buffer):
        return buffer

    def bcast_(self, array, root=0):
        return array


def test_on_one_rank_the_reduction_leaves_the_mean_gradient_and_reports_the_loss():
    model = _model()
    loss = rnnlab.losses.get("cross_entropy")
    x, y = np.random.default_rng(0).integers(0, 7, size=(3, 5)), np.array([0, 1, 1])
    hook = DataParallel(_WorldOfOne(), model)
    model.zero_grad()
    value = loss(model(x, training=True), y)
    model.backward(loss.backward(), input_grad=False)
    expected = {k: g.copy() for k, g in model.named_grads()}
    hook.reduce_gradients(model, loss)
    for name, g in model.named_grads():
        np.testing.assert_allclose(g, expected[name], rtol=1e-14, atol=1e-15)
    assert hook.step_stats() == {"loss": pytest.approx(value, rel=1e-14), "weight": 3.0}


def test_the_projection_follows_the_ring_allreduce_model():
    dp = pytest.importorskip("benchmarks.data_parallel")
    # 2 (N-1)/N x bytes x 8 / bandwidth + 2 (N-1) x latency
    assert dp.allreduce_time(1e6, 4, 8e9, 1e-5) == pytest.approx(2 * 3 / 4 * 1e6 * 8 / 8e9 + 2 * 3 * 1e-5)
    measured = [{"example": "x", "parameters": 10, "compute_s": 1e-3, "allreduce_bytes": 48, "global_batch": 8}]
    table = dp.project(measured, fixed_batch=True)
    assert table.count("| x |") == len(dp.LINKS) and "| - |" in table  # no speed-up beyond one row per node


def test_the_watchdog_limit_comes_from_the_environment(monkeypatch):
    from rnnlab.training.distributed import DEFAULT_TIMEOUT, collective_timeout

    monkeypatch.delenv("RNNLAB_MPI_TIMEOUT", raising=False)
    assert collective_timeout() == DEFAULT_TIMEOUT
    monkeypatch.setenv("RNNLAB_MPI_TIMEOUT", "0")
    assert collective_timeout() == 0
    for bad in ("soon", "-1", "nan"):
        monkeypatch.setenv("RNNLAB_MPI_TIMEOUT", bad)
        with pytest.raises(ValueError, match="RNNLAB_MPI_TIMEOUT must be a number of seconds"):
            collective_timeout()


def test_abort_flushes_and_gives_the_launcher_time_to_forward_the_message_before_ending_the_job(monkeypatch):
    """An abort can overtake the last message of the rank (seen as an empty stderr from mpiexec), so abort()
    flushes, waits ABORT_GRACE seconds, and only then calls MPI's Abort with the exit code."""
    from rnnlab.training import distributed

    calls = []

    class Comm:
        def Abort(self, code):
            calls.append(("Abort", code))

    class Stream:
        def __init__(self, name):
            self.name = name

        def flush(self):
            calls.append(("flush", self.name))

    monkeypatch.setattr(distributed.sys, "stdout", Stream("stdout"))
    monkeypatch.setattr(distributed.sys, "stderr", Stream("stderr"))
    monkeypatch.setattr(distributed.time, "sleep", lambda seconds: calls.append(("sleep", seconds)))
    communicator = object.__new__(distributed.Communicator)  # without mpi4py: only .comm is used
    communicator.comm = Comm()
    communicator.abort(3)
    assert calls == [("flush", "stdout"), ("flush", "stderr"), ("sleep", distributed.ABORT_GRACE), ("Abort", 3)]
    assert distributed.ABORT_GRACE > 0
