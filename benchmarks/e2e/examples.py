"""The examples the end-to-end benchmark trains, and how much of each a preset measures.

Each example is one of the project's example configurations (``examples/*.toml``), read by the
workers with rnnlab's own config loader, so the benchmark follows the files. A preset only adds
``--set`` overrides: none for ``full`` and ``quick`` (the real shapes), small shapes and a slice of
the data for ``tiny`` (which checks the machinery and times nothing meaningful).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Example:
    name: str
    config: str                     # relative to the project root
    label: str                      # for the table
    tiny: tuple[str, ...] = ()      # --set overrides of the tiny preset
    whole_steps: dict = field(default_factory=dict)   # preset -> train.max_steps of the whole run


EXAMPLES = {
    "ptb_small": Example(
        "ptb_small", "examples/ptb_small.toml", "PTB small",
        tiny=("data.limit=3000", "data.batch_size=4", "data.bptt=6", "model.hidden_size=16", "model.embedding_dim=16"),
        whole_steps={"full": 300, "quick": 60, "tiny": 3}),
    "charlm_shakespeare": Example(
        "charlm_shakespeare", "examples/charlm_shakespeare.toml", "Tiny Shakespeare char LM",
        tiny=("data.limit=3000", "data.batch_size=4", "data.bptt=8", "model.hidden_size=16"),
        whole_steps={"full": 100, "quick": 30, "tiny": 3}),
    "sentiment_mr": Example(
        "sentiment_mr", "examples/sentiment_mr.toml", "MR BiLSTM sentiment",
        tiny=("data.limit=200", "data.batch_size=10", "model.hidden_size=8", "model.embedding_dim=8"),
        whole_steps={"full": 200, "quick": 60, "tiny": 3}),
    "sunspots": Example(
        "sunspots", "examples/sunspots.toml", "sunspots forecasting",
        tiny=("data.limit=400", "data.lookback=24", "data.season=12", "data.batch_size=8", "model.hidden_size=8"),
        whole_steps={"full": 150, "quick": 60, "tiny": 3}),
}

#: preset -> rounds, warm-up passes, timed passes, training batches per pass, validation batches
#: evaluated (None: the whole validation split)
PRESETS = {
    "full": {"rounds": 7, "warmup": 1, "reps": 3, "train_batches": 20, "eval_batches": None},
    "quick": {"rounds": 3, "warmup": 1, "reps": 2, "train_batches": 10, "eval_batches": 40},
    "tiny": {"rounds": 1, "warmup": 1, "reps": 1, "train_batches": 2, "eval_batches": 2},
}


def example_spec(example: Example, preset: str) -> dict:
    """What every worker of one example is given (the prepare step adds the model and the batch shapes)."""
    p = PRESETS[preset]
    return {"name": example.name, "label": example.label, "config": example.config,
            "overrides": list(example.tiny) if preset == "tiny" else [],
            "train_batches": p["train_batches"], "eval_batches": p["eval_batches"],
            "whole_steps": example.whole_steps[preset]}


def whole_run_overrides(spec: dict) -> list[str]:
    """``--set`` overrides of a whole run: the example's, then ``max_steps`` and just enough epochs to reach it."""
    steps = spec["whole_steps"]
    epochs = max(1, math.ceil(steps / spec["batches_per_epoch"]))
    return [*spec["overrides"], f"train.max_steps={steps}", f"train.epochs={epochs}"]


def model_spec(config, *, inputs: str, n_inputs: int, n_outputs: int, sequence_output: bool, loss: str) -> dict:
    """The model and the update of a run configuration, as plain data for the PyTorch side and the floor.

    ``config`` is rnnlab's ``RunConfig``; the other arguments are what its data builder found (the
    vocabulary size, the classes, the features).
    """
    m, t, d = config.model, config.train, config.data
    return {
        "task": d.task, "inputs": inputs, "n_inputs": n_inputs, "n_outputs": n_outputs,
        "sequence_output": sequence_output, "masked": d.task == "sentiment", "stateful": d.task == "language_model",
        "embedding_dim": m.embedding_dim if inputs == "ids" else None, "cell": m.cell, "hidden_size": m.hidden_size,
        "num_layers": m.num_layers, "bidirectional": m.bidirectional, "dropout": m.dropout, "init": m.init,
        "dtype": m.dtype, "loss": loss, "optimizer": t.optimizer, "optimizer_args": dict(t.optimizer_args),
        "lr": t.lr, "clip_norm": t.clip_norm, "clip_value": t.clip_value, "metrics": list(t.metrics),
        "checkpoint_every_steps": t.checkpoint_every_steps, "patience": t.patience, "monitor": t.monitor,
        "mode": t.mode, "min_delta": t.min_delta, "restore_best": t.restore_best,
        "unit": "tokens" if sequence_output else "samples",
    }


def describe(spec: dict, batch_size: int, steps) -> str:
    """``2x200 LSTM, emb 200, V=10000, batch 20 x 20, SGD, clip 0.25``."""
    m = spec["model"]
    rnn = f"{m['num_layers']}x{m['hidden_size']} {'Bi' if m['bidirectional'] else ''}{m['cell'].upper()}"
    inputs = (f"emb {m['embedding_dim']}" if m["embedding_dim"] else "one-hot") + f", V={m['n_inputs']}" \
        if m["inputs"] == "ids" else f"{m['n_inputs']} feature(s)"
    parts = [rnn, inputs, f"batch {batch_size} x {steps}", m["optimizer"].upper() if m["optimizer"] == "sgd"
             else m["optimizer"].capitalize()]
    if m["clip_norm"]:
        parts.append(f"clip {m['clip_norm']:g}")
    if m["dropout"]:
        parts.append(f"dropout {m['dropout']:g}")
    return ", ".join(parts)
