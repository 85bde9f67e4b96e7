"""Experiments: the notes' story of gradients through time, each reproducible with one command.

::

    rnnlab experiment NAME [--full] [--out DIR] [--seed S]
    rnnlab experiment adding|copy [...] [--cells CELL ...] [--timesteps T ...] [--sequences N]
                                        [--lr LR] [--batch-size B]
    rnnlab experiment --list

=============  =============================================================================
name           what it measures
=============  =============================================================================
vanishing      ``||dL_T/dh_{T-lag}||`` against the lag for RNN(tanh), RNN(sigmoid), RNN(relu),
               LSTM and GRU on the same inputs: how fast the gradient of a loss on the last
               step fades going back in time
adding         the adding problem (Le et al. 2015) at several T: validation MSE against the
               training sequences seen for RNN(tanh), IRNN, LSTM, LSTM (chrono) and GRU, against
               the 1/6 baseline
copy           the copy-memory task (Arjovsky et al. 2016): cross-entropy and recall against
               training sequences for LSTM, LSTM (chrono) and GRU, against the memoryless
               baseline; solved at 99 % recall (T = 100, 200, 500, 1,000,000 sequences)
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
per-step records (the gradient norm before clipping at every update, where a run diverged) and
epochs mean nothing to them. The learning curves (``adding``, ``copy``), which run for hours in the
full mode, keep a checkpoint per (T, cell) run at every evaluation (``_loop.CurveCheckpoints``) and
resume from it (``--resume``). Truncated BPTT carries the state between windows through a
``stateful`` layer.

The package holds one module per experiment (``vanishing``, ``adding``, ``copy``, ``exploding``,
``truncation``: its settings, computation, findings, tables and figures) and the shared parts:
``_registry`` (:class:`Experiment`, :data:`EXPERIMENTS`, :func:`get`, :func:`command_line`), ``_cells``
(:data:`CELLS`, :data:`CHRONO_CELLS`, :func:`make_recurrent`), ``_loop`` (the training helpers), ``_curves``
(what ``adding`` and ``copy`` share) and ``_report`` (``results.json``, ``report.html``, the figures, number formats).
"""

from __future__ import annotations

from rnnlab.lab.experiments._cells import CELLS, CHRONO_CELLS, make_recurrent
from rnnlab.lab.experiments._registry import DEFAULT_OUT, EXPERIMENTS, MODES, Experiment, command_line, get
from rnnlab.lab.experiments._report import PlotDependencyError
from rnnlab.lab.experiments._report import _jsonable as _jsonable  # tests import it from here
from rnnlab.lab.experiments.truncation import delayed_recall

__all__ = [
    "CELLS",
    "CHRONO_CELLS",
    "DEFAULT_OUT",
    "EXPERIMENTS",
    "MODES",
    "Experiment",
    "PlotDependencyError",
    "command_line",
    "delayed_recall",
    "get",
    "make_recurrent",
]

