"""Tasks on the user's own files (``classification``, ``language_model``, ``tagging`` and ``forecasting`` with
``path`` or ``train_path``), and the hooks that ``rnnlab evaluate --path`` and ``rnnlab predict --file`` call
per task.

Data builders
-------------
:data:`FILE_BUILDERS` maps a task to ``builder(config, *, run_dir, saved) -> dict`` of the fields of
the task's data (``rnnlab.lab.tasks._Data``); :func:`rnnlab.lab.tasks.build_task` calls it when the
``[data]`` section names files (``DataConfig.reads_files()``). ``run_dir`` is where the task may keep
derived data (None: a temporary folder); ``saved`` holds what a trained run saved (:func:`load_saved`:
``vocab``, ``labels``, ``tokenizer``, ``tags``, ``series``), to rebuild its data exactly.

* ``classification``: CSV/TSV/JSONL rows (``text_column``, ``label_column``) or a directory of class
  folders of ``.txt`` files; split by ``val_frac``/``test_frac`` (seeded, stratified) or given
  parts. The class names (sorted; numerically when all are integers) go to ``labels.json``. A
  label of the validation or test part that training never saw is an error.
* ``language_model``: ``.txt`` files (optionally compressed); the last ``test_frac`` and, before it,
  ``val_frac`` of the *lines* (in file order) are held out. Words are followed by ``<eos>`` at each
  line's end, characters by ``"\\n"``; ``level = "subword"`` trains a BPE tokenizer on the training
  lines (``tokenizer.json``). The parts are encoded once into ``<run>/data/tokens-*.npy`` and
  streamed memory-mapped (:mod:`rnnlab.data.corpus`).
* ``tagging``: CoNLL-style files (:mod:`rnnlab.lab.tasks_tagging`; ``tags.json``).
* ``forecasting``: a CSV/TSV of series (:mod:`rnnlab.lab.tasks_series`; ``series.json``, ``forecast.png``).

File hooks
----------
:data:`FILE_TASKS` maps a task to a :class:`FileTask`: ``batches(run, files)`` (the held-out batches
of other files, for ``evaluate --path``) and ``predict(run, files) -> (header, rows)`` (for
``predict --file``), and the ``loss`` the run was trained with. A task plugs into both commands by
adding its entry.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from rnnlab._files import write_atomic
from rnnlab.data.batches import ArrayBatches, LMStream
from rnnlab.data.corpus import corpus_fingerprint, encode_corpus, load_corpus
from rnnlab.data.readers import COMPRESSIONS, read_lines, split_suffix
from rnnlab.data.records import read_labelled, read_texts
from rnnlab.data.sources import DatasetFormatError
from rnnlab.data.subword import BPETokenizer, train_bpe
from rnnlab.data.text import UNK, Vocabulary, char_tokenize, pad_sequences, word_tokenize
from rnnlab.generate.text import encode_texts
from rnnlab.lab import tasks_series, tasks_tagging
from rnnlab.lab.config import ConfigError, DataConfig, RunConfig
from rnnlab.lab.userdata import DataFiles, data_errors, data_files, split_fractions, split_indices, unseen_labels_error
from rnnlab.nn.functional import log_softmax, softmax
from rnnlab.nn.module import Module
from rnnlab.nn.state import forward_with_states
from rnnlab.training.metrics import confusion_matrix, macro_f1

__all__ = ["FILE_BUILDERS", "FILE_TASKS", "FileTask", "LABELS_FILE", "TOKENIZER_FILE", "EOS", "load_saved",
           "text_tokenizer", "write_confusion"]

#: a classification run's class names, in the model's output order
LABELS_FILE = "labels.json"
#: a subword run's BPE tokenizer
TOKENIZER_FILE = "tokenizer.json"
CORPUS_DIR = "data"
#: the token closing every line of a word- or subword-level corpus (characters use "\n")
EOS = "<eos>"
_BPE_SIZE = 1000


# =========================================================================== saved artefacts
def load_saved(run_dir) -> dict:
    """What a file task saved in ``run_dir``, when present: ``labels`` (list of str), ``tokenizer`` (BPE),
    ``tags`` (a tagger's tag names) and ``series`` (a CSV forecaster's input and target scalers)."""
    run_dir = Path(run_dir)
    saved: dict = {}
    if (run_dir / tasks_tagging.TAGS_FILE).is_file():
        saved["tags"] = tasks_tagging.read_tags(run_dir)
    if (run_dir / tasks_series.SERIES_FILE).is_file():
        saved["series"] = tasks_series.read_series_info(run_dir)
    labels_path, tokenizer_path = run_dir / LABELS_FILE, run_dir / TOKENIZER_FILE
    try:
        if labels_path.is_file():
            labels = json.loads(labels_path.read_text("utf-8"))
            if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
                raise ValueError(f"'{labels_path}' must hold a JSON list of class names")
            saved["labels"] = labels
        if tokenizer_path.is_file():
            saved["tokenizer"] = BPETokenizer.from_json(tokenizer_path.read_text("utf-8"))
    except ModuleNotFoundError as exc:
        raise ConfigError(str(exc)) from None
    except ValueError as exc:
        raise ConfigError(f"a saved file of the run '{run_dir}' is unusable: {exc}") from None
    return saved


def text_tokenizer(d: DataConfig, saved: dict) -> tuple[Callable[[str], list[str]], str, Callable[[list[str]], str]]:
    """``(tokenize, eos, detokenize)`` of a text task on the user's files (``level``, ``tokenizer``)."""
    if d.level == "char":
        return char_tokenize, "\n", "".join
    if d.level == "subword":
        bpe = saved.get("tokenizer")
        if bpe is None:
            raise ConfigError("this subword run has no tokenizer.json; it cannot tokenize text")
        return bpe, EOS, lambda pieces: bpe.detokenize(p for p in pieces if p != EOS)
    if d.tokenizer == "whitespace":
        return (lambda text: text.lower().split()), EOS, " ".join
    return word_tokenize, EOS, " ".join


