"""Bad input to the core layers: every error names the argument, what it got and what it expected.

Each test asserts the exception type and, with ``pytest.raises(match=...)``, both the argument's name
and the received value or shape, so a message that drops either (or an exception of the wrong type)
fails.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.layers import Dense, Dropout, Embedding, OneHot
from rnnlab.nn.recurrent import GRU, LSTM, SimpleRNN
from rnnlab.nn.sequential import Sequential

B, T, D, H = 2, 3, 4, 5

# Every model that reads a float (B, T, D) sequence, built lazily (input_size inferred) unless noted.
SEQUENCE_MODELS = {
    "SimpleRNN": lambda **kw: SimpleRNN(H, **kw),
    "LSTM": lambda **kw: LSTM(H, **kw),
    "GRU": lambda **kw: GRU(H, **kw),
    "GRU-v1": lambda **kw: GRU(H, reset_after=False, **kw),
    "Bidirectional": lambda **kw: Bidirectional(LSTM(H, **kw)),
    "Sequential": lambda **kw: Sequential([GRU(H, **{"return_sequences": True, **kw}), Dense(2)]),
}
RECURRENT = {k: SEQUENCE_MODELS[k] for k in ("SimpleRNN", "LSTM", "GRU", "GRU-v1")}



@pytest.fixture
def x(rng):
    return rng.standard_normal((B, T, D)).astype(np.float32)


def re_shape(shape) -> str:
    """A regex matching ``str(shape)`` literally, e.g. ``\\(2, 3\\)``."""
    return re.escape(str(tuple(shape)))


def params_of(models):
    return pytest.mark.parametrize("make", list(models.values()), ids=list(models))


# ---------------------------------------------------------------------------- the input sequence
@params_of(SEQUENCE_MODELS)
@pytest.mark.parametrize("shape", [(B, T), (B, T, D, 1), (D,)], ids=["rank2", "rank4", "rank1"])
def test_wrong_rank_names_x_and_its_shape(make, shape):
    with pytest.raises(ValueError, match=rf"x must have 3 dimensions, got shape {re_shape(shape)}"):
        make()(np.zeros(shape, np.float32))


@params_of(SEQUENCE_MODELS)
def test_wrong_feature_size_names_x_expected_and_received(make, x):
    model = make(input_size=D + 1)
    with pytest.raises(ValueError, match=rf"x must have {D + 1} features .*got shape \({B}, {T}, {D}\)"):
        model(x)


@params_of(SEQUENCE_MODELS)
def test_feature_size_change_after_the_first_call(make, x):
    model = make()
    model(x)
    with pytest.raises(ValueError, match=rf"x must have {D} features .*got shape \({B}, {T}, {D + 2}\)"):
        model(np.zeros((B, T, D + 2), np.float32))


@params_of(SEQUENCE_MODELS)
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.complex128, bool])
def test_non_float_input_is_a_type_error_naming_the_dtype(make, dtype):
    with pytest.raises(TypeError, match=rf"x must be a float array, got dtype {np.dtype(dtype).name}"):
        make()(np.ones((B, T, D), dtype=dtype))


def test_integer_input_hints_at_embedding():
    with pytest.raises(TypeError, match=r"x must be a float array, got dtype int64.*Embedding"):
        SimpleRNN(H)(np.ones((B, T, D), dtype=np.int64))


@params_of(SEQUENCE_MODELS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_names_x_and_the_first_bad_index(make, x, bad):
    x[1, 2, 3] = bad
    with pytest.raises(ValueError, match=r"x contains NaN or inf \(first at index \(1, 2, 3\)\)"):
        make()(x)


@params_of(SEQUENCE_MODELS)
def test_zero_time_steps(make):
    with pytest.raises(ValueError, match=rf"x must have at least one time step, got shape \({B}, 0, {D}\)"):
        make()(np.zeros((B, 0, D), np.float32))


@params_of(SEQUENCE_MODELS)
def test_zero_batch(make):
    with pytest.raises(ValueError, match=rf"x must have at least one sequence in the batch, got shape \(0, {T}, {D}\)"):
        make()(np.zeros((0, T, D), np.float32))


@params_of(SEQUENCE_MODELS)
def test_zero_features(make):
    # the input's shape, not an argument the caller never passed (input_size)
    with pytest.raises(ValueError, match=rf"needs inputs with at least one feature on their last axis; got input "
                                         rf"shape \({B}, {T}, 0\)"):
        make()(np.zeros((B, T, 0), np.float32))


# ---------------------------------------------------------------------------- masks
@params_of(SEQUENCE_MODELS)
@pytest.mark.parametrize("shape", [(B, T + 1), (B + 1, T), (B,), (B, T, 1)])
def test_mask_shape_mismatch_names_expected_and_received_shape(make, x, shape):
    with pytest.raises(ValueError,
                       match=rf"mask must have shape \(batch, timesteps\) = \({B}, {T}\), got {re_shape(shape)}"):
        make()(x, mask=np.ones(shape, dtype=bool))


@params_of(SEQUENCE_MODELS)
@pytest.mark.parametrize("value", [2, 0.5, -1])
def test_mask_values_other_than_0_1_name_the_value(make, x, value):
    mask = np.ones((B, T), dtype=np.asarray(value).dtype)
    mask[1, 1] = value
    with pytest.raises(ValueError, match=rf"mask must hold only 0 and 1.*got .*{re.escape(str(value))}"):
        make()(x, mask=mask)


@params_of(SEQUENCE_MODELS)
def test_mask_values_other_than_0_1_are_rejected(make, x):
    mask = np.ones((B, T))
    mask[0, 0] = 2.0
    with pytest.raises(ValueError, match=r"mask must hold only 0 and 1"):
        make()(x, mask=mask)


@params_of(SEQUENCE_MODELS)
def test_mask_of_strings_is_a_type_error(make, x):
    with pytest.raises(TypeError, match=r"mask must be a boolean or 0/1 array, got dtype <U1"):
        make()(x, mask=np.full((B, T), "a"))


# ---------------------------------------------------------------------------- backward
BACKWARD_BEFORE_FORWARD = {
    **{k: v for k, v in SEQUENCE_MODELS.items()},
    "Dense": lambda: Dense(3),
    "Embedding": lambda: Embedding(7, 3),
    "Dropout": lambda: Dropout(0.5),
}


@pytest.mark.parametrize("make", list(BACKWARD_BEFORE_FORWARD.values()), ids=list(BACKWARD_BEFORE_FORWARD))
def test_backward_before_forward(make):
    model = make()
    with pytest.raises(ValueError, match=r"\w+\.backward was called before forward"):
        model.backward(np.zeros((B, H), np.float32))


@pytest.mark.parametrize("return_sequences", [False, True])
@params_of(SEQUENCE_MODELS)
def test_dy_of_wrong_shape_names_dy_expected_and_received(make, x, return_sequences):
    model = make(return_sequences=return_sequences)
    y = model(x)
    bad = y.shape[:-1] + (y.shape[-1] + 1,)
    with pytest.raises(ValueError, match=rf"dy must have the output's shape {re_shape(y.shape)}, got {re_shape(bad)}"):
        model.backward(np.zeros(bad, np.float32))


@params_of(RECURRENT)
def test_dy_non_float_and_non_finite(make, x):
    model = make()
    model(x)
    with pytest.raises(TypeError, match=r"dy must be a float array, got dtype int64"):
        model.backward(np.zeros((B, H), np.int64))
    dy = np.zeros((B, H), np.float32)
    dy[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"dy contains NaN or inf \(first at index \(1, 0\)\)"):
        model.backward(dy)


@params_of(RECURRENT)
def test_state_gradient_of_wrong_shape(make, x):
    model = make(return_state=True)
    model(x)
    with pytest.raises(ValueError, match=rf"gradient of state h must have shape \({B}, {H}\), got \({B}, {H + 1}\)"):
        model.backward(np.zeros((B, H), np.float32), np.zeros((B, H + 1), np.float32))


@params_of(RECURRENT)
def test_too_many_state_gradients(make, x):
    model = make(return_state=True)
    model(x)
    n = len(model.state_names)
    with pytest.raises(ValueError, match=rf"backward takes at most {n} state gradient\(s\).*got {n + 1}"):
        model.backward(np.zeros((B, H), np.float32), *[np.zeros((B, H), np.float32)] * (n + 1))


@pytest.mark.parametrize("make,ids,dy_shape,want", [
    (lambda: Dense(3), None, (B, T, 4), (B, T, 3)),
    (lambda: Embedding(7, 3), np.ones((B, T), int), (B, T, 4), (B, T, 3)),
])
def test_dy_of_wrong_shape_dense_embedding(make, ids, dy_shape, want, x):
    model = make()
    model(x if ids is None else ids)
    with pytest.raises(ValueError,
                       match=rf"dy must have (the output's )?shape {re_shape(want)}, got {re_shape(dy_shape)}"):
        model.backward(np.zeros(dy_shape, np.float32))


@pytest.mark.parametrize("training", [True, False])
def test_dy_of_wrong_shape_dropout(x, training):
    layer = Dropout(0.3, seed=0)
    layer(x, training=training)
    with pytest.raises(ValueError,
                       match=rf"dy must have (the output's )?shape \({B}, {T}, {D}\), got \({B}, {T}, {D + 1}\)"):
        layer.backward(np.zeros((B, T, D + 1), np.float32))


# ---------------------------------------------------------------------------- initial state
@params_of(RECURRENT)
def test_wrong_initial_state_count(make, x):
    model = make()
    n = len(model.state_names)
    given = [np.zeros((B, H), np.float32)] * (n + 1)
    with pytest.raises(ValueError, match=rf"initial_state must be {n} array\(s\) .*\({B}, {H}\), got {n + 1} arrays"):
        model(x, initial_state=given)


@params_of(RECURRENT)
def test_wrong_initial_state_type(make, x):
    with pytest.raises(ValueError, match=r"initial_state must be .*got dict"):
        make()(x, initial_state={"h": np.zeros((B, H))})


@params_of(RECURRENT)
@pytest.mark.parametrize("shape", [(B, H + 1), (B + 1, H), (H,)])
def test_wrong_initial_state_shape(make, x, shape):
    model = make()
    states = [np.zeros((B, H), np.float32) for _ in model.state_names]
    states[-1] = np.zeros(shape, np.float32)
    name = model.state_names[-1]
    expected = rf"initial_state \({name}\) must have shape \(batch, hidden_size\) = \({B}, {H}\), got {re_shape(shape)}"
    with pytest.raises(ValueError, match=expected):
        model(x, initial_state=states)


@params_of(RECURRENT)
def test_initial_state_non_float_and_non_finite(make, x):
    model = make()
    n = len(model.state_names)
    with pytest.raises(TypeError, match=r"initial_state \(h\) must be a float array, got dtype int64"):
        model(x, initial_state=[np.zeros((B, H), np.int64)] * n)
    bad = np.zeros((B, H), np.float32)
    bad[0, 4] = np.inf
    with pytest.raises(ValueError, match=r"initial_state \(h\) contains NaN or inf \(first at index \(0, 4\)\)"):
        model(x, initial_state=[bad] + [np.zeros((B, H), np.float32)] * (n - 1))


def test_bidirectional_initial_state_count_names_the_count(x):
    layer = Bidirectional(LSTM(H))
    with pytest.raises(ValueError, match=r"initial_state of a Bidirectional layer must be 4 arrays.*got 1 array"):
        layer(x, initial_state=[np.zeros((B, H), np.float32)])


def test_bidirectional_initial_state_count_is_rejected(x):
    with pytest.raises(ValueError, match=r"initial_state of a Bidirectional layer must be 4 arrays"):
        Bidirectional(LSTM(H))(x, initial_state=[np.zeros((B, H), np.float32)] * 3)


def test_bidirectional_initial_state_shape_is_checked_per_direction(x):
    states = [np.zeros((B, H), np.float32)] * 3 + [np.zeros((B, H + 2), np.float32)]
    with pytest.raises(ValueError,
                       match=rf"initial_state \(c\) must have shape .*= \({B}, {H}\), got \({B}, {H + 2}\)"):
        Bidirectional(LSTM(H))(x, initial_state=states)


def test_sequential_initial_state_goes_to_the_first_recurrent_layer(x):
    model = Sequential([Dense(3), LSTM(H), Dense(1)])
    with pytest.raises(ValueError, match=r"initial_state must be 2 array\(s\) \(h, c\).*got 1 arrays"):
        model(x, initial_state=[np.zeros((B, H), np.float32)])


def test_sequential_initial_state_without_a_recurrent_layer(x):
    with pytest.raises(ValueError, match=r"initial_state was given but the Sequential has no recurrent layer"):
        Sequential([Dense(1)])(x, initial_state=[np.zeros((B, 1), np.float32)])


# ---------------------------------------------------------------------------- stateful
STATEFUL = {
    "SimpleRNN": lambda: SimpleRNN(H, stateful=True),
    "LSTM": lambda: LSTM(H, stateful=True),
    "GRU": lambda: GRU(H, stateful=True),
    "Bidirectional": lambda: Bidirectional(GRU(H, stateful=True)),
    "Sequential": lambda: Sequential([LSTM(H, stateful=True), Dense(1)]),
}


@pytest.mark.parametrize("make", list(STATEFUL.values()), ids=list(STATEFUL))
def test_stateful_batch_size_change_names_both_sizes(make, x):
    model = make()
    model(x)
    with pytest.raises(ValueError,
                       match=rf"stateful \w+ carries state for batch size {B}, got a batch of {B + 1}.*reset_state"):
        model(np.zeros((B + 1, T, D), np.float32))
    model.reset_state()
    assert model(np.zeros((B + 1, T, D), np.float32)).shape[0] == B + 1


# ---------------------------------------------------------------------------- constructor arguments
SIZE_ARGUMENTS = [
    ("SimpleRNN", lambda v: SimpleRNN(v), "hidden_size"),
    ("LSTM", lambda v: LSTM(v), "hidden_size"),
    ("GRU", lambda v: GRU(v), "hidden_size"),
    ("SimpleRNN.input_size", lambda v: SimpleRNN(3, input_size=v), "input_size"),
    ("Dense", lambda v: Dense(v), "units"),
    ("Dense.input_size", lambda v: Dense(2, input_size=v), "input_size"),
    ("Embedding.vocab_size", lambda v: Embedding(v, 3), "vocab_size"),
    ("Embedding.dim", lambda v: Embedding(5, v), "dim"),
    ("OneHot", lambda v: OneHot(v), "num_classes"),
]


BAD_SIZES = [  # value, exception, how the message shows it
    (0, ValueError, "0"),
    (-3, ValueError, "-3"),
    (2.5, TypeError, "float 2.5"),
    (True, TypeError, "bool True"),
    ("4", TypeError, "str '4'"),
    (None, TypeError, "NoneType None"),
]


@pytest.mark.parametrize("make,argument,value,exc,shown", [
    pytest.param(make, argument, value, exc, shown, id=f"{label}={value!r}")
    for label, make, argument in SIZE_ARGUMENTS
    for value, exc, shown in BAD_SIZES
    if not (value is None and argument == "input_size")  # None means "infer it from the first input"
])
def test_non_positive_or_non_int_sizes(make, argument, value, exc, shown):
    with pytest.raises(exc, match=rf"{argument} must be a positive int, got {re.escape(shown)}$"):
        make(value)


def test_numpy_integer_sizes_are_accepted():
    assert SimpleRNN(np.int64(3), input_size=np.int32(2)).count_params() == 3 * (2 + 3 + 1)


FLAG_ARGUMENTS = [
    *[pytest.param(lambda v, c=cls, f=flag: c(3, **{f: v}), flag, id=f"{cls.__name__}.{flag}")
      for cls in (SimpleRNN, LSTM, GRU) for flag in ("return_sequences", "return_state", "go_backwards", "stateful")],
    pytest.param(lambda v: GRU(3, reset_after=v), "reset_after", id="GRU.reset_after"),
    pytest.param(lambda v: Embedding(5, 3, mask_zero=v), "mask_zero", id="Embedding.mask_zero"),
    pytest.param(lambda v: OneHot(5, mask_zero=v), "mask_zero", id="OneHot.mask_zero"),
    pytest.param(lambda v: Dense(3, use_bias=v), "use_bias", id="Dense.use_bias"),
]


@pytest.mark.parametrize("make,flag", FLAG_ARGUMENTS)
@pytest.mark.parametrize("value,shown", [(1, "1"), ("yes", "'yes'"), (None, "None")])
def test_non_bool_flags(make, flag, value, shown):
    with pytest.raises(TypeError, match=rf"{flag} must be a bool, got {re.escape(shown)}"):
        make(value)


NAME_ARGUMENTS = [
    ("activation", lambda v: SimpleRNN(3, activation=v)),
    ("activation", lambda v: Dense(3, activation=v)),
    ("candidate_activation", lambda v: LSTM(3, candidate_activation=v)),
    ("merge_mode", lambda v: Bidirectional(SimpleRNN(3), merge_mode=v)),
    ("kernel_initializer", lambda v: SimpleRNN(3, kernel_initializer=v)),
    ("recurrent_initializer", lambda v: LSTM(3, recurrent_initializer=v)),
    ("bias_initializer", lambda v: GRU(3, bias_initializer=v)),
    ("kernel_initializer", lambda v: Dense(3, kernel_initializer=v)),
    ("bias_initializer", lambda v: Dense(3, bias_initializer=v)),
    ("embeddings_initializer", lambda v: Embedding(5, 3, embeddings_initializer=v)),
]


@pytest.mark.parametrize("argument,make", NAME_ARGUMENTS,
                         ids=[f"{i}-{a}" for i, (a, _) in enumerate(NAME_ARGUMENTS)])
@pytest.mark.parametrize("value", ["softsign", "Tanh", ""])
def test_unknown_names_list_the_choices_and_the_value(argument, make, value):
    with pytest.raises(ValueError, match=rf"{argument} must be one of .*; got {re.escape(repr(value))}"):
        make(value)


def test_unknown_activation_lists_the_known_ones():
    with pytest.raises(ValueError,
                       match=r"activation must be one of 'tanh', 'sigmoid', 'relu', 'linear'; got 'softmax'"):
        SimpleRNN(3, activation="softmax")


@pytest.mark.parametrize("spec,match", [
    ("uniform:abc", r"kernel_initializer 'uniform:abc': the scale after ':' must be a number"),
    ("uniform:-1", r"scale must be > 0, got -1"),
    ("normal:0", r"scale must be > 0, got 0"),
])
def test_malformed_scaled_initializer(spec, match):
    with pytest.raises(ValueError, match=match):
        SimpleRNN(3, kernel_initializer=spec)


@pytest.mark.parametrize("value,shown", [("one", "str 'one'"), (True, "bool True"), ([1.0], "list [1.0]")])
def test_lstm_forget_bias_must_be_a_number(value, shown):
    with pytest.raises(TypeError, match=rf"forget_bias must be a number or None, got {re.escape(shown)}"):
        LSTM(3, forget_bias=value)


@pytest.mark.parametrize("make", [lambda: SimpleRNN(3, dtype="int32"), lambda: Dense(3, dtype="int32"),
                                  lambda: Embedding(4, 3, dtype="int32"), lambda: Dropout(0.1, dtype="int32")])
def test_dtype_must_be_float32_or_float64(make):
    with pytest.raises(TypeError, match=r"dtype must be 'float32' or 'float64', got 'int32'"):
        make()


@pytest.mark.parametrize("make", [lambda s: SimpleRNN(3, seed=s), lambda s: Dense(3, seed=s),
                                  lambda s: Embedding(4, 3, seed=s)])
def test_seed_type(make):
    with pytest.raises(TypeError, match=r"seed must be an int, a numpy.random.Generator or None, got float 1.5"):
        make(1.5)


def test_bidirectional_needs_a_recurrent_layer():
    with pytest.raises(TypeError, match=r"layer must be a recurrent layer .*got Dense"):
        Bidirectional(Dense(3))


def test_sequential_layers_must_be_modules():
    with pytest.raises(TypeError, match=r"layers must be rnnlab modules, got int"):
        Sequential([SimpleRNN(3), 5])


def test_sequential_layers_must_be_a_list():
    with pytest.raises(TypeError, match=r"layers must be a list.*got SimpleRNN"):
        Sequential(SimpleRNN(3))


def test_sequential_return_state_only_last():
    with pytest.raises(ValueError,
                       match=r"only the last layer .*return_state=True; SimpleRNN at index 0 is followed by Dense"):
        Sequential([SimpleRNN(3, return_state=True), Dense(1)])


# ---------------------------------------------------------------------------- Dense
@pytest.mark.parametrize("shape", [(D,), ()])
def test_dense_rank(shape):
    with pytest.raises(ValueError, match=rf"x must have at least 2 dimensions .*got shape {re_shape(shape)}"):
        Dense(3)(np.zeros(shape, np.float32))


def test_dense_feature_size(x):
    with pytest.raises(ValueError,
                       match=rf"x must have {D + 1} features in its last axis, got shape \({B}, {T}, {D}\)"):
        Dense(3, input_size=D + 1)(x)


def test_dense_non_float_and_non_finite(x):
    with pytest.raises(TypeError, match=r"x must be a float array, got dtype int64"):
        Dense(3)(np.ones((B, D), np.int64))
    x[0, 1, 2] = np.nan
    with pytest.raises(ValueError, match=r"x contains NaN or inf \(first at index \(0, 1, 2\)\)"):
        Dense(3)(x)


# ---------------------------------------------------------------------------- Embedding / OneHot
@pytest.mark.parametrize("make", [lambda: Embedding(5, 3), lambda: OneHot(5)], ids=["Embedding", "OneHot"])
@pytest.mark.parametrize("ids,lo,hi", [([[1, 7]], 1, 7), ([[-1, 2]], -1, 2), ([[5, 0]], 0, 5)])
def test_ids_out_of_range(make, ids, lo, hi):
    with pytest.raises(ValueError, match=rf"x ids must lie in \[0, 5\), got values from {lo} to {hi}"):
        make()(np.array(ids))


@pytest.mark.parametrize("make", [lambda: Embedding(5, 3), lambda: OneHot(5)], ids=["Embedding", "OneHot"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, bool])
def test_float_ids(make, dtype):
    with pytest.raises(TypeError, match=rf"x must be integer token ids, got dtype {np.dtype(dtype).name}"):
        make()(np.ones((B, T), dtype=dtype))


@pytest.mark.parametrize("ids", [np.int64(3), np.zeros((0, T), int)], ids=["scalar", "empty"])
def test_embedding_empty_or_scalar_ids(ids):
    with pytest.raises(ValueError,
                       match=rf"x must be a non-empty array of token ids, got shape {re_shape(np.shape(ids))}"):
        Embedding(5, 3)(ids)


def test_sequential_embedding_rejects_float_ids():
    with pytest.raises(TypeError, match=r"x must be integer token ids, got dtype float64"):
        Sequential([Embedding(5, 3), LSTM(3), Dense(1)])(np.zeros((B, T)))


# ---------------------------------------------------------------------------- Dropout
@pytest.mark.parametrize("rate,exc,shown", [
    (1.0, ValueError, "1.0"), (1.5, ValueError, "1.5"), (-0.1, ValueError, "-0.1"), (float("nan"), ValueError, "nan"),
    ("0.5", TypeError, "str '0.5'"), (True, TypeError, "bool True"), (None, TypeError, "NoneType None"),
])
def test_dropout_rate_outside_0_1(rate, exc, shown):
    with pytest.raises(exc, match=rf"rate must be (in \[0, 1\)|a number), got {re.escape(shown)}$"):
        Dropout(rate)


def test_dropout_rate_0_is_allowed(x):
    np.testing.assert_array_equal(Dropout(0.0)(x, training=True), x)


# ---------------------------------------------------------------------------- set_weights
def test_set_weights_names_the_parameter_and_both_shapes():
    layer = SimpleRNN(3, input_size=4)
    weights = {k: np.zeros_like(v) for k, v in layer.params.items()}
    weights["b"] = np.zeros(4)
    with pytest.raises(ValueError, match=r"weight 'b' must have shape \(3,\), got \(4,\)"):
        layer.set_weights(weights)


def test_set_weights_lists_missing_and_unexpected_names():
    layer = SimpleRNN(3, input_size=4)
    weights = {"U": np.zeros((3, 4)), "W": np.zeros((3, 3)), "bias": np.zeros(3)}
    with pytest.raises(ValueError, match=r"missing \['b'\], unexpected \['bias'\]"):
        layer.set_weights(weights)



@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("size", [10, 1 << 14, 100_003])
def test_all_finite_finds_every_non_finite_entry(dtype, size):
    """Large arrays go through a dot product first: a NaN or an infinity anywhere (the first entry, the
    vector loop's tail) must still be found, and finite entries whose squares overflow are finite."""
    from rnnlab._validation import all_finite

    x = np.random.default_rng(0).standard_normal(size).astype(dtype)
    assert all_finite(x) and all_finite(x.reshape(-1, 1)[::2])
    for position in (0, size // 2, size - 1, size - 3):
        for bad in (np.nan, np.inf, -np.inf):
            y = x.copy()
            y[position] = bad
            assert not all_finite(y), (position, bad)
    with np.errstate(over="raise"):
        assert all_finite(np.full(size, np.finfo(dtype).max, dtype))


def test_dense_dy_with_nan_in_a_large_gradient():
    layer = Dense(1000, input_size=3)
    layer(np.ones((4, 5, 3), np.float32))
    dy = np.zeros((4, 5, 1000), np.float32)
    dy[3, 4, 999] = np.nan
    with pytest.raises(ValueError, match=r"dy contains NaN or inf \(first at index \(3, 4, 999\)\)"):
        layer.backward(dy)
