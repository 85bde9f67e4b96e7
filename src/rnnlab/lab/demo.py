"""The main job, ``rnnlab demo``: two small end-to-end runs on real data.

``rnnlab demo`` (or ``rnnlab demo charlm``): a character-level language model
-------------------------------------------------------------------------------
Needs nothing but Python itself: it learns to write Python from the standard library's own source
files, which every installation has. ``run_charlm(CharLMConfig(...))``

1. builds the corpus (:func:`stdlib_corpus`): the top-level ``*.py`` files of the standard library
   folder (``sysconfig.get_paths()["stdlib"]``), private ``_*.py`` modules left out, sorted by
   name, read as UTF-8 and concatenated until ``corpus_bytes`` characters (1,000,000 by default:
   ``abc.py`` ... ``enum.py`` on CPython 3.11, 36 files, 96 distinct characters); ``limit`` cuts
   it shorter still, for quick runs;
2. splits it: the first 90 % for training, the last 10 % (other modules than those trained on) for
   validation; the :class:`~rnnlab.text.Vocabulary` is the corpus's closed character set (no
   special tokens; as char-rnn does, it covers the few characters only the validation part has);
3. trains ``Embedding(V, 32) -> LSTM(H, return_sequences=True) -> Dense(V)`` (H = ``hidden_size``,
   256 by default) with softmax cross-entropy and Adam (learning rate 0.006, times 0.7 after each
   epoch), gradients clipped to norm 5, through :class:`~rnnlab.train.Trainer` on an
   :class:`~rnnlab.data.LMStream`: the training text is cut into ``batch_size`` = 32 contiguous
   rows read in windows of ``bptt`` = 64 characters, the LSTM state carried from each window into
   the next without backpropagating through it (truncated BPTT), each epoch starting at a seeded
   random offset; NumPy's OpenBLAS is held to one thread meanwhile (:func:`blas_threads`);
4. shows progress (a tqdm bar on a terminal, log lines otherwise), and after every epoch the
   validation loss in nats per character, the bits per character next to the uniform baseline
   ``log2 V``, and a short sample;
5. stops after ``epochs`` epochs, or earlier once ``minutes`` have passed since the start (the
   epoch in progress is then closed: validated, recorded, checkpointed);
6. prints samples primed with ``"def "``, ``"class "`` and ``"import "`` at temperatures 0.6
   and 0.9, each prime read after two newlines (``LINE_START``) so that the model sees the
   start of a top-level statement, as PEP 8 lays out a module.

The trainer's run directory (``train_config.json``, ``train.log``, history, curves, checkpoints,
plus ``vocab.json``, ``corpus.json`` and ``samples.txt``) goes to ``run_dir``, or to a temporary
directory deleted at the end when ``run_dir`` is None.

``rnnlab demo sentiment``: a sentiment classifier
--------------------------------------------------
``run_sentiment(SentimentConfig(...))`` loads the 3,000 labelled UCI sentiment sentences (amazon,
imdb, yelp; from the data directory, ``RNNLAB_DATA`` or ``--data-dir``), shuffles them with the
seed, holds out 20 % as a test set, fits a word vocabulary on the training part only, and trains
``Embedding(mask_zero) -> LSTM (or GRU, tanh RNN; bidirectional by default) -> Dense(2)`` with
softmax cross-entropy and Adam through ``Sequential.fit``. It prints the model summary, one line
per epoch (training loss and accuracy, test loss and accuracy, seconds), the final test accuracy,
and the predictions for three probe phrases. Nothing is written to disk.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import sys
import sysconfig
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rnnlab import optim
from rnnlab._files import write_atomic
from rnnlab.data.batches import LMStream
from rnnlab.data.datasets import DatasetError, uci_sentiment
from rnnlab.data.text import Vocabulary, char_tokenize, pad_sequences, word_tokenize
from rnnlab.generate import sample
from rnnlab.nn import losses
from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.functional import softmax
from rnnlab.nn.layers import Dense, Embedding
from rnnlab.nn.recurrent import LSTM, RECURRENT, recurrent_class
from rnnlab.nn.sequential import Sequential
from rnnlab.training.callbacks import Callback
from rnnlab.training.checkpoint import claim_run_dir
from rnnlab.training.trainer import TrainConfig, Trainer, latest_checkpoint

__all__ = [
    "CharLMConfig", "CharLMResult", "run_charlm", "build_charlm", "stdlib_corpus", "TimeBudget", "PRIMES", "LINE_START",
    "CELLS", "PROBES", "SentimentConfig", "SentimentResult", "run_sentiment", "build_classifier",
]


def _check_positive_int(name: str, value, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        expected = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{name} must be {expected}, got {value!r}")


# =========================================================================== character LM
#: what the character LM demo's generation starts from, one sample each
PRIMES = ("def ", "class ", "import ")
LINE_START = "\n\n"  #: read before each prime: a top-level statement starts after a blank line


@dataclass
class CharLMConfig:
    """Settings of the character-LM demo (the command-line options map onto these fields).

    Parameters
    ----------
    epochs : int >= 1
        Passes over the training text (unless ``minutes`` ends the run first).
    seed : int >= 0
        Seeds the weights, the epochs' stream offsets and the samples: the same seed gives the same
        run (as long as ``minutes`` does not cut it).
    hidden_size : int >= 1
        H, the LSTM's units.
    minutes : float > 0 or None
        Time budget: no new batch is started once this many minutes have passed since the demo
        started; the current epoch is closed (validated, checkpointed) and the samples printed.
    corpus_bytes : int >= 2000
        Characters of standard-library source to read (about bytes: the files are ASCII).
    limit : int >= 2000 or None
        Keep only the first ``limit`` characters of the corpus (quick runs, tests).
    run_dir : str or None
        The trainer's run directory; None uses a temporary one, deleted at the end.
    embed_dim, batch_size, bptt, lr, clip_norm, val_fraction
        Embedding size E; parallel rows B and window length k of the stream; Adam's learning rate;
        global gradient-norm clip; the validation share of the corpus (taken from its end).
    sample_length, temperatures, primes
        The final samples: characters per sample, for each prime at each temperature.
    stdlib : str or None
        The folder to read instead of the running Python's standard library (tests).
    """

    epochs: int = 5
    seed: int = 0
    hidden_size: int = 256
    minutes: float | None = 2.75
    corpus_bytes: int = 1_000_000
    limit: int | None = None
    run_dir: str | None = None
    embed_dim: int = 32
    batch_size: int = 32
    bptt: int = 64
    lr: float = 6e-3
    lr_decay: float = 0.7
    clip_norm: float = 5.0
    val_fraction: float = 0.1
    sample_length: int = 300
    temperatures: tuple[float, ...] = (0.6, 0.9)
    primes: tuple[str, ...] = PRIMES
    stdlib: str | None = None

    def __post_init__(self):
        for key in ("epochs", "hidden_size", "embed_dim", "batch_size", "bptt", "sample_length"):
            _check_positive_int(key, getattr(self, key))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")
        _check_positive_int("corpus_bytes", self.corpus_bytes, 2000)
        if self.limit is not None:
            _check_positive_int("limit", self.limit, 2000)
        if isinstance(self.lr_decay, bool) or not isinstance(self.lr_decay, (int, float)) or not 0 < self.lr_decay <= 1:
            raise ValueError(f"lr_decay must be a number in (0, 1], got {self.lr_decay!r}")
        for key in ("minutes", "lr", "clip_norm"):
            value = getattr(self, key)
            if value is None and key == "minutes":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ValueError(f"{key} must be a finite number > 0, got {value!r}")
        if not 0.0 < self.val_fraction < 0.5:
            raise ValueError(f"val_fraction must lie in (0, 0.5), got {self.val_fraction!r}")
        self.temperatures = tuple(self.temperatures)
        self.primes = tuple(self.primes)
        if not self.temperatures or not all(isinstance(t, (int, float)) and t > 0 for t in self.temperatures):
            raise ValueError(f"temperatures must be numbers > 0, got {self.temperatures!r}")
        if not self.primes or not all(isinstance(p, str) and p for p in self.primes):
            raise ValueError(f"primes must be non-empty strings, got {self.primes!r}")


@dataclass
class CharLMResult:
    """What the character-LM demo measured.

    ``val_loss`` is in nats per character, ``val_bpc`` in bits per character (``val_loss / ln 2``),
    ``baseline_bpc = log2 V`` what a uniform guess over the vocabulary scores; ``samples`` maps
    ``(prime, temperature)`` to the generated continuation; ``stopped_by_budget`` says whether
    ``minutes`` ended training before ``epochs``.
    """

    history: dict[str, list]
    val_loss: float
    val_bpc: float
    baseline_bpc: float
    vocab_size: int
    n_train: int
    n_val: int
    files: list[str]
    samples: dict[tuple[str, float], str]
    epochs_run: int
    steps: int
    stopped_by_budget: bool
    seconds: float
    run_dir: str | None


def stdlib_corpus(max_chars: int, root: str | Path | None = None) -> tuple[str, list[str]]:
    """The demo's corpus: the standard library's own top-level source files, in a fixed order.

    Parameters
    ----------
    max_chars : int
        Stop once the text holds this many characters (the last file is cut).
    root : str or Path, optional
        The folder to read; default ``sysconfig.get_paths()["stdlib"]``.

    Returns
    -------
    text : str
        The files' contents, each ending with a newline, concatenated and cut to ``max_chars``.
    files : list of str
        The names of the files read, in order.

    Notes
    -----
    The files are ``root/*.py`` without the private ``_*.py`` modules (some are generated tables),
    sorted by name (code-point order), read as UTF-8 (PEP 3120's default for source; an undecodable
    byte becomes U+FFFD). So the corpus depends only on the Python version installed.

    Raises
    ------
    DatasetError
        When ``root`` holds no such file (a Python shipped with compiled ``.pyc`` files only).
    """
    root = Path(sysconfig.get_paths()["stdlib"] if root is None else root)
    paths = sorted((p for p in root.glob("*.py") if not p.name.startswith("_") and p.is_file()), key=lambda p: p.name)
    if not paths:
        raise DatasetError(f"the standard library folder '{root}' holds no *.py source files (this Python may ship "
                           "compiled .pyc files only), so the char-LM demo has no corpus; try `rnnlab demo sentiment`")
    parts, files, size = [], [], 0
    for path in paths:
        if size >= max_chars:
            break
        text = path.read_bytes().decode("utf-8", errors="replace").replace("\r\n", "\n")
        if not text.endswith("\n"):
            text += "\n"
        parts.append(text)
        files.append(path.name)
        size += len(text)
    return "".join(parts)[:max_chars], files


def build_charlm(vocab_size: int, config: CharLMConfig) -> Sequential:
    """``Embedding(V, E) -> LSTM(H, return_sequences=True) -> Dense(V)`` (next-character logits), seeded."""
    return Sequential([Embedding(vocab_size, config.embed_dim, seed=config.seed),
                       LSTM(config.hidden_size, return_sequences=True, seed=config.seed + 1),
                       Dense(vocab_size, seed=config.seed + 2)])


class TimeBudget(Callback):
    """Stop training (``trainer.stop_training``) after the first batch that ends ``seconds`` after ``start``.

    ``start`` is a ``time.monotonic()`` reading (default: when training begins). The trainer then
    closes the epoch in progress as usual: validation, history, checkpoint. ``triggered`` tells
    whether the budget cut the run (never on its very last batch, which ends it anyway).
    """

    def __init__(self, seconds: float, start: float | None = None):
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
            raise ValueError(f"seconds must be a number > 0, got {seconds!r}")
        self.seconds = float(seconds)
        self.start = start
        self.triggered = False

    def on_train_begin(self, trainer):
        if self.start is None:
            self.start = time.monotonic()

    def on_batch_end(self, trainer, logs):
        last = trainer.batch >= len(trainer.train) and trainer.epoch + 1 >= trainer.config.epochs
        if not self.triggered and not last and time.monotonic() - self.start >= self.seconds:
            self.triggered = True
            trainer.stop_training = True
            trainer.log(f"time budget of {self.seconds / 60:g} min reached at epoch {trainer.epoch + 1}, batch "
                        f"{trainer.batch}/{len(trainer.train)} (step {trainer.step}): training stops after this "
                        "epoch's validation")


class _EpochReport(Callback):
    """After each epoch: the validation loss in nats and bits per character, and a short sample (temperature 0.6)."""

    def __init__(self, vocab: Vocabulary, baseline_bpc: float, seed: int, length: int = 160):
        self.vocab, self.baseline_bpc, self.seed, self.length = vocab, baseline_bpc, seed, length

    def on_epoch_end(self, trainer, epoch, logs):
        trainer.log(f"validation after epoch {epoch + 1}: {logs['val_loss']:.4f} nats/char = "
                    f"{logs['val_bits_per_character']:.4f} bits/char "
                    f"(uniform baseline log2 V = {self.baseline_bpc:.3f})")
        text = PRIMES[0] + sample(trainer.model, self.vocab, LINE_START + PRIMES[0], length=self.length,
                                  temperature=0.6, seed=np.random.default_rng([self.seed, epoch]))
        trainer.log(f"sample after epoch {epoch + 1} (temperature 0.6):\n" + _indent(text))


def _indent(text: str, prefix: str = "    | ") -> str:
    return "\n".join(prefix + line for line in text.split("\n"))


_BLAS_PREFIXES = ("openblas", "scipy_openblas")
_BLAS_SUFFIXES = ("", "64_")


@contextmanager
def blas_threads(n: int):
    """Limit the OpenBLAS that NumPy loaded to ``n`` threads inside the block (best effort); yields the
    previous count, or None when nothing was changed.

    Why: a character LSTM's products are small ((B, H) by (H, 4H) once per step, thousands per
    second). On an idle 2-core machine a second BLAS thread makes a step 1.3-1.6 times faster, but
    as soon as another process competes for the cores every product waits for the descheduled
    thread: a step (H = 256, B = 32, T = 64) then took 140 ms on one thread and 360-6,300 ms on two.
    One thread is the choice that cannot collapse. How: the ``*openblas*`` library in
    ``/proc/self/maps`` (Linux) is opened with ctypes and its ``openblas_set_num_threads`` (or the
    ``scipy_openblas_..._64_`` spelling of NumPy's wheels) called, as threadpoolctl does. Nothing
    changes on other systems or BLAS libraries, nor when ``OPENBLAS_NUM_THREADS`` or
    ``OMP_NUM_THREADS`` is set (the user chose).
    """
    funcs = None
    if not (os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")):
        try:
            with open("/proc/self/maps", encoding="utf-8") as maps:
                paths = sorted({line.split()[-1] for line in maps if "openblas" in line.rsplit("/", 1)[-1].lower()})
            for path in paths:
                lib = ctypes.CDLL(path)
                for prefix in _BLAS_PREFIXES:
                    for suffix in _BLAS_SUFFIXES:
                        get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                        put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                        if get is not None and put is not None and funcs is None:
                            funcs = (get, put)
        except OSError:
            funcs = None
    if funcs is None:
        yield None
        return
    get, put = funcs
    get.restype, put.argtypes = ctypes.c_int, [ctypes.c_int]
    before = get()
    put(n)
    try:
        yield before
    finally:
        put(before)


def run_charlm(config: CharLMConfig, print_fn=print) -> CharLMResult:
    """Build the corpus, train the character LSTM, report and sample; see the module docstring.

    NumPy's OpenBLAS runs on one thread meanwhile (see :func:`blas_threads`). Raises DatasetError
    when the standard library has no source files, FileExistsError when ``config.run_dir`` already
    holds a training run.
    """
    with blas_threads(1) as before:
        return _run_charlm(config, print_fn, blas_note="" if before in (None, 1) else
                           f"; NumPy's OpenBLAS on 1 thread instead of {before} (faster for these small products)")


def _run_charlm(config: CharLMConfig, print_fn, blas_note: str) -> CharLMResult:
    start = time.monotonic()
    if config.run_dir is not None and latest_checkpoint(config.run_dir) is not None:
        raise FileExistsError(f"the run directory '{config.run_dir}' already holds a training run; "
                              "choose another --run-dir (or delete that one)")
    text, files = stdlib_corpus(config.corpus_bytes if config.limit is None else min(config.corpus_bytes, config.limit),
                                config.stdlib)
    n_val = round(config.val_fraction * len(text))
    train_text, val_text = text[:-n_val], text[-n_val:]
    # the closed character set of the corpus (char-rnn's choice)
    vocab = Vocabulary(specials=()).fit([char_tokenize(text)])
    V = len(vocab)
    baseline_bpc = math.log2(V)
    train_ids = np.array(vocab.encode(char_tokenize(train_text)), dtype=np.int64)  # (L_train,)
    val_ids = np.array(vocab.encode(char_tokenize(val_text)), dtype=np.int64)  # (L_val,)
    try:
        train = LMStream(train_ids, batch_size=config.batch_size, bptt=config.bptt, seed=config.seed)
        val = LMStream(val_ids, batch_size=config.batch_size, bptt=config.bptt)
    except ValueError as exc:
        raise ValueError(f"the corpus of {len(text):,} characters is too short for batch_size={config.batch_size}, "
                         f"bptt={config.bptt}: {exc}") from None

    print_fn(f"Character-level LSTM on the Python {sys.version.split()[0]} standard library's own source: "
             f"{len(text):,} characters of {len(files)} files ({files[0]} ... {files[-1]}, sorted by name, "
             f"private _*.py skipped) from {Path(config.stdlib or sysconfig.get_paths()['stdlib'])}")
    print_fn(f"train {len(train_text):,} characters, validation {len(val_text):,} "
             f"(the last {config.val_fraction:.0%}); "
             f"vocabulary V = {V} characters, so a uniform guess scores log2 V = {baseline_bpc:.3f} bits/char")
    model = build_charlm(V, config)
    model.summary(input_shape=(None, config.bptt), print_fn=print_fn)
    limit = "" if config.minutes is None else f", time budget {config.minutes:g} min"
    print_fn(f"truncated BPTT: {config.batch_size} contiguous rows read in windows of {config.bptt} characters, "
             f"the state carried between windows; {len(train)} windows per epoch, {config.epochs} epoch(s){limit}; "
             f"Adam lr {config.lr:g}, gradient norm clipped to {config.clip_norm:g}{blas_note}")

    train_config = TrainConfig(epochs=config.epochs, optimizer="adam", lr=config.lr, clip_norm=config.clip_norm,
                               schedule="exponential", schedule_args={"gamma": config.lr_decay},
                               metrics=["bits_per_character"], seed=config.seed, log_every=max(1, len(train) // 10))
    budget = None if config.minutes is None else TimeBudget(60.0 * config.minutes, start=start)
    callbacks = [_EpochReport(vocab, baseline_bpc, config.seed)] + ([budget] if budget is not None else [])
    temporary = tempfile.TemporaryDirectory(prefix="rnnlab-demo-") if config.run_dir is None else None
    run_dir = Path(temporary.name if temporary is not None else config.run_dir)
    try:
        claim_run_dir(run_dir)
        write_atomic(run_dir / "vocab.json", vocab.to_json().encode("utf-8"))
        corpus = {"root": str(config.stdlib or sysconfig.get_paths()["stdlib"]), "python": sys.version.split()[0],
                  "files": files, "characters": len(text), "train_characters": len(train_text),
                  "val_characters": len(val_text), "demo_config": asdict(config)}
        write_atomic(run_dir / "corpus.json", (json.dumps(corpus, indent=1) + "\n").encode("utf-8"))
        print_fn(f"run directory: {run_dir}" + (" (temporary; --run-dir DIR keeps it)" if temporary else ""))
        trainer = Trainer(model, "cross_entropy", train_config, train, val, run_dir, callbacks=callbacks)
        history = trainer.run()

        val_loss, val_bpc = history["val_loss"][-1], history["val_bits_per_character"][-1]
        stopped = budget is not None and budget.triggered
        how = f"{trainer.epoch} epoch(s), {trainer.step} steps" + (", stopped by the time budget" if stopped else "")
        print_fn(f"final validation ({how}): {val_loss:.4f} nats/char, {val_bpc:.3f} bits/char "
                 f"(uniform baseline {baseline_bpc:.3f})")
        samples, lines = {}, []
        for temperature in config.temperatures:
            for i, prime in enumerate(config.primes):
                text_out = sample(model, vocab, LINE_START + prime, length=config.sample_length,
                                  temperature=temperature,
                                  seed=np.random.default_rng([config.seed, 1000 + i, round(100 * temperature)]))
                samples[(prime, temperature)] = text_out
                lines += [f"--- primed with {prime!r}, temperature {temperature:g} ---", prime + text_out, ""]
        print_fn("\n".join(lines).rstrip("\n"))
        write_atomic(run_dir / "samples.txt", ("\n".join(lines)).encode("utf-8"))
    finally:
        if temporary is not None:
            temporary.cleanup()
    seconds = time.monotonic() - start
    print_fn(f"done in {seconds:.1f} s")
    return CharLMResult(history=history, val_loss=val_loss, val_bpc=val_bpc, baseline_bpc=baseline_bpc, vocab_size=V,
                        n_train=len(train_text), n_val=len(val_text), files=files, samples=samples,
                        epochs_run=trainer.epoch, steps=trainer.step, stopped_by_budget=stopped, seconds=seconds,
                        run_dir=None if temporary is not None else str(run_dir))


# =========================================================================== sentiment
#: cell name -> layer class: rnnlab.nn.recurrent.RECURRENT, the one registry of cells by name
CELLS = RECURRENT
#: the sentences the sentiment demo classifies after training
PROBES = ("movie was good", "movie was bad", "movie was not good")
LABELS = ("negative", "positive")


@dataclass
class SentimentConfig:
    """Settings of the sentiment demo (the command-line options map onto these fields).

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
        recurrent_class(self.cell)  # ValueError naming the cells of RECURRENT
        for key in ("epochs", "embed_dim", "hidden_size", "maxlen", "min_freq", "batch_size"):
            _check_positive_int(key, getattr(self, key))
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int)
                                       or self.limit < 10):
            raise ValueError(f"limit must be an int >= 10 (enough for a train and a test part), got {self.limit!r}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"test_fraction must lie in (0, 1), got {self.test_fraction!r}")


@dataclass
class SentimentResult:
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


def build_classifier(vocab_size: int, config: SentimentConfig) -> Sequential:
    """``Embedding(mask_zero=True) -> [Bidirectional](cell) -> Dense(2)``, seeded from ``config.seed``."""
    recurrent = recurrent_class(config.cell)(config.hidden_size, seed=config.seed + 1)
    if config.bidirectional:
        recurrent = Bidirectional(recurrent)
    return Sequential([Embedding(vocab_size, config.embed_dim, mask_zero=True, seed=config.seed),
                       recurrent,
                       Dense(len(LABELS), seed=config.seed + 2)])


def _encode(vocab: Vocabulary, texts, maxlen: int) -> np.ndarray:
    ids, _ = pad_sequences([vocab.encode(word_tokenize(t)) or [vocab.unk_id] for t in texts], maxlen=maxlen)
    return ids  # (N, T); the Embedding's mask_zero makes the mask


def run_sentiment(config: SentimentConfig, print_fn=print) -> SentimentResult:
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
             f"vocabulary {len(vocab)} words (min_freq {config.min_freq}), "
             f"sequences cut/padded to {config.maxlen} tokens")

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
    return SentimentResult(history=history, test_loss=final["loss"], test_accuracy=final["accuracy"],
                           predictions=predictions, n_train=len(train_idx), n_test=len(test_idx),
                           vocab_size=len(vocab), seconds=seconds, summary=summary)
