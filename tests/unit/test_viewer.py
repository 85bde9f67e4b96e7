"""The activation viewer (``rnnlab.viewer``): tracing, the HTML page, ``inspect`` on a run, the command line.

Expected activations are computed here from the cell equations, one step at a time in float64, with the
layers' own weights; expected colours from the colour rule written out below with its end colours as
numbers. The page is read back with ``html.parser`` (the script's recolouring is tested in Chromium by
``tests/integration/test_viewer_browser.py``).
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from rnnlab.cli import inspect as inspect_cli
from rnnlab.data.text import UNK, Vocabulary, word_tokenize
from rnnlab.io import files as io
from rnnlab.lab import viewer
from rnnlab.lab.config import ConfigError, parse_config, to_toml
from rnnlab.lab.tasks import RunError, build_model
from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.layers import Dense, Dropout, Embedding, OneHot
from rnnlab.nn.recurrent import GRU, LSTM, SimpleRNN
from rnnlab.nn.sequential import Sequential

F64 = {"dtype": "float64"}


# --------------------------------------------------------------------------- independent references
def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def lstm_run(p, xs):
    """LSTM over xs (T, D) from zero states: {h, c, i, f, g, o} each (T, H)."""
    H = p["W"].shape[1]
    h, c, out = np.zeros(H), np.zeros(H), {k: [] for k in "hcifgo"}
    for x in xs:
        z = p["U"] @ x + p["W"] @ h + p["b"]
        i, f, g, o = sigmoid(z[:H]), sigmoid(z[H:2 * H]), np.tanh(z[2 * H:3 * H]), sigmoid(z[3 * H:])
        c = f * c + i * g
        h = o * np.tanh(c)
        for k, v in zip("hcifgo", (h, c, i, f, g, o)):
            out[k].append(v)
    return {k: np.array(v) for k, v in out.items()}


def gru_run(p, xs):
    """GRU (reset_after) over xs (T, D) from zero state: {h, r, z, n} each (T, H)."""
    H = p["W"].shape[1]
    h, out = np.zeros(H), {k: [] for k in "hrzn"}
    for x in xs:
        gi, gh = p["U"] @ x + p["b"], p["W"] @ h
        r = sigmoid(gi[:H] + gh[:H])
        z = sigmoid(gi[H:2 * H] + gh[H:2 * H])
        n = np.tanh(gi[2 * H:] + r * (gh[2 * H:] + p["b_hn"]))
        h = (1 - z) * n + z * h
        for k, v in zip("hrzn", (h, r, z, n)):
            out[k].append(v)
    return {k: np.array(v) for k, v in out.items()}


def rnn_run(p, xs):
    a, out = np.zeros(p["W"].shape[1]), []
    for x in xs:
        a = np.tanh(p["U"] @ x + p["W"] @ a + p["b"])
        out.append(a)
    return {"h": np.array(out)}


def layer_params(model, prefix):
    return {k[len(prefix):]: v.astype(np.float64) for k, v in model.params.items() if k.startswith(prefix)}


def softmax_rows(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# the colour rule of the viewer, written out: white at 0, these end colours at full scale
ENDS = {"positive": (230, 85, 60), "negative": (60, 130, 210), "unit": (40, 160, 80)}


def expected_colour(v, scale, extent=1.0):
    if scale == "unit":
        s, end = min(max(v, 0.0), 1.0), ENDS["unit"]
    else:
        u = v if scale == "signed" else (v / extent if extent > 0 else 0.0)
        u = min(max(u, -1.0), 1.0)
        s, end = abs(u), ENDS["positive" if u >= 0 else "negative"]
    return tuple(math.floor(255 + s * (e - 255) + 0.5) for e in end)


# --------------------------------------------------------------------------- reading the page back
class Page(HTMLParser):
    """The token spans (attributes and text), the text of the <pre>, and the embedded JSON."""

    def __init__(self, source: str):
        super().__init__(convert_charrefs=True)
        self.spans, self.pre, self._in_span, self._in_pre, self._script = [], [], False, False, None
        self.data_text = None
        self.feed(source)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "span" and "tok" in attrs.get("class", "").split():
            self.spans.append({**attrs, "text": ""})
            self._in_span = True
        elif tag == "pre":
            self._in_pre = True
        elif tag == "script" and attrs.get("id") == "rnnlab-data":
            self._script = []

    def handle_endtag(self, tag):
        if tag == "span":
            self._in_span = False
        elif tag == "pre":
            self._in_pre = False
        elif tag == "script" and self._script is not None:
            self.data_text, self._script = "".join(self._script), None

    def handle_data(self, data):
        if self._in_span:
            self.spans[-1]["text"] += data
        if self._in_pre:
            self.pre.append(data)
        if self._script is not None:
            self._script.append(data)

    @property
    def data(self) -> dict:
        return json.loads(self.data_text)

    @property
    def text(self) -> str:
        return "".join(self.pre)


def background(span) -> tuple[int, int, int]:
    match = re.fullmatch(r"background-color: rgb\((\d+), (\d+), (\d+)\)", span["style"])
    assert match, span["style"]
    return tuple(int(g) for g in match.groups())


def stored_values(entry, unit, T):
    """Decode one unit of a page quantity with the documented rule lo + (hi - lo) * k / 255."""
    codes = np.frombuffer(base64.b64decode(entry["codes"]), dtype=np.uint8).reshape(-1, T)
    lo, hi = entry["lo"][unit], entry["hi"][unit]
    return [lo + (hi - lo) * int(k) / 255 for k in codes[unit]]


def bound(values):
    """The documented storage error of one unit: half a code step, plus the 4-digit rounding of lo and hi."""
    return (values.max() - values.min()) / 510 + 1e-3 * np.abs(values).max() + 1e-12


# --------------------------------------------------------------------------- models
def classifier(V=12):
    """Embedding -> LSTM -> Dropout -> Bidirectional GRU returning only its last step -> Dense: many-to-one."""
    return Sequential([Embedding(V, 5, seed=0, **F64), LSTM(6, return_sequences=True, seed=1, **F64),
                       Dropout(0.5, seed=2, **F64), Bidirectional(GRU(4, seed=3, **F64)), Dense(3, seed=4, **F64)])


def language_model(V=9):
    """One-hot -> stacked SimpleRNN and LSTM (inside a nested Sequential) -> Dense: many-to-many."""
    inner = Sequential([SimpleRNN(5, input_size=V, return_sequences=True, seed=5, **F64),
                        LSTM(4, return_sequences=True, seed=6, **F64)])
    return Sequential([OneHot(V, **F64), inner, Dense(V, seed=7, **F64)])


@pytest.fixture
def ids(rng):
    return rng.integers(1, 9, size=7)


# =========================================================================== trace
def test_trace_follows_the_cell_equations_through_a_many_to_one_stack(ids):
    model = classifier()
    traced = viewer.trace(model, ids)
    assert [(lt.name, lt.path, lt.cell, lt.depth) for lt in traced.layers] == [
        ("layer 1", "1", "LSTM", 1), ("layer 2 (forward)", "3.forward", "GRU", 2),
        ("layer 2 (backward)", "3.backward", "GRU", 2)]
    assert traced.steps == 7 and traced.next_token_prob is None
    x = layer_params(model, "0.")["E"][ids]  # (T, 5)
    lstm = lstm_run(layer_params(model, "1."), x)
    forward = gru_run(layer_params(model, "3.forward."), lstm["h"])
    backward = {k: v[::-1] for k, v in gru_run(layer_params(model, "3.backward."), lstm["h"][::-1]).items()}
    for lt, expected in zip(traced.layers, (lstm, forward, backward)):
        assert list(lt.values) == list(expected)
        for q, v in expected.items():
            assert lt.values[q].shape == v.shape and lt.values[q].dtype == np.float64
            np.testing.assert_allclose(lt.values[q], v, rtol=1e-12, atol=1e-12, err_msg=f"{lt.name} {q}")
    # the model's own output: the last step of both GRU directions (dropout off) through Dense
    d = layer_params(model, "4.")
    merged = np.concatenate([forward["h"][-1], backward["h"][0]])
    np.testing.assert_allclose(traced.outputs, d["V"] @ merged + d["c"], rtol=1e-12)


def test_trace_of_a_language_model_gives_the_probability_of_each_next_token(ids):
    model = language_model()
    traced = viewer.trace(model, ids, next_token=True)
    assert [(lt.name, lt.path) for lt in traced.layers] == [("layer 1", "1.0"), ("layer 2", "1.1")]
    x = np.eye(9)[ids]
    rnn = rnn_run(layer_params(model, "1.0."), x)
    lstm = lstm_run(layer_params(model, "1.1."), rnn["h"])
    np.testing.assert_allclose(traced.layers[0].values["h"], rnn["h"], rtol=1e-12, atol=1e-12)
    for q in "hcifgo":
        np.testing.assert_allclose(traced.layers[1].values[q], lstm[q], rtol=1e-12, atol=1e-12, err_msg=q)
    d = layer_params(model, "2.")
    probs = softmax_rows(lstm["h"] @ d["V"].T + d["c"])  # (T, V)
    expected = [probs[t, ids[t + 1]] for t in range(len(ids) - 1)]
    assert traced.next_token_prob.shape == (len(ids) - 1,)
    np.testing.assert_allclose(traced.next_token_prob, expected, rtol=1e-10)
    assert traced.outputs.shape == (len(ids), 9)


def test_a_layer_reading_backwards_is_traced_in_time_order(rng):
    layer = LSTM(3, input_size=2, go_backwards=True, return_sequences=True, seed=8, **F64)
    x = rng.normal(size=(6, 2))
    traced = viewer.trace(Sequential([layer]), x)
    assert traced.layers[0].name == "layer 1 (reading backwards)"
    expected = lstm_run(layer_params(layer, ""), x[::-1])
    for q, v in expected.items():
        np.testing.assert_allclose(traced.layers[0].values[q], v[::-1], rtol=1e-12, atol=1e-12, err_msg=q)


def test_a_stateful_layer_is_traced_from_zero_and_keeps_its_carried_state(rng):
    layer = LSTM(3, input_size=2, stateful=True, return_sequences=True, seed=9, **F64)
    layer(rng.normal(size=(1, 4, 2)))  # now carries a state
    carried = layer.states
    x = rng.normal(size=(5, 2))
    traced = viewer.trace(Sequential([layer]), x)
    np.testing.assert_allclose(traced.layers[0].values["c"], lstm_run(layer_params(layer, ""), x)["c"], rtol=1e-12)
    assert layer.stateful
    for before, after in zip(carried, layer.states):
        np.testing.assert_array_equal(before, after)


def test_trace_rejects_bad_arguments(ids):
    model = language_model()
    with pytest.raises(TypeError, match=r"model must be an rnnlab Module \(e.g. a Sequential\), got list"):
        viewer.trace([model], ids)
    with pytest.raises(TypeError, match=r"inputs must be token ids .* got dtype <U1"):
        viewer.trace(model, ["a", "b"])
    with pytest.raises(ValueError, match=r"non-empty 1-D sequence \(T,\), got shape \(0,\)"):
        viewer.trace(model, np.array([], dtype=np.int64))
    with pytest.raises(ValueError, match=r"non-empty 1-D sequence \(T,\), got shape \(1, 7\)"):
        viewer.trace(model, ids[None])
    with pytest.raises(ValueError, match=r"holds no recurrent layer"):
        viewer.trace(Sequential([Dense(2, input_size=3)]), np.ones((4, 3)))
    with pytest.raises(ValueError,
                       match=r"needs a language model's per-step outputs \(T, V\) = \(7, V\), got shape \(3,\)"):
        viewer.trace(classifier(), ids, next_token=True)
    with pytest.raises(ValueError, match=r"next_token=True needs token ids"):
        viewer.trace(Sequential([LSTM(2, input_size=3)]), np.ones((4, 3)), next_token=True)
    with pytest.raises(TypeError, match=r"next_token must be a bool, got str 'yes'"):
        viewer.trace(model, ids, next_token="yes")


def test_trace_refuses_non_finite_activations(ids):
    # no Dense after the LSTM, which would refuse NaN inputs itself
    model = Sequential([OneHot(9, **F64), LSTM(4, input_size=9, return_sequences=True, seed=0, **F64)])
    model.params["1.b"][2] = np.nan  # the input gate of unit 2
    with pytest.raises(ValueError, match=r"layer 1: h is not finite at step 0, unit 2 \(nan\)"):
        viewer.trace(model, ids)


# =========================================================================== colours
def test_colour_scales_by_hand():
    assert viewer.colour(0.0, "signed") == (255, 255, 255)
    assert viewer.colour(1.0, "signed") == (230, 85, 60) and viewer.colour(7.0, "signed") == (230, 85, 60)
    assert viewer.colour(-1.0, "signed") == (60, 130, 210)
    assert viewer.colour(0.5, "signed") == (243, 170, 158)  # 255 - 0.5 * (25, 170, 195), halves rounded up
    assert viewer.colour(0.25, "unit") == (201, 231, 211)  # 255 - 0.25 * (215, 95, 175)
    assert viewer.colour(-0.5, "unit") == (255, 255, 255)
    assert viewer.colour(-3.0, "unbounded", 6.0) == (158, 193, 233)  # -3 of 6 is half way to the negative end
    assert viewer.colour(5.0, "unbounded", 0.0) == (255, 255, 255)
    with pytest.raises(ValueError, match=r"scale must be one of 'unit', 'signed', 'unbounded'; got 'log'"):
        viewer.colour(0.1, "log")


# =========================================================================== the page
def test_a_title_or_token_that_spells_a_placeholder_is_shown_as_written(ids):
    traced = viewer.trace(language_model(), ids, next_token=True)
    tokens = ["__DATA__", "__SCRIPT__", "x", "y", "z", "w", "v"]
    page_html = viewer.render_html(tokens, traced, title="__TEXT__ and __STYLE__")
    page = Page(page_html)
    assert [s["text"] for s in page.spans][:2] == ["__DATA__", "__SCRIPT__"]
    assert "<title>__TEXT__ and __STYLE__</title>" in page_html
    assert page_html.count('id="rnnlab-data"') == 1 and page.data["layers"]


def test_one_span_per_token_with_escaped_text_and_the_colour_of_its_value(ids):
    model = language_model()
    traced = viewer.trace(model, ids, next_token=True)
    tokens = ["<", "a", "&", " ", "\n", '"q"', "\t"]
    page_html = viewer.render_html(tokens, traced, title="t <1>", layer=1, quantity="c", unit=2)
    page = Page(page_html)
    assert len(page.spans) == 7
    assert [s["text"] for s in page.spans] == ["<", "a", "&", " ", "\u21b5\n", '"q"', "\t"]
    assert ">&lt;</span>" in page_html and ">&amp;</span>" in page_html and "<title>t &lt;1&gt;</title>" in page_html
    assert [int(s["data-i"]) for s in page.spans] == list(range(7))
    c = traced.layers[1].values["c"][:, 2]  # (T,)
    entry = page.data["layers"][1]["quantities"]["c"]
    assert entry["scale"] == "unbounded"
    decoded = stored_values(entry, 2, 7)
    extent = max(abs(entry["lo"][2]), abs(entry["hi"][2]))
    for t, span in enumerate(page.spans):
        value = float(span["data-value"])
        assert abs(value - c[t]) <= bound(c), (t, value, c[t])
        assert value == pytest.approx(decoded[t], rel=5e-4)
        assert background(span) == expected_colour(decoded[t], "unbounded", extent)  # exactly: the stored value
        assert np.abs(np.subtract(background(span), expected_colour(c[t], "unbounded", np.abs(c).max()))).max() <= 1
        assert span["title"] == f"layer 2 \u00b7 c[2] = {span['data-value']}"
    assert len({background(s) for s in page.spans}) >= 4  # the colours do follow the values


def test_the_page_data_holds_every_value_of_every_layer_within_the_stated_precision(ids):
    model = classifier()
    traced = viewer.trace(model, ids)
    data = Page(viewer.render_html([str(i) for i in ids], traced, joiner=" ")).data
    assert data["steps"] == 7 and len(data["layers"]) == 3
    for lt, layer in zip(traced.layers, data["layers"]):
        assert (layer["name"], layer["cell"], layer["units"]) == (lt.name, lt.cell, lt.units)
        assert list(layer["quantities"]) == list(lt.values)
        for q, values in lt.values.items():
            entry = layer["quantities"][q]
            assert entry["scale"] == {"h": "signed", "c": "unbounded", "g": "signed", "n": "signed"}.get(q, "unit")
            for u in range(lt.units):
                got = np.array(stored_values(entry, u, 7))
                assert np.abs(got - values[:, u]).max() <= bound(values[:, u]), (lt.name, q, u)
            std = values.std(axis=0)
            assert [u for u, _ in entry["top"]] == list(np.argsort(-std, kind="stable")[:10])
            assert entry["top"][0][1] == pytest.approx(std.max(), rel=5e-3)


def test_the_default_selection_is_the_last_layer_and_its_most_varying_unit(ids):
    model = classifier()
    traced = viewer.trace(model, ids)
    data = Page(viewer.render_html(["x"] * 7, traced)).data
    h = traced.layers[1].values["h"]  # layer 2 (forward): the last recurrent layer's forward half
    assert data["initial"] == {"layer": 1, "quantity": "h", "unit": int(np.argmax(h.std(axis=0)))}
    lm = viewer.trace(language_model(), ids, next_token=True)
    data = Page(viewer.render_html(["x"] * 7, lm, quantity="p")).data
    assert data["initial"] == {"layer": 2, "quantity": "p", "unit": 0}
    assert data["layers"][2]["name"] == "output: next token" and data["layers"][2]["quantities"]["p"]["missing"] == [6]


def test_the_next_token_row_is_coloured_on_the_unit_scale_and_blank_at_the_end(ids):
    traced = viewer.trace(language_model(), ids, next_token=True)
    page = Page(viewer.render_html(["x"] * 7, traced, layer=2, quantity="p"))
    for t, span in enumerate(page.spans[:-1]):
        p = traced.next_token_prob[t]
        assert float(span["data-value"]) == pytest.approx(p, abs=bound(traced.next_token_prob))
        assert np.abs(np.subtract(background(span), expected_colour(p, "unit"))).max() <= 1
    last = page.spans[-1]
    assert "style" not in last and "data-value" not in last and last["title"].endswith("= (none)")


def test_the_page_is_self_contained_and_text_cannot_end_its_script(ids):
    traced = viewer.trace(language_model(), ids)
    renamed = viewer.LayerTrace("</script><b>&amp;", *[getattr(traced.layers[0], k) for k in ("path", "cell", "depth",
                                                                                                 "values")])
    traced = viewer.Trace((renamed,), traced.outputs)
    tokens = ["</script>", "<!--", "<b>", "]]>", "\\u003c", "&lt;", "x"]
    page_html = viewer.render_html(tokens, traced, title="</title><script>alert(1)</script>")
    page = Page(page_html)
    assert [s["text"] for s in page.spans] == tokens
    assert page.data["layers"][0]["name"] == "</script><b>&amp;"  # the JSON is whole, and read back as written
    assert page_html.count("<script") == 2 and "alert(1)</script>" not in page_html
    assert not re.search(r"\b(src|href)\s*=|https?:|url\(|@import|<link|<iframe", page_html, re.IGNORECASE)


def test_gaps_between_tokens_are_shown_uncoloured(ids):
    traced = viewer.trace(language_model(), ids)
    tokens = ["Hello", ",", "big", "World", "!", "bye", "x"]
    gaps = ["", "", "  ", "\n", "", "\t", " ", "\n"]
    page = Page(viewer.render_html(tokens, traced, gaps=gaps))
    assert page.text == "Hello,  big\nWorld!\tbye x\n"
    assert Page(viewer.render_html(tokens, traced, joiner=" ")).text == "Hello , big World ! bye x"


def test_render_html_rejects_bad_arguments(ids):
    traced = viewer.trace(classifier(), ids)
    tokens = ["t"] * 7
    with pytest.raises(TypeError, match=r"traced must be a Trace"):
        viewer.render_html(tokens, {"h": 1})
    with pytest.raises(ValueError, match=r"tokens must hold one str per traced step \(7\), got 6"):
        viewer.render_html(tokens[:6], traced)
    with pytest.raises(TypeError, match=r"tokens must be str; token 3 is int 3"):
        viewer.render_html(["t", "t", "t", 3, "t", "t", "t"], traced)
    with pytest.raises(ValueError,
                       match=r"quantity must be one of h, r, z, n for layer 1 \(layer 2 \(forward\), GRU\), "
                                         r"got 'c'"):
        viewer.render_html(tokens, traced, layer=1, quantity="c")
    with pytest.raises(ValueError, match=r"layer must be in \[0, 3\) \(0: layer 1; 1: layer 2 \(forward\); 2: layer 2 "
                                         r"\(backward\)\), got 3"):
        viewer.render_html(tokens, traced, layer=3)
    with pytest.raises(ValueError, match=r"unit must be in \[0, 6\) for layer 0 \(layer 1, 6 units\), got 6"):
        viewer.render_html(tokens, traced, layer=0, unit=6)
    with pytest.raises(TypeError, match=r"unit must be an int or None, got str '1'"):
        viewer.render_html(tokens, traced, unit="1")
    with pytest.raises(ValueError, match=r"quantity must be one of the model's quantities \(h, c, i, f, g, o, r, z, "
                                         r"n\), got 'q'"):
        viewer.render_html(tokens, traced, quantity="q")
    with pytest.raises(ValueError, match=r"gaps must be T \+ 1 = 8 strings"):
        viewer.render_html(tokens, traced, gaps=[""] * 7)
    broken = {q: v.copy() for q, v in traced.layers[2].values.items()}
    broken["z"][4, 1] = np.inf
    layers = (*traced.layers[:2], viewer.LayerTrace("layer 2 (backward)", "3.backward", "GRU", 2, broken))
    with pytest.raises(ValueError, match=r"layer 2 \(backward\): z is not finite at step 4, unit 1 \(inf\)"):
        viewer.render_html(tokens, viewer.Trace(layers, traced.outputs))
    with pytest.raises(ValueError, match=r"traced.next_token_prob is not finite at step 2"):
        viewer.render_html(tokens, viewer.Trace(traced.layers, traced.outputs, np.array([0.5, 0.1, np.nan, 0, 0, 0])))


def test_the_size_budget_of_the_module_docstring(monkeypatch):
    """2,000 characters through a 2 x 256 LSTM (6.1 M values): about 8.5 MB, as documented."""
    rng = np.random.default_rng(0)
    T, H = 2000, 256
    layers = tuple(viewer.LayerTrace(f"layer {d}", str(d), "LSTM", d,
                                     {q: rng.uniform(-1, 1, (T, H)) if q in "hcg" else rng.uniform(0, 1, (T, H))
                                      for q in "hcifgo"}) for d in (1, 2))
    traced = viewer.Trace(layers, np.zeros((T, 60)), rng.uniform(0, 1, T - 1))
    size = len(viewer.render_html(["a"] * T, traced).encode("utf-8"))
    assert 8.2e6 < size < 9.0e6  # 6,144,000 bytes of codes, base64: 8.19 MB, plus the spans
    monkeypatch.setattr(viewer.render, "MAX_PAGE_VALUES", 6_000_000)  # the limit render_html reads
    with pytest.raises(ValueError, match=r"the page would hold 6,144,000 values \(2,000 tokens x 3,072 per token.*"
                                         r"inspect a text of at most 1,953 tokens"):
        viewer.render_html(["a"] * T, traced)


# =========================================================================== inspect on a run directory
def make_run(path: Path, data: str, model: str, vocab: Vocabulary):
    """A run directory as ``rnnlab train`` leaves it (config.toml, vocab.json, model/), with untrained weights."""
    config = parse_config(f"[data]\n{data}\n[model]\n{model}\n[train]\nepochs = 1\n")
    lm = config.data.task == "language_model"
    net = build_model(config.model, inputs="ids", n_inputs=len(vocab), n_outputs=len(vocab) if lm else 2,
                      sequence_output=lm, mask_zero=not lm)
    path.mkdir()
    (path / "config.toml").write_text(to_toml(config), encoding="utf-8")
    (path / "vocab.json").write_text(vocab.to_json(), encoding="utf-8")
    io.save(net, path / "model")
    return net


CHAR_LM = ('task = "language_model"\ndataset = "tiny_shakespeare"\nlevel = "char"', "hidden_size = 8\nnum_layers = 2")
CORPUS = "First Citizen:\nBefore we proceed any further, hear me speak.\n"


@pytest.fixture
def char_run(tmp_path):
    vocab = Vocabulary(specials=(UNK,)).fit([list(CORPUS)])
    make_run(tmp_path / "run", *CHAR_LM, vocab)
    return tmp_path / "run", vocab


def test_inspect_writes_the_page_into_the_run_with_the_layers_own_activations(char_run):
    run, vocab = char_run
    text = "hear me, Z\u00e9.\n"  # Z and é are not in the vocabulary
    path = viewer.inspect(run, text, layer=0, quantity="c", unit=3)
    assert path == run / "inspect.html" and sorted(p.name for p in run.iterdir()) == [
        "config.toml", "inspect.html", "model", "vocab.json"]  # no temporary file left
    page = Page(path.read_text(encoding="utf-8"))
    assert [s["text"] for s in page.spans] == ["h", "e", "a", "r", " ", "m", "e", ",", " ", "Z", "\u00e9", ".",
                                               "\u21b5\n"]
    assert [s["class"] for s in page.spans].count("tok unk") == 2 and page.spans[9]["class"] == "tok unk"
    assert page.spans[9]["title"].endswith("(not in the vocabulary: read as <unk>)")
    # the model read <unk> (id 0) for them; its first LSTM's own activations() give the expected values
    model = io.load(run / "model")
    ids = np.array([[vocab.tokens.index(ch) if ch in vocab else 0 for ch in text]])
    model(ids)
    c = model.layers[1].activations()["c"][0, :, 3]  # (T,)
    for t, span in enumerate(page.spans):
        assert abs(float(span["data-value"]) - c[t]) <= bound(c), t
    assert page.data["initial"] == {"layer": 0, "quantity": "c", "unit": 3}
    assert [layer["name"] for layer in page.data["layers"]] == ["layer 1", "layer 2", "output: next token"]
    assert "language model: 12 next tokens predicted" in path.read_text(encoding="utf-8")


def test_inspect_of_a_word_level_sentiment_run_shows_the_text_as_typed(tmp_path):
    texts = ["a great movie", "a terrible ending", "great acting , terrible plot"]
    vocab = Vocabulary().fit([word_tokenize(t) for t in texts])
    make_run(tmp_path / "run", 'task = "sentiment"\ndataset = "uci_sentiment"',
             'cell = "gru"\nhidden_size = 5\nembedding_dim = 4\nbidirectional = true', vocab)
    text = "Great  movie,\nTERRIBLE ending!"
    out = tmp_path / "page.html"
    assert viewer.inspect(tmp_path / "run", text, out=out) == out
    page = Page(out.read_text(encoding="utf-8"))
    assert page.text == text  # the uncoloured gaps keep the typed spaces and line break
    assert [s["text"] for s in page.spans] == ["Great", "movie", ",", "TERRIBLE", "ending", "!"]
    assert [s["class"] for s in page.spans] == ["tok", "tok", "tok", "tok", "tok", "tok unk"]
    assert [layer["name"] for layer in page.data["layers"]] == ["layer 1 (forward)", "layer 1 (backward)"]
    model = io.load(tmp_path / "run" / "model")
    proba = softmax_rows(model(np.array([vocab.encode(word_tokenize(text))])).astype(np.float64))[0]
    label = ["negative", "positive"][int(proba.argmax())]
    assert f"sentiment: {label} (probability {proba.max():.3f})" in out.read_text(encoding="utf-8")


def test_inspect_errors(char_run, tmp_path):
    run, _ = char_run
    with pytest.raises(ConfigError, match=r"inspect: the text is empty"):
        viewer.inspect(run, "")
    with pytest.raises(ConfigError, match=r"inspect: the text is empty"):
        viewer.inspect(run, " \n\t")
    with pytest.raises(ConfigError, match=r"inspect: quantity must be one of h, c, i, f, g, o for layer 0 "
                                          r"\(layer 1, LSTM\), got 'z'"):
        viewer.inspect(run, "hear", layer=0, quantity="z")
    with pytest.raises(ConfigError, match=r"inspect: unit must be in \[0, 8\) for layer 1 \(layer 2, 8 units\), got 8"):
        viewer.inspect(run, "hear", layer=1, unit=8)
    with pytest.raises(ConfigError, match=r"the folder of the output file '.*nowhere.page\.html' does not exist"):
        viewer.inspect(run, "hear", out=tmp_path / "nowhere" / "page.html")
    with pytest.raises(RunError, match=r"run directory '.*missing' does not exist"):
        viewer.inspect(tmp_path / "missing", "hear")
    adding = tmp_path / "adding"
    adding.mkdir()
    config = parse_config('[data]\ntask = "adding"\n[model]\nhidden_size = 3\n[train]\n')
    (adding / "config.toml").write_text(to_toml(config), encoding="utf-8")
    io.save(build_model(config.model, inputs="values", n_inputs=2, n_outputs=1, sequence_output=False),
            adding / "model")
    with pytest.raises(RunError, match=r"is a run of task 'adding'; inspect reads text"):
        viewer.inspect(adding, "hear")
    with pytest.raises(TypeError, match=r"text must be a str, got bytes"):
        viewer.inspect(run, b"hear")


# =========================================================================== command line
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rnnlab inspect")
    inspect_cli.configure_cli(p)
    return p


def test_the_command_writes_the_page(char_run, tmp_path, capsys):
    run, _ = char_run
    out = tmp_path / "view.html"
    args = parser().parse_args([str(run), "--text", "hear me", "--out", str(out), "--layer", "1", "--quantity", "f",
                                "--unit", "4"])
    assert inspect_cli.run_cli(args) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert Page(out.read_text(encoding="utf-8")).data["initial"] == {"layer": 1, "quantity": "f", "unit": 4}
    source = tmp_path / "text.txt"
    source.write_text("speak\nfurther", encoding="utf-8")
    assert inspect_cli.run_cli(parser().parse_args([str(run), "--file", str(source)])) == 0
    assert ("".join(s["text"] for s in Page((run / "inspect.html").read_text(encoding="utf-8")).spans)
            == "speak\u21b5\nfurther")


def test_the_command_reports_usage_errors(char_run, tmp_path, capsys):
    run, _ = char_run
    for argv in ([str(run)], [str(run), "--text", "a", "--file", "b"], [str(run), "--text", "a", "--quantity", "x"],
                 [str(run), "--text", "a", "--unit", "-1"], [str(run), "--text", "a", "--layer", "one"]):
        with pytest.raises(SystemExit) as exc:
            parser().parse_args(argv)
        assert exc.value.code == 2, argv
    err = capsys.readouterr().err
    assert "one of the arguments --text --file is required" in err and "expected an integer >= 0, got -1" in err
    with pytest.raises(ConfigError, match=r"inspect: the text is empty"):
        inspect_cli.run_cli(parser().parse_args([str(run), "--text", ""]))
    with pytest.raises(ConfigError, match=r"inspect --file: '.*absent\.txt' not found"):
        inspect_cli.run_cli(parser().parse_args([str(run), "--file", str(tmp_path / "absent.txt")]))
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"cannot read '.*latin1\.txt' as UTF-8 text"):
        inspect_cli.run_cli(parser().parse_args([str(run), "--file", str(tmp_path / "latin1.txt")]))
    with pytest.raises(RunError, match=r"does not exist"):
        inspect_cli.run_cli(parser().parse_args([str(tmp_path / "none"), "--text", "a"]))
