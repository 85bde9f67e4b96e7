"""The ``tagging`` task: one tag per token (part of speech, named entities), from CoNLL-style files.

Data: :func:`rnnlab.data.tagging.read_conll` reads ``[data] path`` (split by sentence as every task
on files splits, :func:`rnnlab.lab.userdata.split_indices`: seeded, ``val_frac`` and ``test_frac``
of the sentences, defaults 0.1 and 0.1) or ``train_path`` with optional
``val_path`` and ``test_path``. The vocabulary (``<pad>``, ``<unk>``, then the training tokens) and
the tag set (the training tags, sorted) come from the training part only: an unknown token reads as
``<unk>``, an unknown tag in the validation or test part is an error naming the tag, file and line.

Model: ``Embedding`` (or one-hot) -> recurrent layers (bidirectional unless ``[model]
bidirectional = false``) returning every step -> ``Dense(K)`` per step; the padding is masked in
the recurrence, the loss and the metrics. Metrics: token accuracy (padding excluded) and, when the
tags follow BIO/IOB2, entity-level precision, recall and F1 (:func:`rnnlab.data.tagging.chunk_scores`).

The run directory also holds ``tags.json`` (the tag names, in output order).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rnnlab.data.batches import ArrayBatches
from rnnlab.data.readers import detect_format, resolve_paths, split_suffix
from rnnlab.data.tagging import Sentence, chunk_scores, is_bio, read_conll, read_token_lines
from rnnlab.data.text import Vocabulary, pad_sequences
from rnnlab.lab.config import ConfigError, DataConfig, RunConfig
from rnnlab.lab.userdata import data_errors, split_fractions, split_indices
from rnnlab.nn.grad_mode import no_grad
from rnnlab.nn.state import forward_with_states

__all__ = ["TAGS_FILE", "build", "read_tags", "file_batches", "predict_file"]

#: a tagging run's tag names, in the model's output order
TAGS_FILE = "tags.json"


def _read(source, d: DataConfig, *, tags: bool = True) -> list[Sentence]:
    """The sentences of ``source``: a path, directory or glob (str), or a list of files."""
    path_text = source if isinstance(source, str) else ", ".join(map(str, source))
    with data_errors():  # a data file error is a usage error: one line, exit code 2
        paths = resolve_paths(source) if isinstance(source, str) else [Path(p) for p in source]
        if tags:
            fmt = detect_format(paths, d.format)
        else:  # prediction: the file's own suffix (.conll or .txt), else the training files' format
            known = {split_suffix(p)[0] for p in paths} <= {".conll", ".txt"}
            fmt = detect_format(paths, None if known or d.format is None else d.format)
        if fmt == "txt" and not tags:
            return read_token_lines(paths)
        if fmt != "conll":
            also = "" if tags else " or .txt"
            raise ConfigError(f"tagging reads CoNLL-style files (.conll, optionally .gz/.bz2/.xz){also}; "
                              f"{path_text!r} is {fmt!r}")
        return read_conll(paths, d.token_column, d.tag_column if tags else None)


def _check_known_tags(part: str, sentences: list[Sentence], known: set[str]) -> None:
    for s in sentences:
        for tag, line in zip(s.tags, s.lines):
            if tag not in known:
                raise ConfigError(f"tag {tag!r} in the {part} part ({s.source!r} line {line}) never occurs in the "
                                  f"training part; a tagger can only predict tags it was trained on")


def _parts(d: DataConfig) -> dict[str, list[Sentence] | None]:
    if d.train_path is not None:
        parts = {"train": _read(d.train_path, d), "val": None, "test": None}
        for name, key in (("val", d.val_path), ("test", d.test_path)):
            if key is not None:
                parts[name] = _read(key, d)
        if d.limit is not None:
            parts["train"] = parts["train"][:d.limit]
        return parts
    sentences = _read(d.path, d)
    if d.limit is not None and d.limit < len(sentences):
        keep = np.sort(np.random.default_rng(d.seed).permutation(len(sentences))[:d.limit])
        sentences = [sentences[i] for i in keep]
    val_frac, test_frac = split_fractions(d)
    idx = split_indices(len(sentences), val_frac, test_frac, seed=d.seed, what="sentences")
    return {name: None if ix is None else [sentences[i] for i in ix] for name, ix in idx.items()}


def _encode(sentences: list[Sentence], vocab: Vocabulary, tag_ids: dict[str, int] | None, maxlen: int | None):
    """``(ids (N, T), mask (N, T), y (N, T) or None)``, padded after each sentence."""
    ids, mask = pad_sequences([vocab.encode(s.tokens) for s in sentences], maxlen=maxlen, value=vocab.pad_id)
    if tag_ids is None:
        return ids, mask, None
    y, _ = pad_sequences([[tag_ids[t] for t in s.tags] for s in sentences], maxlen=ids.shape[1], value=0)
    return ids, mask, y


def _predict_ids(model, ids: np.ndarray, mask: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``(tag ids (N, T), their probabilities (N, T))``: the model's most probable tag at every step."""
    best, proba = [], []
    with no_grad():
        for start in range(0, len(ids), batch_size):
            sl = slice(start, start + batch_size)
            z, _ = forward_with_states(model, ids[sl], {}, mask=mask[sl], training=False)  # (b, T, K)
            z = np.asarray(z, dtype=np.float64)
            p = np.exp(z - z.max(axis=-1, keepdims=True))
            p /= p.sum(axis=-1, keepdims=True)
            best.append(p.argmax(axis=-1))
            proba.append(p.max(axis=-1))
    return np.concatenate(best), np.concatenate(proba)


