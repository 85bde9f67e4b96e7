"""OneToMany and Seq2Seq: finite-difference checks (float64), semantics, config, errors, and training.

Gradients are checked with ``rnnlab.gradcheck`` (central differences, random projection of the
outputs). Where the model takes a pair ``(inputs, targets)``, ``_FixedTargets`` turns it into a
function of the float inputs alone so ``dL/dx`` is checked too.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnlab
import rnnlab.io
from rnnlab.nn import gradcheck
from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.layers import Dense, Embedding, OneHot
from rnnlab.nn.module import Module
from rnnlab.nn.recurrent import GRU, LSTM, SimpleRNN
from rnnlab.nn.seq2seq import OneToMany, Seq2Seq
from rnnlab.nn.sequential import Sequential

F64 = {"dtype": "float64"}
TOL = 1e-6
CELLS = [SimpleRNN, LSTM, GRU]


class _FixedTargets(Module):
    """``x -> model((x, targets))``: the teacher-forced model as a function of its float input."""

    def __init__(self, model: Module, targets: np.ndarray):
        super().__init__(dtype=model.dtype)
        self.model, self.targets = model, targets

    def children(self):
        return [("model", self.model)]

    def forward(self, x, mask=None, initial_state=None, training=False):
        return self.model((x, self.targets), mask=mask, initial_state=initial_state, training=training)

    def backward(self, dy, *d_states, input_grad=True):
        return self.model.backward(dy, input_grad=input_grad)

    @property
    def initial_state_grad(self):
        return self.model.initial_state_grad


def _assert_passes(report, expected_names):
    assert set(report.errors) == set(expected_names)
    bad = {k: v for k, v in report.errors.items() if not v < TOL}
    assert not bad, f"relative errors above {TOL}: {bad}\n{report}"


def _one_to_many(cell, mode, feedback, H=4, K=5, steps=4, seed=0):
    layer = cell(H, return_sequences=True, return_state=feedback, seed=seed, **F64)
    return OneToMany(layer, Dense(K, seed=seed + 1, **F64), steps, input_mode=mode, feedback=feedback, seed=seed + 2)


def _seq2seq(cell, bidirectional=False, V=9, E=3, H=3, seed=0, end_id=2):
    enc_rnn = cell(H, return_state=True, seed=seed, **F64)
    if bidirectional:
        enc_rnn = Bidirectional(enc_rnn)
    encoder = Sequential([Embedding(V, E, mask_zero=True, seed=seed + 1, **F64), enc_rnn])
    decoder = Sequential([Embedding(V, E, seed=seed + 2, **F64),
                          cell(2 * H if bidirectional else H, return_sequences=True, return_state=True, seed=seed + 3,
                               **F64)])
    return Seq2Seq(encoder, decoder, Dense(V, seed=seed + 4, **F64), start_id=1, end_id=end_id)


# right-padded sources (every time step has at least one valid row) and targets ending in <end>=2
SOURCE = np.array([[3, 4, 5, 6], [7, 3, 0, 0], [8, 8, 4, 0]])
TARGETS = np.array([[6, 5, 4, 3, 2], [3, 7, 2, 0, 0], [4, 8, 8, 2, 0]])


# =========================================================================== OneToMany gradients
MODES = [("first", False), ("every", False), ("first", True), ("every", True), ("state", True)]


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("mode, feedback", MODES, ids=[f"{m}-{'feedback' if f else 'plain'}" for m, f in MODES])
def test_one_to_many_gradients(cell, mode, feedback, rng):
    model = _one_to_many(cell, mode, feedback)
    x = rng.standard_normal((3, 2))  # (B, D)
    targets = rng.integers(0, 5, size=(3, 4))  # (B, T)
    checked = _FixedTargets(model, targets) if feedback else model
    report = gradcheck(checked, x)
    prefix = "model." if feedback else ""
    expected = [prefix + name for name in model.params] + ["x"]
    _assert_passes(report, expected)


@pytest.mark.parametrize("T", [1, 2, 5])
def test_one_to_many_initial_state_gradient_and_lengths(T, rng):
    model = OneToMany(LSTM(3, return_sequences=True, seed=0, **F64), Dense(2, seed=1, **F64), T, input_mode="every")
    state = [rng.standard_normal((2, 3)), rng.standard_normal((2, 3))]
    report = gradcheck(model, rng.standard_normal((2, 4)), initial_state=state)
    _assert_passes(report, list(model.params) + ["x", "initial_state.0", "initial_state.1"])


# =========================================================================== OneToMany semantics
@pytest.mark.parametrize("mode", ["first", "every"])
def test_one_to_many_feeds_the_input_as_documented(mode, rng):
    model = _one_to_many(LSTM, mode, False, steps=3)
    x = rng.standard_normal((2, 4))
    u = np.zeros((2, 3, 4))
    u[:, 0] = x
    if mode == "every":
        u[:, 1:] = x[:, None]
    expected = model.output(model.layer(u))  # the layer run by hand on the documented input
    np.testing.assert_allclose(model(x), expected, rtol=1e-12, atol=1e-12)


def test_one_to_many_state_mode_sets_the_initial_state_through_a_tanh_bridge(rng):
    model = _one_to_many(LSTM, "state", True, H=4, K=5, steps=3)
    x, targets = rng.standard_normal((2, 3)), np.array([[1, 2, 3], [4, 0, 1]])
    out = model((x, targets))
    V, c = model.params["bridge.V"], model.params["bridge.c"]
    s0 = np.tanh(x @ V.T + c)  # (B, 2H): [h0 ; c0]
    prev = np.zeros((2, 3, 5))
    prev[0, 1, 1] = prev[0, 2, 2] = prev[1, 1, 4] = prev[1, 2, 0] = 1.0  # one-hot of the previous targets
    y, _, _ = model.layer(prev, initial_state=[s0[:, :4], s0[:, 4:]])
    np.testing.assert_allclose(out, model.output(y), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["first", "every", "state"])
def test_one_to_many_greedy_generation_agrees_with_teacher_forcing_on_its_own_output(mode, rng):
    model = _one_to_many(GRU, mode, True, H=6, K=4, steps=5, seed=3)
    x = rng.standard_normal((4, 3))
    generated = model.generate(x)
    assert generated.shape == (4, 5) and generated.dtype == np.int64
    # fed its own choices as the teacher, the sequence model makes the same choices
    np.testing.assert_array_equal(model((x, generated)).argmax(axis=-1), generated)
    assert model.generate(x, steps=7).shape == (4, 7)


def test_one_to_many_without_feedback_generates_the_argmax_of_forward(rng):
    model = _one_to_many(SimpleRNN, "every", False, steps=4)
    x = rng.standard_normal((3, 2))
    np.testing.assert_array_equal(model.generate(x), model(x).argmax(axis=-1))
    assert model.generate(x, steps=6).shape == (3, 6) and model.steps == 4


# =========================================================================== Seq2Seq gradients
@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("bidirectional", [False, True], ids=["unidirectional", "bidirectional"])
def test_seq2seq_gradients_flow_from_decoder_into_encoder(cell, bidirectional):
    model = _seq2seq(cell, bidirectional)
    report = gradcheck(model, (SOURCE, TARGETS))
    _assert_passes(report, model.params)
    assert any(k.startswith("encoder.1.") for k in report.errors)  # the encoder's weights are checked


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.__name__)
def test_seq2seq_gradients_of_float_source_mask_and_initial_state(cell, rng):
    n = 2 if cell is LSTM else 1
    encoder = cell(3, return_state=True, seed=0, **F64)
    decoder = Sequential([OneHot(6, **F64), cell(3, return_sequences=True, return_state=True, seed=1, **F64)])
    model = Seq2Seq(encoder, decoder, Dense(6, seed=2, **F64), start_id=0, pad_id=None)
    source = rng.standard_normal((3, 4, 2))  # (B, S, D)
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [0, 1, 1, 1]], dtype=bool)  # right and left padding
    state = [rng.standard_normal((3, 3)) for _ in range(n)]
    report = gradcheck(_FixedTargets(model, rng.integers(0, 6, (3, 5))), source, mask=mask, initial_state=state)
    _assert_passes(report, ["model." + k for k in model.params] + ["x"] + [f"initial_state.{i}" for i in range(n)])


def _poison_uninitialized_memory(monkeypatch):
    """Fill every new np.empty/np.empty_like float array with a large value: code that reads memory
    it never wrote then fails deterministically instead of by chance."""
    def poisoned(fn):
        def allocate(*args, **kwargs):
            out = fn(*args, **kwargs)
            if out.dtype.kind == "f":
                out.fill(7.7e5)
            return out
        return allocate
    monkeypatch.setattr(np, "empty", poisoned(np.empty))
    monkeypatch.setattr(np, "empty_like", poisoned(np.empty_like))


PADDED_COLUMN_SOURCE = np.array([[3, 4, 5, 0], [7, 3, 0, 0]])  # the last step is padding for every row
PADDED_COLUMN_TARGETS = np.array([[5, 4, 3, 2], [3, 7, 2, 0]])


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.__name__)
def test_seq2seq_gradients_with_a_step_padded_in_every_row(cell, monkeypatch):
    """Regression: a GRU buffer of an all-padding step used to stay uninitialised (fixed in fca26a4)."""
    _poison_uninitialized_memory(monkeypatch)
    model = _seq2seq(cell)
    _assert_passes(gradcheck(model, (PADDED_COLUMN_SOURCE, PADDED_COLUMN_TARGETS)), model.params)


def test_seq2seq_two_training_iterations_leave_no_stale_state():
    model = _seq2seq(LSTM, seed=5)
    loss, opt = rnnlab.losses.get("cross_entropy"), rnnlab.optim.get("sgd", lr=0.5)
    batches = [(SOURCE, TARGETS), (SOURCE[::-1].copy(), TARGETS[::-1].copy())]
    for batch in batches:
        model.zero_grad()
        loss(model(batch, training=True), batch[1], mask=model.output_mask)
        model.backward(loss.backward())
        grads = {k: g.copy() for k, g in model.grads.items()}
        opt.step(model)
    # a fresh model holding the weights from before the second step computes the same second gradients
    fresh = Seq2Seq.from_config(model.get_config())
    fresh.set_weights({k: p + 0.5 * grads[k] for k, p in model.params.items()})  # undo the SGD step
    loss(fresh(batches[1], training=True), batches[1][1], mask=fresh.output_mask)
    fresh.backward(loss.backward())
    for key, g in fresh.grads.items():
        np.testing.assert_allclose(g, grads[key], rtol=1e-9, atol=1e-12, err_msg=key)


# =========================================================================== Seq2Seq semantics
def test_seq2seq_decoder_reads_the_targets_shifted_right():
    model = _seq2seq(LSTM)
    np.testing.assert_array_equal(model.shift_right(TARGETS), [[1, 6, 5, 4, 3], [1, 3, 7, 2, 0], [1, 4, 8, 8, 2]])


def test_seq2seq_logits_at_step_t_depend_only_on_earlier_targets():
    model = _seq2seq(GRU)
    base = model((SOURCE, TARGETS))
    np.testing.assert_array_equal(model.output_mask, TARGETS != 0)
    changed = TARGETS.copy()
    changed[:, 2] = 7
    out = model((SOURCE, changed))
    np.testing.assert_array_equal(out[:, :3], base[:, :3])  # steps 0..2 read targets 0..1 only
    assert not np.allclose(out[:, 3:], base[:, 3:])
    longer = np.concatenate([TARGETS, np.zeros((3, 2), dtype=np.int64)], axis=1)  # more padding: nothing changes
    np.testing.assert_allclose(model((SOURCE, longer))[:, :5], base, rtol=1e-12, atol=1e-12)


def test_seq2seq_source_padding_changes_nothing():
    model = _seq2seq(LSTM)
    wider = np.concatenate([SOURCE, np.zeros((3, 3), dtype=np.int64)], axis=1)
    np.testing.assert_allclose(model((wider, TARGETS)), model((SOURCE, TARGETS)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_seq2seq_greedy_decoding_agrees_with_teacher_forcing_on_its_own_output(bidirectional):
    model = _seq2seq(LSTM, bidirectional, H=5, seed=11, end_id=None)
    decoded = model.generate(SOURCE, max_len=6)
    assert decoded.shape == (3, 6)
    np.testing.assert_array_equal(model((SOURCE, decoded)).argmax(axis=-1), decoded)


def test_seq2seq_generation_stops_after_end_and_pads():
    model = _seq2seq(LSTM, seed=2)
    model((SOURCE, TARGETS))  # builds the output layer
    # make <end> (2) the decoder's choice after one step by biasing the output layer
    model.output.params["c"][:] = 0
    model.output.params["V"][:] = 0
    model.output.params["c"][2] = 1.0
    decoded = model.generate(SOURCE, max_len=5)
    np.testing.assert_array_equal(decoded, [[2], [2], [2]])  # everyone ended: stopped after one step
    model.output.params["c"][2] = 0.0
    model.output.params["c"][4] = 1.0
    np.testing.assert_array_equal(model.generate(SOURCE, max_len=3), np.full((3, 3), 4))  # never ends: max_len


# =========================================================================== protocol: names, config, errors
def test_parameter_names_are_dotted_by_part():
    s2s = _seq2seq(LSTM)
    s2s((SOURCE, TARGETS))
    assert list(s2s.params) == ["encoder.0.E", "encoder.1.U", "encoder.1.W", "encoder.1.b", "decoder.0.E",
                                           "decoder.1.U", "decoder.1.W", "decoder.1.b", "output.V", "output.c"]
    model = _one_to_many(LSTM, "state", True)
    model((np.zeros((1, 2)), np.zeros((1, 4), dtype=np.int64)))
    assert list(model.params) == ["bridge.V", "bridge.c", "rnn.U", "rnn.W", "rnn.b", "output.V", "output.c"]
    assert model.count_params() == (8 * 2 + 8) + (16 * 5 + 16 * 4 + 16) + (5 * 4 + 5)


@pytest.mark.parametrize("make, inputs", [
    (lambda: _seq2seq(GRU, True), lambda r: (SOURCE, TARGETS)),
    (lambda: _one_to_many(LSTM, "state", True), lambda r: (r.standard_normal((2, 3)), r.integers(0, 5, (2, 4)))),
    (lambda: _one_to_many(SimpleRNN, "every", False), lambda r: r.standard_normal((2, 3))),
])
def test_config_round_trip_rebuilds_the_same_model(make, inputs, rng):
    model = make()
    x = inputs(rng)
    out = model(x)
    config = model.get_config()
    clone = type(model).from_config(config)
    clone(x)  # builds lazily-sized parts
    clone.set_weights(model.params)
    np.testing.assert_array_equal(clone(x), out)
    assert clone.get_config() == config


@pytest.mark.parametrize("make, inputs", [
    (lambda: _seq2seq(LSTM, True), lambda r: (SOURCE, TARGETS)),
    (lambda: _one_to_many(GRU, "state", True), lambda r: (r.standard_normal((2, 3)), r.integers(0, 5, (2, 4)))),
    (lambda: _one_to_many(LSTM, "first", False), lambda r: r.standard_normal((2, 3))),
])
def test_save_and_load_predict_identically(make, inputs, rng, tmp_path):
    model = make()
    x = inputs(rng)
    out = model(x)
    rnnlab.io.save(model, tmp_path / "model")
    loaded = rnnlab.io.load(tmp_path / "model")
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded(x), out)


def test_one_to_many_input_size_is_checked_and_kept():
    model = OneToMany(GRU(4, return_sequences=True, return_state=True, seed=0, **F64), Dense(5, seed=1, **F64), 3,
                      input_mode="state", feedback=True, input_size=2, seed=2)
    assert model.built and model.params["bridge.V"].shape == (4, 2) and model.get_config()["input_size"] == 2
    with pytest.raises(ValueError, match=r"OneToMany was built for inputs of 2 features, got 3"):
        model.generate(np.zeros((1, 3)))


@pytest.mark.parametrize("build, error, match", [
    (lambda: OneToMany(LSTM(3), Dense(2), 4), ValueError, r"return_sequences=True"),
    (lambda: OneToMany(LSTM(3, return_sequences=True), Dense(2), 4, feedback=True), ValueError, r"return_state=True"),
    (lambda: OneToMany(LSTM(3, return_sequences=True), Dense(2), 4, input_mode="state"), ValueError,
     r"input_mode='state' needs feedback=True"),
    (lambda: OneToMany(LSTM(3, return_sequences=True), Dense(2), 4, input_mode="last"), ValueError,
     r"input_mode must be one of 'first', 'every', 'state'; got 'last'"),
    (lambda: OneToMany(LSTM(3, return_sequences=True), Dense(2), 0), ValueError,
     r"steps must be a positive int, got 0"),
    (lambda: OneToMany(Bidirectional(LSTM(3, return_sequences=True)), Dense(2), 4), TypeError,
     r"layer must be a SimpleRNN, LSTM or GRU .* got Bidirectional"),
    (lambda: OneToMany(LSTM(3, return_sequences=True), Dense(2, dtype="float64"), 4), ValueError,
     r"share one dtype, got layer=float32, output=float64"),
    (lambda: Seq2Seq(LSTM(3), Sequential([Embedding(5, 2), LSTM(3, return_sequences=True, return_state=True)]),
                     Dense(5), start_id=1), ValueError,
     r"encoder's recurrent layer must be built with return_state=True"),
    (lambda: Seq2Seq(LSTM(3, return_state=True), Sequential([LSTM(3, return_sequences=True, return_state=True)]),
                     Dense(5), start_id=1), TypeError, r"decoder must start with an Embedding or OneHot"),
    (lambda: Seq2Seq(LSTM(3, return_state=True),
                     Sequential([Embedding(5, 2), GRU(3, return_sequences=True, return_state=True)]),
                     Dense(5), start_id=1), ValueError,
     r"same state tensors, got LSTM \('h', 'c'\) and GRU \('h',\)"),
    (lambda: Seq2Seq(Bidirectional(GRU(3, return_state=True)),
                     Sequential([Embedding(5, 2), GRU(3, return_sequences=True, return_state=True)]),
                     Dense(5), start_id=1), ValueError,
     r"decoder hidden_size must be 2 x the encoder's \(3\) .* got 3"),
    (lambda: Seq2Seq(GRU(3, return_state=True), Sequential([Embedding(5, 2), GRU(3, return_sequences=True)]),
                     Dense(5), start_id=1), ValueError,
     r"decoder's recurrent layer must be built with return_state=True"),
    (lambda: Seq2Seq(GRU(3, return_state=True), Sequential([Embedding(5, 2), GRU(3, return_state=True)]),
                     Dense(5), start_id=1), ValueError, r"return_sequences=True"),
    (lambda: Seq2Seq(GRU(3, return_state=True),
                     Sequential([Embedding(5, 2), GRU(3, return_sequences=True, return_state=True)]),
                     Dense(5), start_id=-1), ValueError,
     r"start_id must be a non-negative int token id, got -1"),
])
def test_invalid_construction_is_explained(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_invalid_calls_are_explained(rng):
    s2s = _seq2seq(LSTM)
    with pytest.raises(TypeError, match=r"Seq2Seq takes x as a pair \(source, targets .*use generate\(\)"):
        s2s(SOURCE)
    with pytest.raises(TypeError, match=r"targets must be an integer array of token ids, got dtype float64"):
        s2s((SOURCE, TARGETS.astype(float)))
    with pytest.raises(ValueError, match=r"same number of sequences, got 3 and 2"):
        s2s((SOURCE, TARGETS[:2]))
    with pytest.raises(ValueError, match=r"backward was called before forward"):
        s2s.backward(np.zeros((3, 5, 9)))
    s2s.generate(SOURCE, max_len=3)
    with pytest.raises(ValueError, match=r"backward was called before forward"):  # generate leaves no tape
        s2s.backward(np.zeros((3, 5, 9)))
    otm = _one_to_many(LSTM, "first", True)
    with pytest.raises(TypeError, match=r"OneToMany with feedback=True takes x as a pair"):
        otm(rng.standard_normal((2, 3)))
    with pytest.raises(ValueError, match=r"targets ids must lie in \[0, 5\), got values from 0 to 5"):
        otm((rng.standard_normal((2, 3)), np.array([[0, 1, 2, 5]] * 2)))
    with pytest.raises(ValueError, match=r"x must have 2 dimensions, got shape \(2, 3, 1\)"):
        _one_to_many(LSTM, "first", False)(rng.standard_normal((2, 3, 1)))
    with pytest.raises(ValueError, match=r"initial_state must be None with input_mode='state'"):
        _one_to_many(LSTM, "state", True)((rng.standard_normal((2, 3)), np.zeros((2, 4), dtype=np.int64)),
                                          initial_state=[np.zeros((2, 4))] * 2)


# =========================================================================== training end to end
PAD, START, END, DIGIT0 = 0, 1, 2, 3


def _reverse_batch(rng, batch, max_len=5):
    lengths = rng.integers(2, max_len + 1, size=batch)
    source = np.zeros((batch, max_len), dtype=np.int64)
    target = np.zeros((batch, max_len + 1), dtype=np.int64)
    for b, n in enumerate(lengths):
        digits = rng.integers(DIGIT0, DIGIT0 + 10, size=n)
        source[b, :n], target[b, :n], target[b, n] = digits, digits[::-1], END
    return source, target


@pytest.mark.slow
def test_seq2seq_learns_to_reverse_digit_sequences():
    V = DIGIT0 + 10
    encoder = Sequential([Embedding(V, 16, mask_zero=True, seed=0), LSTM(32, return_state=True, seed=1)])
    decoder = Sequential([Embedding(V, 16, seed=2), LSTM(32, return_sequences=True, return_state=True, seed=3)])
    model = Seq2Seq(encoder, decoder, Dense(V, seed=4), start_id=START, end_id=END, pad_id=PAD)
    loss, opt = rnnlab.losses.get("cross_entropy"), rnnlab.optim.get("adam", lr=0.02)
    rng = np.random.default_rng(0)
    for _ in range(400):
        source, target = _reverse_batch(rng, 32)
        model.zero_grad()
        loss(model((source, target), training=True), target, mask=model.output_mask)
        model.backward(loss.backward())
        rnnlab.optim.clip_grad_norm(model, 5.0)
        opt.step(model)
    source, target = _reverse_batch(np.random.default_rng(99), 300)
    decoded = model.generate(source, max_len=target.shape[1])
    padded = np.zeros_like(target)
    padded[:, :decoded.shape[1]] = decoded
    exact = np.mean((padded == target).all(axis=1))
    assert exact > 0.9, f"only {exact:.1%} of unseen digit strings reversed exactly"


@pytest.mark.slow
@pytest.mark.parametrize("mode, feedback", [("first", False), ("every", False), ("state", True)])
def test_one_to_many_learns_a_sequence_per_class(mode, feedback):
    melodies = np.array([[0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [5, 5, 0, 0, 5]])  # (classes, T)
    model = OneToMany(LSTM(24, return_sequences=True, return_state=feedback, seed=0), Dense(6, seed=1), 5,
                      input_mode=mode, feedback=feedback, seed=2)
    loss, opt = rnnlab.losses.get("cross_entropy"), rnnlab.optim.get("adam", lr=0.02)
    rng = np.random.default_rng(0)

    def batch(n):
        labels = rng.integers(0, 3, n)
        return (np.eye(3, dtype=np.float32)[labels] + 0.1 * rng.standard_normal((n, 3)).astype(np.float32),
                melodies[labels])

    for _ in range(150):
        x, targets = batch(32)
        model.zero_grad()
        loss(model((x, targets) if feedback else x, training=True), targets)
        model.backward(loss.backward())
        opt.step(model)
    x, targets = batch(100)
    np.testing.assert_array_equal(model.generate(x), targets)
