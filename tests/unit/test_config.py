"""``get_config`` / ``from_config`` round trips (Keras ``run_class_serialization_test``).

For every layer, Bidirectional and Sequential: the config survives ``json.dumps``/``json.loads``,
the rebuilt module reports the same config, and once the weights are copied with ``set_weights``
it computes exactly the same outputs (and gradients).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.layers import Dense, Dropout, Embedding, OneHot
from rnnlab.nn.module import registered
from rnnlab.nn.recurrent import GRU, LSTM, SimpleRNN
from rnnlab.nn.sequential import Sequential

B, T, D = 3, 5, 4
IDS = np.array([[1, 2, 3, 0, 0], [4, 4, 1, 2, 0], [5, 1, 0, 0, 0]])

CASES = {
    "SimpleRNN": lambda: SimpleRNN(4, seed=0),
    "SimpleRNN-relu-backwards": lambda: SimpleRNN(4, activation="relu", return_sequences=True, go_backwards=True,
                                                  kernel_initializer="uniform:0.1", recurrent_initializer="identity",
                                                  seed=3, dtype="float64", name="irnn"),
    "LSTM": lambda: LSTM(3, seed=1),
    "LSTM-options": lambda: LSTM(3, candidate_activation="relu", forget_bias=2.0, return_sequences=True,
                                 return_state=True, bias_initializer="normal:0.1", seed=2, dtype="float64"),
    "LSTM-no-forget-bias": lambda: LSTM(2, forget_bias=None, stateful=True, seed=4),
    "GRU": lambda: GRU(3, seed=5),
    "GRU-v1": lambda: GRU(3, reset_after=False, return_sequences=True, kernel_initializer="pytorch",
                          recurrent_initializer="pytorch", bias_initializer="pytorch", seed=6, dtype="float64"),
    "Bidirectional-concat": lambda: Bidirectional(LSTM(3, return_sequences=True, seed=7)),
    "Bidirectional-sum": lambda: Bidirectional(GRU(2, seed=8), merge_mode="sum"),
    "Bidirectional-mul": lambda: Bidirectional(SimpleRNN(2, return_sequences=True, seed=9), merge_mode="mul",
                                               name="bi"),
    "Bidirectional-ave": lambda: Bidirectional(LSTM(2, return_state=True, seed=10, dtype="float64"), merge_mode="ave"),
    "Bidirectional-None": lambda: Bidirectional(GRU(2, return_sequences=True, reset_after=False, seed=11),
                                                merge_mode=None),
    "Dense": lambda: Dense(3, seed=12),
    "Dense-options": lambda: Dense(2, "tanh", input_size=D, use_bias=False, kernel_initializer="orthogonal",
                                   seed=13, dtype="float64", name="head"),
    "Dropout": lambda: Dropout(0.25, seed=14),
    "Sequential": lambda: Sequential([LSTM(3, return_sequences=True, seed=15), Dropout(0.1, seed=16),
                                      Bidirectional(GRU(2, seed=17), merge_mode="ave"), Dense(1, "sigmoid", seed=18)],
                                     name="stack"),
}
ID_CASES = {  # modules whose input is integer ids
    "Embedding": lambda: Embedding(6, 3, seed=19),
    "Embedding-options": lambda: Embedding(6, 2, mask_zero=True, embeddings_initializer="normal:0.2", seed=20,
                                           dtype="float64"),
    "OneHot": lambda: OneHot(6, mask_zero=True),
    "Sequential-ids": lambda: Sequential([Embedding(6, 3, mask_zero=True, seed=21),
                                          Bidirectional(LSTM(2, return_sequences=True, seed=22)), SimpleRNN(3, seed=23),
                                          Dense(2, seed=24)]),
}
ALL = {**CASES, **ID_CASES}


def input_for(name, rng):
    return IDS if name in ID_CASES else rng.standard_normal((B, T, D))


def flatten(out):
    """Outputs as a list of arrays (tuples from return_state, lists from merge_mode=None)."""
    if isinstance(out, np.ndarray):
        return [out]
    return [a for item in out for a in flatten(item)]


def round_trip(module):
    config = module.get_config()
    text = json.dumps(config)  # must be JSON-serialisable as is
    clone = registered(type(module).__name__).from_config(json.loads(text))
    return config, clone


@pytest.fixture(params=list(ALL), ids=list(ALL))
def built(request, rng):
    name = request.param
    module = ALL[name]()
    x = input_for(name, rng)
    module(x)  # builds it (infers input sizes)
    return name, module, x


def test_config_is_json_serialisable_and_survives_the_round_trip(built):
    _, module, _ = built
    config, clone = round_trip(module)
    assert type(clone) is type(module)
    assert clone.get_config() == config
    assert json.loads(json.dumps(config)) == config  # no tuples or NumPy scalars that JSON would change


def test_round_trip_with_copied_weights_gives_identical_outputs(built):
    _, module, x = built
    _, clone = round_trip(module)
    assert clone.dtype == module.dtype
    assert list(clone.params) == list(module.params)
    clone.set_weights({k: v.copy() for k, v in module.params.items()})
    if hasattr(module, "reset_state"):
        module.reset_state()
    expected = flatten(module(x))
    got = flatten(clone(x))
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


WITH_PARAMS = [name for name in ALL if name not in ("Dropout", "OneHot")]


@pytest.mark.parametrize("name", WITH_PARAMS)
def test_round_trip_gives_identical_gradients(name, rng):
    module = ALL[name]()
    x = input_for(name, rng)
    module(x)
    assert module.params
    _, clone = round_trip(module)
    clone.set_weights(module.params)
    grads = []
    for m in (module, clone):
        if hasattr(m, "reset_state"):
            m.reset_state()
        out = m(x)
        dy = [np.random.default_rng(0).standard_normal(o.shape) for o in flatten(out)]
        m.zero_grad()
        if isinstance(out, list):  # Bidirectional(merge_mode=None)
            m.backward(dy)
        else:
            m.backward(*dy)
        grads.append(m.grads)
    for key in grads[0]:
        np.testing.assert_array_equal(grads[1][key], grads[0][key])


def test_set_weights_copies_rather_than_aliases():
    a = LSTM(3, input_size=2, seed=0)
    b = LSTM.from_config(a.get_config())
    b.set_weights(a.params)
    b.params["W"][0, 0] += 1.0
    assert a.params["W"][0, 0] != b.params["W"][0, 0]


def test_unbuilt_layer_round_trips_and_builds_alike(rng):
    layer = GRU(3, seed=0)  # input_size not known yet
    config, clone = round_trip(layer)
    assert config["input_size"] is None and not clone.built
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(clone(x), layer(x))  # the int seed rebuilds the same weights


def test_seeded_dropout_round_trip_draws_the_same_masks(rng):
    layer = Dropout(0.5, seed=3)
    _, clone = round_trip(layer)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    np.testing.assert_array_equal(clone(x, training=True), layer(x, training=True))


def test_config_holds_the_constructor_arguments():
    config = LSTM(5, candidate_activation="relu", forget_bias=0.5, go_backwards=True, input_size=2,
                  recurrent_initializer="uniform:0.1", seed=9, dtype="float64").get_config()
    expected = {"hidden_size": 5, "input_size": 2, "go_backwards": True, "candidate_activation": "relu",
                "forget_bias": 0.5, "recurrent_initializer": "uniform:0.1", "seed": 9, "dtype": "float64"}
    assert {k: config[k] for k in expected} == expected
    bi = Bidirectional(SimpleRNN(2), merge_mode="sum").get_config()
    assert bi["merge_mode"] == "sum" and bi["layer"]["class_name"] == "SimpleRNN"
    seq = Sequential([Dense(1)], name="m").get_config()
    assert seq["name"] == "m" and [item["class_name"] for item in seq["layers"]] == ["Dense"]


def test_registry_knows_every_module_and_names_unknown_ones():
    for cls in (SimpleRNN, LSTM, GRU, Bidirectional, Dense, Dropout, Embedding, OneHot, Sequential):
        assert registered(cls.__name__) is cls
    with pytest.raises(ValueError, match=r"unknown module class 'Conv1D'; known: .*LSTM"):
        registered("Conv1D")
