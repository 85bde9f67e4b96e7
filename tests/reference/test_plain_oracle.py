"""Every path of every recurrent layer against the plain NumPy oracle (``plain.py``), in float64.

The oracle is the textbook loop over time, written without anything of rnnlab's; no PyTorch is needed.
Each cell configuration is run on each path it has (the numba kernels, the LSTM's halved weights, plain
NumPy), forced through :meth:`rnnlab.nn.cells.Cell.path`, on random shapes, initial states, masks (right
and left padding, holes, rows that are all padding, steps that are padding for the whole batch) and both
directions; outputs, final states, ``dx``, the initial states' gradients and every parameter gradient must
agree to ~1e-12. :class:`~rnnlab.nn.bidirectional.Bidirectional` is checked against two oracle runs.
"""

from __future__ import annotations

import os

import numpy as np
import plain
import pytest

from rnnlab.nn import kernels
from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.cells import Cell, Path
from rnnlab.nn.recurrent import GRU, LSTM, SimpleRNN

# configuration -> (layer class, its arguments, the oracle's cell, the paths it has), written down
# independently of the code under test
CONFIGS = {
    "rnn-tanh": (SimpleRNN, {"activation": "tanh"}, plain.Elman("tanh"), ("kernel", "numpy")),
    "rnn-relu": (SimpleRNN, {"activation": "relu"}, plain.Elman("relu"), ("numpy",)),
    "rnn-sigmoid": (SimpleRNN, {"activation": "sigmoid"}, plain.Elman("sigmoid"), ("numpy",)),
    "rnn-linear": (SimpleRNN, {"activation": "linear"}, plain.Elman("linear"), ("numpy",)),
    "lstm": (LSTM, {}, plain.LSTM("tanh"), ("kernel", "halved", "numpy")),
    "lstm-relu": (LSTM, {"candidate_activation": "relu"}, plain.LSTM("relu"), ("numpy",)),
    "gru": (GRU, {"reset_after": True}, plain.GRU(reset_after=True), ("kernel", "numpy")),
    "gru-v1": (GRU, {"reset_after": False}, plain.GRU(reset_after=False), ("numpy",)),
}
CASES = [(config, path) for config, (*_, paths) in CONFIGS.items() for path in paths]
TOL = {"rtol": 1e-12, "atol": 1e-12}


@pytest.fixture
def force_path(monkeypatch):
    """``force_path("halved")`` makes every cell take that path, forward and backward."""

    def force(name: str) -> Path:
        path = Path(name)
        if path is Path.KERNEL and not kernels.available():
            if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
                pytest.fail("CI requires the numba kernel tests: install the test extra (pip install -e '.[test]')")
            pytest.skip("numba is not installed (pip install rnnlab[fast])")
        monkeypatch.setattr(Cell, "path", lambda cell, dtype, steps, *, grad_norms=False: path)
        return path

    return force


def draw_mask(rng, kind, B, T):
    """(B, T) boolean mask of a kind, or None; the first row is all padding where the kind has padding."""
    if kind == "none":
        return None
    if kind == "random":  # holes anywhere, one step that is padding for the whole batch
        mask = rng.random((B, T)) < 0.6
        mask[:, rng.integers(T)] = False
    else:
        lengths = rng.integers(0, T + 1, size=B)
        steps = np.arange(T)[None, :]
        mask = steps >= T - lengths[:, None] if kind == "left" else steps < lengths[:, None]
    mask[0] = False
    return mask


def randomize(layer, rng):
    """Weights and biases of order one (every bias, ``b_hn`` included, away from zero)."""
    layer.set_weights({k: 0.6 * rng.standard_normal(v.shape) for k, v in layer.params.items()})


def oracle(cell, p, x, states0, mask, go_backwards, dy, d_states):
    y, states, tape = plain.forward(cell, p, x, states0, mask, go_backwards)
    dx, ds0, grads = plain.backward(cell, p, tape, x.shape, dy, d_states)
    return y, states, dx, ds0, grads


def assert_close(got, want, what):
    np.testing.assert_allclose(got, want, err_msg=what, **TOL)


