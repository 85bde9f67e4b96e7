"""``rnnlab.diagnostics`` against central finite differences of the forward pass, in float64.

Every derivative the diagnostics report is recomputed here from the layers' *forward* passes only:
the step Jacobians ``ds_t/ds_{t-1}`` (each cell, masks, reading backwards), the last-step probe
``||dL_T/dh_t||`` and the LSTM's ``||dL_T/dc_t||``, and ``||dL/dh_t||`` of a real loss inside a
two-layer model. The forward passes used here are split at the step under test: run up to it,
perturb the carried state, run on from it.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.lab import diagnostics as dg
from rnnlab.nn.layers import Dense
from rnnlab.nn.recurrent import GRU, LSTM, SimpleRNN
from rnnlab.nn.sequential import Sequential

EPS = 1e-6
RTOL, ATOL = 1e-6, 1e-8  # central differences at eps = 1e-6 err by about 1e-10 here

CELLS = {
    "rnn-tanh": lambda: SimpleRNN(3, activation="tanh", input_size=2, seed=1, dtype="float64"),
    "rnn-relu": lambda: SimpleRNN(3, activation="relu", input_size=2, seed=2, dtype="float64"),
    "rnn-sigmoid": lambda: SimpleRNN(3, activation="sigmoid", input_size=2, seed=3, dtype="float64"),
    "lstm": lambda: LSTM(3, input_size=2, seed=4, dtype="float64"),
    "gru": lambda: GRU(3, input_size=2, seed=5, dtype="float64"),
    "gru-reset-before": lambda: GRU(3, reset_after=False, input_size=2, seed=6, dtype="float64"),
}
MASKS = {
    "none": None,
    # post-padding, pre-padding, interior padding, and a step that is padding in every sequence
    "mixed": np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 1], [1, 0, 1, 1, 0]], dtype=bool),
    "all-padded-step": np.array([[1, 1, 0, 1, 1], [1, 1, 0, 1, 0], [1, 1, 0, 0, 0]], dtype=bool),
}
B, T, D = 3, 5, 2


def _randomise(layer, rng):
    """Weights and biases of order 1, so that every gate and activation is away from trivial values."""
    for p in layer.params.values():
        p[...] = rng.normal(0.0, 0.7, p.shape)
    return layer


def _stepper(layer, **flags):
    """A float64 copy running forward in the layer's processing order and returning its final state(s)."""
    config = layer.get_config()
    config.update(go_backwards=False, return_state=True, return_sequences=False, stateful=False, dtype="float64")
    config.update(flags)
    copy = type(layer).from_config(config)
    copy.set_weights(layer.params)
    return copy


def _processing(layer, x, mask):
    x_p = x[:, ::-1] if layer.go_backwards else x
    m = np.ones(x.shape[:2], bool) if mask is None else mask
    m_p = m[:, ::-1] if layer.go_backwards else m
    return np.ascontiguousarray(x_p), np.ascontiguousarray(m_p)


def _state_out_of(stepper, x_p, m_p, t):
    """The state(s) carried out of step t (processing order), t = -1 for the initial (zero) state."""
    if t < 0:
        return [np.zeros((x_p.shape[0], stepper.hidden_size)) for _ in stepper.state_names]
    return list(stepper(x_p[:, :t + 1], mask=m_p[:, :t + 1])[1:])


def _fd_columns(f, s, eps=EPS):
    """Central differences of a row-wise function f: (B, S) -> (B, K); returns (B, K, S)."""
    cols = []
    for j in range(s.shape[1]):
        e = np.zeros_like(s)
        e[:, j] = eps
        cols.append((f(s + e) - f(s - e)) / (2 * eps))
    return np.stack(cols, axis=-1)


def _close(actual, expected, rtol=RTOL):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=ATOL)


