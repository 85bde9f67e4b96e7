"""Training end to end through the text pipeline: tokenize -> Vocabulary -> pad_sequences -> model -> fit.

Tiny corpora must be learnt (the notes' three sentences, a character language model), the UCI
sentences beat chance by a wide margin, padding side does not matter, and seeded runs repeat.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnlab
from rnnlab.data.datasets import uci_sentiment
from rnnlab.data.text import Vocabulary, char_tokenize, pad_sequences, word_tokenize
from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.layers import Dense, Embedding
from rnnlab.nn.recurrent import LSTM, SimpleRNN
from rnnlab.nn.sequential import Sequential

NOTES = ["movie was good", "movie was bad", "movie was not good"]
NOTES_LABELS = np.array([1, 0, 0])


def _encode(vocab, texts, **kwargs):
    ids, _ = pad_sequences([vocab.encode(word_tokenize(t)) for t in texts], **kwargs)
    return ids


def test_simple_rnn_learns_the_notes_sentences_to_full_training_accuracy():
    vocab = Vocabulary().fit([word_tokenize(t) for t in NOTES])
    x = _encode(vocab, NOTES)  # (3, 4): "not" makes the third one longer
    model = Sequential([Embedding(len(vocab), 8, mask_zero=True, seed=0), SimpleRNN(8, seed=1), Dense(2, seed=2)])
    history = model.fit(x, NOTES_LABELS, loss="cross_entropy", optimizer=rnnlab.optim.get("adam", lr=0.05), epochs=60,
                        batch_size=3, seed=0)
    assert history["accuracy"][-1] == 1.0 and history["loss"][-1] < 0.05
    np.testing.assert_array_equal(model.predict(x).argmax(axis=-1), NOTES_LABELS)


def test_character_lstm_memorises_a_tiny_text():
    text = "hello world. hello rnn."
    vocab = Vocabulary(specials=()).fit([char_tokenize(text)])  # a closed character set: no <pad>, no <unk>
    ids = np.array(vocab.encode(char_tokenize(text)))
    x, y = ids[None, :-1], ids[None, 1:]  # (1, T): predict the next character at every step
    model = Sequential([Embedding(len(vocab), 8, seed=0), LSTM(32, return_sequences=True, seed=1),
                        Dense(len(vocab), seed=2)])
    history = model.fit(x, y, loss="cross_entropy", optimizer=rnnlab.optim.get("adam", lr=0.03), epochs=150,
                        batch_size=1)
    assert history["loss"][-1] < 0.1
    # after "hello " comes "w" the first time and "r" the second: the state, not the last character, decides
    predicted = vocab.decode(model.predict(x).argmax(axis=-1)[0])
    assert "".join(predicted) == text[1:]


def test_left_and_right_padding_give_the_same_predictions():
    vocab = Vocabulary().fit([word_tokenize(t) for t in NOTES])
    texts = NOTES + ["good", "bad movie"]
    for layer in (LSTM(6, seed=1), Bidirectional(SimpleRNN(6, seed=1))):
        model = Sequential([Embedding(len(vocab), 5, mask_zero=True, seed=0), layer, Dense(2, seed=2)])
        post = model.predict(_encode(vocab, texts, maxlen=6, padding="post"))
        pre = model.predict(_encode(vocab, texts, maxlen=6, padding="pre"))
        np.testing.assert_allclose(pre, post, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_lstm_on_the_uci_sentences_beats_chance_and_repeats_with_its_seed(data_dir):
    texts, labels = uci_sentiment(data_dir)
    order = np.random.default_rng(0).permutation(len(texts))
    test, train = order[:600], order[600:]
    vocab = Vocabulary(min_freq=2).fit([word_tokenize(texts[i]) for i in train])
    x_train = _encode(vocab, [texts[i] for i in train], maxlen=30)
    x_test = _encode(vocab, [texts[i] for i in test], maxlen=30)

    def run():
        model = Sequential([Embedding(len(vocab), 16, mask_zero=True, seed=0), LSTM(16, seed=1), Dense(2, seed=2)])
        history = model.fit(x_train, labels[train], loss="cross_entropy", optimizer=rnnlab.optim.get("adam", lr=5e-3),
                            epochs=2, batch_size=32, validation_data=(x_test, labels[test]), clip_norm=5.0, seed=7)
        return model, history

    model, history = run()
    assert history["val_accuracy"][-1] > 0.7, history  # chance is 0.5; ~0.8 is typical for this size
    again, history_again = run()
    assert history_again == history
    for key, value in model.params.items():
        np.testing.assert_array_equal(again.params[key], value, err_msg=key)
