"""rnnlab.functional: activations, their derivatives from outputs, stable softmax/log_softmax, ``out=``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from rnnlab.nn import functional as F

ACTIVATIONS = {
    "tanh": (F.tanh, F.tanh_grad),
    "sigmoid": (F.sigmoid, F.sigmoid_grad),
    "relu": (F.relu, F.relu_grad),
    "linear": (F.linear, F.linear_grad),
}
by_activation = pytest.mark.parametrize("name", list(ACTIVATIONS))


def points(rng, n=200):
    """float64 points away from relu's kink at 0 (its derivative is not defined there)."""
    x = rng.uniform(-6, 6, n)
    return x[np.abs(x) > 1e-3]


@by_activation
def test_derivative_from_output_equals_numerical_derivative(name, rng):
    f, f_grad = ACTIVATIONS[name]
    x = points(rng)
    eps = 1e-6
    numeric = (f(x + eps) - f(x - eps)) / (2 * eps)
    np.testing.assert_allclose(f_grad(f(x)), numeric, rtol=1e-7, atol=1e-9)


def test_reference_values():
    x = np.array([-2.0, 0.0, 0.5, 3.0])
    np.testing.assert_allclose(F.sigmoid(x), 1 / (1 + np.exp(-x)), rtol=1e-15)
    np.testing.assert_allclose(F.tanh(x), np.tanh(x), rtol=0)
    np.testing.assert_array_equal(F.relu(x), [0.0, 0.0, 0.5, 3.0])
    np.testing.assert_array_equal(F.linear(x), x)
    np.testing.assert_array_equal(F.relu_grad(F.relu(x)), [0.0, 0.0, 1.0, 1.0])  # 0 at the kink, as PyTorch
    np.testing.assert_array_equal(F.linear_grad(x), np.ones(4))
    np.testing.assert_allclose(F.sigmoid_grad(F.sigmoid(np.array([0.0]))), [0.25])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_stable_for_large_inputs(dtype):
    x = np.array([-1e4, -1e3, -100.0, -40.0, 0.0, 40.0, 100.0, 1e3, 1e4], dtype=dtype)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        y = F.sigmoid(x)
        dy = F.sigmoid_grad(y)
    assert y.dtype == dtype and dy.dtype == dtype
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dy))
    assert np.all((y >= 0) & (y <= 1))
    assert np.all(np.diff(y) >= 0)  # monotone
    np.testing.assert_array_equal(y[[0, 1, -2, -1]], [0.0, 0.0, 1.0, 1.0])
    assert y[4] == 0.5
    np.testing.assert_allclose(y + y[::-1], 1.0, atol=np.finfo(dtype).eps)  # s(-x) = 1 - s(x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_is_stable_for_large_inputs(dtype):
    x = np.array([-1e4, -50.0, 50.0, 1e4], dtype=dtype)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        y = F.tanh(x)
        dy = F.tanh_grad(y)
    np.testing.assert_array_equal(y, [-1, -1, 1, 1])
    np.testing.assert_array_equal(dy, 0.0)
    assert y.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shift", [0.0, 1e3, -1e4, 1e30])
def test_softmax_and_log_softmax_are_stable_and_normalised(rng, dtype, shift):
    z = (rng.standard_normal((4, 7)) * 3).astype(dtype) + dtype(shift)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        p = F.softmax(z)
        logp = F.log_softmax(z)
    assert p.dtype == dtype and logp.dtype == dtype
    assert np.all(np.isfinite(p)) and np.all(np.isfinite(logp))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, atol=tol)
    np.testing.assert_allclose(np.exp(logp).sum(axis=-1), 1.0, atol=tol)
    np.testing.assert_allclose(np.exp(logp), p, atol=tol)
    assert np.all(logp <= 0)


def test_softmax_matches_the_definition_and_is_shift_invariant(rng):
    z = rng.standard_normal((3, 5))
    expected = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(F.softmax(z), expected, rtol=1e-14)
    np.testing.assert_allclose(F.softmax(z + 1000.0), expected, rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(z), np.log(expected), rtol=1e-13)
    np.testing.assert_allclose(F.softmax(z.T, axis=0), expected.T, rtol=1e-14)