# --------------------------------------------------------------------------- step Jacobians
@pytest.mark.parametrize("mask_name", list(MASKS))
@pytest.mark.parametrize("cell", list(CELLS))
def test_step_jacobians_match_finite_differences_of_one_step(cell, mask_name, rng):
    layer = _randomise(CELLS[cell](), rng)
    x = rng.normal(size=(B, T, D))
    mask = MASKS[mask_name]
    J = dg.step_jacobians(layer, x, mask)
    n = len(layer.state_names)
    S = n * layer.hidden_size
    assert J.shape == (B, T, S, S) and J.dtype == np.float64

    stepper = _stepper(layer)
    x_p, m_p = _processing(layer, x, mask)
    for t in range(T):
        s_in = np.concatenate(_state_out_of(stepper, x_p, m_p, t - 1), axis=1)  # (B, S)

        def one_step(s, t=t):
            out = stepper(x_p[:, t:t + 1], mask=m_p[:, t:t + 1], initial_state=np.split(s, n, axis=1))[1:]
            return np.concatenate(out, axis=1)  # (B, S)

        _close(J[:, t], _fd_columns(one_step, s_in))
        for b in np.flatnonzero(~m_p[:, t]):
            np.testing.assert_array_equal(J[b, t], np.eye(S))  # a padded step carries the state unchanged


@pytest.mark.parametrize("cell", ["rnn-tanh", "lstm", "gru"])
def test_step_jacobians_of_a_layer_reading_backwards_and_from_a_given_initial_state(cell, rng):
    base = _randomise(CELLS[cell](), rng)
    config = base.get_config()
    config["go_backwards"] = True
    layer = type(base).from_config(config)
    layer.set_weights(base.params)
    x = rng.normal(size=(B, T, D))
    mask = MASKS["mixed"]
    state0 = [rng.normal(size=(B, 3)) for _ in layer.state_names]
    J = dg.step_jacobians(layer, x, mask, initial_state=state0)

    n = len(layer.state_names)
    stepper = _stepper(layer)
    x_p, m_p = _processing(layer, x, mask)
    for t in range(T):
        s_in = state0 if t == 0 else list(stepper(x_p[:, :t], mask=m_p[:, :t], initial_state=state0)[1:])

        def one_step(s, t=t):
            out = stepper(x_p[:, t:t + 1], mask=m_p[:, t:t + 1], initial_state=np.split(s, n, axis=1))[1:]
            return np.concatenate(out, axis=1)

        _close(J[:, t], _fd_columns(one_step, np.concatenate(s_in, axis=1)))


# --------------------------------------------------------------------------- the last-step probe
def _loss_from_state(stepper, x_p, m_p, v, t, states):
    """L_T = v . h_T (per sequence) when the state carried out of step t is ``states``."""
    if t == x_p.shape[1] - 1:
        h_T = states[0]
    else:
        h_T = stepper(x_p[:, t + 1:], mask=m_p[:, t + 1:], initial_state=states)[1]
    return np.einsum("bh,bh->b", v, h_T)[:, None]  # (B, 1)


@pytest.mark.parametrize("mask_name", ["none", "mixed"])
@pytest.mark.parametrize("cell", list(CELLS))
def test_gradient_through_time_is_the_norm_of_the_finite_difference_gradient_of_v_dot_h_T(cell, mask_name, rng):
    layer = _randomise(CELLS[cell](), rng)
    x = rng.normal(size=(B, T, D))
    mask = MASKS[mask_name]
    flow = dg.gradient_through_time(layer, x, mask, seed=3)
    v = flow.probe
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-12)

    stepper = _stepper(layer)
    x_p, m_p = _processing(layer, x, mask)
    o = None
    if flow.c is not None:
        seq = _stepper(layer, return_state=False, return_sequences=True)
        seq(x_p, mask=m_p)
        o = seq.activations()["o"]  # (B, T, H)
    for t in range(T):
        states = _state_out_of(stepper, x_p, m_p, t)
        grad_h = _fd_columns(lambda h, t=t, states=states: _loss_from_state(
            stepper, x_p, m_p, v, t, [h, *states[1:]]), states[0])[:, 0]
        real = m_p[:, t]
        _close(flow.h[real, t], np.linalg.norm(grad_h, axis=1)[real])
        assert np.all(flow.h[~real, t] == 0)
        if flow.c is None:
            continue
        # dc_t of the LSTM equations: c_t moves h_t = o_t tanh(c_t) too (o_t held fixed)
        def through_c(c, t=t):
            return _loss_from_state(stepper, x_p, m_p, v, t, [o[:, t] * np.tanh(c), c])

        grad_c = _fd_columns(through_c, states[1])[:, 0]
        _close(flow.c[real, t], np.linalg.norm(grad_c, axis=1)[real])


