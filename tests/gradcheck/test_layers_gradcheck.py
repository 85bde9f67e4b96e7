"""Every hand-written backward pass against central finite differences, in float64.

``rnnlab.gradcheck`` perturbs every entry of every parameter, of ``x`` and of the initial states, with
the loss ``L = sum(y * R)`` for a random ``R``; each quantity's norm-wise relative error must stay below
``TOL``. The parameters are redrawn from N(0, 0.5^2), biases included (zero biases would hide a bias
left out of a backward product, e.g. ``b_hn`` in the GRU's reset gradient).

Beyond the layers' gradients, the tests check what a finite-difference check of one call cannot see:
Dropout's training-mode backward (gradcheck runs in inference mode), stale state across training
iterations, accumulation over repeated backward calls, and the recorded ``grad_norms``.
"""

import numpy as np
import pytest

from rnnlab.nn import gradcheck
from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.gradcheck import numerical_gradient
from rnnlab.nn.layers import Dense, Dropout, Embedding
from rnnlab.nn.recurrent import GRU, LSTM, SimpleRNN
from rnnlab.nn.sequential import Sequential

# uninitialised buffers read NaN, so a bug that reads one fails every run, not at random (conftest.py)
pytestmark = pytest.mark.usefixtures("poison_uninitialised_memory", "kernel_backend")

TOL = 1e-6  # float64 central differences of a correct backward pass give ~1e-9
B, D, H = 3, 2, 3  # batch, features, units: small, so the whole file runs in seconds
F64 = "float64"

CELLS = {
    "rnn-tanh": (SimpleRNN, {"activation": "tanh"}),
    "rnn-relu": (SimpleRNN, {"activation": "relu"}),
    "rnn-sigmoid": (SimpleRNN, {"activation": "sigmoid"}),
    "rnn-linear": (SimpleRNN, {"activation": "linear"}),
    "lstm-tanh": (LSTM, {"candidate_activation": "tanh"}),
    "lstm-relu": (LSTM, {"candidate_activation": "relu"}),
    "gru-reset_after": (GRU, {"reset_after": True}),
    "gru-reset_before": (GRU, {"reset_after": False}),
}
FAMILIES = ["rnn-tanh", "lstm-tanh", "gru-reset_after", "gru-reset_before"]  # one per cell maths

# (B=3, T=5) masks, 1 = valid step
MASKS = {
    "right": [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]],
    "left": [[1, 1, 1, 1, 1], [0, 0, 1, 1, 1], [0, 0, 0, 0, 1]],
    "gap": [[1, 1, 0, 1, 1], [1, 0, 0, 0, 1], [1, 1, 1, 1, 1]],
    "batch_gap": [[1, 1, 0, 1, 1], [1, 0, 0, 1, 1], [1, 1, 0, 0, 0]],  # step 2 is padding in every row
    "empty_row": [[1, 1, 1, 1, 1], [0, 0, 0, 0, 0], [1, 1, 1, 0, 0]],
    "mixed": [[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 0, 1, 1, 1]],  # right, left and gap in one batch
}


def randomize(module, seed: int = 0, scale: float = 0.5) -> None:
    """Redraw every parameter, in place, from N(0, scale^2)."""
    rng = np.random.default_rng(1000 + seed)
    for _, p in module.named_parameters():
        p[...] = scale * rng.standard_normal(p.shape)


def make_layer(cell: str, seed: int = 0, **options):
    """A float64 recurrent layer of kind ``cell`` with random weights (the same for the same seed)."""
    cls, kwargs = CELLS[cell]
    layer = cls(H, input_size=D, dtype=F64, seed=seed, **kwargs, **options)
    # sigmoid' <= 1/4: at scale 0.5 the gradient reaching h_0 after 5 steps is ~1e-4 and its finite-difference
    # round-off alone is ~1e-6 of it; a larger scale keeps the signal well above the noise
    randomize(layer, seed, scale=1.5 if cell == "rnn-sigmoid" else 0.5)
    if cell == "rnn-relu":
        layer.params["b"] += 0.5  # keeps units alive, so no gradient is zero for the whole batch
    return layer


