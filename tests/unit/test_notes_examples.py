"""The course notes' worked examples, reproduced with rnnlab.

(a) the 31-parameter ``SimpleRNN(3) + Dense(1)`` and its summary; (b) the one-hot encoding of
cat / mat / rat; (c) the scalar BPTT derivation for ``L3`` checked against closed forms written
out by hand; (d) "movie was (not) good / bad" learnt to 100 % training accuracy.
"""

from __future__ import annotations

import math
import re

import numpy as np

from rnnlab import optim
from rnnlab.nn import losses
from rnnlab.nn.functional import one_hot
from rnnlab.nn.layers import Dense, OneHot
from rnnlab.nn.recurrent import SimpleRNN
from rnnlab.nn.sequential import Sequential


# ---------------------------------------------------------------------------- (a) parameter count
def notes_model():
    return Sequential([SimpleRNN(3, input_size=5), Dense(1)])


def test_notes_model_has_31_parameters():
    model = notes_model()
    model.build((None, None, 5))
    # SimpleRNN: U 3x5 + W 3x3 + b 3 = 27;  Dense: V 1x3 + c 1 = 4
    assert model.layers[0].count_params() == 3 * 5 + 3 * 3 + 3 == 27
    assert model.layers[1].count_params() == 3 * 1 + 1 == 4
    assert model.count_params() == 31


def test_notes_model_counts_parameters_without_data():
    """The first layer's input_size is enough to build the whole model (the Sequential docstring's example)."""
    assert notes_model().count_params() == 31


def test_notes_model_summary():
    model = notes_model()
    text = model.summary(input_shape=(None, 4, 5), print_fn=None)
    lines = text.splitlines()
    rnn = next(line for line in lines if "SimpleRNN" in line)
    dense = next(line for line in lines if "(Dense)" in line)
    assert re.search(r"\(None, 3\)\s+27\s*$", rnn), rnn
    assert re.search(r"\(None, 1\)\s+4\s*$", dense), dense
    assert lines.index(rnn) < lines.index(dense)
    assert "Total params: 31" in text
    assert re.search(r"Layer \(type\)\s+Output Shape\s+Param #", text)


def test_summary_prints_through_print_fn():
    printed = []
    text = notes_model().summary(input_shape=(None, 4, 5), print_fn=printed.append)
    assert printed == [text]


def test_summary_of_a_sequence_to_sequence_model():
    model = Sequential([SimpleRNN(3, input_size=5, return_sequences=True), Dense(1)])
    text = model.summary(input_shape=(None, 7, 5), print_fn=None)
    assert "(None, 7, 3)" in text and "(None, 7, 1)" in text and "Total params: 31" in text


# ---------------------------------------------------------------------------- (b) one-hot words
def test_one_hot_cat_mat_rat():
    vocab = ["cat", "mat", "rat"]
    index = {word: i for i, word in enumerate(vocab)}
    sentence = ["rat", "cat", "mat", "cat"]
    rows = one_hot(np.array([index[w] for w in sentence]), len(vocab))
    expected = {"cat": [1, 0, 0], "mat": [0, 1, 0], "rat": [0, 0, 1]}
    for word, row in zip(sentence, rows):
        np.testing.assert_array_equal(row, expected[word])
    assert rows.sum() == len(sentence)


# ---------------------------------------------------------------------------- (c) the scalar derivation
# h_t = f(w h_{t-1} + u x_t),  y_t = g(v h_t),  f = tanh, g = identity, no biases,  L3 = 1/2 (d3 - y3)^2
U, W, V = 0.7, -1.3, 0.9
H0 = 0.4  # a non-zero h_0, so the third path (through h_0) contributes to dL3/dw
XS = (0.5, -1.0, 2.0)
D3 = 0.3


def hand_forward(u=U, w=W, v=V, h0=H0, xs=XS):
    h = [h0]
    for x in xs:
        h.append(math.tanh(w * h[-1] + u * x))
    return h, v * h[3]


