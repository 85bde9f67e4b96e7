"""Generation and prediction (rnnlab.generate): state carrying, sampling rules, ranking, prediction for raw inputs.

The key test is ``test_carried_state_gives_the_logits_of_rerunning_the_whole_prefix``: generating one step at a
time must give exactly what a forward pass over the whole prefix gives. Expected values are computed here, from
the model's plain forward pass and NumPy, never by the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.data.text import Vocabulary, char_tokenize, pad_sequences, word_tokenize
from rnnlab.generate import (
    Generator,
    SamplingConfig,
    encode_texts,
    generate_ids,
    next_token_probs,
    predict_classes,
    predict_proba,
    predict_values,
    rank_next,
    recurrent_layers,
    sample,
    sample_token,
)
from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.layers import Dense, Dropout, Embedding
from rnnlab.nn.module import Module
from rnnlab.nn.recurrent import GRU, LSTM, SimpleRNN
from rnnlab.nn.seq2seq import OneToMany
from rnnlab.nn.sequential import Sequential

V = 11  # vocabulary size of the random language models


def make_lm(kind: str = "stack", dtype: str = "float64") -> Sequential:
    """A seeded random language model: ids (B, T) -> logits (B, T, V)."""
    kw = {"dtype": dtype}
    if kind == "lstm":
        rnns = [LSTM(7, return_sequences=True, seed=1, **kw)]
    elif kind == "stack":  # several layers, two state kinds, dropout between them
        rnns = [LSTM(7, return_sequences=True, seed=1, **kw), Dropout(0.5, seed=2, dtype=dtype),
                GRU(6, return_sequences=True, seed=3, **kw), SimpleRNN(5, return_sequences=True, seed=4, **kw)]
    elif kind == "last_only":  # the last recurrent layer returns (B, H): logits (B, V)
        rnns = [GRU(6, return_sequences=True, seed=1, **kw), LSTM(7, seed=3, **kw)]
    else:
        raise AssertionError(kind)
    return Sequential([Embedding(V, 5, seed=0, embeddings_initializer="uniform:1.0", **kw), *rnns,
                       Dense(V, seed=9, kernel_initializer="uniform:2.0", **kw)])


def full_prefix_logits(model: Module, ids) -> np.ndarray:
    """The reference: logits (V,) after a forward pass over the whole prefix, from a cleared state."""
    out = model(np.asarray(ids, dtype=np.int64)[None, :])
    return out[0, -1] if out.ndim == 3 else out[0]


class FixedLogits(Module):
    """A stub language model: the same logits (V,) at every step, whatever the input."""

    def __init__(self, logits):
        super().__init__(dtype="float64")
        self.logits = np.asarray(logits, dtype=np.float64)
        self.built = True
        self.seen: list[np.ndarray] = []

    def forward(self, x, mask=None, initial_state=None, training=False):
        x = np.asarray(x)
        self.seen.append(x.copy())
        return np.broadcast_to(self.logits, x.shape + self.logits.shape).copy()  # (B, T, V)


class Cycle(Module):
    """A stub bigram model: after token i, logit 5 for (i + 1) mod V and 0 elsewhere (10 for ``favourite``)."""

    def __init__(self, num_classes: int, favourite: int | None = None):
        super().__init__(dtype="float64")
        self.num_classes, self.favourite = num_classes, favourite
        self.built = True

    def forward(self, x, mask=None, initial_state=None, training=False):
        x = np.asarray(x)
        z = np.zeros(x.shape + (self.num_classes,))  # (B, T, V)
        np.put_along_axis(z, ((x + 1) % self.num_classes)[..., None], 5.0, axis=-1)
        if self.favourite is not None:
            z[..., self.favourite] = 10.0
        return z


def spy_time_steps(model: Module) -> list[list[int]]:
    """Wrap each recurrent layer's forward to record the number of time steps of every call."""
    calls = []
    for _, layer in recurrent_layers(model):
        seen: list[int] = []
        calls.append(seen)

        def spy(x, *args, _forward=layer.forward, _seen=seen, **kwargs):
            _seen.append(np.shape(x)[1])
            return _forward(x, *args, **kwargs)

        layer.forward = spy
    return calls


