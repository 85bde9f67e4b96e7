"""Properties of the recurrent layers over arbitrary small problems (hypothesis).

Each test draws a layer (cell, activation or form, merge mode for ``Bidirectional``), the sizes
``B, T, D, H``, inputs and states from bounded floats, and a seed for the weights, then checks a
property that must hold for every such draw: shapes, batch-permutation equivariance, invariance to
padding, the documented one-step equations, ``go_backwards`` as time reversal, the merge modes,
float32 against float64, and all-padding rows.
"""

from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.recurrent import GRU, LSTM, SimpleRNN

SETTINGS = settings(max_examples=25, deadline=None)
KINDS = ["SimpleRNN", "LSTM", "GRU", "Bidirectional"]
CELLS = {"SimpleRNN": SimpleRNN, "LSTM": LSTM, "GRU": GRU}
OPTIONS = {
    "SimpleRNN": st.fixed_dictionaries({"activation": st.sampled_from(["tanh", "relu", "sigmoid", "linear"])}),
    "LSTM": st.fixed_dictionaries({"candidate_activation": st.sampled_from(["tanh", "relu"])}),
    "GRU": st.fixed_dictionaries({"reset_after": st.booleans()}),
}
MERGE_MODES = ["concat", "sum", "mul", "ave", None]
EXACT = {"rtol": 1e-10, "atol": 1e-12}  # same maths, maybe another summation order, in float64


# ------------------------------------------------------------------------------------ drawing
@dataclass(frozen=True)
class Spec:
    """What layer to build: a cell with its options, wrapped in Bidirectional when ``merge_mode`` is set."""

    cell: str
    options: dict = field(hash=False)
    bidirectional: bool = False
    merge_mode: str | None = None


def draw_spec(data, kind: str) -> Spec:
    if kind == "Bidirectional":
        inner = draw_spec(data, data.draw(st.sampled_from(sorted(CELLS)), label="inner cell"))
        return Spec(inner.cell, inner.options, True, data.draw(st.sampled_from(MERGE_MODES), label="merge_mode"))
    return Spec(kind, data.draw(OPTIONS[kind], label="options"))


def draw_sizes(data, min_batch: int = 1, max_time: int = 5):
    return (data.draw(st.integers(min_batch, 3), label="B"), data.draw(st.integers(1, max_time), label="T"),
            data.draw(st.integers(1, 3), label="D"), data.draw(st.integers(1, 4), label="H"))


def draw_array(data, shape, label: str, bound: float = 2.0) -> np.ndarray:
    elements = st.floats(-bound, bound, allow_nan=False, allow_infinity=False, allow_subnormal=False)
    return data.draw(arrays(np.float64, shape, elements=elements), label=label)


def draw_mask(data, B: int, T: int) -> np.ndarray:
    return data.draw(arrays(np.bool_, (B, T)), label="mask")


def make(spec: Spec, D: int, H: int, seed: int, dtype: str = "float64", **flags):
    """Build the layer and draw every parameter from N(0, 0.5^2) with ``seed`` (same seed, same weights)."""
    layer = CELLS[spec.cell](H, input_size=D, dtype=dtype, **spec.options, **flags)
    if spec.bidirectional:
        layer = Bidirectional(layer, spec.merge_mode)
    rng = np.random.default_rng(seed)
    for _, p in layer.named_parameters():
        p[...] = 0.5 * rng.standard_normal(p.shape)
    return layer


def state_count(layer) -> int:
    inner = layer.forward_layer if isinstance(layer, Bidirectional) else layer
    return len(inner.state_names) * (2 if isinstance(layer, Bidirectional) else 1)


def random_states(layer, B: int, H: int, rng) -> list:
    return [0.5 * rng.standard_normal((B, H)) for _ in range(state_count(layer))]


def time_order(a: np.ndarray, layer) -> np.ndarray:
    """A sequence output of a ``go_backwards`` layer is in processing order; flip it to time order (and back)."""
    return a[:, ::-1] if getattr(layer, "go_backwards", False) and a.ndim == 3 else a


@dataclass
class Run:
    """One forward and backward call: outputs (merge_mode=None gives two parts), states and every gradient."""

    y: list
    states: list
    dx: np.ndarray
    grads: dict
    dstate0: list
    dy: list
    dstates: list


