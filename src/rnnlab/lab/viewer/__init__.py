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
codes, the rest the text's spans; ``tests/unit/test_viewer.py`` checks it); 500 characters, 2.1 MB. (Decimal text at 3-4 significant digits costs 5-7 bytes per value, 35 MB for the
same text.) :data:`MAX_PAGE_VALUES` bounds a page at about 32 MB: longer texts are refused with the
numbers, rather than written as a file no browser opens comfortably.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rnnlab.lab.viewer.colours import SCALES, colour
from rnnlab.lab.viewer.encode import decode
from rnnlab.lab.viewer.render import MAX_PAGE_VALUES, render_html
from rnnlab.lab.viewer.run import DEFAULT_FILE, inspect
from rnnlab.lab.viewer.tracing import QUANTITIES, LayerTrace, Trace, trace

__all__ = ["LayerTrace", "Trace", "trace", "render_html", "inspect", "colour", "decode", "configure_cli", "run_cli",
           "QUANTITIES", "SCALES", "MAX_PAGE_VALUES", "DEFAULT_FILE"]


# =========================================================================== command line (moving to rnnlab.cli)
def _index(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def configure_cli(parser: argparse.ArgumentParser) -> None:
    """The options of ``rnnlab inspect RUN (--text TEXT | --file PATH) [--out PATH] [--layer N]
    [--quantity Q] [--unit N]``."""
    parser.add_argument("run_dir", metavar="RUN", help="a language_model or sentiment run directory")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", metavar="TEXT", help="the text to run the model over")
    source.add_argument("--file", metavar="PATH", help="read the text from a UTF-8 file instead")
    parser.add_argument("--out", metavar="PATH", default=None, help=f"the page to write (default: RUN/{DEFAULT_FILE})")
    parser.add_argument("--layer", type=_index, default=None, metavar="N",
                        help="the layer the page opens on: an index into the page's layer list, 0 for the first "
                             "recurrent layer, the forward half of a bidirectional one before its backward half "
                             "(default: the last recurrent layer)")
    parser.add_argument("--quantity", choices=QUANTITIES, default="h",
                        help="h (hidden state), c (LSTM cell state) or a gate: LSTM i f g o, GRU r z n "
                             "(default: %(default)s)")
    parser.add_argument("--unit", type=_index, default=None, metavar="N",
                        help="the unit the page opens on (default: the one whose values vary most over the text)")


def run_cli(args: argparse.Namespace) -> int:
    """``rnnlab inspect``: write the page and say where it is (exit code 0)."""
    from rnnlab.lab.config import ConfigError

    text = args.text
    if text is None:
        try:
            text = Path(args.file).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"inspect --file: '{args.file}' not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"inspect --file: cannot read '{args.file}' as UTF-8 text: {exc}") from None
    path = inspect(args.run_dir, text, out=args.out, layer=args.layer, quantity=args.quantity, unit=args.unit)
    size = path.stat().st_size
    print(f"wrote {path} ({size / 1e6:.1f} MB): open it in a browser; the view is chosen on the page or in the "
          "address, e.g. #layer=0&quantity=h&unit=3")
    return 0
