"""The activation viewer: colour each token of a text by one unit's activation, gate value or cell state.

``rnnlab inspect RUN --text "..."`` runs a trained model over a text and writes one self-contained
HTML page (inline CSS, JavaScript and data; nothing fetched) in the style of Karpathy's char-rnn cell
visualisations: the text with every token's background coloured by the selected recurrent layer,
quantity and unit, with selects for the three, a legend, the value on hover and the units of the
selected layer and quantity ranked by their variance over the text.

Three steps, each usable on its own:

* :func:`trace` runs a model over one sequence and keeps, for every recurrent layer (both
  directions of a ``Bidirectional``), every quantity of ``layer.activations()`` as a (T, H) array,
  plus the model's outputs and, for a language model, the probability of each next token;
* :func:`render_html` turns tokens and a :class:`Trace` into the page;
* :func:`inspect` does both for a run directory and writes ``RUN/inspect.html`` atomically.

Selecting from the URL
----------------------
The page opens on the selection in its URL fragment, ``inspect.html#layer=0&quantity=c&unit=5``
(``layer`` is the index in the page's layer list, ``unit`` the index in the layer's state), or on
the defaults written into it when there is no fragment; changing a select rewrites the fragment, so
a view can be bookmarked and a headless browser can render a chosen one.

Size budget
-----------
Every value is stored as one byte, an 8-bit code on its unit's own range (see
:func:`render_html`), base64-encoded: 4/3 bytes per value, about 2 to 3 significant digits, finer
than the colour scale (at most 256 shades). A 2,000-character text through the 2 x 256 LSTM of
``examples/charlm_shakespeare.toml`` holds 2,000 x 512 x 6 = 6.1 M values: an 8.5 MB page (8.2 MB of
codes, the rest the text's spans; ``tests/unit/test_viewer.py`` checks it); 500 characters, 2.1 MB. (Decimal text at 3-4 significant digits costs 5-7 bytes per value, 35 MB for the
same text.) :data:`MAX_PAGE_VALUES` bounds a page at about 32 MB: longer texts are refused with the
numbers, rather than written as a file no browser opens comfortably.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnlab._files import write_atomic
from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.functional import softmax
from rnnlab.nn.module import Module
from rnnlab.nn.recurrent import Recurrent

__all__ = ["LayerTrace", "Trace", "trace", "render_html", "inspect", "colour", "decode",
           "QUANTITIES", "SCALES", "MAX_PAGE_VALUES", "DEFAULT_FILE"]

#: every quantity a recurrent layer reports, in the order the page lists them
QUANTITIES = ("h", "c", "i", "f", "g", "o", "r", "z", "n")

#: what each quantity means, for the page
DESCRIPTIONS = {
    "h": "hidden state h_t", "c": "cell state c_t", "i": "input gate i_t", "f": "forget gate f_t",
    "g": "candidate g_t", "o": "output gate o_t", "r": "reset gate r_t", "z": "update gate z_t",
    "n": "candidate n_t", "p": "probability of the next token",
}

#: the colour scale of each quantity: "unit" values lie in [0, 1] (sigmoid gates, probabilities),
#: "signed" ones in [-1, 1] (tanh range); "unbounded" ones (the LSTM cell state) are scaled by the
#: selected unit's largest |value| over the text. A quantity whose values leave its range (a relu
#: or linear activation) is shown as "unbounded".
SCALES = {"h": "signed", "c": "unbounded", "i": "unit", "f": "unit", "g": "signed", "o": "unit", "r": "unit",
          "z": "unit", "n": "signed", "p": "unit"}

#: end colours (R, G, B) of the scales; a value of 0 is white
POSITIVE = (230, 85, 60)
NEGATIVE = (60, 130, 210)
UNIT = (40, 160, 80)

#: the most values one page holds (about 32 MB of HTML); see the module docstring
MAX_PAGE_VALUES = 24_000_000

#: the page ``inspect`` writes into the run directory when no ``out`` is given
DEFAULT_FILE = "inspect.html"

_CODES = 255  # an 8-bit code k stands for lo + (hi - lo) * k / 255
_TOP_UNITS = 10  # units listed by variance on the page


# =========================================================================== tracing
@dataclass(frozen=True)
class LayerTrace:
    """One recurrent layer's (or one direction's) activations over a sequence.

    Attributes
    ----------
    name : str
        ``"layer 2"``, ``"layer 1 (forward)"``, ``"layer 1 (backward)"``: recurrent layers are
        numbered from 1 in the order the model applies them.
    path : str
        The dotted name of the module in the model (``"2"``, ``"1.forward"``), as in
        ``named_parameters()``.
    cell : str
        The layer's class name (``"LSTM"``, ``"GRU"``, ``"SimpleRNN"``).
    depth : int
        The layer's number (1 for the first recurrent layer).
    values : dict of str to ndarray, each (T, H), float64
        ``layer.activations()`` of the sequence in time order (a layer reading backwards is turned
        around): ``h``, ``c`` and the gates ``i, f, g, o`` (LSTM), ``h`` and ``r, z, n`` (GRU),
        ``h`` (SimpleRNN).
    """

    name: str
    path: str
    cell: str
    depth: int
    values: dict

    @property
    def units(self) -> int:
        """H, the number of units."""
        return next(iter(self.values.values())).shape[1]


@dataclass(frozen=True)
class Trace:
    """What :func:`trace` collects from one sequence of T steps.

    Attributes
    ----------
    layers : tuple of LayerTrace
        One per recurrent layer, two (forward, backward) per ``Bidirectional``, in model order.
    outputs : ndarray
        The model's output for the sequence: (T, K) for a many-to-many model, (K,) for a
        many-to-one one (the batch axis dropped).
    next_token_prob : ndarray of float64, shape (T - 1,), or None
        With ``next_token=True``: ``p_t = softmax(y_t)[x_{t+1}]``, the probability the model gave
        at step t to the token that actually follows.
    """

    layers: tuple
    outputs: np.ndarray
    next_token_prob: np.ndarray | None = None

    @property
    def steps(self) -> int:
        """T, the length of the traced sequence."""
        return self.layers[0].values["h"].shape[0]


def _recurrent_nodes(model: Module) -> list[tuple[str, Module]]:
    """``(dotted_path, module)`` of every Recurrent or Bidirectional inside ``model``, in order."""
    found = []

    def walk(module: Module, path: str) -> None:
        if isinstance(module, (Recurrent, Bidirectional)):
            found.append((path, module))
            return  # a Bidirectional's two halves are reported through it
        for name, child in module.children():
            walk(child, f"{path}.{name}" if path else name)

    walk(model, "")
    return found


@contextmanager
def _fresh_state(layers: list[Recurrent]):
    """Run from zero states: a stateful layer's carried state is set aside, and given back after."""
    saved = [(layer, layer.stateful, layer.states) for layer in layers]
    try:
        for layer in layers:
            layer.stateful = False
        yield
    finally:
        for layer, flag, states in saved:
            layer.stateful = flag
            layer.states = states


