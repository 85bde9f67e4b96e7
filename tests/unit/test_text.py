"""rnnlab.text: tokenizers, Vocabulary (order, limits, JSON), pad_sequences (padding, truncation, mask)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.data.text import Vocabulary, char_tokenize, pad_sequences, word_tokenize


# --------------------------------------------------------------------------- tokenizers
def test_char_tokenize_keeps_every_character_and_inverts_with_join():
    text = "Hi, you!\n"
    assert char_tokenize(text) == ["H", "i", ",", " ", "y", "o", "u", "!", "\n"]
    assert "".join(char_tokenize(text)) == text
    assert char_tokenize("AbC", lower=True) == ["a", "b", "c"]


@pytest.mark.parametrize("text, expected", [
    ("Movie was good.", ["movie", "was", "good", "."]),
    ("Movie wasn't good... 9.5/10!", ["movie", "wasn't", "good", ".", ".", ".", "9.5", "/", "10", "!"]),
    ("A very slow-moving, aimless movie", ["a", "very", "slow-moving", ",", "aimless", "movie"]),
    ("costs 1,000 dollars", ["costs", "1,000", "dollars"]),
    ('faux "masterpieces.', ["faux", '"', "masterpieces", "."]),
    ("Great!!", ["great", "!", "!"]),
    ("  spaced\tout \n", ["spaced", "out"]),
    ("The script is\x85was there", ["the", "script", "is", "was", "there"]),  # U+0085 is whitespace
    ("café crème", ["café", "crème"]),
    ("", []),
])
def test_word_tokenize_rules(text, expected):
    assert word_tokenize(text) == expected


def test_word_tokenize_lower_is_optional():
    assert word_tokenize("Movie WAS Good", lower=False) == ["Movie", "WAS", "Good"]


@pytest.mark.parametrize("fn", [word_tokenize, char_tokenize])
def test_tokenizers_reject_non_strings(fn):
    with pytest.raises(TypeError, match=r"text must be a str, got list"):
        fn(["movie", "was"])


# --------------------------------------------------------------------------- vocabulary
def test_vocabulary_orders_by_count_then_alphabetically_after_the_specials():
    vocab = Vocabulary().fit([["b", "a", "c"], ["a", "b", "a"], ["z", "y"], ["y", "z"]])
    # a:3, then b, y, z with 2 each (alphabetical), then c:1
    assert vocab.tokens == ["<pad>", "<unk>", "a", "b", "y", "z", "c"]
    assert (vocab.pad_id, vocab.unk_id) == (0, 1)
    assert len(vocab) == 7
    assert vocab.counts == {"a": 3, "b": 2, "y": 2, "z": 2, "c": 1}


def test_vocabulary_fit_does_not_depend_on_corpus_order(rng):
    corpus = [["movie", "was", "good"], ["movie", "was", "bad"], ["not", "good"], ["bad", "bad", "movie"]]
    reference = Vocabulary().fit(corpus).tokens
    for _ in range(5):
        shuffled = [list(rng.permutation(s)) for s in rng.permutation(np.array(corpus, dtype=object))]
        assert Vocabulary().fit(shuffled).tokens == reference


def test_vocabulary_min_freq_and_max_size_count_the_specials():
    corpus = [["a", "a", "a", "b", "b", "c", "d", "d"]]
    assert Vocabulary(min_freq=2).fit(corpus).tokens == ["<pad>", "<unk>", "a", "b", "d"]
    assert Vocabulary(max_size=4).fit(corpus).tokens == ["<pad>", "<unk>", "a", "b"]  # b, d tie: b first


def test_vocabulary_encode_maps_unknown_tokens_to_unk_and_decode_inverts():
    vocab = Vocabulary().fit([["movie", "was", "good"], ["movie", "bad"]])
    ids = vocab.encode(["movie", "was", "terrible"])
    assert ids == [vocab.tokens.index("movie"), vocab.tokens.index("was"), 1]
    assert vocab.decode(ids) == ["movie", "was", "<unk>"]
    assert vocab.decode([0, 0] + ids, skip_specials=True) == ["movie", "was"]
    assert vocab.decode(np.array(ids)) == ["movie", "was", "<unk>"]
    assert "movie" in vocab and "terrible" not in vocab


def test_specials_are_never_counted_as_tokens():
    vocab = Vocabulary().fit([["<pad>", "x", "<unk>", "x"]])
    assert vocab.tokens == ["<pad>", "<unk>", "x"]


def test_vocabulary_without_unk_rejects_unknown_tokens():
    vocab = Vocabulary(specials=("<pad>",)).fit([list("abc")])
    assert vocab.unk_id is None and vocab.tokens == ["<pad>", "a", "b", "c"]
    with pytest.raises(ValueError, match=r"token 'z' is not in the vocabulary, which has no '<unk>'"):
        vocab.encode(["a", "z"])


def test_vocabulary_json_round_trip_is_plain_json():
    vocab = Vocabulary(min_freq=1, max_size=50).fit([word_tokenize("Crème brûlée was great, great!")])
    text = vocab.to_json()
    data = json.loads(text)
    assert data["tokens"][:2] == ["<pad>", "<unk>"] and "brûlée" in data["tokens"]
    back = Vocabulary.from_json(text)
    assert back == vocab
    assert back.encode(["great", "nope"]) == vocab.encode(["great", "nope"])
    assert (back.min_freq, back.max_size, back.specials) == (1, 50, ("<pad>", "<unk>"))


@pytest.mark.parametrize("text, match", [
    ("not json", r"not a valid vocabulary JSON document"),
    ('{"format": "something else"}', r"expected \"format\": 'rnnlab.Vocabulary'"),
    ('{"format": "rnnlab.Vocabulary", "version": 99}', r"unsupported vocabulary format version 99"),
    ('{"format": "rnnlab.Vocabulary", "version": 1, "min_freq": 1}', r"lacks the field\(s\) \['max_size'"),
    ('{"format": "rnnlab.Vocabulary", "version": 1, "min_freq": 1, "max_size": null, "specials": ["<pad>"], '
     '"tokens": ["<pad>", "a", "a"], "counts": [0, 1, 1]}', r"duplicate tokens"),
    ('{"format": "rnnlab.Vocabulary", "version": 1, "min_freq": 1, "max_size": null, "specials": ["<pad>"], '
     '"tokens": ["a", "<pad>"], "counts": [1, 0]}', r"starting with the specials \['<pad>'\]"),
    ('{"format": "rnnlab.Vocabulary", "version": 1, "min_freq": 1, "max_size": null, "specials": ["<pad>"], '
     '"tokens": ["<pad>", "a"], "counts": [0]}', r"\"counts\" must be 2 ints"),
])
def test_vocabulary_from_json_rejects_malformed_documents(text, match):
    with pytest.raises(ValueError, match=match):
        Vocabulary.from_json(text)


def test_vocabulary_bad_arguments_name_the_argument_and_value():
    with pytest.raises(ValueError, match=r"min_freq must be a positive int, got 0"):
        Vocabulary(min_freq=0)
    with pytest.raises(ValueError, match=r"max_size must exceed the number of specials \(2"):
        Vocabulary(max_size=2)
    with pytest.raises(ValueError, match=r"specials must be distinct"):
        Vocabulary(specials=("<pad>", "<pad>"))
    with pytest.raises(TypeError, match=r"specials must be a sequence of str"):
        Vocabulary(specials="<pad>")


def test_vocabulary_use_before_fit_and_untokenized_input_are_errors():
    vocab = Vocabulary()
    with pytest.raises(ValueError, match=r"not fitted yet; call fit"):
        vocab.encode(["a"])
    with pytest.raises(TypeError, match=r"got a single string; tokenize it first"):
        vocab.fit("movie was good")
    with pytest.raises(TypeError, match=r"item 1 is str 'movie was bad'; tokenize it first"):
        vocab.fit([["movie"], "movie was bad"])
    vocab.fit([["a"]])
    with pytest.raises(TypeError, match=r"tokens must be a sequence of str .*got str"):
        vocab.encode("a b")
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 3\) .* got 7"):
        vocab.decode([1, 7])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.text(min_size=1, max_size=4), max_size=8), min_size=1, max_size=6))
def test_vocabulary_round_trips_every_fitted_token_sequence(corpus):
    vocab = Vocabulary(specials=("<pad>", "<unk>")).fit(corpus)
    for tokens in corpus:  # every token was fitted (min_freq=1), so none becomes <unk>
        assert vocab.decode(vocab.encode(tokens)) == tokens
    assert Vocabulary.from_json(vocab.to_json()) == vocab


# --------------------------------------------------------------------------- padding
def test_pad_sequences_post_padding_and_mask():
    ids, mask = pad_sequences([[5, 6, 7], [8], []])
    np.testing.assert_array_equal(ids, [[5, 6, 7], [8, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(mask, [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    assert ids.dtype == np.int64 and mask.dtype == bool


def test_pad_sequences_pre_padding_and_custom_value():
    ids, mask = pad_sequences([[5, 6, 7], [8]], padding="pre", value=-1)
    np.testing.assert_array_equal(ids, [[5, 6, 7], [-1, -1, 8]])
    np.testing.assert_array_equal(mask, [[1, 1, 1], [0, 0, 1]])


@pytest.mark.parametrize("truncating, padding, expected_ids, expected_mask", [
    ("post", "post", [[1, 2, 3], [9, 0, 0]], [[1, 1, 1], [1, 0, 0]]),
    ("pre", "post", [[3, 4, 5], [9, 0, 0]], [[1, 1, 1], [1, 0, 0]]),
    ("post", "pre", [[1, 2, 3], [0, 0, 9]], [[1, 1, 1], [0, 0, 1]]),
    ("pre", "pre", [[3, 4, 5], [0, 0, 9]], [[1, 1, 1], [0, 0, 1]]),
])
def test_pad_sequences_truncation(truncating, padding, expected_ids, expected_mask):
    ids, mask = pad_sequences([[1, 2, 3, 4, 5], np.array([9])], maxlen=3, padding=padding, truncating=truncating)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_array_equal(mask, expected_mask)


def test_pad_sequences_mask_is_by_position_not_by_value():
    ids, mask = pad_sequences([[0, 4], [3]])  # a real token 0 stays valid
    np.testing.assert_array_equal(mask, [[True, True], [True, False]])


def test_pad_sequences_of_no_sequences_is_empty():
    ids, mask = pad_sequences([], maxlen=4)
    assert ids.shape == (0, 4) and mask.shape == (0, 4)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"seqs": [[1]], "padding": "middle"}, ValueError, r"padding must be one of 'post', 'pre'; got 'middle'"),
    ({"seqs": [[1]], "truncating": "both"}, ValueError, r"truncating must be one of 'post', 'pre'; got 'both'"),
    ({"seqs": [[1]], "maxlen": 0}, ValueError, r"maxlen must be a positive int, got 0"),
    ({"seqs": [[1]], "value": 0.5}, TypeError, r"value must be an int .* got float 0.5"),
    ({"seqs": [[1, 2.5]]}, TypeError, r"seqs\[0\] must hold integer ids, got dtype float64"),
    ({"seqs": [[1], "ab"]}, TypeError, r"seqs\[1\] must be a sequence of int ids, got a string 'ab'"),
    ({"seqs": [[[1, 2]]]}, ValueError, r"seqs\[0\] must be a flat sequence of ids, got shape \(1, 2\)"),
    ({"seqs": "abc"}, TypeError, r"seqs must be a sequence of id sequences, got str"),
])
def test_pad_sequences_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        pad_sequences(**kwargs)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.integers(1, 50), max_size=7), min_size=1, max_size=6), st.sampled_from(["post", "pre"]))
def test_pad_sequences_keeps_every_sequence_under_its_mask(seqs, padding):
    ids, mask = pad_sequences(seqs, padding=padding)
    assert ids.shape == (len(seqs), max(len(s) for s in seqs))
    for row, m, s in zip(ids, mask, seqs):
        assert row[m].tolist() == s
        assert (row[~m] == 0).all()
