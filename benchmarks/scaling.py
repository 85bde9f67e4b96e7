"""How rnnlab's training step grows with sequence length T and width H: ``python -m benchmarks.scaling``.

For each point a fresh process builds an LSTM layer (B=32, D=H, float32), runs one training step
(forward over all T steps, backward with ``L = sum(y * R)``) while its resident-set peak is
recorded (``/proc/self/status`` VmHWM, reset just before the step), then times ``--reps`` more
steps. Two ways of training over the same T steps:

- ``full``: one forward and one backward over all T steps (full BPTT): the tape holds every step,
  so memory grows linearly with T;
- ``truncated``: windows of ``--window`` steps with a ``stateful`` layer: the state is carried from
  one window to the next but no gradient flows back across a window (truncated BPTT): memory stays
  that of one window, flat in T, for the same arithmetic.

Writes ``scaling.json``, ``scaling.md`` and, when matplotlib is importable, ``scaling.png`` into
``--out`` (default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
B = 32
T_GRID = [100, 300, 1000, 3000, 10000]
H_GRID = [128, 256, 512, 1024]
H_FOR_T, T_FOR_H = 256, 1000
QUICK = {"T": [100, 300, 1000], "H": [128, 256], "H_for_T": 128, "T_for_H": 300}
TINY = {"T": [10, 20], "H": [8, 16], "H_for_T": 8, "T_for_H": 10}


# ---------------------------------------------------------------------- in the worker process
def _status(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def run_point(point: dict) -> dict:
    import rnnlab

    T, H, mode, window, reps = point["T"], point["H"], point["mode"], point["window"], point["reps"]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, H)).astype(np.float32)
    R = rng.standard_normal((B, T, H)).astype(np.float32)
    layer = rnnlab.LSTM(H, input_size=H, return_sequences=True, stateful=mode == "truncated", seed=0)
    warm = rnnlab.LSTM(4, input_size=3, return_sequences=True, seed=0)  # imports and loads the kernels
    warm(np.zeros((2, 3, 3), np.float32))
    warm.backward(np.zeros((2, 3, 4), np.float32))

    def step():
        layer.zero_grad()
        if mode == "full":
            layer(x, training=True)
            layer.backward(R, input_grad=False)
            return
        layer.reset_state()
        for start in range(0, T, window):
            layer(x[:, start:start + window], training=True)
            layer.backward(R[:, start:start + window], input_grad=False)

    rss_before = _status("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    peak = _status("VmHWM")
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {**point, "step_peak_bytes": peak - rss_before, "first_s": first,
            "time_s": float(np.median(times)) if times else first}


# ---------------------------------------------------------------------- orchestration
def points(grid: dict, window: int, reps: int) -> list[dict]:
    out = []
    for mode in ("full", "truncated"):
        for T in grid["T"]:
            out.append({"sweep": "T", "mode": mode, "T": T, "H": grid["H_for_T"], "window": window, "reps": reps})
        for H in grid["H"]:
            out.append({"sweep": "H", "mode": mode, "T": grid["T_for_H"], "H": H, "window": window, "reps": reps})
    return out


def measure(point: dict) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(point, fh)
    try:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.scaling", "--worker", fh.name], cwd=ROOT, env=env,
                              capture_output=True, text=True, check=False)
    finally:
        os.unlink(fh.name)
    if proc.returncode != 0:
        raise RuntimeError(f"scaling worker failed for {point}:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout)


def _num(row, key, scale) -> str:
    if row is None:
        return "—"
    v = row[key] * scale
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:.0f}"


def to_markdown(rows: list[dict], meta: dict) -> str:
    lines = [f"LSTM training step, B={B}, D=H, float32; truncated BPTT in windows of {meta['window']} steps. "
             f"'step peak' is the resident-set peak during the step above the resident set before it.", ""]
    for sweep in ("T", "H"):
        sel = [r for r in rows if r["sweep"] == sweep]
        if not sel:
            continue
        other = "H" if sweep == "T" else "T"
        lines += [f"Sweep over {sweep} ({other} = {sel[0][other]}):", "",
                  f"| {sweep} | full BPTT ms | full BPTT step peak MiB | truncated ms | truncated step peak MiB |",
                  "|---:|---:|---:|---:|---:|"]
        for value in sorted({r[sweep] for r in sel}):
            full = next((r for r in sel if r[sweep] == value and r["mode"] == "full"), None)
            trunc = next((r for r in sel if r[sweep] == value and r["mode"] == "truncated"), None)
            lines.append(f"| {value} | {_num(full, 'time_s', 1e3)} | {_num(full, 'step_peak_bytes', 2**-20)} | "
                         f"{_num(trunc, 'time_s', 1e3)} | {_num(trunc, 'step_peak_bytes', 2**-20)} |")
        lines.append("")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for col, sweep in enumerate(("T", "H")):
        for mode, style in (("full", "o-"), ("truncated", "s--")):
            sel = sorted((r for r in rows if r["sweep"] == sweep and r["mode"] == mode), key=lambda r: r[sweep])
            xs = [r[sweep] for r in sel]
            axes[0][col].plot(xs, [r["time_s"] for r in sel], style, label=f"{mode} BPTT")
            axes[1][col].plot(xs, [r["step_peak_bytes"] / 2**20 for r in sel], style, label=f"{mode} BPTT")
        for row, ylabel in ((0, "training step (s)"), (1, "step peak memory (MiB)")):
            ax = axes[row][col]
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(sweep)
            ax.set_ylabel(ylabel)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
    fig.suptitle(f"rnnlab LSTM training step, B={B}, float32")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Time and memory of an LSTM training step against T and H.")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="a smaller grid (about a minute)")
    group.add_argument("--tiny", action="store_true", help="a toy grid that only checks the machinery")
    parser.add_argument("--window", type=int, default=100, help="truncated BPTT window (steps)")
    parser.add_argument("--reps", type=int, default=1, help="timed steps after the first (median)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    if args.worker:
        with open(args.worker) as fh:
            json.dump(run_point(json.load(fh)), sys.stdout)
        return 0
    if args.window < 1 or args.reps < 0:
        parser.error(f"window must be >= 1 and reps >= 0, got {args.window} and {args.reps}")
    grid = TINY if args.tiny else QUICK if args.quick else {"T": T_GRID, "H": H_GRID, "H_for_T": H_FOR_T,
                                                               "T_for_H": T_FOR_H}
    window = min(args.window, min(grid["T"]))
    rows = []
    for point in points(grid, window, args.reps):
        rows.append(measure(point))
        print(f"{point['mode']:>9} T={point['T']:>6} H={point['H']:>5}: {rows[-1]['time_s'] * 1e3:9.1f} ms "
              f"{rows[-1]['step_peak_bytes'] / 2**20:8.1f} MiB", file=sys.stderr, flush=True)
    from benchmarks.envinfo import machine_info

    meta = {"B": B, "window": window, "grid": grid, "machine": machine_info()}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scaling.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    markdown = to_markdown(rows, meta)
    if plot(rows, out / "scaling.png"):
        markdown += "\nPlot: scaling.png\n"
    (out / "scaling.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
