"""Regularisation (issue 17) against central finite differences in float64, with the masks fixed.

``gradcheck(..., training=True)`` draws every dropout mask in its first call and reuses them in every
later one, so the function differentiated is the layer with those masks. Beside the gradients: the
documented forward semantics (Keras 3's: ``x_t * m_x`` before ``U``, ``h_{t-1} * m_h`` before ``W``
only), inference equal to the layer without dropout, and the masks' statistics.
"""

import numpy as np
import pytest
from test_layers_gradcheck import CELLS, F64, FAMILIES, TOL, B, D, H, make_layer, mask_of, random_states, randomize

from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.gradcheck import gradcheck
from rnnlab.nn.layers import Dense, Embedding, LockedDropout
from rnnlab.nn.sequential import Sequential

pytestmark = pytest.mark.usefixtures("poison_uninitialised_memory", "kernel_backend")

DROPOUTS = {
    "dropout": {"dropout": 0.4},
    "recurrent_dropout": {"recurrent_dropout": 0.4},
    "both": {"dropout": 0.4, "recurrent_dropout": 0.4},
    "weight_dropout": {"weight_dropout": 0.4},
    "all": {"dropout": 0.4, "recurrent_dropout": 0.4, "weight_dropout": 0.4},
}
MASK_NAMES = {"dropout": {"input"}, "recurrent_dropout": {"recurrent"}, "both": {"input", "recurrent"},
              "weight_dropout": {"weight"}, "all": {"input", "recurrent", "weight"}}


def assert_training_gradcheck(module, x, *, mask=None, initial_state=None):
    report = gradcheck(module, x, mask=mask, initial_state=initial_state, training=True)
    expected = set(module.params) | {"x"} | {f"initial_state.{i}" for i in range(len(initial_state or ()))}
    assert set(report.errors) == expected, f"checked {sorted(report.errors)}, expected {sorted(expected)}"
    failed = {name: err for name, err in report.errors.items() if not err < TOL}
    assert not failed, f"relative error >= {TOL} for {sorted(failed)}:\n{report}"
    vacuous = [name for name, g in module.grads.items() if not np.any(g)]
    assert not vacuous, f"parameters with an all-zero gradient (nothing was checked): {vacuous}"
    return report


@pytest.mark.parametrize("option, mask_kind", [(o, None) for o in DROPOUTS] + [(o, "mixed") for o in DROPOUTS]
                         + [("all", "batch_gap")])
@pytest.mark.parametrize("cell", FAMILIES)
def test_dropout_gradients(cell, option, mask_kind, rng):
    layer = make_layer(cell, return_sequences=True, return_state=True, **DROPOUTS[option])
    x = rng.standard_normal((B, 5, D))
    assert_training_gradcheck(layer, x, mask=None if mask_kind is None else mask_of(mask_kind),
                              initial_state=random_states(layer, rng))
    assert set(layer.dropout_masks) == MASK_NAMES[option]


@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
@pytest.mark.parametrize("cell", FAMILIES)
def test_dropout_gradients_go_backwards(cell, return_sequences, rng):
    layer = make_layer(cell, return_sequences=return_sequences, go_backwards=True, **DROPOUTS["all"])
    x = rng.standard_normal((B, 5, D))
    assert_training_gradcheck(layer, x, mask=mask_of("mixed"))


@pytest.mark.parametrize("cell", FAMILIES)
def test_dropout_gradients_bidirectional(cell, rng):
    cls, kwargs = CELLS[cell]
    layer = Bidirectional(cls(H, input_size=D, dtype=F64, seed=3, return_sequences=True, **kwargs,
                              **DROPOUTS["all"]))
    randomize(layer)
    x = rng.standard_normal((B, 5, D))
    assert_training_gradcheck(layer, x, mask=mask_of("right"))
    f, b = layer.forward_layer.dropout_masks, layer.backward_layer.dropout_masks
    assert not np.array_equal(f["recurrent"], b["recurrent"]) or not np.array_equal(f["input"], b["input"])


@pytest.mark.parametrize("cell", FAMILIES)
def test_dropout_stateful_fresh_mask_per_window(cell, rng):
    """Truncated BPTT: a stateful layer draws new masks in every call (one per window), and each call's
    gradients are exact for its own masks."""
    layer = make_layer(cell, return_sequences=True, stateful=True, **DROPOUTS["all"])
    x = rng.standard_normal((B, 4, D))
    layer(x, training=True)  # the first window: the state is now carried
    first = {k: v.copy() for k, v in layer.dropout_masks.items()}
    assert_training_gradcheck(layer, x)
    assert any(not np.array_equal(first[k], layer.dropout_masks[k]) for k in first)