def make_bidirectional(cell: str, merge_mode="concat", seed: int = 0, **options):
    cls, kwargs = CELLS[cell]
    layer = Bidirectional(cls(H, input_size=D, dtype=F64, seed=seed, **kwargs, **options), merge_mode)
    randomize(layer, seed)
    return layer


def random_states(layer, rng, batch: int = B, copies: int = 1) -> list:
    """One random (batch, H) array per state tensor of ``layer`` (``copies`` times, for Bidirectional)."""
    return [0.5 * rng.standard_normal((batch, H)) for _ in range(copies * len(layer.state_names))]


def mask_of(kind: str) -> np.ndarray:
    return np.array(MASKS[kind], dtype=bool)


def assert_gradcheck(module, x, *, mask=None, initial_state=None, zero_grads=()):
    """Run ``gradcheck`` and require every parameter, ``x`` (if float) and initial state to be checked and pass.

    ``zero_grads`` names the parameters whose gradient is legitimately zero (e.g. ``W`` for one step from
    a zero state); every other one must be nonzero, or its check would be vacuous.
    """
    report = gradcheck(module, x, mask=mask, initial_state=initial_state)
    expected = set(module.params)
    if np.issubdtype(np.asarray(x).dtype, np.floating):
        expected.add("x")
    expected |= {f"initial_state.{i}" for i in range(0 if initial_state is None else len(initial_state))}
    assert set(report.errors) == expected, f"checked {sorted(report.errors)}, expected {sorted(expected)}"
    failed = {name: err for name, err in report.errors.items() if not err < TOL}
    assert not failed, f"relative error >= {TOL} for {sorted(failed)}:\n{report}"
    # gradcheck leaves the analytic gradients in module.grads; all zeros would make the check vacuous
    vacuous = [name for name, g in module.grads.items() if name not in zero_grads and not np.any(g)]
    assert not vacuous, f"parameters with an all-zero gradient (nothing was checked): {vacuous}"
    return report


fd_grad = numerical_gradient


# ---------------------------------------------------------------------------------------- one layer
@pytest.mark.parametrize("state", ["default", "given", "given+return_state"])
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "go_backwards"])
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
@pytest.mark.parametrize("T", [1, 5], ids=["T1", "T5"])
@pytest.mark.parametrize("cell", CELLS)
def test_recurrent_layer(cell, T, return_sequences, go_backwards, state, rng):
    layer = make_layer(cell, return_sequences=return_sequences, go_backwards=go_backwards,
                       return_state=state == "given+return_state")
    x = rng.standard_normal((B, T, D))
    initial_state = None if state == "default" else random_states(layer, rng)
    # one step from the zero state: W multiplies zeros, its gradient is zero
    assert_gradcheck(layer, x, initial_state=initial_state, zero_grads={"W"} if T == 1 and state == "default" else ())


@pytest.mark.parametrize("mask_kind", ["right", "left", "gap", "batch_gap", "empty_row"])
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "go_backwards"])
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
@pytest.mark.parametrize("cell", CELLS)
def test_recurrent_layer_with_mask(cell, return_sequences, go_backwards, mask_kind, rng):
    """``batch_gap`` (a step that is padding for every row) takes the loop's skip path, where GRU buffers read
    by ``accumulate_grads`` (``dgh``, ``rh``) were once left uninitialised."""
    # return_state and a given initial state: the state gradients must pass padded steps unchanged
    layer = make_layer(cell, return_sequences=return_sequences, go_backwards=go_backwards, return_state=True)
    x = rng.standard_normal((B, 5, D))
    assert_gradcheck(layer, x, mask=mask_of(mask_kind), initial_state=random_states(layer, rng))


