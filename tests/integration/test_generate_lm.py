"""Language models trained for a few seconds, then used through rnnlab.generate.

A word-level LSTM learns six "the color of X is Y ." sentences and ranks the continuations of the notes'
"the color of an apple is"; a character-level LSTM learns the same sentences as one stream and writes a
training sentence back from its prime, one carried step per character.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnlab
from rnnlab.data.text import Vocabulary, char_tokenize, pad_sequences, word_tokenize
from rnnlab.generate import generate_ids, rank_next, recurrent_layers, sample
from rnnlab.nn.layers import Dense, Dropout, Embedding
from rnnlab.nn.recurrent import LSTM
from rnnlab.nn.sequential import Sequential

SENTENCES = [
    "the color of an apple is red.",
    "the color of the sky is blue.",
    "the color of grass is green.",
    "the color of a banana is yellow.",
    "the color of snow is white.",
    "the color of coal is black.",
]


@pytest.fixture(scope="module")
def word_lm():
    tokens = [word_tokenize(s) for s in SENTENCES]
    vocab = Vocabulary().fit(tokens)
    ids, mask = pad_sequences([vocab.encode(t) for t in tokens])  # (6, 8): rows of different lengths
    x, y, target_mask = ids[:, :-1], ids[:, 1:], mask[:, 1:]  # predict the next word; padding targets masked
    model = Sequential([Embedding(len(vocab), 16, seed=0), LSTM(32, return_sequences=True, seed=1),
                        Dense(len(vocab), seed=2)])
    history = model.fit(x, y, mask=target_mask, loss="cross_entropy", optimizer=rnnlab.optim.get("adam", lr=0.02),
                        epochs=120, batch_size=6, seed=0)
    assert history["loss"][-1] < 0.5  # the subject after "of" is a 1-in-6 guess: log 6 / 7 steps = 0.26 stays
    return model, vocab


def test_the_apple_is_red(word_lm):
    model, vocab = word_lm
    ranked = rank_next(model, vocab, "the color of an apple is", k=5)
    assert ranked[0][0] == "red" and ranked[0][1] > 0.9
    assert [p for _, p in ranked] == sorted((p for _, p in ranked), reverse=True)
    assert rank_next(model, vocab, "The color of the sky is", k=1)[0][0] == "blue"  # the word tokenizer lower-cases


def test_after_of_the_six_subjects_share_the_probability(word_lm):
    model, vocab = word_lm
    ranked = rank_next(model, vocab, "the color of", k=7)
    assert {t for t, _ in ranked[:6]} == {"an", "the", "grass", "a", "snow", "coal"}
    assert all(0.08 < p < 0.3 for _, p in ranked[:6]) and ranked[6][1] < 0.02


def test_the_word_model_finishes_every_sentence(word_lm):
    model, vocab = word_lm
    for sentence in SENTENCES:
        subject, color = sentence[: sentence.index(" is ")], sentence.split()[-1][:-1]
        assert sample(model, vocab, subject, length=10, greedy=True, stop=".") == f"is {color} ."


@pytest.fixture(scope="module")
def char_lm():
    rng = np.random.default_rng(0)
    stream = " ".join(" ".join(rng.permutation(SENTENCES)) for _ in range(6))  # the sentences in shuffled orders
    vocab = Vocabulary(specials=()).fit([char_tokenize(stream)])  # a closed character set
    ids = np.array(vocab.encode(char_tokenize(stream)))
    T, stride = 32, 8
    starts = range(0, len(ids) - T - 1, stride)
    x = np.stack([ids[s:s + T] for s in starts])  # (N, T)
    y = np.stack([ids[s + 1:s + T + 1] for s in starts])  # (N, T): the next character
    model = Sequential([Embedding(len(vocab), 16, seed=0), LSTM(48, return_sequences=True, seed=1),
                        Dropout(0.1, seed=3), Dense(len(vocab), seed=2)])  # (130, 32) windows, 22 characters
    history = model.fit(x, y, loss="cross_entropy", optimizer=rnnlab.optim.get("adam", lr=0.02), epochs=12,
                        batch_size=16, clip_norm=5.0, seed=0)
    assert history["loss"][-1] < 0.3  # the order of the sentences is random: about log(6) / 30 nats per character
    return model, vocab


def test_the_char_model_writes_a_training_sentence_from_its_prime(char_lm):
    model, vocab = char_lm
    for sentence in SENTENCES:
        prime = sentence[: sentence.index(" is ")]
        text = sample(model, vocab, prime, length=30, greedy=True, stop=".")
        assert prime + text == sentence


def test_seeded_sampling_of_the_char_model_repeats_and_stays_on_the_corpus(char_lm):
    model, vocab = char_lm
    runs = [sample(model, vocab, "the color of", length=120, temperature=0.3, seed=s) for s in (1, 1, 2)]
    assert runs[0] == runs[1] and runs[0] != runs[2]
    written = ("the color of" + runs[0]).split(". ")[:-1]  # whole sentences written
    assert len(written) >= 2 and all(s + "." in SENTENCES for s in written)


def test_the_trained_model_generates_one_step_per_character(char_lm):
    model, vocab = char_lm
    (_, lstm), = recurrent_layers(model)
    seen = []
    forward = lstm.forward
    lstm.forward = lambda x, *a, **kw: seen.append(x.shape[1]) or forward(x, *a, **kw)
    try:
        out = generate_ids(model, vocab.encode(char_tokenize("the color of snow")), length=25, greedy=True)
    finally:
        del lstm.forward
    assert "".join(vocab.decode(out)).startswith(" is white.")
    assert seen == [len("the color of snow")] + [1] * 24