def run(layer, x, rng, *, mask=None, initial_state=None, dy=None, dstates=None) -> Run:
    """Forward, then backward with ``dy``/``dstates`` (random when not given) after ``zero_grad``."""
    out = layer(x, mask=mask, initial_state=initial_state)
    y, states = (out[0], list(out[1:])) if layer.return_state else (out, [])
    parts = [np.array(p) for p in (y if isinstance(y, list) else [y])]
    dy = [rng.standard_normal(p.shape) for p in parts] if dy is None else dy
    dstates = [rng.standard_normal(s.shape) for s in states] if dstates is None else dstates
    layer.zero_grad()
    dx = layer.backward(list(dy) if isinstance(y, list) else dy[0], *dstates)
    return Run(parts, [s.copy() for s in states], dx.copy(), {k: g.copy() for k, g in layer.grads.items()},
               [s.copy() for s in layer.initial_state_grad], dy, dstates)


def assert_same_grads(a: dict, b: dict, **tol) -> None:
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_allclose(a[name], b[name], err_msg=name, **tol)


# ------------------------------------------------------------------------------------ shapes
@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_shapes(kind, data):
    spec = draw_spec(data, kind)
    B, T, D, H = draw_sizes(data)
    return_sequences, return_state = data.draw(st.booleans(), label="rs"), data.draw(st.booleans(), label="state")
    layer = make(spec, D, H, seed=0, return_sequences=return_sequences, return_state=return_state)
    x = draw_array(data, (B, T, D), "x")
    r = run(layer, x, np.random.default_rng(0))

    width = 2 * H if spec.merge_mode == "concat" and spec.bidirectional else H
    y_shape = (B, T, width) if return_sequences else (B, width)
    assert [p.shape for p in r.y] == [y_shape] * (2 if spec.bidirectional and spec.merge_mode is None else 1)
    if not (spec.bidirectional and spec.merge_mode is None):
        assert layer.output_shape((None, T, D)) == (None,) + y_shape[1:]
    n = state_count(layer)
    assert [s.shape for s in r.states] == ([(B, H)] * n if return_state else [])
    assert r.dx.shape == (B, T, D)
    assert [s.shape for s in r.dstate0] == [(B, H)] * n
    assert {k: g.shape for k, g in r.grads.items()} == {k: p.shape for k, p in layer.params.items()}
    assert all(np.isfinite(g).all() for g in r.grads.values())


# ------------------------------------------------------------------------------------ batch permutation
@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_permuting_the_batch_permutes_outputs_and_gradients(kind, data):
    spec = draw_spec(data, kind)
    B, T, D, H = draw_sizes(data, min_batch=2)
    perm = np.array(data.draw(st.permutations(range(B)), label="permutation"))
    masked = data.draw(st.booleans(), label="masked")
    return_sequences = data.draw(st.booleans(), label="rs")
    x = draw_array(data, (B, T, D), "x")
    mask = draw_mask(data, B, T) if masked else None
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    flags = {"return_sequences": return_sequences, "return_state": True}
    a, b = make(spec, D, H, seed=1, **flags), make(spec, D, H, seed=1, **flags)
    s0 = random_states(a, B, H, rng)

    ref = run(a, x, rng, mask=mask, initial_state=s0)
    per = run(b, x[perm], rng, mask=None if mask is None else mask[perm], initial_state=[s[perm] for s in s0],
              dy=[d[perm] for d in ref.dy], dstates=[d[perm] for d in ref.dstates])
    for got, want in zip(per.y + per.states + per.dstate0 + [per.dx], ref.y + ref.states + ref.dstate0 + [ref.dx],
                         strict=True):
        np.testing.assert_allclose(got, want[perm], **EXACT)
    assert_same_grads(per.grads, ref.grads, **EXACT)  # sums over the batch: order does not matter