@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
@pytest.mark.parametrize("cell", CELLS)
def test_stateful_second_call(cell, return_sequences, rng):
    """The second call of a stateful layer starts from the carried state, which is a constant for its gradient."""
    layer = make_layer(cell, stateful=True, return_sequences=return_sequences)
    x1, x2 = rng.standard_normal((2, 3, D)), rng.standard_normal((2, 4, D))
    layer(x1)
    carried = [s.copy() for s in layer.states]
    assert_gradcheck(layer, x2)
    for s, c in zip(layer.states, carried):  # gradcheck put the carried state back
        np.testing.assert_array_equal(s, c)

    # the checked gradient is that of the same layer started explicitly from the carried state
    twin = make_layer(cell, return_sequences=return_sequences)
    layer.zero_grad()
    y = layer(x2)
    R = rng.standard_normal(y.shape)
    dx = layer.backward(R)
    twin.zero_grad()
    np.testing.assert_allclose(twin(x2, initial_state=carried), y, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(twin.backward(R), dx, rtol=1e-12, atol=1e-14)
    for name, g in twin.grads.items():
        np.testing.assert_allclose(layer.grads[name], g, rtol=1e-12, atol=1e-14, err_msg=name)
    assert not np.allclose(twin(x2), y), "the second call did not use the carried state"


# ---------------------------------------------------------------------------------------- wrappers
@pytest.mark.parametrize("state", ["default", "given+return_state"])
@pytest.mark.parametrize("mask_kind", [None, "mixed"], ids=["no_mask", "mask"])
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None], ids=lambda m: f"merge_{m}")
@pytest.mark.parametrize("cell", FAMILIES)
def test_bidirectional(cell, merge_mode, return_sequences, mask_kind, state, rng):
    with_state = state == "given+return_state"
    layer = make_bidirectional(cell, merge_mode, return_sequences=return_sequences, return_state=with_state)
    x = rng.standard_normal((B, 5, D))
    mask = None if mask_kind is None else mask_of(mask_kind)
    initial_state = random_states(layer.forward_layer, rng, copies=2) if with_state else None
    assert_gradcheck(layer, x, mask=mask, initial_state=initial_state)


def _rnn_birnn_gru_dense():
    return Sequential([SimpleRNN(4, input_size=D, return_sequences=True, dtype=F64),
                       Bidirectional(LSTM(3, return_sequences=True, dtype=F64), "concat"),
                       GRU(3, reset_after=False, return_sequences=True, dtype=F64),
                       Dense(2, activation="tanh", dtype=F64)])


def _birnn_rnn_dense():
    return Sequential([Bidirectional(GRU(3, input_size=D, return_sequences=True, dtype=F64), "ave"),
                       SimpleRNN(4, activation="relu", return_sequences=True, dtype=F64),
                       Dense(2, dtype=F64)])


def _gru_lstm_last_dense():
    return Sequential([GRU(4, input_size=D, return_sequences=True, dtype=F64),
                       LSTM(3, dtype=F64),  # many-to-one
                       Dense(2, activation="sigmoid", dtype=F64)])


STACKS = {"rnn>birnn_lstm>gru>dense": _rnn_birnn_gru_dense, "birnn_gru>rnn>dense": _birnn_rnn_dense,
          "gru>lstm_last>dense": _gru_lstm_last_dense}


@pytest.mark.parametrize("masked", [False, True], ids=["no_mask", "mask"])
@pytest.mark.parametrize("stack", STACKS)
def test_stacked(stack, masked, rng):
    """Sequential of recurrent layers; the initial state goes to the first one and is checked too."""
    model = STACKS[stack]()
    model.build((None, 5, D))
    randomize(model)
    x = rng.standard_normal((B, 5, D))
    first = model.layers[0]
    first = first.forward_layer if isinstance(first, Bidirectional) else first
    copies = 2 if isinstance(model.layers[0], Bidirectional) else 1
    initial_state = [0.5 * rng.standard_normal((B, first.hidden_size)) for _ in range(copies * len(first.state_names))]
    assert_gradcheck(model, x, mask=mask_of("mixed") if masked else None, initial_state=initial_state)


def test_stacked_on_embedding_with_mask_zero(rng):
    """Token ids are integers, so only the parameters (the embedding table included) are checked."""
    model = Sequential([Embedding(7, 3, mask_zero=True, dtype=F64),
                        LSTM(4, return_sequences=True, dtype=F64),
                        Bidirectional(GRU(3, return_sequences=True, dtype=F64), "sum"),
                        Dense(2, dtype=F64)])
    model.build((None, 5))
    randomize(model)
    ids = np.array([[3, 1, 4, 1, 5], [2, 6, 5, 0, 0], [0, 0, 2, 6, 1]])  # right and left padding
    report = assert_gradcheck(model, ids)
    assert "x" not in report.errors
    # id 0 appears only at padded steps, which the LSTM skips: its embedding row gets no gradient
    np.testing.assert_array_equal(model.grads["0.E"][0], 0.0)


