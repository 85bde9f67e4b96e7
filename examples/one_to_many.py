"""One-to-many: from one input vector, generate a whole sequence (here, a fixed "melody" per class).

Each of 4 classes owns a sequence of 6 notes (tokens 0-7). The input is a noisy one-hot code of
the class; the model must write the class's sequence. Two set-ups are trained:

- ``input_mode="first"``: the input enters at the first step only, and the LSTM must carry it;
- ``input_mode="state", feedback=True``: the input sets the initial state through a learned bridge
  and each step reads the previous note (teacher forcing in training, its own choice when
  generating), as image-captioning models do.

    python examples/one_to_many.py [--steps 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import rnnlab
from rnnlab.nn.seq2seq import OneToMany

CLASSES, NOTES, LENGTH = 4, 8, 6
MELODIES = np.array([[0, 1, 2, 3, 4, 5],
                     [5, 4, 3, 2, 1, 0],
                     [7, 7, 0, 0, 7, 7],
                     [2, 6, 2, 6, 3, 3]])  # (classes, LENGTH)


def make_batch(rng: np.random.Generator, batch: int, noise: float = 0.1):
    """Inputs (B, CLASSES): one-hot class codes plus Gaussian noise; targets (B, LENGTH): the melodies."""
    labels = rng.integers(0, CLASSES, size=batch)
    x = np.eye(CLASSES, dtype=np.float32)[labels] + noise * rng.standard_normal((batch, CLASSES)).astype(np.float32)
    return x, MELODIES[labels], labels


def build_model(input_mode: str = "first", feedback: bool = False, hidden: int = 32, seed: int = 0) -> OneToMany:
    layer = rnnlab.LSTM(hidden, return_sequences=True, return_state=feedback, seed=seed)
    return OneToMany(layer, rnnlab.Dense(NOTES, seed=seed + 1), LENGTH, input_mode=input_mode, feedback=feedback,
                     seed=seed + 2)


def train(model: OneToMany, steps: int, seed: int = 0, batch: int = 32, lr: float = 0.01) -> list[float]:
    rng = np.random.default_rng(seed)
    loss_fn = rnnlab.losses.get("cross_entropy")
    opt = rnnlab.optim.get("adam", lr=lr)
    history = []
    for _ in range(steps):
        x, targets, _ = make_batch(rng, batch)
        model.zero_grad()
        logits = model((x, targets) if model.feedback else x, training=True)  # (B, LENGTH, NOTES)
        history.append(loss_fn(logits, targets))
        model.backward(loss_fn.backward())
        rnnlab.optim.clip_grad_norm(model, 5.0)
        opt.step(model)
    return history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    x, targets, labels = make_batch(np.random.default_rng(args.seed + 1000), 200)
    for mode, feedback in (("first", False), ("state", True)):
        model = build_model(mode, feedback, seed=args.seed)
        start = time.perf_counter()
        losses = train(model, args.steps, seed=args.seed)
        generated = model.generate(x)  # (200, LENGTH)
        exact = np.mean((generated == targets).all(axis=1))
        print(f"input_mode={mode!r:8s} feedback={feedback!s:5s}: final loss {losses[-1]:.4f}, "
              f"{exact:.1%} of 200 new inputs generate their melody exactly ({time.perf_counter() - start:.1f} s)")
        for c in range(CLASSES):
            print(f"    class {c}: {generated[labels == c][0].tolist()}  (target {MELODIES[c].tolist()})")


if __name__ == "__main__":
    main()
