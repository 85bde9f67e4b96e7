"""Run the benchmark suite: ``python -m benchmarks.run [--quick | --tiny] [--rounds N] [--out DIR]``.

Method (docs/performance.md says why):

- every library runs in a process of its own (``benchmarks.worker``), never two at once;
- the processes alternate within a round, and the order rotates from one round to the next, so a
  burst of load from elsewhere on the machine hits each library alike;
- each worker warms each case up, then times it ``reps`` times and keeps the median;
- the result of a case is the median over rounds, and the rnnlab/PyTorch ratio is the median of the
  per-round ratios (paired: both sides of a ratio were measured within seconds of each other);
- memory: one fresh process per library and case, the resident-set peak of one training step.

Writes ``results.json`` and ``results.md`` into ``--out`` (default ``benchmarks/results``) and prints
the markdown.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import cases as C
from benchmarks.envinfo import machine_info

ROOT = Path(__file__).resolve().parent.parent

#: The issue's targets, rnnlab / PyTorch, per kind of case (and the floor for training).
TARGETS = {"train": 0.8, "forward": 1.0, "generate": 0.33, "memory": 0.5, "train_vs_floor": 1.15}

PRESETS = {
    # name: (shapes, generation, rounds, warmup, reps)
    "full": (C.SHAPES, C.GENERATION, 9, 2, 5),
    "quick": (C.QUICK_SHAPES, C.GENERATION, 3, 1, 3),
    "tiny": (C.TINY_SHAPES, C.TINY_GENERATION, 2, 1, 1),
}


def worker_env(lib: str, baseline: str | None = None) -> dict:
    """The environment of a worker process: this tree's ``src`` and root first on ``PYTHONPATH`` (so
    "rnnlab" is this tree's even when another checkout is installed), the baseline's source before
    them for ``rnnlab-base``."""
    env = dict(os.environ)
    first = [baseline] if lib == "rnnlab-base" and baseline else []
    env["PYTHONPATH"] = os.pathsep.join(filter(None, first + [str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH")]))
    return env


def run_worker(lib: str, cases_file: str, *extra: str, baseline: str | None = None,
               module: str = "benchmarks.worker") -> dict:
    """Run ``python -m module lib cases_file *extra`` in a process of its own; its stdout is one JSON object."""
    proc = subprocess.run([sys.executable, "-m", module, lib, cases_file, *extra], cwd=ROOT,
                          env=worker_env(lib, baseline), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark worker {lib} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout)


def _shown_arg(arg: str, args) -> str:
    """A command-line argument as the results record it: no path of this machine (``<SRC>`` for the
    baseline tree, the output directory relative to the project or ``<OUT>``)."""
    if arg == args.baseline:
        return "<SRC>"
    if arg == args.out:
        out = Path(arg).resolve()
        return str(out.relative_to(ROOT)) if out.is_relative_to(ROOT) else "<OUT>"
    return arg


def _write_cases(cases: list[dict], directory: str, name: str) -> str:
    path = os.path.join(directory, name)
    with open(path, "w") as fh:
        json.dump(cases, fh)
    return path


def measure_times(libs, cases, rounds, warmup, reps, log, baseline=None) -> tuple[dict, dict]:
    """``per_round[lib][case] = [median seconds of round r, ...]`` and each library's info."""
    per_round = {lib: {} for lib in libs}
    info = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = _write_cases(cases, tmp, "cases.json")
        for r in range(rounds):
            order = libs[r % len(libs):] + libs[:r % len(libs)]
            for lib in order:
                start = time.perf_counter()
                out = run_worker(lib, path, "--warmup", str(warmup), "--reps", str(reps), baseline=baseline)
                info[lib] = out["info"]
                for name, runs in out["times"].items():
                    per_round[lib].setdefault(name, []).append(statistics.median(runs))
                log(f"round {r + 1}/{rounds} {lib:<11} {time.perf_counter() - start:6.1f} s")
    return per_round, info


def measure_memory(libs, cases, log) -> dict:
    """``memory[lib][case] = {"step": bytes, "peak": bytes, ...}``, one fresh process each."""
    memory = {lib: {} for lib in libs}
    with tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(cases):
            path = _write_cases([case], tmp, f"memory{i}.json")
            for lib in libs:
                memory[lib][case["name"]] = run_worker(lib, path, "--memory")["memory"]
            log(f"memory {case['name']}")
    return memory


