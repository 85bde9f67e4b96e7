"""A conformance battery every recurrent layer must pass (in the spirit of sklearn's ``estimator_checks``).

``check_layer(cls, checks, **kw)`` runs the given checks on ``cls(H, **kw)``: shapes, dtypes (no
silent up- or down-cast), inputs never mutated, re-entrancy (a forward pass does not disturb the
result or the backward pass of another), batch independence, masks, direction, ``repr`` and the parameter count
formula ``G*H*(D + H + 1)`` (+ H for the GRU's ``b_hn``). Each (layer, check) pair is its own test.
"""

from __future__ import annotations

from contextlib import contextmanager
from unittest import mock

import numpy as np
import pytest

from rnnlab.nn.recurrent import GRU, LSTM, SimpleRNN

pytestmark = pytest.mark.usefixtures("kernel_backend")

B, T, D, H = 3, 5, 4, 6

# What each layer should be, written down independently of the code under test.
GATES = {SimpleRNN: 1, LSTM: 4, GRU: 3}
STATES = {SimpleRNN: 1, LSTM: 2, GRU: 1}

LAYERS = {
    "SimpleRNN": (SimpleRNN, {}),
    "SimpleRNN-relu": (SimpleRNN, {"activation": "relu"}),
    "LSTM": (LSTM, {}),
    "LSTM-relu": (LSTM, {"candidate_activation": "relu", "forget_bias": None}),
    "GRU": (GRU, {}),
    "GRU-v1": (GRU, {"reset_after": False}),
}


def data(dtype=np.float64, seed=0, batch=B, steps=T):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, steps, D)).astype(dtype)
    mask = np.ones((batch, steps), dtype=bool)
    mask[0, -2:] = False  # right padding
    if batch > 2:
        mask[2, :1] = False  # left padding
    return x, mask


def initial_states(cls, dtype=np.float64, seed=1, batch=B):
    rng = np.random.default_rng(seed)
    return [0.5 * rng.standard_normal((batch, H)).astype(dtype) for _ in range(STATES[cls])]


def outputs(out, return_state):
    """``(y, states)`` from a call's result."""
    return (out[0], list(out[1:])) if return_state else (out, [])


def run(layer, x, cls, mask=None, initial_state=None, seed=2):
    """Forward, then backward with random output and state gradients; returns everything produced."""
    out = layer(x, mask=mask, initial_state=initial_state)
    y, states = outputs(out, layer.return_state)
    rng = np.random.default_rng(seed)
    dy = rng.standard_normal(y.shape)
    d_states = [rng.standard_normal(s.shape) for s in states]
    layer.zero_grad()
    dx = layer.backward(dy, *d_states)
    return {"y": y, "states": states, "dx": dx, "dstate0": list(layer.initial_state_grad),
            "grads": {k: g.copy() for k, g in layer.grads.items()}}


@contextmanager
def poisoned_allocations():
    """Make ``np.empty``/``np.empty_like`` return NaN-filled float arrays, so that any read of a buffer
    element the code never wrote shows up as NaN in a result, deterministically (instead of whatever
    the allocator happened to hand back)."""
    real_empty, real_empty_like = np.empty, np.empty_like

    def poison(out):
        if np.issubdtype(out.dtype, np.floating):
            out.fill(np.nan)
        return out

    with mock.patch.object(np, "empty", lambda *a, **k: poison(real_empty(*a, **k))), \
            mock.patch.object(np, "empty_like", lambda *a, **k: poison(real_empty_like(*a, **k))):
        yield


