"""Truncated BPTT in the trainer: the gradients of every update against independently computed ones.

A recording optimizer keeps each update's gradients and leaves the weights alone, so every window's
gradient can be recomputed from scratch with the same weights: the state at the window's start by a
plain forward pass over the steps before it, then forward + backward over the window with that state
held fixed (and, for one window, by central finite differences of the window's loss).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from rnnlab.data.batches import ArrayBatches
from rnnlab.data.synthetic import ADDING_BASELINE_MSE, adding_problem
from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.layers import Dense
from rnnlab.nn.losses import get as get_loss
from rnnlab.nn.recurrent import GRU, LSTM, Recurrent, SimpleRNN
from rnnlab.nn.sequential import Sequential
from rnnlab.optim.optimizers import Optimizer
from rnnlab.training.trainer import TrainConfig, Trainer


# ---------------------------------------------------------------------- stand-ins for rnnlab.data
@dataclass
class Batch:
    x: np.ndarray
    y: np.ndarray
    mask: np.ndarray | None = None
    new_sequence: bool = True


class FixedBatches:
    """The same list of batches every epoch (the Batches protocol)."""

    def __init__(self, batches):
        self.batches = list(batches)

    def __len__(self):
        return len(self.batches)

    def set_epoch(self, epoch):
        self.epoch = epoch

    def batches_from(self, epoch, start):
        return iter(self.batches[start:])


class Recorder(Optimizer):
    """Keeps a copy of every update's gradients; never changes a weight."""

    def __init__(self):
        super().__init__(lr=1.0)
        self.records: list[dict[str, np.ndarray]] = []

    def step(self, model):
        self.records.append({name: g.copy() for name, g in model.named_grads()})


def make_model(seed=0):
    """Two recurrent layers (LSTM then GRU, so both an (h, c) and an (h,) state are carried) and a Dense head."""
    return Sequential([LSTM(3, input_size=2, return_sequences=True, seed=seed, dtype="float64"),
                       GRU(3, return_sequences=True, seed=seed + 1, dtype="float64"),
                       Dense(1, seed=seed + 2, dtype="float64")])


def data(B=2, T=9, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, 2))
    y = rng.standard_normal((B, T, 1))
    return x, y


def recorded_updates(model, batches, tmp_path, **config):
    trainer = Trainer(model, "mse", TrainConfig(epochs=1, **config), FixedBatches(batches), None, tmp_path)
    trainer.optimizer = Recorder()
    trainer.run()
    return trainer.optimizer.records


# ---------------------------------------------------------------------- the reference computation
def layers(model):
    return [m for m in model.layers if isinstance(m, Recurrent)]


def state_at(model, x, t):
    """The recurrent states after the steps ``x[:, :t]`` from zeros: one plain forward pass."""
    for layer in layers(model):
        layer.stateful = True
        layer.reset_state()
    if t > 0:
        model(x[:, :t])
    states = [layer.states for layer in layers(model)]
    return states


def window_loss_and_grads(model, x, y, s, a, e, states):
    """Loss of the outputs a..e-1 of a forward pass over x[:, s:e] from ``states``, and its gradients."""
    for layer, st in zip(layers(model), states):
        layer.stateful = True
        layer.states = st
    loss = get_loss("mse")
    model.zero_grad()
    out = model(x[:, s:e], training=True)
    value = loss(out[:, a - s:], y[:, a:e])
    dy = np.zeros_like(out)
    dy[:, a - s:] = loss.backward()
    model.backward(dy)
    return value, {name: g.copy() for name, g in model.named_grads()}


def reference_updates(model, x, y, k1, k2):
    """Williams & Peng's BPTT(k2; k1) with weights held fixed, computed window by window from scratch."""
    T, out = x.shape[1], []
    for a in range(0, T, k1):
        e = min(a + k1, T)
        s = max(0, a - (k2 - k1))
        _, grads = window_loss_and_grads(model, x, y, s, a, e, state_at(model, x, s))
        out.append(grads)
    for layer in layers(model):
        layer.stateful = False
        layer.reset_state()
    return out


def assert_same_updates(got, expected, rtol=1e-12, exact=False):
    assert len(got) == len(expected)
    for i, (g, r) in enumerate(zip(got, expected)):
        assert g.keys() == r.keys()
        for name in g:
            if exact:
                assert np.array_equal(g[name], r[name]), f"update {i}, {name}"
            else:
                np.testing.assert_allclose(g[name], r[name], rtol=rtol, atol=1e-14, err_msg=f"update {i}, {name}")


