"""``rnnlab gradcheck [--tol T] [--seed S]``: every layer's hand-written gradients against finite differences.

:func:`gradcheck_cases` builds the small float64 modules checked, one of each kind.
"""

from __future__ import annotations

import argparse

from rnnlab.cli._args import positive_float
from rnnlab.cli._registry import command

__all__ = ["configure_cli", "run_cli", "gradcheck_cases"]


def configure_cli(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tol", type=positive_float, default=1e-6,
                        help="largest relative error accepted (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the weights, inputs and projections (default: %(default)s)")


def gradcheck_cases(seed: int = 0):
    """``(label, module, x, kwargs)``: one small float64 module of each kind, with masks and initial states."""
    import numpy as np

    from rnnlab.nn.bidirectional import Bidirectional
    from rnnlab.nn.layers import Dense, Embedding
    from rnnlab.nn.pooling import GlobalAveragePool1D, GlobalMaxPool1D
    from rnnlab.nn.recurrent import GRU, LSTM, SimpleRNN
    from rnnlab.nn.seq2seq import OneToMany, Seq2Seq
    from rnnlab.nn.sequential import Sequential

    f64 = {"dtype": "float64"}
    rng = np.random.default_rng(seed)
    B, T, D, H = 3, 4, 3, 4
    x = rng.standard_normal((B, T, D))  # (B, T, D)
    mask = np.arange(T)[None, :] < np.array([[4], [2], [3]])  # (B, T): lengths 4, 2, 3 (right padding)
    h0 = lambda: rng.standard_normal((B, H))  # noqa: E731
    cases = [
        ("SimpleRNN(tanh)", SimpleRNN(H, return_sequences=True, seed=seed, **f64), x,
         {"mask": mask, "initial_state": [h0()]}),
        ("SimpleRNN(relu)", SimpleRNN(H, activation="relu", seed=seed, **f64), x, {"initial_state": [h0()]}),
        ("LSTM", LSTM(H, return_sequences=True, return_state=True, seed=seed, **f64), x,
         {"mask": mask, "initial_state": [h0(), h0()]}),
        ("GRU", GRU(H, return_sequences=True, seed=seed, **f64), x, {"mask": mask, "initial_state": [h0()]}),
        ("GRU(reset_after=False)", GRU(H, reset_after=False, seed=seed, **f64), x,
         {"mask": mask, "initial_state": [h0()]}),
        ("LSTM(go_backwards)", LSTM(H, go_backwards=True, return_sequences=True, seed=seed, **f64), x, {"mask": mask}),
        ("Bidirectional(LSTM)", Bidirectional(LSTM(H, return_sequences=True, seed=seed, **f64)), x, {"mask": mask}),
        ("Dense(tanh)", Dense(5, activation="tanh", seed=seed, **f64), x, {}),
        ("GlobalMaxPool1D", GlobalMaxPool1D(**f64), x, {"mask": mask}),
        ("BiLSTM+GlobalAveragePool1D+Dense",
         Sequential([Bidirectional(LSTM(H, return_sequences=True, seed=seed, **f64)), GlobalAveragePool1D(**f64),
                     Dense(2, seed=seed, **f64)]), x, {"mask": mask}),
        ("Embedding+GRU+Dense", Sequential([Embedding(7, D, mask_zero=True, seed=seed, **f64), GRU(H, seed=seed, **f64),
                                            Dense(2, seed=seed, **f64)]),
         np.array([[1, 2, 3, 4], [5, 6, 0, 0], [1, 3, 5, 0]]), {}),
        ("OneToMany(first)", OneToMany(LSTM(H, return_sequences=True, seed=seed, **f64), Dense(5, seed=seed, **f64), T),
         rng.standard_normal((B, D)), {}),
        ("OneToMany(state, feedback)", OneToMany(GRU(H, return_sequences=True, return_state=True, seed=seed, **f64),
                                                 Dense(5, seed=seed, **f64), T, input_mode="state", feedback=True,
                                                 seed=seed),
         (rng.standard_normal((B, D)), rng.integers(0, 5, (B, T))), {}),
    ]
    encoder = Sequential([Embedding(7, D, mask_zero=True, seed=seed, **f64),
                          LSTM(H, return_state=True, seed=seed, **f64)])
    decoder = Sequential([Embedding(7, D, seed=seed, **f64),
                          LSTM(H, return_sequences=True, return_state=True, seed=seed, **f64)])
    seq2seq = Seq2Seq(encoder, decoder, Dense(7, seed=seed, **f64), start_id=1, end_id=2)
    source = np.array([[3, 4, 5, 6], [6, 5, 0, 0], [4, 4, 3, 0]])
    targets = np.array([[6, 5, 4, 3, 2], [5, 6, 2, 0, 0], [3, 4, 4, 2, 0]])
    cases.append(("Seq2Seq(LSTM)", seq2seq, (source, targets), {}))
    return cases


@command("gradcheck", "check every layer's hand-written gradients against finite differences (float64)", configure_cli)
def run_cli(args: argparse.Namespace) -> int:
    """Print a line per gradient checked and a summary; 0 when all pass, 1 when any exceeds ``--tol``."""
    from rnnlab.nn.gradcheck import gradcheck

    rows = []
    for label, module, x, kwargs in gradcheck_cases(args.seed):
        report = gradcheck(module, x, seed=args.seed, **kwargs)
        rows += [(label, name, error) for name, error in report.errors.items()]
    widths = (max(len("module"), *(len(r[0]) for r in rows)), max(len("gradient of"), *(len(r[1]) for r in rows)))
    print(f"{'module'.ljust(widths[0])}  {'gradient of'.ljust(widths[1])}  relative error  result")
    for label, name, error in rows:
        print(f"{label.ljust(widths[0])}  {name.ljust(widths[1])}  {error:14.3e}  "
              f"{'ok' if error < args.tol else 'FAIL'}")
    failed = [r for r in rows if not r[2] < args.tol]
    worst = max(r[2] for r in rows)
    print(f"{len(rows)} gradients checked, largest relative error {worst:.3e}, tolerance {args.tol:g}: "
          + ("all passed" if not failed else f"{len(failed)} FAILED"))
    return 1 if failed else 0