def chi_square(counts: np.ndarray, p: np.ndarray) -> float:
    expected = counts.sum() * p
    return float(((counts - expected) ** 2 / expected).sum())


# ====================================================================== state carrying
@pytest.mark.parametrize("kind", ["lstm", "stack", "last_only"])
def test_carried_state_gives_the_logits_of_rerunning_the_whole_prefix(kind, rng):
    model = make_lm(kind)
    prime = rng.integers(0, V, size=6).tolist()
    fed = rng.integers(0, V, size=12).tolist()
    with Generator(model) as gen:
        carried = [gen.prime(prime)] + [gen.step(t) for t in fed]  # 13 x (V,)
    for n, z in enumerate(carried):
        np.testing.assert_allclose(z, full_prefix_logits(model, prime + fed[:n]), rtol=0, atol=1e-10)
    assert np.ptp(np.array(carried), axis=0).max() > 0.1  # the logits do change with the context


@pytest.mark.parametrize("options", [dict(greedy=True), dict(temperature=1.5, top_k=6),
                                     dict(temperature=0.8, top_p=0.9)])
def test_generate_ids_equals_the_plain_loop_that_reruns_the_prefix(options, rng):
    model = make_lm("stack")
    prime = [3, 1, 4, 1, 5]
    got = generate_ids(model, prime, length=15, seed=7, **options)
    draws = np.random.default_rng(7)
    expected: list[int] = []
    for _ in range(15):  # the equivalent plain loop: O(n) per token
        expected.append(sample_token(full_prefix_logits(model, prime + expected), draws, **options))
    assert got == expected


def test_each_new_token_costs_one_time_step():
    model = make_lm("stack")
    calls = spy_time_steps(model)
    assert len(calls) == 3
    out = generate_ids(model, [2, 7, 1, 8, 2], length=9, seed=0)
    assert len(out) == 9
    for seen in calls:  # the prime in one call, then one step per token after the first (the last is never fed)
        assert seen == [5] + [1] * 8


def test_a_stub_without_recurrent_layers_is_called_once_per_token():
    stub = FixedLogits(np.zeros(4))
    generate_ids(stub, [1, 2, 3], length=5, seed=0)
    assert [x.shape for x in stub.seen] == [(1, 3)] + [(1, 1)] * 4


def test_generation_restores_the_stateful_flags_and_carried_states(rng):
    model = make_lm("stack")
    lstm, gru, elman = (layer for _, layer in recurrent_layers(model))
    gru.stateful = True
    model(rng.integers(0, V, size=(3, 4)))  # gru now carries a state for a batch of 3
    carried = gru.states
    generate_ids(model, [1, 2], length=4, seed=0)
    assert (lstm.stateful, gru.stateful, elman.stateful) == (False, True, False)
    assert lstm.states is None and elman.states is None
    for before, after in zip(carried, gru.states):
        np.testing.assert_array_equal(after, before)


def test_state_is_restored_when_generation_fails():
    model = make_lm("lstm")
    (_, lstm), = recurrent_layers(model)
    calls = spy_time_steps(model)[0]
    forward = lstm.forward

    def failing(x, *args, **kwargs):
        if len(calls) == 3:
            raise RuntimeError("boom")
        return forward(x, *args, **kwargs)

    lstm.forward = failing
    with pytest.raises(RuntimeError, match="boom"):
        generate_ids(model, [1, 2], length=10, seed=0)
    assert lstm.stateful is False and lstm.states is None


def test_prime_restarts_from_a_cleared_state(rng):
    model = make_lm("lstm")
    with Generator(model) as gen:
        first = gen.prime([4, 5])
        gen.step(6)
        again = gen.prime([4, 5])
    np.testing.assert_array_equal(again, first)


