"""Behaviour of the core layers: Dense, Dropout, Embedding, OneHot, masks, state and the module protocol.

Expected values come from independent computations (a per-step loop, ``np.eye``, an explicit
scatter loop, a hand-written recurrence), never from the layer under test.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.functional import one_hot
from rnnlab.nn.layers import Dense, Dropout, Embedding, OneHot
from rnnlab.nn.recurrent import GRU, LSTM, SimpleRNN
from rnnlab.nn.sequential import Sequential

RECURRENT = {
    "SimpleRNN": SimpleRNN,
    "LSTM": LSTM,
    "GRU": GRU,
    "GRU-v1": lambda H, **kw: GRU(H, reset_after=False, **kw),
}
recurrent_classes = pytest.mark.parametrize("make", list(RECURRENT.values()), ids=list(RECURRENT))


def copy_weights(src, dst):
    dst.set_weights({k: v.copy() for k, v in src.params.items()})


# ---------------------------------------------------------------------------- Dense
@pytest.mark.parametrize("activation", [None, "tanh", "relu", "sigmoid"])
def test_dense_on_a_sequence_equals_dense_on_each_step(rng, activation):
    B, T, H, K = 3, 4, 5, 2
    a = rng.standard_normal((B, T, H))
    dy = rng.standard_normal((B, T, K))
    seq = Dense(K, activation, seed=0, dtype="float64")
    y = seq(a)
    dx = seq.backward(dy)

    step = Dense(K, activation, input_size=H, dtype="float64")
    copy_weights(seq, step)
    for t in range(T):
        np.testing.assert_allclose(y[:, t], step(a[:, t]), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(dx[:, t], step.backward(dy[:, t]), rtol=1e-12, atol=1e-15)
    for key in ("V", "c"):  # the per-step gradients add up to the sequence's
        np.testing.assert_allclose(seq.grads[key], step.grads[key], rtol=1e-12, atol=1e-14)


def test_dense_computes_g_of_v_a_plus_c(rng):
    a = rng.standard_normal((4, 3))
    layer = Dense(2, "tanh", input_size=3, dtype="float64")
    V, c = rng.standard_normal((2, 3)), rng.standard_normal(2)
    layer.set_weights({"V": V, "c": c})
    expected = np.array([[np.tanh(sum(V[k, j] * a[i, j] for j in range(3)) + c[k]) for k in range(2)]
                         for i in range(4)])
    np.testing.assert_allclose(layer(a), expected, rtol=1e-12)


# ---------------------------------------------------------------------------- Dropout
def test_dropout_preserves_the_mean_and_zeroes_about_rate():
    rate, n = 0.3, 200_000
    x = np.ones((n // 500, 500))
    y = Dropout(rate, seed=0, dtype="float64")(x, training=True)
    zero_fraction = np.mean(y == 0)
    # std of the fraction: sqrt(0.3 * 0.7 / 2e5) ~ 1e-3; of the mean: ~1.5e-3
    assert abs(zero_fraction - rate) < 0.01
    assert abs(y.mean() - 1.0) < 0.015
    np.testing.assert_allclose(y[y != 0], 1.0 / (1.0 - rate))  # inverted scaling on the kept units


def test_dropout_mean_over_many_draws(rng):
    x = rng.standard_normal((4, 6))
    layer = Dropout(0.5, seed=1, dtype="float64")
    mean = np.mean([layer(x, training=True) for _ in range(4000)], axis=0)
    np.testing.assert_allclose(mean, x, atol=0.1 * np.abs(x).max())


def test_dropout_is_inactive_at_inference(rng):
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    layer = Dropout(0.9, seed=0)
    y = layer(x)
    np.testing.assert_array_equal(y, x)
    assert y is not x
    dy = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_array_equal(layer.backward(dy), dy)


def test_dropout_backward_uses_the_forward_mask(rng):
    x = rng.standard_normal((50, 40)) + 5.0  # no zeros in x, so y == 0 exactly where dropped
    layer = Dropout(0.4, seed=2, dtype="float64")
    y = layer(x, training=True)
    dy = rng.standard_normal(x.shape)
    np.testing.assert_allclose(layer.backward(dy), np.where(y != 0, dy / 0.6, 0.0), rtol=1e-14)


def test_dropout_is_reproducible_with_a_seed_and_fresh_on_each_call(rng):
    x = rng.standard_normal((8, 10))
    a, b = Dropout(0.5, seed=7, dtype="float64"), Dropout(0.5, seed=7, dtype="float64")
    first_a, first_b = a(x, training=True), b(x, training=True)
    np.testing.assert_array_equal(first_a, first_b)
    np.testing.assert_array_equal(a(x, training=True), b(x, training=True))
    assert not np.array_equal(first_a, a(x, training=True))  # a new mask per call
    assert not np.array_equal(first_a, Dropout(0.5, seed=8, dtype="float64")(x, training=True))


# ---------------------------------------------------------------------------- Embedding / OneHot
def test_embedding_lookup(rng):
    layer = Embedding(6, 3, seed=0, dtype="float64")
    E = rng.standard_normal((6, 3))
    layer.set_weights({"E": E})
    ids = np.array([[5, 0, 2], [2, 2, 1]])
    y = layer(ids)
    assert y.shape == (2, 3, 3)
    for b in range(2):
        for t in range(3):
            np.testing.assert_array_equal(y[b, t], E[ids[b, t]])


def test_embedding_backward_scatter_adds_repeated_ids(rng):
    V, dim = 6, 3
    layer = Embedding(V, dim, dtype="float64")
    ids = np.array([[1, 1, 3], [1, 0, 3]])
    layer(ids)
    dy = rng.standard_normal((2, 3, dim))
    assert layer.backward(dy) is None  # no gradient w.r.t. integer ids
    expected = np.zeros((V, dim))
    for b in range(2):
        for t in range(3):
            expected[ids[b, t]] += dy[b, t]
    np.testing.assert_allclose(layer.grads["E"], expected, rtol=1e-14)
    np.testing.assert_allclose(layer.grads["E"][1], dy[0, 0] + dy[0, 1] + dy[1, 0], rtol=1e-14)  # id 1, used 3 times
    np.testing.assert_array_equal(layer.grads["E"][[2, 4, 5]], 0.0)  # unused ids get nothing


@pytest.mark.parametrize("ids_dtype", [np.int64, np.int32, np.uint8])
def test_embedding_backward_equals_add_at_bit_for_bit(rng, ids_dtype):
    """The flat scatter-add makes the same additions in the same order as ``np.add.at`` on rows."""
    V, dim = 256, 300  # uint8 ids times dim overflow uint8: the flat positions must be computed in intp
    layer = Embedding(V, dim, seed=0)
    ids = rng.integers(0, V, (4, 50)).astype(ids_dtype)
    ids[:, :10] = ids[0, 0]  # one id used 40 times
    dy = rng.standard_normal((4, 50, dim)).astype(np.float32)
    layer.grads["E"][...] = rng.standard_normal((V, dim))  # gradients accumulate onto what is there
    expected = layer.grads["E"].copy()
    np.add.at(expected, ids.reshape(-1).astype(np.intp), dy.reshape(-1, dim))
    layer(ids)
    layer.backward(dy)
    np.testing.assert_array_equal(layer.grads["E"], expected)


def test_embedding_backward_of_a_non_contiguous_gradient(rng):
    layer = Embedding(7, 3, dtype="float64")
    ids = np.array([[1, 2, 1], [0, 1, 6]])
    dy = rng.standard_normal((3, 2, 3)).transpose(1, 0, 2)
    layer(ids)
    layer.backward(dy)
    expected = np.zeros((7, 3))
    for b in range(2):
        for t in range(3):
            expected[ids[b, t]] += dy[b, t]
    np.testing.assert_allclose(layer.grads["E"], expected, rtol=1e-15)


def test_embedding_mask_zero():
    ids = np.array([[3, 1, 0, 0], [2, 0, 4, 0]])
    layer = Embedding(5, 2, mask_zero=True)
    layer(ids)
    np.testing.assert_array_equal(layer.compute_mask(None, ids), ids != 0)
    incoming = np.array([[True, False, True, True], [True, True, True, True]])
    np.testing.assert_array_equal(layer.compute_mask(incoming, ids), (ids != 0) & incoming)
    assert Embedding(5, 2).compute_mask(None, ids) is None


def test_one_hot_layer(rng):
    ids = rng.integers(0, 4, size=(3, 5))
    layer = OneHot(4)
    y = layer(ids)
    np.testing.assert_array_equal(y, np.eye(4, dtype=np.float32)[ids])
    assert y.dtype == np.float32
    assert layer.backward(np.ones_like(y)) is None
    assert layer.count_params() == 0
    masked = OneHot(4, mask_zero=True)
    np.testing.assert_array_equal(masked.compute_mask(None, ids), ids != 0)


def test_one_hot_of_the_corpus_the_cat_sat_on_the_mat():
    corpus = "the cat sat on the mat".split()
    vocab = sorted(set(corpus))  # ['cat', 'mat', 'on', 'sat', 'the']
    index = {w: i for i, w in enumerate(vocab)}
    ids = np.array([index[w] for w in corpus])
    np.testing.assert_array_equal(ids, [4, 0, 3, 2, 4, 1])
    rows = one_hot(ids, len(vocab))
    assert rows.shape == (6, 5)
    for word, row in zip(corpus, rows):
        assert row.sum() == 1 and np.count_nonzero(row) == 1
        assert row[index[word]] == 1
    np.testing.assert_array_equal(rows[0], rows[4])  # "the" twice, the same row


def test_one_hot_of_cat_mat_rat():
    vocab = ["cat", "mat", "rat"]
    rows = one_hot(np.array([vocab.index(w) for w in ("cat", "mat", "rat")]), 3)
    np.testing.assert_array_equal(rows, [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(one_hot(np.array([[2, 0]]), 3, dtype="float64"), [[[0, 0, 1], [1, 0, 0]]])


# ---------------------------------------------------------------------------- masks through Sequential
@pytest.mark.parametrize("make", [LSTM, GRU, SimpleRNN, lambda H, **kw: Bidirectional(LSTM(H, **kw))],
                         ids=["LSTM", "GRU", "SimpleRNN", "Bidirectional"])
def test_mask_flows_through_sequential(make):
    ids = np.array([[3, 1, 2, 0, 0], [1, 1, 4, 2, 0], [4, 0, 0, 0, 0]])
    seq = Sequential([Embedding(5, 4, mask_zero=True, seed=0), make(3, return_sequences=True, seed=1),
                      Dense(2, seed=2)])
    seq.build((None, 5))
    c = np.array([0.5, -2.0], dtype=np.float32)
    seq.layers[2].params["c"][...] = c
    y = seq(ids)
    np.testing.assert_array_equal(seq.output_mask, ids != 0)
    # the recurrent layer saw the mask: its padded outputs are 0, so Dense gives just its bias there
    np.testing.assert_array_equal(y[ids == 0], np.broadcast_to(c, (int((ids == 0).sum()), 2)))
    assert np.all(y[ids != 0] != c)

    last = Sequential([Embedding(5, 4, mask_zero=True, seed=0), make(3, seed=1), Dense(2, seed=2)])
    assert last(ids).shape == (3, 2)
    assert last.output_mask is None
    assert y.shape == (3, 5, 2)


def test_mask_changes_nothing_for_padding(rng):
    """Right padding with mask equals running the unpadded sequence (the last output is the same)."""
    layer = LSTM(3, seed=0, dtype="float64")
    x = rng.standard_normal((1, 5, 2))
    short = layer(x[:, :3].copy())
    padded = x.copy()
    padded[:, 3:] = 99.0
    np.testing.assert_allclose(layer(padded, mask=np.array([[1, 1, 1, 0, 0]])), short, rtol=1e-12)


# ---------------------------------------------------------------------------- state
@recurrent_classes
def test_stateful_two_calls_equal_one_call_on_the_concatenation(make, rng):
    x = rng.standard_normal((2, 7, 3))
    whole = make(4, return_sequences=True, seed=0, dtype="float64")
    expected = whole(x)
    layer = make(4, return_sequences=True, stateful=True, seed=0, dtype="float64")
    np.testing.assert_allclose(layer(x[:, :4]), expected[:, :4], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(layer(x[:, 4:]), expected[:, 4:], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(layer.states[0], expected[:, -1], rtol=1e-12, atol=1e-14)

    layer.reset_state()
    assert layer.states is None
    np.testing.assert_allclose(layer(x[:, 4:]), whole(x[:, 4:]), rtol=1e-12, atol=1e-14)  # from zeros again


def test_stateful_sequential_reset(rng):
    x = rng.standard_normal((2, 3, 3))
    model = Sequential([GRU(4, stateful=True, seed=0, dtype="float64"), Dense(1, seed=1, dtype="float64")])
    first = model(x)
    assert not np.allclose(model(x), first)  # carries the state
    model.reset_state()
    np.testing.assert_allclose(model(x), first, rtol=1e-12)


@recurrent_classes
def test_initial_state_given_vs_default(make, rng):
    layer = make(3, seed=0, dtype="float64")
    x = rng.standard_normal((2, 4, 2))
    zeros = [np.zeros((2, 3)) for _ in layer.state_names]
    np.testing.assert_array_equal(layer(x), layer(x, initial_state=zeros))
    other = [rng.standard_normal((2, 3)) for _ in layer.state_names]
    assert not np.allclose(layer(x, initial_state=other), layer(x))


def test_simple_rnn_initial_state_by_hand(rng):
    layer = SimpleRNN(3, input_size=2, seed=0, dtype="float64")
    U, W, b = (layer.params[k] for k in ("U", "W", "b"))
    x, h0 = rng.standard_normal((2, 2, 2)), rng.standard_normal((2, 3))
    h = h0
    for t in range(2):
        h = np.tanh(x[:, t] @ U.T + h @ W.T + b)
    np.testing.assert_allclose(layer(x, initial_state=h0), h, rtol=1e-12)


@recurrent_classes
@pytest.mark.parametrize("go_backwards", [False, True])
def test_return_state_equals_last_valid_output(make, rng, go_backwards):
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=bool)
    x = rng.standard_normal((4, 5, 2))
    layer = make(3, return_sequences=True, return_state=True, go_backwards=go_backwards, seed=0, dtype="float64")
    y, h, *rest = layer(x, mask=mask)
    assert len(rest) == len(layer.state_names) - 1
    m = mask[:, ::-1] if go_backwards else mask  # outputs come in processing order
    for b in range(4):
        last = np.flatnonzero(m[b])[-1]
        np.testing.assert_array_equal(h[b], y[b, last])
        np.testing.assert_array_equal(y[b, ~m[b]], 0.0)

    last_only = make(3, return_state=True, go_backwards=go_backwards, seed=0, dtype="float64")
    y_last, h_last, *_ = last_only(x, mask=mask)
    np.testing.assert_array_equal(y_last, h_last)
    np.testing.assert_allclose(h_last, h, rtol=1e-12)


def test_lstm_return_state_gives_h_and_c(rng):
    layer = LSTM(3, return_state=True, seed=0, dtype="float64")
    x = rng.standard_normal((2, 4, 2))
    y, h, c = layer(x)
    # h = o * tanh(c) with o in (0, 1): |h| < |tanh(c)|, same sign
    assert np.all(np.abs(h) < np.abs(np.tanh(c))) and np.all(np.sign(h) == np.sign(c))
    assert np.array_equal(y, h)


# ---------------------------------------------------------------------------- module protocol
def test_named_parameters_are_dotted_and_live():
    model = Sequential([Bidirectional(SimpleRNN(2, seed=0)), Dense(1, seed=1)])
    model(np.zeros((1, 2, 3), np.float32))
    names = [name for name, _ in model.named_parameters()]
    assert names == ["0.forward.U", "0.forward.W", "0.forward.b", "0.backward.U", "0.backward.W", "0.backward.b",
                     "1.V", "1.c"]
    assert list(model.params) == names and list(model.grads) == names
    assert [name for name, _ in model.named_grads()] == names
    for name in names:
        assert model.params[name].shape == model.grads[name].shape
    assert model.params["0.backward.W"] is model.layers[0].backward_layer.params["W"]  # live, not copies
    assert model.params["1.V"] is model.layers[1].params["V"]
    assert not np.array_equal(model.params["0.forward.U"], model.params["0.backward.U"])  # independent directions


@pytest.mark.parametrize("layer,x", [
    (LSTM(3, seed=0), np.ones((2, 4, 2), np.float32)),
    (GRU(3, seed=0), np.ones((2, 4, 2), np.float32)),
    (Dense(3, seed=0), np.ones((2, 4, 2), np.float32)),
    (Embedding(5, 2, seed=0), np.array([[1, 2], [3, 4]])),
    (Bidirectional(SimpleRNN(2, seed=0)), np.ones((2, 4, 2), np.float32)),
], ids=["LSTM", "GRU", "Dense", "Embedding", "Bidirectional"])
def test_params_and_grads_have_the_same_keys(layer, x):
    layer(x)
    assert list(layer.params) == list(layer.grads)
    assert all(layer.params[k].shape == layer.grads[k].shape for k in layer.params)
    assert all(layer.params[k].dtype == layer.grads[k].dtype for k in layer.params)


def _model_and_data(rng):
    model = Sequential([Embedding(6, 3, seed=0, dtype="float64"), LSTM(4, seed=1, dtype="float64"),
                        Dense(2, seed=2, dtype="float64")])
    ids = rng.integers(0, 6, size=(3, 5))
    dy = rng.standard_normal((3, 2))
    return model, ids, dy


def test_zero_grad(rng):
    model, ids, dy = _model_and_data(rng)
    model(ids)
    model.backward(dy)
    before = {k: id(g) for k, g in model.named_grads()}
    assert all(np.any(g != 0) for g in model.grads.values())
    model.zero_grad()
    assert all(np.all(g == 0) for g in model.grads.values())
    assert {k: id(g) for k, g in model.named_grads()} == before  # cleared in place, same arrays


def test_grads_accumulate_across_backward_calls(rng):
    model, ids, dy = _model_and_data(rng)
    model(ids)
    model.backward(dy)
    once = {k: g.copy() for k, g in model.grads.items()}
    model(ids)
    model.backward(dy)
    for k, g in model.grads.items():
        np.testing.assert_allclose(g, 2 * once[k], rtol=1e-12, atol=1e-15)

    # two different batches: the sum of each batch's gradients
    ids2 = rng.integers(0, 6, size=(3, 5))
    dy2 = rng.standard_normal((3, 2))
    model.zero_grad()
    model(ids2)
    model.backward(dy2)
    second = {k: g.copy() for k, g in model.grads.items()}
    model.zero_grad()
    model(ids)
    model.backward(dy)
    model(ids2)
    model.backward(dy2)
    for k, g in model.grads.items():
        np.testing.assert_allclose(g, once[k] + second[k], rtol=1e-12, atol=1e-15)


def test_count_params(rng):
    model, ids, _ = _model_and_data(rng)
    model(ids)
    # Embedding 6*3; LSTM 4*4*(3+4+1); Dense 2*4 + 2
    assert model.count_params() == 18 + 128 + 10