def _check_finite(name: str, quantity: str, values: np.ndarray) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        t, u = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name}: {quantity} is not finite at step {t}, unit {u} ({values[t, u]}); the model's weights "
                         "or inputs hold NaN or inf, or the activations overflowed")


def trace(model: Module, inputs, *, next_token: bool = False) -> Trace:
    """Run ``model`` over one sequence and collect every recurrent layer's activations.

    Parameters
    ----------
    model : Module
        Any module holding recurrent layers, typically a ``Sequential`` of ``Embedding``/``OneHot``
        -> recurrent layers (plain, stacked or ``Bidirectional``) -> ``Dense``. It runs as built
        (a many-to-one model's last recurrent layer still reports every step), with
        ``training=False`` (no dropout) and zero initial states: the state a ``stateful`` layer
        carries is set aside during the call and restored after it.
    inputs : array_like
        One sequence: token ids (T,) of an integer dtype, or real values (T, F).
    next_token : bool
        The model is a language model: also compute, for every step but the last, the probability
        its output gives to the token that follows (needs ids, and outputs (T, V)).

    Returns
    -------
    Trace

    Raises
    ------
    TypeError
        If ``model`` is not a Module, or ``inputs`` are neither integer ids nor real values.
    ValueError
        If ``inputs`` are empty or of the wrong rank, the model holds no recurrent layer, an
        activation is not finite, or ``next_token`` is asked of a model that does not output (T, V).

    Notes
    -----
    For an Elman layer the trace holds ``h_t = a_t = f(U x_t + W a_{t-1} + b)``; for an LSTM also
    ``i, f, g, o`` (``[i; f; g; o] = [sigm; sigm; tanh; sigm](U x_t + W h_{t-1} + b)``),
    ``c_t = f_t * c_{t-1} + i_t * g_t`` and ``h_t = o_t * tanh(c_t)``; for a GRU ``r, z, n`` and
    ``h_t = (1 - z_t) * n_t + z_t * h_{t-1}``. With ``y_t = V h_t + c`` the output layer's logits,
    ``next_token_prob[t] = softmax(y_t)[x_{t+1}]``, t = 0 .. T-2.
    """
    if not isinstance(model, Module):
        raise TypeError(f"model must be an rnnlab Module (e.g. a Sequential), got {type(model).__name__}")
    if not isinstance(next_token, bool):
        raise TypeError(f"next_token must be a bool, got {type(next_token).__name__} {next_token!r}")
    x = np.asarray(inputs)
    if np.issubdtype(x.dtype, np.integer):
        if x.ndim != 1 or x.size == 0:
            raise ValueError(f"inputs of token ids must be a non-empty 1-D sequence (T,), got shape {x.shape}")
    elif np.issubdtype(x.dtype, np.floating):
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"inputs of real values must be a non-empty (T, F) array, got shape {x.shape}")
        if next_token:
            raise ValueError("next_token=True needs token ids as inputs (the next token is the next input), got "
                             f"real values of shape {x.shape}")
    else:
        raise TypeError(f"inputs must be token ids (an integer array (T,)) or real values (a float array (T, F)), "
                        f"got dtype {x.dtype}")
    nodes = _recurrent_nodes(model)
    if not nodes:
        raise ValueError(f"model ({type(model).__name__}) holds no recurrent layer (SimpleRNN, LSTM, GRU, "
                         "Bidirectional) to inspect")
    layers = [m for _, node in nodes for m in ((node.forward_layer, node.backward_layer)
                                               if isinstance(node, Bidirectional) else (node,))]
    with _fresh_state(layers):
        out = model(x[None], training=False)  # (1, T, K) or (1, K)
    out = np.asarray(out[0] if isinstance(out, (tuple, list)) else out)[0]  # (T, K) or (K,)

    traced = []
    for depth, (path, node) in enumerate(nodes, start=1):
        if isinstance(node, Bidirectional):
            both = node.activations()  # both in time order
            parts = [(f"layer {depth} ({d})", f"{path}.{d}", both[d], getattr(node, f"{d}_layer")) for d in
                     ("forward", "backward")]
        else:
            acts = node.activations()  # processing order
            if node.go_backwards:
                acts = {k: v[:, ::-1] for k, v in acts.items()}
            parts = [(f"layer {depth}" + (" (reading backwards)" if node.go_backwards else ""), path, acts, node)]
        for name, where, acts, layer in parts:
            values = {}
            for q, v in acts.items():
                values[q] = np.array(v[0], dtype=np.float64)  # (T, H)
                _check_finite(name, q, values[q])
            traced.append(LayerTrace(name, where or "(model)", type(layer).__name__, depth, values))

    prob = None
    if next_token:
        T = x.shape[0]
        if out.ndim != 2 or out.shape[0] != T:
            raise ValueError(f"next_token=True needs a language model's per-step outputs (T, V) = ({T}, V), got shape "
                             f"{out.shape}")
        if x.max() >= out.shape[1]:
            raise ValueError(f"next_token=True: the ids reach {int(x.max())} but the model outputs {out.shape[1]} "
                             "classes per step")
        logits = out[:-1].astype(np.float64)  # (T-1, V)
        if not np.isfinite(logits).all():
            raise ValueError("next_token=True: the model's outputs are not finite")
        prob = softmax(logits)[np.arange(T - 1), x[1:]]  # (T-1,)
    return Trace(tuple(traced), out, prob)


