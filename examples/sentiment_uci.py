"""Sentiment classification of the UCI sentiment sentences, step by step with the library.

The same pipeline as ``rnnlab demo sentiment``, written out: load -> tokenize -> vocabulary -> pad + mask
-> Embedding(mask_zero) -> bidirectional LSTM -> Dense(2) -> ``fit`` -> evaluate -> predict.

    RNNLAB_DATA=/path/to/data python examples/sentiment_uci.py [--data-dir DIR] [--epochs 4]
"""

from __future__ import annotations

import argparse

import numpy as np

import rnnlab
from rnnlab.data.datasets import uci_sentiment
from rnnlab.data.text import Vocabulary, pad_sequences, word_tokenize
from rnnlab.nn.functional import softmax


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="data directory (default: $RNNLAB_DATA)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    texts, labels = uci_sentiment(args.data_dir)  # 3,000 sentences, labels 0/1, checksums verified
    order = np.random.default_rng(args.seed).permutation(len(texts))
    test, train = order[:600], order[600:]  # a seeded 80/20 split

    tokens = [word_tokenize(t) for t in texts]  # lower-cased words, punctuation as tokens
    vocab = Vocabulary(min_freq=2).fit([tokens[i] for i in train])  # <pad>=0, <unk>=1, then by frequency

    def encode(token_lists):
        ids, _mask = pad_sequences([vocab.encode(t) for t in token_lists], maxlen=40)  # (N, 40); 0 = padding
        return ids

    x_train, x_test = encode([tokens[i] for i in train]), encode([tokens[i] for i in test])
    y_train, y_test = labels[train], labels[test]

    model = rnnlab.Sequential([
        rnnlab.Embedding(len(vocab), 32, mask_zero=True, seed=args.seed),  # the mask follows the padding
        rnnlab.Bidirectional(rnnlab.LSTM(32, seed=args.seed + 1)),  # last valid step of each direction
        rnnlab.Dense(2, seed=args.seed + 2),  # logits of negative / positive
    ])
    model.summary(input_shape=(None, 40))
    model.fit(x_train, y_train, loss="cross_entropy", optimizer=rnnlab.optim.get("adam", lr=5e-3),
              epochs=args.epochs, batch_size=32, validation_data=(x_test, y_test), clip_norm=5.0, seed=args.seed,
              verbose=True)
    print(f"test accuracy: {model.evaluate(x_test, y_test, loss='cross_entropy')['accuracy']:.3f}")

    phrases = ["movie was good", "movie was bad", "movie was not good"]
    p_positive = softmax(model.predict(encode([word_tokenize(p) for p in phrases])))[:, 1]
    for phrase, p in zip(phrases, p_positive):
        print(f"  {phrase!r:22s} P(positive) = {p:.3f}")


if __name__ == "__main__":
    main()
