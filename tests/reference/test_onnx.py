"""``rnnlab.onnx``: exported graphs against rnnlab's own outputs in ONNX Runtime and ONNX's reference
evaluator, the states in and out, ``load`` of rnnlab's and torch's graphs, and the error messages.

Every model is small and random (float32; tolerance 1e-5). onnx 1.23's ``ReferenceEvaluator`` ignores
X
it checks the unpadded graphs with the default activations; ONNX Runtime checks everything.
"""

from __future__ import annotations

import io
import sys
import warnings

import numpy as np
import pytest

import rnnlab
from rnnlab import GRU, LSTM, Bidirectional, Dense, Dropout, Embedding, OneHot, Sequential, SimpleRNN
from rnnlab.nn.state import forward_with_states, recurrent_layers

pytestmark = pytest.mark.onnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx.reference import ReferenceEvaluator  # noqa: E402

B, T, D, H, V = 3, 6, 4, 5, 7
LENGTHS = np.array([6, 3, 1])

# name -> (layer factory taking return_sequences and go_backwards, whether the reference evaluator runs it)
CELLS = {
    "rnn_tanh": (lambda **kw: SimpleRNN(H, **kw), True),
    "rnn_relu": (lambda **kw: SimpleRNN(H, activation="relu", **kw), False),
    "rnn_sigmoid": (lambda **kw: SimpleRNN(H, activation="sigmoid", **kw), False),
    "rnn_linear": (lambda **kw: SimpleRNN(H, activation="linear", **kw), True),
    "lstm": (lambda **kw: LSTM(H, **kw), True),
    "lstm_relu": (lambda **kw: LSTM(H, candidate_activation="relu", **kw), False),
    "gru_reset_after": (lambda **kw: GRU(H, reset_after=True, **kw), True),
    "gru_original": (lambda **kw: GRU(H, reset_after=False, **kw), True),
}