@pytest.mark.parametrize("config, path", CASES, ids=[f"{c}-{p}" for c, p in CASES])
def test_every_path_matches_the_plain_oracle(force_path, config, path):
    cls, kwargs, cell, _ = CONFIGS[config]
    forced = force_path(path)
    rng = np.random.default_rng([len(config), CASES.index((config, path))])
    n = len(cell.state_names)
    scenarios = [(kind, go_backwards) for kind in ("none", "right", "left", "random") for go_backwards in (False, True)
                 for _ in range(3)]
    for kind, go_backwards in scenarios:
        B, T, D, H = (int(rng.integers(1, top)) for top in (5, 12, 6, 7))
        if kind == "random":
            B, T = max(B, 2), max(T, 2)
        return_sequences = rng.random() < 0.75
        what = f"{kind} mask, go_backwards={go_backwards}, B={B} T={T} D={D} H={H}, sequences={return_sequences}"
        layer = cls(H, input_size=D, return_sequences=return_sequences, return_state=True,
                    go_backwards=go_backwards, dtype="float64", seed=0, **kwargs)
        randomize(layer, rng)
        x = rng.standard_normal((B, T, D))
        mask = draw_mask(rng, kind, B, T)
        states0 = [0.5 * rng.standard_normal((B, H)) for _ in range(n)]
        d_states = [rng.standard_normal((B, H)) for _ in range(n)]
        dy = rng.standard_normal((B, T, H) if return_sequences else (B, H))

        y, *states = layer(x, mask=mask, initial_state=states0)
        layer.zero_grad()
        dx = layer.backward(dy, *d_states)
        assert layer._tape.scratch.path is forced and layer._tape.scratch.backward_path is forced

        if return_sequences:
            want = oracle(cell, layer.params, x, states0, mask, go_backwards, dy, d_states)
            assert_close(y, want[0], f"y, {what}")
        else:  # the last output is the final h, zero for a row that is all padding
            has_data = np.ones((B, 1)) if mask is None else mask.any(axis=1)[:, None]
            d_last = [d_states[0] + dy * has_data, *d_states[1:]]
            want = oracle(cell, layer.params, x, states0, mask, go_backwards, np.zeros((B, T, H)), d_last)
            assert_close(y, want[1][0] * has_data, f"y, {what}")
        _, want_states, want_dx, want_ds0, want_grads = want
        for name, got, expected in zip(cell.state_names, states, want_states):
            assert_close(got, expected, f"final {name}, {what}")
        assert_close(dx, want_dx, f"dx, {what}")
        for name, got, expected in zip(cell.state_names, layer.initial_state_grad, want_ds0):
            assert_close(got, expected, f"d{name}0, {what}")
        for name, expected in want_grads.items():
            assert_close(layer.grads[name], expected, f"d{name}, {what}")


@pytest.mark.parametrize("config, path", CASES, ids=[f"{c}-{p}" for c, p in CASES])
def test_bidirectional_is_two_oracle_runs(force_path, config, path):
    """The forward layer reads the sequence, the backward layer reads it reversed (its outputs put back
    in time order before the concatenation); ``dx`` and the weight gradients are each direction's."""
    cls, kwargs, cell, _ = CONFIGS[config]
    force_path(path)
    rng = np.random.default_rng([7, CASES.index((config, path))])
    n = len(cell.state_names)
    B, T, D, H = 4, 6, 3, 5
    layer = Bidirectional(cls(H, input_size=D, return_sequences=True, return_state=True, dtype="float64", seed=0,
                              **kwargs))
    for direction in (layer.forward_layer, layer.backward_layer):
        randomize(direction, rng)
    for mask in (None, draw_mask(rng, "right", B, T), draw_mask(rng, "left", B, T)):
        x = rng.standard_normal((B, T, D))
        states0 = [0.5 * rng.standard_normal((B, H)) for _ in range(2 * n)]
        d_states = [rng.standard_normal((B, H)) for _ in range(2 * n)]
        dy = rng.standard_normal((B, T, 2 * H))
        y, *states = layer(x, mask=mask, initial_state=states0)
        layer.zero_grad()
        dx = layer.backward(dy, *d_states)

        fwd = oracle(cell, layer.forward_layer.params, x, states0[:n], mask, False, dy[..., :H], d_states[:n])
        bwd = oracle(cell, layer.backward_layer.params, x, states0[n:], mask, True, dy[:, ::-1, H:], d_states[n:])
        what = "no mask" if mask is None else f"mask {mask.astype(int).tolist()}"
        assert_close(y, np.concatenate([fwd[0], bwd[0][:, ::-1]], axis=-1), f"y, {what}")
        for got, expected in zip(states, fwd[1] + bwd[1]):
            assert_close(got, expected, f"final states, {what}")
        assert_close(dx, fwd[2] + bwd[2], f"dx, {what}")
        for got, expected in zip(layer.initial_state_grad, fwd[3] + bwd[3]):
            assert_close(got, expected, f"initial-state gradients, {what}")
        for label, direction, want in (("forward", layer.forward_layer, fwd), ("backward", layer.backward_layer, bwd)):
            for name, expected in want[4].items():
                assert_close(direction.grads[name], expected, f"{label}.d{name}, {what}")