def _class_order(labels) -> list[str]:
    """The distinct labels sorted: numerically when all are integers ("2" before "10"), else as strings."""
    distinct = set(labels)
    try:
        return sorted(distinct, key=int)
    except ValueError:
        return sorted(distinct)


# =========================================================================== classification
def _read_classification(d: DataConfig, files: DataFiles) -> dict[str, tuple[list[str], list[str]]]:
    if files.format not in ("csv", "tsv", "jsonl", "txt"):
        raise ConfigError(f"config [data]: classification reads .csv, .tsv, .jsonl files or a directory of class "
                          f"folders of .txt files; got format {files.format!r}")
    with data_errors():
        return {part: read_labelled(paths, files.format, text_column=d.text_column, label_column=d.label_column,
                                    root=files.roots[part])
                for part, paths in files.parts.items()}


def _classification(config: RunConfig, *, run_dir, saved: dict) -> dict:
    d = config.data
    files = data_files(d)
    read = _read_classification(d, files)
    if files.given:
        parts = read
    else:
        texts, labels = read["all"]
        if d.limit is not None and d.limit < len(texts):
            keep = np.sort(np.random.default_rng(d.seed).permutation(len(texts))[:d.limit])
            texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
        val_frac, test_frac = split_fractions(d)
        idx = split_indices(len(texts), val_frac, test_frac, seed=d.seed, stratify=np.asarray(labels), what="texts")
        parts = {part: ([texts[i] for i in ix], [labels[i] for i in ix]) for part, ix in idx.items() if ix is not None}
    classes = saved.get("labels") or _class_order(parts["train"][1])
    if len(classes) < 2:
        raise ConfigError(f"classification needs at least 2 classes in the training part; it has only "
                          f"{', '.join(map(repr, classes))}")
    class_id = {name: i for i, name in enumerate(classes)}
    for part in ("val", "test"):
        if part in parts and (unseen := set(parts[part][1]) - set(class_id)):
            raise unseen_labels_error(part, unseen, classes)
    tokenize = char_tokenize if d.level == "char" else (
        (lambda text: text.lower().split()) if d.tokenizer == "whitespace" else word_tokenize)
    tokens = {part: [tokenize(t) for t in texts] for part, (texts, _) in parts.items()}
    _check_poolable(config, tokens)
    vocab = saved.get("vocab") or Vocabulary(d.min_freq, d.max_size).fit(tokens["train"])
    maxlen = d.maxlen or max(1, max(len(t) for t in tokens["train"]))
    arrays, batches = {}, {}
    for part, seqs in tokens.items():
        ids, mask = pad_sequences([vocab.encode(t) for t in seqs], maxlen=maxlen, padding=d.padding,
                                  value=vocab.pad_id)
        y = np.array([class_id[label] for label in parts[part][1]], dtype=np.int64)
        arrays[part] = (ids, mask, y)
        batches[part] = ArrayBatches(ids, y, batch_size=d.batch_size, mask=mask, shuffle=(part == "train"),
                                     seed=d.seed, bucket=d.bucket)

    def report(model: Module, split: str) -> dict:
        return _classification_report(model, *arrays[split], classes) if split in arrays else {}

    counts = ", ".join(f"{part} {len(texts)}" for part, (texts, _) in parts.items())
    line = (f"{len(files.all_files())} {files.format} file(s): {counts} texts; {len(classes)} classes "
            f"({', '.join(classes[:10])}{' ...' if len(classes) > 10 else ''}); vocabulary {len(vocab)} tokens; "
            f"maxlen {maxlen}; {len(batches['train'])} training batches of {d.batch_size}")
    return dict(train=batches["train"], val=batches.get("val"), test=batches.get("test"), inputs="ids",
                n_inputs=len(vocab), n_outputs=len(classes), sequence_output=False, loss="cross_entropy",
                metrics=("accuracy",), timesteps=maxlen, mask_zero=True, vocab=vocab, labels=tuple(classes),
                description=[line], artefacts={LABELS_FILE: (json.dumps(classes, ensure_ascii=False) + "\n").encode()},
                report=report)


