"""One library's end-to-end measurements, in a process of its own: ``python -m benchmarks.e2e.worker LIB SPEC.json``.

``LIB`` is ``rnnlab`` (or ``rnnlab-base``: rnnlab from the tree first on ``PYTHONPATH``), ``torch``
or ``gemm`` (the floor). For every example of ``SPEC.json`` the worker

- **trains**: warms up with ``warmup`` passes over the example's first ``train_batches`` training
  batches (epoch 0, in order), then times ``reps`` more passes; a pass's time over its batches is
  one time per step;
- **evaluates** (rnnlab and torch): the first ``eval_batches`` validation batches (all without a
  limit), once to warm up, then ``reps`` times.

rnnlab builds each example as ``rnnlab train`` does (``lab.tasks.build_task``, ``Task.trainer``) and
runs the trainer's own per-batch update (``Trainer._train_batch``: forward, loss, backward, finite
checks, clipping, optimizer step, running metrics; the state carried along a stream) and its
``evaluate``. PyTorch runs ``torch_loop`` on the very same batches, exported by ``--prepare``
(``.npz`` files; the torch process imports no rnnlab code). The floor runs the GEMM skeleton of the
whole model on the same batch shapes.

``--prepare DIR`` (run once, with rnnlab, before the rounds) builds every example's task, writes its
batches to ``DIR/<example>.npz`` and prints what the other workers need: the model and update as
plain data, the batch shapes, the batches per epoch, a fingerprint of the batches.

Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import itertools
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.e2e.examples import describe, model_spec
from benchmarks.timing import timed

ROOT = Path(__file__).resolve().parents[2]
SEED = 0




def _fingerprint(batches) -> str:
    h = hashlib.sha1()
    for b in batches:
        for a in (b.x, b.y, b.mask):
            if a is not None:
                a = np.ascontiguousarray(a)
                h.update(str((a.shape, a.dtype.str)).encode())
                h.update(a.tobytes())
        h.update(b"new" if b.new_sequence else b"old")
    return h.hexdigest()


def _units(b, spec) -> int:
    return int(np.size(b.y)) if spec["model"]["unit"] == "tokens" else int(np.shape(b.y)[0])


# ---------------------------------------------------------------------- rnnlab
def _load_config(path, overrides):
    try:
        from rnnlab.lab.config import load_config
    except ImportError:  # a --baseline tree from before rnnlab.lab
        from rnnlab.config import load_config
    return load_config(path, overrides)


def _build_task(config):
    try:
        from rnnlab.lab.tasks import build_task
    except ImportError:
        from rnnlab.tasks import build_task
    return build_task(config)


def _first(batches, n):
    return list(itertools.islice(batches.batches_from(0, 0), n))


class Listed:
    """Batches already built, as the trainer's ``evaluate`` iterates them (``batches_from(0, 0)``)."""

    def __init__(self, batches):
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def batches_from(self, epoch, start=0):
        return iter(self.batches[start:])


def prepare(specs: list[dict], directory: str) -> dict:
    out = {}
    for spec in specs:
        config = _load_config(ROOT / spec["config"], spec["overrides"])
        task = _build_task(config)
        train, val = _first(task.train, spec["train_batches"]), _first(task.val, spec["eval_batches"])
        ids = len(task.input_shape) == 2
        model = model_spec(task.config, inputs="ids" if ids else "values",
                           n_inputs=len(task.vocab) if ids else task.input_shape[2],
                           n_outputs=task.model.layers[-1].units, sequence_output=task.config.data.task in (
                               "language_model", "copy") or bool(getattr(task.config.data, "many_to_many", False)),
                           loss=task.loss)
        arrays = {}
        for part, batches in (("train", train), ("val", val)):
            for i, b in enumerate(batches):
                arrays[f"{part}_x_{i}"], arrays[f"{part}_y_{i}"] = np.asarray(b.x), np.asarray(b.y)
                if b.mask is not None:
                    arrays[f"{part}_mask_{i}"] = np.asarray(b.mask)
                arrays[f"{part}_new_{i}"] = np.asarray(b.new_sequence)
        path = os.path.join(directory, spec["name"] + ".npz")
        np.savez(path, **arrays)
        shapes = [list(np.shape(b.x)[:2]) for b in train]
        steps = sorted({t for _, t in shapes})
        d = task.config.data
        window = (f"{d.bptt}" if d.task == "language_model" else f"{d.lookback}" if d.task == "forecasting"
                  else f"T {steps[0]}-{steps[-1]} (padded to each batch's longest, masked)")
        info = {"model": model, "batch_file": path, "train_shapes": shapes, "n_train": len(train), "n_val": len(val),
                "batches_per_epoch": len(task.train), "val_batches_total": len(task.val),
                "eval_units": sum(_units(b, {"model": model}) for b in val), "fingerprint": _fingerprint(train + val),
                "data": " ".join(task.description)}
        info["description"] = describe(info, d.batch_size, window)
        out[spec["name"]] = info
    return out