# ---------------------------------------------------------------------- tests
def test_truncation_at_the_sequence_length_is_full_bptt(tmp_path):
    x, y = data(T=7)
    full = recorded_updates(make_model(), [Batch(x, y)], tmp_path / "full")
    k_eq_T = recorded_updates(make_model(), [Batch(x, y)], tmp_path / "k", bptt=7)
    longer = recorded_updates(make_model(), [Batch(x, y)], tmp_path / "k1k2", bptt_k1=7, bptt_k2=7)
    assert len(full) == 1
    assert_same_updates(k_eq_T, full, exact=True)
    assert_same_updates(longer, full, exact=True)
    # and full BPTT is the gradient of the whole sequence's loss from zero state
    model = make_model()
    _, grads = window_loss_and_grads(model, x, y, 0, 0, 7, state_at(model, x, 0))
    assert_same_updates(full, [grads])


@pytest.mark.parametrize("config", [{"bptt": 3}, {"bptt_k1": 3, "bptt_k2": 3}], ids=["bptt", "k1=k2"])
def test_truncated_bptt_chunks_match_the_hand_computed_truncated_gradients(tmp_path, config):
    x, y = data(T=8)  # chunks [0, 3), [3, 6), [6, 8)
    got = recorded_updates(make_model(), [Batch(x, y)], tmp_path, **config)
    assert len(got) == 3
    assert_same_updates(got, reference_updates(make_model(), x, y, 3, 3))


def test_plain_bptt_and_k1_equal_k2_give_bitwise_identical_updates(tmp_path):
    x, y = data(T=8)
    plain = recorded_updates(make_model(), [Batch(x, y)], tmp_path / "a", bptt=2)
    general = recorded_updates(make_model(), [Batch(x, y)], tmp_path / "b", bptt_k1=2, bptt_k2=2)
    assert_same_updates(general, plain, exact=True)


def test_truncation_really_cuts_the_gradient(tmp_path):
    """The last chunk's gradient differs from the gradient of the same loss through the whole sequence."""
    x, y = data(T=8)
    got = recorded_updates(make_model(), [Batch(x, y)], tmp_path, bptt=3)
    model = make_model()
    _, through_all = window_loss_and_grads(model, x, y, 0, 6, 8, state_at(model, x, 0))
    assert not np.allclose(got[-1]["0.W"], through_all["0.W"], rtol=1e-6)
    np.testing.assert_array_equal(got[-1]["2.V"].shape, through_all["2.V"].shape)


def test_a_chunk_gradient_matches_finite_differences_with_the_carried_state_held_constant(tmp_path):
    x, y = data(T=6)
    got = recorded_updates(make_model(), [Batch(x, y)], tmp_path, bptt=2)
    model = make_model()
    carried = state_at(model, x, 2)  # computed once, with the unperturbed weights: held constant
    eps = 1e-6
    for name, p in model.named_parameters():
        numeric = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            orig = p[idx]
            p[idx] = orig + eps
            plus, _ = window_loss_and_grads(model, x, y, 2, 2, 4, carried)
            p[idx] = orig - eps
            minus, _ = window_loss_and_grads(model, x, y, 2, 2, 4, carried)
            p[idx] = orig
            numeric[idx] = (plus - minus) / (2 * eps)
        rel = np.abs(got[1][name] - numeric).max() / max(np.abs(numeric).max(), 1e-8)
        assert rel < 1e-6, f"{name}: relative error {rel:.2e}"