@pytest.mark.parametrize("layer, message", [
    (Bidirectional(LSTM(4, return_sequences=True, seed=0)), r"layer '1' is Bidirectional"),
    (GRU(4, return_sequences=True, go_backwards=True, seed=0), r"layer '1' \(GRU\) has go_backwards=True"),
])
def test_layers_reading_from_the_end_cannot_generate(layer, message):
    model = Sequential([Embedding(V, 3, seed=0), layer, Dense(V, seed=1)])
    with pytest.raises(ValueError, match=message):
        generate_ids(model, [1], length=3)
    with pytest.raises(ValueError, match=message):
        Generator(model)


# ====================================================================== sampling rules
def test_greedy_is_deterministic_and_draws_no_random_numbers():
    model = make_lm("stack")
    draws = np.random.default_rng(0)
    before = draws.bit_generator.state
    a = generate_ids(model, [1, 2, 3], length=12, greedy=True, seed=draws)
    b = generate_ids(model, [1, 2, 3], length=12, greedy=True, seed=123)
    assert a == b
    assert draws.bit_generator.state == before


def test_the_same_seed_gives_the_same_tokens_and_another_seed_other_tokens():
    model = make_lm("stack")
    runs = [generate_ids(model, [1, 2, 3], length=30, temperature=2.0, seed=s) for s in (5, 5, 6)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("options", [dict(top_k=1), dict(top_p=1e-9), dict(temperature=1e-4),
                                     dict(temperature=1e-300, top_k=3)])
def test_limits_of_the_sampling_rules_equal_greedy(options, seed):
    model = make_lm("stack")
    greedy = generate_ids(model, [9, 8, 7], length=12, greedy=True)
    assert generate_ids(model, [9, 8, 7], length=12, seed=seed, **options) == greedy


LOGITS = np.array([2.0, 1.0, 0.5, -1.0, 0.0])


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.5])
def test_sampled_tokens_follow_softmax_of_logits_over_temperature(temperature):
    stub = FixedLogits(LOGITS)
    tokens = generate_ids(stub, [0], length=4000, temperature=temperature, seed=11)
    counts = np.bincount(tokens, minlength=5)
    p = np.exp(LOGITS / temperature) / np.exp(LOGITS / temperature).sum()
    assert chi_square(counts, p) < 18.47  # chi-square, 4 degrees of freedom, p = 0.001
    wrong = np.exp(LOGITS) / np.exp(LOGITS).sum() if temperature != 1.0 else np.full(5, 0.2)
    assert chi_square(counts, wrong) > 50  # the test tells the distributions apart


def test_top_k_and_top_p_sample_from_the_renormalised_head():
    stub = FixedLogits(np.log([0.05, 0.5, 0.15, 0.3]))  # probabilities, in scrambled order
    counts = np.bincount(generate_ids(stub, [0], length=3000, top_k=2, seed=3), minlength=4)
    assert counts[0] == counts[2] == 0
    assert chi_square(counts[[1, 3]], np.array([0.5, 0.3]) / 0.8) < 10.83  # 1 dof, p = 0.001
    counts = np.bincount(generate_ids(stub, [0], length=3000, top_p=0.85, seed=4), minlength=4)
    assert counts[0] == 0  # 0.5 + 0.3 < 0.85 <= 0.5 + 0.3 + 0.15: three tokens kept
    assert chi_square(counts[1:], np.array([0.5, 0.15, 0.3]) / 0.95) < 13.82  # 2 dof, p = 0.001


def test_next_token_probs_values():
    z = np.log([0.05, 0.5, 0.15, 0.3])
    np.testing.assert_allclose(next_token_probs(z), [0.05, 0.5, 0.15, 0.3], rtol=1e-12)
    np.testing.assert_allclose(next_token_probs(z, top_p=0.7), [0, 0.5 / 0.8, 0, 0.3 / 0.8], rtol=1e-12)
    np.testing.assert_allclose(next_token_probs(z, top_p=0.45), [0, 1, 0, 0])  # the top token alone holds 0.5
    np.testing.assert_allclose(next_token_probs(z, top_k=2, banned=[1]), [0, 0, 0.15 / 0.45, 0.3 / 0.45], rtol=1e-12)
    q = np.array([0.05, 0.5, 0.15, 0.3]) ** 2
    np.testing.assert_allclose(next_token_probs(z, temperature=0.5), q / q.sum(), rtol=1e-12)