def session(model_proto):
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the state inputs are overridable initializers, which ORT notes as a warning
    return ort.InferenceSession(model_proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def outputs(sess, feeds) -> dict[str, np.ndarray]:
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


def state_feeds(model, rng) -> tuple[dict, dict]:
    """Random initial states: the graph's feeds and rnnlab's state map."""
    feeds, states = {}, {}
    for key, layer in recurrent_layers(model):
        arrays = tuple(rng.normal(size=(B, layer.hidden_size)).astype(np.float32) for _ in layer.state_names)
        states[key] = arrays
        for name, a in zip(layer.state_names, arrays):
            feeds[".".join(p for p in ("state_in", key, name) if p)] = a
    return feeds, states


def check_against_rnnlab(model, x, rng, *, lengths=None, reference=False):
    proto = rnnlab.onnx.to_onnx(model, lengths=lengths is not None)
    onnx.checker.check_model(proto, full_check=True)
    mask = None if lengths is None else np.arange(x.shape[1])[None] < lengths[:, None]
    feeds = {"x": x} if lengths is None else {"x": x, "sequence_lens": lengths.astype(np.int32)}
    state_in, states = state_feeds(model, rng)
    y, final = forward_with_states(model, x, states, mask=mask)
    got = outputs(session(proto), {**feeds, **state_in})
    np.testing.assert_allclose(got["y"], y, rtol=1e-5, atol=1e-5)
    for key, layer in recurrent_layers(model):
        for name, s in zip(layer.state_names, final[key]):
            out = ".".join(p for p in ("state_out", key, name) if p)
            np.testing.assert_allclose(got[out], s, rtol=1e-5, atol=1e-5, err_msg=out)
    y0 = model(x, mask=mask)  # without states: the optional inputs default to zeros
    np.testing.assert_allclose(session(proto).run(["y"], feeds)[0], y0, rtol=1e-5, atol=1e-5)
    if reference:
        (ref,) = ReferenceEvaluator(proto).run(["y"], feeds)
        np.testing.assert_allclose(ref, y0, rtol=1e-5, atol=1e-5)
    return proto


@pytest.mark.parametrize("return_sequences", [True, False], ids=["sequences", "last"])
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backwards"])
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_each_recurrent_layer_and_option_runs_the_same_in_onnx_runtime(cell, go_backwards, return_sequences, rng):
    make, reference = CELLS[cell]
    model = Sequential([make(input_size=D, return_sequences=return_sequences, go_backwards=go_backwards,
                             bias_initializer="uniform:0.5", seed=1), Dense(3, activation="tanh", seed=2)])
    x = rng.normal(size=(B, T, D)).astype(np.float32)
    check_against_rnnlab(model, x, rng, reference=reference)
    check_against_rnnlab(model, x, rng, lengths=LENGTHS)  # right padding as sequence_lens
    back = rnnlab.onnx.load(rnnlab.onnx.to_onnx(model))
    np.testing.assert_array_equal(back(x), model(x))  # the same float32 weights: the same bits


@pytest.mark.parametrize("return_sequences", [True, False], ids=["sequences", "last"])
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
def test_bidirectional_merge_modes_with_variable_lengths(merge_mode, return_sequences, rng):
    model = Sequential([Dropout(0.1),
                        Bidirectional(GRU(H, input_size=D, return_sequences=True, seed=1), merge_mode),
                        Dropout(0.3),
                        Bidirectional(LSTM(4, return_sequences=return_sequences, bias_initializer="uniform:0.5",
                                           seed=3), merge_mode),
                        Dense(2, seed=2)])
    x = rng.normal(size=(B, T, D)).astype(np.float32)
    model(x)  # builds the layers after the first Dropout, whose output size the Sequential cannot know
    check_against_rnnlab(model, x, rng, reference=True)
    check_against_rnnlab(model, x, rng, lengths=LENGTHS)
    back = rnnlab.onnx.load(rnnlab.onnx.to_onnx(model))
    assert [type(m).__name__ for m in back.layers] == ["Bidirectional", "Bidirectional", "Dense"]  # no Dropout
    assert back.layers[1].merge_mode == merge_mode and back.layers[1].return_sequences == return_sequences
    np.testing.assert_array_equal(back(x), model(x))


@pytest.mark.parametrize("first", ["embedding", "one_hot"])
def test_token_ids_with_mask_zero_and_a_softmax_head(first, rng):
    inputs = Embedding(V, 4, mask_zero=True, seed=0) if first == "embedding" else OneHot(V, mask_zero=True)
    model = Sequential([inputs, LSTM(H, return_sequences=True, seed=1), GRU(4, seed=3), Dense(V, seed=2)])
    ids = rng.integers(1, V, size=(B, T))
    for row, n in enumerate(LENGTHS):
        ids[row, n:] = 0  # right padding
    proto = rnnlab.onnx.to_onnx(model, head="softmax")
    logits = model(ids)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(session(proto).run(["y"], {"x": ids})[0], p, rtol=1e-5, atol=1e-6)
    back = rnnlab.onnx.load(proto)  # the softmax head is dropped, the mask is read back
    assert back.layers[0].mask_zero and np.array_equal(back(ids), logits)


def test_left_padding_differs_as_documented(rng):
    """rnnlab's mask allows left padding; a sequence_lens counts from step 0, so the graph differs."""
    model = Sequential([Embedding(V, 4, mask_zero=True, seed=0), GRU(H, seed=1)])
    ids = rng.integers(1, V, size=(1, T))
    ids[0, :2] = 0
    got = session(rnnlab.onnx.to_onnx(model)).run(["y"], {"x": ids})[0]
    assert not np.allclose(got, model(ids), atol=1e-3)
    # the graph runs the first T - 2 steps, padding included, and leaves out the last two tokens
    embedding, gru = model.layers
    np.testing.assert_allclose(got, gru(embedding.params["E"][ids[:, :T - 2]]), rtol=1e-5, atol=1e-6)


def test_generation_step_by_step_with_the_states_equals_the_whole_sequence(rng):
    model = Sequential([Embedding(V, 4, seed=0), LSTM(H, return_sequences=True, seed=1),
                        GRU(4, return_sequences=True, seed=3), Dense(V, seed=2)])
    ids = rng.integers(0, V, size=(2, T))
    sess = session(rnnlab.onnx.to_onnx(model, head="softmax"))
    whole = sess.run(["y"], {"x": ids})[0]
    states: dict = {}
    for t in range(T):
        got = outputs(sess, {"x": ids[:, t:t + 1], **states})
        np.testing.assert_allclose(got["y"][:, 0], whole[:, t], rtol=1e-5, atol=1e-6)
        states = {k.replace("state_out", "state_in"): v for k, v in got.items() if k.startswith("state_out")}
    assert sorted(states) == ["state_in.1.c", "state_in.1.h", "state_in.2.h"]


def test_a_single_layer_and_dynamic_axes(rng):
    layer = Bidirectional(SimpleRNN(H, input_size=D, return_sequences=True, seed=1), "ave")
    proto = rnnlab.onnx.to_onnx(layer, opset=20)
    sess = session(proto)
    for b, t in ((1, 1), (4, 9)):
        x = rng.normal(size=(b, t, D)).astype(np.float32)
        np.testing.assert_allclose(sess.run(["y"], {"x": x})[0], layer(x), rtol=1e-5, atol=1e-6)
    assert isinstance(rnnlab.onnx.load(proto), Bidirectional)


def test_export_writes_the_file_and_load_reads_it(tmp_path, rng):
    model = Sequential([Embedding(V, 4, seed=0), GRU(H, seed=1), Dense(1, seed=2)])
    path = rnnlab.onnx.export(model, tmp_path / "model.onnx", head="sigmoid")
    assert path == tmp_path / "model.onnx" and sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]
    ids = rng.integers(0, V, size=(B, T))
    back = rnnlab.onnx.load(path)  # the sigmoid head is read as the Dense layer's activation
    assert back.layers[-1].activation == "sigmoid"
    np.testing.assert_allclose(back(ids), 1 / (1 + np.exp(-model(ids))), rtol=1e-6)


