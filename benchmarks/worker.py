"""One library's measurements, in a process of its own: ``python -m benchmarks.worker LIB CASES.json``.

``LIB`` is ``rnnlab``, ``rnnlab-base`` (rnnlab from the tree on ``PYTHONPATH``), ``torch`` or ``gemm``
(the GEMM skeleton: the same matrix products as rnnlab, in NumPy, with no elementwise work). The
worker builds every case, warms it up, times it ``reps`` times and prints one JSON object on stdout:
``{"lib", "times": {case name: [seconds, ...]}, "info"}``.
With ``--memory`` it instead runs one case's training step once after a warm-up and reports the
resident-set peak of that step (``/proc/self/status`` VmHWM after resetting it through
``/proc/self/clear_refs``), in bytes.

Each library runs alone in its process because OpenBLAS and OpenMP worker threads keep spinning
after a call and would steal the other library's cores: on a 2-core machine, timings taken in one
process for both libraries are wrong.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys

import numpy as np

from benchmarks.timing import timed

SEED = 0


# ---------------------------------------------------------------------- rnnlab
def _rnnlab_model(case, return_sequences=True, return_state=False):
    import rnnlab

    layer_class = {"lstm": rnnlab.LSTM, "gru": rnnlab.GRU, "rnn": rnnlab.SimpleRNN}[case["cell"]]
    if case["L"] == 1:
        return layer_class(case["H"], input_size=case["D"], return_sequences=return_sequences,
                           return_state=return_state, seed=SEED, dtype="float32")
    return rnnlab.stack(layer_class, case["H"], case["L"], input_size=case["D"], seed=SEED, dtype="float32")


def build_rnnlab(case, rng):
    T, B, D, H = case["T"], case["B"], case["D"], case["H"]
    if case["kind"] == "generate":
        layer = _rnnlab_model(case, return_sequences=False, return_state=True)
        xs = rng.standard_normal((T, B, 1, D)).astype(np.float32)
        n_states = 2 if case["cell"] == "lstm" else 1

        def generate():
            state = [np.zeros((B, H), np.float32) for _ in range(n_states)]
            for x_t in xs:
                _, *state = layer(x_t, initial_state=state)
            return state
        return generate

    model = _rnnlab_model(case)
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    R = rng.standard_normal((B, T, H)).astype(np.float32)  # dL/dy for L = sum(y * R)
    if case["kind"] == "forward":
        return lambda: model(x)

    # as PyTorch's, whose input does not require grad: no dL/dx of the data (a --baseline tree from
    # before input_grad existed always computes it)
    skip_dx = {"input_grad": False} if "input_grad" in inspect.signature(model.backward).parameters else {}

    def train_step():
        model.zero_grad()
        model(x, training=True)
        model.backward(R, **skip_dx)
    return train_step


# ---------------------------------------------------------------------- torch
def build_torch(case, rng):
    import torch

    torch.manual_seed(SEED)
    T, B, D, H, L = case["T"], case["B"], case["D"], case["H"], case["L"]
    if case["kind"] == "generate":
        xs = torch.from_numpy(rng.standard_normal((T, B, D)).astype(np.float32))
        cell_class = {"lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[case["cell"]]
        layer_class = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[case["cell"]]
        cell, layer = cell_class(D, H), layer_class(D, H)
        lstm = case["cell"] == "lstm"

        def generate_cell():
            with torch.inference_mode():
                state = (torch.zeros(B, H), torch.zeros(B, H)) if lstm else torch.zeros(B, H)
                for x_t in xs:
                    state = cell(x_t, state)
            return state

        def generate_layer():
            with torch.inference_mode():
                state = (torch.zeros(1, B, H), torch.zeros(1, B, H)) if lstm else torch.zeros(1, B, H)
                for x_t in xs:
                    _, state = layer(x_t[None], state)
            return state
        return {"": generate_cell, "#layer": generate_layer}

    module_class = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[case["cell"]]
    model = module_class(D, H, num_layers=L, batch_first=True)
    x = torch.from_numpy(rng.standard_normal((B, T, D)).astype(np.float32))
    R = torch.from_numpy(rng.standard_normal((B, T, H)).astype(np.float32))
    if case["kind"] == "forward":
        def forward():
            with torch.inference_mode():
                return model(x)
        return forward

    def train_step():
        model.zero_grad()
        y, _ = model(x)
        y.backward(R)
    return train_step


# ---------------------------------------------------------------------- the GEMM skeleton
def build_gemm(case, rng):
    """rnnlab's matrix products alone, preallocated, no elementwise work: the floor of any implementation."""
    G = {"lstm": 4, "gru": 3, "rnn": 1}[case["cell"]]
    T, B, D, H, L = case["T"], case["B"], case["D"], case["H"], case["L"]
    f32 = np.float32

    if case["kind"] == "generate":
        U = rng.standard_normal((G * H, D)).astype(f32)
        W = rng.standard_normal((G * H, H)).astype(f32)
        xs = rng.standard_normal((T, B, D)).astype(f32)
        h = rng.standard_normal((B, H)).astype(f32)
        z, zh = np.empty((B, G * H), f32), np.empty((B, G * H), f32)

        def generate():
            for x_t in xs:
                np.matmul(x_t, U.T, out=z)
                np.matmul(h, W.T, out=zh)
        return generate

    layers = []
    for layer in range(L):
        Din = D if layer == 0 else H
        layers.append({
            "U": rng.standard_normal((G * H, Din)).astype(f32), "W": rng.standard_normal((G * H, H)).astype(f32),
            "W_T": np.empty((H, G * H), f32),  # W^T, contiguous, as rnnlab's forward loop multiplies by it
            "X": rng.standard_normal((T * B, Din)).astype(f32), "S": rng.standard_normal((T + 1, B, H)).astype(f32),
            "Z": np.empty((T, B, G * H), f32), "zh": np.empty((B, G * H), f32), "dh": np.empty((B, H), f32),
            "dU": np.empty((G * H, Din), f32), "dW": np.empty((G * H, H), f32), "dX": np.empty((T * B, Din), f32),
        })

    for p in layers:  # made once here, outside the timing: rnnlab makes it once per call
        np.copyto(p["W_T"], p["W"].T)

    def forward():
        for p in layers:
            np.matmul(p["X"], p["U"].T, out=p["Z"].reshape(T * B, -1))
            for t in range(T):
                np.matmul(p["S"][t], p["W_T"], out=p["zh"])

    def train_step():
        forward()
        for p in reversed(layers):
            for t in reversed(range(T)):
                np.matmul(p["Z"][t], p["W"], out=p["dh"])
            dG = p["Z"].reshape(T * B, -1)
            np.matmul(dG.T, p["X"], out=p["dU"])
            np.matmul(dG.T, p["S"][:-1].reshape(T * B, H), out=p["dW"])
            if p is not layers[0]:  # the data's gradient is not needed (rnnlab and PyTorch skip it too)
                np.matmul(dG, p["U"], out=p["dX"])
    return forward if case["kind"] == "forward" else train_step


