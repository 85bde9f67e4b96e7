"""The activation viewer: colour each token of a text by one unit's activation, gate value or cell state.

``rnnlab inspect RUN --text "..."`` runs a trained model over a text and writes one self-contained
HTML page (inline CSS, JavaScript and data; nothing fetched) in the style of Karpathy's char-rnn cell
visualisations: the text with every token's background coloured by the selected recurrent layer,
quantity and unit, with selects for the three, a legend, the value on hover and the units of the
selected layer and quantity ranked by their variance over the text.

Three steps, each usable on its own, each in a file of this package:

* :func:`trace` (``tracing.py``) runs a model over one sequence and keeps, for every recurrent
  layer (both directions of a ``Bidirectional``), every quantity of ``layer.activations()`` as a
  (T, H) array, plus the model's outputs and, for a language model, the probability of each next
  token;
* :func:`render_html` (``render.py``) turns tokens and a :class:`Trace` into the page, with the
  values encoded by ``encode.py`` and coloured by ``colours.py``; the page's HTML, CSS and script
  are the package data files ``page.html``, ``page.css`` and ``page.js``;
* :func:`inspect` (``run.py``) does both for a run directory and writes ``RUN/inspect.html``
  atomically.

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
codes, the rest the text's spans; ``tests/unit/test_viewer.py`` checks it); 500 characters, 2.1 MB.
(Decimal text at 3-4 significant digits costs 5-7 bytes per value, 35 MB for the same text.)
:data:`MAX_PAGE_VALUES` bounds a page at about 32 MB: longer texts are refused with the numbers,
rather than written as a file no browser opens comfortably.
"""

from __future__ import annotations

from rnnlab.lab.viewer.colours import SCALES, colour
from rnnlab.lab.viewer.encode import decode
from rnnlab.lab.viewer.render import MAX_PAGE_VALUES, render_html
from rnnlab.lab.viewer.run import DEFAULT_FILE, inspect
from rnnlab.lab.viewer.tracing import QUANTITIES, LayerTrace, Trace, trace

__all__ = ["LayerTrace", "Trace", "trace", "render_html", "inspect", "colour", "decode",
           "QUANTITIES", "SCALES", "MAX_PAGE_VALUES", "DEFAULT_FILE"]

