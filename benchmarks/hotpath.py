"""Milliseconds per PTB training step through the Trainer, and per operation of its hot path.

    PYTHONPATH=src RNNLAB_DATA=<data dir> python -m benchmarks.hotpath [--steps 60] [--ops] [--phases] [--bound]

The step is ``Trainer._train_batch`` on real batches of ``examples/ptb_small.toml`` (2 x 200 LSTM,
embedding 200, vocabulary 10,000, batches 20 x 20, SGD, clipping); the first batches warm up. The
operations are the non-recurrent layers and the optimizer on the same shapes. Each figure is the
median of the repeats (the machine is shared, so the minimum is printed too). ``--phases`` splits
the step's time between the layers, the loss, the metrics and the optimizer (wrapping each in a
timer, which costs a few microseconds per call). ``--bound`` times the step's passes besides its GEMMs,
each at its fastest, whose sum over the GEMM floor bounds ``rnnlab / floor`` from below. Set
``OPENBLAS_NUM_THREADS`` to compare runs on a busy machine: BLAS threads that wait for a busy core make
every GEMM erratic.
"""

from __future__ import annotations

import argparse
import collections
import functools
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.timing import timed

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "ptb_small.toml"


def _time(fn, repeats: int, warmup: int = 2) -> tuple[float, float]:
    """(median, min) milliseconds of ``repeats`` calls after ``warmup``."""
    times = timed(fn, warmup, repeats)
    return 1e3 * statistics.median(times), 1e3 * min(times)


def _timed(owner, name: str, label: str, totals: dict) -> None:
    """Wrap ``owner.name`` so that its time adds to ``totals[label]``."""
    inner = getattr(owner, name)

    @functools.wraps(inner)
    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            totals[label] += time.perf_counter() - t0

    setattr(owner, name, timed)


def _time_phases(totals: dict) -> None:
    from rnnlab.nn import layers, losses, module, recurrent
    from rnnlab.nn import step as step_module
    from rnnlab.optim import optimizers
    from rnnlab.training import metrics

    for owner, name, label in [(layers.Dense, "forward", "Dense.forward"), (layers.Dense, "backward", "Dense.backward"),
                               (layers.Embedding, "forward", "Embedding.forward"),
                               (layers.Embedding, "backward", "Embedding.backward"),
                               (recurrent.Recurrent, "forward", "LSTM.forward (2 layers)"),
                               (recurrent.Recurrent, "backward", "LSTM.backward (2 layers)"),
                               (losses.Loss, "__call__", "loss"), (losses.Loss, "backward", "loss.backward"),
                               (optimizers.Optimizer, "step", "optimizer.step"),
                               (module.Module, "zero_grad", "zero_grad"),
                               (step_module, "clip_grad_norm", "clip_grad_norm")]:
        _timed(owner, name, label, totals)
    for cls in vars(metrics).values():  # the classes that define update, each once
        if isinstance(cls, type) and issubclass(cls, metrics.Metric) and "update" in vars(cls):
            _timed(cls, "update", "metrics.update", totals)


def ptb_step(config_path: Path, steps: int, warmup: int = 5, phases: bool = False) -> dict[str, float]:
    """``{"median": ms, "min": ms, "mean": ms}`` of a training step, plus ms per step of each phase."""
    from rnnlab.lab.config import load_config
    from rnnlab.lab.tasks import build_task

    totals: dict[str, float] = collections.defaultdict(float)
    if phases:
        _time_phases(totals)
    task = build_task(load_config(config_path))
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = task.trainer(run_dir)
        batches = task.train.batches_from(0, 0)
        for _ in range(warmup):
            trainer._train_batch(next(batches))
        totals.clear()
        times = []
        for _ in range(steps):
            batch = next(batches)
            t0 = time.perf_counter()
            trainer._train_batch(batch)
            times.append(time.perf_counter() - t0)
    out = {"median": 1e3 * statistics.median(times), "min": 1e3 * min(times), "mean": 1e3 * statistics.mean(times)}
    if phases:
        rest = sum(times) - sum(totals.values())
        for label, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
            out[label] = 1e3 * seconds / steps
        out["rest (train_step checks, trainer)"] = 1e3 * rest / steps
    return out


