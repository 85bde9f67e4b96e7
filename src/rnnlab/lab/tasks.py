"""Tasks: from a :class:`~rnnlab.config.RunConfig` to data, model, loss and metrics; and run directories.

:func:`build_task` reads the data set (or generates the data), splits it, fits the vocabulary or
the scaler on the training part only, cuts the parts into batches, and builds the model on the
data's shapes:

==================  ==========================================  ==============  ===============================
task                batches                                      loss            metrics (and final report)
==================  ==========================================  ==============  ===============================
``sentiment``       padded ids + mask, bucketed (ArrayBatches)   cross-entropy   accuracy
``classification``  as sentiment, from the user's files          cross-entropy   accuracy; macro-F1, confusion
``language_model``  one token stream, state carried (LMStream)   cross-entropy   perplexity (word) / bits per char
``forecasting``     windows of the scaled series                 MSE             MSE, MAE; RMSE/MAE in original
                                                                                 units next to naive baselines
``adding``          generated (n, T, 2) sequences                MSE             MSE against 1/6
``copy``            generated (n, T + 20) symbol ids             cross-entropy   accuracy; loss against 10 ln 8/(T+20)
``tagging``         padded ids + per-step tags + mask            cross-entropy   token accuracy; entity P/R/F1 (BIO)
==================  ==========================================  ==============  ===============================

The user's own files (``[data] path`` or ``train_path``: ``classification``, ``tagging``, and
``language_model`` and ``forecasting`` without a ``dataset``) are built by the builders of
:data:`rnnlab.lab.filetasks.FILE_BUILDERS` (tagging in :mod:`rnnlab.lab.tasks_tagging`, a CSV
forecaster in :mod:`rnnlab.lab.tasks_series`).

The model is ``Embedding`` (or one-hot vectors) -> ``num_layers`` recurrent layers
(``rnnlab.stack``, optionally bidirectional) -> ``Dense``, with dropout on the non-recurrent
connections (see :class:`~rnnlab.config.ModelConfig`). Many-to-one for sentiment, forecasting
and adding (the last step's output; for sentiment and classification, ``[model] pooling = "max"``
or ``"mean"`` pools the whole output sequence over its valid steps instead), many-to-many for
language models and the copy task.

Splits
------
Sentiment: ``test_frac`` of the texts (stratified, seeded) is the test part (with ``cv_folds``
the folds of :func:`~rnnlab.data.kfold_indices` take turns), then ``val_frac`` of the rest is the
validation part; defaults 0.1 and 0.1. Language models: the data set's own splits (PTB
train/valid/test; Tiny Shakespeare nanoGPT's 90/10 train/valid, no test); the held-out streams
have the training's ``batch_size`` rows (a different number of rows would be a different
evaluation: other streams, each from a zero state) and windows of ``eval_bptt`` steps (default
``bptt``): the state is carried between windows, so the window length only changes how many
tokens one forward pass reads, not what is computed (up to float rounding). Forecasting: by time,
``1 - val_frac - test_frac`` / ``val_frac`` / ``test_frac`` (defaults 0.15, 0.15). Synthetic
tasks: ``n_train``/``n_val``/``n_test`` sequences from independent seeds.

Tasks on the user's own files (``[data] path`` or ``train_path``): :mod:`rnnlab.lab.filetasks`.
Running a task and reading a run directory back: :mod:`rnnlab.lab.runs`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnnlab._files import write_atomic
from rnnlab.data.batches import ArrayBatches, LMStream, kfold_indices, train_val_split
from rnnlab.data.datasets import (
    DatasetNotFoundError,
    movie_reviews,
    ptb,
    time_series,
    tiny_shakespeare,
    uci_sentiment,
)
from rnnlab.data.synthetic import (
    ADDING_BASELINE_MSE,
    ADDING_SOLVED_MSE,
    adding_problem,
    copy_memory,
    copy_memory_baseline,
)
from rnnlab.data.text import (
    UNK,
    Vocabulary,
    char_tokenize,
    pad_sequences,
    word_tokenize,
)
from rnnlab.data.timeseries import (
    Scaler,
    naive_forecast,
    prepare_forecast,
    seasonal_naive_forecast,
)
from rnnlab.generate import predict_values
from rnnlab.lab import filetasks
from rnnlab.lab.config import (
    PATH_KEYS,
    ConfigError,
    DataConfig,
    ModelConfig,
    RunConfig,
    to_toml,
)
from rnnlab.nn.layers import Dense, Dropout, Embedding, LockedDropout, OneHot
from rnnlab.nn.module import Module
from rnnlab.nn.pooling import GlobalAveragePool1D, GlobalMaxPool1D
from rnnlab.nn.recurrent import recurrent_class
from rnnlab.nn.sequential import Sequential, stack
from rnnlab.training.trainer import Trainer

__all__ = ["Task", "RunError", "build_task", "build_model", "tokenizer_of", "describe", "LABELS", "CONFIG_FILE",
           "VOCAB_FILE", "SCALER_FILE", "METRICS_FILE", "MODEL_DIR"]

#: a run directory's resolved run configuration (``rnnlab train RUN/config.toml`` repeats the run)
CONFIG_FILE = "config.toml"
#: a text run's vocabulary
VOCAB_FILE = "vocab.json"
#: a forecasting run's fitted scaler
SCALER_FILE = "scaler.json"
#: a run's final validation and test metrics
METRICS_FILE = "metrics.json"
#: a run's final model (``rnnlab.io.save``)
MODEL_DIR = "model"

#: class names of the sentiment labels 0 and 1
LABELS = ("negative", "positive")

_SPLIT_NAMES = ("train", "val", "test")


class RunError(Exception):
    """A run directory cannot be used: missing, incomplete, or of the wrong kind (exit code 1)."""


# =========================================================================== tokenizers
def whitespace_tokenize(text: str) -> list[str]:
    """Lower-case, then split on whitespace: for the pre-tokenized, lower-case PTB and MR files."""
    return text.lower().split()


def ptb_char_tokenize(text: str) -> list[str]:
    """Characters as in Mikolov's character-level PTB: lower-case, a space becomes ``_``."""
    return ["_" if c == " " else c for c in text.lower()]