def _check_poolable(config: RunConfig, tokens: dict[str, list[list[str]]]) -> None:
    """With ``[model] pooling`` "max"/"mean", every text needs a token to pool over: an empty one fails here,
    named, rather than as an all-padding batch row in the middle of training."""
    if config.model.pooling == "last":
        return
    for part, seqs in tokens.items():
        empty = [i for i, t in enumerate(seqs) if not t]
        if empty:
            raise ConfigError(f"config [model] pooling = {config.model.pooling!r}: text {empty[0] + 1} of the {part} "
                              f"part ({len(empty)} text(s) in all) has no tokens, so there is no step to pool over; "
                              "remove the empty texts or use pooling = 'last'")


def _outputs(model: Module, x: np.ndarray, mask: np.ndarray | None, batch_size: int = 256) -> np.ndarray:
    """The model's outputs for ``x`` in batches, inference mode, each batch from zero state."""
    outs = []
    for start in range(0, len(x), batch_size):
        sl = slice(start, start + batch_size)
        out, _ = forward_with_states(model, x[sl], {}, mask=None if mask is None else mask[sl], training=False)
        outs.append(np.asarray(out[0] if isinstance(out, tuple) else out, dtype=np.float64))
    return np.concatenate(outs, axis=0)


def _classification_report(model: Module, ids, mask, y, classes) -> dict:
    predicted = _outputs(model, ids, mask).argmax(axis=1)  # (N,)
    cm = confusion_matrix(y, predicted, len(classes))
    return {"macro_f1": macro_f1(cm), "confusion_matrix": {"labels": list(classes), "matrix": cm.tolist()}}


