"""``rnnlab.diagnostics``: closed-form cases, the report's labels, the training monitor, a run directory.

Expected values come from cases solvable by hand (a linear RNN with ``W = a Q``, ``Q`` orthogonal, passes
a gradient back as ``a^k`` exactly; an LSTM with ``U = W = 0`` has constant gates), from the cell
equations, or from arrays recorded independently during training; the finite-difference checks are in
``tests/gradcheck/test_diagnostics_jacobians.py``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math

import numpy as np
import pytest

from rnnlab.cli import diagnose as diagnose_cli
from rnnlab.data.batches import ArrayBatches
from rnnlab.data.synthetic import adding_problem
from rnnlab.lab import diagnostics as dg
from rnnlab.lab.config import parse_config
from rnnlab.lab.runs import train as train_run
from rnnlab.lab.tasks import RunError
from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.layers import Dense
from rnnlab.nn.recurrent import GRU, LSTM, SimpleRNN
from rnnlab.nn.sequential import Sequential
from rnnlab.training.callbacks import Callback
from rnnlab.training.trainer import TrainConfig, Trainer


def orthogonal(n, seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return q * np.sign(np.diag(r))


def linear_rnn(a, H=4, D=2, **kwargs):
    """``h_t = a Q h_{t-1} + U x_t + b``: the gradient norm shrinks by exactly ``a`` per step back."""
    layer = SimpleRNN(H, activation="linear", input_size=D, seed=0, dtype="float64", **kwargs)
    layer.params["W"][...] = a * orthogonal(H, 7)
    return layer


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# =========================================================================== gradient through time
def test_probe_of_a_linear_rnn_decays_by_exactly_a_per_step(rng):
    a, T = 0.8, 7
    flow = dg.gradient_through_time(linear_rnn(a), rng.normal(size=(3, T, 2)))
    expected = a ** np.arange(T - 1, -1, -1.0)  # ||dL_T/dh_t|| = a^(T-1-t)
    np.testing.assert_allclose(flow.h, np.tile(expected, (3, 1)), rtol=1e-12)
    np.testing.assert_allclose(flow.mean_h, expected, rtol=1e-12)
    assert flow.decay_per_step == pytest.approx(a, rel=1e-12)
    assert flow.end_to_end == pytest.approx(a ** (T - 1), rel=1e-12)
    assert flow.c is None and flow.kind == "last_step" and flow.timesteps == T
    assert flow.probe.shape == (3, 4)


def test_probe_with_a_mask_counts_each_sequence_from_its_own_first_to_its_last_real_step(rng):
    a, T = 0.5, 6
    mask = np.array([[1, 1, 1, 1, 1, 1],    # full
                     [1, 1, 1, 0, 0, 0],    # post-padded: 3 real steps
                     [0, 0, 1, 1, 1, 1]], bool)  # pre-padded: 4 real steps
    flow = dg.gradient_through_time(linear_rnn(a), rng.normal(size=(3, T, 2)), mask)
    expected = np.array([[a ** 5, a ** 4, a ** 3, a ** 2, a, 1],
                         [a ** 2, a, 1, 0, 0, 0],
                         [0, 0, a ** 3, a ** 2, a, 1]])
    np.testing.assert_allclose(flow.h, expected, rtol=1e-12)
    assert flow.decay_per_step == pytest.approx(a, rel=1e-12)
    assert flow.end_to_end == pytest.approx(a ** 3, rel=1e-12)  # median of a^5, a^2, a^3
    # batch mean per step over the sequences real there
    np.testing.assert_allclose(flow.mean_h, [(a ** 5 + a ** 2) / 2, (a ** 4 + a) / 2, (a ** 3 + 1 + a ** 3) / 3,
                                             (a ** 2 + a ** 2) / 2, (a + a) / 2, 1.0], rtol=1e-12)


def test_probe_of_a_layer_reading_backwards_is_in_processing_order(rng):
    a = 0.5
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    flow = dg.gradient_through_time(linear_rnn(a, go_backwards=True), rng.normal(size=(2, 5, 2)), mask)
    # the first sequence is read from its padding (steps 4, 3) first, then steps 2, 1, 0
    np.testing.assert_allclose(flow.h, [[0, 0, a ** 2, a, 1], [a ** 4, a ** 3, a ** 2, a, 1]], rtol=1e-12)
    np.testing.assert_array_equal(flow.mask, mask[:, ::-1])


def test_lstm_probe_without_recurrent_weights_follows_the_forget_gates_on_the_cell_path(rng):
    """U = W = 0: constant gates i, f, g, o; h_{t-1} influences nothing, so ||dL/dh_t|| = 0 before the last
    step, while dL/dc_t = f^(T-1-t) * v * o * (1 - tanh^2 c_T) (elementwise) on the cell path."""
    H, T = 3, 6
    layer = LSTM(H, input_size=2, seed=0, dtype="float64")
    layer.params["U"][...] = 0
    layer.params["W"][...] = 0
    b = rng.normal(size=4 * H)
    b[H:2 * H] = [0.5, 2.0, 4.0]
    layer.params["b"][...] = b
    i, f, g, o = sigmoid(b[:H]), sigmoid(b[H:2 * H]), np.tanh(b[2 * H:3 * H]), sigmoid(b[3 * H:])
    c_T = i * g * (1 - f ** T) / (1 - f)  # c_t = f c_{t-1} + i g from c_0 = 0

    flow = dg.gradient_through_time(layer, rng.normal(size=(2, T, 2)), seed=5)
    dc_T = flow.probe * o * (1 - np.tanh(c_T) ** 2)  # (B, H)
    expected_c = np.stack([np.linalg.norm(dc_T * f ** (T - 1 - t), axis=1) for t in range(T)], axis=1)
    np.testing.assert_allclose(flow.c, expected_c, rtol=1e-10)
    np.testing.assert_allclose(flow.h, [[0] * (T - 1) + [1]] * 2, atol=1e-15)
    assert flow.end_to_end == 0 and flow.decay_per_step == 0
    assert dg.classify(flow.end_to_end) == "vanishing"


def test_probe_leaves_the_users_layer_as_it_was(rng):
    layer = LSTM(3, input_size=2, seed=0, return_sequences=True, stateful=True)
    x = rng.normal(size=(2, 5, 2)).astype(np.float32)
    layer(x)
    before = layer.activations()
    states = layer.states
    for probe in (lambda: dg.gradient_through_time(layer, x), lambda: dg.step_jacobians(layer, x),
                  lambda: dg.forget_gate_profile(layer, x)):
        probe()
    after = layer.activations()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert all(np.array_equal(s, t) for s, t in zip(states, layer.states))
    assert layer.return_sequences and layer.stateful and not layer.record_grad_norms and layer.grad_norms is None
    assert all(not g.any() for g in layer.grads.values())
    assert layer.dtype == np.float32 and layer.params["W"].dtype == np.float32


def test_probe_is_seeded_and_starts_from_a_given_state(rng):
    layer = GRU(4, input_size=2, seed=0)
    x = rng.normal(size=(3, 6, 2))
    one, same, other = (dg.gradient_through_time(layer, x, seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(one.h, same.h)
    assert not np.allclose(one.probe, other.probe)
    h0 = rng.normal(size=(3, 4))
    moved = dg.gradient_through_time(layer, x, initial_state=h0, seed=1)
    assert not np.allclose(moved.h[:, 0], one.h[:, 0])
    generator = dg.gradient_through_time(layer, x, seed=np.random.default_rng(1))
    np.testing.assert_array_equal(generator.h, one.h)


def test_a_float32_layer_is_probed_in_float64_so_tiny_gradients_are_measured(rng):
    layer = SimpleRNN(4, activation="linear", input_size=2, seed=0)
    layer.params["W"][...] = 0.05 * orthogonal(4, 7)  # float32 weights: 0.05 Q up to rounding
    flow = dg.gradient_through_time(layer, rng.normal(size=(1, 40, 2)).astype(np.float32))
    assert flow.h[0, 0] == pytest.approx(0.05 ** 39, rel=1e-4)  # 1.8e-51: below float32's smallest number


def test_real_loss_of_a_many_to_one_linear_model_in_closed_form(rng):
    """L = mean (y - y*)^2 with y = V h_T + c: dL/dh_T = 2 (y - y*) V / B, then a^k back in time."""
    a, B, T = 0.7, 3, 5
    rnn = linear_rnn(a)
    dense = Dense(1, input_size=4, seed=1, dtype="float64")
    model = Sequential([rnn, dense])
    x, target = rng.normal(size=(B, T, 2)), rng.normal(size=(B, 1))
    y = model(x)
    flows = dg.gradient_through_time_of_loss(model, x, target, "mse")
    at_T = np.abs(2 * (y - target)[:, 0] / B) * np.linalg.norm(dense.params["V"])  # (B,)
    np.testing.assert_allclose(flows["0"].h, at_T[:, None] * a ** np.arange(T - 1, -1, -1.0), rtol=1e-12)
    assert flows["0"].kind == "loss" and flows["0"].probe is None
    assert all(not g.any() for g in model.grads.values())  # the model's own gradients are untouched


def test_real_loss_names_each_direction_of_a_bidirectional_layer_and_uses_the_output_mask(rng):
    from rnnlab.nn.layers import Embedding

    model = Sequential([Embedding(6, 3, mask_zero=True, seed=0), Bidirectional(LSTM(4, return_sequences=True, seed=1)),
                        Dense(6, seed=2)])
    ids = np.array([[1, 2, 3, 0], [4, 5, 1, 2]])
    flows = dg.gradient_through_time_of_loss(model, ids, ids, "cross_entropy")
    assert set(flows) == {"1.forward", "1.backward"}
    np.testing.assert_array_equal(flows["1.forward"].mask, ids != 0)
    np.testing.assert_array_equal(flows["1.backward"].mask, (ids != 0)[:, ::-1])
    assert flows["1.forward"].h[0, 3] == 0 and flows["1.forward"].c is not None


# =========================================================================== step Jacobians
@pytest.mark.parametrize("activation, derivative", [("tanh", lambda a: 1 - a ** 2), ("sigmoid", lambda a: a * (1 - a)),
                                                    ("relu", lambda a: (a > 0).astype(float))])
def test_elman_step_jacobian_is_diag_of_f_prime_times_W(activation, derivative, rng):
    layer = SimpleRNN(4, activation=activation, input_size=3, seed=2, dtype="float64", return_sequences=True)
    x = rng.normal(size=(2, 5, 3))
    mask = np.array([[1, 1, 0, 1, 1], [1, 1, 1, 1, 0]], bool)
    J = dg.step_jacobians(layer, x, mask)
    layer(x, mask=mask)
    a = layer.activations()["h"]  # (B, T, H), the outputs a_t
    expected = derivative(a)[..., None] * layer.params["W"]  # diag(f'(z_t)) W
    expected[~mask] = np.eye(4)
    np.testing.assert_allclose(J, expected, rtol=1e-12, atol=1e-14)


def test_jacobian_norms_and_running_products_against_explicit_matrices(rng):
    J = rng.normal(size=(2, 4, 3, 3))
    norms = dg.jacobian_norms(J)
    np.testing.assert_allclose(norms, [[np.linalg.svd(J[b, t], compute_uv=False)[0] for t in range(4)]
                                       for b in range(2)])
    products = dg.running_products(J)
    for b in range(2):
        for t in range(4):
            M = np.eye(3)
            for k in range(3, t, -1):  # J_T ... J_{t+1}, the last step leftmost
                M = M @ J[b, k]
            assert products[b, t] == pytest.approx(np.linalg.norm(M, 2), rel=1e-12)
    assert products.shape == (2, 4) and np.all(products[:, -1] == pytest.approx(1.0))


def test_running_products_of_a_linear_rnn_are_powers_of_a(rng):
    a = 1.5
    J = dg.step_jacobians(linear_rnn(a), rng.normal(size=(1, 6, 2)))
    np.testing.assert_allclose(dg.jacobian_norms(J), a, rtol=1e-12)
    np.testing.assert_allclose(dg.running_products(J)[0], a ** np.arange(5, -1, -1.0), rtol=1e-12)


# =========================================================================== weights and gates
def test_weight_spectrum_of_a_scaled_orthogonal_and_of_a_triangular_matrix():
    layer = SimpleRNN(5, input_size=1, seed=0)
    layer.params["W"][...] = 0.7 * orthogonal(5, 3)  # every eigenvalue and singular value has modulus 0.7
    spectrum = dg.weight_spectrum(layer)
    assert spectrum["max_singular_value"] == pytest.approx(0.7, rel=1e-6)
    assert spectrum["spectral_radius"] == pytest.approx(0.7, rel=1e-6)
    assert spectrum["gates"] == {}

    small = SimpleRNN(2, input_size=1, seed=0, dtype="float64")
    small.params["W"][...] = [[0.5, 2.0], [0.0, 0.3]]  # eigenvalues 0.5, 0.3
    fro2, det = 0.25 + 4.0 + 0.09, 0.15  # sigma_max^2 is the larger root of s^2 - ||W||_F^2 s + det^2
    spectrum = dg.weight_spectrum(small)
    assert spectrum["spectral_radius"] == pytest.approx(0.5, rel=1e-12)
    assert spectrum["max_singular_value"] == pytest.approx(math.sqrt((fro2 + math.sqrt(fro2 ** 2 - 4 * det ** 2)) / 2))
    assert spectrum["max_singular_value"] == pytest.approx(np.linalg.svd(small.params["W"], compute_uv=False)[0])


def test_weight_spectrum_per_gate_of_lstm_and_gru():
    lstm = LSTM(4, input_size=2, seed=0, dtype="float64")
    scales = {"i": 0.5, "f": 1.5, "g": 2.0, "o": 0.25}
    lstm.params["W"][...] = np.concatenate([s * orthogonal(4, k) for k, s in enumerate(scales.values())])
    spectrum = dg.weight_spectrum(lstm)
    assert list(spectrum["gates"]) == ["i", "f", "g", "o"]
    for gate, s in scales.items():
        assert spectrum["gates"][gate]["max_singular_value"] == pytest.approx(s, rel=1e-12)
        assert spectrum["gates"][gate]["spectral_radius"] == pytest.approx(s, rel=1e-12)
    # W^T W = sum_k s_k^2 Q_k^T Q_k = (sum_k s_k^2) I
    assert spectrum["max_singular_value"] == pytest.approx(math.sqrt(sum(s * s for s in scales.values())), rel=1e-12)
    assert spectrum["spectral_radius"] is None  # (4H, H) is not square
    assert list(dg.weight_spectrum(GRU(3, input_size=2, seed=0))["gates"]) == ["r", "z", "n"]


def test_forget_gate_profile_of_constant_gates_excludes_padding(rng):
    layer = LSTM(3, input_size=2, seed=0, dtype="float64")
    layer.params["U"][...] = 0
    layer.params["W"][...] = 0
    layer.params["b"][3:6] = [-1.0, 0.0, 3.0]
    mask = np.array([[1, 1, 0, 1], [1, 0, 0, 0]], bool)
    profile = dg.forget_gate_profile(layer, rng.normal(size=(2, 4, 2)), mask)
    expected = sigmoid(np.array([-1.0, 0.0, 3.0])).mean()
    np.testing.assert_array_equal(profile.mask, [False, False, True, False])  # step 2 is padding everywhere
    np.testing.assert_allclose(profile.compressed(), expected, rtol=1e-12)


def test_forget_gate_profile_is_the_mean_of_f_over_real_entries(rng):
    layer = LSTM(3, input_size=2, seed=0, forget_bias=2.0)
    x = rng.normal(size=(3, 5, 2))
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [0, 1, 1, 1, 1]], bool)
    profile = dg.forget_gate_profile(layer, x, mask)
    layer(x, mask=mask)
    f = layer.activations()["f"]  # (B, T, H)
    expected = [f[mask[:, t], t].mean() for t in range(5)]
    np.testing.assert_allclose(profile, expected, rtol=1e-5)
    assert not np.ma.is_masked(profile)


# =========================================================================== the report
def test_tanh_rnn_with_small_weights_is_vanishing(rng):
    layer = SimpleRNN(8, input_size=2, seed=0)
    layer.params["W"][...] = 0.5 * orthogonal(8, 1)
    report = dg.gradient_report(layer, rng.normal(size=(4, 50, 2)))
    (line,) = report.layers
    assert line.label == "vanishing" and line.end_to_end < dg.VANISHING_BELOW
    assert line.decay_per_step <= 0.5 * (1 + 1e-6)  # ||J_t|| <= max|tanh'| ||W|| = 0.5
    assert line.max_singular_value == pytest.approx(0.5, rel=1e-6)
    assert (line.name, line.cell, line.hidden_size, line.timesteps, line.forget_gate) == (
        "layer", "SimpleRNN(tanh)", 8, 50, None)


def test_relu_rnn_with_large_weights_is_exploding(rng):
    layer = SimpleRNN(8, activation="relu", input_size=2, seed=0)
    layer.params["W"][...] = 3.0 * orthogonal(8, 1)
    (line,) = dg.gradient_report(layer, rng.normal(size=(4, 30, 2))).layers
    assert line.label == "exploding" and line.end_to_end > dg.EXPLODING_ABOVE
    assert line.decay_per_step <= 3.0 * (1 + 1e-6)  # ||J_t|| <= max relu' ||W|| = 3


def test_a_gradient_that_overflows_float64_is_reported_exploding():
    layer = SimpleRNN(4, activation="relu", input_size=1, seed=0, dtype="float64")
    layer.params["W"][...] = 3.0 * np.eye(4)
    layer.params["b"][...] = 1.0  # every unit active: the state grows as 3^t, the gradient as 3^(T-t)
    x = np.zeros((2, 400, 1))
    flow = dg.gradient_through_time(layer, x)  # ||dL_T/dh_1|| ~ 3^399 ~ 1e190: squares overflow, norms do not
    assert np.all(np.isfinite(flow.h)) and flow.end_to_end > 1e180
    assert flow.decay_per_step == pytest.approx(3.0, rel=1e-6)
    model = Sequential([layer, Dense(1, seed=0, dtype="float64")])
    with pytest.raises(FloatingPointError, match="the loss or the model's backward pass overflowed float64"):
        dg.gradient_through_time_of_loss(model, x, np.ones((2, 1)), "mse")  # y ~ 3^400: its square overflows
    (line,) = dg.gradient_report(layer, x).layers
    assert (line.label, line.timesteps) == ("exploding", 400) and line.end_to_end > 1e180
    with pytest.raises(FloatingPointError, match="the model's forward pass overflowed float64"):
        dg.gradient_report(layer, np.zeros((2, 700, 1)))  # 3^700: the state itself is beyond float64


def test_lstm_with_a_large_forget_bias_is_healthy(rng):
    layer = LSTM(8, input_size=2, seed=0, forget_bias=5.0)
    (line,) = dg.gradient_report(layer, rng.normal(size=(4, 50, 2))).layers
    assert line.label == "healthy"
    assert dg.VANISHING_BELOW <= line.end_to_end <= dg.EXPLODING_ABOVE
    assert line.forget_gate > 0.98 and line.cell == "LSTM"


def test_report_of_a_stacked_bidirectional_model_lists_every_layer_in_an_aligned_table(rng):
    model = Sequential([LSTM(5, input_size=2, return_sequences=True, seed=0),
                        Bidirectional(GRU(3, seed=1, return_sequences=True)), SimpleRNN(2, seed=2), Dense(1, seed=3)])
    mask = np.ones((3, 8), bool)
    mask[1, 5:] = False
    report = dg.gradient_report(model, rng.normal(size=(3, 8, 2)), mask)
    assert [line.name for line in report.layers] == ["0", "1.forward", "1.backward", "2"]
    assert [line.cell for line in report.layers] == ["LSTM", "GRU", "GRU", "SimpleRNN(tanh)"]
    assert [line.timesteps for line in report.layers] == [8] * 4  # median of 8, 5, 8 real steps
    assert set(report.labels.values()) <= set(dg.LABELS)
    lines = report.table().splitlines()
    assert lines[0].split()[:3] == ["layer", "cell", "H"]
    rows = lines[2:6]
    assert [row.split()[0] for row in rows] == ["0", "1.forward", "1.backward", "2"]
    assert len({len(row.split()) for row in rows}) == 1  # every column filled ("-" for no forget gate)
    header_end = lines[0].index("label")
    assert all(row[header_end:].strip() in dg.LABELS for row in rows)  # the label column lines up
    document = json.loads(json.dumps(report.to_dict()))
    assert document["thresholds"] == {"vanishing_below": 1e-3, "exploding_above": 1e3}
    assert [d["name"] for d in document["layers"]] == ["0", "1.forward", "1.backward", "2"]
    assert document["layers"][0]["forget_gate"] == pytest.approx(report.layers[0].forget_gate)


@pytest.mark.parametrize("ratio, label", [(0.0, "vanishing"), (9.99e-4, "vanishing"), (1e-3, "healthy"),
                                          (1.0, "healthy"), (1e3, "healthy"), (1.01e3, "exploding"),
                                          (math.inf, "exploding")])
def test_classify_thresholds(ratio, label):
    assert dg.classify(ratio) == label


def test_plot_draws_the_batch_means_on_a_log_scale(rng):
    pytest.importorskip("matplotlib")
    flow = dg.gradient_through_time(LSTM(3, input_size=2, seed=0), rng.normal(size=(2, 6, 2)))
    ax = flow.plot()
    assert ax.get_yscale() == "log" and len(ax.get_lines()) == 2
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), flow.mean_h)
    again = flow.plot(ax=ax)
    assert again is ax and len(ax.get_lines()) == 4


# =========================================================================== errors
def test_errors_name_the_argument_and_what_was_received(rng):
    x = rng.normal(size=(2, 4, 2))
    with pytest.raises(TypeError, match="recurrent layer .* got Dense"):
        dg.gradient_through_time(Dense(2, input_size=2), x)
    with pytest.raises(TypeError, match="Bidirectional, which holds two"):
        dg.step_jacobians(Bidirectional(GRU(2, input_size=2)), x)
    with pytest.raises(ValueError, match="no weights yet"):
        dg.weight_spectrum(LSTM(3))
    with pytest.raises(TypeError, match="forget gates belong to the LSTM; got a GRU"):
        dg.forget_gate_profile(GRU(2, input_size=2), x)
    with pytest.raises(ValueError, match=r"x must have 3 features .* got shape \(2, 4, 2\)"):
        dg.gradient_through_time(GRU(2, input_size=3), x)
    with pytest.raises(TypeError, match="seed must be .* got str 'a'"):
        dg.gradient_through_time(GRU(2, input_size=2), x, seed="a")
    with pytest.raises(ValueError, match=r"J must have shape \(B, T, S, S\).* got \(2, 4, 2\)"):
        dg.jacobian_norms(x)
    with pytest.raises(ValueError, match="NaN or inf"):
        dg.running_products(np.full((1, 2, 2, 2), np.inf))
    with pytest.raises(ValueError, match="ratio must be a non-negative number, got -1"):
        dg.classify(-1.0)
    with pytest.raises(ValueError, match="no recurrent layer"):
        dg.gradient_report(Dense(2, input_size=2), x)
    with pytest.raises(ValueError, match="at least 2 real steps"):
        dg.gradient_report(GRU(2, input_size=2), x[:, :1])
    with pytest.raises(ValueError, match="every must be a positive int, got 0"):
        dg.GradientMonitor(every=0)
    with pytest.raises(ValueError, match=r"keys batches, history; got \['steps'\]"):
        dg.GradientMonitor().load_state_dict({"steps": 1})
    with pytest.raises(ValueError, match="on_train_begin, which was not called"):
        dg.GradientMonitor().on_batch_end(None, {"loss": 1.0})


# =========================================================================== the training monitor
class _Recorder(Callback):
    """Copies of the weights at the start and of the gradients and weights at every batch end."""

    def __init__(self):
        self.params, self.grads, self.losses = [], [], []

    def on_train_begin(self, trainer):
        self.params.append({k: p.copy() for k, p in trainer.model.named_parameters()})

    def on_batch_end(self, trainer, logs):
        self.grads.append({k: g.copy() for k, g in trainer.model.named_grads()})
        self.params.append({k: p.copy() for k, p in trainer.model.named_parameters()})
        self.losses.append(logs["loss"])


def _tiny_training(run_dir, monitor, *, epochs=2, max_steps=None, resume=False, extra=()):
    x, y = adding_problem(24, 5, seed=0, dtype="float64")
    model = Sequential([SimpleRNN(3, input_size=2, seed=0, dtype="float64"), Dense(1, seed=1, dtype="float64")])
    config = TrainConfig(epochs=epochs, optimizer="sgd", lr=0.1, max_steps=max_steps, log_every=100)
    trainer = Trainer(model, "mse", config, ArrayBatches(x, y, batch_size=8, seed=0), None, run_dir,
                      callbacks=[monitor, *extra])
    trainer.print_fn = lambda message: None
    trainer.run(resume=resume)
    return trainer


def test_monitor_records_gradient_norms_and_update_ratios_of_every_batch(tmp_path):
    monitor, recorder = dg.GradientMonitor(every=1), _Recorder()
    _tiny_training(tmp_path, monitor, extra=[recorder])
    assert len(monitor.history) == 6  # 3 batches x 2 epochs
    names = list(recorder.grads[0])
    for k, row in enumerate(monitor.history):
        assert (row["step"], row["epoch"], row["batch"]) == (k + 1, k // 3 + 1, k % 3 + 1)
        assert row["loss"] == recorder.losses[k]
        g, before, after = recorder.grads[k], recorder.params[k], recorder.params[k + 1]
        for name in names:
            assert row[f"grad_norm/{name}"] == pytest.approx(np.linalg.norm(g[name]), rel=1e-12)
            ratio = np.linalg.norm(after[name] - before[name]) / np.linalg.norm(after[name])
            assert row[f"update_ratio/{name}"] == pytest.approx(ratio, rel=1e-12)
            # plain SGD: the update is -lr * g
            assert row[f"update_ratio/{name}"] == pytest.approx(
                0.1 * np.linalg.norm(g[name]) / np.linalg.norm(after[name]), rel=1e-9)
        assert row["grad_norm"] == pytest.approx(math.sqrt(sum(np.sum(g[n] ** 2) for n in names)), rel=1e-12)


def test_monitor_every_k_batches_measures_the_recorded_batchs_own_update(tmp_path):
    monitor, recorder = dg.GradientMonitor(every=2), _Recorder()
    _tiny_training(tmp_path, monitor, extra=[recorder])
    assert [row["step"] for row in monitor.history] == [2, 4, 6]
    for row in monitor.history:
        k = row["step"] - 1
        before, after = recorder.params[k], recorder.params[k + 1]  # around batch k + 1 only
        for name in after:
            ratio = np.linalg.norm(after[name] - before[name]) / np.linalg.norm(after[name])
            assert row[f"update_ratio/{name}"] == pytest.approx(ratio, rel=1e-12)


def test_monitor_history_survives_resume_exactly(tmp_path):
    whole = dg.GradientMonitor(every=2)
    _tiny_training(tmp_path / "whole", whole)
    first = dg.GradientMonitor(every=2)
    _tiny_training(tmp_path / "split", first, max_steps=3)  # stops at the end of epoch 1, after batch 3
    assert [row["step"] for row in first.history] == [2]
    resumed = dg.GradientMonitor(every=2)
    _tiny_training(tmp_path / "split", resumed, resume=True)
    assert resumed.history == whole.history and resumed.batches == 6


def test_monitor_csv_round_trip(tmp_path):
    monitor = dg.GradientMonitor(every=3)
    _tiny_training(tmp_path, monitor)
    path = monitor.to_csv(tmp_path / "gradients.csv")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and list(rows[0]) == list(monitor.history[0])
    for row, recorded in zip(rows, monitor.history):
        assert {k: float(v) for k, v in row.items()} == pytest.approx(recorded, rel=0, abs=0)
    assert dg.GradientMonitor().to_csv(tmp_path / "empty.csv").read_text() == "step,epoch,batch,loss,grad_norm\n"


# =========================================================================== a run directory and the CLI
ADDING_RUN = """
[data]
task = "adding"
seq_len = 12
n_train = 32
n_val = 16
n_test = 8
batch_size = 8
[model]
hidden_size = 4
[train]
epochs = 1
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("diagnose") / "run"
    with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
        train_run(parse_config(ADDING_RUN), directory)
    return directory


