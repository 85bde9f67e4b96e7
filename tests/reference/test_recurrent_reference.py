"""rnnlab's recurrent layers against ``torch.nn.{RNN, LSTM, GRU}`` with the same weights.

For each cell (Elman tanh and relu, LSTM, GRU), depth 1 and 2, one and two directions, a single step
and seven steps, float64 (to 1e-10) and float32 (to 1e-5), the two libraries must agree on the
output sequence, the final states of every layer and direction (``h_n``, ``c_n``), and the gradients
of ``L = sum(output * R) + sum(h_n * R_h) [+ sum(c_n * R_c)]`` with respect to the input, the initial
states of every layer and direction, and every weight (``dU = d weight_ih``, ``dW = d weight_hh``,
``db = d bias_ih = d bias_hh`` outside the GRU's n block, ``db_hn = d bias_hh[2H:]``).

Masks are compared with PyTorch's packed sequences (right padding, lengths unsorted, including a
length-1 sequence): the padded output (zeros at padding) and ``h_n`` at each sequence's last valid
step. Left padding is compared with torch run on each sequence alone.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.reference, pytest.mark.usefixtures("kernel_backend")]

KINDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]
B, D, H = 3, 4, 5
LENGTHS = [6, 3, 1, 4]  # unsorted, one full-length, one of length 1


def lengths_mask(lengths, T, *, left=False) -> np.ndarray:
    """(B, T) boolean mask, True on the valid steps; right padding unless ``left``."""
    steps = np.arange(T)[None, :]
    lengths = np.asarray(lengths)[:, None]
    return steps >= T - lengths if left else steps < lengths


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("T", [1, 7])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("kind", KINDS)
def test_outputs_states_and_every_gradient_match_torch(ref, kind, num_layers, bidirectional, T, dtype):
    rng = np.random.default_rng([num_layers, T, bidirectional, KINDS.index(kind)])
    tm = ref.torch_module(kind, input_size=D, hidden_size=H, num_layers=num_layers, bidirectional=bidirectional,
                          dtype=dtype, seed=num_layers + 10 * T)
    data = ref.draw(rng, tm, B, T)
    expected = ref.run_torch(tm, **data)
    got = ref.run_rnnlab(ref.rnnlab_layers(kind, tm), **data)
    ref.assert_runs_close(got, expected, tm, dtype)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", KINDS)
def test_torch_bias_gradients_are_equal_where_the_biases_are_summed(ref, kind, bidirectional):
    """The premise of ``b = bias_ih + bias_hh``: torch's two bias gradients agree wherever the biases
    enter only as a sum (everywhere but the GRU's n block, where they must differ)."""
    rng = np.random.default_rng(7)
    tm = ref.torch_module(kind, input_size=D, hidden_size=H, num_layers=2, bidirectional=bidirectional)
    run = ref.run_torch(tm, **ref.draw(rng, tm, B, 5))
    summed = slice(0, 2 * H) if kind == "gru" else slice(None)
    for name, g in run.grads.items():
        if name.startswith("bias_ih"):
            g_hh = run.grads[name.replace("bias_ih", "bias_hh")]
            np.testing.assert_allclose(g[summed], g_hh[summed], rtol=0, atol=1e-12, err_msg=name)
            if kind == "gru":
                assert np.abs(g[2 * H:] - g_hh[2 * H:]).max() > 1e-3, "the GRU's n-block bias gradients should differ"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", KINDS)
def test_mask_matches_packed_sequences(ref, kind, bidirectional, dtype):
    """Right-padded batch + mask == ``pack_padded_sequence(enforce_sorted=False)``, two layers.

    The padding holds random values: both sides must ignore them (torch never sees them; rnnlab
    masks them), and ``dx`` is zero there.
    """
    T = max(LENGTHS)
    rng = np.random.default_rng(11)
    tm = ref.torch_module(kind, input_size=D, hidden_size=H, num_layers=2, bidirectional=bidirectional, dtype=dtype,
                          seed=3)
    data = ref.draw(rng, tm, len(LENGTHS), T)
    expected = ref.run_torch(tm, **data, lengths=LENGTHS)
    mask = lengths_mask(LENGTHS, T)
    assert not expected.out[~mask].any(), "pad_packed_sequence pads with zeros"
    assert not expected.dx[~mask].any()
    got = ref.run_rnnlab(ref.rnnlab_layers(kind, tm), **data, mask=mask)
    ref.assert_runs_close(got, expected, tm, dtype)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", KINDS)
def test_left_padding_matches_each_sequence_run_alone(ref, kind, bidirectional):
    """A left-padded batch with its mask gives, per sequence, what torch gives on the unpadded
    sequence: outputs at the valid steps (zeros on the padding), final and initial states,
    input gradients, and the weight gradients summed over the batch."""
    T = max(LENGTHS)
    rng = np.random.default_rng(13)
    tm = ref.torch_module(kind, input_size=D, hidden_size=H, num_layers=2, bidirectional=bidirectional, seed=4)
    data = ref.draw(rng, tm, len(LENGTHS), T)
    expected = ref.run_torch_each_alone(tm, **data, lengths=LENGTHS)
    got = ref.run_rnnlab(ref.rnnlab_layers(kind, tm), **data, mask=lengths_mask(LENGTHS, T, left=True))
    ref.assert_runs_close(got, expected, tm, "float64")


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_gru_reset_after_true_is_torchs_form(ref, bidirectional):
    """torch's GRU is ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``: rnnlab's ``reset_after=True``."""
    rng = np.random.default_rng(17)
    tm = ref.torch_module("gru", input_size=D, hidden_size=H, bidirectional=bidirectional, seed=5)
    data = ref.draw(rng, tm, B, 6)
    got = ref.run_rnnlab(ref.rnnlab_layers("gru", tm, reset_after=True), **data)
    ref.assert_runs_close(got, ref.run_torch(tm, **data), tm, "float64")


def test_gru_reset_after_false_differs_from_torch(ref):
    """The original GRU form ``n = tanh(W_in x + W_hn (r * h) + b_n)`` is another function: with the
    closest weight map (``b = bias_ih + bias_hh``) its outputs must be far from torch's, so the
    ``reset_after`` flag really selects the form."""
    rng = np.random.default_rng(19)
    tm = ref.torch_module("gru", input_size=D, hidden_size=H, seed=6)
    with torch.no_grad():  # a reset gate well away from 1 and a sizeable b_hn make the forms differ clearly
        for _name, p in tm.named_parameters():
            p.copy_(torch.from_numpy(rng.uniform(-1.0, 1.0, size=tuple(p.shape))))
    data = ref.draw(rng, tm, B, 6)
    expected = ref.run_torch(tm, **data)
    got = ref.run_rnnlab(ref.rnnlab_layers("gru", tm, reset_after=False), **data)
    assert np.abs(got.out - expected.out).max() > 1e-2
    assert np.abs(got.h_n - expected.h_n).max() > 1e-2
