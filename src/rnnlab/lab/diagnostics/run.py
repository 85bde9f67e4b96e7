"""A trained run's gradient report: :func:`diagnose` loads a run directory, draws sequences from its data
and reports on its model."""

from __future__ import annotations

import numpy as np

from rnnlab._validation import check_positive_int
from rnnlab.lab.diagnostics.report import GradientReport, gradient_report

__all__ = ["SPLITS", "diagnose"]

#: the splits ``rnnlab diagnose`` can read batches from
SPLITS = ("train", "val", "test")


def _sample_batch(batches, batch_size: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """``(x, mask)`` of up to ``batch_size`` sequences of a split, chosen by ``seed``."""
    rng = np.random.default_rng(seed)
    if hasattr(batches, "x") and isinstance(batches.x, np.ndarray):  # ArrayBatches: samples in arrays
        N = batches.x.shape[0]
        idx = np.sort(rng.choice(N, size=min(batch_size, N), replace=False))
        mask = getattr(batches, "mask", None)
        return batches.x[idx], None if mask is None else mask[idx]
    if hasattr(batches, "ids") and hasattr(batches, "bptt"):  # LMStream: windows of the token stream
        ids = np.asarray(batches.ids)
        T = min(int(batches.bptt), len(ids))
        starts = rng.integers(0, len(ids) - T + 1, size=batch_size)
        return np.stack([ids[s:s + T] for s in starts]), None
    first = next(iter(batches.batches_from(0, 0)))  # any other Batches: its first batch
    mask = getattr(first, "mask", None)
    return first.x[:batch_size], None if mask is None else mask[:batch_size]


def diagnose(run_dir, *, data_dir=None, batch_size: int = 16, split: str = "val", seed: int = 0) -> GradientReport:
    """The :class:`GradientReport` of a trained run's model on ``batch_size`` sequences of its data.

    Parameters
    ----------
    run_dir : path
        A run directory written by ``rnnlab train`` (the final model, or the latest checkpoint's).
    data_dir : path, optional
        The data directory (``$RNNLAB_DATA`` by default); the synthetic tasks need none.
    batch_size : int
        Sequences to probe: drawn from the split by ``seed`` (windows of ``bptt`` tokens at random
        offsets for a language model).
    split : "train", "val" or "test"
    seed : int
        Of the sequences drawn and of the probe vectors.

    Raises
    ------
    rnnlab.tasks.RunError
        If ``run_dir`` is not a usable run, or its data has no such split.
    """
    from rnnlab.lab.runs import load_run
    from rnnlab.lab.tasks import RunError, build_task

    batch_size = check_positive_int("batch_size", batch_size)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(repr(s) for s in SPLITS)}; got {split!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    run = load_run(run_dir)
    task = build_task(run.config, data_dir, vocab=run.vocab, scaler=run.scaler)
    parts = task.splits()
    if split not in parts:
        raise RunError(f"this {run.config.data.task} run has no {split!r} part; it has {', '.join(parts)}")
    x, mask = _sample_batch(parts[split], batch_size, int(seed))
    if np.shape(x)[1] < 2:
        raise RunError(f"the {split!r} sequences of this run have {np.shape(x)[1]} step(s); "
                       "gradient flow needs at least 2")
    report = gradient_report(run.model, x, mask, seed=int(seed))
    report.context = {"run": str(run.run_dir), "task": run.config.data.task, "split": split}
    return report
