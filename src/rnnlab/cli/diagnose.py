"""``rnnlab diagnose RUN [--data-dir DIR] [--batch-size N] [--split S] [--seed N] [--json]``: the gradient
report of a trained run (:func:`rnnlab.lab.diagnostics.diagnose`) as a table or as JSON."""

from __future__ import annotations

import argparse
import json
import math

from rnnlab.cli._args import add_data_dir, int_at_least
from rnnlab.cli._registry import command
from rnnlab.lab.diagnostics import SPLITS, diagnose

__all__ = ["configure_cli", "run_cli"]


def configure_cli(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``rnnlab diagnose RUN [--data-dir DIR] [--batch-size N] [--split S] [--seed N] [--json]``."""
    parser.add_argument("run_dir", metavar="RUN", help="a run directory written by rnnlab train")
    add_data_dir(parser)
    parser.add_argument("--batch-size", type=int_at_least(1), default=16, metavar="N",
                        help="sequences to probe (default: %(default)s)")
    parser.add_argument("--split", choices=SPLITS, default="val", help="the part of the data (default: %(default)s)")
    parser.add_argument("--seed", type=int_at_least(0), default=0,
                        help="seed of the sequences drawn and of the probe vectors (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")


def _json_safe(document):
    """``document`` with every non-finite float replaced by None (JSON has no NaN or inf)."""
    if isinstance(document, dict):
        return {k: _json_safe(v) for k, v in document.items()}
    if isinstance(document, list):
        return [_json_safe(v) for v in document]
    if isinstance(document, float) and not math.isfinite(document):
        return None
    return document


@command("diagnose", "gradient flow of a trained run: ||dL/dh_t|| through time per recurrent layer, labelled "
                     "vanishing, healthy or exploding", configure_cli)
def run_cli(args: argparse.Namespace) -> int:
    """Print the gradient report of ``args.run_dir``; 0. A bad run directory raises ``RunError`` (exit 1)."""
    report = diagnose(args.run_dir, data_dir=args.data_dir, batch_size=args.batch_size, split=args.split,
                      seed=args.seed)
    if args.json:
        print(json.dumps(_json_safe(report.to_dict()), indent=2, allow_nan=False))
    else:
        print(report.table())
    return 0
