"""The PTB small job as the trainer runs it: validation throughput, loss and metric cost, step time, trainer work.

    python -m benchmarks.ptb_job                               # examples/ptb_small.toml, this tree
    PYTHONPATH=OLD/src python -m benchmarks.ptb_job --config OLD/examples/ptb_small.toml   # another tree

Prints one JSON object (times are the best of ``--rounds`` for the evaluation, medians elsewhere):

* ``eval_s``, ``eval_tok_per_s``: ``Trainer.evaluate`` of the validation split (its remembered results
  forgotten before each round), and the results, to compare trees;
* ``loss_backward_metric_ms``: the loss, its gradient and the perplexity update on the logits of one
  training batch, (20, 20, 10000), as a training step pays them; ``loss_metric_eval_ms``: the loss and
  the metric on the same logits in evaluation;
* ``step_ms``: ``train_step`` alone (forward, loss, backward, clipping, SGD), ``batch_ms``: the trainer's
  whole work for a batch (``_train_batch`` and the batch callbacks), ``overhead_ms``/``overhead_pct``: their
  difference, the trainer's own work per step, on the first ``--steps`` training batches.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import tempfile
import time

import numpy as np

import rnnlab.training.trainer as trainer_module
from benchmarks.timing import timed
from rnnlab.lab.config import load_config
from rnnlab.lab.tasks import build_task


def _median_ms(f, n: int) -> float:
    return float(np.median(timed(f, 1, n)) * 1e3)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="examples/ptb_small.toml")
    parser.add_argument("--rounds", type=int, default=2, help="evaluations of the validation split (best kept)")
    parser.add_argument("--steps", type=int, default=40, help="training batches timed (the first 5 are warm-up)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="rnnlab-ptb-job-") as run_dir:
        return _measure(args, run_dir)


def _measure(args, run_dir: str) -> dict:
    task = build_task(load_config(args.config))
    trainer = task.trainer(run_dir)
    trainer.print_fn = lambda message: None
    out = {}

    tokens = sum(int(np.size(b.y)) for b in task.val.batches_from(0, 0))
    times = []
    # time the evaluation, not the trainer's reuse of the results it remembers for the same weights
    fresh = {"reuse": False} if "reuse" in inspect.signature(trainer.evaluate).parameters else {}
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        out["eval"] = trainer.evaluate(task.val, **fresh)
        times.append(time.perf_counter() - t0)
    out["eval_s"], out["eval_tok_per_s"] = min(times), tokens / min(times)

    batch = next(iter(task.train.batches_from(0, 0)))
    logits = task.model(batch.x)
    loss, metric = trainer.loss, trainer.metrics[task.config.train.metrics[0]]
    try:
        from rnnlab.nn.grad_mode import no_grad
    except ImportError:  # a tree from before inference mode
        no_grad = contextlib.nullcontext

    def metric_update():
        if not getattr(metric, "update_from_loss", lambda _loss: False)(loss):
            metric.update(logits, batch.y)

    def training():
        loss(logits, batch.y)
        loss.backward()
        metric_update()

    def evaluation():
        with no_grad():
            loss(logits, batch.y)
        metric_update()

    out["loss_backward_metric_ms"] = _median_ms(training, 30)
    out["loss_metric_eval_ms"] = _median_ms(evaluation, 30)

    real_step, steps, whole = trainer_module.train_step, [], []

    def timed_step(*a, **k):
        t0 = time.perf_counter()
        result = real_step(*a, **k)
        steps.append(time.perf_counter() - t0)
        return result

    trainer_module.train_step = timed_step
    try:
        trainer._emit("on_train_begin")
        trainer._emit("on_epoch_begin", 0)
        for b in list(task.train.batches_from(0, 0))[:args.steps]:
            t0 = time.perf_counter()
            logs = trainer._train_batch(b)  # the body of Trainer._run_epoch's loop
            trainer.batch += 1
            trainer._emit("on_batch_end", logs)
            whole.append(time.perf_counter() - t0)
    finally:
        trainer_module.train_step = real_step
    w, s = np.array(whole[5:]), np.array(steps[5:])
    out.update(step_ms=float(np.median(s) * 1e3), batch_ms=float(np.median(w) * 1e3),
               overhead_ms=float(np.median(w - s) * 1e3), overhead_pct=float(np.median((w - s) / s) * 100))
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
