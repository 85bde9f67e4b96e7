"""Where a data-parallel training step spends its time, and a model of larger runs (``docs/scaling.md``).

    python -m benchmarks.data_parallel [--examples ptb_small ...] [--steps 6] [--out FILE]     # one process
    mpiexec -n 2 python -m benchmarks.data_parallel [...]                                       # two ranks
    python -m benchmarks.data_parallel --project FILE                                           # the projection

Each example configuration is built as ``rnnlab train`` builds it (its data, model and trainer; the
global batch is the configuration's ``batch_size``) and trained for ``--warmup`` untimed then
``--steps`` timed batches. On several ranks the gradient reduction is timed in two parts: a barrier
first (*waiting*: the time this rank waits for the slowest one) and then the ``Allreduce`` itself;
*compute* is the rest of the step. Rank 0 prints one JSON line per example (medians over the steps)
and, with ``--out``, writes them to a file.

The projection (``--project``, from a one-process measurement) uses the ring-allreduce model::

    bytes = 4 x parameters                              (float32 gradients; +8 for the loss and count)
    t_allreduce(N) = 2 (N - 1) / N x bytes / bandwidth + 2 (N - 1) x latency
    fixed global batch B:   step(N) = compute / N + t_allreduce(N),  speed-up = compute / step(N)  (N <= B)
    growing global batch:   step(N) = compute + t_allreduce(N),      speed-up = N compute / step(N)

(the reduction follows the backward pass, nothing overlaps) and prints, per example and link, the
speed-up on 4 ... 256 nodes and the first N where the allreduce takes longer than a node's compute.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {"ptb_small": "examples/ptb_small.toml", "charlm_shakespeare": "examples/charlm_shakespeare.toml",
            "sentiment_mr": "examples/sentiment_mr.toml", "sunspots": "examples/sunspots.toml",
            "adding": "examples/adding.toml"}
#: link -> (bandwidth in bit/s, latency per message in s): Ethernet with TCP, RoCE, InfiniBand HDR, roughly
LINKS = {"10 Gb/s": (10e9, 30e-6), "25 Gb/s": (25e9, 10e-6), "100 Gb/s": (100e9, 2e-6)}
NODES = (4, 8, 16, 32, 64, 128, 256)


def measure(name: str, config_file: str, warmup: int, steps: int, comm) -> dict:
    """Median step, compute, wait and allreduce times (s) of one example on this world."""
    from rnnlab.lab.config import load_config
    from rnnlab.lab.tasks import build_task
    from rnnlab.training import distributed

    config = load_config(str(ROOT / config_file), [])
    task = build_task(config, None)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = task.trainer(run_dir)
        trainer.print_fn = lambda message: None
        waits, reduces = [], []
        if comm is not None:
            hook = distributed.attach(trainer, comm)
            reduce = hook.reduce_gradients

            def timed_reduce(model, loss):
                t0 = time.perf_counter()
                comm.barrier()
                t1 = time.perf_counter()
                reduce(model, loss)
                waits.append(t1 - t0)
                reduces.append(time.perf_counter() - t1)

            hook.reduce_gradients = timed_reduce
        times = []
        batches = trainer.train.batches_from(0, 0)
        for _ in range(warmup + steps):
            batch = next(batches)
            start = time.perf_counter()
            trainer._train_batch(batch)  # one batch as Trainer.run trains it, without checkpoints and logs
            times.append(time.perf_counter() - start)
        if comm is not None:
            del waits[:warmup], reduces[:warmup]
    step = statistics.median(times[warmup:])
    wait = statistics.median(waits) if waits else 0.0
    allreduce = statistics.median(reduces) if reduces else 0.0
    n_params = sum(p.size for _, p in task.model.named_parameters())
    return {"example": name, "world_size": 1 if comm is None else comm.size, "global_batch": config.data.batch_size,
            "parameters": int(n_params), "allreduce_bytes": int(n_params) * 4 + 8, "step_s": step,
            "compute_s": step - wait - allreduce, "wait_s": wait, "allreduce_s": allreduce}


def allreduce_time(nbytes: float, n: int, bandwidth_bits: float, latency: float) -> float:
    """The ring allreduce's time on ``n`` nodes: ``2 (n-1)/n bytes/bandwidth + 2 (n-1) latency`` (s)."""
    return 2 * (n - 1) / n * nbytes * 8 / bandwidth_bits + 2 * (n - 1) * latency


def project(measured: list[dict], fixed_batch: bool) -> str:
    """The projection table (Markdown) from one-process measurements.

    ``fixed_batch``: the configuration's global batch split over N nodes (compute / N per node, while
    N <= batch); otherwise each node keeps the configuration's batch and the global batch grows N-fold.
    """
    lines = ["| example | parameters | compute (ms) | link | " + " | ".join(f"N={n}" for n in NODES)
             + " | allreduce > compute from N = |",
             "|---|---:|---:|---|" + "---:|" * len(NODES) + "---:|"]
    for m in measured:
        for link, (bw, lat) in LINKS.items():
            cells, stop = _projected(m["compute_s"], m["allreduce_bytes"], m["global_batch"], bw, lat, fixed_batch)
            lines.append(f"| {m['example']} | {m['parameters']:,} | {m['compute_s'] * 1e3:.1f} | {link} | "
                         + " | ".join(cells) + f" | {stop} |")
    return "\n".join(lines)


def _projected(compute: float, nbytes: int, batch: int, bw: float, lat: float, fixed_batch: bool):
    """The speed-ups on ``NODES`` (as table cells) and the first N where the allreduce outlasts the compute."""
    def per_node(n):
        return compute / n if fixed_batch else compute

    cells = []
    for n in NODES:
        if fixed_batch and n > batch:
            cells.append("-")  # fewer than one row per node
            continue
        step = per_node(n) + allreduce_time(nbytes, n, bw, lat)
        cells.append(f"{(compute if fixed_batch else n * compute) / step:.1f}")
    stop = next((n for n in range(2, 100_000) if allreduce_time(nbytes, n, bw, lat) > per_node(n)), None)
    if stop is None or (fixed_batch and stop > batch):
        return cells, "never" if not fixed_batch else f"not up to N = B = {batch}"
    return cells, str(stop)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", nargs="+", choices=sorted(EXAMPLES), default=sorted(EXAMPLES))
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--out", type=Path, default=None, help="write the JSON lines here too (rank 0)")
    parser.add_argument("--project", type=Path, default=None, metavar="FILE",
                        help="print the projection from a file of one-process measurements instead of measuring")
    args = parser.parse_args(argv)
    if args.project is not None:
        measured = [json.loads(line) for line in args.project.read_text().splitlines() if line.strip()]
        ones = [m for m in measured if m["world_size"] == 1]
        print("The global batch fixed (the configuration's, split over the nodes):\n")
        print(project(ones, fixed_batch=True))
        print("\nThe global batch growing with N (each node keeps the configuration's batch):\n")
        print(project(ones, fixed_batch=False))
        return 0
    from rnnlab.training import distributed

    comm = distributed.world()
    if comm is not None:
        distributed.limit_threads(comm)
    results = [measure(name, EXAMPLES[name], args.warmup, args.steps, comm) for name in args.examples]
    if comm is None or comm.is_root:
        text = "".join(json.dumps(r) + "\n" for r in results)
        sys.stdout.write(text)
        if args.out is not None:
            args.out.write_text(text)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("RNNLAB_DATA", str(ROOT.parent / "shared" / "data"))
    sys.exit(main())