# ------------------------------------------------------------------------------------ padding
@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_padding_changes_nothing(kind, data):
    """Masked steps added to the right and/or left of each sequence (junk inputs and junk output gradients
    there) leave the outputs at valid steps, the final states, and every gradient unchanged; the padded
    steps output zeros and get a zero input gradient."""
    spec = draw_spec(data, kind)
    B, T, D, H = draw_sizes(data, max_time=4)
    P = data.draw(st.integers(1, 3), label="padding")
    left = data.draw(st.lists(st.integers(0, P), min_size=B, max_size=B), label="left padding per row")
    return_sequences = data.draw(st.booleans(), label="rs")
    go_backwards = not spec.bidirectional and data.draw(st.booleans(), label="go_backwards")
    x = draw_array(data, (B, T, D), "x")
    xp = draw_array(data, (B, T + P, D), "junk")
    mask = np.zeros((B, T + P), dtype=bool)
    for row, start in enumerate(left):
        xp[row, start:start + T] = x[row]
        mask[row, start:start + T] = True
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    flags = {"return_sequences": return_sequences, "return_state": True, "go_backwards": go_backwards}
    plain, padded = make(spec, D, H, seed=2, **flags), make(spec, D, H, seed=2, **flags)
    s0 = random_states(plain, B, H, rng)

    ref = run(plain, x, rng, initial_state=s0)
    dy = ref.dy
    if return_sequences:  # junk gradients at the padded steps, the reference's at the valid ones
        dy = [rng.standard_normal((B, T + P, d.shape[-1])) for d in ref.dy]
        for d, d_ref in zip(dy, ref.dy):
            for row, start in enumerate(left):
                time_order(d, padded)[row, start:start + T] = time_order(d_ref, plain)[row]
    pad = run(padded, xp, rng, mask=mask, initial_state=[s.copy() for s in s0], dy=dy, dstates=ref.dstates)

    for got, want in zip(pad.y, ref.y, strict=True):
        if return_sequences:
            got, want = time_order(got, padded), time_order(want, plain)
            for row, start in enumerate(left):
                np.testing.assert_allclose(got[row, start:start + T], want[row], **EXACT)
            np.testing.assert_array_equal(got[~mask], 0.0)
        else:
            np.testing.assert_allclose(got, want, **EXACT)
    for got, want in zip(pad.states + pad.dstate0, ref.states + ref.dstate0, strict=True):
        np.testing.assert_allclose(got, want, **EXACT)
    assert_same_grads(pad.grads, ref.grads, **EXACT)
    for row, start in enumerate(left):
        np.testing.assert_allclose(pad.dx[row, start:start + T], ref.dx[row], **EXACT)
    np.testing.assert_array_equal(pad.dx[~mask], 0.0)


# ------------------------------------------------------------------------------------ one step by hand
def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


ACTIVATIONS = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0), "sigmoid": _sigmoid, "linear": lambda z: z}


def step_by_hand(spec: Spec, p: dict, x_t: np.ndarray, states: list) -> list:
    """One step of the documented equations, written independently of the library. ``x_t`` (B, D)."""
    h = states[0]
    if spec.cell == "SimpleRNN":  # a_t = f(U x_t + W a_{t-1} + b)
        return [ACTIVATIONS[spec.options["activation"]](x_t @ p["U"].T + h @ p["W"].T + p["b"])]
    if spec.cell == "LSTM":  # gates i, f, g, o
        z_i, z_f, z_g, z_o = np.split(x_t @ p["U"].T + h @ p["W"].T + p["b"], 4, axis=1)
        i, f, o = _sigmoid(z_i), _sigmoid(z_f), _sigmoid(z_o)
        g = ACTIVATIONS[spec.options["candidate_activation"]](z_g)
        c = f * states[1] + i * g
        return [o * np.tanh(c), c]
    # GRU, gates r, z, n
    U_r, U_z, U_n = np.split(p["U"], 3)
    W_r, W_z, W_n = np.split(p["W"], 3)
    b_r, b_z, b_n = np.split(p["b"], 3)
    r = _sigmoid(x_t @ U_r.T + h @ W_r.T + b_r)
    z = _sigmoid(x_t @ U_z.T + h @ W_z.T + b_z)
    if spec.options["reset_after"]:
        n = np.tanh(x_t @ U_n.T + b_n + r * (h @ W_n.T + p["b_hn"]))
    else:
        n = np.tanh(x_t @ U_n.T + (r * h) @ W_n.T + b_n)
    return [(1.0 - z) * n + z * h]