# ---------------------------------------------------------------------- torch.onnx.export graphs
def torch_graph(module, x):
    torch = pytest.importorskip("torch")
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter announces its deprecation
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.from_numpy(x),), buffer, dynamo=False, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "a", 1: "b"}})
    return onnx.load_from_string(buffer.getvalue())


@pytest.mark.reference
@pytest.mark.parametrize("bidirectional, batch_first", [(False, False), (True, True)],
                         ids=["one_way-time_first", "bidirectional-batch_first"])
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_load_reads_the_graphs_torch_onnx_export_writes(kind, bidirectional, batch_first, rng):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = getattr(torch.nn, kind)(D, H, num_layers=2, bidirectional=bidirectional, batch_first=batch_first).eval()
    x = rng.normal(size=(B, T, D)).astype(np.float32)
    x_torch = x if batch_first else np.ascontiguousarray(x.transpose(1, 0, 2))
    model = rnnlab.onnx.load(torch_graph(module, x_torch))
    with torch.no_grad():
        expected = module(torch.from_numpy(x_torch))[0].numpy()
    if not batch_first:
        expected = expected.transpose(1, 0, 2)
    np.testing.assert_allclose(model(x), expected, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("model, match", [
    (lambda: Bidirectional(LSTM(H, input_size=D, seed=0), merge_mode=None), "merge_mode=None"),
    (lambda: Bidirectional(LSTM(H, input_size=D, go_backwards=True, seed=0)), "go_backwards=True"),
    (lambda: Sequential([GRU(H, input_size=D, seed=0), Embedding(V, 3)]), "must be the first layer"),
    (lambda: Sequential([GRU(H, seed=0), Dense(2)]), "no weights yet"),
    (lambda: Sequential([LSTM(H, input_size=D, seed=0), LSTM(H, seed=1)]), "not a sequence"),
    (lambda: rnnlab.OneToMany(GRU(H, input_size=D, return_sequences=True), Dense(D, input_size=H), 3),
     "has no ONNX export"),
])
def test_export_names_what_onnx_cannot_express(model, match):
    with pytest.raises(ValueError, match=match):
        rnnlab.onnx.to_onnx(model())


def test_export_checks_its_arguments():
    model = GRU(H, input_size=D)
    with pytest.raises(ValueError, match=r"opset must lie in \[14, \d+\].*got 9"):
        rnnlab.onnx.to_onnx(model, opset=9)
    with pytest.raises(ValueError, match="head"):
        rnnlab.onnx.to_onnx(model, head="tanh")
    with pytest.raises(ValueError, match="lengths=True"):
        rnnlab.onnx.to_onnx(Sequential([Embedding(V, 3, mask_zero=True), GRU(H)]), lengths=True)
    with pytest.raises(TypeError, match="got str 'model'"):
        rnnlab.onnx.to_onnx("model")


def test_load_names_an_unsupported_operator_and_its_node():
    helper = onnx.helper
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 3])
    graph = helper.make_graph([helper.make_node("Sin", ["x"], ["y"], name="the_sine")], "g", [x], [y])
    with pytest.raises(ValueError, match=r"unsupported operator 'Sin' at node 0 \('the_sine', op_type 'Sin'\)"):
        rnnlab.onnx.load(helper.make_model(graph))
    peephole = rnnlab.onnx.to_onnx(LSTM(H, input_size=D))
    lstm = next(n for n in peephole.graph.node if n.op_type == "LSTM")
    lstm.attribute.append(helper.make_attribute("clip", 3.0))
    with pytest.raises(ValueError, match=r"LSTM with clip=3.0 .*no rnnlab equivalent at node \d+"):
        rnnlab.onnx.load(peephole)


def test_load_of_a_missing_or_foreign_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        rnnlab.onnx.load(tmp_path / "none.onnx")
    (tmp_path / "notes.onnx").write_bytes(b"\x01\x02 not a graph")
    with pytest.raises(ValueError, match="is not an ONNX model"):
        rnnlab.onnx.load(tmp_path / "notes.onnx")


def test_without_onnx_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install 'rnnlab\[onnx\]'"):
        rnnlab.onnx.export(GRU(H, input_size=D), "never.onnx")