def hand_gradients():
    """The notes' closed forms. With e = dL3/dy3 = -(d3 - y3) and f'_t = 1 - h_t^2:

    dL3/dv  = e h3
    dL3/dw  = e v [ f'3 h2  +  f'3 w f'2 h1  +  f'3 w f'2 w f'1 h0 ]      (three paths back through time)
    dL3/du  = e v [ f'3 x3  +  f'3 w f'2 x2  +  f'3 w f'2 w f'1 x1 ]
    dL3/dh0 = e v f'3 w f'2 w f'1 w
    """
    h, y3 = hand_forward()
    e = -(D3 - y3)
    fp = [None] + [1 - h[t] ** 2 for t in (1, 2, 3)]
    x1, x2, x3 = XS
    return {
        "v": e * h[3],
        "w": e * V * (fp[3] * h[2] + fp[3] * W * fp[2] * h[1] + fp[3] * W * fp[2] * W * fp[1] * h[0]),
        "u": e * V * (fp[3] * x3 + fp[3] * W * fp[2] * x2 + fp[3] * W * fp[2] * W * fp[1] * x1),
        "h0": e * V * fp[3] * W * fp[2] * W * fp[1] * W,
        "loss": 0.5 * (D3 - y3) ** 2,
        "y3": y3,
        "h3": h[3],
    }


def test_closed_forms_agree_with_finite_differences_of_the_hand_forward():
    """Guards the hand derivation itself, independently of rnnlab."""
    g = hand_gradients()
    eps = 1e-6

    def loss(**kw):
        return 0.5 * (D3 - hand_forward(**kw)[1]) ** 2

    for name, base in (("u", U), ("w", W), ("v", V), ("h0", H0)):
        numeric = (loss(**{name: base + eps}) - loss(**{name: base - eps})) / (2 * eps)
        assert math.isclose(g[name], numeric, rel_tol=1e-7), name


def scalar_model(return_sequences=False):
    model = Sequential([SimpleRNN(1, input_size=1, activation="tanh", return_sequences=return_sequences,
                                  dtype="float64"),
                        Dense(1, activation=None, dtype="float64")])
    model.build((None, 3, 1))
    model.set_weights({"0.U": [[U]], "0.W": [[W]], "0.b": [0.0], "1.V": [[V]], "1.c": [0.0]})
    return model


def test_scalar_derivation_with_half_sum_mse_on_the_last_step():
    g = hand_gradients()
    model = scalar_model()
    x = np.array(XS).reshape(1, 3, 1)
    y = model(x, initial_state=np.array([[H0]]))
    assert math.isclose(y.item(), g["y3"], rel_tol=1e-14)

    loss = losses.get("half_sse")
    value = loss(y, np.array([[D3]]))
    assert math.isclose(value, g["loss"], rel_tol=1e-14)
    model.zero_grad()
    model.backward(loss.backward())
    grads = model.grads
    assert math.isclose(grads["1.V"].item(), g["v"], rel_tol=1e-12)
    assert math.isclose(grads["0.W"].item(), g["w"], rel_tol=1e-12)
    assert math.isclose(grads["0.U"].item(), g["u"], rel_tol=1e-12)
    assert math.isclose(model.initial_state_grad[0].item(), g["h0"], rel_tol=1e-12)
    assert math.isclose(grads["1.c"].item(), -(D3 - g["y3"]), rel_tol=1e-12)


def test_scalar_derivation_with_outputs_at_every_step_and_the_loss_on_step_3_only():
    g = hand_gradients()
    model = scalar_model(return_sequences=True)
    x = np.array(XS).reshape(1, 3, 1)
    y = model(x, initial_state=np.array([[H0]]))  # (1, 3, 1): y1, y2, y3
    assert math.isclose(y[0, 2, 0], g["y3"], rel_tol=1e-14)
    d = np.array([[[5.0], [-7.0], [D3]]])  # targets at steps 1 and 2 are ignored (masked out)
    loss = losses.get("half_sse")
    value = loss(y, d, mask=np.array([[0, 0, 1]]))
    assert math.isclose(value, g["loss"], rel_tol=1e-14)
    model.zero_grad()
    model.backward(loss.backward())
    assert math.isclose(model.grads["1.V"].item(), g["v"], rel_tol=1e-12)
    assert math.isclose(model.grads["0.W"].item(), g["w"], rel_tol=1e-12)
    assert math.isclose(model.grads["0.U"].item(), g["u"], rel_tol=1e-12)