def test_the_chosen_paths_match_the_oracle_while_gradient_norms_are_recorded(kernel_backend):
    """Unforced: the paths the backend chooses, recording per-step gradient norms (the LSTM's forward
    then runs its kernel and its backward NumPy)."""
    rng = np.random.default_rng(5)
    B, T, D, H = 3, 5, 2, 4
    for config, (cls, kwargs, cell, _) in CONFIGS.items():
        n = len(cell.state_names)
        layer = cls(H, input_size=D, return_sequences=True, return_state=True, dtype="float64", seed=0, **kwargs)
        layer.record_grad_norms = True
        randomize(layer, rng)
        x, mask = rng.standard_normal((B, T, D)), draw_mask(rng, "left", B, T)
        states0 = [rng.standard_normal((B, H)) for _ in range(n)]
        dy, d_states = rng.standard_normal((B, T, H)), [rng.standard_normal((B, H)) for _ in range(n)]
        layer(x, mask=mask, initial_state=states0)
        layer.zero_grad()
        dx = layer.backward(dy, *d_states)
        _, _, want_dx, want_ds0, want_grads = oracle(cell, layer.params, x, states0, mask, False, dy, d_states)
        assert_close(dx, want_dx, f"{config} dx")
        for got, expected in zip(layer.initial_state_grad, want_ds0):
            assert_close(got, expected, f"{config} initial-state gradients")
        for name, expected in want_grads.items():
            assert_close(layer.grads[name], expected, f"{config} d{name}")


def projection_loss(cell, p, x, states0, mask, R, R_states):
    """``sum(y * R) + sum_k sum(state_k * R_k)`` of an oracle run with ``go_backwards``."""
    y, states, _ = plain.forward(cell, p, x, states0, mask, go_backwards=True)
    return np.sum(y * R) + sum(np.sum(s * r) for s, r in zip(states, R_states))


def test_the_oracle_agrees_with_finite_differences():
    """The oracle's own backward pass, checked once per cell by central differences of a random
    projection of its outputs and final states."""
    rng = np.random.default_rng(3)
    B, T, D, H = 2, 4, 3, 3
    mask = np.array([[1, 1, 1, 0], [0, 1, 1, 1]], dtype=bool)
    cells = [plain.Elman("tanh"), plain.Elman("sigmoid"), plain.LSTM("tanh"), plain.GRU(True), plain.GRU(False)]
    for cell in cells:
        G = {plain.Elman: 1, plain.LSTM: 4, plain.GRU: 3}[type(cell)]
        p = {"U": rng.standard_normal((G * H, D)), "W": rng.standard_normal((G * H, H)),
             "b": rng.standard_normal(G * H)}
        if isinstance(cell, plain.GRU) and cell.reset_after:
            p["b_hn"] = rng.standard_normal(H)
        x = rng.standard_normal((B, T, D))
        states0 = [rng.standard_normal((B, H)) for _ in cell.state_names]
        R = rng.standard_normal((B, T, H))
        R_states = [rng.standard_normal((B, H)) for _ in cell.state_names]
        _, _, dx, ds0, grads = oracle(cell, p, x, states0, mask, True, R, R_states)
        analytic = {**grads, "x": dx, **{f"state0.{i}": d for i, d in enumerate(ds0)}}
        inputs = {**p, "x": x, **{f"state0.{i}": s for i, s in enumerate(states0)}}
        for name, value in inputs.items():  # each perturbed in place: p, x and states0 hold these arrays
            numeric = np.zeros_like(value)
            for idx in np.ndindex(value.shape):
                saved = value[idx]
                value[idx] = saved + 1e-6
                up = projection_loss(cell, p, x, states0, mask, R, R_states)
                value[idx] = saved - 1e-6
                down = projection_loss(cell, p, x, states0, mask, R, R_states)
                value[idx] = saved
                numeric[idx] = (up - down) / 2e-6
            np.testing.assert_allclose(analytic[name], numeric, rtol=1e-6, atol=1e-7,
                                       err_msg=f"{type(cell).__name__} {name}")
