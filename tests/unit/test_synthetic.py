"""rnnlab.synthetic: the adding problem and the copy-memory task, with their memoryless baselines."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnlab.data.synthetic import (
    ADDING_BASELINE_MSE,
    adding_problem,
    copy_memory,
    copy_memory_baseline,
)


# ---------------------------------------------------------------------------- adding problem
@pytest.mark.parametrize("T", [2, 7, 50])
def test_adding_problem_layout(T):
    x, y = adding_problem(300, T, seed=1)
    assert x.shape == (300, T, 2) and y.shape == (300, 1)
    assert x.dtype == y.dtype == np.float32
    values, markers = x[..., 0], x[..., 1]
    assert np.all((values >= 0) & (values < 1))
    assert set(np.unique(markers).tolist()) <= {0.0, 1.0}
    half = T // 2
    assert np.all(markers[:, :half].sum(axis=1) == 1)  # exactly one marker in the first half
    assert np.all(markers[:, half:].sum(axis=1) == 1)  # and one in the second
    np.testing.assert_allclose(y[:, 0], (values * markers).sum(axis=1), rtol=1e-6)


def test_adding_problem_markers_cover_each_half():
    x, _ = adding_problem(2000, 9, seed=0)
    first = x[:, :4, 1].argmax(axis=1)
    second = 4 + x[:, 4:, 1].argmax(axis=1)
    assert set(first.tolist()) == {0, 1, 2, 3}
    assert set(second.tolist()) == {4, 5, 6, 7, 8}


def test_adding_problem_baseline_mse_is_one_sixth():
    _, y = adding_problem(20000, 100, seed=0, dtype="float64")
    baseline = np.mean((1.0 - y) ** 2)  # predict 1 whatever the input
    # standard error of this estimate is sqrt((1/15 - 1/36) / 20000) ~ 0.0014
    assert baseline == pytest.approx(1 / 6, abs=0.006)
    assert round(baseline, 2) == 0.17
    assert ADDING_BASELINE_MSE == pytest.approx(0.16667, abs=1e-5)


def test_adding_problem_is_reproducible():
    a = adding_problem(5, 10, seed=3)
    b = adding_problem(5, 10, seed=3)
    c = adding_problem(5, 10, seed=4)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])
    d = adding_problem(5, 10, seed=np.random.default_rng(3))
    np.testing.assert_array_equal(a[0], d[0])
    assert adding_problem(5, 10, dtype="float64")[0].dtype == np.float64


def test_adding_problem_errors():
    with pytest.raises(ValueError, match=r"T must be at least 2 \(one marker in each half\), got 1"):
        adding_problem(4, 1)
    with pytest.raises(ValueError, match="n must be a positive int, got 0"):
        adding_problem(0, 5)
    with pytest.raises(ValueError, match="seed must be a non-negative int, got -1"):
        adding_problem(3, 5, seed=-1)
    with pytest.raises(TypeError, match="seed must be a non-negative int or a numpy.random.Generator, got str 'a'"):
        adding_problem(3, 5, seed="a")
    with pytest.raises(TypeError, match="dtype must be 'float32' or 'float64', got 'int32'"):
        adding_problem(3, 5, dtype="int32")


# ---------------------------------------------------------------------------- copy memory
@pytest.mark.parametrize("T", [1, 5, 100])
def test_copy_memory_layout_follows_arjovsky(T):
    x, y = copy_memory(64, T, seed=2)
    assert x.shape == y.shape == (64, T + 20)
    assert np.issubdtype(x.dtype, np.integer) and np.issubdtype(y.dtype, np.integer)
    assert np.all((x[:, :10] >= 1) & (x[:, :10] <= 8))   # 10 symbols from a_1..a_8
    assert np.all(x[:, 10:T + 9] == 0)                     # T - 1 blanks
    assert np.all(x[:, T + 9] == 9)                        # the delimiter
    assert np.all(x[:, T + 10:] == 0)                      # 10 more blanks
    assert np.all(y[:, :T + 10] == 0)                      # T + 10 blanks out
    np.testing.assert_array_equal(y[:, T + 10:], x[:, :10])  # then the 10 symbols, in order
    assert (x == 9).sum() == 64                            # one delimiter per sequence, nowhere else


def test_copy_memory_t5_positions_by_hand():
    x, y = copy_memory(1, 5, seed=0)
    # 25 positions: symbols 0-9, blanks 10-13, delimiter 14, blanks 15-24
    assert x[0, 10:].tolist() == [0, 0, 0, 0, 9] + [0] * 10
    assert y[0, :15].tolist() == [0] * 15
    assert y[0, 15:].tolist() == x[0, :10].tolist()


def test_copy_memory_symbols_are_uniform_over_1_to_8():
    x, _ = copy_memory(4000, 3, seed=0)
    counts = np.bincount(x[:, :10].ravel(), minlength=9)[1:]
    assert counts.min() > 0.9 * 5000 and counts.max() < 1.1 * 5000  # 40000 draws / 8 symbols


@pytest.mark.parametrize("T", [1, 10, 100])
def test_copy_memory_memoryless_baseline(T):
    _, y = copy_memory(32, T, seed=1)
    # the memoryless predictor: the blank surely for T + 10 steps, then uniform over 1..8
    probs = np.zeros((32, T + 20, 10))
    probs[:, :T + 10, 0] = 1.0
    probs[:, T + 10:, 1:9] = 1.0 / 8
    p_target = np.take_along_axis(probs, y[..., None], axis=-1)[..., 0]
    cross_entropy = -np.mean(np.log(p_target))  # log(0) raises: every target must be predicted
    assert cross_entropy == pytest.approx(10 * math.log(8) / (T + 20), rel=1e-12)
    assert copy_memory_baseline(T) == pytest.approx(10 * math.log(8) / (T + 20), rel=1e-12)


def test_copy_memory_is_reproducible_and_validated():
    np.testing.assert_array_equal(copy_memory(3, 4, seed=7)[0], copy_memory(3, 4, seed=7)[0])
    assert not np.array_equal(copy_memory(3, 4, seed=7)[0], copy_memory(3, 4, seed=8)[0])
    with pytest.raises(ValueError, match="T must be a positive int, got 0"):
        copy_memory(3, 0)
    with pytest.raises(TypeError, match="n must be a positive int, got float 2.0"):
        copy_memory(2.0, 3)
