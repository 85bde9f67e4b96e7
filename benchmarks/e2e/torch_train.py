"""PyTorch's ``rnnlab train CONFIG``: ``python -m benchmarks.e2e.torch_train CONFIG --out DIR [--set ...]``.

It does what a ``rnnlab train`` run of the same configuration does, the PyTorch way
(``torch_loop``): read the data (with rnnlab's data code: reading, tokenizing, splitting and
batching, so both runs see the same batches; no rnnlab model code), build the model, train epoch
after epoch until ``train.max_steps`` (or ``train.epochs``), evaluate the validation part after
every epoch (also the last, cut short by ``max_steps``), keep the best weights and stop early as
``restore_best`` and ``patience`` say, checkpoint the model and the optimizer after every epoch and
every ``checkpoint_every_steps`` steps, then evaluate the validation and the test parts, and save
the final weights and the metrics into ``DIR``. Learning-rate schedules are not applied (the
benchmark's runs end before the examples' first change).

Prints one JSON object: the seconds of each phase, the steps and the final metrics.
"""

from __future__ import annotations

import time

_START = time.perf_counter()

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from benchmarks.e2e import torch_loop  # noqa: E402
from benchmarks.e2e.examples import model_spec  # noqa: E402

_IMPORTED = time.perf_counter()


def _batches(batches, epoch: int = 0):
    for b in batches.batches_from(epoch, 0):
        yield torch_loop.to_torch(b.x, b.y, b.mask, b.new_sequence)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", required=True)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    t_threads = time.perf_counter()
    torch_loop.set_threads()

    t0 = time.perf_counter()
    from rnnlab.lab.config import load_config
    from rnnlab.lab.tasks import _BUILDERS  # the task's data builder alone: no model is built

    rnnlab_import = time.perf_counter() - t0
    config = load_config(args.config, args.overrides)
    data = _BUILDERS[config.data.task](config, args.data_dir, None, None)
    spec = model_spec(config, inputs=data.inputs, n_inputs=data.n_inputs, n_outputs=data.n_outputs,
                      sequence_output=data.sequence_output, loss=data.loss)
    spec["metrics"] = spec["metrics"] or list(data.metrics)
    t_data = time.perf_counter()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = torch_loop.build(spec)
    trainer = torch_loop.Trainer(model, spec)
    t_model = time.perf_counter()
    train_cfg = config.train
    max_steps = train_cfg.max_steps or float("inf")
    every = spec["checkpoint_every_steps"]
    monitor = spec["monitor"]
    mode = spec["mode"] if spec["mode"] != "auto" else ("max" if "acc" in monitor.lower() else "min")
    best = best_state = None
    bad_epochs, history, epoch, eval_s, train_s, save_s = 0, [], 0, 0.0, 0.0, 0.0

    def checkpoint():
        torch.save({"model": model.state_dict(), "optimizer": trainer.optimizer.state_dict(), "step": trainer.step,
                    "epoch": epoch}, out / "checkpoint.pt")

    while epoch < train_cfg.epochs and trainer.step < max_steps:
        ts = time.perf_counter()
        model.train()
        trainer.running = {"loss": 0.0, "n": 0, "correct": 0, "abs": 0.0}
        n_batches = len(data.train)
        for i, b in enumerate(_batches(data.train, epoch)):
            trainer.train_batch(b)
            if every and trainer.step % every == 0 and i + 1 < n_batches:
                checkpoint()
            if trainer.step >= max_steps:
                break
        row = {"epoch": epoch + 1, "step": trainer.step, **torch_loop.results(spec, trainer.running)}
        te = time.perf_counter()
        train_s += te - ts
        if data.val is not None:
            row.update({f"val_{k}": v for k, v in trainer.evaluate(_batches(data.val)).items()})
        tv = time.perf_counter()
        eval_s += tv - te
        history.append(row)
        stop = False
        if monitor in row:
            value = row[monitor]
            better = best is None or (value < best - spec["min_delta"] if mode == "min" else
                                      value > best + spec["min_delta"])
            if better:
                best, bad_epochs = value, 0
                if spec["restore_best"]:
                    best_state = copy.deepcopy(model.state_dict())
                    torch.save(best_state, out / "best.pt")
            else:
                bad_epochs += 1
                stop = spec["patience"] is not None and bad_epochs >= spec["patience"]
        epoch += 1
        checkpoint()
        (out / "history.json").write_text(json.dumps(history, indent=1) + "\n")
        save_s += time.perf_counter() - tv
        if stop:
            break

    ts = time.perf_counter()
    if best_state is not None:
        model.load_state_dict(best_state)
    torch.save(model.state_dict(), out / "model.pt")
    tf = time.perf_counter()
    final = {split: trainer.evaluate(_batches(batches)) for split, batches in (("val", data.val), ("test", data.test))
             if batches is not None}
    (out / "metrics.json").write_text(json.dumps({"steps": trainer.step, "epochs": epoch, **final}, indent=1) + "\n")
    end = time.perf_counter()
    json.dump({"seconds": {"import": _IMPORTED - _START, "threads": t0 - t_threads,
                           "rnnlab_import_for_data": rnnlab_import, "data": t_data - t0 - rnnlab_import,
                           "model": t_model - t_data, "train": train_s, "eval_per_epoch": eval_s,
                           "checkpoints": save_s + (tf - ts), "final_eval": end - tf, "total_in_process": end - _START},
               "steps": trainer.step, "epochs": epoch, "metrics": final}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