def test_next_token_probs_is_stable_for_extreme_logits_and_temperatures():
    # the autouse fixture turns overflow and invalid operations into errors
    z = np.array([1000.0, 0.0, -1000.0, 999.0])
    e = np.exp(-1.0)
    np.testing.assert_allclose(next_token_probs(z), [1 / (1 + e), 0, 0, e / (1 + e)], rtol=1e-12)
    np.testing.assert_array_equal(next_token_probs(z, temperature=1e-300), [1, 0, 0, 0])
    np.testing.assert_allclose(next_token_probs(z, temperature=1e300), np.full(4, 0.25), rtol=1e-12)
    assert sample_token(z, 0, temperature=1e-300) == 0


def test_a_banned_token_is_never_chosen():
    stub = FixedLogits([5.0, 0.0, 0.0])
    assert 0 not in generate_ids(stub, [1], length=200, banned=[0], seed=0)
    assert generate_ids(stub, [1], length=3, banned=0, greedy=True) == [1, 1, 1]


# ====================================================================== stop tokens and length
def test_stop_ids_and_length_limit():
    cycle = Cycle(8)  # greedy: 0 -> 1 -> 2 -> ...
    assert generate_ids(cycle, [0], length=5, greedy=True) == [1, 2, 3, 4, 5]
    assert generate_ids(cycle, [0], length=10, greedy=True, stop=3) == [1, 2, 3]
    assert generate_ids(cycle, [0], length=10, greedy=True, stop=[3], include_stop=False) == [1, 2]
    assert generate_ids(cycle, [0], length=10, greedy=True, stop=[(5, 6), 9 % 8]) == [1]
    assert generate_ids(cycle, [0], length=10, greedy=True, stop=[(5, 6), (2, 4)], include_stop=False) == [1, 2, 3, 4]
    assert generate_ids(cycle, [0], length=10, greedy=True, stop=[(4, 5)], include_stop=False) == [1, 2, 3]
    assert generate_ids(cycle, [7], length=3, greedy=True, stop=[7]) == [0, 1, 2]  # the prime does not count


CHARS = Vocabulary(specials=()).fit([list("abcd.")])  # ids: '.'=0, a=1, b=2, c=3, d=4


def test_sample_text_stops_after_a_stop_string():
    cycle = Cycle(5)
    assert sample(cycle, CHARS, "a", length=20, greedy=True) == "bcd.abcd.abcd.abcd.a"
    assert sample(cycle, CHARS, "a", length=20, greedy=True, stop=".") == "bcd."
    assert sample(cycle, CHARS, "a", length=20, greedy=True, stop=".", include_stop=False) == "bcd"
    assert sample(cycle, CHARS, "ab", length=20, greedy=True, stop=["da", ".a"]) == "cd.a"
    assert sample(cycle, CHARS, "a", length=3, greedy=True, stop=".") == "bcd"


def test_sample_at_word_level_joins_with_spaces_and_never_emits_pad():
    words = Vocabulary().fit([["red", "green", "blue"]])  # <pad>=0 <unk>=1 blue=2 green=3 red=4
    cycle = Cycle(len(words), favourite=0)  # the model's favourite is <pad>
    assert sample(cycle, words, "blue", length=2, greedy=True) == "green red"
    stub = FixedLogits([9.0, 0.0, 0.0, 0.0, 0.0])  # <pad> would take 99.95% of the draws
    tokens = sample(stub, words, "red", length=400, seed=0).split()
    assert len(tokens) == 400 and set(tokens) == {"<unk>", "blue", "green", "red"}


def test_the_tokenizer_is_inferred_from_the_vocabulary():
    stub = FixedLogits(np.zeros(len(CHARS)))
    rank_next(stub, CHARS, "ab.")
    np.testing.assert_array_equal(stub.seen[-1], [[1, 2, 0]])
    words = Vocabulary().fit([["the", "sky", "is", "blue"]])
    stub = FixedLogits(np.zeros(len(words)))
    rank_next(stub, words, "The sky is")
    np.testing.assert_array_equal(stub.seen[-1], [words.encode(["the", "sky", "is"])])
    rank_next(stub, words, "the sky", tokenizer=lambda s: s.split()[::-1])
    np.testing.assert_array_equal(stub.seen[-1], [words.encode(["sky", "the"])])