# =========================================================================== colours
def decode(code, lo: float, hi: float) -> float:
    """The value an 8-bit code stands for: ``lo + (hi - lo) * code / 255`` (evaluated in this order,
    in float64, exactly as the page's script does)."""
    return lo + (hi - lo) * int(code) / _CODES


def colour(value: float, scale: str, extent: float = 1.0) -> tuple[int, int, int]:
    """The background colour (R, G, B) of a value on a scale.

    Parameters
    ----------
    value : float
    scale : "unit", "signed" or "unbounded"
        See :data:`SCALES`.
    extent : float
        For "unbounded": the largest |value| of the unit, which maps to the full colour (ignored
        by the other scales). 0 shows everything white.

    Notes
    -----
    With ``s = clip(value, 0, 1)`` and end colour ``UNIT`` on the unit scale, or
    ``s = |clip(value / extent, -1, 1)|`` and end colour ``POSITIVE`` (value >= 0) or ``NEGATIVE``
    on the others (``extent = 1`` for "signed"), each channel is
    ``floor(255 + s * (end - 255) + 0.5)``: white at 0, the end colour at full scale, linear in
    between. The page's script evaluates the same expression in the same float64 order, so both
    give the same integers.
    """
    value = float(value)
    if scale == "unit":
        s, end = min(max(value, 0.0), 1.0), UNIT
    elif scale in ("signed", "unbounded"):
        u = value if scale == "signed" else (value / extent if extent > 0 else 0.0)
        u = min(max(u, -1.0), 1.0)
        s, end = abs(u), (POSITIVE if u >= 0 else NEGATIVE)
    else:
        raise ValueError(f"scale must be one of 'unit', 'signed', 'unbounded'; got {scale!r}")
    return tuple(math.floor(255 + s * (e - 255) + 0.5) for e in end)


def _sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _encode(values: np.ndarray, missing: np.ndarray | None) -> dict:
    """Codes and ranges of a (H, T) array: one byte per value on each unit's own [lo, hi]."""
    present = values if missing is None else values[:, ~missing]  # (H, T')
    lo = np.array([_sig(v) for v in present.min(axis=1)])  # (H,) 4 significant digits
    hi = np.array([_sig(v) for v in present.max(axis=1)])  # (H,)
    span = hi - lo  # (H,)
    safe = np.where(span > 0, span, 1.0)
    codes = np.floor((values - lo[:, None]) / safe[:, None] * _CODES + 0.5)  # (H, T)
    codes = np.clip(np.where(span[:, None] > 0, codes, 0), 0, _CODES).astype(np.uint8)
    if missing is not None:
        codes[:, missing] = 0
    std = present.std(axis=1)  # (H,)
    top = np.argsort(-std, kind="stable")[:_TOP_UNITS]
    return {"lo": lo.tolist(), "hi": hi.tolist(), "codes": base64.b64encode(codes.tobytes()).decode("ascii"),
            "top": [[int(u), _sig(float(std[u]), 3)] for u in top]}