def tokenizer_of(data: DataConfig) -> tuple[Callable[[str], list[str]], str]:
    """``(tokenize, joiner)`` of a text task: how raw text becomes tokens, and what joins generated ones."""
    if data.level == "char":
        return (ptb_char_tokenize if data.dataset == "ptb" else char_tokenize), ""
    name = data.tokenizer or ("whitespace" if data.dataset in ("ptb", "mr") else "word")
    return (whitespace_tokenize if name == "whitespace" else word_tokenize), " "


# =========================================================================== the task
@dataclass
class Task:
    """Everything a run trains and reports, built by :func:`build_task`.

    Attributes
    ----------
    config : RunConfig
        The resolved configuration (``train.metrics`` filled in with the task's metrics when empty).
    model : Sequential
        Built on the data's shapes.
    loss : str
        A name for ``rnnlab.losses.get``.
    train, val, test : Batches
        ``val``/``test`` are None when the split has no such part.
    input_shape : tuple
        ``(None, T)`` for token ids, ``(None, T, F)`` for real values, with T the padded length (maxlen),
        window (bptt) or lookback the model is built and summarized for.
    vocab : Vocabulary or None
    scaler : Scaler or None
    labels : tuple of str or None
        Class names of a classifier's outputs.
    raw : dict
        Forecasting: ``split -> (x, y)`` windows and targets in original units, for the final report.
    description : list of str
        One line per part: sizes and shapes.
    report : callable, optional
        ``report(model, split) -> dict``: the task's extra results on a part (a classifier's macro-F1 and
        confusion matrix, a tagger's entity scores, a CSV forecaster's errors in original units), added by
        :meth:`evaluate`.
    artefacts : dict of str -> bytes
        Further files the run directory keeps, written by :meth:`save_artefacts` (``labels.json``,
        ``tokenizer.json``, ``tags.json``, ``series.json``).
    finish : callable, optional
        ``finish(model, run_dir, log)``, run once training is done (a CSV forecaster's ``forecast.png``).
    """

    config: RunConfig
    model: Sequential
    loss: str
    train: object
    val: object | None
    test: object | None
    input_shape: tuple
    vocab: Vocabulary | None = None
    scaler: Scaler | None = None
    labels: tuple[str, ...] | None = None
    raw: dict = field(default_factory=dict)
    description: list[str] = field(default_factory=list)
    report: Callable[[Module, str], dict] | None = None
    artefacts: dict[str, bytes] = field(default_factory=dict)
    finish: Callable[[Module, Path, Callable[[str], None]], None] | None = None

    def splits(self) -> dict:
        """``{"train": ..., "val": ..., "test": ...}`` for the parts that exist."""
        return {name: b for name, b in zip(_SPLIT_NAMES, (self.train, self.val, self.test)) if b is not None}

    def trainer(self, run_dir) -> Trainer:
        """A :class:`~rnnlab.train.Trainer` of this task's model on its batches, writing to ``run_dir``."""
        try:
            return Trainer(self.model, self.loss, self.config.train, self.train, self.val, run_dir)
        except ValueError as exc:  # e.g. early stopping on validation results without a validation part
            raise ConfigError(f"config [train] does not fit this {self.config.data.task} run: {exc}") from None

    def evaluate(self, split: str, trainer: Trainer) -> dict:
        """Loss and metrics of the model on ``split``, with the task's extra report.

        Forecasting adds ``original_units``: RMSE and MAE of the model, of the naive forecast and of
        the seasonal-naive forecast, in the series' units. Adding and copy add their memoryless
        baselines (``baseline_mse``, ``baseline_loss``).
        """
        parts = self.splits()
        if split not in parts:
            raise RunError(f"this {self.config.data.task} run has no {split!r} part; it has {', '.join(parts)}")
        results = trainer.evaluate(parts[split])
        task = self.config.data.task
        if task == "forecasting" and split in self.raw:
            x_raw, y_raw = self.raw[split]  # (N, L, 1), (N, H)
            y_model = _last_step(predict_values(self.model, x_raw, scaler=self.scaler))  # (N, H)
            season = _season(self.config.data)
            forecasts = {"model": y_model, "naive": naive_forecast(x_raw, self.config.data.horizon),
                         "seasonal_naive": seasonal_naive_forecast(x_raw, season, self.config.data.horizon)}
            results["original_units"] = {name: {"rmse": float(np.sqrt(np.mean((f - y_raw) ** 2))),
                                                "mae": float(np.mean(np.abs(f - y_raw)))}
                                         for name, f in forecasts.items()}
            results["original_units"]["seasonal_naive"]["season"] = season
        elif task == "adding":
            results["baseline_mse"] = ADDING_BASELINE_MSE
        elif task == "copy":
            results["baseline_loss"] = copy_memory_baseline(self.config.data.seq_len)
        if self.report is not None:
            results.update(self.report(self.model, split))
        return results

    def final_metrics(self, trainer: Trainer) -> dict:
        """What ``metrics.json`` holds: the task, training extent, and every held-out part's results."""
        d = self.config.data
        out = {"task": d.task, "dataset": d.dataset, "epochs": len(trainer.history.get("epoch", [])),
               "steps": trainer.step}
        if d.reads_files():
            del out["dataset"]
            out["data"] = {key: getattr(d, key) for key in PATH_KEYS if getattr(d, key) is not None}
        if d.fold is not None:
            out["fold"] = d.fold
        if d.task == "adding":
            out["solved"] = self._solved(trainer.history)
        for split in ("val", "test"):
            if split in self.splits():
                out[split] = self.evaluate(split, trainer)
        return out

    def _solved(self, history: dict) -> dict:
        """When the adding problem was first solved: the first epoch whose validation MSE fell below
        ``ADDING_SOLVED_MSE``, and the training sequences presented by then (``epoch * n_train``)."""
        below = [i for i, v in enumerate(history.get("val_loss", [])) if v < ADDING_SOLVED_MSE]
        epoch = below[0] + 1 if below else None
        return {"threshold_mse": ADDING_SOLVED_MSE, "epoch": epoch,
                "sequences": None if epoch is None else epoch * self.config.data.n_train}

    def save_artefacts(self, run_dir: Path) -> None:
        """Write ``vocab.json`` / ``scaler.json`` (atomically) into ``run_dir``."""
        if self.vocab is not None:
            write_atomic(run_dir / VOCAB_FILE, self.vocab.to_json().encode("utf-8"))
        if self.scaler is not None:
            write_atomic(run_dir / SCALER_FILE, self.scaler.to_json().encode("utf-8"))
        for name, content in self.artefacts.items():
            write_atomic(run_dir / name, content)