def _ratio_stats(num: list[float], den: list[float]) -> dict | None:
    if not num or not den:
        return None
    ratios = [a / b for a, b in zip(num, den)]
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios), "per_round": ratios}


def summarize(cases, per_round, memory) -> dict:
    rows = []
    names = []
    for case in cases:
        names.append(case["name"])
        if case["kind"] == "generate":
            names.append(case["name"] + "#layer")
    for name in names:
        kind = "generate" if "/generate/" in name else name.split("/")[1]
        get = lambda lib, key=name: per_round.get(lib, {}).get(key, [])  # noqa: E731
        base = name.split("#")[0]
        rn, th, gm, before = get("rnnlab", base), get("torch"), get("gemm", base), get("rnnlab-base", base)
        rows.append({
            "case": name, "kind": kind, "torch_variant": "nn.LSTM/GRU with state" if name.endswith("#layer") else (
                "LSTMCell/GRUCell" if kind == "generate" else "nn module"),
            "rnnlab_s": statistics.median(rn) if rn else None,
            "torch_s": statistics.median(th) if th else None,
            "gemm_s": statistics.median(gm) if gm else None,
            "rnnlab_over_torch": _ratio_stats(rn, th),
            "rnnlab_over_gemm": _ratio_stats(rn, gm),
            "baseline_s": statistics.median(before) if before else None,
            "baseline_over_torch": _ratio_stats(before, th),
            "rnnlab_over_baseline": _ratio_stats(rn, before),
            "target_vs_torch": TARGETS[kind] if not name.endswith("#layer") else None,
        })
    mem_rows = []
    for name in sorted(memory.get("rnnlab", {})):
        rn, th = memory["rnnlab"][name], memory.get("torch", {}).get(name)
        mem_rows.append({"case": name, "rnnlab": rn, "torch": th,
                         "step_ratio": (rn["step"] / th["step"]) if th and rn["step"] and th["step"] else None,
                         "peak_ratio": rn["peak"] / th["peak"] if th else None, "target": TARGETS["memory"]})
    return {"timings": rows, "memory": mem_rows}


def _ms(seconds):
    return "—" if seconds is None else f"{seconds * 1e3:.2f}" if seconds < 0.1 else f"{seconds * 1e3:.0f}"


def _ratio(stats, target=None):
    if stats is None:
        return "—"
    mark = "" if target is None else (" ✓" if stats["median"] <= target else " ✗")
    return f"{stats['median']:.2f} ({stats['min']:.2f}–{stats['max']:.2f}){mark}"


def _mib(n):
    return "—" if n is None else f"{n / 2**20:.1f}"


def to_markdown(result: dict) -> str:
    s, m = result["summary"], result["meta"]
    lines = [f"Run {m['started']} ({m['preset']}: {m['rounds']} rounds × {m['reps']} timed repetitions after "
             f"{m['warmup']} warm-up; medians; ratios are medians of per-round ratios, (min–max) over rounds; "
             f"✓/✗ against the issue's target).", ""]
    baseline = any(row["baseline_s"] is not None for row in s["timings"])
    extra_head = " before ms | before / PyTorch | after / before |" if baseline else ""
    lines += ["| case | rnnlab ms | PyTorch ms | GEMM floor ms | rnnlab / PyTorch | rnnlab / floor |" + extra_head,
              "|---|---:|---:|---:|---:|---:|" + ("---:|---:|---:|" if baseline else "")]
    for row in s["timings"]:
        floor_target = TARGETS["train_vs_floor"] if row["kind"] == "train" else None
        label = row["case"] + (" (vs nn.LSTM/GRU with state)" if row["case"].endswith("#layer") else
                               " (vs LSTMCell/GRUCell)" if row["kind"] == "generate" else "")
        lines.append(f"| {label.replace('#layer', '')} | {_ms(row['rnnlab_s'])} | {_ms(row['torch_s'])} | "
                     f"{_ms(row['gemm_s'])} | {_ratio(row['rnnlab_over_torch'], row['target_vs_torch'])} | "
                     f"{_ratio(row['rnnlab_over_gemm'], floor_target)} |" + (
                         f" {_ms(row['baseline_s'])} | {_ratio(row['baseline_over_torch'])} | "
                         f"{_ratio(row['rnnlab_over_baseline'])} |" if baseline else ""))
    if s["memory"]:
        lines += ["", "Peak resident memory of one training step (fresh process each; 'step' = the peak during "
                  "the step minus the resident set before it; 'process' = the whole process's peak, imports "
                  "included):", "",
                  "| case | rnnlab step MiB | PyTorch step MiB | step ratio | rnnlab process MiB | "
                  "PyTorch process MiB |", "|---|---:|---:|---:|---:|---:|"]
        for row in s["memory"]:
            ratio = "—" if row["step_ratio"] is None else (
                f"{row['step_ratio']:.2f}" + (" ✓" if row["step_ratio"] <= row["target"] else " ✗"))
            th = row["torch"] or {}
            lines.append(f"| {row['case']} | {_mib(row['rnnlab']['step'])} | {_mib(th.get('step'))} | {ratio} | "
                         f"{_mib(row['rnnlab']['peak'])} | {_mib(th.get('peak'))} |")
    lines += [""] + machine_lines(m)
    return "\n".join(lines) + "\n"