@pytest.mark.parametrize("cell", ["rnn-tanh", "lstm", "gru-reset-before"])
def test_the_probe_is_the_product_of_finite_difference_jacobians_applied_to_v(cell, rng):
    """dL_T/ds_t = (J_T ... J_{t+1})^T [v; 0] with every J from finite differences, and running_products
    bounds it: the two halves of the module agree."""
    layer = _randomise(CELLS[cell](), rng)
    x = rng.normal(size=(B, T, D))
    flow = dg.gradient_through_time(layer, x, seed=11)
    n, H = len(layer.state_names), layer.hidden_size
    stepper = _stepper(layer)
    x_p, m_p = _processing(layer, x, None)
    J_fd = []
    for t in range(T):
        s_in = np.concatenate(_state_out_of(stepper, x_p, m_p, t - 1), axis=1)
        J_fd.append(_fd_columns(lambda s, t=t: np.concatenate(
            stepper(x_p[:, t:t + 1], initial_state=np.split(s, n, axis=1))[1:], axis=1), s_in))
    g = np.concatenate([flow.probe, np.zeros((B, (n - 1) * H))], axis=1)  # dL_T/ds_T, (B, S)
    bound = dg.running_products(np.stack(J_fd, axis=1))
    for t in range(T - 1, -1, -1):
        _close(flow.h[:, t], np.linalg.norm(g[:, :H], axis=1))
        assert np.all(flow.h[:, t] <= bound[:, t] * (1 + 1e-6))
        g = np.einsum("bk,bkj->bj", g, J_fd[t])  # to the state carried into step t


# --------------------------------------------------------------------------- a real loss in a model
@pytest.mark.parametrize("cell", ["rnn-tanh", "gru"])
def test_gradient_of_a_real_loss_per_layer_matches_finite_differences(cell, rng):
    make = {"rnn-tanh": SimpleRNN, "gru": GRU}[cell]
    first = _randomise(make(3, input_size=2, return_sequences=True, seed=0, dtype="float64"), rng)
    second = _randomise(make(4, input_size=3, seed=1, dtype="float64"), rng)
    dense = Dense(2, input_size=4, seed=2, dtype="float64")
    model = Sequential([first, second, dense])
    x = rng.normal(size=(B, T, D))
    target = rng.normal(size=(B, 2))
    flows = dg.gradient_through_time_of_loss(model, x, target, "mse")
    assert set(flows) == {"0", "1"} and all(f.kind == "loss" for f in flows.values())

    def row_losses(y):  # the mean squared error, split by sequence (its terms are per sequence)
        return (((y - target) ** 2).sum(axis=1) / target.size)[:, None]  # (B, 1)

    seq1 = _stepper(first, return_state=False, return_sequences=True)
    seq2, step2 = _stepper(second, return_state=False, return_sequences=True), _stepper(second)
    h1 = seq1(x)  # (B, T, 3)
    h2 = seq2(h1)  # (B, T, 4)

    def V(h):
        return h @ dense.params["V"].T + dense.params["c"]

    for t in range(T):
        def via_first(s, t=t):
            after = seq1(x[:, t + 1:], initial_state=s) if t < T - 1 else np.zeros((B, 0, 3))
            return row_losses(V(step2(np.concatenate([h1[:, :t], s[:, None], after], axis=1))[0]))

        def via_second(s, t=t):
            return row_losses(V(step2(h1[:, t + 1:], initial_state=s)[0] if t < T - 1 else s))

        _close(flows["0"].h[:, t], np.linalg.norm(_fd_columns(via_first, h1[:, t].copy())[:, 0], axis=1))
        _close(flows["1"].h[:, t], np.linalg.norm(_fd_columns(via_second, h2[:, t].copy())[:, 0], axis=1))