@dataclass
class _Data:
    """What a task's data builder returns (the model is built from it)."""

    train: object
    val: object | None
    test: object | None
    inputs: str                 # "ids" or "values"
    n_inputs: int               # V for ids, F for values
    n_outputs: int
    sequence_output: bool
    loss: str
    metrics: tuple[str, ...]
    timesteps: int
    mask_zero: bool = False
    vocab: Vocabulary | None = None
    scaler: Scaler | None = None
    labels: tuple[str, ...] | None = None
    raw: dict = field(default_factory=dict)
    description: list[str] = field(default_factory=list)
    report: Callable[[Module, str], dict] | None = None
    artefacts: dict[str, bytes] = field(default_factory=dict)
    finish: Callable[[Module, Path, Callable[[str], None]], None] | None = None


def _config_error(what: str, exc: Exception) -> ConfigError:
    return ConfigError(f"{what}: {exc}")


# --------------------------------------------------------------------------- sentiment
def _sentiment(config: RunConfig, data_dir, vocab: Vocabulary | None, scaler) -> _Data:
    d = config.data
    loader = {"mr": movie_reviews, "uci_sentiment": uci_sentiment}[d.dataset]
    texts, labels = loader(data_dir)
    if d.limit is not None and d.limit < len(texts):
        keep = np.sort(np.random.default_rng(d.seed).permutation(len(texts))[:d.limit])
        texts, labels = [texts[i] for i in keep], labels[keep]
    n = len(texts)
    everything = np.arange(n)
    try:
        if d.cv_folds is not None:
            rest, test_idx = kfold_indices(n, d.cv_folds, d.seed, stratify=labels)[(d.fold or 1) - 1]
        elif (test_frac := 0.1 if d.test_frac is None else d.test_frac) > 0:
            rest, test_idx = train_val_split(everything, val_frac=test_frac, seed=d.seed, stratify=labels)
        else:
            rest, test_idx = everything, None
        val_frac = 0.1 if d.val_frac is None else d.val_frac
        if val_frac > 0:
            train_idx, val_idx = train_val_split(rest, val_frac=val_frac, seed=d.seed, stratify=labels[rest])
        else:
            train_idx, val_idx = rest, None
    except ValueError as exc:
        raise _config_error(f"cannot split {n} texts with the [data] settings", exc) from None
    tokenize, _ = tokenizer_of(d)
    tokens = [tokenize(t) for t in texts]
    if vocab is None:
        vocab = Vocabulary(d.min_freq, d.max_size).fit([tokens[i] for i in train_idx])
    maxlen = d.maxlen or max(1, max(len(tokens[i]) for i in train_idx))

    def batches(idx, training: bool):
        if idx is None or len(idx) == 0:
            return None
        ids, mask = pad_sequences([vocab.encode(tokens[i]) for i in idx], maxlen=maxlen, padding=d.padding,
                                  value=vocab.pad_id)
        return ArrayBatches(ids, labels[idx], batch_size=d.batch_size, mask=mask, shuffle=training, seed=d.seed,
                            bucket=d.bucket)

    train, val, test = batches(train_idx, True), batches(val_idx, False), batches(test_idx, False)
    fold = f", fold {d.fold or 1} of {d.cv_folds}" if d.cv_folds else ""
    line = (f"{d.dataset}: {n} texts{fold}; train {len(train_idx)}, val {0 if val_idx is None else len(val_idx)}, "
            f"test {0 if test_idx is None else len(test_idx)}; vocabulary {len(vocab)} tokens; maxlen {maxlen}; "
            f"{len(train)} training batches of {d.batch_size}")
    return _Data(train, val, test, "ids", len(vocab), 2, False, "cross_entropy", ("accuracy",), maxlen, mask_zero=True,
                 vocab=vocab, labels=LABELS, description=[line])