def merge_by_hand(mode, f, b):
    return {"concat": lambda: [np.concatenate([f, b], axis=-1)], "sum": lambda: [f + b], "mul": lambda: [f * b],
            "ave": lambda: [(f + b) / 2], None: lambda: [f, b]}[mode]()


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_one_step_follows_the_documented_equations(kind, data):
    spec = draw_spec(data, kind)
    B, _, D, H = draw_sizes(data)
    return_sequences = data.draw(st.booleans(), label="rs")
    layer = make(spec, D, H, seed=3, return_sequences=return_sequences, return_state=True)
    x = draw_array(data, (B, 1, D), "x")
    s0 = [draw_array(data, (B, H), f"state {i}", bound=1.0) for i in range(state_count(layer))]
    r = run(layer, x, np.random.default_rng(0), initial_state=[s.copy() for s in s0])

    if spec.bidirectional:
        n = state_count(layer) // 2
        p = layer.params
        fwd = step_by_hand(spec, {k[8:]: v for k, v in p.items() if k.startswith("forward.")}, x[:, 0], s0[:n])
        bwd = step_by_hand(spec, {k[9:]: v for k, v in p.items() if k.startswith("backward.")}, x[:, 0], s0[n:])
        want_y, want_states = merge_by_hand(spec.merge_mode, fwd[0], bwd[0]), fwd + bwd
    else:
        want_states = step_by_hand(spec, layer.params, x[:, 0], s0)
        want_y = [want_states[0]]
    for got, want in zip(r.y, want_y, strict=True):
        np.testing.assert_allclose(got[:, 0] if return_sequences else got, want, rtol=1e-12, atol=1e-12)
    for got, want in zip(r.states, want_states, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------ direction
@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
@SETTINGS
@given(data=st.data())
def test_go_backwards_is_forward_on_the_reversed_sequence(kind, data):
    """Outputs in processing order, states and gradients (``dx`` flipped back) are those of the forward
    layer run on ``x[:, ::-1]`` (with the mask reversed too)."""
    spec = draw_spec(data, kind)
    B, T, D, H = draw_sizes(data)
    return_sequences = data.draw(st.booleans(), label="rs")
    x = draw_array(data, (B, T, D), "x")
    mask = draw_mask(data, B, T) if data.draw(st.booleans(), label="masked") else None
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    flags = {"return_sequences": return_sequences, "return_state": True}
    backwards, forwards = make(spec, D, H, seed=4, go_backwards=True, **flags), make(spec, D, H, seed=4, **flags)
    s0 = random_states(forwards, B, H, rng)

    back = run(backwards, x, rng, mask=mask, initial_state=s0)
    fwd = run(forwards, x[:, ::-1].copy(), rng, mask=None if mask is None else mask[:, ::-1].copy(), initial_state=s0,
              dy=back.dy, dstates=back.dstates)
    for got, want in zip(back.y + back.states + back.dstate0, fwd.y + fwd.states + fwd.dstate0, strict=True):
        np.testing.assert_allclose(got, want, **EXACT)
    np.testing.assert_allclose(back.dx, fwd.dx[:, ::-1], **EXACT)
    assert_same_grads(back.grads, fwd.grads, **EXACT)


# ------------------------------------------------------------------------------------ merge modes
@SETTINGS
@given(data=st.data())
def test_bidirectional_merge_modes_combine_the_two_parts(data):
    """With the same weights, ``sum`` is the sum of ``merge_mode=None``'s parts (``ave`` half of it,
    ``mul`` the product, ``concat`` the concatenation), and gradients follow."""
    spec = draw_spec(data, "Bidirectional")
    B, T, D, H = draw_sizes(data)
    return_sequences = data.draw(st.booleans(), label="rs")
    x = draw_array(data, (B, T, D), "x")
    mask = draw_mask(data, B, T) if data.draw(st.booleans(), label="masked") else None
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    parts_spec = Spec(spec.cell, spec.options, True, None)
    parts_layer = make(parts_spec, D, H, seed=5, return_sequences=return_sequences)
    parts = run(parts_layer, x, rng, mask=mask)
    y_f, y_b = parts.y

    summed_layer = make(Spec(spec.cell, spec.options, True, "sum"), D, H, seed=5, return_sequences=return_sequences)
    summed_layer.set_weights(parts_layer.params)
    dy = rng.standard_normal(y_f.shape)
    summed = run(summed_layer, x, rng, mask=mask, dy=[dy])
    np.testing.assert_allclose(summed.y[0], y_f + y_b, **EXACT)
    along = run(parts_layer, x, rng, mask=mask, dy=[dy, dy])  # d(f + b) = dy to each part
    assert_same_grads(summed.grads, along.grads, **EXACT)
    np.testing.assert_allclose(summed.dx, along.dx, **EXACT)

    for mode, want in {"ave": (y_f + y_b) / 2, "mul": y_f * y_b, "concat": np.concatenate([y_f, y_b], -1)}.items():
        other = make(Spec(spec.cell, spec.options, True, mode), D, H, seed=5, return_sequences=return_sequences)
        other.set_weights(parts_layer.params)
        np.testing.assert_allclose(other(x, mask=mask), want, **EXACT, err_msg=mode)


# ------------------------------------------------------------------------------------ precision
@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_float32_agrees_with_float64(kind, data):
    """The same weights and inputs (exactly representable in float32) give outputs, states and gradients
    that agree to 1e-5."""
    spec = draw_spec(data, kind)
    B, T, D, H = draw_sizes(data)
    return_sequences = data.draw(st.booleans(), label="rs")
    x = draw_array(data, (B, T, D), "x").astype(np.float32)
    mask = draw_mask(data, B, T) if data.draw(st.booleans(), label="masked") else None
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    flags = {"return_sequences": return_sequences, "return_state": True}
    l64 = make(spec, D, H, seed=6, **flags)
    l64.set_weights({k: v.astype(np.float32) for k, v in l64.params.items()})  # round to float32 values
    l32 = make(spec, D, H, seed=6, dtype="float32", **flags)
    l32.set_weights(l64.params)
    s0 = [s.astype(np.float32) for s in random_states(l64, B, H, rng)]

    r64 = run(l64, x.astype(np.float64), rng, mask=mask, initial_state=[s.astype(np.float64) for s in s0])
    r32 = run(l32, x, rng, mask=mask, initial_state=s0, dy=[d.astype(np.float32) for d in r64.dy],
              dstates=[d.astype(np.float32) for d in r64.dstates])
    assert r32.dx.dtype == np.float32 and all(g.dtype == np.float32 for g in r32.grads.values())
    for got, want in zip(r32.y + r32.states + r32.dstate0 + [r32.dx], r64.y + r64.states + r64.dstate0 + [r64.dx],
                         strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert_same_grads(r32.grads, r64.grads, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------ all-padding rows
@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_all_padding_row_outputs_zeros_and_keeps_its_state(kind, data):
    """A row that is padding throughout outputs zeros, ends in its initial state, gets a zero input
    gradient, and passes its final-state gradient unchanged to its initial state; the other rows are
    unaffected by it."""
    spec = draw_spec(data, kind)
    B, T, D, H = draw_sizes(data, min_batch=2)
    row = data.draw(st.integers(0, B - 1), label="padding row")
    x = draw_array(data, (B, T, D), "x")
    mask = draw_mask(data, B, T)
    mask[row] = False
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    flags = {"return_sequences": True, "return_state": True}
    layer, alone = make(spec, D, H, seed=7, **flags), make(spec, D, H, seed=7, **flags)
    s0 = random_states(layer, B, H, rng)
    r = run(layer, x, rng, mask=mask, initial_state=[s.copy() for s in s0])

    for y in r.y:
        np.testing.assert_array_equal(y[row], 0.0)
    for s, s_init in zip(r.states, s0, strict=True):
        np.testing.assert_array_equal(s[row], s_init[row])
    np.testing.assert_array_equal(r.dx[row], 0.0)
    for ds0, ds in zip(r.dstate0, r.dstates, strict=True):
        np.testing.assert_array_equal(ds0[row], ds[row])

    others = np.arange(B) != row  # the rest of the batch computes as if the row were not there
    rest = run(alone, x[others], rng, mask=mask[others], initial_state=[s[others] for s in s0],
               dy=[d[others] for d in r.dy], dstates=[d[others] for d in r.dstates])
    for got, want in zip(rest.y + rest.states + rest.dstate0 + [rest.dx], r.y + r.states + r.dstate0 + [r.dx],
                         strict=True):
        np.testing.assert_allclose(got, want[others], **EXACT)
    assert_same_grads(rest.grads, r.grads, **EXACT)


@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
def test_all_padding_row_last_output_is_zero_from_a_nonzero_initial_state(kind):
    layer = CELLS[kind](2, input_size=1, dtype="float64", seed=0)
    s0 = [np.ones((2, 2)) for _ in layer.state_names]
    mask = np.array([[1, 1, 0], [0, 0, 0]], dtype=bool)  # row 1 is all padding
    y = layer(np.ones((2, 3, 1)), mask=mask, initial_state=s0)
    np.testing.assert_array_equal(y[1], 0.0)
