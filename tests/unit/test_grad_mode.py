"""Inference mode (rnnlab.nn.grad_mode.no_grad): the same outputs, no tape, and a clear error from backward;
and the trainer's evaluation, which runs in it."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.grad_mode import grad_enabled, no_grad
from rnnlab.nn.layers import Dense, Embedding
from rnnlab.nn.losses import SoftmaxCrossEntropy
from rnnlab.nn.module import Module
from rnnlab.nn.recurrent import GRU, LSTM, SimpleRNN
from rnnlab.nn.sequential import Sequential
from rnnlab.nn.state import forward_with_states
from rnnlab.nn.step import StepDiverged, train_step
from rnnlab.optim import get as get_optimizer

B, T, D, H = 3, 6, 4, 5


def test_no_grad_is_a_per_thread_switch_restored_on_exit():
    assert grad_enabled()
    with no_grad():
        assert not grad_enabled()
        with no_grad():
            assert not grad_enabled()
        assert not grad_enabled()
        seen = []
        worker = threading.Thread(target=lambda: seen.append(grad_enabled()))
        worker.start()
        worker.join()
        assert seen == [True]  # another thread is not in this block
    assert grad_enabled()
    with pytest.raises(KeyError), no_grad():
        raise KeyError("x")
    assert grad_enabled()


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("layer_class", [SimpleRNN, LSTM, GRU])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_inference_forward_is_bit_identical_and_keeps_no_tape(layer_class, return_sequences, masked, dtype, rng,
                                                             kernel_backend):
    layer = layer_class(H, input_size=D, return_sequences=return_sequences, return_state=True, seed=0, dtype=dtype)
    x = rng.standard_normal((B, T, D)).astype(dtype)
    mask = None
    if masked:
        mask = np.ones((B, T), bool)
        mask[0, 4:] = False
        mask[1, :2] = False
    h0 = [rng.standard_normal((B, H)).astype(dtype) for _ in layer.state_names]
    trained = [a.copy() for a in layer(x, mask=mask, initial_state=h0, training=True)]
    dy = rng.standard_normal(trained[0].shape).astype(dtype)
    layer.backward(dy)
    grads = {k: v.copy() for k, v in layer.grads.items()}
    with no_grad():
        inferred = layer(x, mask=mask, initial_state=h0, training=False)
    for a, b in zip(trained, inferred):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=rf"{layer_class.__name__}.backward: its last forward call ran under "
                                         r"rnnlab.nn.no_grad\(\) \(inference mode\)"):
        layer.backward(dy)
    with pytest.raises(ValueError, match=r"activations\(\): its last forward call ran under rnnlab.nn.no_grad"):
        layer.activations()
    # outside the block again, a forward call differentiates as before
    layer.zero_grad()
    layer(x, mask=mask, initial_state=h0)
    layer.backward(dy)
    for k, g in layer.grads.items():
        np.testing.assert_array_equal(g, grads[k])


def test_a_model_under_no_grad_refuses_backward_and_bidirectional_too(rng):
    model = Sequential([Embedding(7, 4, seed=0), Bidirectional(LSTM(3, return_sequences=True, seed=1)),
                        LSTM(3, return_sequences=True, seed=2), Dense(7, seed=3)])
    ids = rng.integers(0, 7, size=(2, 5))
    y = model(ids)
    with no_grad():
        np.testing.assert_array_equal(model(ids), y)
    with pytest.raises(ValueError, match="rnnlab.nn.no_grad"):
        model.backward(np.ones_like(y))


def _arrays_of(module: Module):
    """Every ndarray a module (and its sub-modules) holds in its attributes, containers and tapes included."""
    seen, out = set(), []

    def walk(value, depth=0):
        if depth > 4 or id(value) in seen:
            return
        seen.add(id(value))
        if isinstance(value, np.ndarray):
            out.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v, depth + 1)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v, depth + 1)
        elif hasattr(value, "__dict__") and not isinstance(value, type):
            for v in vars(value).values():
                walk(v, depth + 1)
        elif hasattr(value, "__slots__"):
            for name in value.__slots__:
                walk(getattr(value, name, None), depth + 1)

    for _, m in module.named_modules():
        walk(m)
    return out


@pytest.mark.parametrize("n_out", [None, 3])
def test_the_model_keeps_nothing_of_the_loss_gradient_buffer(n_out, rng, kernel_backend):
    """train_step hands the loss's reused gradient buffer to the model's backward, which must not keep it: the next
    loss call overwrites it."""
    model = Sequential([Embedding(11, 4, seed=0), LSTM(5, return_sequences=True, seed=1), Dense(11, seed=2)])
    loss, optimizer = SoftmaxCrossEntropy(), get_optimizer("sgd", lr=0.1)
    ids = rng.integers(0, 11, size=(2, 6))
    y = ids if n_out is None else ids[:, -n_out:]
    train_step(model, loss, optimizer, ids, y, n_out=n_out)
    buffer = loss.backward()
    assert buffer.shape == (2, 6 if n_out is None else n_out, 11)
    assert not any(np.shares_memory(a, buffer) for a in _arrays_of(model))


def test_train_step_names_a_non_finite_output_found_by_the_loss(rng):
    model = Sequential([Embedding(11, 4, seed=0), LSTM(5, return_sequences=True, seed=1), Dense(11, seed=2)])
    model.layers[-1].params["c"][3] = np.nan
    with pytest.raises(StepDiverged, match="the model's output is not finite"):
        train_step(model, SoftmaxCrossEntropy(), get_optimizer("sgd", lr=0.1), rng.integers(0, 11, (2, 6)),
                   rng.integers(0, 11, (2, 6)))


def test_forward_with_states_under_no_grad_gives_the_same_final_states(rng):
    model = Sequential([Embedding(11, 4, seed=0), GRU(5, return_sequences=True, seed=1), Dense(11, seed=2)])
    ids = rng.integers(0, 11, size=(2, 6))
    y, final = forward_with_states(model, ids, {})
    with no_grad():
        y2, final2 = forward_with_states(model, ids, {})
    np.testing.assert_array_equal(y, y2)
    for name in final:
        for a, b in zip(final[name], final2[name]):
            np.testing.assert_array_equal(a, b)


def test_no_grad_is_exported_where_the_error_names_it():
    import rnnlab.nn

    assert rnnlab.nn.no_grad is no_grad and rnnlab.nn.grad_enabled is grad_enabled