def test_scalar_derivation_by_calling_dense_backward():
    g = hand_gradients()
    rnn = SimpleRNN(1, input_size=1, dtype="float64", bias_initializer="zeros")
    rnn.set_weights({"U": [[U]], "W": [[W]], "b": [0.0]})
    dense = Dense(1, input_size=1, dtype="float64")
    dense.set_weights({"V": [[V]], "c": [0.0]})
    h3 = rnn(np.array(XS).reshape(1, 3, 1), initial_state=np.array([[H0]]))
    assert math.isclose(h3.item(), g["h3"], rel_tol=1e-14)
    y3 = dense(h3)
    dh3 = dense.backward(np.array([[-(D3 - y3.item())]]))
    rnn.backward(dh3)
    assert math.isclose(dense.grads["V"].item(), -(D3 - g["y3"]) * g["h3"], rel_tol=1e-12)
    assert math.isclose(rnn.grads["W"].item(), g["w"], rel_tol=1e-12)
    assert math.isclose(rnn.grads["U"].item(), g["u"], rel_tol=1e-12)


def test_without_h0_the_third_path_vanishes():
    """With h_0 = 0 (the default), dL3/dw is the first two paths only."""
    model = scalar_model()
    y = model(np.array(XS).reshape(1, 3, 1))
    h, y3 = hand_forward(h0=0.0)
    assert math.isclose(y.item(), y3, rel_tol=1e-14)
    e = -(D3 - y3)
    fp1, fp2, fp3 = (1 - h[t] ** 2 for t in (1, 2, 3))
    model.zero_grad()
    model.backward(np.array([[e]]))
    assert math.isclose(model.grads["0.W"].item(), e * V * (fp3 * h[2] + fp3 * W * fp2 * h[1]), rel_tol=1e-12)
    assert fp1 > 0  # (used in the h0 path only, which is zero here)


# ---------------------------------------------------------------------------- (d) movie was (not) good
SENTENCES = [("movie was good", 1), ("movie was bad", 0), ("movie was not good", 0)]


def encode(sentences):
    """Sorted vocabulary with id 0 reserved for padding; right-padded id matrix."""
    vocab = sorted({w for s, _ in sentences for w in s.split()})  # bad good movie not was
    index = {w: i + 1 for i, w in enumerate(vocab)}
    T = max(len(s.split()) for s, _ in sentences)
    ids = np.zeros((len(sentences), T), dtype=np.int64)
    for row, (s, _) in enumerate(sentences):
        words = s.split()
        ids[row, :len(words)] = [index[w] for w in words]
    labels = np.array([[label] for _, label in sentences], dtype=np.float64)
    return ids, labels, len(vocab) + 1


def test_movie_sentiment_learnt_to_100_percent():
    ids, labels, V = encode(SENTENCES)
    np.testing.assert_array_equal(ids, [[3, 5, 2, 0], [3, 5, 1, 0], [3, 5, 4, 2]])
    model = Sequential([OneHot(V, mask_zero=True, dtype="float64"), SimpleRNN(8, seed=0, dtype="float64"),
                        Dense(1, seed=1, dtype="float64")])
    history = model.fit(ids, labels, loss="binary_crossentropy", optimizer=optim.get("adam", lr=0.05),
                        epochs=200, batch_size=3, seed=0)
    logits = model.predict(ids)
    assert logits.shape == (3, 1)
    np.testing.assert_array_equal(logits > 0, labels > 0.5)
    p = 1 / (1 + np.exp(-logits))
    assert np.all(np.abs(p - labels) < 0.2)  # confident, not just on the right side of 0.5
    assert history["accuracy"][-1] == 1.0
    assert history["loss"][-1] < 0.5 * history["loss"][0]


def test_not_good_differs_from_good_only_through_the_recurrence():
    """"movie was good" and "movie was not good" end on the same word: only h_{t-1} can tell them apart."""
    ids, _, V = encode(SENTENCES)
    rnn = SimpleRNN(4, seed=0, dtype="float64")
    rnn.build((None, None, V))
    x = one_hot(ids, V, dtype="float64")
    mask = ids != 0
    h = rnn(x, mask=mask)
    assert not np.allclose(h[0], h[2])
    rnn.params["W"][...] = 0.0  # without the recurrence the final state depends on the last word only
    h = rnn(x, mask=mask)
    np.testing.assert_array_equal(h[0], h[2])