def test_dropout_gradients_single_step(rng):
    layer = make_layer("lstm-tanh", **DROPOUTS["all"])
    assert_training_gradcheck(layer, rng.standard_normal((B, 1, D)), initial_state=random_states(layer, rng))


@pytest.mark.parametrize("cell", FAMILIES)
def test_model_with_every_dropout_gradients(cell, rng):
    """Embedding dropout, variational dropout in and across a stack of two layers (locked dropout between
    them) and before the output layer: every parameter's gradient with all the masks fixed."""
    cls, kwargs = CELLS[cell]
    model = Sequential([
        Embedding(7, D, dropout=0.3, seed=0, dtype=F64),
        cls(H, seed=1, dtype=F64, return_sequences=True, dropout=0.3, recurrent_dropout=0.3, weight_dropout=0.3,
            **kwargs),
        LockedDropout(0.3, seed=2, dtype=F64),
        cls(H, seed=3, dtype=F64, return_sequences=True, dropout=0.3, recurrent_dropout=0.3, **kwargs),
        LockedDropout(0.3, seed=4, dtype=F64),
        Dense(4, seed=5, dtype=F64),
    ])
    ids = np.array([[1, 2, 3, 1, 4], [5, 6, 1, 2, 0], [3, 3, 4, 5, 6]])
    model.build((None, 5))
    randomize(model)
    report = gradcheck(model, ids, training=True)
    assert set(report.errors) == set(model.params)
    failed = {name: err for name, err in report.errors.items() if not err < TOL}
    assert not failed, f"relative error >= {TOL} for {sorted(failed)}:\n{report}"
    assert all(m.dropout_masks for m in model.layers[:-1])


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("cell", FAMILIES)
def test_tied_model_gradients(cell, training):
    """Weight tying: one parameter E, its gradient the sum of the embedding's and the output layer's uses
    (with every dropout of the model on, and its masks fixed, in training)."""
    cls, kwargs = CELLS[cell]
    rates = {"dropout": 0.3, "recurrent_dropout": 0.3} if training else {}
    emb = Embedding(7, H, dropout=0.3 if training else 0.0, seed=0, dtype=F64)
    model = Sequential([emb, cls(H, seed=1, dtype=F64, return_sequences=True, **kwargs, **rates),
                        Dense(7, tie=emb, seed=2, dtype=F64)])
    ids = np.array([[1, 2, 3, 1, 4], [5, 6, 1, 2, 0], [3, 3, 4, 5, 6]])
    model.build((None, 5))
    randomize(model)
    report = gradcheck(model, ids, training=training)
    assert set(report.errors) == set(model.params) and "0.E" in report.errors
    failed = {name: err for name, err in report.errors.items() if not err < TOL}
    assert not failed, f"relative error >= {TOL} for {sorted(failed)}:\n{report}"


@pytest.mark.parametrize("cell", ["lstm-tanh", "gru-reset_after", "gru-reset_before"])
def test_chrono_initialised_layer_gradients(cell, rng):
    """Chrono only sets initial biases; the layer it gives (large forget/update biases) checks as any other."""
    cls, kwargs = CELLS[cell]
    layer = cls(H, input_size=D, dtype=F64, seed=0, bias_initializer="chrono:50", return_sequences=True,
                **kwargs, **DROPOUTS["all"])
    for name in ("U", "W"):
        layer.params[name][...] = 0.5 * rng.standard_normal(layer.params[name].shape)
    assert_training_gradcheck(layer, rng.standard_normal((B, 5, D)), initial_state=random_states(layer, rng))


@pytest.mark.parametrize("cell", CELLS)
def test_every_cell_option_with_every_dropout(cell, rng):
    """Every activation and form of every cell (relu, sigmoid, linear Elman; relu-candidate LSTM; both GRUs)
    with input, recurrent and weight dropout together, under a padding mask."""
    layer = make_layer(cell, return_sequences=True, **DROPOUTS["all"])
    assert_training_gradcheck(layer, rng.standard_normal((B, 5, D)), mask=mask_of("gap"),
                              initial_state=random_states(layer, rng))
