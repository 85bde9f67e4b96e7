"""A tiny training run for the data-parallel tests, started by ``tests/integration/test_distributed.py``
either alone (``python mpi_worker.py ...``: one process) or under ``mpiexec -n N`` (data-parallel).

    python mpi_worker.py ROOT CASE:OPTIMIZER:DTYPE:STEPS ... [--resume] [--kill-rank R --kill-step K]

CASE is ``sentiment`` (masked, padded token ids, many-to-one LSTM), ``lm`` (a stateful GRU language
model on one token stream, truncated BPTT) or ``forecast`` (a SimpleRNN forecaster, MSE); each run
goes to ``ROOT/case-optimizer-dtype-steps``, where rank 0 writes the first and the final weights
(``initial.npz``, ``weights.npz``) and the final validation results (``results.json``).
``--kill-rank R`` makes rank R SIGKILL itself in the middle of update K (``--kill-step``), after its
backward pass, while the others wait in that update's ``Allreduce`` (``--how raise``: raises an error
there instead; ``--how hang``: sleeps there for an hour).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from pathlib import Path

import numpy as np

import rnnlab
from rnnlab.data.batches import ArrayBatches, LMStream
from rnnlab.training import distributed
from rnnlab.training.callbacks import HistoryWriter
from rnnlab.training.checkpoint import claim_run_dir
from rnnlab.training.config import TrainConfig
from rnnlab.training.trainer import Trainer


def _sentiment(dtype):
    rng = np.random.default_rng(1)
    n, t, vocab = 23, 7, 11
    lengths = rng.integers(2, t + 1, size=n)
    mask = np.arange(t)[None, :] < lengths[:, None]  # (n, t), uneven lengths
    ids = np.where(mask, rng.integers(1, vocab, size=(n, t)), 0)
    labels = rng.integers(0, 2, size=n)
    model = rnnlab.Sequential([rnnlab.Embedding(vocab, 5, mask_zero=True, seed=2, dtype=dtype),
                               rnnlab.LSTM(6, seed=3, dtype=dtype), rnnlab.Dense(2, seed=4, dtype=dtype)])
    model.build((None, t))
    train = ArrayBatches(ids, labels, batch_size=6, mask=mask, shuffle=True, seed=5)  # last batch: 5 rows
    val = ArrayBatches(ids[:9], labels[:9], batch_size=4, mask=mask[:9], shuffle=False)
    return model, "cross_entropy", train, val, {"metrics": ["accuracy"]}


def _lm(dtype):
    rng = np.random.default_rng(6)
    vocab = 9
    ids = rng.integers(0, vocab, size=400)
    model = rnnlab.Sequential([rnnlab.Embedding(vocab, 5, seed=7, dtype=dtype),
                               rnnlab.GRU(6, return_sequences=True, seed=8, dtype=dtype),
                               rnnlab.Dense(vocab, seed=9, dtype=dtype)])
    model.build((None, 10))
    train = LMStream(ids[:300], batch_size=4, bptt=10)
    val = LMStream(ids[300:], batch_size=4, bptt=10)
    return model, "cross_entropy", train, val, {"bptt_k1": 3, "bptt_k2": 5}


def _forecast(dtype):
    rng = np.random.default_rng(10)
    n, t = 19, 6
    x = rng.normal(size=(n, t, 1))
    y = x[:, -2:, 0] * 0.5 + 0.1  # (n, 2): two values ahead
    model = rnnlab.Sequential([rnnlab.SimpleRNN(5, seed=11, dtype=dtype), rnnlab.Dense(2, seed=12, dtype=dtype)])
    model.build((None, t, 1))
    train = ArrayBatches(x.astype(dtype), y.astype(dtype), batch_size=5, shuffle=True, seed=13)  # last: 4 rows
    val = ArrayBatches(x[:7].astype(dtype), y[:7].astype(dtype), batch_size=3, shuffle=False)
    return model, "mse", train, val, {}


CASES = {"sentiment": _sentiment, "lm": _lm, "forecast": _forecast}


class _NoCurves(HistoryWriter):
    """The history files without the PNG curves (drawing them would be most of these runs' time)."""

    def plot(self, *args, **kwargs) -> None:
        pass


def _kill_before_reduction(hook, trainer, step: int, how: str) -> None:
    """SIGKILL this rank (``how="kill"``), or raise an error in it (``"raise"``), in the middle of update
    ``step``: after its backward pass, before the ``Allreduce``."""
    reduce = hook.reduce_gradients

    def reduce_or_die(model, loss):
        if trainer.step + 1 >= step:
            if how == "raise":
                raise RuntimeError(f"a test failure in update {step}")
            if how == "hang":
                time.sleep(3600)
            os.kill(os.getpid(), signal.SIGKILL)
        reduce(model, loss)

    hook.reduce_gradients = reduce_or_die


def run(spec: str, root: Path, args) -> None:
    """Train ``spec`` = ``case:optimizer:dtype:steps`` in ``root/spec``."""
    case, optimizer, dtype, steps = spec.split(":")
    run_dir = root / spec.replace(":", "-")
    model, loss, train, val, extra = CASES[case](dtype)
    config = TrainConfig(epochs=100, optimizer=optimizer, lr=0.05 if optimizer == "sgd" else 0.01, clip_norm=1.0,
                         max_steps=int(steps), checkpoint_every_steps=2, log_every=1000, seed=0, **extra)
    comm = distributed.world()
    root_rank = comm is None or comm.is_root
    if root_rank and not args.resume:
        claim_run_dir(run_dir)  # an rnnlab run directory (the trainer refuses others), with this worker's files in it
        np.savez(run_dir / "initial.npz", **dict(model.named_parameters()))
    trainer = Trainer(model, loss, config, train, val, run_dir)
    trainer.print_fn = lambda message: None
    trainer.callbacks = [_NoCurves() if isinstance(cb, HistoryWriter) else cb for cb in trainer.callbacks]
    with distributed.abort_on_error(comm):
        if comm is not None:
            if comm.rank > 0 and not args.resume:  # other weights than rank 0's: attach must broadcast rank 0's
                for _, p in model.named_parameters():
                    p += 1.0
            hook = distributed.attach(trainer, comm)
            if comm.rank == args.kill_rank:
                _kill_before_reduction(hook, trainer, args.kill_step, args.how)
        trainer.run(resume=args.resume)
        results = trainer.evaluate(trainer.val)
    if root_rank:
        np.savez(run_dir / "weights.npz", **dict(model.named_parameters()))
        (run_dir / "results.json").write_text(json.dumps(results) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("specs", nargs="+", help="case:optimizer:dtype:steps")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--kill-rank", type=int, default=None)
    parser.add_argument("--kill-step", type=int, default=3)
    parser.add_argument("--how", choices=("kill", "raise", "hang"), default="kill")
    args = parser.parse_args()
    for spec in args.specs:
        run(spec, args.root, args)


if __name__ == "__main__":
    main()
