"""The main job: train a sentiment classifier on the UCI sentiment sentences and report it.

``run_demo(DemoConfig(...))`` (what ``rnnlab demo`` calls) loads the 3,000 labelled sentences
(amazon, imdb, yelp), shuffles them with the seed, holds out 20 % as a test set, fits a word
vocabulary on the training part only, and trains ``Embedding(mask_zero) -> LSTM (or GRU, tanh RNN;
bidirectional by default) -> Dense(2)`` with softmax cross-entropy and Adam through
``Sequential.fit``. It prints the model summary, one line per epoch (training loss and accuracy,
test loss and accuracy, seconds), the final test accuracy, and the predictions for three probe
phrases. Nothing is written to disk.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from rnnlab import losses, optim
from rnnlab.datasets import uci_sentiment
from rnnlab.functional import softmax
from rnnlab.layers import Dense, Embedding
from rnnlab.models import Sequential
from rnnlab.recurrent import GRU, LSTM, Bidirectional, SimpleRNN
from rnnlab.text import Vocabulary, pad_sequences, word_tokenize

__all__ = ["CELLS", "PROBES", "DemoConfig", "DemoResult", "run_demo", "build_classifier"]

CELLS = {"lstm": LSTM, "gru": GRU, "rnn": SimpleRNN}
PROBES = ("movie was good", "movie was bad", "movie was not good")
LABELS = ("negative", "positive")


@dataclass
class DemoConfig:
    """Settings of the demo run (the command-line options map onto these fields).

    ``limit`` keeps only the first N sentences after the seeded shuffle (for quick tests).
    ``maxlen`` cuts sentences to their first words (95 % of them have at most 30).
    ``min_freq`` maps training words seen fewer times to ``<unk>``, so the model also learns what
    an unseen word means.
    """

    data_dir: str | None = None
    epochs: int = 4
    seed: int = 0
    cell: str = "lstm"
    bidirectional: bool = True
    limit: int | None = None
    test_fraction: float = 0.2
    embed_dim: int = 32
    hidden_size: int = 32
    maxlen: int = 40
    min_freq: int = 2
    batch_size: int = 32
    lr: float = 5e-3
    clip_norm: float = 5.0

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(map(repr, CELLS))}; got {self.cell!r}")
        for key in ("epochs", "embed_dim", "hidden_size", "maxlen", "min_freq", "batch_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{key} must be a positive int, got {value!r}")
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 10):
            raise ValueError(f"limit must be an int >= 10 (enough for a train and a test part), got {self.limit!r}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"test_fraction must lie in (0, 1), got {self.test_fraction!r}")


@dataclass
class DemoResult:
    """What the run measured: the per-epoch history, the final test scores, the probe predictions."""

    history: dict[str, list[float]]
    test_loss: float
    test_accuracy: float
    predictions: dict[str, float]  # probe phrase -> probability of "positive"
    n_train: int
    n_test: int
    vocab_size: int
    seconds: float
    summary: str = field(repr=False, default="")


def build_classifier(vocab_size: int, config: DemoConfig) -> Sequential:
    """``Embedding(mask_zero=True) -> [Bidirectional](cell) -> Dense(2)``, seeded from ``config.seed``."""
    recurrent = CELLS[config.cell](config.hidden_size, seed=config.seed + 1)
    if config.bidirectional:
        recurrent = Bidirectional(recurrent)
    return Sequential([Embedding(vocab_size, config.embed_dim, mask_zero=True, seed=config.seed),
                       recurrent,
                       Dense(len(LABELS), seed=config.seed + 2)])


def _encode(vocab: Vocabulary, texts, maxlen: int) -> np.ndarray:
    ids, _ = pad_sequences([vocab.encode(word_tokenize(t)) or [vocab.unk_id] for t in texts], maxlen=maxlen)
    return ids  # (N, T); the Embedding's mask_zero makes the mask


def run_demo(config: DemoConfig, print_fn=print) -> DemoResult:
    """Load, split, train, evaluate and print; see the module docstring. Raises DatasetError on bad data."""
    start = time.perf_counter()
    texts, labels = uci_sentiment(config.data_dir)
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(texts))
    if config.limit is not None:
        order = order[: config.limit]
    n_test = max(1, round(config.test_fraction * len(order)))
    train_idx, test_idx = order[n_test:], order[:n_test]

    vocab = Vocabulary(min_freq=config.min_freq).fit([word_tokenize(texts[i]) for i in train_idx])
    x_train, y_train = _encode(vocab, [texts[i] for i in train_idx], config.maxlen), labels[train_idx]
    x_test, y_test = _encode(vocab, [texts[i] for i in test_idx], config.maxlen), labels[test_idx]
    print_fn(f"UCI sentiment sentences: {len(train_idx)} train / {len(test_idx)} test (seed {config.seed}), "
             f"vocabulary {len(vocab)} words (min_freq {config.min_freq}), sequences cut/padded to {config.maxlen} tokens")

    model = build_classifier(len(vocab), config)
    summary = model.summary(input_shape=(None, config.maxlen), print_fn=print_fn)

    loss = losses.get("cross_entropy")
    opt = optim.get("adam", lr=config.lr)
    shuffle_rng = np.random.default_rng(config.seed + 3)
    history: dict[str, list[float]] = {}
    for epoch in range(1, config.epochs + 1):
        tick = time.perf_counter()
        h = model.fit(x_train, y_train, loss=loss, optimizer=opt, epochs=1, batch_size=config.batch_size,
                      validation_data=(x_test, y_test), clip_norm=config.clip_norm, seed=shuffle_rng)
        for key, values in h.items():
            history.setdefault(key, []).extend(values)
        print_fn(f"epoch {epoch:2d}/{config.epochs}  loss {h['loss'][-1]:.4f}  accuracy {h['accuracy'][-1]:.4f}  "
                 f"test_loss {h['val_loss'][-1]:.4f}  test_accuracy {h['val_accuracy'][-1]:.4f}  "
                 f"({time.perf_counter() - tick:.1f} s)")

    final = model.evaluate(x_test, y_test, loss=loss)
    print_fn(f"test accuracy: {final['accuracy']:.4f} ({round(final['accuracy'] * len(test_idx))}/{len(test_idx)}), "
             f"test loss {final['loss']:.4f}")
    probs = softmax(model.predict(_encode(vocab, PROBES, config.maxlen)))[:, 1]  # P(positive)
    predictions = {}
    for phrase, p in zip(PROBES, probs):
        predictions[phrase] = float(p)
        print_fn(f"  {phrase!r:22s} -> {LABELS[int(p > 0.5)]:8s} (P(positive) = {p:.3f})")
    seconds = time.perf_counter() - start
    print_fn(f"done in {seconds:.1f} s")
    return DemoResult(history=history, test_loss=final["loss"], test_accuracy=final["accuracy"], predictions=predictions,
                      n_train=len(train_idx), n_test=len(test_idx), vocab_size=len(vocab), seconds=seconds, summary=summary)