#: "rnnlab-base" is rnnlab imported from another source tree (``run.py --baseline``), for before/after ratios.
BUILDERS = {"rnnlab": build_rnnlab, "rnnlab-base": build_rnnlab, "torch": build_torch, "gemm": build_gemm}


# ---------------------------------------------------------------------- measuring
def time_cases(lib: str, cases: list[dict], warmup: int, reps: int) -> dict[str, list[float]]:
    times = {}
    for case in cases:
        fns = BUILDERS[lib](case, np.random.default_rng(SEED))
        if not isinstance(fns, dict):
            fns = {"": fns}
        for suffix, fn in fns.items():
            times[case["name"] + suffix] = timed(fn, warmup, reps)
    return times


def _proc_status(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure_memory(lib: str, case: dict) -> dict:
    """Peak resident set of one training step, after a warm-up step, in bytes."""
    fn = BUILDERS[lib](case, np.random.default_rng(SEED))
    fn()
    rss_before = _proc_status("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        resettable = True
    except OSError:
        resettable = False
    fn()
    peak = _proc_status("VmHWM")
    return {"rss_before": rss_before, "peak": peak, "step": peak - rss_before if resettable else None,
            "hwm_reset": resettable}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lib", choices=sorted(BUILDERS))
    parser.add_argument("cases", help="JSON file with the list of cases")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--memory", action="store_true", help="measure the peak memory of the first case's step")
    args = parser.parse_args(argv)
    with open(args.cases) as fh:
        cases = json.load(fh)
    from benchmarks.envinfo import library_info

    if args.memory:
        out = {"lib": args.lib, "memory": measure_memory(args.lib, cases[0])}
    else:
        out = {"lib": args.lib, "times": time_cases(args.lib, cases, args.warmup, args.reps)}
    out["info"] = library_info(args.lib)
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
