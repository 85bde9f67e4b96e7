"""The run configuration: one TOML file with ``[data]``, ``[model]`` and ``[train]`` sections.

``rnnlab train CONFIG.toml`` reads it with the standard library's :mod:`tomllib`, applies the
``--set section.key=value`` overrides, and validates everything before any data is read::

    [data]                      # DataConfig: what to learn from
    task = "language_model"     # sentiment | classification | language_model | forecasting | tagging | adding | copy
    dataset = "ptb"             # a built-in data set, or your own files: path = "corpus/*.txt"
    batch_size = 20
    bptt = 20

    [model]                     # ModelConfig: Embedding/OneHot -> stacked recurrent -> Dense
    cell = "lstm"
    hidden_size = 200
    num_layers = 2

    [train]                     # rnnlab.train.TrainConfig, field for field (one schema for training)
    optimizer = "sgd"
    lr = 1.0

Rules
-----
* Unknown sections and keys fail, naming the key, the section and the valid keys; a key that exists
  but does not apply to the task (``lookback`` for sentiment) or to the cell (``forget_bias`` for a
  GRU) fails the same way.
* Wrong types and values fail naming the key, the expected type and the value received.
* TOML has no null: an optional key is unset by leaving it out, or by the string ``"none"``.
* ``--set section.key=value`` parses ``value`` as a TOML literal (``0.5``, ``true``, ``"gru"``,
  ``[1, 2]``, ``{momentum = 0.9}``); a value that is not a TOML literal, such as a bare word, is
  taken as a string, so ``--set model.cell=gru`` works although the shell removes quotes. Deeper
  paths set entries of a table: ``--set train.optimizer_args.momentum=0.9``.
* Your own files: ``path`` (a file, a directory or a glob) or ``train_path`` with optional
  ``val_path``/``test_path``, relative to the config file's folder (:func:`load_config` makes them
  absolute, so a run's saved ``config.toml`` still finds them); ``format`` when the suffix does not
  tell. See :mod:`rnnlab.lab.userdata` for how they are read and split.
* :func:`to_toml` writes the resolved configuration (every default filled in, only the keys that
  apply); :func:`load_config` reads it back to the same :class:`RunConfig`.

Every error is a :class:`ConfigError`, which the command line turns into exit code 2.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import numbers
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rnnlab.data.readers import FORMATS, resolve_path
from rnnlab.data.series_csv import MISSING_POLICIES
from rnnlab.nn import initializers
from rnnlab.nn.recurrent import RECURRENT
from rnnlab.training import metrics as metrics_module
from rnnlab.training.trainer import TrainConfig

__all__ = ["ConfigError", "DataConfig", "ModelConfig", "RunConfig", "TASKS", "DATASETS", "CELLS", "SECTIONS",
           "PATH_KEYS", "POOLINGS", "POOLING_TASKS", "load_config", "parse_config", "apply_overrides", "to_toml",
           "resolve_data_paths"]

#: task -> the built-in data sets it reads (None: generated data, no data set; empty: only the user's files)
DATASETS: dict[str, tuple[str, ...] | None] = {
    "sentiment": ("mr", "uci_sentiment"),
    "classification": (),
    "language_model": ("ptb", "tiny_shakespeare"),
    "forecasting": ("airline-passengers", "monthly-sunspots", "daily-min-temperatures"),
    "tagging": (),  # the user's own files only ([data] path or train_path)
    "adding": None,
    "copy": None,
}
#: the task names of ``[data] task``
TASKS = tuple(DATASETS)
#: tasks whose outputs are real values (the others output logits over classes or tokens)
_REGRESSION = ("forecasting", "adding")
#: the cell names of [model] cell: those of rnnlab.nn.recurrent.RECURRENT, the one registry of cells by name
CELLS = tuple(RECURRENT)
#: the sections of a run configuration
SECTIONS = ("data", "model", "train")
#: the choices of [model] pooling: how a classifier reads its encoder's sequence (see ModelConfig)
POOLINGS = ("last", "max", "mean")
#: the tasks that classify whole sequences, where [model] pooling applies
POOLING_TASKS = ("sentiment", "classification")

#: the string that stands for None (TOML has no null)
NONE = "none"


class ConfigError(ValueError):
    """A run configuration, an override or a command-line input is invalid (exit code 2)."""


# =========================================================================== field checks
@dataclass(frozen=True)
class _Check:
    """How one field is validated: its kind, bounds or choices, and whether None is allowed."""

    kind: str                      # "int", "float", "bool", "choice", "str", "names" (a str or a list of str)
    low: float | None = None
    high: float | None = None
    high_open: bool = False
    choices: tuple = ()
    optional: bool = False

    def describe(self) -> str:
        if self.kind == "int":
            text = f"an int >= {int(self.low)}" if self.low is not None else "an int"
        elif self.kind == "float":
            if self.high is not None:
                text = f"a number in [{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
            else:
                text = f"a number >= {self.low:g}" if self.low is not None else "a number"
        elif self.kind == "bool":
            text = "true or false"
        elif self.kind == "choice":
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.kind == "names":
            text = "a column name or a non-empty array of column names"
        else:
            text = "a string"
        return text + (f' or "{NONE}"' if self.optional else "")

    def __call__(self, section: str, key: str, value):
        if self.optional and (value is None or value == NONE):
            return None

        def fail():
            return ConfigError(f"config [{section}] {key}: expected {self.describe()}, got "
                               f"{_type_name(value)} {value!r}")

        if self.kind == "bool":
            if not isinstance(value, bool):
                raise fail()
            return value
        if self.kind == "names":
            names = [value] if isinstance(value, str) else value
            if (not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, str) and n for n in names)
                    or len(set(names)) != len(names)):
                raise fail()
            return tuple(names)
        if self.kind in ("choice", "str"):
            if not isinstance(value, str) or (self.kind == "choice" and value not in self.choices):
                raise fail()
            return value
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise fail()
        if self.kind == "int":
            if not isinstance(value, numbers.Integral):
                raise fail()
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise fail()
        if self.low is not None and value < self.low:
            raise fail()
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            raise fail()
        return value


def _type_name(value) -> str:
    """The TOML-ish name of a value's type, for error messages."""
    return {bool: "bool", int: "int", float: "float", str: "str", list: "array", dict: "table"}.get(
        type(value), type(value).__name__)