def machine_lines(meta: dict) -> list[str]:
    """The machine, the load and each library's BLAS, threads and versions, as the results' last lines."""
    mach = meta["machine"]
    lines = [f"Machine: {mach['cpu']}, {mach['logical_cpus']} logical CPUs, "
             f"{_mib(mach['memory_bytes'])} MiB; {mach['os']}; Python {mach['python']}. "
             f"Load average at start {mach['load_average']}, at end {meta['load_average_end']}."]
    for lib, info in meta["libraries"].items():
        lines.append(f"- {lib}: {json.dumps(info, sort_keys=True)}")
    lines.append(f"- thread environment: {json.dumps(mach['thread_env'], sort_keys=True)}")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="rnnlab vs PyTorch vs the GEMM floor, one process per library.")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_const", dest="preset", const="quick",
                       help="two shapes, 3 rounds (a few minutes)")
    group.add_argument("--tiny", action="store_const", dest="preset", const="tiny",
                       help="one tiny shape, 2 rounds: checks the machinery (seconds), times nothing meaningful")
    parser.set_defaults(preset="full")
    parser.add_argument("--rounds", type=int, help="rounds (default: 9 full, 3 quick)")
    parser.add_argument("--reps", type=int, help="timed repetitions per case and round")
    parser.add_argument("--warmup", type=int, help="untimed calls per case before timing")
    parser.add_argument("--cells", nargs="+", choices=C.CELLS, default=list(C.CELLS))
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurements")
    parser.add_argument("--baseline", metavar="SRC",
                        help="also time rnnlab imported from this source directory (e.g. an older checkout's src/) "
                             "as 'rnnlab-base', for before/after ratios in the same rounds")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="directory for results.json/.md")
    args = parser.parse_args(argv)

    shapes, generation, rounds, warmup, reps = PRESETS[args.preset]
    rounds = rounds if args.rounds is None else args.rounds
    warmup = warmup if args.warmup is None else args.warmup
    reps = reps if args.reps is None else args.reps
    if rounds < 1 or reps < 1 or warmup < 0:
        parser.error(f"rounds and reps must be >= 1 and warmup >= 0, got {rounds}, {reps}, {warmup}")
    libs = ["rnnlab", "gemm"] + (["rnnlab-base"] if args.baseline else [])
    if importlib.util.find_spec("torch") is not None:
        libs.insert(1, "torch")
    else:
        print("torch is not installed: measuring rnnlab and the GEMM floor only", file=sys.stderr)

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    meta = {"started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), "preset": args.preset,
            "rounds": rounds, "warmup": warmup, "reps": reps, "baseline": args.baseline is not None,
            "machine": machine_info(),  # the command without the baseline's path: no machine paths in results
            "command": [_shown_arg(a, args) for a in ["python -m benchmarks.run"] + sys.argv[1:]]}
    cases = C.timing_cases(shapes, tuple(args.cells), generation=generation)
    per_round, info = measure_times(libs, cases, rounds, warmup, reps, log, baseline=args.baseline)
    memory = {} if args.no_memory else measure_memory([lib for lib in libs if lib in ("rnnlab", "torch")],
                                                      C.memory_cases(shapes, tuple(args.cells)), log)
    meta["libraries"] = info
    meta["load_average_end"] = machine_info()["load_average"]
    result = {"meta": meta, "cases": cases, "per_round": per_round, "memory": memory,
              "summary": summarize(cases, per_round, memory)}

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    markdown = to_markdown(result)
    (out / "results.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
