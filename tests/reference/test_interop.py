"""``rnnlab.interop``: from_torch / to_torch, their round trips, and their error messages."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import rnnlab
from rnnlab.io.interop import from_torch, to_torch

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.reference

KINDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]
RNNLAB = {  # kind -> rnnlab layer factory, with nonzero biases so the bias map is exercised
    "rnn_tanh": lambda H, **kw: rnnlab.SimpleRNN(H, activation="tanh", **kw),
    "rnn_relu": lambda H, **kw: rnnlab.SimpleRNN(H, activation="relu", **kw),
    "lstm": lambda H, **kw: rnnlab.LSTM(H, **kw),
    "gru": lambda H, **kw: rnnlab.GRU(H, **kw),
}
B, T, D, H = 3, 6, 4, 5


def layer(kind, input_size, *, dtype="float64", seed=0, **kwargs):
    return RNNLAB[kind](H, input_size=input_size, return_sequences=True, bias_initializer="uniform:0.5", seed=seed,
                        dtype=dtype, **kwargs)


def stack(kind, *, num_layers, bidirectional, dtype="float64", dropout=0.0):
    """An rnnlab stack shaped like ``torch.nn.<kind>(D, H, num_layers, bidirectional=...)``."""
    nd = 2 if bidirectional else 1
    layers = []
    for i in range(num_layers):
        rec = layer(kind, D if i == 0 else nd * H, dtype=dtype, seed=i)
        if i > 0 and dropout:
            layers.append(rnnlab.Dropout(dropout, seed=i, dtype=dtype))
        layers.append(rnnlab.Bidirectional(rec) if bidirectional else rec)
    return layers[0] if len(layers) == 1 else rnnlab.Sequential(layers)


def torch_output(tm, x: np.ndarray) -> np.ndarray:
    """torch's ``output`` for a batch-first ``x`` (B, T, D), returned batch-first."""
    tm.eval()
    with torch.no_grad():
        if tm.batch_first:
            return tm(torch.from_numpy(x))[0].numpy()
        return tm(torch.from_numpy(np.ascontiguousarray(x.transpose(1, 0, 2))))[0].numpy().transpose(1, 0, 2)


def atol(dtype):
    return {"float64": 1e-12, "float32": 1e-6}[np.dtype(dtype).name]


def assert_params_bitwise_equal(a: dict, b: dict):
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


# ---------------------------------------------------------------------- rnnlab -> torch -> rnnlab
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("num_layers, bidirectional, dropout",
                         [(1, False, 0.0), (1, True, 0.0), (2, False, 0.0), (2, True, 0.0), (3, True, 0.25)],
                         ids=["layer", "bidirectional", "2-layers", "2-layers-bi", "3-layers-bi-dropout"])
@pytest.mark.parametrize("kind", KINDS)
def test_rnnlab_to_torch_to_rnnlab_is_bitwise_exact(kind, num_layers, bidirectional, dropout, dtype):
    model = stack(kind, num_layers=num_layers, bidirectional=bidirectional, dtype=dtype, dropout=dropout)
    tm = to_torch(model)
    assert type(tm).__name__ == {"rnn_tanh": "RNN", "rnn_relu": "RNN", "lstm": "LSTM", "gru": "GRU"}[kind]
    assert (tm.num_layers, tm.bidirectional, tm.batch_first, tm.dropout) == (num_layers, bidirectional, True, dropout)
    assert tm.weight_ih_l0.dtype == getattr(torch, dtype)
    if kind.startswith("rnn"):
        assert tm.nonlinearity == kind.removeprefix("rnn_")
    back = from_torch(tm)
    assert type(back) is type(model)
    assert_params_bitwise_equal(back.params, model.params)
    if dropout:
        assert [type(m).__name__ for m in back.layers] == [type(m).__name__ for m in model.layers]
        assert all(m.rate == dropout for m in back.layers if isinstance(m, rnnlab.Dropout))

    x = np.random.default_rng(0).standard_normal((B, T, D)).astype(dtype)
    np.testing.assert_allclose(torch_output(tm, x), model(x), rtol=0, atol=atol(dtype))


@pytest.mark.parametrize("kind", KINDS)
def test_to_torch_writes_the_bias_as_bias_ih_and_zero_bias_hh_except_the_gru_n_block(kind):
    model = rnnlab.Bidirectional(layer(kind, D))
    tm = to_torch(model)
    for rnn, suffix in ((model.forward_layer, ""), (model.backward_layer, "_reverse")):
        p = rnn.params
        np.testing.assert_array_equal(getattr(tm, "weight_ih_l0" + suffix).detach().numpy(), p["U"])
        np.testing.assert_array_equal(getattr(tm, "weight_hh_l0" + suffix).detach().numpy(), p["W"])
        np.testing.assert_array_equal(getattr(tm, "bias_ih_l0" + suffix).detach().numpy(), p["b"])
        expected_hh = np.zeros_like(p["b"])
        if kind == "gru":
            expected_hh[2 * H:] = p["b_hn"]
        np.testing.assert_array_equal(getattr(tm, "bias_hh_l0" + suffix).detach().numpy(), expected_hh)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", KINDS)