@pytest.mark.parametrize("shape", [(B, 4), (B, 5, 4)], ids=["vector", "per_step"])
@pytest.mark.parametrize("activation", [None, "linear", "tanh", "relu", "sigmoid"], ids=lambda a: f"act_{a}")
def test_dense(activation, shape, rng):
    layer = Dense(3, activation=activation, dtype=F64)
    layer.build(shape)
    randomize(layer)
    assert_gradcheck(layer, rng.standard_normal(shape))


# ---------------------------------------------------------------------------------------- dropout
def test_dropout_backward_against_a_fixed_mask(rng):
    """In training, ``y = x * m / (1 - rate)``; a fresh layer with the same seed redraws the same ``m``,
    so central differences of ``sum(y * R)`` are well defined and must equal ``backward(R)``."""
    rate, shape = 0.4, (B, 5, 4)
    x = rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)  # no zeros: y == 0 exactly where dropped
    R = rng.standard_normal(shape)

    layer = Dropout(rate, seed=7, dtype=F64)
    y = layer(x, training=True)
    keep = y != 0
    assert 0 < keep.mean() < 1, "the test needs both kept and dropped units"
    np.testing.assert_allclose(y, np.where(keep, x / (1 - rate), 0.0), rtol=1e-15)
    dx = layer.backward(R)
    np.testing.assert_allclose(dx, np.where(keep, R / (1 - rate), 0.0), rtol=1e-15)

    numeric = fd_grad(lambda a: float(np.sum(Dropout(rate, seed=7, dtype=F64)(a, training=True) * R)), x.copy())
    np.testing.assert_allclose(dx, numeric, rtol=1e-7, atol=1e-9)


def test_dropout_backward_follows_the_last_forward_call(rng):
    layer = Dropout(0.5, seed=3, dtype=F64)
    x = rng.uniform(0.5, 1.5, (4, 6))
    R = rng.standard_normal(x.shape)
    first = layer(x, training=True) != 0
    second = layer(x, training=True) != 0
    assert (first != second).any(), "two training calls drew the same mask"
    np.testing.assert_allclose(layer.backward(R), np.where(second, 2.0 * R, 0.0), rtol=1e-15)
    layer(x, training=False)  # inference: the identity, forward and backward
    np.testing.assert_array_equal(layer.backward(R), R)


# ---------------------------------------------------------------------------------------- repeated use
TWICE = FAMILIES + ["bidirectional-lstm"]


def _make_any(kind: str, **options):
    if kind == "bidirectional-lstm":
        return make_bidirectional("lstm-tanh", "concat", **options)
    return make_layer(kind, **options)


@pytest.mark.parametrize("kind", TWICE)
def test_two_training_iterations_then_gradcheck(kind, rng):
    """Forward, backward, SGD step twice (different batch and time sizes, with then without a mask), then a
    full gradcheck: a tape or state left over from an earlier call would show up here."""
    layer = _make_any(kind, return_sequences=True)
    batches = [(rng.standard_normal((B, 5, D)), mask_of("right")), (rng.standard_normal((2, 3, D)), None)]
    for x, mask in batches:
        weights = {k: p.copy() for k, p in layer.params.items()}
        layer.zero_grad()
        y = layer(x, mask=mask)
        R = rng.standard_normal(y.shape)
        layer.backward(R)
        twin = _make_any(kind, return_sequences=True)  # a layer that never saw an earlier call
        twin.set_weights(weights)
        twin.zero_grad()
        twin(x, mask=mask)
        twin.backward(R)
        for name, g in twin.grads.items():
            np.testing.assert_allclose(layer.grads[name], g, rtol=1e-12, atol=1e-14, err_msg=name)
        for name, p in layer.named_parameters():  # plain SGD, in place
            p -= 0.1 * layer.grads[name]
    assert_gradcheck(layer, rng.standard_normal((B, 4, D)), mask=mask_of("gap")[:, :4])


