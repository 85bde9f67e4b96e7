"""``Recurrent.activations()``: the states and gate values of the last forward call, step by step.

The expected values are computed here from the cell equations with the layer's own weights, one step
at a time in float64, independently of the layer's fused buffers.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.recurrent import GRU, LSTM, SimpleRNN

pytestmark = pytest.mark.usefixtures("kernel_backend")


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def lstm_steps(p, x, H):
    B, T, _ = x.shape
    h, c = np.zeros((B, H)), np.zeros((B, H))
    out = {k: [] for k in "hcifgo"}
    for t in range(T):
        z = x[:, t] @ p["U"].T + h @ p["W"].T + p["b"]
        i, f, g, o = sigmoid(z[:, :H]), sigmoid(z[:, H:2 * H]), np.tanh(z[:, 2 * H:3 * H]), sigmoid(z[:, 3 * H:])
        c = f * c + i * g
        h = o * np.tanh(c)
        for k, v in zip("hcifgo", (h, c, i, f, g, o)):
            out[k].append(v)
    return {k: np.stack(v, axis=1) for k, v in out.items()}


def gru_steps(p, x, H):
    B, T, _ = x.shape
    h = np.zeros((B, H))
    out = {k: [] for k in "hrzn"}
    for t in range(T):
        gi = x[:, t] @ p["U"].T + p["b"]
        gh = h @ p["W"].T
        r = sigmoid(gi[:, :H] + gh[:, :H])
        z = sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
        n = np.tanh(gi[:, 2 * H:] + r * (gh[:, 2 * H:] + p["b_hn"]))
        h = (1 - z) * n + z * h
        for k, v in zip("hrzn", (h, r, z, n)):
            out[k].append(v)
    return {k: np.stack(v, axis=1) for k, v in out.items()}


def rnn_steps(p, x, H):
    B, T, _ = x.shape
    a, hs = np.zeros((B, H)), []
    for t in range(T):
        a = np.tanh(x[:, t] @ p["U"].T + a @ p["W"].T + p["b"])
        hs.append(a)
    return {"h": np.stack(hs, axis=1)}


CASES = [(LSTM, lstm_steps, "hcifgo"), (GRU, gru_steps, "hrzn"), (SimpleRNN, rnn_steps, "h")]


@pytest.mark.parametrize("layer_class, reference, names", CASES, ids=["lstm", "gru", "rnn"])
def test_activations_follow_the_cell_equations(layer_class, reference, names, rng):
    B, T, D, H = 3, 5, 4, 6
    layer = layer_class(H, input_size=D, return_sequences=True, dtype="float64", seed=0)
    layer.params["b"][:] = rng.normal(size=layer.params["b"].shape)  # non-zero biases reach every gate
    x = rng.normal(size=(B, T, D))
    layer(x)
    got = layer.activations()
    assert sorted(got) == sorted(names)
    expected = reference(layer.params, x, H)
    for k in names:
        assert got[k].shape == (B, T, H)
        np.testing.assert_allclose(got[k], expected[k], rtol=1e-12, atol=1e-12, err_msg=k)


def test_activations_are_zero_on_padding_and_unchanged_on_data(rng):
    B, T, D, H = 3, 6, 2, 4
    layer = LSTM(H, input_size=D, dtype="float64", seed=1)
    x = rng.normal(size=(B, T, D))
    lengths = np.array([6, 3, 2])
    mask = np.arange(T)[None, :] < lengths[:, None]
    mask[:, 4:] = False  # steps 4 and 5 are padding for the whole batch: they never run
    layer(x, mask=mask)
    masked = layer.activations()
    for row, n in enumerate(np.minimum(lengths, 4)):
        layer(x[row:row + 1, :n])
        alone = layer.activations()
        for k, v in masked.items():
            np.testing.assert_allclose(v[row, :n], alone[k][0], rtol=1e-12, atol=1e-12, err_msg=k)
            assert np.all(v[row, n:] == 0.0), k


def test_go_backwards_activations_are_in_processing_order(rng):
    layer = GRU(3, input_size=2, dtype="float64", seed=2, go_backwards=True)
    x = rng.normal(size=(2, 4, 2))
    layer(x)
    backwards = layer.activations()
    forwards = GRU(3, input_size=2, dtype="float64", seed=2)
    forwards(x[:, ::-1])
    for k, v in forwards.activations().items():
        np.testing.assert_allclose(backwards[k], v, rtol=1e-12, atol=1e-12, err_msg=k)


def test_bidirectional_activations_are_in_time_order(rng):
    layer = Bidirectional(LSTM(3, return_sequences=True, dtype="float64", seed=3))
    x = rng.normal(size=(2, 5, 2))
    y = layer(x)
    got = layer.activations()
    assert set(got) == {"forward", "backward"}
    np.testing.assert_allclose(got["forward"]["h"], y[..., :3], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got["backward"]["h"], y[..., 3:], rtol=1e-12, atol=1e-12)
    assert set(got["backward"]) == set("hcifgo")


def test_activations_before_any_forward_call_is_an_error():
    with pytest.raises(ValueError, match=r"LSTM.activations\(\) needs a forward call first"):
        LSTM(3, input_size=2).activations()


def test_lstm_cell_gradient_norms_on_padding_are_the_carried_gradient(rng):
    """On a padded step c is carried unchanged, so ||dL/dc_t|| there is the norm of what reaches c_{t-1}."""
    layer = LSTM(3, input_size=2, dtype="float64", seed=0)
    layer.record_grad_norms = True
    x = rng.normal(size=(2, 4, 2))
    mask = np.array([[0, 0, 1, 1], [1, 1, 1, 1]], dtype=bool)  # row 0: pre-padding; row 1: full
    layer(x, mask=mask)
    layer.backward(np.ones((2, 3)))
    dc0 = np.linalg.norm(layer.initial_state_grad[1][0])
    assert dc0 > 0
    np.testing.assert_allclose(layer.grad_norms["c"][0, :2], [dc0, dc0], rtol=1e-12)
    alone = LSTM(3, input_size=2, dtype="float64", seed=0)
    alone.record_grad_norms = True
    alone(x[1:])
    alone.backward(np.ones((1, 3)))
    np.testing.assert_allclose(layer.grad_norms["c"][1], alone.grad_norms["c"][0], rtol=1e-12)