# --------------------------------------------------------------------------- language model
def _language_model(config: RunConfig, data_dir, vocab: Vocabulary | None, scaler) -> _Data:
    d = config.data
    if d.dataset == "ptb":
        streams = ptb(data_dir, level=d.level)
        parts = {"train": streams["train"], "val": streams["valid"], "test": streams["test"]}
    else:
        tokenize, _ = tokenizer_of(d)
        parts = {"train": tokenize(tiny_shakespeare(data_dir, "train")),
                 "val": tokenize(tiny_shakespeare(data_dir, "valid"))}
    if d.limit is not None:
        parts = {name: tokens[:d.limit] for name, tokens in parts.items()}
    if vocab is None:
        vocab = Vocabulary(d.min_freq, d.max_size, specials=(UNK,)).fit([parts["train"]])
    streams = {}
    for name, tokens in parts.items():
        try:  # held-out parts: the same rows (batch_size), the state carried, windows of eval_bptt steps
            streams[name] = LMStream(np.asarray(vocab.encode(tokens), dtype=np.int64), batch_size=d.batch_size,
                                     bptt=d.bptt if name == "train" else (d.eval_bptt or d.bptt))
        except ValueError as exc:
            raise _config_error(f"the {name} part of {d.dataset} ({len(tokens)} tokens) is too short for "
                                f"batch_size={d.batch_size}" + (f" with limit={d.limit}" if d.limit else ""),
                                exc) from None
    metric = "bits_per_character" if d.level == "char" else "perplexity"
    description = [f"{d.dataset} ({d.level} level): " + ", ".join(f"{name} {len(tokens):,} tokens"
                                                                 for name, tokens in parts.items())
                   + f"; vocabulary {len(vocab)}; {len(streams['train'])} training windows of "
                     f"{d.batch_size} x {d.bptt}"
                   + ("" if d.eval_bptt in (None, d.bptt) else f"; evaluated in windows of {d.batch_size} x "
                                                                f"{d.eval_bptt}")]
    return _Data(streams["train"], streams.get("val"), streams.get("test"), "ids", len(vocab), len(vocab), True,
                 "cross_entropy", (metric,), d.bptt, vocab=vocab, description=description)


