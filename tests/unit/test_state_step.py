"""Explicit recurrent state (rnnlab.nn.state) and the shared training step (rnnlab.nn.step).

Expected values come from plain forward passes over whole sequences and from the steps written out by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab import optim
from rnnlab.generate import Generator
from rnnlab.nn import (
    GRU,
    LSTM,
    Bidirectional,
    Dense,
    Embedding,
    Module,
    Sequential,
    SimpleRNN,
    StepDiverged,
    final_states,
    forward_with_states,
    train_step,
)
from rnnlab.nn.losses import get as get_loss
from rnnlab.nn.step import loss_outputs


def stack_model(seed=0):
    return Sequential([LSTM(4, input_size=3, return_sequences=True, seed=seed, dtype="float64"),
                       GRU(3, return_sequences=True, seed=seed + 1, dtype="float64"),
                       Dense(2, seed=seed + 2, dtype="float64")])


@pytest.fixture
def x():
    return np.random.default_rng(0).standard_normal((2, 7, 3))


# ---------------------------------------------------------------------- state maps
def test_two_calls_with_the_state_map_equal_one_call_over_the_whole_sequence(x):
    model = stack_model()
    whole = model(x)
    first, states = forward_with_states(model, x[:, :3], {})
    assert sorted(states) == ["0", "1"] and [len(s) for s in states.values()] == [2, 1]
    second, _ = forward_with_states(model, x[:, 3:], states)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, rtol=0, atol=1e-13)
    np.testing.assert_allclose(model.final_states()["1"][0], whole_final(model, x)["1"][0], rtol=0, atol=1e-13)


def whole_final(model, x):
    model(x)
    return model.final_states()


def test_a_state_map_leaves_a_stateful_layer_alone(x):
    model = stack_model()
    expected = model(x)
    lstm = model.layers[0]
    lstm.stateful = True
    model(x[:1])  # carries a state for a batch of 1
    carried = lstm.states
    np.testing.assert_array_equal(model(x, initial_state={}), expected)  # not read (nor refused: batch 2)
    for before, after in zip(carried, lstm.states):  # nor updated
        np.testing.assert_array_equal(after, before)
    assert model(x[:1]).shape == (1, 7, 2)  # the plain call still carries


def test_missing_and_none_entries_are_zeros(x):
    model = stack_model()
    zeros = {"0": (np.zeros((2, 4)), np.zeros((2, 4))), "1": None}
    np.testing.assert_array_equal(model(x, initial_state=zeros), model(x))


def test_bidirectional_and_nested_sequentials_route_the_map(x):
    inner = Sequential([SimpleRNN(3, input_size=3, return_sequences=True, seed=1, dtype="float64")])
    model = Sequential([inner, Bidirectional(GRU(2, return_sequences=True, seed=2, dtype="float64")),
                        Dense(1, seed=3, dtype="float64")])
    y, states = forward_with_states(model, x, {})
    assert list(states) == ["0.0", "1.forward", "1.backward"]
    h = np.random.default_rng(1).standard_normal((2, 3))
    by_hand = model.layers[2](model.layers[1](inner(x, initial_state=[h])))
    np.testing.assert_array_equal(model(x, initial_state={"0.0": (h,)}), by_hand)
    assert not np.allclose(by_hand, y)


def test_state_map_errors(x):
    model = stack_model()
    with pytest.raises(ValueError, match=r"the state map names \['2', '9.x'\], which are no recurrent layers"):
        model(x, initial_state={"2": None, "9.x": None})
    with pytest.raises(ValueError, match=r"initial_state must be 2 array\(s\) \(h, c\) .*got dict with keys \['h'\]"):
        model.layers[0](x, initial_state={"h": None})

    class Wrapper(Module):
        def __init__(self, layer):
            super().__init__(dtype="float64")
            self.layer = layer

        def children(self):
            return [("layer", self.layer)]

        def forward(self, x, mask=None, initial_state=None, training=False):
            return self.layer(x, mask=mask, initial_state=initial_state, training=training)

    wrapped = Sequential([Wrapper(SimpleRNN(2, input_size=3, return_sequences=True, dtype="float64"))])
    with pytest.raises(TypeError, match=r"layer 0 \(Wrapper\) holds recurrent layers but does not take a state map"):
        wrapped(x, initial_state={})
    y, states = forward_with_states(Wrapper(SimpleRNN(2, input_size=3, dtype="float64")), x, {"layer": None})
    assert y.shape == (2, 2) and list(states) == ["layer"]
    with pytest.raises(TypeError, match=r"Wrapper does not take a state map"):
        forward_with_states(Wrapper(SimpleRNN(2, input_size=3, dtype="float64")), x, {"layer": (np.zeros((2, 2)),)})


def test_final_states_of_a_model_not_run_yet():
    assert final_states(stack_model()) == {"0": None, "1": None}


# ---------------------------------------------------------------------- the training step
def test_train_step_is_the_update_written_out(x):
    y = np.random.default_rng(1).standard_normal((2, 7, 2))
    model, reference = stack_model(), stack_model()
    loss = get_loss("mse")
    result = train_step(model, loss, optim.SGD(lr=0.1), x, y, states={}, clip_norm=0.5)
    # by hand, on the copy
    reference.zero_grad()
    out = reference(x, training=True)
    value = loss(out, y)
    reference.backward(loss.backward())
    norm = optim.clip_grad_norm(reference, 0.5)
    optim.SGD(lr=0.1).step(reference)
    assert result.loss == value and result.grad_norm == norm
    np.testing.assert_array_equal(result.outputs, out)
    for (name, p), (_, q) in zip(model.named_parameters(), reference.named_parameters()):
        np.testing.assert_array_equal(p, q, err_msg=name)
    assert sorted(result.states) == ["0", "1"]


def test_a_loss_mask_scores_some_outputs_while_the_model_reads_every_step(x):
    y = np.random.default_rng(1).standard_normal((2, 7, 2))
    loss_mask = np.zeros((2, 7), dtype=bool)
    loss_mask[0, [2, 6]] = loss_mask[1, 4] = True
    model, reference = stack_model(), stack_model()
    loss = get_loss("mse")
    result = train_step(model, loss, optim.SGD(lr=0.1), x, y, loss_mask=loss_mask)
    reference.zero_grad()
    out = reference(x, training=True)  # no input mask: every step is read
    value = loss(out, y, mask=loss_mask)
    reference.backward(loss.backward())
    optim.SGD(lr=0.1).step(reference)
    assert result.loss == value and result.mask is loss_mask
    for (name, p), (_, q) in zip(model.named_parameters(), reference.named_parameters()):
        np.testing.assert_array_equal(p, q, err_msg=name)


def test_train_step_on_the_last_outputs_only(x):
    y = np.random.default_rng(1).standard_normal((2, 3, 2))
    model = stack_model()
    result = train_step(model, get_loss("mse"), optim.SGD(lr=0.0), x, y, states={}, n_out=3)
    assert result.outputs.shape == (2, 3, 2)
    with pytest.raises(ValueError, match=r"truncated BPTT needs one output per step"):
        loss_outputs(model, np.zeros((2, 2)), None, n_out=3, steps=7)


def test_a_non_finite_gradient_stops_the_step_before_the_weights_change(x):
    class Poisoned(Sequential):
        def backward(self, dy, *d_states, input_grad=True):
            dx = super().backward(dy, *d_states, input_grad=input_grad)
            dict(self.named_grads())["1.W"][0] = np.inf
            return dx

    model = Poisoned(stack_model().layers)
    before = {k: p.copy() for k, p in model.named_parameters()}
    with pytest.raises(StepDiverged, match=r"the gradient of parameter '1.W' is not finite") as info:
        train_step(model, get_loss("mse"), optim.SGD(lr=0.1), x, np.zeros((2, 7, 2)))
    assert info.value.name == "1.W"
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(p, before[name])


def test_non_finite_inputs_are_the_callers_error_not_a_divergence(x):
    x = x.copy()
    x[0, 1, 2] = np.nan
    with pytest.raises(ValueError, match=r"x contains NaN or inf") as info:
        train_step(stack_model(), get_loss("mse"), optim.SGD(lr=0.1), x, np.zeros((2, 7, 2)))
    assert not isinstance(info.value, StepDiverged)


def test_fit_takes_train_step_per_batch(x):
    y = np.random.default_rng(1).standard_normal((2, 7, 2))
    model, reference = stack_model(), stack_model()
    history = model.fit(x, y, optimizer=optim.SGD(lr=0.1), epochs=2, batch_size=1, shuffle=False, clip_norm=1.0)
    opt, losses = optim.SGD(lr=0.1), []
    for _ in range(2):
        losses.append(np.mean([train_step(reference, get_loss("mse"), opt, x[i:i + 1], y[i:i + 1], clip_norm=1.0).loss
                               for i in range(2)]))
    np.testing.assert_allclose(history["loss"], losses, rtol=1e-15)
    for (name, p), (_, q) in zip(model.named_parameters(), reference.named_parameters()):
        np.testing.assert_array_equal(p, q, err_msg=name)


# ---------------------------------------------------------------------- generation
def test_generators_hold_their_own_state_so_two_may_share_a_model():
    model = Sequential([Embedding(6, 3, seed=0, dtype="float64"),
                        LSTM(4, return_sequences=True, seed=1, dtype="float64"),
                        Dense(6, seed=2, dtype="float64")])
    with Generator(model) as a, Generator(model) as b:
        za, zb = a.prime([1, 2]), b.prime([3])
        za, zb = a.step(4), b.step(5)  # interleaved
        assert sorted(a.states) == ["1"] and a.states["1"][0].shape == (1, 4)
    np.testing.assert_allclose(za, model(np.array([[1, 2, 4]]))[0, -1], rtol=0, atol=1e-13)
    np.testing.assert_allclose(zb, model(np.array([[3, 5]]))[0, -1], rtol=0, atol=1e-13)
