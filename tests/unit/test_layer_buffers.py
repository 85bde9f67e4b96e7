"""Dense keeps its output and input-gradient buffers from one call to the next (rnnlab.nn.buffers).

The rule under test: a kept buffer is handed out again only when nothing outside the layer refers to
it. What a call returned (or a view of it) stays as it was through later calls while it is held; a
caller that drops it gets the same memory back (the training loop's case); and whatever buffer a call
gets, forward and backward compute what a fresh layer computes from the last forward call.
"""

from __future__ import annotations

import copy
import pickle
import weakref

import numpy as np
import pytest

from rnnlab.nn.buffers import Buffers
from rnnlab.nn.layers import Dense

ACTIVATIONS = [None, "tanh", "relu", "sigmoid"]


# ---------------------------------------------------------------------------- Buffers
def test_a_result_buffer_is_reused_only_once_nobody_holds_it():
    buffers = Buffers()
    first = buffers.result("y", (3, 4), np.float32)
    held = buffers.result("y", (3, 4), np.float32)
    assert held is not first  # `first` is still held here

    address = held.__array_interface__["data"][0]
    del first, held
    again = buffers.result("y", (3, 4), np.float32)
    assert again.__array_interface__["data"][0] == address  # dropped: the same memory comes back

    view = again[1:].T  # a view keeps the buffer it looks into
    del again
    fresh = buffers.result("y", (3, 4), np.float32)
    assert not np.shares_memory(fresh, view)


def test_a_result_buffer_changes_with_the_shape_or_dtype():
    buffers = Buffers()
    buffers.result("y", (3, 4), np.float32)  # dropped at once
    b = buffers.result("y", (4, 3), np.float32)
    assert b.shape == (4, 3) and b.dtype == np.float32
    del b
    c = buffers.result("y", (4, 3), np.float64)
    assert c.shape == (4, 3) and c.dtype == np.float64


def test_scratch_buffers_are_always_reused():
    buffers = Buffers()
    a = buffers.scratch("t", (2, 5), np.float64)
    assert buffers.scratch("t", (2, 5), np.float64) is a
    assert buffers.scratch("t", (5, 2), np.float64) is not a


def test_copies_and_pickles_start_empty():
    buffers = Buffers()
    buffers.scratch("t", (2, 5), np.float64)
    assert len(copy.deepcopy(buffers)) == 0
    assert len(pickle.loads(pickle.dumps(buffers))) == 0
    assert len(buffers) == 1


# ---------------------------------------------------------------------------- Dense
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dense_results_stay_valid_while_held(rng, activation):
    layer = Dense(4, activation, input_size=3, seed=0, dtype="float64")
    x1, x2 = rng.standard_normal((2, 5, 6, 3))
    dy1, dy2 = rng.standard_normal((2, 5, 6, 4))
    y1 = layer(x1)
    dx1 = layer.backward(dy1)
    kept = y1.copy(), dx1.copy()
    y2 = layer(x2)
    dx2 = layer.backward(dy2)
    np.testing.assert_array_equal(y1, kept[0])
    np.testing.assert_array_equal(dx1, kept[1])
    assert not np.shares_memory(y1, y2) and not np.shares_memory(dx1, dx2)


def test_dense_views_of_a_result_protect_it(rng):
    layer = Dense(4, input_size=3, seed=0, dtype="float64")
    last_step = layer(rng.standard_normal((2, 5, 3)))[:, -1]  # only a view survives
    kept = last_step.copy()
    layer(rng.standard_normal((2, 5, 3)))
    np.testing.assert_array_equal(last_step, kept)


def test_dense_collected_outputs_are_distinct(rng):
    layer = Dense(4, input_size=3, seed=0)
    xs = rng.standard_normal((3, 2, 3)).astype(np.float32)
    outs = [layer(x) for x in xs]
    for x, y in zip(xs, outs):
        np.testing.assert_allclose(y, x @ layer.params["V"].T + layer.params["c"], rtol=1e-6)


def test_dense_reuses_its_buffers_when_the_caller_drops_them(rng):
    """The training loop's case: the previous step's logits and input gradient are gone by the next call."""
    layer = Dense(4, input_size=3, seed=0)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    dy = rng.standard_normal((2, 5, 4)).astype(np.float32)

    def step():  # weak references: they do not hold the buffers
        y = layer(x)
        dx = layer.backward(dy)
        return weakref.ref(y.base), weakref.ref(dx.base)

    first = step()
    for _ in range(2):
        assert [ref() for ref in step()] == [ref() for ref in first]
    assert all(ref() is not None for ref in first)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("hold", [False, True], ids=["dropped", "held"])