# ====================================================================== next-word ranking
def test_rank_next_returns_softmax_probabilities_in_order_without_pad():
    words = Vocabulary().fit([["red", "green", "blue", "is"]])  # <pad> <unk> blue green is red
    z = np.array([6.0, 0.5, 1.0, 2.0, -1.0, 3.0])
    p = np.exp(z) / np.exp(z).sum()
    ranked = rank_next(FixedLogits(z), words, "the apple is", k=3)
    assert [t for t, _ in ranked] == ["red", "green", "blue"]
    np.testing.assert_allclose([q for _, q in ranked], p[[5, 3, 2]], rtol=1e-12)
    assert len(rank_next(FixedLogits(z), words, "is", k=100)) == len(words) - 1


def test_rank_next_reads_the_prefix_as_the_model_would():
    words = Vocabulary(specials=()).fit([[str(i) for i in range(V)]])
    model = make_lm("stack")
    ranked = rank_next(model, words, " ".join(words.tokens[i] for i in (4, 2, 9)), k=V)
    z = full_prefix_logits(model, [4, 2, 9])
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    assert [words.encode([t])[0] for t, _ in ranked] == list(np.argsort(-p))
    np.testing.assert_allclose([q for _, q in ranked], np.sort(p)[::-1], rtol=1e-9)


# ====================================================================== argument errors
@pytest.mark.parametrize("options, error, message", [
    (dict(temperature=0), ValueError, r"temperature must be a finite number > 0 .*got 0"),
    (dict(temperature=-1.5), ValueError, r"temperature must be a finite number > 0 .*got -1.5"),
    (dict(temperature=float("nan")), ValueError, r"temperature must be a finite number > 0 .*got nan"),
    (dict(temperature="hot"), TypeError, r"temperature must be a number > 0, got str 'hot'"),
    (dict(temperature=True), TypeError, r"temperature must be a number > 0, got bool True"),
    (dict(top_k=0), ValueError, r"top_k must be a positive int, got 0"),
    (dict(top_k=2.5), TypeError, r"top_k must be a positive int, got float 2.5"),
    (dict(top_p=0.0), ValueError, r"top_p must be in \(0, 1\] \(the probability mass kept\), got 0.0"),
    (dict(top_p=1.5), ValueError, r"top_p must be in \(0, 1\] .*got 1.5"),
    (dict(top_p="all"), TypeError, r"top_p must be a number in \(0, 1\] or None, got str 'all'"),
    (dict(greedy="yes"), TypeError, r"greedy must be a bool, got str 'yes'"),
    (dict(length=0), ValueError, r"length must be a positive int, got 0"),
    (dict(length=None), TypeError, r"length must be a positive int, got NoneType None"),
    (dict(include_stop=1), TypeError, r"include_stop must be a bool, got int 1"),
    (dict(seed="abc"), TypeError, r"seed must be an int, a numpy.random.Generator or None, got str 'abc'"),
    (dict(stop=[99]), ValueError, r"stop entries must be non-empty sequences of token ids in \[0, 11\), got 99"),
    (dict(stop=[()]), ValueError, r"stop entries must be non-empty sequences of token ids in \[0, 11\), got \(\)"),
    (dict(stop="."), TypeError, r"stop must be token ids: an int or an iterable .*got str '\.'"),
    (dict(banned=[11]), ValueError, r"banned must hold token ids in \[0, 11\), got \[11\]"),
    (dict(banned=range(11)), ValueError, r"banned excludes all 11 tokens"),
])
def test_generate_ids_argument_errors(options, error, message):
    kwargs = dict(length=3, seed=0) | options
    with pytest.raises(error, match=message):
        generate_ids(make_lm("lstm"), [1, 2], **kwargs)