def _scale_of(quantity: str, values: np.ndarray) -> str:
    scale = SCALES.get(quantity, "unbounded")
    low, high = {"unit": (0.0, 1.0), "signed": (-1.0, 1.0)}.get(scale, (-np.inf, np.inf))
    return scale if values.min() >= low and values.max() <= high else "unbounded"


def _page_layers(traced: Trace) -> list[dict]:
    """The layer list of the page, with every quantity encoded (the output row last, if any)."""
    layers = []
    for lt in traced.layers:
        quantities = {}
        for q, v in lt.values.items():
            quantities[q] = {"scale": _scale_of(q, v), "label": DESCRIPTIONS.get(q, q), **_encode(v.T, None)}
        layers.append({"name": lt.name, "path": lt.path, "cell": lt.cell, "units": lt.units, "quantities": quantities})
    if traced.next_token_prob is not None and traced.next_token_prob.size:
        T = traced.steps
        p = np.zeros((1, T))
        p[0, :T - 1] = traced.next_token_prob
        missing = np.zeros(T, dtype=bool)
        missing[T - 1] = True  # the last token has no next one
        layers.append({"name": "output: next token", "path": "output", "cell": "softmax", "units": 1,
                       "quantities": {"p": {"scale": "unit", "label": DESCRIPTIONS["p"], "missing": [T - 1],
                                            **_encode(p, missing)}}})
    return layers


# =========================================================================== the page
def _check_selection(layers: list[dict], layer, quantity, unit) -> tuple[int, str, int]:
    """Validate a (layer, quantity, unit) selection against the page's layers; fill the defaults."""
    n = len(layers)
    if layer is not None:
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
            raise TypeError(f"layer must be an int index into the page's layers or None, got {type(layer).__name__} "
                            f"{layer!r}")
        if not 0 <= layer < n:
            raise ValueError(f"layer must be in [0, {n}) (" + "; ".join(f"{i}: {lay['name']}" for i, lay in
                                                                        enumerate(layers)) + f"), got {layer}")
        layer = int(layer)
    if not isinstance(quantity, str):
        raise TypeError(f"quantity must be a str such as 'h' or 'c', got {type(quantity).__name__} {quantity!r}")
    if layer is None:  # the last recurrent layer (its forward half) that has the quantity, else the output row
        having = [i for i, lay in enumerate(layers) if quantity in lay["quantities"]]
        if not having:
            have = sorted({q for lay in layers for q in lay["quantities"]}, key=_quantity_order)
            raise ValueError(f"quantity must be one of the model's quantities ({', '.join(have)}), got {quantity!r}")
        preferred = [i for i in having if layers[i]["path"] != "output" and not layers[i]["name"].endswith("(backward)")]
        layer = (preferred or having)[-1]
    chosen = layers[layer]
    if quantity not in chosen["quantities"]:
        raise ValueError(f"quantity must be one of {', '.join(chosen['quantities'])} for layer {layer} "
                         f"({chosen['name']}, {chosen['cell']}), got {quantity!r}")
    H = chosen["units"]
    if unit is None:
        unit = chosen["quantities"][quantity]["top"][0][0]  # the unit that varies most over the text
    elif isinstance(unit, bool) or not isinstance(unit, (int, np.integer)):
        raise TypeError(f"unit must be an int or None, got {type(unit).__name__} {unit!r}")
    elif not 0 <= unit < H:
        raise ValueError(f"unit must be in [0, {H}) for layer {layer} ({chosen['name']}, {H} units), got {unit}")
    return layer, quantity, int(unit)


def _quantity_order(q: str) -> int:
    return QUANTITIES.index(q) if q in QUANTITIES else len(QUANTITIES)


def _shown(token: str) -> str:
    """A token's visible text: a newline shows as an arrow before the line break."""
    return token.replace("\n", "\u21b5\n")


def _series(entry: dict, unit: int, steps: int) -> list:
    """The decoded values of one unit (None where missing), as the page's script computes them."""
    codes = base64.b64decode(entry["codes"])[unit * steps:(unit + 1) * steps]
    lo, hi = entry["lo"][unit], entry["hi"][unit]
    missing = set(entry.get("missing", ()))
    return [None if t in missing else decode(c, lo, hi) for t, c in enumerate(codes)]


def _extent(entry: dict, unit: int) -> float:
    return max(abs(entry["lo"][unit]), abs(entry["hi"][unit]))