# --------------------------------------------------------------------------- forecasting
def _season(d: DataConfig) -> int:
    return d.season if d.season is not None else (365 if d.dataset == "daily-min-temperatures" else 12)


def _forecasting(config: RunConfig, data_dir, vocab, scaler: Scaler | None) -> _Data:
    d = config.data
    dtype = np.dtype(config.model.dtype)
    _, values = time_series(d.dataset, data_dir)
    if d.limit is not None:
        values = values[:d.limit]
    season = _season(d)
    if season > d.lookback:
        raise ConfigError(f"config [data] season: the seasonal-naive baseline looks one season back within the window, "
                          f"so season must be <= lookback = {d.lookback}; got season {season}"
                          + ("" if d.season is not None else " (the default for this series)"))
    val_frac = 0.15 if d.val_frac is None else d.val_frac
    test_frac = 0.15 if d.test_frac is None else d.test_frac
    chosen = scaler if scaler is not None else (None if d.scaler == "none" else d.scaler)
    try:
        fd = prepare_forecast(values, d.lookback, horizon=d.horizon, train_frac=1.0 - val_frac - test_frac,
                              val_frac=val_frac, scaler=chosen, many_to_many=d.many_to_many)
    except ValueError as exc:
        raise _config_error(f"cannot window the {len(values)}-step series {d.dataset!r}", exc) from None

    def batches(x, y, training: bool):
        if x is None:
            return None
        return ArrayBatches(x.astype(dtype), y.astype(dtype), batch_size=d.batch_size, shuffle=training, seed=d.seed)

    raw = {"test": (fd.x_test_raw, _last_step(fd.y_test_raw))}
    if fd.x_val_raw is not None:
        raw["val"] = (fd.x_val_raw, _last_step(fd.y_val_raw))
    shape = "many-to-many" if d.many_to_many else "many-to-one"
    line = (f"{d.dataset}: {len(values)} steps; {shape} windows of {d.lookback} -> {d.horizon}: "
            f"train {len(fd.x_train)}, val {0 if fd.x_val is None else len(fd.x_val)}, test {len(fd.x_test)}; "
            f"scaler {d.scaler} (fitted on train); seasonal-naive season {season}")
    return _Data(batches(fd.x_train, fd.y_train, True), batches(fd.x_val, fd.y_val, False),
                 batches(fd.x_test, fd.y_test, False), "values", fd.x_train.shape[2], fd.y_train.shape[-1],
                 d.many_to_many, "mse", ("mse", "mae"), d.lookback, scaler=fd.scaler, raw=raw, description=[line])


def _last_step(y):
    """The forecast of a window's last step: (N, H) from many-to-many (N, L, H) (or as it is)."""
    return y if y is None or y.ndim == 2 else y[:, -1]


