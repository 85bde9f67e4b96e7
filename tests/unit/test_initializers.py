"""Weight initialisers, alone and as the recurrent layers apply them (once per gate block)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnlab.nn import initializers
from rnnlab.nn.layers import Dense, Embedding
from rnnlab.nn.recurrent import GRU, LSTM, SimpleRNN

GATES = {SimpleRNN: 1, LSTM: 4, GRU: 3}
by_cell = pytest.mark.parametrize("cls", list(GATES), ids=[c.__name__ for c in GATES])


def blocks(M, H):
    """The H-row gate blocks of a stacked (G*H, ...) matrix."""
    return [M[g * H:(g + 1) * H] for g in range(M.shape[0] // H)]


# ---------------------------------------------------------------------------- the functions
@pytest.mark.parametrize("shape", [(40, 60), (200, 10), (7, 7)])
def test_glorot_uniform_bounds(rng, shape):
    w = initializers.glorot_uniform(shape, rng, np.float64)
    limit = math.sqrt(6.0 / (shape[0] + shape[1]))
    assert w.shape == shape and w.dtype == np.float64
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.9 * limit  # uses the whole range, not a smaller one
    np.testing.assert_allclose(w.var(), limit ** 2 / 3, rtol=0.25)  # var of U(-a, a) = a^2/3


def test_glorot_uniform_explicit_fans(rng):
    w = initializers.glorot_uniform((30, 30), rng, np.float32, fan_in=10, fan_out=20)
    limit = math.sqrt(6.0 / 30)
    assert w.dtype == np.float32
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.9 * limit


@pytest.mark.parametrize("shape", [(6, 6), (4, 9), (9, 4)])
def test_orthogonal(rng, shape):
    q = initializers.orthogonal(shape, rng, np.float64)
    assert q.shape == shape
    small = min(shape)
    gram = q.T @ q if shape[0] >= shape[1] else q @ q.T  # orthonormal columns (tall) or rows (wide)
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-12)


def test_orthogonal_gain():
    a = initializers.orthogonal((5, 5), np.random.default_rng(3), np.float64)
    b = initializers.orthogonal((5, 5), np.random.default_rng(3), np.float64, gain=2.0)
    np.testing.assert_allclose(b, 2.0 * a, rtol=1e-14)


def test_identity(rng):
    np.testing.assert_array_equal(initializers.identity((4, 4), rng, np.float32), np.eye(4))
    np.testing.assert_array_equal(initializers.identity((2, 3), rng, np.float64), [[1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(initializers.identity((3, 3), rng, np.float64, gain=0.5), 0.5 * np.eye(3))
    with pytest.raises(ValueError, match=r"needs a 2-D shape, got \(3,\)"):
        initializers.identity((3,), rng, np.float64)


@pytest.mark.parametrize("spec,scale", [("uniform:0.1", 0.1), ("uniform:0.5", 0.5), ("uniform", 0.05)])
def test_uniform_with_scale(rng, spec, scale):
    w = initializers.get(spec)((100, 100), rng, np.float64)
    assert np.abs(w).max() <= scale and np.abs(w).max() > 0.99 * scale
    assert abs(w.mean()) < 0.02 * scale


def test_normal_with_scale(rng):
    w = initializers.get("normal:0.01")((200, 200), rng, np.float64)
    np.testing.assert_allclose(w.std(), 0.01, rtol=0.02)


def test_constants(rng):
    np.testing.assert_array_equal(initializers.get("zeros")((3, 2), rng, np.float32), 0)
    np.testing.assert_array_equal(initializers.get("ones")((3,), rng, np.float32), 1)


def test_get_accepts_a_callable_and_to_config_round_trips():
    def custom(shape, rng, dtype, **kw):
        return np.full(shape, 0.25, dtype=dtype)

    assert initializers.get(custom) is custom
    assert initializers.to_config("orthogonal") == "orthogonal"
    assert initializers.to_config(initializers.get("uniform:0.1")) == "uniform:0.1"
    with pytest.raises(ValueError, match=r"custom callable and cannot be saved"):
        initializers.to_config(custom)


def test_custom_callable_is_used_per_gate_block():
    calls = []

    def custom(shape, rng, dtype, **kw):
        calls.append(shape)
        return np.full(shape, 0.25, dtype=dtype)

    layer = LSTM(3, input_size=2, kernel_initializer=custom)
    np.testing.assert_array_equal(layer.params["U"], 0.25)
    assert calls == [(3, 2)] * 4


# ---------------------------------------------------------------------------- as the layers use them
@by_cell
def test_recurrent_W_is_orthogonal_per_gate_block(cls):
    H = 6
    layer = cls(H, input_size=4, seed=0, dtype="float64")
    W = layer.params["W"]
    assert W.shape == (GATES[cls] * H, H)
    for block in blocks(W, H):
        np.testing.assert_allclose(block.T @ block, np.eye(H), atol=1e-12)
        np.testing.assert_allclose(block @ block.T, np.eye(H), atol=1e-12)
    if GATES[cls] > 1:  # each block drawn on its own, not one block repeated
        assert not np.allclose(blocks(W, H)[0], blocks(W, H)[1])
        # the stacked (G*H, H) matrix as a whole is not orthonormal column-wise: Q^T Q = G I
        np.testing.assert_allclose(W.T @ W, GATES[cls] * np.eye(H), atol=1e-12)


@by_cell
def test_recurrent_U_glorot_per_gate_block(cls):
    D, H = 30, 20
    layer = cls(H, input_size=D, seed=1, dtype="float64")
    limit = math.sqrt(6.0 / (D + H))  # fans of one gate: (D, H)
    for block in blocks(layer.params["U"], H):
        assert np.abs(block).max() <= limit
        assert np.abs(block).max() > 0.9 * limit


def test_irnn_identity_recurrent_weights():
    layer = SimpleRNN(5, activation="relu", recurrent_initializer="identity", input_size=3, dtype="float64")
    np.testing.assert_array_equal(layer.params["W"], np.eye(5))
    np.testing.assert_array_equal(layer.params["b"], 0.0)
    # with U = 0 the state is carried unchanged: a_t = relu(I a_{t-1}) for a_0 >= 0
    layer.params["U"][...] = 0
    a0 = np.array([[0.5, 1.0, 2.0, 0.0, 3.0]])
    np.testing.assert_array_equal(layer(np.ones((1, 4, 3)), initial_state=a0), a0)


def test_identity_in_each_gate_block():
    layer = LSTM(3, recurrent_initializer="identity", input_size=2)
    for block in blocks(layer.params["W"], 3):
        np.testing.assert_array_equal(block, np.eye(3))


@by_cell
def test_uniform_0_1_within_bounds(cls):
    kw = {"forget_bias": None} if cls is LSTM else {}  # keep the forget block as drawn
    layer = cls(16, input_size=12, kernel_initializer="uniform:0.1", recurrent_initializer="uniform:0.1",
                bias_initializer="uniform:0.1", seed=0, **kw)
    for name, p in layer.params.items():
        assert np.abs(p).max() <= np.float32(0.1), name
    everything = np.concatenate([p.ravel() for p in layer.params.values()])
    assert everything.max() > 0.095 and everything.min() < -0.095


@by_cell
def test_pytorch_init_within_one_over_sqrt_H(cls):
    H = 9
    kw = {"forget_bias": None} if cls is LSTM else {}
    layer = cls(H, input_size=40, kernel_initializer="pytorch", recurrent_initializer="pytorch",
                bias_initializer="pytorch", seed=0, dtype="float64", **kw)
    k = 1.0 / math.sqrt(H)  # not 1/sqrt(D): PyTorch uses the hidden size for every weight and bias
    for name, p in layer.params.items():
        assert np.abs(p).max() <= k, name
    assert np.abs(layer.params["U"]).max() > 0.95 * k


def test_pytorch_init_in_dense_uses_fan_in():
    layer = Dense(50, input_size=16, kernel_initializer="pytorch", bias_initializer="pytorch", seed=0, dtype="float64")
    k = 1.0 / math.sqrt(16)
    assert np.abs(layer.params["V"]).max() <= k and np.abs(layer.params["V"]).max() > 0.95 * k
    assert np.abs(layer.params["c"]).max() <= k


def test_dense_glorot():
    layer = Dense(30, input_size=20, seed=0, dtype="float64")
    limit = math.sqrt(6.0 / 50)
    assert np.abs(layer.params["V"]).max() <= limit and np.abs(layer.params["V"]).max() > 0.9 * limit
    np.testing.assert_array_equal(layer.params["c"], 0.0)


def test_embedding_default_uniform_0_05():
    E = Embedding(100, 20, seed=0).params["E"]
    assert np.abs(E).max() <= np.float32(0.05) and np.abs(E).max() > 0.049


@pytest.mark.parametrize("forget_bias", [1.0, 2.5, 0.0])
def test_lstm_forget_bias_sets_the_f_block(forget_bias):
    H = 4
    b = LSTM(H, input_size=3, forget_bias=forget_bias).params["b"]
    i, f, g, o = blocks(b, H)
    np.testing.assert_array_equal(f, forget_bias)
    for other in (i, g, o):
        np.testing.assert_array_equal(other, 0.0)


def test_lstm_forget_bias_default_and_none():
    H = 3
    np.testing.assert_array_equal(LSTM(H, input_size=2).params["b"], [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    b = LSTM(H, input_size=2, forget_bias=None, bias_initializer="ones").params["b"]
    np.testing.assert_array_equal(b, 1.0)
    b = LSTM(H, input_size=2, forget_bias=3.0, bias_initializer="ones").params["b"]
    np.testing.assert_array_equal(b, [1, 1, 1, 3, 3, 3, 1, 1, 1, 1, 1, 1])


@pytest.mark.parametrize("make", [
    lambda s: SimpleRNN(4, input_size=3, seed=s), lambda s: LSTM(4, input_size=3, seed=s),
    lambda s: GRU(4, input_size=3, seed=s), lambda s: Dense(4, input_size=3, seed=s), lambda s: Embedding(7, 3, seed=s),
], ids=["SimpleRNN", "LSTM", "GRU", "Dense", "Embedding"])
def test_seeds_reproduce(make):
    a, b, c = make(11).params, make(11).params, make(12).params
    assert list(a) == list(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert any(not np.array_equal(a[k], c[k]) for k in a if np.any(a[k] != 0))


def test_generator_seed_is_accepted_and_advanced():
    gen = np.random.default_rng(5)
    first = SimpleRNN(3, input_size=2, seed=gen).params["U"]
    second = SimpleRNN(3, input_size=2, seed=gen).params["U"]
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, SimpleRNN(3, input_size=2, seed=np.random.default_rng(5)).params["U"])


def test_lazy_build_draws_the_same_weights_as_eager():
    eager = GRU(4, input_size=3, seed=2)
    lazy = GRU(4, seed=2)
    lazy(np.zeros((1, 2, 3), np.float32))
    for key in eager.params:
        np.testing.assert_array_equal(eager.params[key], lazy.params[key])