@pytest.mark.parametrize("kind", TWICE)
def test_backward_twice_accumulates(kind, rng):
    """Two backward calls for one forward call return the same ``dx`` and initial-state gradients and
    double the parameter gradients (they accumulate, as PyTorch's ``.grad``)."""
    layer = _make_any(kind, return_sequences=True, return_state=True)
    copies = 2 if kind.startswith("bidirectional") else 1
    inner = layer.forward_layer if copies == 2 else layer
    x = rng.standard_normal((B, 5, D))
    out = layer(x, mask=mask_of("gap"), initial_state=random_states(inner, rng, copies=copies))
    R = [rng.standard_normal(o.shape) for o in out]
    layer.zero_grad()
    dx1 = layer.backward(*R)
    grads1 = {k: g.copy() for k, g in layer.grads.items()}
    dstate1 = [s.copy() for s in layer.initial_state_grad]
    dx2 = layer.backward(*R)
    np.testing.assert_allclose(dx2, dx1, rtol=1e-14, atol=1e-15)
    for a, b in zip(layer.initial_state_grad, dstate1, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-15)
    for name, g in layer.grads.items():
        assert np.any(grads1[name]), name
        np.testing.assert_allclose(g, 2 * grads1[name], rtol=1e-14, atol=1e-15, err_msg=name)


# ---------------------------------------------------------------------------------------- grad norms
def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
@pytest.mark.parametrize("cell", FAMILIES)
def test_recorded_grad_norms_are_norms_of_dL_dstate(cell, return_sequences, rng):
    """``grad_norms["h"][b, t] = ||dL/dh_t||`` (and ``["c"]`` for the LSTM), from the definition.

    ``dL/dh_t`` by finite differences: run the layer on ``x[:, :t+1]`` to get the states at t, then
    on ``x[:, t+1:]`` from them, and perturb that initial state (plus, for sequence outputs, the output
    ``y_t = h_t`` itself). For ``c_t`` the perturbation also moves ``h_t = o_t tanh(c_t)``, with ``o_t``
    computed by hand, because ``dL/dc_t`` is the total derivative. At the last step of a many-to-one
    loss, ``||dL/dh_T|| = ||dy||``.
    """
    Bn, T = 2, 4
    layer = make_layer(cell, return_sequences=return_sequences)
    layer.record_grad_norms = True
    x = rng.standard_normal((Bn, T, D))
    y = layer(x)
    R = rng.standard_normal(y.shape)
    layer.zero_grad()
    layer.backward(R)
    recorded = layer.grad_norms
    assert set(recorded) == set(layer.state_names)
    assert all(v.shape == (Bn, T) for v in recorded.values())
    if not return_sequences:
        np.testing.assert_allclose(recorded["h"][:, -1], np.linalg.norm(R, axis=1), rtol=1e-12)

    split = make_layer(cell, return_sequences=True, return_state=True)  # same weights (same seed)
    p = layer.params
    for t in range(T):
        k = t + 1
        _, *states = split(x[:, :k])

        def loss(states_t, t=t, k=k):
            value = float(np.sum(states_t[0] * R[:, t])) if return_sequences else 0.0
            if k < T:
                y_rest = split(x[:, k:], initial_state=states_t)[0]  # (Bn, T-k, H)
                value += float(np.sum(y_rest * R[:, k:]) if return_sequences else np.sum(y_rest[:, -1] * R))
            elif not return_sequences:
                value += float(np.sum(states_t[0] * R))
            return value

        dh = fd_grad(lambda h, states=states: loss([h, *states[1:]]), states[0].copy())
        np.testing.assert_allclose(recorded["h"][:, t], np.linalg.norm(dh, axis=1), rtol=1e-6, err_msg=f"t={t}")
        if "c" in recorded:
            h_prev = split(x[:, :t])[1] if t > 0 else np.zeros((Bn, H))
            o = _sigmoid(x[:, t] @ p["U"][3 * H:].T + h_prev @ p["W"][3 * H:].T + p["b"][3 * H:])  # (Bn, H)
            np.testing.assert_allclose(o * np.tanh(states[1]), states[0], rtol=1e-12)  # o_t is right
            dc = fd_grad(lambda c, o=o: loss([o * np.tanh(c), c]), states[1].copy())
            np.testing.assert_allclose(recorded["c"][:, t], np.linalg.norm(dc, axis=1), rtol=1e-6, err_msg=f"t={t}")