def ops(repeats: int) -> dict[str, tuple[float, float]]:
    from rnnlab import optim
    from rnnlab.nn.layers import Dense, Embedding

    rng = np.random.default_rng(0)
    B, T, H, V = 20, 20, 200, 10_000
    out = {}
    dense = Dense(V, input_size=H, seed=0)
    x = rng.standard_normal((B, T, H)).astype(np.float32)
    dy = rng.standard_normal((B, T, V)).astype(np.float32)

    def dense_forward():
        return dense(x)

    out["Dense.forward (20,20,200)->(20,20,10000)"] = _time(dense_forward, repeats)
    dense(x)
    out["Dense.backward"] = _time(lambda: dense.backward(dy), repeats)
    out["Dense.backward input_grad=False"] = _time(lambda: dense.backward(dy, input_grad=False), repeats)
    x2, VT = x.reshape(B * T, H), np.ascontiguousarray(dense.params["V"].T)
    buf = np.empty((B * T, V), np.float32)
    out["  floor: np.matmul(x2, V.T, out=) (400,200)x(200,10000)"] = _time(
        lambda: np.matmul(x2, dense.params["V"].T, out=buf), repeats)
    out["  floor: np.matmul(x2, VT contiguous, out=)"] = _time(lambda: np.matmul(x2, VT, out=buf), repeats)
    dy2 = dy.reshape(B * T, V)
    gV = np.empty((V, H), np.float32)
    out["  floor: dz^T x (10000,400)x(400,200), out="] = _time(lambda: np.matmul(dy2.T, x2, out=gV), repeats)
    dx = np.empty((B * T, H), np.float32)
    out["  floor: dz V (400,10000)x(10000,200), out="] = _time(
        lambda: np.matmul(dy2, dense.params["V"], out=dx), repeats)

    emb = Embedding(V, H, seed=0)
    ids = rng.integers(0, V, (B, T))
    emb(ids)
    dye = rng.standard_normal((B, T, H)).astype(np.float32)
    out["Embedding.forward (20,20) ids, dim 200"] = _time(lambda: emb(ids), repeats)
    out["Embedding.backward"] = _time(lambda: emb.backward(dye, input_grad=False), repeats)
    gE = np.zeros((V, H), np.float32)
    out["  old: np.add.at"] = _time(lambda: np.add.at(gE, ids.reshape(-1), dye.reshape(-1, H)), repeats)

    class Model:  # the PTB model's parameter shapes
        def __init__(self):
            shapes = {"0.E": (V, H), "1.U": (4 * H, H), "1.W": (4 * H, H), "1.b": (4 * H,), "2.U": (4 * H, H),
                      "2.W": (4 * H, H), "2.b": (4 * H,), "3.V": (V, H), "3.c": (V,)}
            self.p = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
            self.g = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}

        def named_parameters(self):
            return iter(self.p.items())

        def named_grads(self):
            return iter(self.g.items())

    model = Model()
    for name, opt in (("SGD", optim.SGD(lr=1e-6)), ("SGD momentum", optim.SGD(lr=1e-6, momentum=0.9)),
                      ("Adam", optim.Adam(lr=1e-6))):
        out[f"{name}.step (PTB parameters, 4.6M)"] = _time(lambda opt=opt: opt.step(model), repeats)
    out["clip_grad_norm (PTB parameters)"] = _time(lambda: optim.clip_grad_norm(model, 1e9), repeats)
    out["zero_grad equivalent (fill 0)"] = _time(lambda: [g.fill(0) for g in model.g.values()], repeats)
    return out


