"""``rnnlab compare RUN RUN... [--metric M] [--labels L...] [--out FILE.png] [--title T] [--log] [--force]``:
several runs' histories side by side (:mod:`rnnlab.lab.compare`): a table of each run's best and last value
and, with ``--out``, a PNG of the quantity against the epoch, one line per run."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from rnnlab._files import write_atomic
from rnnlab.cli._registry import command
from rnnlab.lab.compare import compare, plot, table

__all__ = ["configure_cli", "run_cli"]


def configure_cli(parser: argparse.ArgumentParser) -> None:
    """The options of ``rnnlab compare``."""
    parser.add_argument("run_dirs", metavar="RUN", nargs="+",
                        help="run directories written by rnnlab train (a running one too: its epochs so far; a "
                             "cross-validation run: each of its folds)")
    parser.add_argument("--metric", metavar="M", default=None,
                        help="a column of the runs' history.json: val_loss, val_perplexity, val_accuracy, loss, ... "
                             "(default: val_loss if every run has it, else loss)")
    parser.add_argument("--labels", metavar="L", nargs="+", default=None,
                        help="a name for each run, in order (default: the directories' names)")
    parser.add_argument("--out", metavar="FILE", type=Path, default=None,
                        help="also draw the runs' curves into this PNG file (needs matplotlib)")
    parser.add_argument("--title", metavar="T", default=None, help="the figure's title")
    parser.add_argument("--log", action="store_true", help="a logarithmic y axis")
    parser.add_argument("--force", action="store_true", help="replace the --out file if it exists")


@command("compare", "several runs' learning curves side by side: each run's best and last value, and a figure",
         configure_cli)
def run_cli(args: argparse.Namespace) -> int:
    """Print the table and write the figure; 0. A run without a history raises ``RunError`` (exit 1), a metric
    a run lacks ``ValueError`` (exit 2)."""
    if args.out is not None:
        if args.out.suffix.lower() != ".png":
            raise ValueError(f"--out must name a .png file, got '{args.out}'")
        if args.out.exists() and not args.force:
            raise FileExistsError(f"'{args.out}' exists; pass --force to replace it")
    curves = compare(args.run_dirs, args.metric, args.labels)
    print(table(curves))
    if args.out is not None:
        buf = io.BytesIO()
        plot(curves, title=args.title, log_scale=args.log).savefig(buf, format="png")
        write_atomic(args.out, buf.getvalue())
        print(f"wrote {args.out}")
    return 0
