"""``rnnlab experiment NAME [--full] [--out DIR] [--seed S] [--cells CELL ...] [--timesteps T ...]
[--sequences N] [--lr LR] [--batch-size B] [--resume]`` and ``rnnlab experiment --list``: run one of the experiments of
:mod:`rnnlab.lab.experiments`, print its findings and where the report is."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rnnlab.cli._registry import Interrupted, command
from rnnlab.lab.config import ConfigError
from rnnlab.lab.experiments import CELLS, DEFAULT_OUT, EXPERIMENTS, command_line, get
from rnnlab.lab.runs import rank as launch_rank

__all__ = ["configure_cli", "run_cli"]


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def configure_cli(parser: argparse.ArgumentParser) -> None:
    """Options of ``rnnlab experiment NAME [--full] [--out DIR] [--seed S] [--cells CELL ...] [--timesteps T ...]
    [--sequences N] [--lr LR] [--batch-size B] [--resume]`` and ``rnnlab experiment --list``."""
    parser.add_argument("name", nargs="?", metavar="NAME", help=f"the experiment: {', '.join(EXPERIMENTS)}")
    parser.add_argument("--list", action="store_true", help="list the experiments, one line each, and exit")
    parser.add_argument("--full", action="store_true",
                        help="the full mode, whose results docs/results.md reports (minutes); default: the fast mode")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help=f"output directory (default: {DEFAULT_OUT}/NAME)")
    parser.add_argument("--seed", type=_seed, default=0, help="seed of the data and the weights (default: %(default)s)")
    parser.add_argument("--cells", nargs="+", metavar="CELL", default=None,
                        help=f"cells to train instead of the mode's (adding, copy): {', '.join(CELLS)}; a chrono "
                             f"cell takes T_max = T")
    parser.add_argument("--timesteps", type=int, nargs="+", metavar="T", default=None,
                        help="sequence lengths to run instead of the mode's (adding, copy)")
    parser.add_argument("--sequences", type=int, metavar="N", default=None,
                        help="training budget per run, in sequences, instead of the mode's (adding, copy); "
                             "a multiple of the batch size")
    parser.add_argument("--lr", type=float, metavar="LR", default=None,
                        help="Adam's learning rate instead of the mode's (adding, copy)")
    parser.add_argument("--batch-size", type=int, metavar="B", default=None,
                        help="training sequences per step instead of the mode's (adding, copy)")
    parser.add_argument("--resume", action="store_true",
                        help="continue a stopped run of adding or copy from the checkpoints in its --out directory "
                             "(kept at every evaluation), with the same options")


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@command("experiment", "run an experiment on gradients through time (vanishing, adding, copy, exploding, "
                       "truncation): PNG plots and an HTML report", configure_cli)
def run_cli(args: argparse.Namespace) -> int:
    """Run ``rnnlab experiment``: print the findings and where the report is; 0. An unknown or missing name
    raises ConfigError (exit code 2), a missing matplotlib PlotDependencyError (exit code 1)."""
    if args.list:
        width = max(map(len, EXPERIMENTS))
        for e in EXPERIMENTS.values():
            print(f"{e.name.ljust(width)}  {e.summary} [full mode on one core: {e.full_estimate}]")
        return 0
    if args.name is None:
        raise ConfigError(f"an experiment name is required (or --list); valid choices: {', '.join(EXPERIMENTS)}")
    experiment = get(args.name)
    if args.timesteps is not None:
        try:
            experiment._check_timesteps(args.timesteps)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"--timesteps: {exc}") from None
    mode = "full" if args.full else "fast"
    if args.cells is not None:
        try:
            experiment._check_cells(args.cells)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"--cells: {exc}") from None
    for option, value, check in (("--lr", args.lr, experiment._check_lr),
                                 ("--batch-size", args.batch_size, experiment._check_batch_size)):
        if value is not None:
            try:
                check(value)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{option}: {exc}") from None
    if args.sequences is not None:
        try:
            experiment._check_sequences(args.sequences, mode, args.batch_size)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"--sequences: {exc}") from None
    try:
        experiment._settings(mode, timesteps=args.timesteps, cells=args.cells, sequences=args.sequences,
                             lr=args.lr, batch_size=args.batch_size)
    except (TypeError, ValueError) as exc:  # the options are valid one by one, not together
        raise ConfigError(f"--cells, --timesteps, --sequences, --batch-size: {exc}") from None
    out = args.out if args.out is not None else str(Path(DEFAULT_OUT) / experiment.name)
    try:
        results = experiment.run(out, mode=mode, seed=args.seed, timesteps=args.timesteps, cells=args.cells,
                                 sequences=args.sequences, lr=args.lr, batch_size=args.batch_size,
                                 resume=args.resume, progress=_progress)
    except KeyboardInterrupt:
        if not experiment.resumable(out):
            raise
        again = command_line(experiment.name, mode, args.seed, out, args.timesteps, args.cells, args.sequences,
                             args.lr, args.batch_size)
        raise Interrupted(f"the progress up to the last evaluation is kept; continue with: {again} --resume") \
            from None
    if launch_rank() != 0:
        return 0  # under mpiexec the ranks shared the runs; rank 0 reports
    print(f"{experiment.title} ({mode} mode, seed {args.seed}, {results['elapsed_seconds']:.1f} s)")
    for line in results["findings"]:
        print(f"- {line}")
    print(f"report: {Path(out) / 'report.html'} (figures: {', '.join(f['file'] for f in results['figures'])}; "
          f"numbers: {Path(out) / 'results.json'})")
    return 0