# ---------------------------------------------------------------------------- the checks
def check_shapes(cls, kw):
    x, mask = data()
    for return_sequences in (False, True):
        for return_state in (False, True):
            layer = cls(H, return_sequences=return_sequences, return_state=return_state, seed=0, dtype="float64", **kw)
            r = run(layer, x, cls, mask=mask, initial_state=initial_states(cls))
            want = (B, T, H) if return_sequences else (B, H)
            assert r["y"].shape == want
            assert layer.output_shape((B, T, D)) == want
            assert layer.output_shape((None, None, D)) == ((None, None, H) if return_sequences else (None, H))
            assert len(r["states"]) == (STATES[cls] if return_state else 0)
            assert all(s.shape == (B, H) for s in r["states"])
            assert r["dx"].shape == (B, T, D)
            assert len(r["dstate0"]) == STATES[cls] and all(s.shape == (B, H) for s in r["dstate0"])
            for name, p in layer.params.items():
                assert r["grads"][name].shape == p.shape, name
    shapes = {k: v.shape for k, v in layer.params.items()}
    expected = {"U": (GATES[cls] * H, D), "W": (GATES[cls] * H, H), "b": (GATES[cls] * H,)}
    if cls is GRU and kw.get("reset_after", True):
        expected["b_hn"] = (H,)
    assert shapes == expected


def check_dtypes(cls, kw):
    for layer_dtype in (np.float32, np.float64):
        for input_dtype in (np.float32, np.float64):
            x, mask = data(input_dtype)
            layer = cls(H, return_sequences=True, return_state=True, seed=0, dtype=np.dtype(layer_dtype).name, **kw)
            r = run(layer, x, cls, mask=mask, initial_state=initial_states(cls, input_dtype))
            produced = [r["y"], r["dx"], *r["states"], *r["dstate0"], *r["grads"].values(), *layer.params.values()]
            got = {a.dtype for a in produced}
            assert got == {np.dtype(layer_dtype)}, (f"layer {np.dtype(layer_dtype)}, "
                                                    f"input {np.dtype(input_dtype)}: {got}")
            assert np.all(np.isfinite(r["dx"])) and all(np.all(np.isfinite(g)) for g in r["grads"].values())


def check_no_input_mutation(cls, kw):
    for batch in (1, B):  # B = 1 makes the time-major transpose of x a view of it
        for go_backwards in (False, True):
            for mask_dtype in (bool, np.float64, np.int64):
                x, mask = data(batch=batch)
                mask = mask.astype(mask_dtype)
                h0 = initial_states(cls, batch=batch)
                saved = [x.copy(), mask.copy(), *[s.copy() for s in h0]]
                layer = cls(H, return_sequences=True, return_state=True, go_backwards=go_backwards, seed=0,
                            dtype="float64", **kw)
                out = layer(x, mask=mask, initial_state=h0)
                y, states = outputs(out, True)
                dy = np.ones_like(y)
                d_states = [np.ones_like(s) for s in states]
                grads_in = [dy.copy(), *[d.copy() for d in d_states]]
                layer.backward(dy, *d_states)
                for before, after in zip(saved, [x, mask, *h0]):
                    np.testing.assert_array_equal(after, before)
                    assert after.dtype == before.dtype
                for before, after in zip(grads_in, [dy, *d_states]):
                    np.testing.assert_array_equal(after, before)


def check_reentrancy(cls, kw):
    x1, mask1 = data(seed=10)
    x2, mask2 = data(seed=11)
    h1, h2 = initial_states(cls, seed=12), initial_states(cls, seed=13)

    def make():
        return cls(H, return_sequences=True, return_state=True, seed=0, dtype="float64", **kw)

    fresh = run(make(), x2, cls, mask=mask2, initial_state=h2)
    alone_1 = run(make(), x1, cls, mask=mask1, initial_state=h1)

    layer = make()
    first = layer(x1, mask=mask1, initial_state=h1)
    y1 = outputs(first, True)[0]
    y1_saved = y1.copy()
    r = run(layer, x2, cls, mask=mask2, initial_state=h2)  # second forward, then backward of it
    np.testing.assert_array_equal(y1, y1_saved)  # the first call's outputs are not reused buffers
    for key in ("y", "dx"):
        np.testing.assert_array_equal(r[key], fresh[key])
    for a, b in zip(r["states"] + r["dstate0"], fresh["states"] + fresh["dstate0"]):
        np.testing.assert_array_equal(a, b)
    for key, g in fresh["grads"].items():
        np.testing.assert_array_equal(r["grads"][key], g)

    # forward/backward twice without zero_grad: the gradients of the two calls add up
    layer.zero_grad()
    for x, mask, h in ((x1, mask1, h1), (x2, mask2, h2)):
        y, states = outputs(layer(x, mask=mask, initial_state=h), True)
        rng = np.random.default_rng(2)
        layer.backward(rng.standard_normal(y.shape), *[rng.standard_normal(s.shape) for s in states])
    for key, g in layer.grads.items():
        np.testing.assert_allclose(g, alone_1["grads"][key] + fresh["grads"][key], rtol=1e-12, atol=1e-14)


