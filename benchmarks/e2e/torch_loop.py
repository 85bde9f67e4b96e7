"""Plain PyTorch training and evaluation loops for the examples: the other side of the comparison.

Written the way a PyTorch user writes them, for the model an example's configuration describes
(``examples.model_spec``): ``nn.Embedding`` (or ``F.one_hot`` for the character model) ->
``nn.Dropout`` (after an embedding only) -> ``nn.LSTM(batch_first=True, dropout=...)`` -> ``nn.Dropout`` ->
``nn.Linear``; ``F.cross_entropy`` or ``F.mse_loss``; ``torch.optim`` with the configuration's optimizer,
learning rate and arguments; ``clip_grad_norm_``; the language models' state carried from window to window
with ``.detach()``; the padded sentiment batches through ``pack_padded_sequence`` (the final
states of both directions, as rnnlab's masked ``Bidirectional`` gives); evaluation under
``torch.no_grad()``. Nothing of rnnlab's model code is imported here.
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

SEED = 0


def set_threads() -> int:
    """As many intra-op threads as NumPy's BLAS uses (the cores, by default): both sides get the same."""
    n = None
    try:
        from threadpoolctl import threadpool_info

        n = max((p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"), default=None)
    except ImportError:
        pass
    n = n or os.cpu_count() or 1
    torch.set_num_threads(n)
    return n


class TBatch(NamedTuple):
    x: torch.Tensor
    y: torch.Tensor
    lengths: torch.Tensor | None   # sentiment: the valid steps of each row (from the mask)
    new_sequence: bool
    n: int                         # targets in the batch (the loss's weight)


def to_torch(x, y, mask, new_sequence: bool) -> TBatch:
    """A batch of rnnlab's data code as tensors (what a PyTorch collate function would hand over)."""
    x_t, y_t = torch.from_numpy(np.asarray(x)), torch.from_numpy(np.asarray(y))
    lengths = None if mask is None else torch.from_numpy(np.asarray(mask).sum(axis=1)).clamp_(min=1)
    return TBatch(x_t, y_t, lengths, bool(new_sequence), int(np.size(y)))


class Model(nn.Module):
    def __init__(self, spec: dict):
        super().__init__()
        self.spec = spec
        ids = spec["inputs"] == "ids"
        p = spec["dropout"] or 0.0
        padding = 0 if spec["masked"] else None
        self.embedding = (nn.Embedding(spec["n_inputs"], spec["embedding_dim"], padding_idx=padding)
                          if ids and spec["embedding_dim"] else None)
        self.one_hot = spec["n_inputs"] if ids and not spec["embedding_dim"] else None
        features = (spec["embedding_dim"] or spec["n_inputs"]) if ids else spec["n_inputs"]
        self.drop_in = nn.Dropout(p) if self.embedding is not None and p else None  # none on one-hot inputs
        rnn_class = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[spec["cell"]]
        self.lstm = spec["cell"] == "lstm"
        self.bidirectional = spec["bidirectional"]
        self.rnn = rnn_class(features, spec["hidden_size"], num_layers=spec["num_layers"], batch_first=True,
                             dropout=p if spec["num_layers"] > 1 else 0.0, bidirectional=spec["bidirectional"])
        self.drop_out = nn.Dropout(p) if p else None
        self.out = nn.Linear(spec["hidden_size"] * (2 if spec["bidirectional"] else 1), spec["n_outputs"])
        if spec["init"] and spec["init"].startswith("uniform:"):  # Zaremba et al.: every weight U(-a, a)
            a = float(spec["init"].split(":")[1])
            for w in self.parameters():
                nn.init.uniform_(w, -a, a)

    def forward(self, x, state=None, lengths=None):
        if self.embedding is not None:
            h = self.embedding(x)
        elif self.one_hot is not None:
            h = F.one_hot(x, self.one_hot).float()
        else:
            h = x
        if self.drop_in is not None:
            h = self.drop_in(h)
        if lengths is not None:  # padded batch: the final state of each row's last valid step (both directions)
            _, state = self.rnn(pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False))
            h_n = state[0] if self.lstm else state
            y = torch.cat([h_n[-2], h_n[-1]], dim=1) if self.bidirectional else h_n[-1]
        else:
            y, state = self.rnn(h, state)
            if not self.spec["sequence_output"]:
                y = y[:, -1]
        if self.drop_out is not None:
            y = self.drop_out(y)
        return self.out(y), state


def build(spec: dict) -> Model:
    torch.manual_seed(SEED)
    return Model(spec)


def make_optimizer(model: Model, spec: dict) -> torch.optim.Optimizer:
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
           "rmsprop": torch.optim.RMSprop, "adagrad": torch.optim.Adagrad}[spec["optimizer"]]
    args = dict(spec["optimizer_args"])
    if "betas" in args:
        args["betas"] = tuple(args["betas"])
    return cls(model.parameters(), lr=spec["lr"], **args)