def _f(default, check: _Check, doc: str):
    """A dataclass field carrying its check and one line of documentation."""
    return field(default=default, metadata={"check": check, "doc": doc})


def _close(word: str, valid: Sequence[str]) -> str:
    match = difflib.get_close_matches(word, list(valid), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


class _Section:
    """Shared behaviour of the ``[data]`` and ``[model]`` dataclasses."""

    SECTION = ""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            setattr(self, f.name, f.metadata["check"](self.SECTION, f.name, getattr(self, f.name)))
        self._validate()

    def _validate(self) -> None:  # cross-field rules, overridden
        pass

    def applicable(self) -> list[str]:
        """The keys that mean something for this configuration (the others are rejected when given)."""
        return [f.name for f in dataclasses.fields(self)]

    def to_dict(self) -> dict:
        """The applicable keys and their values (what :func:`to_toml` writes)."""
        return {key: getattr(self, key) for key in self.applicable()}

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, table) -> _Section:
        """Build from a TOML table: unknown keys, missing required keys and keys that do not apply fail."""
        if not isinstance(table, Mapping):
            raise ConfigError(f"config [{cls.SECTION}] must be a table (section), got {_type_name(table)} {table!r}")
        valid = cls.keys()
        for key in table:
            if key not in valid:
                raise ConfigError(f"config [{cls.SECTION}]: unknown key {key!r}{_close(key, valid)}; valid keys: "
                                  f"{', '.join(valid)}")
        required = [f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        for key in required:
            if key not in table:
                check = next(f for f in dataclasses.fields(cls) if f.name == key).metadata["check"]
                raise ConfigError(f"config [{cls.SECTION}]: missing required key {key!r} ({check.describe()})")
        section = cls(**dict(table))
        applicable = section.applicable()
        for key in table:
            if key not in applicable:
                raise ConfigError(f"config [{cls.SECTION}] {key}: does not apply to {section._what()}; "
                                  f"keys that apply: {', '.join(applicable)}")
        return section

    def _what(self) -> str:  # overridden: "task 'sentiment'", "cell 'gru'"
        return "this configuration"


# =========================================================================== [data]
_COMMON_DATA = ("task", "dataset", "batch_size", "seed")
_TEXT = ("level", "tokenizer", "min_freq", "max_size", "limit")
#: the [data] keys naming the user's own files (a task reads files when its TASK_KEYS hold them)
PATH_KEYS = ("path", "train_path", "val_path", "test_path")
_FILES = PATH_KEYS + ("format",)
#: the keys that apply only when the task reads files (a CSV forecaster's columns)
_FILES_ONLY = _FILES + ("columns", "target", "date_column", "missing")
#: task -> the [data] keys that apply to it
TASK_KEYS: dict[str, tuple[str, ...]] = {
    "sentiment": _COMMON_DATA + _TEXT + ("maxlen", "padding", "bucket", "val_frac", "test_frac", "cv_folds", "fold"),
    "classification": ("task", "batch_size", "seed") + _FILES + _TEXT + (
        "text_column", "label_column", "maxlen", "padding", "bucket", "val_frac", "test_frac"),
    "language_model": _COMMON_DATA + _FILES + _TEXT + ("bptt", "eval_bptt", "val_frac", "test_frac"),
    "forecasting": _COMMON_DATA + ("lookback", "horizon", "many_to_many", "season", "scaler", "val_frac", "test_frac",
                                   "limit") + ("path", "format", "columns", "target", "date_column", "missing"),
    "tagging": ("task", "batch_size", "seed") + _FILES + ("token_column", "tag_column", "min_freq", "max_size", "limit",
                                                         "maxlen", "bucket", "val_frac", "test_frac"),
    "adding": ("task", "batch_size", "seed", "seq_len", "n_train", "n_val", "n_test"),
    "copy": ("task", "batch_size", "seed", "seq_len", "n_train", "n_val", "n_test"),
}

_INT1 = _Check("int", low=1)
_OPT_INT1 = _Check("int", low=1, optional=True)
_FRAC = _Check("float", low=0.0, high=1.0, high_open=True, optional=True)
_RATE = _Check("float", low=0.0, high=1.0, high_open=True)


@dataclass
class DataConfig(_Section):
    """``[data]``: the task, its data set, and how it is cut into batches.

    Which keys apply depends on the task (:data:`TASK_KEYS`); the defaults of the optional ones are
    chosen per task when the data are built (``rnnlab.tasks``).
    """

    SECTION = "data"

    task: str = _f(dataclasses.MISSING, _Check("choice", choices=TASKS), "what to learn")
    dataset: str | None = _f(None, _Check("str", optional=True), "the data set (see DATASETS)")
    batch_size: int = _f(32, _INT1, "samples (rows of the stream) per batch")
    seed: int = _f(0, _Check("int", low=0), "seeds the splits, the order of the batches and generated data")
    # the user's own files (see rnnlab.lab.userdata)
    path: str | None = _f(None, _Check("str", optional=True), "your data: a file, a directory or a glob, relative to "
                                                              "the config file's folder; split by val_frac/test_frac")
    format: str | None = _f(None, _Check("choice", choices=FORMATS, optional=True),
                            "the files' format when the suffix does not tell (.txt .csv .tsv .jsonl .conll, "
                            "optionally .gz .bz2 .xz)")
    train_path: str | None = _f(None, _Check("str", optional=True), "given splits: the training files (not path)")
    val_path: str | None = _f(None, _Check("str", optional=True), "given splits: the validation files")
    test_path: str | None = _f(None, _Check("str", optional=True), "given splits: the test files")
    text_column: str = _f("text", _Check("str"), "classification: the column (CSV/TSV) or field (JSONL) of the text")
    label_column: str = _f("label", _Check("str"), "classification: the column or field of the label")
    # text
    level: str = _f("word", _Check("choice", choices=("word", "char", "subword")),
                    "tokens are words, characters, or BPE subwords (language_model from files; the subword extra); "
                    "subword: max_size is the BPE vocabulary size (default 1000)")
    tokenizer: str | None = _f(None, _Check("choice", choices=("word", "whitespace"), optional=True),
                               "word level: rnnlab.text.word_tokenize (lower-cases, splits punctuation) or str.split; "
                               "default: whitespace for the pre-tokenized ptb and mr, word otherwise")
    min_freq: int = _f(1, _INT1, "vocabulary: keep tokens seen at least this often in training")
    max_size: int | None = _f(None, _OPT_INT1, "vocabulary: at most this many entries, specials included")
    limit: int | None = _f(None, _OPT_INT1, "use only this many samples (a seeded choice), tokens per split, or "
                                            "series steps: for quick trials")
    # sentiment
    maxlen: int | None = _f(None, _OPT_INT1, "cut texts to this many tokens (default: the longest training text)")
    padding: str = _f("post", _Check("choice", choices=("post", "pre")), "where the padding goes")
    bucket: bool = _f(True, _Check("bool"), "batch texts of similar lengths together")
    cv_folds: int | None = _f(None, _Check("int", low=2, optional=True),
                              "k-fold cross-validation: train a fresh model per fold, report mean and std accuracy")
    fold: int | None = _f(None, _OPT_INT1, "with cv_folds: train only this fold (1-based)")
    # splits
    val_frac: float | None = _f(None, _FRAC, "held-out validation fraction (default 0.1, series 0.15)")
    test_frac: float | None = _f(None, _FRAC, "held-out test fraction (default 0.1, series 0.15)")
    # language model
    bptt: int = _f(35, _INT1, "steps per window of the token stream (state carried between windows)")
    eval_bptt: int | None = _f(None, _OPT_INT1, "steps per window of the validation and test streams (default: "
                                                "bptt); the same rows and the state carried, so the same evaluation "
                                                "(equal up to float rounding) in fewer, larger batches")
    # forecasting
    lookback: int = _f(24, _INT1, "steps per input window")
    horizon: int = _f(1, _INT1, "values predicted after each window")
    many_to_many: bool = _f(False, _Check("bool"), "train on the next horizon values after every step of a window, not "
                                                   "only the last; errors and predictions use the last step")
    season: int | None = _f(None, _OPT_INT1, "period of the seasonal-naive baseline (default 12 for monthly, "
                                             "365 for daily series); at most lookback")
    scaler: str = _f("minmax", _Check("choice", choices=("minmax", "standard", NONE)), "fitted on the training part")
    # tagging
    token_column: int = _f(0, _Check("int"), "tagging: the column of the tokens (0-based, negative from the end)")
    tag_column: int = _f(-1, _Check("int"), "tagging: the column of the tags (0-based, negative from the end)")
    # forecasting from a CSV file
    columns: tuple[str, ...] | None = _f(None, _Check("names", optional=True),
                                         "the input columns of the CSV (default: the target columns)")
    target: tuple[str, ...] | None = _f(None, _Check("names", optional=True),
                                        "the column(s) to forecast, horizon steps after each window")
    date_column: str | None = _f(None, _Check("str", optional=True), "a column of dates: rows sorted by it, "
                                                                     "shown in predictions")
    missing: str = _f("error", _Check("choice", choices=MISSING_POLICIES),
                      "missing values in the CSV: an error naming the row, or 'interpolate' or 'drop'")
    # synthetic
    seq_len: int = _f(100, _Check("int", low=2), "T, the sequence length (adding) or delay (copy)")
    n_train: int = _f(10_000, _INT1, "generated training sequences")
    n_val: int = _f(1_000, _INT1, "generated validation sequences")
    n_test: int = _f(1_000, _INT1, "generated test sequences")

    def _what(self) -> str:
        return f"task {self.task!r}"

    def applicable(self) -> list[str]:
        keys = set(TASK_KEYS[self.task])
        if self.level in ("char", "subword"):
            keys.discard("tokenizer")
        if self.reads_files():
            keys.discard("dataset")
        else:
            keys.difference_update(_FILES_ONLY)
            if self.task == "language_model":  # a built-in corpus comes with its splits
                keys.difference_update(("val_frac", "test_frac"))
        return [k for k in self.keys() if k in keys]

    def reads_files(self) -> bool:
        """Whether the task reads the user's own files (``path`` or ``train_path`` set, and the task takes
        them: see :data:`TASK_KEYS`) rather than a built-in data set."""
        return "path" in TASK_KEYS[self.task] and (self.path is not None or self.train_path is not None)

    def _validate_files(self) -> None:
        """``path`` or ``train_path`` (+ ``val_path``/``test_path``), never both, never with ``dataset``; a
        forecaster of a CSV needs its ``target``."""
        if self.path is not None and self.train_path is not None:
            raise ConfigError(f"config [data]: give either path (split by val_frac/test_frac) or train_path "
                              f"(with val_path/test_path), not both; got path={self.path!r} and "
                              f"train_path={self.train_path!r}")
        if self.dataset is not None:
            raise ConfigError(f"config [data] dataset: give either dataset (a built-in data set) or your own files "
                              f"(path/train_path), not both: leave dataset out (got {self.dataset!r})")
        if self.train_path is not None:
            for key in ("val_frac", "test_frac"):  # 0 (no such part) agrees with the given splits
                if getattr(self, key):
                    raise ConfigError(f"config [data] {key}: the splits are given by train_path/val_path/test_path; "
                                      f"leave {key} out (got {getattr(self, key)})")
        if self.task == "forecasting" and self.target is None:
            raise ConfigError("config [data]: forecasting from a file needs target = \"column\" (or an array of "
                              "columns), the value(s) to forecast")

    def _validate(self) -> None:
        datasets = DATASETS[self.task]
        if self.level == "subword" and not (self.task == "language_model" and self.reads_files()):
            raise ConfigError(f"config [data] level: 'subword' is for a language_model on your own files (path or "
                              f"train_path); expected 'word' or 'char' here, got {self.level!r}")
        if self.reads_files():
            self._validate_files()
        elif "train_path" in TASK_KEYS[self.task] and (self.val_path is not None or self.test_path is not None):
            key = "val_path" if self.val_path is not None else "test_path"
            raise ConfigError(f"config [data] {key}: needs train_path (the training files); got {key}="
                              f"{getattr(self, key)!r} without it")
        elif datasets == ():
            raise ConfigError(f"config [data]: task {self.task!r} reads your own files; set path = \"...\" (a file, "
                              f"directory or glob) or train_path = \"...\"")
        elif datasets is None:
            if self.dataset is not None:
                raise ConfigError(f"config [data] dataset: task {self.task!r} generates its data and reads no "
                                  f"data set; got {self.dataset!r}")
        elif self.dataset is None:
            files = " or your own files (path = \"...\")" if "path" in TASK_KEYS[self.task] else ""
            raise ConfigError(f"config [data]: task {self.task!r} needs a dataset, one of "
                              f"{', '.join(repr(d) for d in datasets)}{files}")
        elif self.dataset not in datasets:
            raise ConfigError(f"config [data] dataset: expected one of {', '.join(repr(d) for d in datasets)} for task "
                              f"{self.task!r}, got {self.dataset!r}")
        if self.dataset == "ptb" and self.tokenizer == "word":
            raise ConfigError("config [data] tokenizer: ptb is read as its files' whitespace-separated tokens "
                              "(Mikolov's preprocessing); expected 'whitespace' or none, got 'word'")
        if self.fold is not None:
            if self.cv_folds is None:
                raise ConfigError(f"config [data] fold: needs cv_folds (the number of folds); got fold={self.fold}")
            if self.fold > self.cv_folds:
                raise ConfigError(f"config [data] fold: expected an int in [1, cv_folds={self.cv_folds}], "
                                  f"got {self.fold}")
        if self.cv_folds is not None and self.test_frac is not None:
            raise ConfigError(f"config [data] test_frac: with cv_folds each fold is the test part in turn; leave "
                              f"test_frac out (got {self.test_frac})")
        if self.task == "classification" and self.text_column == self.label_column:
            raise ConfigError(f"config [data] label_column: must differ from text_column, got {self.label_column!r} "
                              "for both")
        if self.val_frac is not None and self.test_frac is not None and self.val_frac + self.test_frac >= 1:
            raise ConfigError(f"config [data] val_frac + test_frac must be < 1 to leave training data, got "
                              f"{self.val_frac} + {self.test_frac}")
        if self.task == "forecasting" and self.test_frac == 0:
            raise ConfigError("config [data] test_frac: forecasting needs a test part, got 0")


# =========================================================================== [model]
@dataclass
class ModelConfig(_Section):
    """``[model]``: ``Embedding`` (or one-hot) -> ``num_layers`` recurrent layers -> ``Dense``.

    Notes
    -----
    With ``dropout = p > 0``, a ``Dropout(p)`` sits on every non-recurrent connection, as in
    Zaremba et al. (2014): after the embedding, between recurrent layers, and before the output
    layer. One-hot token inputs (no ``embedding_dim``) get none: a one-hot vector is the token itself,
    and dropping its one nonzero entry drops the token (with ``locked_dropout``, one mask per sequence
    hides whole characters or words for the whole sequence); as in PyTorch's ``nn.LSTM(dropout=)`` and
    char-rnn, the dropout then starts after the first recurrent layer. ``input_dropout`` still applies
    to every recurrent layer's input when set. ``init`` (e.g. ``"uniform:0.1"``) initializes every
    weight and bias of every layer with that rule; otherwise each layer keeps its defaults
    (Glorot/orthogonal/zeros, embeddings ``uniform:0.05``). ``forget_bias`` then sets the LSTM
    forget-gate bias (``"none"`` keeps what ``init`` drew). ``init = "chrono:T_MAX"`` is the chrono
    initialisation of the LSTM's or GRU's gate biases (the other weights keep their defaults, and
    ``forget_bias`` does not apply).

    Regularisation (docs/regularisation.md): ``locked_dropout`` makes the between-layer dropout one
    mask per sequence; ``embedding_dropout`` drops whole words' vectors; ``input_dropout`` and
    ``recurrent_dropout`` are each recurrent layer's Keras ``dropout`` and ``recurrent_dropout``
    (variational); ``weight_dropout`` is DropConnect on each recurrent ``W``; ``tie_weights`` makes
    the output layer use the embedding matrix (needs ``embedding_dim`` = the last hidden size).

    ``pooling`` (the classifiers: tasks ``sentiment`` and ``classification``) is what the output layer
    reads: ``"last"`` the last recurrent layer's last step (each direction's final state when
    bidirectional), ``"max"``/``"mean"`` the max or mean over the valid time steps of its whole
    output sequence (both directions concatenated when bidirectional), through
    :class:`~rnnlab.nn.pooling.GlobalMaxPool1D`/:class:`~rnnlab.nn.pooling.GlobalAveragePool1D`.
    """

    SECTION = "model"

    cell: str = _f("lstm", _Check("choice", choices=CELLS), "the recurrent layer")
    activation: str | None = _f(None, _Check("choice", choices=("tanh", "relu", "sigmoid", "linear"), optional=True),
                                "rnn: the activation (default tanh); lstm: the candidate activation (tanh or relu)")
    hidden_size: int = _f(128, _INT1, "H, units per recurrent layer (per direction)")
    num_layers: int = _f(1, _INT1, "stacked recurrent layers")
    bidirectional: bool = _f(False, _Check("bool"), "read each sequence in both directions")
    embedding_dim: int | None = _f(None, _OPT_INT1, "token inputs: embedding size; unset = one-hot vectors")
    dropout: float = _f(0.0, _Check("float", low=0.0, high=1.0, high_open=True), "dropout rate (see Notes)")
    locked_dropout: bool = _f(False, _Check("bool"), "the between-layer dropout: one mask per sequence")
    embedding_dropout: float = _f(0.0, _RATE, "token inputs: drop whole words' embedding vectors")
    input_dropout: float = _f(0.0, _RATE, "each recurrent layer's Keras dropout (variational, on x_t)")
    recurrent_dropout: float = _f(0.0, _RATE, "each recurrent layer's Keras recurrent_dropout (on h_{t-1})")
    weight_dropout: float = _f(0.0, _RATE, "weight drop: DropConnect on each recurrent W, a mask per batch")
    tie_weights: bool = _f(False, _Check("bool"), "the output layer uses the embedding matrix (Press & Wolf)")
    pooling: str = _f("last", _Check("choice", choices=POOLINGS),
                      "classifiers: the last step, or the max or mean over the valid steps of the sequence")
    init: str | None = _f(None, _Check("str", optional=True),
                          "initializer of every weight, e.g. 'uniform:0.1'; 'chrono:T_MAX' for gate biases")
    forget_bias: float | None = _f(1.0, _Check("float", optional=True), "lstm: initial forget-gate bias")
    dtype: str = _f("float32", _Check("choice", choices=("float32", "float64")), "floating-point type")
    seed: int = _f(0, _Check("int", low=0), "seeds the initial weights and dropout")

    def _what(self) -> str:
        return f"cell {self.cell!r}"

    def applicable(self) -> list[str]:
        skip = {"gru": ("activation", "forget_bias"), "rnn": ("forget_bias",), "lstm": ()}[self.cell]
        return [k for k in self.keys() if k not in skip]

    def _validate(self) -> None:
        if self.cell == "lstm" and self.activation not in (None, "tanh", "relu"):
            raise ConfigError(f"config [model] activation: expected 'tanh' or 'relu' for an LSTM's candidate, got "
                              f"{self.activation!r}")
        if self.init is not None:
            try:
                init = initializers.get(self.init, "init")
            except ValueError as exc:
                raise ConfigError(f"config [model] init: {exc}") from None
            if isinstance(init, initializers.chrono) and self.cell == "rnn":
                raise ConfigError(f"config [model] init: {self.init!r} initializes the gate biases of an lstm or "
                                  "gru; cell 'rnn' has no gates")
        last_hidden = self.hidden_size * (2 if self.bidirectional else 1)
        if self.tie_weights and self.embedding_dim != last_hidden:
            raise ConfigError(f"config [model] tie_weights: the output layer can use the embedding matrix only when "
                              f"embedding_dim equals the last hidden size ({last_hidden}: hidden_size "
                              f"{self.hidden_size}{' x 2 directions' if self.bidirectional else ''}), got "
                              f"embedding_dim = {self.embedding_dim}")
        if self.embedding_dropout and self.embedding_dim is None:
            raise ConfigError("config [model] embedding_dropout: needs an embedding (set embedding_dim)")


# =========================================================================== the whole run
def _train_from_dict(table) -> TrainConfig:
    if not isinstance(table, Mapping):
        raise ConfigError(f"config [train] must be a table (section), got {_type_name(table)} {table!r}")
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for key in table:
        if key not in fields:
            raise ConfigError(f"config [train]: unknown key {key!r}{_close(key, list(fields))}; valid keys: "
                              f"{', '.join(fields)}")
    values = {k: (None if v == NONE and "None" in str(fields[k].type) else v) for k, v in table.items()}
    try:
        return TrainConfig.from_dict(values)
    except (TypeError, ValueError) as exc:
        message = str(exc).replace("TrainConfig.", "")
        raise ConfigError(f"config [train] {message}") from None


@dataclass
class RunConfig:
    """A whole run: ``data``, ``model`` and ``train`` (a :class:`rnnlab.train.TrainConfig`)."""

    data: DataConfig
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        if self.model.pooling != "last" and self.data.task not in POOLING_TASKS:
            raise ConfigError(f"config [model] pooling: {self.model.pooling!r} pools the sequence of a classifier "
                              f"(tasks {', '.join(map(repr, POOLING_TASKS))}); task {self.data.task!r} takes "
                              "only the default 'last'")
        if self.model.bidirectional and self.data.task == "language_model":
            raise ConfigError("config [model] bidirectional: a language model predicts the next token, so it must not "
                              "read the sequence backwards; set bidirectional = false")
        if self.model.bidirectional and self.train.truncation is not None:
            raise ConfigError("config [model] bidirectional: truncated BPTT ([train] bptt / bptt_k1) carries the state "
                              "forward, which a bidirectional layer cannot; use one or the other")
        valid = [name for name, cls in metrics_module.NAMES.items()
                 if issubclass(cls, (metrics_module.Accuracy, metrics_module.Perplexity,
                                     metrics_module.BitsPerCharacter))
                 != (self.data.task in _REGRESSION)]
        for name in self.train.metrics:
            if name not in valid:
                raise ConfigError(f"config [train] metrics: {name!r} is not a metric of task {self.data.task!r}; "
                                  f"expected names among {', '.join(valid)}")
        if self.model.embedding_dim is not None and self.data.task in _REGRESSION:
            raise ConfigError(f"config [model] embedding_dim: task {self.data.task!r} reads real-valued inputs, not "
                              f"tokens; leave embedding_dim out (got {self.model.embedding_dim})")

    def to_dict(self) -> dict:
        """``{"data": {...}, "model": {...}, "train": {...}}`` with the applicable keys only."""
        model = self.model.to_dict()
        if self.data.task not in POOLING_TASKS:
            del model["pooling"]
        return {"data": self.data.to_dict(), "model": model, "train": self.train.to_dict()}

    @classmethod
    def from_dict(cls, document) -> RunConfig:
        """Build from a parsed TOML document: unknown sections and keys fail, naming them."""
        if not isinstance(document, Mapping):
            raise ConfigError(f"a run configuration must be a table of sections, got {_type_name(document)}")
        for name in document:
            if name not in SECTIONS:
                raise ConfigError(f"config: unknown section [{name}]{_close(name, SECTIONS)}; valid sections: "
                                  f"{', '.join(f'[{s}]' for s in SECTIONS)}")
        if "data" not in document:
            raise ConfigError(f"config: missing section [data] "
                              f"(with at least task = one of {', '.join(map(repr, TASKS))})")
        data = DataConfig.from_dict(document["data"])
        model = document.get("model", {})
        if isinstance(model, Mapping) and "pooling" in model and data.task not in POOLING_TASKS:
            raise ConfigError(f"config [model] pooling: does not apply to task {data.task!r}; it applies to the "
                              f"classifiers of whole sequences, tasks {', '.join(map(repr, POOLING_TASKS))}")
        if data.task == "tagging" and isinstance(model, Mapping) and "bidirectional" not in model:
            model = {**model, "bidirectional": True}  # a tagger reads the whole sentence: bidirectional by default
        return cls(data, ModelConfig.from_dict(model), _train_from_dict(document.get("train", {})))


# =========================================================================== reading, overriding, writing
_PATH = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+")


def _literal(text: str):
    """A TOML literal, or the text itself when it is not one (a bare word)."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(document: Mapping, overrides: Sequence[str]) -> dict:
    """A copy of ``document`` with each ``section.key=value`` of ``overrides`` applied in order.

    The result is validated by :meth:`RunConfig.from_dict` like the file itself; here only the form
    of each override is checked.
    """
    doc = json.loads(json.dumps(document))  # a deep copy of plain TOML data
    for item in overrides:
        path, eq, text = item.partition("=")
        path = path.strip()
        if not eq or not _PATH.fullmatch(path):
            raise ConfigError(f"--set {item!r}: expected section.key=value (e.g. train.lr=0.5 or model.cell=gru)")
        section, *keys = path.split(".")
        if section not in SECTIONS:
            raise ConfigError(f"--set {item!r}: unknown section {section!r}{_close(section, SECTIONS)}; "
                              f"valid sections: {', '.join(SECTIONS)}")
        table = doc.setdefault(section, {})
        for depth, key in enumerate(keys[:-1]):
            table = table.setdefault(key, {})
            if not isinstance(table, dict):
                raise ConfigError(f"--set {item!r}: {section}.{'.'.join(keys[:depth + 1])} is not a table")
        table[keys[-1]] = _literal(text.strip())
    return doc


def resolve_data_paths(config: RunConfig, base_dir) -> RunConfig:
    """``config`` with its ``[data]`` :data:`PATH_KEYS` made absolute: a relative one is joined to ``base_dir``
    (the config file's folder), so the run's saved configuration reads the same files from anywhere."""
    d = config.data
    changes = {key: str(resolve_path(getattr(d, key), base_dir).absolute())
               for key in PATH_KEYS if getattr(d, key) is not None}
    if not changes:
        return config
    return dataclasses.replace(config, data=dataclasses.replace(d, **changes))


def parse_config(text: str, overrides: Sequence[str] = (), *, source: str = "config", base_dir=None) -> RunConfig:
    """A validated :class:`RunConfig` from TOML ``text`` and ``--set`` ``overrides``.

    The ``[data]`` paths are made absolute, relative ones against ``base_dir`` (default: the current folder)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from None
    return resolve_data_paths(RunConfig.from_dict(apply_overrides(document, overrides)), base_dir)


def load_config(path, overrides: Sequence[str] = ()) -> RunConfig:
    """Read the TOML file ``path``, apply ``overrides`` (``["train.lr=0.5", ...]``), validate.

    Relative ``[data]`` paths (``path``, ``train_path``, ...) are taken from the config file's folder."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file '{path}' not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file '{path}': {exc}") from None
    return parse_config(text, overrides, source=f"config file '{path}'", base_dir=path.parent)


def _toml_value(value) -> str:
    if value is None:
        return json.dumps(NONE)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (repr(value) if math.isfinite(value)
                else ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return ("{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
                if value else "{}")
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as TOML")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def to_toml(config: RunConfig, header: str | None = None) -> str:
    """The resolved configuration as TOML that :func:`parse_config` reads back to ``config``."""
    lines = [f"# {line}" for line in (header or "").splitlines()]
    classes = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
    for section, values in config.to_dict().items():
        defaults = {f.name: f.default for f in dataclasses.fields(classes[section])}
        if lines:
            lines.append("")
        lines.append(f"[{section}]")
        for key, value in values.items():
            if value is None and defaults[key] is None:
                lines.append(f"# {key} = (unset)")
            else:
                lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"
