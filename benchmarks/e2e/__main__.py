"""Run the end-to-end benchmark: ``python -m benchmarks.e2e [--quick | --tiny] [--rounds N] [--examples ...]
[--baseline SRC] [--out DIR]``.

Method (that of ``benchmarks.run``; docs/performance.md, "End to end", says more):

- first one rnnlab process builds every example as ``rnnlab train`` does and exports its batches
  (``worker --prepare``), so PyTorch and the floor get the very same batches and shapes;
- each round runs one process per library (rnnlab, PyTorch, the GEMM floor; rnnlab-base with
  ``--baseline``) for the training steps and the evaluations of all examples, then, example by
  example, one whole run per library (``rnnlab train`` / ``benchmarks.e2e.torch_train``); the order
  of the libraries rotates from round to round;
- a worker times ``reps`` passes after ``warmup`` and keeps the median; a result is the median over
  rounds, a ratio the median of the per-round ratios with its (min–max) over rounds.

Writes ``results.json`` and ``results.md`` into ``--out`` (default ``benchmarks/results/e2e``) and prints
the markdown.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.e2e.examples import EXAMPLES, PRESETS, example_spec, whole_run_overrides
from benchmarks.envinfo import machine_info
from benchmarks.run import ROOT, _ms, _ratio, _ratio_stats, _shown_arg, machine_lines, run_worker, worker_env

WORKER = "benchmarks.e2e.worker"


def _rotated(libs: list[str], r: int) -> list[str]:
    return libs[r % len(libs):] + libs[:r % len(libs)]


@contextlib.contextmanager
def _data_env(data_dir: str | None):
    """``$RNNLAB_DATA`` set to ``data_dir`` for the workers and runs started meanwhile (restored afterwards)."""
    before = os.environ.get("RNNLAB_DATA")
    if data_dir:
        os.environ["RNNLAB_DATA"] = str(Path(data_dir).resolve())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("RNNLAB_DATA", None)
        else:
            os.environ["RNNLAB_DATA"] = before


def _write_specs(specs: list[dict], path: Path) -> str:
    path.write_text(json.dumps(specs))
    return str(path)


def whole_run(lib: str, spec: dict, tmp: Path, baseline: str | None) -> dict:
    """The wall time of one whole training run in a fresh process, from its start to its exit."""
    run_dir = tmp / f"run-{spec['name']}-{lib}"
    sets = [arg for item in whole_run_overrides(spec) for arg in ("--set", item)]
    config = str(ROOT / spec["config"])
    if lib == "torch":
        cmd = [sys.executable, "-m", "benchmarks.e2e.torch_train", config, *sets, "--out", str(run_dir)]
    else:
        cmd = [sys.executable, "-m", "rnnlab", "train", config, *sets, "--run-dir", str(run_dir)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=worker_env(lib, baseline), capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"whole run {lib} {spec['name']} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    if lib == "torch":
        detail = json.loads(proc.stdout)
        steps = detail["steps"]
    else:
        detail = json.loads((run_dir / "metrics.json").read_text())
        steps = detail["steps"]
    shutil.rmtree(run_dir, ignore_errors=True)
    return {"seconds": wall, "steps": steps, "detail": detail}


def measure(libs, whole_libs, specs, spec_path, rounds, warmup, reps, tmp, log, baseline=None):
    """``per_round[lib][example][what] = [median of round r, ...]`` for what in train, eval, whole."""
    per_round = {lib: {s["name"]: {} for s in specs} for lib in libs}
    info, whole_detail = {}, {}
    for r in range(rounds):
        for lib in _rotated(libs, r):
            start = time.perf_counter()
            out = run_worker(lib, spec_path, "--warmup", str(warmup), "--reps", str(reps), baseline=baseline,
                             module=WORKER)
            info[lib] = out["info"]
            for name, times in out["times"].items():
                for what in ("train", "eval"):
                    if what in times:
                        per_round[lib][name].setdefault(what, []).append(statistics.median(times[what]))
                if "same_batches" in times:
                    info[lib].setdefault("same_batches", {})[name] = times["same_batches"]
            log(f"round {r + 1}/{rounds} {lib:<11} steps and evaluation {time.perf_counter() - start:6.1f} s")
        for spec in specs:
            for lib in _rotated(whole_libs, r):
                run = whole_run(lib, spec, tmp, baseline)
                per_round[lib][spec["name"]].setdefault("whole", []).append(run["seconds"])
                whole_detail.setdefault(lib, {}).setdefault(spec["name"], []).append(
                    {"steps": run["steps"], **({"phases": run["detail"]["seconds"]} if lib == "torch" else {})})
                log(f"round {r + 1}/{rounds} {lib:<11} whole run {spec['name']:<19} {run['seconds']:6.1f} s "
                    f"({run['steps']} steps)")
    return per_round, info, whole_detail


def summarize(specs, per_round) -> list[dict]:
    rows = []
    for spec in specs:
        name = spec["name"]
        def get(lib, what, name=name):
            return per_round.get(lib, {}).get(name, {}).get(what, [])

        def med(lib, what):
            return statistics.median(get(lib, what)) if get(lib, what) else None
        row = {"example": name, "label": spec["label"], "description": spec["description"],
               "unit": spec["model"]["unit"], "eval_units": spec["eval_units"], "n_val": spec["n_val"],
               "val_batches_total": spec["val_batches_total"], "n_train": spec["n_train"],
               "whole_steps": spec["whole_steps"], "whole_overrides": whole_run_overrides(spec)}
        for what in ("train", "eval", "whole"):
            row[what] = {lib: med(lib, what) for lib in per_round if get(lib, what)}
            row[f"{what}_rnnlab_over_torch"] = _ratio_stats(get("rnnlab", what), get("torch", what))
            row[f"{what}_rnnlab_over_baseline"] = _ratio_stats(get("rnnlab", what), get("rnnlab-base", what))
            row[f"{what}_baseline_over_torch"] = _ratio_stats(get("rnnlab-base", what), get("torch", what))
        row["train_rnnlab_over_floor"] = _ratio_stats(get("rnnlab", "train"), get("gemm", "train"))
        row["train_torch_over_floor"] = _ratio_stats(get("torch", "train"), get("gemm", "train"))
        row["eval_per_s"] = {lib: spec["eval_units"] / s for lib, s in row["eval"].items() if s}
        rows.append(row)
    return rows


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"


def _rate(x):
    return "—" if x is None else f"{x:,.0f}"


def _s(x):
    return "—" if x is None else f"{x:.1f}"


def to_markdown(result: dict) -> str:
    m, rows = result["meta"], result["summary"]
    base = m["baseline"]
    lines = [f"Run {m['started']} ({m['preset']}: {_n(m['rounds'], 'round')}; per round and library, "
             f"{_n(m['warmup'], 'warm-up pass', 'warm-up passes')} and {_n(m['reps'], 'timed pass', 'timed passes')} "
             f"over each example's first training batches and over its validation batches, median kept; one whole "
             f"run per round; times are medians over rounds, ratios medians of per-round ratios with their (min–max) "
             f"over rounds).", ""]
    lines += ["Examples (the configuration files as they are; batches of epoch 0, the same for every library):", ""]
    for row in rows:
        lines.append(f"- {row['label']} (`{row['example']}`): {row['description']}")
    extra = " before ms | after / before |" if base else ""
    lines += ["", "Training step (the trainer's update on a real batch: forward, loss, backward, clipping, optimizer "
              "step):", "",
              "| example | rnnlab ms | PyTorch ms | floor ms | rnnlab / PyTorch | rnnlab / floor | PyTorch / floor |"
              + extra, "|---|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if base else "")]
    for row in rows:
        t = row["train"]
        lines.append(f"| {row['label']} | {_ms(t.get('rnnlab'))} | {_ms(t.get('torch'))} | {_ms(t.get('gemm'))} | "
                     f"{_ratio(row['train_rnnlab_over_torch'])} | {_ratio(row['train_rnnlab_over_floor'])} | "
                     f"{_ratio(row['train_torch_over_floor'])} |" + (
                         f" {_ms(t.get('rnnlab-base'))} | {_ratio(row['train_rnnlab_over_baseline'])} |"
                         if base else ""))
    extra = " before per s | after / before (time) |" if base else ""
    lines += ["", "Evaluation on the validation part (inference mode, loss and metrics; the language models' "
              "state carried):", "",
              "| example | batches | rnnlab per s | PyTorch per s | rnnlab / PyTorch (time) |" + extra,
              "|---|---|---:|---:|---:|" + ("---:|---:|" if base else "")]
    for row in rows:
        e = row["eval_per_s"]
        what = (f"{row['n_val']} of {row['val_batches_total']}" if row["n_val"] < row["val_batches_total"]
                else f"all {row['n_val']}") + f" ({row['eval_units']:,} {row['unit']})"
        lines.append(f"| {row['label']} | {what} | {_rate(e.get('rnnlab'))} | {_rate(e.get('torch'))} | "
                     f"{_ratio(row['eval_rnnlab_over_torch'])} |" + (
                         f" {_rate(e.get('rnnlab-base'))} | {_ratio(row['eval_rnnlab_over_baseline'])} |"
                         if base else ""))
    extra = " before s | after / before |" if base else ""
    lines += ["", "Whole run (a fresh process from start to exit: imports, reading the data, the steps, validation "
              "after each epoch, the final validation and test evaluations, checkpoints and the saved model):", "",
              "| example | steps | `rnnlab train` s | PyTorch script s | rnnlab / PyTorch |" + extra,
              "|---|---:|---:|---:|---:|" + ("---:|---:|" if base else "")]
    for row in rows:
        w = row["whole"]
        lines.append(f"| {row['label']} | {row['whole_steps']} | {_s(w.get('rnnlab'))} | {_s(w.get('torch'))} | "
                     f"{_ratio(row['whole_rnnlab_over_torch'])} |" + (
                         f" {_s(w.get('rnnlab-base'))} | {_ratio(row['whole_rnnlab_over_baseline'])} |"
                         if base else ""))
    lines += [""] + machine_lines(m)
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.e2e", description="The example configurations end to "
                                     "end: rnnlab vs PyTorch vs the "
                                     "GEMM floor, one process per library.")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_const", dest="preset", const="quick",
                       help="the real shapes, fewer batches and steps, 3 rounds (several minutes)")
    group.add_argument("--tiny", action="store_const", dest="preset", const="tiny",
                       help="tiny shapes and data, 1 round: checks the machinery, times nothing meaningful")
    parser.set_defaults(preset="full")
    parser.add_argument("--rounds", type=int, help="rounds (default: 7 full, 3 quick, 1 tiny)")
    parser.add_argument("--examples", nargs="+", choices=list(EXAMPLES), default=list(EXAMPLES), metavar="EXAMPLE",
                        help=f"which examples (default: all: {' '.join(EXAMPLES)})")
    parser.add_argument("--no-whole", action="store_true", help="skip the whole runs")
    parser.add_argument("--baseline", metavar="SRC",
                        help="also time rnnlab imported from this source directory (e.g. an older checkout's src/) "
                             "as 'rnnlab-base', in the same rounds")
    parser.add_argument("--data-dir", metavar="DIR", help="the data sets (default: $RNNLAB_DATA)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "e2e"),
                        help="directory for results.json/.md")
    args = parser.parse_args(argv)

    preset = PRESETS[args.preset]
    rounds = preset["rounds"] if args.rounds is None else args.rounds
    warmup, reps = preset["warmup"], preset["reps"]
    if rounds < 1:
        parser.error(f"rounds must be >= 1, got {rounds}")
    libs = ["rnnlab", "gemm"] + (["rnnlab-base"] if args.baseline else [])
    whole_libs = ["rnnlab"] + (["rnnlab-base"] if args.baseline else [])
    if importlib.util.find_spec("torch") is not None:
        libs.insert(1, "torch")
        whole_libs.insert(1, "torch")
    else:
        print("torch is not installed: measuring rnnlab and the GEMM floor only", file=sys.stderr)
    if args.no_whole:
        whole_libs = []

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    started = time.perf_counter()
    meta = {"started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), "preset": args.preset,
            "rounds": rounds, "warmup": warmup, "reps": reps, "baseline": args.baseline is not None,
            "machine": machine_info(),
            "command": ["<DATA>" if a == args.data_dir else _shown_arg(a, args)
                        for a in ["python -m benchmarks.e2e"] + list(sys.argv[1:] if argv is None else argv)]}
    with _data_env(args.data_dir), tempfile.TemporaryDirectory(prefix="rnnlab-e2e-") as tmp_name:
        tmp = Path(tmp_name)
        specs = [example_spec(EXAMPLES[name], args.preset) for name in args.examples]
        spec_path = _write_specs(specs, tmp / "specs.json")
        prepared = run_worker("rnnlab", spec_path, "--prepare", str(tmp), module=WORKER)["examples"]
        log(f"prepared {', '.join(prepared)} in {time.perf_counter() - started:.1f} s")
        for spec in specs:
            spec.update(prepared[spec["name"]])
        _write_specs(specs, tmp / "specs.json")
        per_round, info, whole_detail = measure(libs, whole_libs, specs, spec_path, rounds, warmup, reps, tmp, log,
                                                baseline=args.baseline)
    meta["libraries"] = info
    meta["load_average_end"] = machine_info()["load_average"]
    meta["wall_seconds"] = round(time.perf_counter() - started, 1)
    for spec in specs:
        spec.pop("batch_file", None)  # a temporary path of this machine
    result = {"meta": meta, "examples": specs, "per_round": per_round, "whole_runs": whole_detail,
              "summary": summarize(specs, per_round)}

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    markdown = to_markdown(result)
    (out / "results.md").write_text(markdown)
    print(markdown)
    log(f"wall time {meta['wall_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