def test_dense_backward_follows_the_last_forward_call(rng, activation, hold):
    """Whether the second call reuses the first call's buffer or not, backward differentiates the second."""
    used = Dense(4, activation, input_size=3, seed=0, dtype="float64")
    fresh = Dense(4, activation, input_size=3, seed=0, dtype="float64")
    x1, x2 = rng.standard_normal((2, 2, 5, 3))
    dy = rng.standard_normal((2, 5, 4))
    first = used(x1)
    if not hold:
        del first
    y_used = used(x2).copy()
    dx_used = used.backward(dy)
    np.testing.assert_array_equal(y_used, fresh(x2))
    np.testing.assert_array_equal(dx_used, fresh.backward(dy))
    for key in ("V", "c"):
        np.testing.assert_array_equal(used.grads[key], fresh.grads[key])


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(7, 3), (2, 5, 3), (2, 3, 4, 3), (2, 1, 2, 2, 3)], ids=lambda s: f"{len(s)}d")
def test_dense_on_any_leading_axes_equals_the_2d_product(rng, activation, shape):
    layer = Dense(4, activation, input_size=3, seed=0, dtype="float64")
    flat = Dense(4, activation, input_size=3, seed=0, dtype="float64")
    x = rng.standard_normal(shape)
    dy = rng.standard_normal(shape[:-1] + (4,))
    y = layer(x)
    assert y.shape == shape[:-1] + (4,)
    np.testing.assert_allclose(y, flat(x.reshape(-1, 3)).reshape(y.shape), rtol=1e-13, atol=1e-15)
    dx = layer.backward(dy)
    assert dx.shape == shape
    np.testing.assert_allclose(dx, flat.backward(dy.reshape(-1, 4)).reshape(shape), rtol=1e-13, atol=1e-15)
    for key in ("V", "c"):
        np.testing.assert_allclose(layer.grads[key], flat.grads[key], rtol=1e-13, atol=1e-15)


def test_dense_on_non_contiguous_input_and_gradient(rng):
    """Transposed and strided arrays (time-major views, every other step) give the contiguous results."""
    layer = Dense(4, "tanh", input_size=3, seed=0, dtype="float64")
    ref = Dense(4, "tanh", input_size=3, seed=0, dtype="float64")
    x = rng.standard_normal((6, 2, 3)).transpose(1, 0, 2)[:, ::2]  # (2, 3, 3), neither C nor F contiguous
    dy = rng.standard_normal((4, 3, 2)).transpose(2, 1, 0)  # (2, 3, 4)
    np.testing.assert_allclose(layer(x), ref(np.ascontiguousarray(x)), rtol=1e-14)
    np.testing.assert_allclose(layer.backward(dy), ref.backward(np.ascontiguousarray(dy)), rtol=1e-14)
    for key in ("V", "c"):
        np.testing.assert_allclose(layer.grads[key], ref.grads[key], rtol=1e-14)


def test_dense_backward_accumulates_and_leaves_dy_alone(rng):
    layer = Dense(4, "sigmoid", input_size=3, seed=0, dtype="float64")
    x = rng.standard_normal((2, 5, 3))
    dy = rng.standard_normal((2, 5, 4))
    dy_before = dy.copy()
    layer(x)
    layer.backward(dy, input_grad=False)
    once = {k: g.copy() for k, g in layer.grads.items()}
    assert layer.backward(dy, input_grad=False) is None
    np.testing.assert_array_equal(dy, dy_before)
    for key, g in once.items():
        np.testing.assert_allclose(layer.grads[key], 2 * g, rtol=1e-14)


def test_dense_with_a_new_batch_shape_and_back(rng):
    layer = Dense(4, input_size=3, seed=0, dtype="float64")
    ref = Dense(4, input_size=3, seed=0, dtype="float64")
    for shape in [(2, 5, 3), (2, 3, 3), (2, 5, 3), (10, 3)]:
        x = rng.standard_normal(shape)
        np.testing.assert_array_equal(layer(x), ref(x))


def test_dense_copies_do_not_share_buffers(rng):
    layer = Dense(4, input_size=3, seed=0, dtype="float64")
    x = rng.standard_normal((2, 5, 3))
    layer(x)
    twin = copy.deepcopy(layer)
    y_twin = twin(x)
    y = layer(2 * x)
    assert not np.shares_memory(y, y_twin)
    np.testing.assert_allclose(y_twin, layer(x))