def write_confusion(run_dir, split: str, confusion: dict, log=print) -> list[Path]:
    """``confusion-<split>.json`` and, with matplotlib, ``confusion-<split>.png`` in ``run_dir``."""
    run_dir = Path(run_dir)
    path = run_dir / f"confusion-{split}.json"
    write_atomic(path, (json.dumps(confusion, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    written = [path]
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        log("matplotlib is not installed: the confusion matrix is written as JSON only")
        return written
    labels, matrix = confusion["labels"], np.asarray(confusion["matrix"])
    size = 2.5 + 0.45 * len(labels)
    fig = Figure(figsize=(size, size), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"confusion matrix ({split})")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center",
                color="white" if count > matrix.max() / 2 else "black")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    write_atomic(run_dir / f"confusion-{split}.png", buf.getvalue())
    return [*written, run_dir / f"confusion-{split}.png"]


# =========================================================================== language model
def _count_lines(files: list[Path]) -> int:
    """Lines of the files (a last line without a newline counts), read as bytes in chunks; an empty file is an
    error."""
    total = 0
    for path in files:
        _, compression = split_suffix(path)
        opener = COMPRESSIONS[compression].open if compression else open
        last, seen = b"\n", False
        try:
            with opener(path, "rb") as f:
                for chunk in iter(lambda f=f: f.read(1 << 22), b""):
                    total += chunk.count(b"\n")
                    last, seen = chunk[-1:], True
        except (OSError, EOFError, ValueError) as exc:
            raise DatasetFormatError(f"{str(path)!r}: cannot read the file ({exc})") from None
        if last == b"\n" and not seen:
            raise DatasetFormatError(f"{str(path)!r} is empty: a language model needs text")
        total += last != b"\n"
    return total


def _lines(files: list[Path], start: int = 0, stop: int | None = None) -> Callable[[], Iterator[str]]:
    """A callable giving lines ``[start, stop)`` of the files, read again at each call (streamed)."""
    def lines():
        every = (line for path in files for _, line in read_lines(path))
        return islice(every, start, stop)
    return lines


def _language_model(config: RunConfig, *, run_dir, saved: dict) -> dict:
    d = config.data
    files = data_files(d)
    if files.format != "txt":
        raise ConfigError(f"config [data]: a language model reads text files (.txt, optionally .gz/.bz2/.xz); got "
                          f"format {files.format!r}")
    with data_errors():
        if files.given:
            parts = {part: _lines(paths) for part, paths in files.parts.items()}
            sizes = {part: _count_lines(paths) for part, paths in files.parts.items()}
        else:
            n = _count_lines(files.parts["all"])
            val_frac, test_frac = split_fractions(d)
            idx = split_indices(n, val_frac, test_frac, ordered=True, what="lines")
            parts = {part: _lines(files.parts["all"], int(ix[0]), int(ix[-1]) + 1)
                     for part, ix in idx.items() if ix is not None}
            sizes = {part: len(ix) for part, ix in idx.items() if ix is not None}
        for part, size in sizes.items():
            if size == 0:
                raise ConfigError(f"the {part} file(s) of the language model are empty: "
                                  f"{', '.join(repr(str(p)) for p in files.parts[part])}")
        artefacts = {}
        if d.level == "subword":
            if "tokenizer" not in saved:
                try:
                    saved = {**saved, "tokenizer": train_bpe(parts["train"](), d.max_size or _BPE_SIZE,
                                                             specials=(UNK, EOS))}
                except ModuleNotFoundError as exc:
                    raise ConfigError(str(exc)) from None
            artefacts[TOKENIZER_FILE] = saved["tokenizer"].to_json().encode("utf-8")
        tokenize, eos, _ = text_tokenizer(d, saved)
        fingerprint = corpus_fingerprint(files.parts, {
            "level": d.level, "tokenizer": d.tokenizer, "min_freq": d.min_freq, "max_size": d.max_size,
            "val_frac": d.val_frac, "test_frac": d.test_frac, "limit": d.limit})
        if run_dir is None:
            with tempfile.TemporaryDirectory(prefix="rnnlab-corpus-") as tmp:  # the maps outlive the files
                vocab, ids = encode_corpus(parts, tokenize, tmp, eos=eos, vocab=saved.get("vocab"),
                                           min_freq=d.min_freq, max_size=None if d.level == "subword" else d.max_size)
        else:
            work = Path(run_dir) / CORPUS_DIR
            ids = load_corpus(work, fingerprint) if saved.get("vocab") is not None else None
            vocab = saved.get("vocab")
            if ids is None:
                vocab, ids = encode_corpus(parts, tokenize, work, eos=eos, vocab=vocab, min_freq=d.min_freq,
                                           max_size=None if d.level == "subword" else d.max_size,
                                           fingerprint=fingerprint)
    if d.limit is not None:
        ids = {part: a[:d.limit] for part, a in ids.items()}
    streams = {}
    for part, a in ids.items():
        try:
            bptt = d.bptt if part == "train" else (d.eval_bptt or d.bptt)
            streams[part] = LMStream(a, batch_size=d.batch_size, bptt=bptt)
        except ValueError as exc:
            raise ConfigError(f"the {part} part of the corpus ({len(a)} tokens) is too short for "
                              f"batch_size={d.batch_size}: {exc}") from None
    metric = "bits_per_character" if d.level == "char" else "perplexity"
    description = [f"{len(files.all_files())} text file(s), {d.level} level: "
                   + ", ".join(f"{part} {sizes[part]:,} lines, {len(a):,} tokens" for part, a in ids.items())
                   + f"; vocabulary {len(vocab)}; {len(streams['train'])} training windows of "
                     f"{d.batch_size} x {d.bptt}"]
    return dict(train=streams["train"], val=streams.get("val"), test=streams.get("test"), inputs="ids",
                n_inputs=len(vocab), n_outputs=len(vocab), sequence_output=True, loss="cross_entropy",
                metrics=(metric,), timesteps=d.bptt, vocab=vocab, description=description, artefacts=artefacts)


def _tagging(config: RunConfig, *, run_dir=None, saved: dict) -> dict:
    return tasks_tagging.build(config, saved.get("vocab"))


def _forecasting(config: RunConfig, *, run_dir=None, saved: dict) -> dict:
    return tasks_series.build(config)


#: task name -> how a run of that task reads its own files (``[data] path``)
FILE_BUILDERS: dict[str, Callable[..., dict]] = {"classification": _classification, "language_model": _language_model,
                                                 "tagging": _tagging, "forecasting": _forecasting}


# =========================================================================== evaluate --path, predict --file
@dataclass(frozen=True)
class FileTask:
    """How ``rnnlab evaluate RUN --path FILE`` and ``rnnlab predict RUN --file FILE`` treat a task's runs.

    Both callables take ``(config, model, vocab, saved, files)``: the run's configuration, model,
    vocabulary (or None), :func:`load_saved` artefacts, and the :class:`~rnnlab.lab.userdata.DataFiles`
    of the new file(s) (``files.parts["all"]``).

    Attributes
    ----------
    batches : callable -> (batches, report)
        The file's batches for ``Trainer.evaluate``, and ``report(model) -> dict`` of extra results
        (or None).
    predict : callable -> (header, rows)
        One row per input (tuple of values matching ``header``).
    loss : str
        The loss the run was trained with (``rnnlab.losses.get``).
    """

    batches: Callable[..., tuple]
    predict: Callable[..., tuple[list[str], list[tuple]]]
    loss: str = "cross_entropy"


def _classes_of(saved: dict) -> list[str]:
    if "labels" not in saved:
        raise ConfigError(f"this run has no {LABELS_FILE}: it is not a classification run trained on files")
    return saved["labels"]


def _classification_batches(config: RunConfig, model, vocab, saved, files: DataFiles):
    d, classes = config.data, _classes_of(saved)
    texts, labels = _read_classification(d, files)["all"]
    if unseen := set(labels) - set(classes):
        raise unseen_labels_error("evaluated", unseen, classes)
    tokenize, _, _ = text_tokenizer(d, saved)
    ids, mask = pad_sequences([vocab.encode(tokenize(t)) for t in texts], maxlen=d.maxlen, padding=d.padding,
                              value=vocab.pad_id)
    y = np.array([classes.index(label) for label in labels], dtype=np.int64)
    batches = ArrayBatches(ids, y, batch_size=d.batch_size, mask=mask, shuffle=False, bucket=d.bucket)
    return batches, (lambda m: _classification_report(m, ids, mask, y, classes))


def _texts(config: RunConfig, files: DataFiles) -> list[str]:
    with data_errors():
        return read_texts(files.parts["all"], files.format, config.data.text_column)


def _classification_predict(config: RunConfig, model, vocab, saved, files: DataFiles):
    classes = _classes_of(saved)
    texts = _texts(config, files)
    tokenize, _, _ = text_tokenizer(config.data, saved)
    try:
        ids, mask = encode_texts(vocab, texts, tokenizer=tokenize, maxlen=config.data.maxlen)
    except ValueError as exc:
        raise ConfigError(f"cannot predict for the file's texts: {exc}") from None
    proba = softmax(_outputs(model, ids, mask))  # (N, K)
    best = proba.argmax(axis=1)
    return ["label", "probability", "text"], [(classes[c], float(p[c]), text)
                                              for c, p, text in zip(best, proba, texts)]


def _lm_batches(config: RunConfig, model, vocab, saved, files: DataFiles):
    d = config.data
    if files.format != "txt":
        raise ConfigError(f"a language model is evaluated on text files (.txt); got format {files.format!r}")
    tokenize, eos, _ = text_tokenizer(d, saved)
    with data_errors(), tempfile.TemporaryDirectory(prefix="rnnlab-corpus-") as tmp:
        _, ids = encode_corpus({"eval": _lines(files.parts["all"])}, tokenize, tmp, eos=eos, vocab=vocab)
    try:
        return LMStream(ids["eval"], batch_size=d.batch_size, bptt=d.eval_bptt or d.bptt), None
    except ValueError as exc:
        raise ConfigError(f"the file is too short to evaluate with batch_size={d.batch_size}: {exc}") from None


def _lm_predict(config: RunConfig, model, vocab, saved, files: DataFiles):
    """Per line: its perplexity under the model, read from a fresh state after an end-of-line token
    (every token of the line and the line's end are predicted), and its number of tokens."""
    d = config.data
    texts = _texts(config, files)
    tokenize, eos, _ = text_tokenizer(d, saved)
    eos_id = vocab.encode([eos])[0]
    seqs = [[eos_id, *vocab.encode(tokenize(t)), eos_id] for t in texts]
    rows = []
    V = len(vocab)
    order = np.argsort([len(s) for s in seqs], kind="stable")  # similar lengths together: little padding
    nll = np.zeros(len(seqs))
    start = 0
    while start < len(order):
        T = len(seqs[order[min(start + 255, len(order) - 1)]]) - 1
        B = max(1, min(256, 4_000_000 // max(1, T * V)))
        chosen = order[start:start + B]
        T = max(len(seqs[i]) for i in chosen) - 1
        x = np.zeros((len(chosen), T), dtype=np.int64)
        y = np.zeros((len(chosen), T), dtype=np.int64)
        mask = np.zeros((len(chosen), T), dtype=bool)
        for r, i in enumerate(chosen):
            s = seqs[i]
            x[r, :len(s) - 1], y[r, :len(s) - 1], mask[r, :len(s) - 1] = s[:-1], s[1:], True
        logp = log_softmax(_outputs(model, x, mask, batch_size=len(chosen)))  # (B, T, V)
        picked = np.take_along_axis(logp, y[:, :, None], axis=2)[:, :, 0]  # (B, T)
        nll[chosen] = -(picked * mask).sum(axis=1) / mask.sum(axis=1)
        start += len(chosen)
    for i, text in enumerate(texts):
        rows.append((float(np.exp(nll[i])), len(seqs[i]) - 1, text))
    return ["perplexity", "tokens", "text"], rows


def _saved_item(saved: dict, key: str, name: str, task: str):
    if key not in saved:
        raise ConfigError(f"this run has no {name}: it is not a {task} run trained on files")
    return saved[key]


def _tagging_batches(config: RunConfig, model, vocab, saved, files: DataFiles):
    tags = _saved_item(saved, "tags", tasks_tagging.TAGS_FILE, "tagging")
    return tasks_tagging.file_batches(config, vocab, tags, files.all_files())


def _tagging_predict(config: RunConfig, model, vocab, saved, files: DataFiles):
    tags = _saved_item(saved, "tags", tasks_tagging.TAGS_FILE, "tagging")
    return tasks_tagging.predict_file(config, model, vocab, tags, files.all_files())


def _series_batches(config: RunConfig, model, vocab, saved, files: DataFiles):
    scalers = _saved_item(saved, "series", tasks_series.SERIES_FILE, "forecasting")
    return tasks_series.file_batches(config, scalers, files.all_files())


def _series_predict(config: RunConfig, model, vocab, saved, files: DataFiles):
    scalers = _saved_item(saved, "series", tasks_series.SERIES_FILE, "forecasting")
    return tasks_series.predict_file(config, model, scalers, files.all_files())


#: task name -> how a trained run evaluates and predicts on a file
FILE_TASKS: dict[str, FileTask] = {
    "classification": FileTask(_classification_batches, _classification_predict),
    "language_model": FileTask(_lm_batches, _lm_predict),
    "tagging": FileTask(_tagging_batches, _tagging_predict),
    "forecasting": FileTask(_series_batches, _series_predict, loss="mse"),
}