def test_to_torch_of_a_last_step_layer_gives_h_n(kind, bidirectional):
    """A layer with return_sequences=False outputs torch's h_n of the last layer (both directions)."""
    rec = RNNLAB[kind](H, input_size=D, bias_initializer="uniform:0.5", seed=1, dtype="float64")
    model = rnnlab.Bidirectional(rec) if bidirectional else rec
    x = np.random.default_rng(1).standard_normal((B, T, D))
    with torch.no_grad():
        _, hidden = to_torch(model)(torch.from_numpy(x))
    h_n = (hidden[0] if kind == "lstm" else hidden).numpy()
    expected = np.concatenate([h_n[-2], h_n[-1]], axis=-1) if bidirectional else h_n[-1]
    np.testing.assert_allclose(model(x), expected, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------- torch -> rnnlab -> torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("batch_first", [True, False], ids=["batch-first", "time-first"])
@pytest.mark.parametrize("kind", KINDS)
def test_torch_to_rnnlab_to_torch_keeps_weights_and_outputs(ref, kind, batch_first, bias, dtype):
    """Weights and summed biases survive bitwise; outputs agree to round-off (torch added the two
    biases separately, the copy adds them pre-summed); a second round trip is a bitwise fixed point."""
    tm = ref.torch_module(kind, input_size=D, hidden_size=H, num_layers=2, bidirectional=True, dtype=dtype, seed=3,
                          batch_first=batch_first, bias=bias)
    model = from_torch(tm)
    once = to_torch(model)
    params, once_params = dict(tm.named_parameters()), dict(once.named_parameters())
    if not bias:
        assert all(not p.any() for n, p in once_params.items() if n.startswith("bias"))
    for n, p in params.items():
        if n.startswith("weight"):
            np.testing.assert_array_equal(once_params[n].detach().numpy(), p.detach().numpy(), err_msg=n)
        elif n.startswith("bias_ih"):
            n_hh = n.replace("bias_ih", "bias_hh")
            summed = p + params[n_hh]
            np.testing.assert_array_equal((once_params[n] + once_params[n_hh]).detach().numpy(),
                                          summed.detach().numpy(), err_msg=n)
    x = np.random.default_rng(2).standard_normal((B, T, D)).astype(dtype)
    y_torch = torch_output(tm, x)
    np.testing.assert_allclose(torch_output(once, x), y_torch, rtol=0, atol=atol(dtype))
    np.testing.assert_allclose(model(x), y_torch, rtol=0, atol=atol(dtype))

    twice = to_torch(from_torch(once))
    for n, p in once.named_parameters():
        np.testing.assert_array_equal(getattr(twice, n).detach().numpy(), p.detach().numpy(), err_msg=n)
    np.testing.assert_array_equal(torch_output(twice, x), torch_output(once, x))


@pytest.mark.parametrize("kind", KINDS)
def test_torch_module_whose_bias_hh_is_zero_round_trips_to_bitwise_equal_outputs(ref, kind):
    tm = ref.torch_module(kind, input_size=D, hidden_size=H, num_layers=2, bidirectional=True, seed=8)
    with torch.no_grad():
        for n, p in tm.named_parameters():
            if n.startswith("bias_hh"):
                p[: 2 * H if kind == "gru" else None] = 0
    x = np.random.default_rng(3).standard_normal((B, T, D))
    np.testing.assert_array_equal(torch_output(to_torch(from_torch(tm)), x), torch_output(tm, x))


# ---------------------------------------------------------------------- from_torch
def test_from_torch_two_layer_bidirectional_time_first_lstm_matches_torch():
    torch.manual_seed(5)
    tm = torch.nn.LSTM(D, H, num_layers=2, bidirectional=True, batch_first=False, dtype=torch.float64)
    model = from_torch(tm)
    assert isinstance(model, rnnlab.Sequential) and len(model.layers) == 2
    assert all(isinstance(m, rnnlab.Bidirectional) and isinstance(m.forward_layer, rnnlab.LSTM) for m in model.layers)
    x_tm = np.random.default_rng(4).standard_normal((T, B, D))  # torch's (T, B, D) layout
    with torch.no_grad():
        out, (h_n, c_n) = tm(torch.from_numpy(x_tm))
    y = model(np.ascontiguousarray(x_tm.transpose(1, 0, 2)))  # rnnlab reads (B, T, D)
    assert y.shape == (B, T, 2 * H)
    np.testing.assert_allclose(y, out.numpy().transpose(1, 0, 2), rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("num_layers, bidirectional", [(1, False), (1, True), (3, True)])
@pytest.mark.parametrize("kind", KINDS)
def test_from_torch_builds_the_matching_structure_and_outputs(ref, kind, num_layers, bidirectional, dtype):
    tm = ref.torch_module(kind, input_size=D, hidden_size=H, num_layers=num_layers, bidirectional=bidirectional,
                          dtype=dtype, seed=9)
    model = from_torch(tm)
    layers = model.layers if num_layers > 1 else [model]
    assert isinstance(model, rnnlab.Sequential) == (num_layers > 1)
    cls = {"rnn_tanh": rnnlab.SimpleRNN, "rnn_relu": rnnlab.SimpleRNN, "lstm": rnnlab.LSTM, "gru": rnnlab.GRU}[kind]
    for m in layers:
        rec = m.forward_layer if bidirectional else m
        assert isinstance(m, rnnlab.Bidirectional) == bidirectional
        assert type(rec) is cls and rec.return_sequences and rec.dtype == np.dtype(dtype)
        if kind.startswith("rnn"):
            assert rec.cell.activation == kind.removeprefix("rnn_")
        if kind == "gru":
            assert rec.cell.reset_after
    x = np.random.default_rng(5).standard_normal((B, T, D)).astype(dtype)
    y = model(x)
    assert y.dtype == np.dtype(dtype)
    np.testing.assert_allclose(y, torch_output(tm, x), rtol=0, atol=atol(dtype))


def test_from_torch_inserts_dropout_between_layers_and_matches_torch_in_eval_mode():
    torch.manual_seed(6)
    tm = torch.nn.GRU(D, H, num_layers=3, dropout=0.4, batch_first=True, dtype=torch.float64)
    model = from_torch(tm, seed=0)
    assert [type(m).__name__ for m in model.layers] == ["GRU", "Dropout", "GRU", "Dropout", "GRU"]
    assert [m.rate for m in model.layers if isinstance(m, rnnlab.Dropout)] == [0.4, 0.4]
    x = np.random.default_rng(6).standard_normal((B, T, D))
    np.testing.assert_allclose(model(x), torch_output(tm, x), rtol=0, atol=1e-12)
    assert np.abs(model(x, training=True) - torch_output(tm, x)).max() > 1e-3, "training mode should drop units"


@pytest.mark.parametrize("kind", KINDS)
def test_from_torch_sequential_with_mask_matches_packed_torch_outputs_and_gradients(ref, kind):
    """The converted stack used as one model: the mask flows through the Sequential (and its
    Dropout layers, identity at inference) exactly as torch's packed sequences through its layers."""
    tm = ref.torch_module(kind, input_size=D, hidden_size=H, num_layers=3, bidirectional=True, seed=10)
    tm.dropout = 0.2  # torch applies it in training only; both sides run in inference mode
    tm.eval()
    model = from_torch(tm, seed=0)
    assert sum(isinstance(m, rnnlab.Dropout) for m in model.layers) == 2
    lengths = [T, 2, 1, 5]
    mask = np.arange(T)[None, :] < np.array(lengths)[:, None]  # (B, T) right padding
    rng = np.random.default_rng(10)
    x = rng.standard_normal((len(lengths), T, D))
    R = rng.standard_normal((len(lengths), T, 2 * H))
    y = model(x, mask=mask)
    model.zero_grad()
    dx = model.backward(R)

    pack = torch.nn.utils.rnn
    xt = torch.tensor(x, requires_grad=True)
    packed = pack.pack_padded_sequence(xt, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
    out, _ = pack.pad_packed_sequence(tm(packed)[0], batch_first=True, total_length=T)
    tm.zero_grad()
    (out * torch.from_numpy(R)).sum().backward()
    np.testing.assert_allclose(y, out.detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=0, atol=1e-12)
    index = {0: "0", 1: "2", 2: "4"}  # torch layer -> Sequential child (Dropouts in between)
    for i in range(3):
        for direction, suffix in (("forward", ""), ("backward", "_reverse")):
            for ours, theirs in (("U", "weight_ih"), ("W", "weight_hh"), ("b", "bias_ih")):
                np.testing.assert_allclose(model.grads[f"{index[i]}.{direction}.{ours}"],
                                           getattr(tm, f"{theirs}_l{i}{suffix}").grad.numpy(), rtol=0, atol=1e-12,
                                           err_msg=f"{theirs}_l{i}{suffix}")


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("module, match", [
    (lambda: torch.nn.Linear(3, 4),
     r"torch\.nn\.RNN, torch\.nn\.LSTM or torch\.nn\.GRU module, got torch\.nn\.modules\.linear\.Linear"),
    (lambda: torch.nn.LSTMCell(3, 4), r"got torch\.nn\.modules\.rnn\.LSTMCell"),
    (lambda: "LSTM", r"got builtins\.str"),
])
def test_from_torch_rejects_other_types(module, match):
    with pytest.raises(TypeError, match=match):
        from_torch(module())


def test_from_torch_rejects_projections():
    with pytest.raises(ValueError, match=r"proj_size must be 0, got proj_size=2"):
        from_torch(torch.nn.LSTM(3, 4, proj_size=2))


def test_from_torch_rejects_half_precision():
    with pytest.raises(TypeError, match=r"float32 and float64 modules, got dtype torch\.float16"):
        from_torch(torch.nn.GRU(3, 4).half())


def built(kind="lstm", input_size=D, **kwargs):
    return layer(kind, input_size, **kwargs)


@pytest.mark.parametrize("module, error, match", [
    (lambda: built("gru", reset_after=False), ValueError,
     r"GRU\(reset_after=False\), has no PyTorch equivalent: torch\.nn\.GRU supports reset_after=True"),
    (lambda: rnnlab.SimpleRNN(H, activation="sigmoid", input_size=D), ValueError,
     r"SimpleRNN\(activation='sigmoid'\), has no PyTorch equivalent: "
     r"torch\.nn\.RNN supports activation='tanh' or 'relu'"),
    (lambda: rnnlab.LSTM(H, candidate_activation="relu", input_size=D), ValueError,
     r"LSTM\(candidate_activation='relu'\), has no PyTorch equivalent"),
    (lambda: rnnlab.Dense(3), TypeError, r"to_torch expects a SimpleRNN, LSTM or GRU layer.*; got Dense"),
    (lambda: rnnlab.Sequential([built(), rnnlab.Dense(3, dtype="float64")]), TypeError,
     r"layer 1 of the Sequential is a Dense"),
    (lambda: rnnlab.Sequential([]), ValueError, r"empty Sequential"),
    (lambda: built(go_backwards=True), ValueError, r"the module has go_backwards=True"),
    (lambda: rnnlab.Bidirectional(built(), merge_mode="sum"), ValueError, r"merge_mode='sum'.*concat"),
    (lambda: rnnlab.Bidirectional(built(go_backwards=True)), ValueError, r"first layer has go_backwards=True"),
    (lambda: rnnlab.LSTM(H), ValueError, r"the module has no weights yet"),
    (lambda: rnnlab.Sequential([built("lstm"), built("gru", input_size=H)]), ValueError,
     r"layer 1 is GRU\(.*\) but layer 0 is LSTM"),
    (lambda: rnnlab.Sequential([built(), rnnlab.LSTM(H + 1, input_size=H, dtype="float64")]), ValueError,
     r"layer 1 has hidden_size=6 but layer 0 has hidden_size=5"),
    (lambda: rnnlab.Sequential([built(), built(input_size=H + 2)]), ValueError,  # caught when the stack is built
     r"LSTM at index 1 has input_size=7, but the layer before it outputs 5 features"),
    (lambda: rnnlab.Sequential([built(), rnnlab.Bidirectional(built(input_size=H))]), ValueError,
     r"layer 1 is a Bidirectional but layer 0 is a single direction"),
    (lambda: rnnlab.Sequential([built(), built(input_size=H, dtype="float32")]), ValueError,  # caught by Sequential
     r"layers of a Sequential must share one dtype; LSTM at index 1 is float32, earlier layers are float64"),
    (lambda: rnnlab.Sequential([rnnlab.LSTM(H, input_size=D, dtype="float64"), built(input_size=H)]), ValueError,
     r"layer 0 has return_sequences=False but feeds layer 1"),
    (lambda: rnnlab.Sequential([built(), rnnlab.Dropout(0.1, dtype="float64"), built(input_size=H + 2)]), ValueError,
     r"LSTM at index 2 has input_size=7, but the layer before it outputs 5 features"),
    (lambda: rnnlab.Sequential([built(), rnnlab.Dropout(0.1)]), ValueError, r"Dropout at index 1 is not between two"),
    (lambda: rnnlab.Sequential([built(), rnnlab.Dropout(0.1), built(input_size=H), built(input_size=H)]), ValueError,
     r"inter-layer dropout rates are \[0\.1, 0\.0\]"),
])
def test_to_torch_errors_name_the_problem(module, error, match):
    with pytest.raises(error, match=match):
        to_torch(module())


@pytest.mark.parametrize("convert", [from_torch, to_torch], ids=["from_torch", "to_torch"])
def test_missing_torch_says_how_to_install_it(monkeypatch, convert):
    model = built()
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(ImportError, match=r"pip install torch==2\.13\.0"):
        convert(model)
