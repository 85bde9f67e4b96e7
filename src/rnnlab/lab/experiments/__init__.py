"""Experiments: the notes' story of gradients through time, each reproducible with one command.

::

    rnnlab experiment NAME [--full] [--out DIR] [--seed S]
    rnnlab experiment --list

=============  =============================================================================
name           what it measures
=============  =============================================================================
vanishing      ``||dL_T/dh_{T-lag}||`` against the lag for RNN(tanh), RNN(sigmoid), RNN(relu),
               LSTM and GRU on the same inputs: how fast the gradient of a loss on the last
               step fades going back in time
adding         the adding problem (Le et al. 2015) at several T: validation MSE against the
               training sequences seen for RNN(tanh), IRNN, LSTM and GRU, against the 1/6 baseline
copy           the copy-memory task (Arjovsky et al. 2016): cross-entropy against training
               sequences for LSTM, GRU and RNN(tanh), against the memoryless baseline
exploding      one IRNN trained twice on the same data, without and with gradient clipping:
               loss and gradient norm (before clipping) per step
truncation     an LSTM trained with truncated BPTT windows of k steps on a delayed recall task:
               recall accuracy per lag, the longest lag learned against k
=============  =============================================================================

Every run writes into its output directory (default ``experiments/NAME``): ``results.json`` (the
settings, every number plotted, and the findings), one or more PNG figures, and ``report.html``, a
self-contained page (the figures embedded as base64) with the command line, the settings, tables,
and findings written from the numbers of this run. Each experiment has a *fast* mode (seconds; the
tests run it) and a *full* mode (``--full``; its results go into ``docs/results.md``).

The notation is the notes': a recurrent layer computes ``a_t = f(U x_t + W a_{t-1} + b)`` (for the
LSTM and GRU, ``h_t`` from their gates), the output layer ``y_t = g(V a_t + c)``. Everything is
seeded: the same ``--seed`` gives the same data, weights and numbers (up to the BLAS library's
summation order).

Training here uses a small loop of its own (forward, loss, backward, gradient norm, optional
clipping, optimizer step) rather than :class:`rnnlab.train.Trainer`, because the experiments need
per-step records (the gradient norm before clipping at every update, where a run diverged) and no
checkpoints. Truncated BPTT carries the state between windows through a ``stateful`` layer.

The package holds one module per experiment (``vanishing``, ``adding``, ``copy``, ``exploding``,
``truncation``: its settings, computation, findings, tables and figures) and the shared parts:
``_registry`` (:class:`Experiment`, :data:`EXPERIMENTS`, :func:`get`, :func:`command_line`), ``_cells``
(:data:`CELLS`, :func:`make_recurrent`), ``_loop`` (the training helpers), ``_curves`` (what ``adding`` and
``copy`` share) and ``_report`` (``results.json``, ``report.html``, the figures, number formats).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rnnlab.lab.config import ConfigError
from rnnlab.lab.experiments._cells import CELLS, make_recurrent
from rnnlab.lab.experiments._registry import DEFAULT_OUT, EXPERIMENTS, MODES, Experiment, command_line, get
from rnnlab.lab.experiments._report import PlotDependencyError
from rnnlab.lab.experiments._report import _jsonable as _jsonable  # tests import it from here
from rnnlab.lab.experiments.truncation import delayed_recall

__all__ = [
    "CELLS",
    "DEFAULT_OUT",
    "EXPERIMENTS",
    "MODES",
    "Experiment",
    "PlotDependencyError",
    "command_line",
    "configure_cli",
    "delayed_recall",
    "get",
    "make_recurrent",
    "run_cli",
]


# ============================================================================ command line
def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def configure_cli(parser: argparse.ArgumentParser) -> None:
    """Options of ``rnnlab experiment NAME [--full] [--out DIR] [--seed S] [--timesteps T ...]`` and
    ``rnnlab experiment --list``."""
    parser.add_argument("name", nargs="?", metavar="NAME", help=f"the experiment: {', '.join(EXPERIMENTS)}")
    parser.add_argument("--list", action="store_true", help="list the experiments, one line each, and exit")
    parser.add_argument("--full", action="store_true",
                        help="the full mode, whose results docs/results.md reports (minutes); default: the fast mode")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help=f"output directory (default: {DEFAULT_OUT}/NAME)")
    parser.add_argument("--seed", type=_seed, default=0, help="seed of the data and the weights (default: %(default)s)")
    parser.add_argument("--timesteps", type=int, nargs="+", metavar="T", default=None,
                        help="sequence lengths to run instead of the mode's (adding, copy)")


def run_cli(args: argparse.Namespace) -> int:
    """Run ``rnnlab experiment``: print the findings and where the report is; 0 on success, 1 when
    matplotlib is missing; an unknown or missing name raises ConfigError (exit code 2)."""
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
    out = args.out if args.out is not None else str(Path(DEFAULT_OUT) / experiment.name)
    mode = "full" if args.full else "fast"

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        results = experiment.run(out, mode=mode, seed=args.seed, timesteps=args.timesteps, progress=progress)
    except PlotDependencyError as exc:
        print(f"rnnlab experiment: error: {exc}", file=sys.stderr)
        return 1
    print(f"{experiment.title} ({mode} mode, seed {args.seed}, {results['elapsed_seconds']:.1f} s)")
    for line in results["findings"]:
        print(f"- {line}")
    print(f"report: {Path(out) / 'report.html'} (figures: {', '.join(f['file'] for f in results['figures'])}; "
          f"numbers: {Path(out) / 'results.json'})")
    return 0