def test_softmax_of_huge_logits_is_one_hot():
    z = np.array([[1e4, 0.0, -1e4]], dtype=np.float32)
    np.testing.assert_array_equal(F.softmax(z), [[1.0, 0.0, 0.0]])
    np.testing.assert_allclose(F.log_softmax(z), [[0.0, -1e4, -2e4]], rtol=1e-6)


@by_activation
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_argument_in_place_and_separate(name, rng, dtype):
    f, f_grad = ACTIVATIONS[name]
    x = rng.uniform(-3, 3, (4, 5)).astype(dtype)
    expected = f(x)
    expected_grad = f_grad(expected)
    assert expected is not x and expected.dtype == dtype and expected_grad.dtype == dtype

    buf = np.empty_like(x)
    assert f(x, out=buf) is buf
    np.testing.assert_array_equal(buf, expected)

    inplace = x.copy()
    assert f(inplace, out=inplace) is inplace
    np.testing.assert_array_equal(inplace, expected)

    gbuf = np.full_like(x, np.nan)
    assert f_grad(expected, out=gbuf) is gbuf
    np.testing.assert_array_equal(gbuf, expected_grad)


@by_activation
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_derivative_in_place_on_its_own_output(name, rng, dtype):
    f, f_grad = ACTIVATIONS[name]
    y = f(rng.uniform(-3, 3, (4, 5)).astype(dtype))
    expected = {"sigmoid": y * (1 - y), "tanh": 1 - y * y, "relu": (y > 0).astype(dtype),
                "linear": np.ones_like(y)}[name]
    assert f_grad(y, out=y) is y
    np.testing.assert_array_equal(y, expected)


@by_activation
def test_out_into_a_view(name, rng):
    """The recurrent loops write into slices of preallocated buffers."""
    f, _ = ACTIVATIONS[name]
    buf = rng.uniform(-3, 3, (3, 8))
    expected = f(buf[:, 2:5].copy())
    f(buf[:, 2:5], out=buf[:, 2:5])
    np.testing.assert_array_equal(buf[:, 2:5], expected)


@by_activation
def test_activations_do_not_mutate_their_input_without_out(name, rng):
    f, f_grad = ACTIVATIONS[name]
    x = rng.uniform(-3, 3, 10)
    saved = x.copy()
    f(x)
    f_grad(x)
    np.testing.assert_array_equal(x, saved)


def test_get_activation():
    assert F.get_activation("tanh") == (F.tanh, F.tanh_grad)
    with pytest.raises(ValueError, match=r"candidate_activation must be one of .*; got 'gelu'"):
        F.get_activation("gelu", "candidate_activation")


def test_one_hot_function():
    np.testing.assert_array_equal(F.one_hot(np.array([[0, 2], [1, 1]]), 3),
                                  [[[1, 0, 0], [0, 0, 1]], [[0, 1, 0], [0, 1, 0]]])
    assert F.one_hot([1], 2).dtype == np.float32
    assert F.one_hot([1], 2, dtype="float64").dtype == np.float64
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 3\) .*got values from 0 to 3"):
        F.one_hot([0, 3], 3)
    with pytest.raises(TypeError, match=r"indices must be integers, got dtype float64"):
        F.one_hot([0.0, 1.0], 3)
    with pytest.raises(ValueError, match=r"num_classes must be a positive int, got 0"):
        F.one_hot([0], 0)


# ---------------------------------------------------------------------------------------- row norms
def test_row_norms_do_not_overflow_for_finite_rows():
    import math

    from rnnlab.nn.functional import row_norms

    rows = np.array([[3e20, 4e20, 0.0], [1.0, 2.0, 2.0]], dtype=np.float32)  # squares overflow float32
    np.testing.assert_allclose(row_norms(rows), [5e20, 3.0], rtol=1e-6)
    huge = np.array([[3e200, -4e200], [1e-300, 0.0]])  # squares overflow float64
    expected = [math.hypot(*r) for r in huge.tolist()]
    np.testing.assert_allclose(row_norms(huge), expected, rtol=1e-12)
    assert row_norms(huge).dtype == np.float64