@pytest.mark.parametrize("prime", [[], np.zeros((2, 2), dtype=int), [0.5, 1.0]])
def test_bad_prime_ids(prime):
    with pytest.raises(ValueError, match=r"prime ids must be a non-empty 1-D sequence of int token ids, got shape"):
        generate_ids(make_lm("lstm"), prime, length=2)


def test_sample_and_rank_next_argument_errors():
    words = Vocabulary().fit([["red", "green"]])
    lm = FixedLogits(np.zeros(len(words)))
    with pytest.raises(TypeError, match=r"vocab must be a fitted rnnlab.text.Vocabulary .*got dict"):
        sample(lm, {"red": 2}, "red", length=2)
    with pytest.raises(ValueError, match=r"this Vocabulary is not fitted yet"):
        rank_next(lm, Vocabulary(), "red")
    with pytest.raises(ValueError, match=r"prime must hold at least one token after tokenization \(the model needs an "
                                         r"input to start from\), got '  '"):
        sample(lm, words, "  ", length=2)
    with pytest.raises(TypeError, match=r"prime must be a str, got list"):
        sample(lm, words, ["red"], length=2)
    with pytest.raises(ValueError, match=r"prefix must hold at least one token after tokenization, got ''"):
        rank_next(lm, words, "")
    with pytest.raises(ValueError,
                       match=r"stop string 'blue' must tokenize to tokens of the vocabulary .*not in it: \['blue'\]"):
        sample(lm, words, "red", length=2, stop=["green", "blue"])
    with pytest.raises(ValueError, match=r"tokenizer must be 'char', 'word', a callable .*got 'bpe'"):
        sample(lm, words, "red", length=2, tokenizer="bpe")
    with pytest.raises(TypeError, match=r"joiner must be a str or None, got int 0"):
        sample(lm, words, "red", length=2, joiner=0)
    with pytest.raises(ValueError, match=r"k must be a positive int, got 0"):
        rank_next(lm, words, "red", k=0)
    with pytest.raises(ValueError, match=r"the model outputs 7 logits per step but the vocabulary has 4 tokens"):
        sample(FixedLogits(np.zeros(7)), words, "red", length=2)
    with pytest.raises(ValueError, match=r"the model outputs 7 logits per step but the vocabulary has 4 tokens"):
        rank_next(FixedLogits(np.zeros(7)), words, "red")
    with pytest.raises(TypeError, match=r"model must be an rnnlab Module \(e.g. a Sequential\), got function"):
        sample(lambda x: x, words, "red", length=2)
    one_to_many = OneToMany(LSTM(3, return_sequences=True), Dense(4), steps=2)
    with pytest.raises(TypeError,
                       match=r"model is a OneToMany, which takes its own inputs; use its generate\(\) method"):
        rank_next(one_to_many, words, "red")


def test_generator_misuse_errors():
    gen = Generator(make_lm("lstm"))
    with pytest.raises(RuntimeError, match=r"Generator.prime must run inside `with Generator\(model\) as gen:`"):
        gen.prime([1])
    with gen:
        with pytest.raises(RuntimeError, match=r"Generator.step needs a state to continue from: call prime"):
            gen.step(1)
        with pytest.raises(RuntimeError, match=r"this Generator is already in use"):
            gen.__enter__()
        gen.prime([1])
        with pytest.raises(ValueError, match=r"token must be an id in \[0, 11\), got 11"):
            gen.step(11)
        with pytest.raises(TypeError, match=r"token must be an int id, got float 1.0"):
            gen.step(1.0)


def test_non_finite_logits_are_reported():
    with pytest.raises(ValueError,
                       match=r"the model returned non-finite logits after 2 input token\(s\) \(first at id 1\)"):
        generate_ids(FixedLogits([0.0, np.inf, 1.0]), [0, 1], length=2)
    with pytest.raises(ValueError, match=r"logits must be finite, got \[nan\] at index 2"):
        next_token_probs([0.0, 1.0, np.nan])
    with pytest.raises(ValueError, match=r"logits must be a non-empty 1-D array \(V,\), got shape \(2, 2\)"):
        sample_token(np.zeros((2, 2)), 0)