def _loss(spec, out, y):
    if spec["loss"] == "mse":
        return F.mse_loss(out, y)
    return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))


def _detach(state):
    if state is None:
        return None
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


class Trainer:
    """The training step and the evaluation loop of one model (a plain loop, no framework)."""

    def __init__(self, model: Model, spec: dict):
        self.model, self.spec = model, spec
        self.optimizer = make_optimizer(model, spec)
        self.state = None
        self.step = 0
        self.running = {"loss": 0.0, "n": 0, "correct": 0, "abs": 0.0}

    def train_batch(self, b: TBatch) -> float:
        """One update: forward, loss, backward, clipping, optimizer step; the running loss and metric."""
        spec = self.spec
        state = None if (b.new_sequence or not spec["stateful"]) else _detach(self.state)
        self.optimizer.zero_grad()
        out, self.state = self.model(b.x, state, b.lengths)
        loss = _loss(spec, out, b.y)
        loss.backward()
        if spec["clip_value"]:
            nn.utils.clip_grad_value_(self.model.parameters(), spec["clip_value"])
        if spec["clip_norm"]:
            nn.utils.clip_grad_norm_(self.model.parameters(), spec["clip_norm"])
        self.optimizer.step()
        self.step += 1
        value = loss.item()
        r = self.running
        r["loss"] += value * b.n
        r["n"] += b.n
        if "accuracy" in spec["metrics"]:
            r["correct"] += (out.detach().argmax(-1) == b.y).sum().item()
        if "mae" in spec["metrics"]:
            r["abs"] += (out.detach() - b.y).abs().sum().item()
        return value

    @torch.no_grad()
    def evaluate(self, batches) -> dict:
        """Mean loss and the metrics over ``batches`` (the state carried across a stream's windows)."""
        spec = self.spec
        self.model.eval()
        total = {"loss": 0.0, "n": 0, "correct": 0, "abs": 0.0}
        state = None
        for b in batches:
            if b.new_sequence or not spec["stateful"]:
                state = None
            out, state = self.model(b.x, state, b.lengths)
            total["loss"] += _loss(spec, out, b.y).item() * b.n
            total["n"] += b.n
            if "accuracy" in spec["metrics"]:
                total["correct"] += (out.argmax(-1) == b.y).sum().item()
            if "mae" in spec["metrics"]:
                total["abs"] += (out - b.y).abs().sum().item()
        self.model.train()
        return results(spec, total)


def results(spec: dict, total: dict) -> dict:
    n = max(total["n"], 1)
    out = {"loss": total["loss"] / n}
    for name in spec["metrics"]:
        out[name] = {"perplexity": lambda: math.exp(min(out["loss"], 700.0)),
                     "bits_per_character": lambda: out["loss"] / math.log(2), "accuracy": lambda: total["correct"] / n,
                     "mse": lambda: out["loss"], "mae": lambda: total["abs"] / n}.get(name, lambda: math.nan)()
    return out