def check_batch_independence(cls, kw):
    """Each sequence's outputs and input gradient depend on that sequence only."""
    x, mask = data()
    h0 = initial_states(cls)
    layer = cls(H, return_sequences=True, seed=0, dtype="float64", **kw)
    whole = run(layer, x, cls, mask=mask, initial_state=h0)
    rng = np.random.default_rng(2)
    dy = rng.standard_normal((B, T, H))
    for b in range(B):
        r = run(layer, x[b:b + 1], cls, mask=mask[b:b + 1], initial_state=[s[b:b + 1] for s in h0])
        np.testing.assert_allclose(r["y"][0], whole["y"][b], rtol=1e-12, atol=1e-14)
        layer(x[b:b + 1], mask=mask[b:b + 1], initial_state=[s[b:b + 1] for s in h0])
        dx_b = layer.backward(dy[b:b + 1])
        layer(x, mask=mask, initial_state=h0)
        dx = layer.backward(dy)
        np.testing.assert_allclose(dx_b[0], dx[b], rtol=1e-10, atol=1e-13)


def check_all_ones_mask_equals_no_mask(cls, kw):
    x, _ = data()
    layer = cls(H, return_sequences=True, return_state=True, seed=0, dtype="float64", **kw)
    a = run(layer, x, cls)
    b = run(layer, x, cls, mask=np.ones((B, T)))
    for key in ("y", "dx"):
        np.testing.assert_array_equal(a[key], b[key])
    for key in a["grads"]:
        np.testing.assert_array_equal(a["grads"][key], b["grads"][key])