def test_sampling_config_is_a_validated_dataclass():
    assert SamplingConfig(0.7, 5, 0.9) == SamplingConfig(temperature=0.7, top_k=5, top_p=0.9, greedy=False)
    with pytest.raises(ValueError, match="temperature"):
        SamplingConfig(temperature=0.0)


# ====================================================================== prediction for raw inputs
REVIEWS = ["A good movie", "bad, really bad", "the movie was not good at all", "good"]


def make_classifier(vocab, outputs: int, layer=None) -> Sequential:
    layer = layer or LSTM(5, seed=1, dtype="float64")
    return Sequential([Embedding(len(vocab), 4, mask_zero=True, seed=0, embeddings_initializer="uniform:1.0",
                                 dtype="float64"), layer, Dense(outputs, seed=2, dtype="float64")])


@pytest.fixture
def review_vocab():
    return Vocabulary().fit([word_tokenize(t) for t in REVIEWS[:2]])  # "the movie was not ... all" is mostly <unk>


def test_predict_proba_and_classes_match_the_manual_pipeline(review_vocab):
    model = make_classifier(review_vocab, 3)
    ids, mask = pad_sequences([review_vocab.encode(word_tokenize(t)) for t in REVIEWS])
    z = model(ids, mask=mask)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(predict_proba(model, review_vocab, REVIEWS), p, rtol=1e-12)
    np.testing.assert_array_equal(predict_classes(model, review_vocab, REVIEWS), p.argmax(axis=1))
    labels = np.array(["neg", "neu", "pos"])
    np.testing.assert_array_equal(predict_classes(model, review_vocab, REVIEWS, labels=list(labels)),
                                  labels[p.argmax(axis=1)])


def test_padding_and_batching_do_not_change_predictions(review_vocab):
    for layer in (GRU(4, seed=1, dtype="float64"), Bidirectional(LSTM(3, seed=1, dtype="float64"))):
        model = make_classifier(review_vocab, 3, layer)
        together = predict_proba(model, review_vocab, REVIEWS, batch_size=3)
        alone = np.concatenate([predict_proba(model, review_vocab, [t]) for t in REVIEWS])
        np.testing.assert_allclose(together, alone, rtol=1e-12)


def test_a_single_logit_is_the_positive_class(review_vocab):
    model = make_classifier(review_vocab, 1)
    ids, mask = pad_sequences([review_vocab.encode(word_tokenize(t)) for t in REVIEWS])
    s = 1 / (1 + np.exp(-model(ids, mask=mask)[:, 0]))
    proba = predict_proba(model, review_vocab, REVIEWS)
    np.testing.assert_allclose(proba, np.stack([1 - s, s], axis=1), rtol=1e-12)
    np.testing.assert_array_equal(predict_classes(model, review_vocab, REVIEWS, labels=["neg", "pos"]),
                                  np.where(s > 0.5, "pos", "neg"))


def test_maxlen_truncates_as_in_training(review_vocab):
    ids, mask = encode_texts(review_vocab, REVIEWS, maxlen=3, truncating="pre")
    expected, _ = pad_sequences([review_vocab.encode(word_tokenize(t)) for t in REVIEWS], maxlen=3, truncating="pre")
    np.testing.assert_array_equal(ids, expected)
    assert mask.tolist()[3] == [True, False, False]


def test_prediction_ignores_and_restores_a_stateful_layer(review_vocab, rng):
    model = make_classifier(review_vocab, 3)
    expected = predict_proba(model, review_vocab, REVIEWS)
    (_, lstm), = recurrent_layers(model)
    lstm.stateful = True
    model(rng.integers(0, len(review_vocab), size=(2, 3)))  # carries a state for a batch of 2
    carried = lstm.states
    np.testing.assert_allclose(predict_proba(model, review_vocab, REVIEWS), expected, rtol=1e-12)
    assert lstm.stateful
    for before, after in zip(carried, lstm.states):
        np.testing.assert_array_equal(after, before)