def _json_for_script(document: dict) -> str:
    """JSON that cannot end its <script> element early nor be read as markup."""
    text = json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_html(tokens: Sequence[str], traced: Trace, *, title: str = "rnnlab inspect", joiner: str = "",
                gaps: Sequence[str] | None = None, unknown: Sequence[int] = (), layer: int | None = None,
                quantity: str = "h", unit: int | None = None, description: str = "") -> str:
    """One self-contained HTML page showing ``tokens`` coloured by a unit's values in ``traced``.

    Parameters
    ----------
    tokens : sequence of str, length T
        What each coloured span shows (T = ``traced.steps``). Text is HTML-escaped; spaces, tabs
        and line breaks are kept (``white-space: pre-wrap``), and a newline shows as ``↵`` before
        its line break.
    traced : Trace
    title : str
    joiner : str
        Uncoloured text between consecutive tokens (``" "`` for words), unless ``gaps`` is given.
    gaps : sequence of str, length T + 1, optional
        Uncoloured text before each token, and after the last one: the whitespace of the original
        text between words.
    unknown : sequence of int
        Steps whose token is not in the vocabulary (underlined; the model read ``<unk>``).
    layer, quantity, unit
        The selection the page opens on when its URL has no fragment. ``layer`` indexes the page's
        layer list (``traced.layers``, then ``output: next token`` when ``traced`` has next-token
        probabilities); None takes the last recurrent layer (its forward direction). ``unit``
        None takes the unit whose values vary most over the text.
    description : str
        A line shown under the title (e.g. the model's prediction).

    The unit is chosen with a number field (the arrow keys step through the units) or from the
    list of the units that vary most.

    Returns
    -------
    str
        The page. Each token is ``<span class="tok" data-i="t" data-value="v" title="..."
        style="background-color: rgb(r, g, b)">``, coloured for the initial selection (the
        script recolours on any other), with ``v`` the stored value to 4 significant digits.

    Raises
    ------
    TypeError, ValueError
        For tokens that are not T strings, gaps of the wrong length, a selection outside the page
        (naming the layers and quantities there are), values that are not finite, or a page over
        :data:`MAX_PAGE_VALUES`.

    Notes
    -----
    Storage: for unit u of a quantity, ``lo_u`` and ``hi_u`` are its smallest and largest values
    over the text (4 significant digits), and each value ``v`` is the byte
    ``k = clip(floor((v - lo_u) / (hi_u - lo_u) * 255 + 0.5), 0, 255)``, read back as
    ``lo_u + (hi_u - lo_u) * k / 255`` (:func:`decode`): within ``(hi_u - lo_u) / 510`` of ``v``
    (plus the rounding of ``lo_u``, ``hi_u``). Colours: :func:`colour` of the read-back value on
    the quantity's scale (:data:`SCALES`), with ``extent = max(|lo_u|, |hi_u|)`` for the cell state.
    The units listed beside the text are the ten with the largest standard deviation over the text.
    """
    if not isinstance(traced, Trace):
        raise TypeError(f"traced must be a Trace (from rnnlab.viewer.trace), got {type(traced).__name__}")
    T = traced.steps
    if isinstance(tokens, str) or not isinstance(tokens, Sequence):
        raise TypeError(f"tokens must be a sequence of str (one per step), got {type(tokens).__name__}")
    if len(tokens) != T:
        raise ValueError(f"tokens must hold one str per traced step ({T}), got {len(tokens)}")
    for t, tok in enumerate(tokens):
        if not isinstance(tok, str):
            raise TypeError(f"tokens must be str; token {t} is {type(tok).__name__} {tok!r:.40}")
    for name, value in (("title", title), ("joiner", joiner), ("description", description)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str, got {type(value).__name__} {value!r:.40}")
    if gaps is None:
        gaps = [""] + [joiner] * (T - 1) + [""]
    elif isinstance(gaps, str) or len(gaps) != T + 1 or not all(isinstance(g, str) for g in gaps):
        raise ValueError(f"gaps must be T + 1 = {T + 1} strings (the text before each token and after the last), "
                         f"got {gaps!r:.80}")
    unknown = sorted({int(t) for t in unknown})
    if unknown and not 0 <= unknown[0] <= unknown[-1] < T:
        raise ValueError(f"unknown must hold steps in [0, {T}), got {unknown[:5]}")
    for lt in traced.layers:
        for q, v in lt.values.items():
            _check_finite(lt.name, q, v)
    if traced.next_token_prob is not None and not np.isfinite(traced.next_token_prob).all():
        raise ValueError(f"traced.next_token_prob is not finite at step "
                         f"{int(np.flatnonzero(~np.isfinite(traced.next_token_prob))[0])}")
    count = sum(v.size for lt in traced.layers for v in lt.values.values())
    if count > MAX_PAGE_VALUES:
        per_step = count // T
        raise ValueError(f"the page would hold {count:,} values ({T:,} tokens x {per_step:,} per token: every unit "
                         f"of every quantity of every layer), about {count * 4 / 3 / 1e6:.0f} MB; the limit is "
                         f"{MAX_PAGE_VALUES:,} values (about {MAX_PAGE_VALUES * 4 / 3 / 1e6:.0f} MB): inspect a "
                         f"text of at most {MAX_PAGE_VALUES // max(per_step, 1):,} tokens")

    layers = _page_layers(traced)
    layer, quantity, unit = _check_selection(layers, layer, quantity, unit)
    entry = layers[layer]["quantities"][quantity]
    values = _series(entry, unit, T)
    extent = _extent(entry, unit)
    what = f"{layers[layer]['name']} \u00b7 {quantity}[{unit}]"
    unknown_set = set(unknown)

    parts = []
    for t, tok in enumerate(tokens):
        parts.append(html.escape(gaps[t], quote=False))
        v = values[t]
        note = " (not in the vocabulary: read as <unk>)" if t in unknown_set else ""
        attrs = [f'class="tok{" unk" if t in unknown_set else ""}"', f'data-i="{t}"']
        if v is None:
            attrs.append(f'title="{html.escape(what + " = (none)" + note)}"')
        else:
            r, g, b = colour(v, entry["scale"], extent)
            attrs += [f'data-value="{_fmt(v)}"', f'title="{html.escape(f"{what} = {_fmt(v)}{note}")}"',
                      f'style="background-color: rgb({r}, {g}, {b})"']
        parts.append(f"<span {' '.join(attrs)}>{html.escape(_shown(tok), quote=False)}</span>")
    parts.append(html.escape(gaps[T], quote=False))

    document = {"version": 1, "steps": T, "layers": layers, "initial": {"layer": layer, "quantity": quantity,
                                                                       "unit": unit},
                "unknown": unknown, "colours": {"positive": POSITIVE, "negative": NEGATIVE, "unit": UNIT}}
    return (_PAGE.replace("__TITLE__", html.escape(title))
            .replace("__DESCRIPTION__", html.escape(description))
            .replace("__STYLE__", _STYLE)
            .replace("__SCRIPT__", _SCRIPT)
            .replace("__TEXT__", "".join(parts))
            .replace("__DATA__", _json_for_script(document)))


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="rnnlab inspect">
<title>__TITLE__</title>
<style>__STYLE__</style>
</head>
<body>
<header>
<h1>__TITLE__</h1>
<p class="description">__DESCRIPTION__</p>
<form id="controls" onsubmit="return false">
<label>Layer <select id="layer"></select></label>
<label>Quantity <select id="quantity"></select></label>
<label>Unit <input id="unit" type="number" min="0" step="1" value="0"> <span id="units-count"></span></label>
</form>
<div id="legend"><span id="legend-bar"></span> <span id="legend-text"></span></div>
<p id="notice" hidden></p>
</header>
<main>
<pre id="text">__TEXT__</pre>
<aside>
<h2>Units by variance</h2>
<p class="hint">the units of this layer and quantity whose values vary most over the text (standard deviation)</p>
<ol id="ranking"></ol>
</aside>
</main>
<script type="application/json" id="rnnlab-data">__DATA__</script>
<script>__SCRIPT__</script>
</body>
</html>
"""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.2em 2em; color: #111; background: #fff; }
h1 { font-size: 1.3em; margin: 0 0 0.2em; }
h2 { font-size: 1em; margin: 0 0 0.3em; }
.description { margin: 0 0 0.6em; color: #444; }
#controls label { margin-right: 1.2em; }
#controls input { width: 5em; }
#legend { margin: 0.6em 0; font-size: 0.9em; }
#legend-bar { display: inline-block; width: 12em; height: 0.9em; vertical-align: middle; border: 1px solid #999; }
#notice { color: #a40; }
main { display: flex; gap: 2em; align-items: flex-start; }
#text { flex: 1; margin: 0; font: 15px/1.55 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
        white-space: pre-wrap; overflow-wrap: anywhere; }
#text .tok { padding: 0.1em 0; }
#text .tok:hover { outline: 1px solid #000; }
#text .unk { text-decoration: underline dotted; }
aside { width: 16em; font-size: 0.9em; }
.hint { color: #666; margin-top: 0; }
#ranking { padding-left: 1.6em; margin: 0; }
#ranking button { font: inherit; cursor: pointer; border: 1px solid #bbb; background: #f6f6f6; border-radius: 3px; }
#ranking button.current { background: #333; color: #fff; }
"""

_SCRIPT = r"""
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("rnnlab-data").textContent);
  var T = DATA.steps, CODES = 255, C = DATA.colours;
  var spans = document.querySelectorAll("#text span.tok");
  var layerSel = document.getElementById("layer"), quantitySel = document.getElementById("quantity");
  var unitIn = document.getElementById("unit"), notice = document.getElementById("notice");
  var unknown = {};
  DATA.unknown.forEach(function (t) { unknown[t] = true; });
  var cache = {}, current = null;

  function codes(li, q) {
    var key = li + "/" + q;
    if (!(key in cache)) {
      var s = atob(DATA.layers[li].quantities[q].codes), a = new Uint8Array(s.length);
      for (var i = 0; i < s.length; i++) a[i] = s.charCodeAt(i);
      cache[key] = a;
    }
    return cache[key];
  }
  function series(li, q, u) {
    var e = DATA.layers[li].quantities[q], a = codes(li, q), lo = e.lo[u], hi = e.hi[u], out = new Array(T);
    for (var t = 0; t < T; t++) out[t] = lo + (hi - lo) * a[u * T + t] / CODES;
    (e.missing || []).forEach(function (t) { out[t] = null; });
    return out;
  }
  function channel(s, end) { return Math.floor(255 + s * (end - 255) + 0.5); }
  function colour(v, scale, extent) {
    var s, end;
    if (scale === "unit") { s = Math.min(Math.max(v, 0), 1); end = C.unit; }
    else {
      var u = scale === "signed" ? v : (extent > 0 ? v / extent : 0);
      u = Math.min(Math.max(u, -1), 1);
      s = Math.abs(u); end = u >= 0 ? C.positive : C.negative;
    }
    return "rgb(" + channel(s, end[0]) + ", " + channel(s, end[1]) + ", " + channel(s, end[2]) + ")";
  }
  function rgb(c) { return "rgb(" + c.join(", ") + ")"; }
  function fmt(v) { return String(Number(v.toPrecision(4))); }

  function fill(select, items) {
    select.innerHTML = "";
    items.forEach(function (item) {
      var o = document.createElement("option");
      o.value = item[0]; o.textContent = item[1]; select.appendChild(o);
    });
  }
  fill(layerSel, DATA.layers.map(function (l, i) { return [i, i + ": " + l.name + " (" + l.cell + ", " + l.units + " units)"]; }));

  function valid(sel) {
    var l = DATA.layers[sel.layer];
    return l !== undefined && sel.quantity in l.quantities && sel.unit >= 0 && sel.unit < l.units && sel.unit % 1 === 0;
  }
  function show(sel, rewrite) {
    var layer = DATA.layers[sel.layer], e = layer.quantities[sel.quantity], u = sel.unit;
    current = sel;
    layerSel.value = String(sel.layer);
    fill(quantitySel, Object.keys(layer.quantities).map(function (q) { return [q, q + ": " + layer.quantities[q].label]; }));
    quantitySel.value = sel.quantity;
    unitIn.max = layer.units - 1; unitIn.value = u;
    document.getElementById("units-count").textContent = "of 0\u2013" + (layer.units - 1);
    var values = series(sel.layer, sel.quantity, u);
    var extent = Math.max(Math.abs(e.lo[u]), Math.abs(e.hi[u]));
    var what = layer.name + " \u00b7 " + sel.quantity + "[" + u + "]";
    for (var t = 0; t < spans.length; t++) {
      var span = spans[t], v = values[t], note = unknown[t] ? " (not in the vocabulary: read as <unk>)" : "";
      if (v === null) {
        span.style.backgroundColor = ""; span.removeAttribute("data-value"); span.title = what + " = (none)" + note;
      } else {
        span.style.backgroundColor = colour(v, e.scale, extent);
        span.setAttribute("data-value", fmt(v)); span.title = what + " = " + fmt(v) + note;
      }
    }
    legend(e, extent, sel.quantity);
    ranking(e, u);
    if (rewrite) {
      var hash = "#layer=" + sel.layer + "&quantity=" + sel.quantity + "&unit=" + u;
      try { history.replaceState(null, "", hash); } catch (err) { /* some browsers refuse it for file: pages */ }
    }
  }
  function legend(e, extent, q) {
    var bar = document.getElementById("legend-bar"), text = document.getElementById("legend-text");
    if (e.scale === "unit") {
      bar.style.background = "linear-gradient(to right, #fff, " + rgb(C.unit) + ")";
      text.textContent = "0 (white) \u2192 1: " + e.label + " (values in [0, 1])";
    } else {
      bar.style.background = "linear-gradient(to right, " + rgb(C.negative) + ", #fff, " + rgb(C.positive) + ")";
      if (e.scale === "signed") text.textContent = "\u22121 \u2192 0 (white) \u2192 +1: " + e.label + " (values in [\u22121, 1])";
      else text.textContent = "\u2212" + fmt(extent) + " \u2192 0 (white) \u2192 +" + fmt(extent) + ": " + e.label +
        " is unbounded, so the colours are scaled by this unit's largest |" + q + "| over the text, " + fmt(extent);
    }
  }
  function ranking(e, u) {
    var list = document.getElementById("ranking");
    list.innerHTML = "";
    e.top.forEach(function (pair) {
      var li = document.createElement("li"), b = document.createElement("button");
      b.type = "button"; b.textContent = "unit " + pair[0]; b.setAttribute("data-unit", pair[0]);
      if (pair[0] === u) b.className = "current";
      b.addEventListener("click", function () { show({layer: current.layer, quantity: current.quantity, unit: pair[0]}, true); });
      li.appendChild(b); li.appendChild(document.createTextNode(" \u03c3 " + pair[1]));
      list.appendChild(li);
    });
  }
  function fromHash() {
    var h = location.hash.replace(/^#/, ""), sel = {};
    if (!h) return null;
    h.split("&").forEach(function (kv) {
      var p = kv.split("=");
      if (p.length === 2) sel[decodeURIComponent(p[0])] = decodeURIComponent(p[1]);
    });
    var init = DATA.initial, layer = "layer" in sel ? Number(sel.layer) : init.layer;
    var quantity = "quantity" in sel ? sel.quantity : init.quantity, unit = Number(sel.unit);
    if (!("unit" in sel)) {  // the unit that varies most, for this layer and quantity
      var l = DATA.layers[layer];
      unit = l !== undefined && quantity in l.quantities ? l.quantities[quantity].top[0][0] : init.unit;
    }
    return {layer: layer, quantity: quantity, unit: unit, text: h};
  }
  function start() {
    var sel = fromHash();
    notice.hidden = true;
    if (sel !== null && !valid(sel)) {
      notice.textContent = "#" + sel.text + " is not a selection on this page; showing the default";
      notice.hidden = false;
      sel = null;
    }
    show(sel || DATA.initial, false);
  }
  layerSel.addEventListener("change", function () {
    var li = Number(layerSel.value), l = DATA.layers[li];
    var q = current.quantity in l.quantities ? current.quantity : Object.keys(l.quantities)[0];
    show({layer: li, quantity: q, unit: Math.min(current.unit, l.units - 1)}, true);
  });
  quantitySel.addEventListener("change", function () {
    show({layer: current.layer, quantity: quantitySel.value, unit: current.unit}, true);
  });
  unitIn.addEventListener("input", function () {  // arrow keys step through the units
    var u = Math.round(Number(unitIn.value)), n = DATA.layers[current.layer].units;
    if (unitIn.value === "" || !isFinite(u)) return;
    show({layer: current.layer, quantity: current.quantity, unit: Math.min(Math.max(u, 0), n - 1)}, true);
  });
  window.addEventListener("hashchange", start);
  start();
})();
"""


# =========================================================================== a run directory
def _display(text: str, tokens: list[str], joiner: str) -> tuple[list[str], list[str]]:
    """What to show for each token of ``text`` as the user typed it, and the text between tokens.

    Characters map one to one (``ptb`` shows a typed space, not its ``_``); words are found again
    in the text (the tokenizers lower-case, so case is matched loosely), with the whitespace between
    them kept. Where that fails, the tokens themselves, joined by ``joiner``.
    """
    T = len(tokens)
    fallback = list(tokens), [""] + [joiner] * (T - 1) + [""]
    if joiner == "":
        return (list(text), [""] * (T + 1)) if len(text) == T else fallback
    low = text.lower()
    if len(low) != len(text):  # lower-casing changed the length: positions do not carry over
        return fallback
    shown, gaps, pos = [], [], 0
    for tok in tokens:
        j = low.find(tok, pos)
        if j < 0:
            return fallback
        gaps.append(text[pos:j])
        shown.append(text[j:j + len(tok)])
        pos = j + len(tok)
    gaps.append(text[pos:])
    return shown, gaps


def _description(task: str, traced: Trace, labels: Sequence[str] | None) -> str:
    if task == "language_model" and traced.next_token_prob is not None and traced.next_token_prob.size:
        p = traced.next_token_prob
        bits = -np.log2(np.maximum(p, np.finfo(np.float64).tiny))
        return (f"language model: {p.size} next tokens predicted, mean probability {p.mean():.3f}, "
                f"{bits.mean():.3f} bits per token on this text")
    if task == "sentiment" and traced.outputs.ndim == 1:
        proba = softmax(traced.outputs.astype(np.float64))
        k = int(proba.argmax())
        name = labels[k] if labels and k < len(labels) else f"class {k}"
        return f"sentiment: {name} (probability {proba[k]:.3f})"
    return ""


def inspect(run_dir, text: str, *, out=None, layer: int | None = None, quantity: str = "h",
            unit: int | None = None) -> Path:
    """Trace a trained text model over ``text`` and write the activation page; return its path.

    Parameters
    ----------
    run_dir : path
        A run directory of a ``sentiment`` or ``language_model`` run (``rnnlab train``).
    text : str
        Tokenized with the run's own tokenizer and encoded with its vocabulary; a token the
        vocabulary lacks is shown as typed (underlined) and read by the model as ``<unk>``.
    out : path, optional
        The page to write (default ``RUN/inspect.html``); written atomically.
    layer, quantity, unit
        The selection the page opens on (see :func:`render_html`).

    Raises
    ------
    RunError
        The run directory is unusable, or its task reads no text.
    ConfigError
        A usage error: empty text, a selection the model does not have, an output folder that does
        not exist, or a text too long for one page.
    """
    from rnnlab.lab.config import ConfigError
    from rnnlab.lab.tasks import LABELS, RunError, load_run, tokenizer_of

    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__} {text!r:.40}")
    if not text.strip():
        raise ConfigError(f"inspect: the text is empty (got {text!r:.40}); give the text to colour, e.g. "
                          "--text \"To be, or not to be\"")
    run = load_run(run_dir)
    task = run.config.data.task
    if task not in ("language_model", "sentiment") or run.vocab is None:
        raise RunError(f"'{run.run_dir}' is a run of task {task!r}; inspect reads text, so it needs a language_model "
                       "or sentiment run")
    out = Path(run.run_dir) / DEFAULT_FILE if out is None else Path(out)
    if not out.parent.is_dir():
        raise ConfigError(f"inspect: the folder of the output file '{out}' does not exist")
    tokenize, joiner = tokenizer_of(run.config.data)
    tokens = tokenize(text)
    if not tokens:
        raise ConfigError(f"inspect: the text {text!r:.60} has no tokens for this run's tokenizer")
    ids = np.asarray(run.vocab.encode(tokens), dtype=np.int64)  # (T,)
    unknown = [t for t, tok in enumerate(tokens) if tok not in run.vocab]
    traced = trace(run.model, ids, next_token=task == "language_model")
    shown, gaps = _display(text, tokens, joiner)
    try:
        page = render_html(shown, traced, title=f"rnnlab inspect: {run.run_dir.name}", gaps=gaps, unknown=unknown,
                           layer=layer, quantity=quantity, unit=unit,
                           description=_description(task, traced, LABELS if task == "sentiment" else None))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"inspect: {exc}") from None
    write_atomic(out, page.encode("utf-8"))
    return out