@pytest.mark.parametrize(("k1", "k2"), [(2, 4), (2, 3), (3, 7)], ids=["k2=2k1", "k2-k1<k1", "k2-k1>k1"])
def test_k1_k2_windows_match_williams_and_peng_recomputed_from_scratch(tmp_path, k1, k2):
    x, y = data(T=10)
    got = recorded_updates(make_model(), [Batch(x, y)], tmp_path, bptt_k1=k1, bptt_k2=k2)
    assert len(got) == -(-10 // k1)
    assert_same_updates(got, reference_updates(make_model(), x, y, k1, k2))


def test_windows_reach_back_into_the_previous_batch_of_a_stream(tmp_path):
    """Two batches continuing one another (new_sequence=False) train as the one long sequence."""
    x, y = data(T=12)
    one = recorded_updates(make_model(), [Batch(x, y)], tmp_path / "one", bptt_k1=2, bptt_k2=5)
    two = recorded_updates(make_model(), [Batch(x[:, :6], y[:, :6]), Batch(x[:, 6:], y[:, 6:], new_sequence=False)],
                           tmp_path / "two", bptt_k1=2, bptt_k2=5)
    assert_same_updates(two, one)
    assert_same_updates(two, reference_updates(make_model(), x, y, 2, 5))


def test_full_bptt_on_a_stream_carries_the_state_without_backpropagating_through_it(tmp_path):
    x, y = data(T=8)
    got = recorded_updates(make_model(), [Batch(x[:, :4], y[:, :4]), Batch(x[:, 4:], y[:, 4:], new_sequence=False)],
                           tmp_path)
    assert_same_updates(got, reference_updates(make_model(), x, y, 4, 4))
    restart = recorded_updates(make_model(), [Batch(x[:, :4], y[:, :4]), Batch(x[:, 4:], y[:, 4:], new_sequence=True)],
                               tmp_path / "restart")
    model = make_model()
    _, from_zero = window_loss_and_grads(model, x, y, 4, 4, 8, state_at(model, x, 0))
    assert_same_updates(restart[1:], [from_zero])


def test_masked_steps_in_a_window_change_nothing(tmp_path):
    """Padding at the end of one sequence: loss and gradients ignore it, chunk by chunk."""
    x, y = data(T=6)
    mask = np.ones((2, 6), dtype=bool)
    mask[1, 4:] = False
    garbage = x.copy()
    garbage[1, 4:] = 100.0
    a = recorded_updates(make_model(), [Batch(x, y, mask)], tmp_path / "a", bptt=2)
    b = recorded_updates(make_model(), [Batch(garbage, y * 1, mask)], tmp_path / "b", bptt=2)
    assert_same_updates(b, a, exact=True)
    assert all(np.isfinite(g).all() for r in a for g in r.values())


def test_truncation_needs_one_output_per_step(tmp_path):
    x, y = data(T=6)
    model = Sequential([LSTM(3, input_size=2, seed=0, dtype="float64"), Dense(1, seed=1, dtype="float64")])
    with pytest.raises(ValueError, match="one target per step"):
        recorded_updates(model, [Batch(x, y[:, -1])], tmp_path, bptt=2)
    with pytest.raises(ValueError, match=r"one output per step \(return_sequences=True"):
        recorded_updates(model, [Batch(x, y)], tmp_path / "b", bptt=2)


def test_layers_reading_backwards_cannot_carry_state(tmp_path):
    x, y = data(T=6)
    model = Sequential([Bidirectional(SimpleRNN(3, input_size=2, return_sequences=True, seed=0)), Dense(1, seed=1)])
    with pytest.raises(ValueError, match=r"layers reading the sequence backwards cannot do: '0'"):
        recorded_updates(model, [Batch(x.astype(np.float32), y.astype(np.float32))], tmp_path, bptt=3)
    with pytest.raises(ValueError, match="new_sequence=False"):
        recorded_updates(model, [Batch(x.astype(np.float32), y.astype(np.float32), new_sequence=False)],
                         tmp_path / "b")


# ---------------------------------------------------------------------- learning
def test_lstm_learns_the_adding_problem_well_below_the_baseline(tmp_path):
    x, y = adding_problem(512, 12, seed=0)
    xv, yv = adding_problem(256, 12, seed=1)
    model = Sequential([LSTM(16, input_size=2, seed=1), Dense(1, seed=2)])
    config = TrainConfig(epochs=25, lr=0.01, clip_norm=1.0, metrics=["mae"], log_every=1000)
    train, val = ArrayBatches(x, y, batch_size=32, seed=0), ArrayBatches(xv, yv, batch_size=256, shuffle=False)
    history = Trainer(model, "mse", config, train, val, tmp_path).run()
    assert history["val_loss"][0] > 0.05  # starts near the memoryless baseline
    assert history["val_loss"][-1] < 0.01 < ADDING_BASELINE_MSE / 10
    assert history["val_mae"][-1] < 0.1