def test_diagnose_a_trained_run(run_dir):
    report = dg.diagnose(run_dir, batch_size=5)
    (line,) = report.layers
    assert (line.name, line.cell, line.hidden_size, line.timesteps) == ("0", "LSTM", 4, 12)
    assert report.batch_size == 5 and line.label in dg.LABELS
    assert report.context == {"run": str(run_dir), "task": "adding", "split": "val"}
    assert 0 < line.forget_gate < 1
    test_split = dg.diagnose(run_dir, batch_size=5, split="test", seed=1)
    assert test_split.layers[0].end_to_end != line.end_to_end  # other sequences, other probes
    with pytest.raises(ValueError, match="split must be one of 'train', 'val', 'test'; got 'dev'"):
        dg.diagnose(run_dir, split="dev")
    with pytest.raises(RunError, match="does not exist"):
        dg.diagnose(run_dir.parent / "missing")


def _cli(argv):
    parser = argparse.ArgumentParser()
    diagnose_cli.configure_cli(parser)
    return diagnose_cli.run_cli(parser.parse_args([str(a) for a in argv]))


def test_cli_prints_the_table_or_json(run_dir, capsys):
    assert _cli([run_dir, "--batch-size", "4"]) == 0
    out = capsys.readouterr().out
    assert "layer" in out.splitlines()[1] and out.splitlines()[3].split()[:2] == ["0", "LSTM"]
    assert _cli([run_dir, "--json", "--split", "test", "--seed", "3"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["context"]["split"] == "test" and document["batch_size"] == 8  # the test part holds 8
    assert document["layers"][0]["name"] == "0" and document["layers"][0]["label"] in dg.LABELS
    with pytest.raises(RunError):
        _cli([run_dir.parent / "missing"])
    with pytest.raises(SystemExit):
        _cli([run_dir, "--batch-size", "0"])
