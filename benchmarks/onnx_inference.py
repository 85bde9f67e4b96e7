"""rnnlab against ONNX Runtime on one model: ``python -m benchmarks.onnx_inference [--quick] [--rounds N] [--out DIR]``.

The model is a character language model, ``Embedding(V, E) -> LSTM(H) x L -> Dense(V)`` with a softmax
head in the graph and none in rnnlab (the softmax of one row is negligible next to the LSTM), built
once, saved with :func:`rnnlab.io.save` and exported with :func:`rnnlab.onnx.export`. Two cases:

- ``batch``: the outputs of a (B, T) batch of ids, every step (inference, rnnlab under ``no_grad``);
- ``step``: one generation step, B = 1, T = 1, the states carried in and out (rnnlab through a state
  map, ONNX Runtime through the graph's ``state_in``/``state_out``).

Method, as :mod:`benchmarks.run`: each library runs in a process of its own; the processes alternate
within a round and the order rotates from round to round; each worker warms each case up, times it
``reps`` times (:func:`benchmarks.timing.timed`) and keeps the median; a case's result is the median
over rounds and the ratio rnnlab / ONNX Runtime is the median of the per-round ratios. Both libraries
use their default threads (NumPy's BLAS, ONNX Runtime's intra-op pool), as a user gets them; the
machine, the load average and the versions are recorded. Writes ``results.json`` and ``results.md``
into ``--out`` (default ``benchmarks/results/onnx``) and prints the markdown.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.envinfo import machine_info
from benchmarks.timing import timed

ROOT = Path(__file__).resolve().parent.parent
LIBS = ("rnnlab", "onnxruntime")
PRESETS = {
    # name: (model: V, E, H, L; batch case: B, T; rounds, warmup, reps)
    "full": ({"V": 65, "E": 64, "H": 256, "L": 2}, {"B": 32, "T": 128}, 7, 2, 5),
    "quick": ({"V": 65, "E": 32, "H": 128, "L": 2}, {"B": 16, "T": 64}, 3, 2, 5),
    "tiny": ({"V": 7, "E": 4, "H": 8, "L": 1}, {"B": 2, "T": 5}, 1, 1, 1),  # the smoke test's
}
SEED = 0


# ---------------------------------------------------------------------- one library, in its own process
def _rnnlab_cases(model_dir: Path, batch: dict, rng) -> dict:
    from rnnlab.io import load
    from rnnlab.nn.grad_mode import no_grad
    from rnnlab.nn.state import forward_with_states

    model = load(model_dir / "model")
    V = json.loads((model_dir / "spec.json").read_text())["V"]
    ids = rng.integers(0, V, size=(batch["B"], batch["T"]))
    token = rng.integers(0, V, size=(1, 1))
    states: dict = {}

    def run_batch():
        with no_grad():
            return model(ids)

    def step():
        nonlocal states
        with no_grad():
            y, states = forward_with_states(model, token, states)
        return y

    return {"batch": run_batch, "step": step}


def _onnxruntime_cases(model_dir: Path, batch: dict, rng) -> dict:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # the optional state inputs are overridable initializers: a warning each
    sess = ort.InferenceSession(str(model_dir / "model.onnx"), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    V = json.loads((model_dir / "spec.json").read_text())["V"]
    ids = rng.integers(0, V, size=(batch["B"], batch["T"]))
    token = rng.integers(0, V, size=(1, 1))
    states: dict = {}

    def step():
        nonlocal states
        out = dict(zip(names, sess.run(names, {"x": token, **states})))
        states = {k.replace("state_out", "state_in"): v for k, v in out.items() if k != "y"}
        return out["y"]

    return {"batch": lambda: sess.run(["y"], {"x": ids}), "step": step}


def worker(lib: str, model_dir: str, preset: str) -> dict:
    _, batch, _, warmup, reps = PRESETS[preset]
    build = {"rnnlab": _rnnlab_cases, "onnxruntime": _onnxruntime_cases}[lib]
    cases = build(Path(model_dir), batch, np.random.default_rng(SEED))
    times = {name: statistics.median(timed(fn, warmup, reps)) for name, fn in cases.items()}
    if lib == "onnxruntime":
        import onnxruntime

        info = {"onnxruntime": onnxruntime.__version__}
    else:
        import rnnlab

        info = {"rnnlab": rnnlab.__version__, "numpy": np.__version__}
    return {"lib": lib, "times": times, "info": info}


# ---------------------------------------------------------------------- the rounds
def _build(model_dir: Path, spec: dict) -> None:
    import rnnlab
    from rnnlab import LSTM, Dense, Embedding, Sequential

    layers = [Embedding(spec["V"], spec["E"], seed=SEED)]
    layers += [LSTM(spec["H"], return_sequences=True, seed=SEED + 1 + i) for i in range(spec["L"])]
    model = Sequential(layers + [Dense(spec["V"], seed=SEED)])
    model.build((None, None))
    rnnlab.io.save(model, model_dir / "model")
    rnnlab.onnx.export(model, model_dir / "model.onnx", head="softmax")
    (model_dir / "spec.json").write_text(json.dumps(spec), encoding="utf-8")


def _run_worker(lib: str, model_dir: Path, preset: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-m", "benchmarks.onnx_inference", "--worker", lib, str(model_dir),
                           "--preset", preset], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark worker {lib} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout)


def markdown(result: dict) -> str:
    m, spec = result["meta"], result["meta"]["model"]
    lines = [f"# rnnlab vs ONNX Runtime: inference ({m['preset']})", "",
             f"Model: Embedding({spec['V']}, {spec['E']}) -> LSTM({spec['H']}) x {spec['L']} -> Dense({spec['V']}), "
             f"float32. Batch case: B={m['batch']['B']}, T={m['batch']['T']}; step case: B=1, T=1 with states.",
             f"Machine: {m['machine']['cpu']}, {m['machine']['logical_cpus']} logical CPUs, load average "
             f"{m['machine']['load_average']} at the start (take the ratios, not the absolute times, on a shared "
             f"machine). {m['rounds']} rounds, libraries alternated, one process each.", "",
             "| case | rnnlab (ms) | ONNX Runtime (ms) | rnnlab / ORT (median of rounds) |", "|---|---|---|---|"]
    for row in result["summary"]:
        lines.append(f"| {row['case']} | {row['rnnlab_ms']:.3f} | {row['onnxruntime_ms']:.3f} | "
                     f"{row['ratio']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller model and 3 rounds: under a minute")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "onnx"))
    parser.add_argument("--worker", nargs=2, metavar=("LIB", "MODEL_DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None, help="full, quick or tiny (a smoke test)")
    args = parser.parse_args(argv)
    preset = args.preset or ("quick" if args.quick else "full")
    if args.worker:
        json.dump(worker(args.worker[0], args.worker[1], preset), sys.stdout)
        return 0

    spec, batch, rounds, _, _ = PRESETS[preset]
    rounds = args.rounds or rounds
    machine = machine_info()
    per_round: dict[str, dict[str, list[float]]] = {lib: {} for lib in LIBS}
    info = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp)
        _build(model_dir, spec)
        for r in range(rounds):
            order = LIBS[r % 2:] + LIBS[:r % 2]  # the order rotates from round to round
            for lib in order:
                out = _run_worker(lib, model_dir, preset)
                info[lib] = out["info"]
                for case, t in out["times"].items():
                    per_round[lib].setdefault(case, []).append(t)
    summary = []
    for case in per_round["rnnlab"]:
        a, b = per_round["rnnlab"][case], per_round["onnxruntime"][case]
        summary.append({"case": case, "rnnlab_ms": 1e3 * statistics.median(a),
                        "onnxruntime_ms": 1e3 * statistics.median(b),
                        "ratio": statistics.median(x / y for x, y in zip(a, b))})
    result = {"meta": {"preset": preset, "model": spec, "batch": batch, "rounds": rounds, "machine": machine,
                       "libraries": info, "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                       "seconds": round(time.perf_counter() - start, 1)},
              "per_round": per_round, "summary": summary}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    text = markdown(result)
    (out / "results.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
