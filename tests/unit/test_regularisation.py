"""Regularisation (issue 17): what the options compute, at training and at inference, their masks'
statistics, their configs, and their errors. The gradients are in tests/gradcheck/.

Expected values come from independent computations (a hand-written step, the layer without the option
on the masked input), never from the code path under test alone.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.io import load, save
from rnnlab.lab.config import ConfigError, ModelConfig, parse_config
from rnnlab.lab.tasks import build_model
from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.layers import Dense, Embedding, LockedDropout
from rnnlab.nn.recurrent import GRU, LSTM, SimpleRNN
from rnnlab.nn.sequential import Sequential

RECURRENT = {"SimpleRNN": SimpleRNN, "LSTM": LSTM, "GRU": GRU,
             "GRU-v1": lambda H, **kw: GRU(H, reset_after=False, **kw)}
recurrent_classes = pytest.mark.parametrize("make", list(RECURRENT.values()), ids=list(RECURRENT))
B, T, D, H = 4, 6, 3, 5


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# ------------------------------------------------------------------------ dropout, recurrent_dropout
@recurrent_classes
def test_inference_equals_the_layer_without_dropout(make):
    x = np.random.default_rng(0).standard_normal((B, T, D))
    plain = make(H, input_size=D, seed=7, return_sequences=True, dtype="float64")
    dropped = make(H, input_size=D, seed=7, return_sequences=True, dtype="float64", dropout=0.5,
                   recurrent_dropout=0.5)
    np.testing.assert_array_equal(plain(x), dropped(x))  # the same seed draws the same weights
    assert not np.allclose(plain(x), dropped(x, training=True))


@recurrent_classes
def test_no_masks_when_the_rates_are_zero(make):
    layer = make(H, input_size=D, return_sequences=True)
    layer(np.ones((B, T, D), dtype="float32"), training=True)
    assert layer._tape.input_mask is None and layer._tape.recurrent_mask is None
    assert layer.dropout_masks is None


@recurrent_classes
def test_input_dropout_is_the_layer_on_the_masked_input(make):
    """One input mask per sequence, the same at every step: the layer without dropout on ``x * m_x``."""
    x = np.random.default_rng(1).standard_normal((B, T, D))
    plain = make(H, input_size=D, seed=2, return_sequences=True, dtype="float64")
    dropped = make(H, input_size=D, seed=2, return_sequences=True, dtype="float64", dropout=0.5)
    y = dropped(x, training=True)
    m_x = dropped.dropout_masks["input"]  # (B, D)
    assert m_x.shape == (B, D)
    np.testing.assert_allclose(y, plain(x * m_x[:, None, :]), rtol=1e-12, atol=1e-12)


def _step_reference(layer, x_t, h, c, m_h):
    """One step by hand, with ``h_{t-1} * m_h`` in the products with W and the carried state unmasked."""
    p, Hs = layer.params, layer.hidden_size
    hm = h * m_h
    if isinstance(layer, LSTM):
        z = x_t @ p["U"].T + hm @ p["W"].T + p["b"]
        i, f, g, o = sigmoid(z[:, :Hs]), sigmoid(z[:, Hs:2 * Hs]), np.tanh(z[:, 2 * Hs:3 * Hs]), sigmoid(z[:, 3 * Hs:])
        c = f * c + i * g
        return o * np.tanh(c), c
    if isinstance(layer, GRU):
        xp = x_t @ p["U"].T + p["b"]
        W = p["W"]
        rz = sigmoid(xp[:, :2 * Hs] + hm @ W[:2 * Hs].T)
        r, z = rz[:, :Hs], rz[:, Hs:]
        if layer.cell.reset_after:
            n = np.tanh(xp[:, 2 * Hs:] + r * (hm @ W[2 * Hs:].T + p["b_hn"]))
        else:
            n = np.tanh(xp[:, 2 * Hs:] + (r * hm) @ W[2 * Hs:].T)
        return (1 - z) * n + z * h, c
    return np.tanh(x_t @ p["U"].T + hm @ p["W"].T + p["b"]), c


@recurrent_classes
def test_recurrent_dropout_masks_only_what_W_reads(make):
    """Keras 3's form: ``h_{t-1} * m_h`` before the recurrent kernel, the same mask at every step."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((B, T, D))
    layer = make(H, input_size=D, seed=4, return_sequences=True, dtype="float64", recurrent_dropout=0.5)
    for _, p in layer.named_parameters():
        p[...] = 0.5 * rng.standard_normal(p.shape)
    y = layer(x, training=True)
    m_h = layer.dropout_masks["recurrent"]
    h, c = np.zeros((B, H)), np.zeros((B, H))
    for t in range(T):
        h, c = _step_reference(layer, x[:, t], h, c, m_h)
        np.testing.assert_allclose(y[:, t], h, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_mask_statistics(rate):
    """Over many masks the dropped fraction is the rate (within 5 standard deviations of a binomial) and
    every kept entry is scaled by exactly 1 / (1 - rate)."""
    layer = LSTM(50, input_size=40, seed=0, dropout=rate, recurrent_dropout=rate, dtype="float64")
    x = np.ones((20, 2, 40))
    dropped, total = {"input": 0, "recurrent": 0}, {"input": 0, "recurrent": 0}
    for _ in range(50):
        layer(x, training=True)
        for name, m in layer.dropout_masks.items():
            assert set(np.unique(m)) <= {0.0, 1.0 / (1.0 - rate)}
            dropped[name] += int(np.sum(m == 0))
            total[name] += m.size
    for name in dropped:
        n, frac = total[name], dropped[name] / total[name]
        assert abs(frac - rate) < 5 * np.sqrt(rate * (1 - rate) / n), (name, frac)


def test_masks_differ_between_calls_and_directions():
    layer = Bidirectional(GRU(H, input_size=D, seed=0, dropout=0.5, recurrent_dropout=0.5))
    x = np.ones((8, T, D), dtype="float32")
    layer(x, training=True)
    f1 = {k: v.copy() for k, v in layer.forward_layer.dropout_masks.items()}
    b1 = layer.backward_layer.dropout_masks
    assert any(not np.array_equal(f1[k], b1[k]) for k in f1)
    layer(x, training=True)
    assert any(not np.array_equal(f1[k], layer.forward_layer.dropout_masks[k]) for k in f1)


def test_seeded_masks_are_reproducible():
    x = np.ones((B, T, D), dtype="float32")
    a, b = (LSTM(H, input_size=D, seed=11, dropout=0.3, recurrent_dropout=0.3) for _ in range(2))
    np.testing.assert_array_equal(a(x, training=True), b(x, training=True))


@recurrent_classes
def test_dropout_config_round_trip(make, tmp_path):
    model = Sequential([make(H, input_size=D, seed=1, dropout=0.25, recurrent_dropout=0.125)])
    save(model, tmp_path / "m")
    layer = load(tmp_path / "m").layers[0]
    assert (layer.dropout, layer.recurrent_dropout) == (0.25, 0.125)


@pytest.mark.parametrize("argument", ["dropout", "recurrent_dropout"])
@pytest.mark.parametrize("value, error", [(1.0, ValueError), (-0.1, ValueError), ("0.5", TypeError)])
def test_dropout_rates_are_checked(argument, value, error):
    with pytest.raises(error, match=argument):
        LSTM(H, **{argument: value})


# ------------------------------------------------------------------------ embedding and locked dropout
def test_embedding_dropout_drops_whole_words():
    """A dropped word is zero at every position of the batch; a kept one is its row scaled by 1/(1-p)."""
    emb = Embedding(30, 4, dropout=0.5, seed=0, dtype="float64")
    ids = np.random.default_rng(0).integers(0, 30, size=(6, 9))
    y = emb(ids, training=True)
    m = emb.dropout_masks["rows"]  # (V,)
    np.testing.assert_array_equal(y, emb.params["E"][ids] * m[ids][..., None])
    assert set(np.unique(m)) <= {0.0, 2.0} and 0 < np.count_nonzero(m) < 30
    np.testing.assert_array_equal(emb(ids), emb.params["E"][ids])  # inference: no dropout


def test_embedding_dropout_gradient_is_masked():
    emb = Embedding(10, 3, dropout=0.5, seed=1, dtype="float64")
    ids = np.array([[1, 2, 1], [3, 1, 2]])
    dy = np.random.default_rng(2).standard_normal((2, 3, 3))
    emb(ids, training=True)
    emb.backward(dy)
    m = emb.dropout_masks["rows"]
    expected = np.zeros((10, 3))
    for (b, t), k in np.ndenumerate(ids):
        expected[k] += m[k] * dy[b, t]
    np.testing.assert_allclose(emb.grads["E"], expected, rtol=1e-12)


def test_locked_dropout_shares_one_mask_over_time():
    layer = LockedDropout(0.5, seed=0, dtype="float64")
    x = np.random.default_rng(0).standard_normal((5, 7, 6))
    y = layer(x, training=True)
    m = layer.dropout_masks["mask"]
    assert m.shape == (5, 1, 6)
    np.testing.assert_array_equal(y, x * m)
    dx = layer.backward(np.ones_like(x))
    np.testing.assert_array_equal(dx, np.broadcast_to(m, x.shape))
    np.testing.assert_array_equal(layer(x), x)


@pytest.mark.parametrize("rate", [0.2, 0.6])
def test_embedding_and_locked_mask_statistics(rate):
    emb = Embedding(400, 2, dropout=rate, seed=3)
    locked = LockedDropout(rate, seed=4)
    dropped = {"rows": 0, "mask": 0}
    total = {"rows": 0, "mask": 0}
    for _ in range(30):
        emb(np.zeros((2, 2), dtype=int), training=True)
        locked(np.ones((20, 3, 20), dtype="float32"), training=True)
        for layer, name in ((emb, "rows"), (locked, "mask")):
            m = layer.dropout_masks[name]
            np.testing.assert_allclose(np.unique(m[m != 0]), [1.0 / (1.0 - rate)], rtol=1e-6)
            dropped[name] += int(np.sum(m == 0))
            total[name] += m.size
    for name in dropped:
        frac, n = dropped[name] / total[name], total[name]
        assert abs(frac - rate) < 5 * np.sqrt(rate * (1 - rate) / n), (name, frac)


def test_embedding_and_locked_dropout_config_round_trip(tmp_path):
    model = Sequential([Embedding(12, 4, dropout=0.3, seed=0), LockedDropout(0.4, seed=1), LSTM(5), Dense(12)])
    model.build((None, 3))
    save(model, tmp_path / "m")
    loaded = load(tmp_path / "m")
    assert loaded.layers[0].dropout == 0.3
    assert isinstance(loaded.layers[1], LockedDropout) and loaded.layers[1].rate == 0.4


# ------------------------------------------------------------------------ weight tying
def tied_model(seed=0, **recurrent):
    emb = Embedding(20, 6, seed=seed, dtype="float64")
    model = Sequential([emb, LSTM(6, seed=seed + 1, return_sequences=True, dtype="float64", **recurrent),
                        Dense(20, tie=emb, seed=seed + 2, dtype="float64")])
    model.build((None, 4))
    return model


def test_tied_weights_are_one_parameter():
    model = tied_model()
    emb, dense = model.layers[0], model.layers[2]
    assert dense.weight is emb.params["E"]
    assert sorted(model.params) == ["0.E", "1.U", "1.W", "1.b", "2.c"]
    assert model.count_params() == 20 * 6 + (4 * 6 * 6) * 2 + 4 * 6 + 20


def test_tied_gradient_is_the_sum_of_both_uses():
    """The tied model's gradient of E equals the untied model's dE + dV (same values in both tables)."""
    ids = np.random.default_rng(0).integers(0, 20, size=(3, 4))
    tied = tied_model()
    untied = Sequential([Embedding(20, 6, dtype="float64"), LSTM(6, return_sequences=True, dtype="float64"),
                         Dense(20, dtype="float64")])
    untied.build((None, 4))
    weights = {k: v.copy() for k, v in tied.params.items()}
    weights["2.V"] = weights["0.E"].copy()
    untied.set_weights(weights)
    dy = np.random.default_rng(1).standard_normal((3, 4, 20))
    np.testing.assert_allclose(tied(ids), untied(ids), rtol=1e-12)
    tied.backward(dy, input_grad=False)
    untied.backward(dy, input_grad=False)
    g = untied.grads
    np.testing.assert_allclose(tied.grads["0.E"], g["0.E"] + g["2.V"], rtol=1e-12, atol=1e-15)


def test_tied_model_saves_the_parameter_once(tmp_path):
    model = tied_model()
    save(model, tmp_path / "m")
    loaded = load(tmp_path / "m")
    assert loaded.layers[2].tie is loaded.layers[0]
    assert sorted(np.load(tmp_path / "m" / "weights.npz").files) == sorted(model.params)
    ids = np.array([[1, 2, 3, 4]])
    np.testing.assert_array_equal(loaded(ids), model(ids))


def test_tied_model_with_a_large_vocabulary_loads(tmp_path):
    """The size check before rebuilding counts the tied table once: with a vocabulary far larger than the
    recurrent layer, counting it twice would exceed the listed weights and refuse a valid file."""
    emb = Embedding(1000, 8, seed=0)
    model = Sequential([emb, LSTM(8, seed=1, return_sequences=True), Dense(1000, tie=emb, seed=2)])
    model.build((None, 3))
    save(model, tmp_path / "m")
    loaded = load(tmp_path / "m")
    ids = np.array([[1, 500, 999]])
    np.testing.assert_array_equal(loaded(ids), model(ids))


def test_tie_errors():
    emb = Embedding(20, 6)
    with pytest.raises(ValueError, match="vocab_size=20"):
        Dense(19, tie=emb)
    with pytest.raises(TypeError, match="tie must be an Embedding"):
        Dense(20, tie=LSTM(3))
    with pytest.raises(ValueError, match="dim \\(6\\) must equal"):
        Sequential([emb, LSTM(5, return_sequences=True), Dense(20, tie=emb)]).build((None, 3))
    with pytest.raises(ValueError, match="not a layer of this Sequential"):
        Sequential([LSTM(6, input_size=2), Dense(20, tie=emb)]).get_config()


# ------------------------------------------------------------------------ weight drop
@recurrent_classes
def test_weight_drop_is_the_layer_with_W_times_M(make):
    x = np.random.default_rng(5).standard_normal((B, T, D))
    dropped = make(H, input_size=D, seed=6, return_sequences=True, dtype="float64", weight_dropout=0.5)
    plain = make(H, input_size=D, seed=6, return_sequences=True, dtype="float64")
    np.testing.assert_array_equal(dropped(x), plain(x))  # inference: W itself
    y = dropped(x, training=True)
    M = dropped.dropout_masks["weight"]
    assert M.shape == dropped.params["W"].shape
    plain.params["W"][...] *= M
    np.testing.assert_allclose(y, plain(x), rtol=1e-12, atol=1e-12)
    # backward: dW = M * (the plain layer's gradient of its W = W * M)
    dy = np.random.default_rng(7).standard_normal(y.shape)
    dropped.zero_grad()
    plain.zero_grad()
    dropped.backward(dy)
    plain.backward(dy)
    np.testing.assert_allclose(dropped.grads["W"], plain.grads["W"] * M, rtol=1e-12, atol=1e-14)
    assert not np.shares_memory(dropped.params["W"], plain.params["W"])


def test_weight_drop_statistics_and_config(tmp_path):
    layer = GRU(30, input_size=2, seed=0, weight_dropout=0.5)
    x = np.ones((2, 2, 2), dtype="float32")
    dropped = []
    for _ in range(20):
        layer(x, training=True)
        M = layer.dropout_masks["weight"]
        np.testing.assert_array_equal(np.unique(M), [0.0, 2.0])
        dropped.append(np.mean(M == 0))
    n = 20 * layer.params["W"].size
    assert abs(np.mean(dropped) - 0.5) < 5 * np.sqrt(0.25 / n)
    save(Sequential([layer]), tmp_path / "m")
    assert load(tmp_path / "m").layers[0].weight_dropout == 0.5


# ------------------------------------------------------------------------ chrono initialisation
def test_chrono_lstm_biases():
    T_max, Hs = 100, 400
    layer = LSTM(Hs, input_size=2, seed=0, bias_initializer="chrono:100", dtype="float64")
    b = layer.params["b"]
    b_i, b_f, b_g, b_o = b[:Hs], b[Hs:2 * Hs], b[2 * Hs:3 * Hs], b[3 * Hs:]
    np.testing.assert_array_equal(b_i, -b_f)
    assert np.all(b_f >= 0) and np.all(b_f <= np.log(T_max - 1))
    u = np.exp(b_f)  # ~ U(1, T_max - 1): its mean and spread
    assert abs(u.mean() - T_max / 2) < 5 * (T_max - 2) / np.sqrt(12 * Hs)
    assert not np.any(b_g) and not np.any(b_o)  # forget_bias does not override chrono


@pytest.mark.parametrize("reset_after", [True, False])
def test_chrono_gru_biases(reset_after):
    Hs = 50
    layer = GRU(Hs, input_size=2, seed=0, bias_initializer="chrono:20", reset_after=reset_after)
    b = layer.params["b"]
    assert not np.any(b[:Hs]) and not np.any(b[2 * Hs:])
    assert np.all(b[Hs:2 * Hs] >= 0) and np.all(b[Hs:2 * Hs] <= np.log(19) + 1e-6) and np.any(b[Hs:2 * Hs])


def test_chrono_round_trip_and_errors(tmp_path):
    save(Sequential([LSTM(4, input_size=2, bias_initializer="chrono:30")]), tmp_path / "m")
    assert load(tmp_path / "m").layers[0].get_config()["bias_initializer"] == "chrono:30"
    with pytest.raises(ValueError, match="has no gates"):
        SimpleRNN(3, bias_initializer="chrono:10")
    with pytest.raises(ValueError, match="> 2"):
        LSTM(3, bias_initializer="chrono:2")
    with pytest.raises(ValueError, match="gate biases of an LSTM or GRU only"):
        Dense(3, bias_initializer="chrono:10", input_size=2)


# ------------------------------------------------------------------------ the run config's [model] keys
def test_config_builds_every_technique():
    config = ModelConfig(cell="lstm", hidden_size=6, num_layers=2, embedding_dim=6, dropout=0.3, locked_dropout=True,
                         embedding_dropout=0.1, input_dropout=0.2, recurrent_dropout=0.25, weight_dropout=0.5,
                         tie_weights=True, init="chrono:40")
    model = build_model(config, inputs="ids", n_inputs=11, n_outputs=11, sequence_output=True)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Embedding", "LockedDropout", "LSTM", "LockedDropout", "LSTM", "LockedDropout", "Dense"]
    emb, dense = model.layers[0], model.layers[-1]
    assert emb.dropout == 0.1 and dense.tie is emb and "6.V" not in model.params
    for lstm in (model.layers[2], model.layers[4]):
        assert (lstm.dropout, lstm.recurrent_dropout, lstm.weight_dropout) == (0.2, 0.25, 0.5)
        H = 6
        np.testing.assert_array_equal(lstm.params["b"][:H], -lstm.params["b"][H:2 * H])
        assert lstm.get_config()["kernel_initializer"] == "glorot_uniform"  # chrono: the gate biases only
    text = model.summary((None, 4), print_fn=None)
    assert "Regularisation:" in text and "weights tied to embedding" in text and "init=chrono:40" in text


def test_config_defaults_build_no_regularisation():
    model = build_model(ModelConfig(hidden_size=4, embedding_dim=3), inputs="ids", n_inputs=5, n_outputs=5,
                        sequence_output=True)
    lstm = model.layers[1]
    assert (lstm.dropout, lstm.recurrent_dropout, lstm.weight_dropout) == (0.0, 0.0, 0.0)
    assert model.layers[-1].tie is None and "Regularisation" not in model.summary((None, 2), print_fn=None)


@pytest.mark.parametrize("model, message", [
    ("tie_weights = true\nembedding_dim = 8\nhidden_size = 16\n", "embedding_dim equals the last hidden size \\(16"),
    ("tie_weights = true\nhidden_size = 8\n", "embedding_dim = None"),
    ("embedding_dropout = 0.2\n", "needs an embedding"),
    ("cell = 'rnn'\ninit = 'chrono:10'\n", "cell 'rnn' has no gates"),
    ("init = 'chrono:1'\n", "> 2"),
    ("recurrent_dropout = 1.0\n", "recurrent_dropout: expected a number in \\[0, 1\\)"),
])
def test_config_errors(model, message):
    with pytest.raises(ConfigError, match=message):
        parse_config('[data]\ntask = "language_model"\ndataset = "ptb"\n[model]\n' + model)


def test_tie_weights_bidirectional_needs_twice_the_hidden_size():
    with pytest.raises(ConfigError, match="x 2 directions"):
        ModelConfig(hidden_size=8, embedding_dim=8, bidirectional=True, tie_weights=True)
    ModelConfig(hidden_size=8, embedding_dim=16, bidirectional=True, tie_weights=True)


def test_tie_weights_needs_a_language_model():
    config = ModelConfig(hidden_size=4, embedding_dim=4, tie_weights=True)
    with pytest.raises(ConfigError, match="one output per word"):
        build_model(config, inputs="ids", n_inputs=9, n_outputs=2, sequence_output=False)