def measure_rnnlab(spec: dict, warmup: int, reps: int) -> dict:
    config = _load_config(ROOT / spec["config"], spec["overrides"])
    task = _build_task(config)
    train, val = _first(task.train, spec["train_batches"]), _first(task.val, spec["eval_batches"])
    same = _fingerprint(train + val) == spec["fingerprint"]
    with tempfile.TemporaryDirectory() as tmp:
        trainer = task.trainer(tmp)
        trainer.print_fn = lambda message: None

        def train_pass():
            for b in train:
                trainer._train_batch(b)  # the trainer's own per-batch update, as Trainer.run calls it

        val_data = Listed(val)
        times = timed(train_pass, warmup, reps)
        # time the evaluation itself, not the trainer's reuse of results it remembers for the same weights
        fresh = {"reuse": False} if "reuse" in inspect.signature(trainer.evaluate).parameters else {}
        evals = timed(lambda: trainer.evaluate(val_data, **fresh), 1, reps)
    return {"train": [t / len(train) for t in times], "eval": evals, "same_batches": same}


# ---------------------------------------------------------------------- torch
def load_torch_batches(path: str, part: str, n: int) -> list:
    from benchmarks.e2e.torch_loop import to_torch

    with np.load(path) as z:
        return [to_torch(z[f"{part}_x_{i}"], z[f"{part}_y_{i}"], z[f"{part}_mask_{i}"] if f"{part}_mask_{i}" in z
                         else None, bool(z[f"{part}_new_{i}"])) for i in range(n)]


def measure_torch(spec: dict, warmup: int, reps: int) -> dict:
    from benchmarks.e2e import torch_loop

    train = load_torch_batches(spec["batch_file"], "train", spec["n_train"])
    val = load_torch_batches(spec["batch_file"], "val", spec["n_val"])
    trainer = torch_loop.Trainer(torch_loop.build(spec["model"]), spec["model"])

    def train_pass():
        trainer.model.train()
        for b in train:
            trainer.train_batch(b)

    times = timed(train_pass, warmup, reps)
    evals = timed(lambda: trainer.evaluate(val), 1, reps)
    return {"train": [t / len(train) for t in times], "eval": evals}