def check_masked_step_equals_removed_step(cls, kw):
    """A step that is padding for every sequence (the loop's skip path) changes nothing: outputs, gradients
    and ``dx`` equal those of the same data with that step cut out, and ``dx`` is zero at it."""
    x, mask = data()
    gap = 2
    mask[:, gap] = False
    keep = [t for t in range(T) if t != gap]
    h0 = initial_states(cls)
    rng = np.random.default_rng(3)
    dy_time = rng.standard_normal((B, T, H))  # in time order; its value at the gap must not matter
    d_states = [rng.standard_normal((B, H)) for _ in range(STATES[cls])]

    def run_time_order(layer, x, mask, dy_time):
        flip = (lambda a: a[:, ::-1]) if layer.go_backwards else (lambda a: a)  # outputs come in processing order
        y, states = outputs(layer(x, mask=mask, initial_state=h0), True)
        layer.zero_grad()
        dx = layer.backward(np.ascontiguousarray(flip(dy_time)), *d_states)
        return flip(y), states, dx, list(layer.initial_state_grad), {k: g.copy() for k, g in layer.grads.items()}

    for go_backwards in (False, True):
        layer = cls(H, input_size=D, return_sequences=True, return_state=True, go_backwards=go_backwards, seed=0,
                    dtype="float64", **kw)
        with poisoned_allocations():
            y, states, dx, ds0, grads = run_time_order(layer, x, mask, dy_time)
        y_c, states_c, dx_c, ds0_c, grads_c = run_time_order(
            layer, np.ascontiguousarray(x[:, keep]), np.ascontiguousarray(mask[:, keep]),
            np.ascontiguousarray(dy_time[:, keep]))
        np.testing.assert_allclose(y[:, keep], y_c, rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(y[:, gap], 0.0)
        for a, b in zip(states + ds0, states_c + ds0_c):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(dx[:, gap], 0.0)
        np.testing.assert_allclose(dx[:, keep], dx_c, rtol=1e-12, atol=1e-14)
        for key, g in grads_c.items():
            np.testing.assert_allclose(grads[key], g, rtol=1e-12, atol=1e-14,
                                       err_msg=f"{key}, go_backwards={go_backwards}")


def check_no_uninitialized_reads(cls, kw):
    """Results are the same when every fresh buffer starts as NaN (see :func:`poisoned_allocations`)."""
    x, mask = data()
    h0 = initial_states(cls)
    for go_backwards in (False, True):
        for m in (None, mask):
            layer = cls(H, input_size=D, return_sequences=True, return_state=True, go_backwards=go_backwards, seed=0,
                        dtype="float64", **kw)
            layer.record_grad_norms = True
            clean = run(layer, x, cls, mask=m, initial_state=h0)
            with poisoned_allocations():
                poisoned = run(layer, x, cls, mask=m, initial_state=h0)
            for key in ("y", "dx"):
                np.testing.assert_array_equal(poisoned[key], clean[key], err_msg=key)
            for a, b in zip(poisoned["states"] + poisoned["dstate0"], clean["states"] + clean["dstate0"]):
                np.testing.assert_array_equal(a, b)
            for key, g in clean["grads"].items():
                np.testing.assert_array_equal(poisoned["grads"][key], g, err_msg=key)
            assert all(np.all(np.isfinite(v)) for v in layer.grad_norms.values())


def check_go_backwards(cls, kw):
    """``go_backwards`` equals the forward layer on the time-reversed input and mask (outputs in processing order)."""
    x, mask = data()
    h0 = initial_states(cls)
    fwd = cls(H, input_size=D, return_sequences=True, return_state=True, seed=0, dtype="float64", **kw)
    bwd = cls(H, input_size=D, return_sequences=True, return_state=True, go_backwards=True, dtype="float64", **kw)
    bwd.set_weights(fwd.params)
    a = run(fwd, np.ascontiguousarray(x[:, ::-1]), cls, mask=np.ascontiguousarray(mask[:, ::-1]), initial_state=h0)
    b = run(bwd, x, cls, mask=mask, initial_state=h0)
    np.testing.assert_allclose(b["y"], a["y"], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(b["dx"], a["dx"][:, ::-1], rtol=1e-12, atol=1e-14)
    for key in a["grads"]:
        np.testing.assert_allclose(b["grads"][key], a["grads"][key], rtol=1e-12, atol=1e-14)


def check_repr(cls, kw):
    layer = cls(H, seed=0, **kw)
    text = repr(layer)
    assert text.startswith(f"{cls.__name__}(") and text.endswith(")")
    assert f"hidden_size={H}" in text
    for key, value in kw.items():
        if value is not None:
            assert f"{key}={value!r}" in text
    str(layer)
    layer(data()[0])
    assert f"input_size={D}" in repr(layer)


def check_param_count(cls, kw):
    for d, h in ((1, 1), (D, H), (7, 3)):
        layer = cls(h, input_size=d, **kw)
        expected = GATES[cls] * h * (d + h + 1)
        if cls is GRU and kw.get("reset_after", True):
            expected += h  # b_hn, inside the reset product
        assert layer.count_params() == expected
        assert sum(p.size for p in layer.params.values()) == expected


CHECKS = [check_shapes, check_dtypes, check_no_input_mutation, check_reentrancy, check_batch_independence,
          check_all_ones_mask_equals_no_mask, check_masked_step_equals_removed_step,
          check_no_uninitialized_reads, check_go_backwards, check_repr, check_param_count]


def check_layer(cls, checks=CHECKS, **kw):
    """Run ``checks`` on ``cls(H, **kw)``; each raises AssertionError naming what broke."""
    for check in checks:
        check(cls, kw)


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__.removeprefix("check_") for c in CHECKS])
@pytest.mark.parametrize("layer", list(LAYERS), ids=list(LAYERS))
def test_conformance(layer, check):
    cls, kw = LAYERS[layer]
    check_layer(cls, checks=[check], **kw)
