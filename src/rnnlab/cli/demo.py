"""``rnnlab demo [charlm|sentiment] [OPTIONS]``: the two end-to-end demos of :mod:`rnnlab.lab.demo`."""

from __future__ import annotations

import argparse

from rnnlab.cli._args import add_data_dir, int_at_least, positive_float
from rnnlab.cli._registry import command

__all__ = ["configure_cli", "run_cli"]

DEMO_HELP = "train a small model on real data and show what it learnt (default: a character LSTM writing Python)"
DEMOS = """\
charlm     (the default) a character-level LSTM language model trained on the Python standard
           library's own source files: needs no download; shows progress and the validation
           bits per character, then prints generated Python (about 3 minutes on 2 cores)
sentiment  a (bidirectional) LSTM sentiment classifier on the UCI sentiment sentences, read
           from the data directory ($RNNLAB_DATA or --data-dir)

The options above are charlm's; a demo's own options follow its name (rnnlab demo sentiment --help)."""


def _configure_charlm(parser: argparse.ArgumentParser) -> None:
    from rnnlab.lab.demo import CharLMConfig

    d = CharLMConfig()
    parser.add_argument("--epochs", type=int_at_least(1), default=d.epochs,
                        help="training epochs (default: %(default)s)")
    parser.add_argument("--seed", type=int_at_least(0), default=d.seed,
                        help="seed of the weights, the stream offsets and the samples (default: %(default)s)")
    parser.add_argument("--hidden", type=int_at_least(1), default=d.hidden_size, metavar="H",
                        help="LSTM units (default: %(default)s)")
    parser.add_argument("--minutes", type=positive_float, default=d.minutes, metavar="M",
                        help="time budget: stop training after M minutes (the current epoch is then validated), "
                             "then print the samples (default: %(default)s)")
    parser.add_argument("--corpus-bytes", type=int_at_least(2000), default=d.corpus_bytes, metavar="N",
                        help="characters of standard-library source to read, files sorted by name "
                             "(default: %(default)s)")
    parser.add_argument("--run-dir", metavar="DIR", default=None,
                        help="keep the run (config, log, history, checkpoints, vocabulary, samples) in DIR "
                             "(default: a temporary directory, deleted at the end)")
    parser.add_argument("--limit", type=int_at_least(2000), default=None, metavar="N",
                        help="use only the first N characters of the corpus (at least 2000), for a quick run")


def _configure_sentiment(parser: argparse.ArgumentParser) -> None:
    from rnnlab.lab.demo import CELLS, SentimentConfig

    defaults = SentimentConfig()
    add_data_dir(parser)
    parser.add_argument("--epochs", type=int_at_least(1), default=defaults.epochs,
                        help="training epochs (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help="seed of the split, the weights and the shuffling (default: %(default)s)")
    parser.add_argument("--cell", choices=sorted(CELLS), default=defaults.cell,
                        help="recurrent cell (default: %(default)s)")
    parser.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=defaults.bidirectional,
                        help="read each sentence in both directions (default: %(default)s)")
    parser.add_argument("--limit", type=int_at_least(10), default=None, metavar="N",
                        help="use only N sentences (at least 10) after the seeded shuffle, for a quick run")


def configure_cli(parser: argparse.ArgumentParser) -> None:
    """``rnnlab demo [OPTIONS]`` is ``rnnlab demo charlm [OPTIONS]``; ``rnnlab demo sentiment [OPTIONS]``."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    _configure_charlm(parser)
    demos = parser.add_subparsers(dest="demo", metavar="[DEMO]", title="demos", description=DEMOS,
                                  help=argparse.SUPPRESS)
    _configure_charlm(demos.add_parser("charlm", description="Train a character-level LSTM language model on the "
                                                             "Python standard library's own source files and print "
                                                             "generated Python."))
    _configure_sentiment(demos.add_parser("sentiment", description="Train a sentiment classifier on the UCI sentiment "
                                                                   "sentences and report its test accuracy."))


@command("demo", DEMO_HELP, configure_cli)
def run_cli(args: argparse.Namespace) -> int:
    """Run the chosen demo, printing as it goes; 0. A run directory already in use raises FileExistsError (exit 1)."""
    from functools import partial

    from rnnlab.lab import demo

    say = partial(print, flush=True)
    if args.demo == "sentiment":
        demo.run_sentiment(demo.SentimentConfig(data_dir=args.data_dir, epochs=args.epochs, seed=args.seed,
                                                cell=args.cell, bidirectional=args.bidirectional, limit=args.limit),
                           print_fn=say)
        return 0
    config = demo.CharLMConfig(epochs=args.epochs, seed=args.seed, hidden_size=args.hidden, minutes=args.minutes,
                               corpus_bytes=args.corpus_bytes, limit=args.limit, run_dir=args.run_dir)
    demo.run_charlm(config, print_fn=say)
    return 0
