"""The page: :func:`render_html` assembles one self-contained HTML page from tokens and a trace, with
the page's HTML, CSS and JavaScript read from the package data files ``page.html``, ``page.css`` and
``page.js``."""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Sequence
from functools import cache
from importlib import resources

import numpy as np

from rnnlab.lab.viewer.colours import NEGATIVE, POSITIVE, UNIT, colour
from rnnlab.lab.viewer.encode import _page_layers, decode
from rnnlab.lab.viewer.tracing import QUANTITIES, Trace, _check_finite

__all__ = ["MAX_PAGE_VALUES", "render_html"]

#: the most values one page holds (about 32 MB of HTML); see the docstring of the package
MAX_PAGE_VALUES = 24_000_000


_PLACEHOLDER = re.compile(r"__(TITLE|DESCRIPTION|STYLE|SCRIPT|TEXT|DATA)__")


@cache
def _asset(name: str) -> str:
    """The text of one of the page's package data files: ``page.html`` (the page, with ``__TITLE__``,
    ``__DESCRIPTION__``, ``__STYLE__``, ``__SCRIPT__``, ``__TEXT__`` and ``__DATA__`` to fill in),
    ``page.css`` or ``page.js``."""
    return resources.files("rnnlab.lab.viewer").joinpath(name).read_text(encoding="utf-8")


def _fmt(x: float) -> str:
    return f"{x:.4g}"


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
        preferred = [i for i in having
                     if layers[i]["path"] != "output" and not layers[i]["name"].endswith("(backward)")]
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
        A line shown under the title (e.g. the model's prediction). On the page, the unit is chosen
        with a number field (the arrow keys step through the units) or from the list of the units
        that vary most.

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
    fills = {"TITLE": html.escape(title), "DESCRIPTION": html.escape(description), "STYLE": _asset("page.css"),
             "SCRIPT": _asset("page.js"), "TEXT": "".join(parts), "DATA": _json_for_script(document)}
    # one pass over the template: a placeholder inside a filled-in text stays as the user wrote it
    return _PLACEHOLDER.sub(lambda m: fills[m.group(1)], _asset("page.html"))