def test_prediction_argument_errors(review_vocab):
    model = make_classifier(review_vocab, 3)
    with pytest.raises(ValueError, match=r"texts\[1\] holds no token after tokenization \(' '\)"):
        predict_classes(model, review_vocab, ["good", " "])
    with pytest.raises(TypeError, match=r"texts must be a sequence of str \(wrap a single text in a list\), got str"):
        predict_classes(model, review_vocab, "good")
    with pytest.raises(ValueError, match=r"texts must hold at least one text"):
        predict_proba(model, review_vocab, [])
    with pytest.raises(ValueError, match=r"labels must be a sequence of 3 class names .*got \['a', 'b'\]"):
        predict_classes(model, review_vocab, ["good"], labels=["a", "b"])
    with pytest.raises(ValueError, match=r"batch_size must be a positive int, got 0"):
        predict_proba(model, review_vocab, ["good"], batch_size=0)
    seq_model = Sequential([Embedding(len(review_vocab), 3, seed=0), LSTM(3, return_sequences=True, seed=1),
                            Dense(2, seed=2)])
    with pytest.raises(ValueError, match=r"one row of logits per text, \(B, K\); the model returned shape \(1, 1, 2\)"):
        predict_proba(seq_model, review_vocab, ["good"])


class Affine:
    """A duck-typed scaler: z = (v - 10) / 4."""

    def transform(self, v):
        return (np.asarray(v) - 10.0) / 4.0

    def inverse_transform(self, z):
        return np.asarray(z) * 4.0 + 10.0


def test_predict_values_goes_through_the_scaler(rng):
    model = Sequential([LSTM(4, input_size=1, seed=0, dtype="float64"), Dense(2, seed=1, dtype="float64")])
    raw = rng.integers(0, 25, size=(5, 6))  # (B, T) counts, one feature
    expected = model(((raw - 10.0) / 4.0)[:, :, None]) * 4.0 + 10.0  # (B, 2) in original units
    np.testing.assert_allclose(predict_values(model, raw, scaler=Affine(), batch_size=2), expected, rtol=1e-12)
    np.testing.assert_allclose(predict_values(model, raw[:, :, None], scaler=Affine()), expected, rtol=1e-12)
    np.testing.assert_allclose(predict_values(model, raw.astype(float)), model(raw.astype(float)[:, :, None]),
                               rtol=1e-12)


def test_predict_values_with_a_mask_equals_the_short_windows(rng):
    model = Sequential([GRU(3, input_size=2, seed=0, dtype="float64"), Dense(1, seed=1, dtype="float64")])
    x = rng.normal(size=(2, 5, 2))
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=bool)
    got = predict_values(model, x, mask=mask)
    np.testing.assert_allclose(got[0], model(x[:1, :3])[0], rtol=1e-12)
    np.testing.assert_allclose(got[1], model(x[1:])[0], rtol=1e-12)


def test_predict_values_argument_errors():
    model = Sequential([LSTM(2, input_size=1, seed=0), Dense(1, seed=1)])
    with pytest.raises(TypeError, match=r"scaler must have transform and inverse_transform methods .*got dict"):
        predict_values(model, np.zeros((1, 3)), scaler={})
    with pytest.raises(ValueError,
                       match=r"x must have shape \(batch, timesteps, features\) or \(batch, timesteps\), got \(3,\)"):
        predict_values(model, np.zeros(3))
    with pytest.raises(TypeError, match=r"x must hold numbers, got dtype <U1"):
        predict_values(model, np.array([["a"]]))
    with pytest.raises(ValueError, match=r"mask must have shape \(batch, timesteps\) = \(1, 3\), got \(3,\)"):
        predict_values(model, np.zeros((1, 3)), mask=np.ones(3, dtype=bool))


def test_char_tokenizer_round_trip_in_sample_uses_no_separator():
    # a character model's continuation keeps its own spaces: prime + result is the text
    text = "ab ab."
    vocab = Vocabulary(specials=()).fit([char_tokenize(text)])  # ' '=0 '.'=1 a=2 b=3
    cycle = Cycle(len(vocab))  # a -> b -> ' ' -> '.' -> a ...   (ids 2 -> 3 -> 0 -> 1 -> 2)
    assert sample(cycle, vocab, "a", length=4, greedy=True) == "b .a"
