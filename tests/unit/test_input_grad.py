"""``backward(dy, input_grad=False)``: no ``dL/dx``, everything else exactly as with it.

PyTorch computes no gradient for an input that does not require one; rnnlab's modules skip the
input-gradient GEMM the same way when the caller says nothing needs it. The parameter and
initial-state gradients must be bit for bit those of a full backward pass, and a ``Sequential``
must still compute every input gradient that an earlier layer with weights consumes.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.cells.base import Cell
from rnnlab.nn.layers import Dense, Dropout, Embedding, OneHot
from rnnlab.nn.recurrent import GRU, LSTM, SimpleRNN
from rnnlab.nn.seq2seq import OneToMany
from rnnlab.nn.sequential import Sequential

LAYERS = {
    "rnn": lambda: SimpleRNN(5, input_size=3, return_sequences=True, seed=0, dtype="float64"),
    "lstm": lambda: LSTM(5, input_size=3, return_sequences=True, seed=0, dtype="float64"),
    "gru": lambda: GRU(5, input_size=3, return_sequences=True, seed=0, dtype="float64"),
    "bilstm": lambda: Bidirectional(LSTM(5, input_size=3, return_sequences=True, seed=0, dtype="float64")),
    "lstm-last-backwards": lambda: LSTM(5, input_size=3, go_backwards=True, seed=0, dtype="float64"),
}


def _grads(module):
    return {k: v.copy() for k, v in module.named_grads()}


@pytest.mark.parametrize("make", list(LAYERS.values()), ids=list(LAYERS))
@pytest.mark.parametrize("masked", [False, True])
def test_recurrent_layers_skip_only_the_input_gradient(rng, make, masked):
    layer = make()
    x = rng.standard_normal((4, 6, 3))
    mask = np.array([[1] * 6, [1] * 4 + [0] * 2, [0] * 2 + [1] * 4, [1] * 6], dtype=bool) if masked else None
    y = layer(x, mask=mask)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    full, full_init = _grads(layer), layer.initial_state_grad
    assert dx.shape == x.shape and np.abs(dx).sum() > 0

    layer.zero_grad()
    layer(x, mask=mask)
    assert layer.backward(dy, input_grad=False) is None
    for name, g in _grads(layer).items():
        np.testing.assert_array_equal(g, full[name], err_msg=name)
    assert len(layer.initial_state_grad) == len(full_init)
    for got, want in zip(layer.initial_state_grad, full_init):
        np.testing.assert_array_equal(got, want)


def test_the_input_projection_gemm_is_not_run(rng, monkeypatch):
    calls = []
    original = Cell.input_grad
    monkeypatch.setattr(Cell, "input_grad", lambda self, p, tape: calls.append(1) or original(self, p, tape))
    layer = LSTM(4, input_size=3, seed=0, dtype="float64")
    layer(rng.standard_normal((2, 5, 3)))
    layer.backward(np.ones((2, 4)), input_grad=False)
    assert calls == []
    layer.backward(np.ones((2, 4)))
    assert calls == [1]


def _spy_backward(layer, seen):
    original = layer.backward

    def backward(dy, *d_states, input_grad=True):
        seen.append((type(layer).__name__, input_grad))
        return original(dy, *d_states, input_grad=input_grad)
    layer.backward = backward


@pytest.mark.parametrize("first, ids, expected", [
    # (first layer, integer input?, input_grad each layer receives, first to last)
    ("onehot", True, [("LSTM", False), ("Dropout", True), ("Dense", True)]),
    ("onehot-dropout", True, [("LSTM", False), ("Dropout", True), ("Dense", True)]),
    ("embedding", True, [("Embedding", False), ("LSTM", True), ("Dropout", True), ("Dense", True)]),
    ("none", False, [("LSTM", False), ("Dropout", True), ("Dense", True)]),
])
def test_sequential_asks_a_layer_for_its_input_gradient_only_when_a_layer_with_weights_needs_it(
        rng, first, ids, expected):
    front = {"onehot": [OneHot(7, dtype="float64")], "embedding": [Embedding(7, 3, seed=1, dtype="float64")],
             "onehot-dropout": [OneHot(7, dtype="float64"), Dropout(0.5, seed=3)], "none": []}[first]
    model = Sequential(front + [LSTM(5, input_size=7 if first.startswith("onehot") else 3, return_sequences=True,
                                     seed=0, dtype="float64"),
                                Dropout(0.0), Dense(2, seed=2, dtype="float64")])
    x = rng.integers(0, 7, size=(3, 4)) if ids else rng.standard_normal((3, 4, 3))
    dy = rng.standard_normal((3, 4, 2))
    model(x, training=True)
    model.backward(dy)
    full = _grads(model)

    seen = []
    for layer in model.layers:
        _spy_backward(layer, seen)
    model.zero_grad()
    for layer in model.layers:
        if isinstance(layer, Dropout):
            layer._rng = np.random.default_rng(3)  # the same dropout mask as the first pass
    model(x, training=True)
    assert model.backward(dy, input_grad=False) is None
    assert seen == expected[::-1]  # the layers before the last one asked for no input gradient are not called
    for name, g in _grads(model).items():
        np.testing.assert_array_equal(g, full[name], err_msg=name)


@pytest.mark.parametrize("input_mode, feedback", [("first", False), ("every", False), ("state", True)])
def test_one_to_many_without_input_gradient_keeps_every_parameter_gradient(rng, input_mode, feedback):
    model = OneToMany(LSTM(4, return_sequences=True, return_state=feedback, seed=0, dtype="float64"),
                      Dense(3, seed=1, dtype="float64"), steps=5, input_mode=input_mode, feedback=feedback, seed=2)
    x = rng.standard_normal((2, 3))
    targets = rng.integers(0, 3, size=(2, 5)) if feedback else None
    inputs = (x, targets) if feedback else x
    y = model(inputs)
    dy = rng.standard_normal(y.shape)
    dx = model.backward(dy)
    full = _grads(model)
    assert dx.shape == x.shape
    model.zero_grad()
    model(inputs)
    assert model.backward(dy, input_grad=False) is None
    for name, g in _grads(model).items():
        np.testing.assert_array_equal(g, full[name], err_msg=name)