def bound(repeats: int) -> dict[str, tuple[float, float]]:
    """The PTB step's work besides its GEMMs, each pass at its fastest here: what the ``--ops`` GEMM
    floor cannot include but every implementation must do (adding the output bias, the softmax rows,
    the bias gradient, the LSTM gates and cell, the embedding's scatter-add, the gradient norm, the
    update). Their sum over the e2e GEMM floor is the least ``rnnlab / floor`` any step can reach."""
    from rnnlab import optim
    from rnnlab.nn import kernels
    from rnnlab.nn.layers import Embedding
    from rnnlab.nn.losses import SoftmaxCrossEntropy

    rng = np.random.default_rng(0)
    B, T, H, V, L = 20, 20, 200, 10_000, 2
    f32 = np.float32
    out = {}
    Y = rng.standard_normal((B * T, V)).astype(f32)
    c = rng.standard_normal(V).astype(f32)
    out["output bias added (400 x 10000)"] = _time(lambda: np.add(Y, c, out=Y), repeats)
    ids = rng.integers(0, V, (B, T))
    loss = SoftmaxCrossEntropy()
    Y3 = Y.reshape(B, T, V)

    def xent():
        loss(Y3, ids)
        loss.backward()
    out[f"softmax cross-entropy rows, value and gradient ({kernels.num_threads()} threads)"] = _time(xent, repeats)
    ones = np.ones(B * T, f32)
    gc = np.empty(V, f32)
    out["output bias gradient (one GEMV)"] = _time(lambda: np.matmul(ones, Y, out=gc), repeats)
    k = kernels.module()
    z, zh = rng.standard_normal((B, 4 * H)).astype(f32), rng.standard_normal((B, 4 * H)).astype(f32)
    b = rng.standard_normal(4 * H).astype(f32)
    cs = [rng.standard_normal((B, H)).astype(f32) for _ in range(6)]
    h1 = np.empty((B, H), f32)
    dy = rng.standard_normal((B, T, H)).astype(f32)
    dz = np.empty((B, 4 * H), f32)

    def gates():
        for _ in range(L * T):  # the gates in z are overwritten in place: the kernels have no data-dependent branch
            k.lstm_forward(z, zh, b, cs[0], cs[1], h1)
            k.lstm_backward(cs[2], dy, 0, cs[3], z, cs[1], cs[0], cs[4], dz, cs[5])
    out[f"LSTM gates and cell, forward and backward ({L} layers x {T} steps, numba kernels)"] = _time(gates, repeats)
    emb = Embedding(V, H, seed=0)
    emb(ids)
    rows = rng.standard_normal((B, T, H)).astype(f32)
    out["embedding gradient scatter-add (Embedding.backward)"] = _time(
        lambda: emb.backward(rows, input_grad=False), repeats)
    sizes = [V * H, 4 * H * H, 4 * H * H, 4 * H, 4 * H * H, 4 * H * H, 4 * H, V * H, V]
    params = [rng.standard_normal(n).astype(f32) for n in sizes]
    grads = [rng.standard_normal(n).astype(f32) for n in sizes]
    out["gradient norm (4.6M parameters, one dot each)"] = _time(
        lambda: sum(float(np.dot(g, g)) for g in grads), repeats)

    class Model:
        def named_parameters(self):
            return iter(zip(map(str, range(len(params))), params))

        def named_grads(self):
            return iter(zip(map(str, range(len(grads))), grads))
    sgd, model = optim.SGD(lr=1e-9), Model()
    out["SGD update (4.6M parameters, fused)"] = _time(lambda: sgd.step(model), repeats)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=EXAMPLE)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--ops", action="store_true", help="also time the single operations")
    parser.add_argument("--phases", action="store_true", help="split the PTB step's time by phase")
    parser.add_argument("--no-step", action="store_true", help="skip the PTB step")
    parser.add_argument("--bound", action="store_true",
                        help="time the step's work besides its GEMMs, each pass at its fastest, and their sum")
    args = parser.parse_args(argv)
    if args.bound:
        passes = bound(args.repeats)
        for name, (med, low) in passes.items():
            print(f"{name:80s} {med:8.2f} ms  (min {low:.2f})")
        print(f"{'sum of the minima':80s} {sum(low for _, low in passes.values()):8.2f} ms")
    if args.ops:
        for name, (med, low) in ops(args.repeats).items():
            print(f"{name:60s} {med:8.2f} ms  (min {low:.2f})")
    if not args.no_step:
        result = ptb_step(args.config, args.steps, phases=args.phases)
        print(f"{'PTB training step (Trainer._train_batch)':60s} {result['median']:8.2f} ms  "
              f"(min {result['min']:.2f}, mean {result['mean']:.2f})")
        for label, ms in list(result.items())[3:]:
            print(f"  {label:58s} {ms:8.2f} ms per step")


if __name__ == "__main__":
    main()