# ---------------------------------------------------------------------- the GEMM skeleton of the whole model
def build_gemm(spec: dict, rng):
    """The matrix products of one training step of the whole model, preallocated, no elementwise work.

    Per recurrent layer and direction, as ``benchmarks.worker``'s skeleton: the input projection of
    all steps, one product per step forward and one back, dU and dW (and dX when something below has
    weights: a layer, or the embedding). The embedding: the gather of the batch's rows (its
    backward, a scatter-add, is left out). The output layer: ``(rows, H) x (H, K)`` forward,
    ``dV = dY^T X`` and ``dX = dY V`` back, rows = B*T for one output per step, B for one per sequence.
    Each batch uses views of flat buffers sized for the largest batch (the shapes of the real batches).
    """
    m = spec["model"]
    f32 = np.dtype(m["dtype"])
    G = {"lstm": 4, "gru": 3, "rnn": 1}[m["cell"]]
    H, L, K = m["hidden_size"], m["num_layers"], m["n_outputs"]
    dirs = 2 if m["bidirectional"] else 1
    shapes = [tuple(s) for s in spec["train_shapes"]]
    n_max = max(b * t for b, t in shapes)
    b_max, t_max = max(b for b, _ in shapes), max(t for _, t in shapes)
    embedding = m["inputs"] == "ids" and m["embedding_dim"]
    D0 = m["embedding_dim"] if embedding else m["n_inputs"]
    randn = lambda *shape: rng.standard_normal(shape).astype(f32)  # noqa: E731
    flat = lambda n: np.empty(n, f32)  # noqa: E731

    emb = None
    if embedding:
        emb = {"E": randn(m["n_inputs"], D0), "ids": rng.integers(0, m["n_inputs"], n_max), "out": flat(n_max * D0)}
    layers = []
    for layer in range(L):
        Din = D0 if layer == 0 else H * dirs
        for _ in range(dirs):
            W = randn(G * H, H)
            layers.append({"Din": Din, "U": randn(G * H, Din), "W": W, "W_T": np.ascontiguousarray(W.T),
                           "X": randn(n_max * Din), "S": randn((t_max + 1) * b_max * H), "Z": flat(n_max * G * H),
                           "zh": flat(b_max * G * H), "dh": flat(b_max * H), "dU": np.empty((G * H, Din), f32),
                           "dW": np.empty((G * H, H), f32), "dX": flat(n_max * Din),
                           "dX_needed": layer > 0 or bool(embedding)})
    Hout = H * dirs
    rows_max = n_max if m["sequence_output"] else b_max
    out = {"V": randn(K, Hout), "X": randn(rows_max * Hout), "Y": flat(rows_max * K),
           "dV": np.empty((K, Hout), f32), "dX": flat(rows_max * Hout)}

    def step(B, T):
        n = B * T
        if emb is not None:
            np.take(emb["E"], emb["ids"][:n], axis=0, out=emb["out"][:n * D0].reshape(n, D0))
        for p in layers:
            X, Z = p["X"][:n * p["Din"]].reshape(n, p["Din"]), p["Z"][:n * G * H].reshape(T, B, G * H)
            S, zh = p["S"][:(T + 1) * B * H].reshape(T + 1, B, H), p["zh"][:B * G * H].reshape(B, G * H)
            np.matmul(X, p["U"].T, out=Z.reshape(n, G * H))
            for t in range(T):
                np.matmul(S[t], p["W_T"], out=zh)
        rows = n if m["sequence_output"] else B
        Xo, Yo = out["X"][:rows * Hout].reshape(rows, Hout), out["Y"][:rows * K].reshape(rows, K)
        np.matmul(Xo, out["V"].T, out=Yo)
        np.matmul(Yo.T, Xo, out=out["dV"])
        np.matmul(Yo, out["V"], out=out["dX"][:rows * Hout].reshape(rows, Hout))
        for p in reversed(layers):
            X, Z = p["X"][:n * p["Din"]].reshape(n, p["Din"]), p["Z"][:n * G * H].reshape(T, B, G * H)
            S, dh = p["S"][:(T + 1) * B * H].reshape(T + 1, B, H), p["dh"][:B * H].reshape(B, H)
            for t in reversed(range(T)):
                np.matmul(Z[t], p["W"], out=dh)
            dG = Z.reshape(n, G * H)
            np.matmul(dG.T, X, out=p["dU"])
            np.matmul(dG.T, S[:-1].reshape(n, H), out=p["dW"])
            if p["dX_needed"]:
                np.matmul(dG, p["U"], out=p["dX"][:n * p["Din"]].reshape(n, p["Din"]))

    def train_pass():
        for B, T in shapes:
            step(B, T)
    return train_pass


def measure_gemm(spec: dict, warmup: int, reps: int) -> dict:
    times = timed(build_gemm(spec, np.random.default_rng(SEED)), warmup, reps)
    return {"train": [t / len(spec["train_shapes"]) for t in times]}


MEASURE = {"rnnlab": measure_rnnlab, "rnnlab-base": measure_rnnlab, "torch": measure_torch, "gemm": measure_gemm}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lib", choices=sorted(MEASURE))
    parser.add_argument("spec", help="JSON file: the list of example specs")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--prepare", metavar="DIR", help="build the examples, export their batches into DIR")
    args = parser.parse_args(argv)
    with open(args.spec) as fh:
        specs = json.load(fh)
    if args.prepare:
        json.dump({"examples": prepare(specs, args.prepare)}, sys.stdout)
        return 0
    if args.lib == "torch":
        from benchmarks.e2e.torch_loop import set_threads

        set_threads()
    from benchmarks.envinfo import library_info

    times = {spec["name"]: MEASURE[args.lib](spec, args.warmup, args.reps) for spec in specs}
    json.dump({"lib": args.lib, "times": times, "info": library_info(args.lib)}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