# --------------------------------------------------------------------------- synthetic
def _synthetic(config: RunConfig, data_dir, vocab, scaler) -> _Data:
    d = config.data
    dtype = config.model.dtype
    sizes = {"train": d.n_train, "val": d.n_val, "test": d.n_test}
    parts = {}
    for i, (name, n) in enumerate(sizes.items()):
        rng = np.random.default_rng([d.seed, i])  # independent draws per part
        parts[name] = (adding_problem(n, d.seq_len, rng, dtype=dtype) if d.task == "adding"
                       else copy_memory(n, d.seq_len, rng))
    batches = {name: ArrayBatches(x, y, batch_size=d.batch_size, shuffle=(name == "train"), seed=d.seed)
               for name, (x, y) in parts.items()}
    if d.task == "adding":
        line = (f"adding problem, T = {d.seq_len}: train {d.n_train}, val {d.n_val}, test {d.n_test} sequences; "
                f"baseline MSE {ADDING_BASELINE_MSE:.4f}")
        return _Data(batches["train"], batches["val"], batches["test"], "values", 2, 1, False, "mse", ("mse",),
                     d.seq_len, description=[line])
    line = (f"copy memory, T = {d.seq_len} (sequences of {d.seq_len + 20}): train {d.n_train}, val {d.n_val}, "
            f"test {d.n_test}; baseline cross-entropy {copy_memory_baseline(d.seq_len):.4f}")
    return _Data(batches["train"], batches["val"], batches["test"], "ids", 10, 10, True, "cross_entropy",
                 ("accuracy",), d.seq_len + 20, description=[line])


#: task -> the builder of its built-in or generated data (the user's files: filetasks.FILE_BUILDERS)
_BUILDERS = {"sentiment": _sentiment, "language_model": _language_model, "forecasting": _forecasting,
             "adding": _synthetic, "copy": _synthetic}


# =========================================================================== the model
#: [model] pooling -> the layer between the recurrent stack and the output layer ("last": none)
_POOLS = {"max": GlobalMaxPool1D, "mean": GlobalAveragePool1D}


def build_model(config: ModelConfig, *, inputs: str, n_inputs: int, n_outputs: int, sequence_output: bool,
                mask_zero: bool = False) -> Sequential:
    """``Embedding``/``OneHot`` (token ids) -> stacked recurrent layers [-> pooling over time] -> ``Dense(n_outputs)``.

    Parameters
    ----------
    config : ModelConfig
    inputs : "ids" or "values"
        Token ids (B, T) with a vocabulary of ``n_inputs``, or real values (B, T, n_inputs).
    n_outputs : int
        Classes (logits) or values per output step.
    sequence_output : bool
        One output per step (B, T, n_outputs), or one per sequence (B, n_outputs): from the last step,
        or with ``config.pooling`` "max"/"mean" from the max or mean over the valid steps of the last
        recurrent layer's output sequence (both directions concatenated when bidirectional).
    mask_zero : bool
        Token id 0 is padding (masked).
    """
    dtype = config.dtype
    seeds = [int(s) for s in np.random.default_rng(config.seed).integers(0, 2**31 - 1, size=5)]
    chrono = config.init is not None and config.init.startswith("chrono:")  # gate biases only
    init = {} if config.init is None or chrono else {"kernel_initializer": config.init,
                                                     "bias_initializer": config.init}
    between = LockedDropout if config.locked_dropout else Dropout
    if (config.tie_weights or config.embedding_dropout) and (inputs != "ids" or config.embedding_dim is None):
        key = "tie_weights" if config.tie_weights else "embedding_dropout"
        raise ConfigError(f"config [model] {key}: needs token inputs and an embedding (embedding_dim)")
    if config.tie_weights and n_outputs != n_inputs:
        raise ConfigError(f"config [model] tie_weights: the output layer has {n_outputs} outputs and the embedding "
                          f"{n_inputs} words; tying needs one output per word (a language model)")
    layers: list[Module] = []
    embedding = None
    if inputs == "ids":
        if config.embedding_dim is not None:
            embedding = Embedding(n_inputs, config.embedding_dim, mask_zero=mask_zero, seed=seeds[0], dtype=dtype,
                                  dropout=config.embedding_dropout,
                                  **({} if not init else {"embeddings_initializer": config.init}))
            layers.append(embedding)
            features = config.embedding_dim
        else:
            layers.append(OneHot(n_inputs, mask_zero=mask_zero, dtype=dtype))
            features = n_inputs
        if config.dropout and embedding is not None:  # not on one-hot inputs: that would drop the tokens
            layers.append(between(config.dropout, seed=seeds[1], dtype=dtype))
    else:
        features = n_inputs
    cell_kwargs = {}
    if config.cell == "rnn" and config.activation is not None:
        cell_kwargs["activation"] = config.activation
    if config.cell == "lstm":
        cell_kwargs["forget_bias"] = config.forget_bias
        if config.activation is not None:
            cell_kwargs["candidate_activation"] = config.activation
    if chrono:
        cell_kwargs["bias_initializer"] = config.init
    elif config.init is not None:
        cell_kwargs["recurrent_initializer"] = config.init
    pooled = config.pooling != "last"
    if pooled and sequence_output:
        raise ConfigError(f"config [model] pooling: {config.pooling!r} pools a classifier's sequence into one output, "
                          "but this task has an output per step; use 'last'")
    recurrent = stack(recurrent_class(config.cell), config.hidden_size, config.num_layers,
                      bidirectional=config.bidirectional, dropout=config.dropout,
                      return_sequences=sequence_output or pooled,
                      locked_dropout=config.locked_dropout, input_dropout=config.input_dropout,
                      recurrent_dropout=config.recurrent_dropout, weight_dropout=config.weight_dropout,
                      seed=seeds[2], input_size=features, dtype=dtype, **init, **cell_kwargs)
    layers += recurrent.layers
    if pooled:  # the max or mean over the valid steps of the last layer's sequence (both directions)
        layers.append(_POOLS[config.pooling](dtype=dtype))
    if config.dropout:
        layers.append(between(config.dropout, seed=seeds[3], dtype=dtype))
    layers.append(Dense(n_outputs, seed=seeds[4], dtype=dtype, tie=embedding if config.tie_weights else None, **init))
    return Sequential(layers)


