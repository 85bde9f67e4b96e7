"""``rnnlab inspect RUN (--text TEXT | --file PATH) [--out PATH] [--layer N] [--quantity Q] [--unit N]``: write
the activation page of :func:`rnnlab.lab.viewer.inspect` and say where it is."""

from __future__ import annotations

import argparse
from pathlib import Path

from rnnlab.cli._args import int_at_least
from rnnlab.cli._registry import command
from rnnlab.lab.config import ConfigError
from rnnlab.lab.viewer import DEFAULT_FILE, QUANTITIES, inspect

__all__ = ["configure_cli", "run_cli"]


def configure_cli(parser: argparse.ArgumentParser) -> None:
    """The options of ``rnnlab inspect RUN (--text TEXT | --file PATH) [--out PATH] [--layer N]
    [--quantity Q] [--unit N]``."""
    parser.add_argument("run_dir", metavar="RUN", help="a language_model or sentiment run directory")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", metavar="TEXT", help="the text to run the model over")
    source.add_argument("--file", metavar="PATH", help="read the text from a UTF-8 file instead")
    parser.add_argument("--out", metavar="PATH", default=None, help=f"the page to write (default: RUN/{DEFAULT_FILE})")
    parser.add_argument("--layer", type=int_at_least(0), default=None, metavar="N",
                        help="the layer the page opens on: an index into the page's layer list, 0 for the first "
                             "recurrent layer, the forward half of a bidirectional one before its backward half "
                             "(default: the last recurrent layer)")
    parser.add_argument("--quantity", choices=QUANTITIES, default="h",
                        help="h (hidden state), c (LSTM cell state) or a gate: LSTM i f g o, GRU r z n "
                             "(default: %(default)s)")
    parser.add_argument("--unit", type=int_at_least(0), default=None, metavar="N",
                        help="the unit the page opens on (default: the one whose values vary most over the text)")


@command("inspect", "colour a text by a unit's activation, gate value or cell state in a self-contained "
                    "HTML page", configure_cli)
def run_cli(args: argparse.Namespace) -> int:
    """``rnnlab inspect``: write the page and say where it is (exit code 0)."""
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