def _entity_report(model, tags: tuple[str, ...], sentences: list[Sentence], ids, mask) -> dict:
    """Entity-level scores of the model's tags against the true ones, when the tags are BIO/IOB2."""
    if not is_bio(tags):
        return {}
    pred, _ = _predict_ids(model, ids, mask)  # (N, T)
    lengths = [min(len(s.tags), ids.shape[1]) for s in sentences]  # a maxlen cuts the long sentences
    return {"entities": chunk_scores([s.tags[:n] for s, n in zip(sentences, lengths)],
                                     [[tags[k] for k in pred[i, :n]] for i, n in enumerate(lengths)])}


def build(config: RunConfig, vocab: Vocabulary | None) -> dict:
    """The keyword arguments of the task's data (``rnnlab.lab.tasks._Data``): batches, shapes, report, artefacts."""
    d = config.data
    parts = _parts(d)
    tags = tuple(sorted({t for s in parts["train"] for t in s.tags}))
    known = set(tags)
    for name in ("val", "test"):
        if parts[name]:
            _check_known_tags(name, parts[name], known)
    if vocab is None:
        vocab = Vocabulary(d.min_freq, d.max_size).fit([s.tokens for s in parts["train"]])
    tag_ids = {t: i for i, t in enumerate(tags)}
    maxlen = d.maxlen or max(len(s.tokens) for s in parts["train"])
    encoded = {name: _encode(s, vocab, tag_ids, d.maxlen) for name, s in parts.items() if s}
    batches = {name: ArrayBatches(ids, y, batch_size=d.batch_size, mask=mask, shuffle=(name == "train"),
                                  seed=d.seed, bucket=d.bucket)
               for name, (ids, mask, y) in encoded.items()}

    def report(model, split: str) -> dict:
        ids, mask, _ = encoded[split]
        return _entity_report(model, tags, parts[split], ids, mask)

    sizes = ", ".join(f"{name} {len(s) if s else 0}" for name, s in parts.items())
    tokens = sum(len(s.tokens) for s in parts["train"])
    scheme = "BIO entities" if is_bio(tags) else "tags"
    line = (f"tagging: sentences {sizes} ({tokens} training tokens); vocabulary {len(vocab)}; {len(tags)} {scheme} "
            f"({', '.join(tags[:8])}{' ...' if len(tags) > 8 else ''}); {len(batches['train'])} training batches of "
            f"{d.batch_size}")
    return {"train": batches["train"], "val": batches.get("val"), "test": batches.get("test"), "inputs": "ids",
            "n_inputs": len(vocab), "n_outputs": len(tags), "sequence_output": True, "loss": "cross_entropy",
            "metrics": ("accuracy",), "timesteps": maxlen, "mask_zero": True, "vocab": vocab, "labels": tags,
            "description": [line], "report": report,
            "artefacts": {TAGS_FILE: (json.dumps({"tags": list(tags)}, indent=1) + "\n").encode("utf-8")}}


# =========================================================================== a trained run on other files
def read_tags(run_dir: Path) -> tuple[str, ...]:
    """The tag names a tagging run wrote into its run directory (``TAGS_FILE``), in output order."""
    path = Path(run_dir) / TAGS_FILE
    try:
        return tuple(json.loads(path.read_text("utf-8"))["tags"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"the tagging run's tag list '{path}' is missing or unusable ({exc})") from None


def file_batches(config: RunConfig, vocab: Vocabulary, tags: tuple[str, ...], paths) -> tuple:
    """The batches of other CoNLL files ``paths`` for a trained tagger (``rnnlab evaluate --path``), and
    ``report(model) -> dict``: their number of sentences and, for BIO tags, the entity scores."""
    d = config.data
    sentences = _read(paths, d)
    _check_known_tags("evaluated", sentences, set(tags))
    ids, mask, y = _encode(sentences, vocab, {t: i for i, t in enumerate(tags)}, d.maxlen)
    batches = ArrayBatches(ids, y, batch_size=d.batch_size, mask=mask, shuffle=False, bucket=False)
    return batches, lambda model: {"sentences": len(sentences), **_entity_report(model, tags, sentences, ids, mask)}


def predict_file(config: RunConfig, model, vocab: Vocabulary, tags: tuple[str, ...], paths) -> tuple[list, list]:
    """One row per token of CoNLL files (their token column; tags, if any, ignored) or of text files (one
    sentence per line, tokens separated by whitespace): ``(sentence, token, tag, probability)``."""
    sentences = _read(paths, config.data, tags=False)
    ids, mask, _ = _encode(sentences, vocab, None, None)
    pred, proba = _predict_ids(model, ids, mask)
    rows = [(i + 1, token, tags[pred[i, j]], float(proba[i, j]))
            for i, s in enumerate(sentences) for j, token in enumerate(s.tokens)]
    return ["sentence", "token", "tag", "probability"], rows