def build_task(config: RunConfig, data_dir=None, *, vocab: Vocabulary | None = None,
               scaler: Scaler | None = None, run_dir=None, saved: dict | None = None) -> Task:
    """Read (or generate) the data of ``config`` and build the model on its shapes.

    Parameters
    ----------
    config : RunConfig
    data_dir : path, optional
        The data directory (``$RNNLAB_DATA`` when omitted); unused by the synthetic tasks.
    vocab, scaler : optional
        A saved vocabulary / scaler to use instead of fitting one (to rebuild a run's data exactly).
        With ``cv_folds`` and no ``fold``, fold 1 is built.
    run_dir : path, optional
        Tasks on the user's files keep derived data there (a language model's encoded corpus).
    saved : dict, optional
        Further saved artefacts of a run (:func:`rnnlab.lab.filetasks.load_saved`: class names, tokenizer).

    Returns
    -------
    Task
        Its ``config`` has ``train.metrics`` set to the task's metrics when the file gave none.
    """
    try:
        if config.data.reads_files():
            data = _Data(**filetasks.FILE_BUILDERS[config.data.task](
                config, run_dir=run_dir, saved={**(saved or {}), **({} if vocab is None else {"vocab": vocab})}))
        else:
            data = _BUILDERS[config.data.task](config, data_dir, vocab, scaler)
    except DatasetNotFoundError as exc:
        if exc.download_hint is None:
            raise
        raise DatasetNotFoundError(exc.reason) from None  # a run configuration has no download option
    if not config.train.metrics:
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, metrics=data.metrics))
    model = build_model(config.model, inputs=data.inputs, n_inputs=data.n_inputs, n_outputs=data.n_outputs,
                        sequence_output=data.sequence_output, mask_zero=data.mask_zero)
    input_shape = (None, data.timesteps) if data.inputs == "ids" else (None, data.timesteps, data.n_inputs)
    model.build(input_shape)
    return Task(config, model, data.loss, data.train, data.val, data.test, input_shape, vocab=data.vocab,
                scaler=data.scaler, labels=data.labels, raw=data.raw, description=data.description,
                report=data.report, artefacts=data.artefacts, finish=data.finish)


def describe(config: RunConfig, data_dir=None) -> str:
    """The resolved configuration, the data and the model summary (what ``rnnlab summary`` prints)."""
    task = build_task(config, data_dir)
    lines = [to_toml(task.config).rstrip(), "", *task.description, ""]
    lines.append(task.model.summary(task.input_shape, print_fn=None))
    return "\n".join(lines)
