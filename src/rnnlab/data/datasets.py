"""Data set loaders that read local files, verify their checksums, and download them when asked.

Where the files live
--------------------
A *data directory* holds one folder per data set (``<data_dir>/ptb/...``), each with a
``SOURCE.md`` whose Markdown table lists every file with its SHA-256. The directory is the
``data_dir`` argument when given, else the environment variable ``RNNLAB_DATA`` (the command line
passes ``--data-dir``). Files there are read, never written or copied.

=====================  ====================================  ======================================
folder                 loader                                returns
=====================  ====================================  ======================================
``ptb``                :func:`ptb` (word or char level)      token stream(s), ``<eos>`` per line
``tinyshakespeare``    :func:`tiny_shakespeare`              the text (or its 90/10 split)
``mr``                 :func:`movie_reviews`                 ``(texts, labels)``
``uci_sentiment``      :func:`uci_sentiment`                 ``(texts, labels)``
``timeseries``         :func:`time_series`                   ``(dates, values)``
=====================  ====================================  ======================================

Every loader takes ``verify=True``: each file's SHA-256 must equal the one its folder's
``SOURCE.md`` lists. ``verify=False`` skips that check (for a deliberately edited copy); the
format checks still run.

Where the files come from (data directory, checksums, download cache) and the errors are in
:mod:`rnnlab.data.sources`; their names are re-exported here.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from rnnlab._validation import check_choice
from rnnlab.data.sources import (
    CACHE_ENV,
    DATA_ENV,
    REMOTES,
    ChecksumError,
    DatasetError,
    DatasetFormatError,
    DatasetNotFoundError,
    DownloadError,
    Remote,
    _read,
    default_cache_dir,
    download,
    fetch,
    read_checksums,
    resolve_data_dir,
    verified_bytes,
)

__all__ = ["DATA_ENV", "CACHE_ENV", "EOS", "DatasetError", "DatasetNotFoundError", "ChecksumError",
           "DatasetFormatError", "DownloadError", "resolve_data_dir", "default_cache_dir", "read_checksums",
           "verified_bytes", "Remote", "REMOTES", "fetch", "download", "ptb", "ptb_char_text",
           "tiny_shakespeare", "TINY_SHAKESPEARE_TRAIN_FRAC", "movie_reviews", "MR_FILES", "uci_sentiment",
           "UCI_SENTIMENT_FILES", "time_series", "TIME_SERIES"]


#: End-of-line token appended to every line of the PTB streams (word and char level).
EOS = "<eos>"

#: source name -> file name, in the order the loader concatenates them
UCI_SENTIMENT_FILES = {
    "amazon": "amazon_cells_labelled.txt",
    "imdb": "imdb_labelled.txt",
    "yelp": "yelp_labelled.txt",
}

#: label -> file name of Movie Review polarity, in the order the loader concatenates them
MR_FILES = {1: "rt-polarity.pos", 0: "rt-polarity.neg"}

#: series name -> the (date, value) column names of its header row
TIME_SERIES = {
    "airline-passengers": ("Month", "Passengers"),
    "monthly-sunspots": ("Month", "Sunspots"),
    "daily-min-temperatures": ("Date", "Temp"),
}

#: Tiny Shakespeare's training part: the first ``int(0.9 * len(text))`` characters (nanoGPT).
TINY_SHAKESPEARE_TRAIN_FRAC = 0.9

_PTB_SPLITS = ("train", "valid", "test")


# --------------------------------------------------------------------------- decoding
def _decode(raw: bytes, path: Path, encoding: str) -> str:
    """``raw`` decoded strictly; a bad byte is a :class:`DatasetFormatError` naming its line."""
    label = {"ascii": "ASCII", "utf-8": "UTF-8", "cp1252": "cp1252 (Windows-1252)"}[encoding]
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DatasetFormatError(f"{str(path)!r} line {line}: not valid {label} (byte 0x{raw[exc.start]:02x} at offset "
                                 f"{exc.start}: {exc.reason}); the file must be {label}, as its SOURCE.md states: it "
                                 f"is damaged, converted or a different file") from None
    if not text.strip():
        raise DatasetFormatError(f"{str(path)!r} is empty" + (f" ({len(raw)} bytes of whitespace)" if raw else "")
                                 + "; restore the original file")
    return text


def _lines(text: str) -> list[str]:
    """Lines split on ``"\\n"`` only (never U+0085 and friends), without the empty piece after a final newline."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


# --------------------------------------------------------------------------- Penn Treebank
def ptb_char_text(word_text: str) -> str:
    """Mikolov's character-level PTB file, rebuilt from the word-level file's text.

    Notes
    -----
    The rule of ``ptb/SOURCE.md``: each word-file line is stripped, every space becomes ``_``, the
    characters are joined by single spaces and wrapped as ``" " + body + " "``; the lines are
    joined by ``"\\n"`` with a final ``"\\n"``; then the first character of the file is dropped
    and one space appended. The result is byte-identical to ``ptb.char.{train,valid,test}.txt``
    (the SHA-256 values of ``SOURCE.md``; checked by the tests).
    """
    lines = _lines(word_text)
    return ("\n".join(" " + " ".join(line.strip().replace(" ", "_")) + " " for line in lines) + "\n")[1:] + " "


def _stream(lines: list[str]) -> list[str]:
    """Whitespace-split tokens of each line followed by :data:`EOS` (one shared str object per distinct token)."""
    intern = sys.intern
    tokens: list[str] = []
    for line in lines:
        tokens.extend(map(intern, line.split()))
        tokens.append(EOS)
    return tokens


def ptb(data_dir=None, level: str = "word", split: str | None = None, *, verify: bool = True,
        download: bool = False, cache_dir=None) -> dict[str, list[str]] | list[str]:
    """Penn Treebank (Mikolov's preprocessing, as in Zaremba et al. 2014) as token streams.

    Parameters
    ----------
    data_dir : path, optional
        The data directory (holding ``ptb/``); ``$RNNLAB_DATA`` when omitted.
    level : {"word", "char"}
        Word tokens, or the characters of Mikolov's character-level files (see Notes).
    split : {None, "train", "valid", "test"}
        None (default) returns all three splits in a dict; a name returns that split's stream.
    verify : bool
        Check each file's SHA-256 against ``ptb/SOURCE.md`` (default).
    download : bool
        If the data directory (or ``$RNNLAB_DATA``) is missing or lacks a file, take it from the
        cache, downloading it first when needed (:func:`fetch`).
    cache_dir : path, optional
        The download cache (``$RNNLAB_CACHE`` or ``~/.cache/rnnlab``); used with ``download=True``.

    Returns
    -------
    dict of str to list of str, or list of str
        ``{"train": stream, "valid": stream, "test": stream}``, or one stream. A stream is the
        split's tokens in file order, with :data:`EOS` (``"<eos>"``) after the tokens of every line.

    Notes
    -----
    Word level: each line of ``ptb.<split>.txt`` (ASCII, split on ``"\\n"``) contributes its
    whitespace-separated words and then ``"<eos>"``, exactly as Zaremba et al.'s reader
    (``read().replace("\\n", "<eos>").split()``). Streams have 929,589 / 73,760 / 82,430 tokens
    and the train stream has the standard 10,000 distinct tokens (``<unk>`` included, ``<eos>``
    included); valid and test use no other token.

    Char level: the word file is turned into Mikolov's ``ptb.char.<split>.txt`` by
    :func:`ptb_char_text`; each of its lines contributes its space-separated symbols (``_`` marks
    a word boundary) and then ``"<eos>"``: 5,017,482 / 393,042 / 442,423 tokens, 50 distinct in
    train (49 symbols and ``<eos>``).

    A stream goes to the language-model pipeline as it is::

        vocab = Vocabulary(specials=("<unk>",)).fit([streams["train"]])   # 10,000 words
        ids = np.asarray(vocab.encode(streams["train"]))                  # (929589,)
        batches = LMStream(ids, batch_size=20, bptt=20)
    """
    check_choice("level", level, ("word", "char"))
    if split is not None:
        check_choice("split", split, _PTB_SPLITS)
    streams = {}
    for name in _PTB_SPLITS if split is None else (split,):
        raw, path = _read("ptb", f"ptb.{name}.txt", data_dir, verify=verify, download=download, cache_dir=cache_dir)
        text = _decode(raw, path, "ascii")
        if level == "word":
            streams[name] = _stream(_lines(text))
        else:
            pieces = ptb_char_text(text).split("\n")  # the last piece is the trailing " " after the final newline
            streams[name] = _stream(pieces[:-1])
    return streams if split is None else streams[split]


# --------------------------------------------------------------------------- Tiny Shakespeare
def tiny_shakespeare(data_dir=None, split: str = "all", *, verify: bool = True, download: bool = False,
                     cache_dir=None) -> str:
    """Tiny Shakespeare (Karpathy's char-rnn ``input.txt``): 1,115,394 characters, 65 distinct.

    Parameters
    ----------
    data_dir : path, optional
        The data directory (holding ``tinyshakespeare/``); ``$RNNLAB_DATA`` when omitted.
    split : {"all", "train", "valid"}
        The whole text, or nanoGPT's split of it (see Notes).
    verify, download, cache_dir
        As for :func:`ptb`.

    Returns
    -------
    str
        The text (ASCII, ``"\\n"`` line ends), or the part of it ``split`` selects.

    Notes
    -----
    There is no official split. This is nanoGPT's (``shakespeare_char``): with ``n = len(text)``,
    "train" is ``text[:int(0.9 * n)]`` (1,003,854 characters) and "valid" is the rest (111,540).
    The cut falls inside a line; the two parts concatenate to the whole text.
    """
    check_choice("split", split, ("all", "train", "valid"))
    raw, path = _read("tinyshakespeare", "input.txt", data_dir, verify=verify, download=download, cache_dir=cache_dir)
    text = _decode(raw, path, "ascii")
    cut = int(TINY_SHAKESPEARE_TRAIN_FRAC * len(text))
    return {"all": text, "train": text[:cut], "valid": text[cut:]}[split]


# --------------------------------------------------------------------------- sentence classification
def _sentence_lines(raw: bytes, path: Path, encoding: str) -> list[str]:
    lines = _lines(_decode(raw, path, encoding))
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise DatasetFormatError(f"{str(path)!r} line {number}: blank line; every line must hold one sentence")
    return lines


def movie_reviews(data_dir=None, *, verify: bool = True, download: bool = False,
                  cache_dir=None) -> tuple[list[str], np.ndarray]:
    """Movie Review polarity, "MR" (Pang & Lee 2005): 5,331 positive and 5,331 negative snippets.

    Parameters
    ----------
    data_dir : path, optional
        The data directory (holding ``mr/``); ``$RNNLAB_DATA`` when omitted.
    verify, download, cache_dir
        As for :func:`ptb`.

    Returns
    -------
    texts : list of str, length 10,662
        The positive snippets (``rt-polarity.pos``) then the negative ones (``rt-polarity.neg``),
        each stripped of surrounding whitespace. They are already lower-cased and tokenized
        (punctuation split off by spaces).
    labels : ndarray of int64, shape (10662,)
        1 = positive, 0 = negative.

    Notes
    -----
    The files are Windows-1252, not UTF-8, and are decoded with ``cp1252`` (0x85 is "…", 0x91 "‘",
    0x96 "–", 0x97 "—"; the five bytes cp1252 leaves undefined are an error). They are split on
    ``"\\n"`` only: ``str.splitlines`` would also break at U+0085 (latin-1's reading of 0x85).
    There is no standard split; the literature reports 10-fold cross-validation.
    """
    texts: list[str] = []
    labels: list[int] = []
    for label, name in MR_FILES.items():
        raw, path = _read("mr", name, data_dir, verify=verify, download=download, cache_dir=cache_dir)
        lines = _sentence_lines(raw, path, "cp1252")
        texts.extend(line.strip() for line in lines)
        labels.extend([label] * len(lines))
    return texts, np.asarray(labels, dtype=np.int64)


def uci_sentiment(data_dir=None, sources=("amazon", "imdb", "yelp"), *, verify: bool = True, download: bool = False,
                  cache_dir=None) -> tuple[list[str], np.ndarray]:
    """The UCI "Sentiment Labelled Sentences" (Kotzias et al. 2015): 3 x 1,000 sentences, labels 0/1.

    Parameters
    ----------
    data_dir : path, optional
        The data directory (holding ``uci_sentiment/``); ``$RNNLAB_DATA`` when omitted.
    sources : sequence of {"amazon", "imdb", "yelp"}
        Which files to read, concatenated in this order.
    verify : bool
        Check every file's SHA-256 against ``uci_sentiment/SOURCE.md`` (default).
    download, cache_dir
        As for :func:`ptb`.

    Returns
    -------
    texts : list of str, length N
        The sentences, stripped of surrounding whitespace.
    labels : ndarray of int64, shape (N,)
        1 = positive, 0 = negative.

    Notes
    -----
    Each file is UTF-8 with one ``sentence<TAB>label`` per line. It is split on ``"\\n"`` only
    (imdb holds U+0085, a line break for ``str.splitlines``), and each line on its *last* tab
    (imdb has unbalanced quotes that make CSV readers merge lines).
    """
    if isinstance(sources, str):
        sources = (sources,)
    unknown = [s for s in sources if s not in UCI_SENTIMENT_FILES]
    if unknown or not sources:
        raise ValueError(f"sources must be a non-empty selection of {', '.join(map(repr, UCI_SENTIMENT_FILES))}; "
                         f"got {sources!r}")
    texts: list[str] = []
    labels: list[int] = []
    for source in sources:
        raw, path = _read("uci_sentiment", UCI_SENTIMENT_FILES[source], data_dir, verify=verify, download=download,
                          cache_dir=cache_dir)
        for number, line in enumerate(_lines(_decode(raw, path, "utf-8")), start=1):
            sentence, tab, label = line.rstrip("\r").rpartition("\t")
            if not tab:
                raise DatasetFormatError(f"{str(path)!r} line {number}: expected 'sentence<TAB>label', "
                                         f"found no tab in {line!r:.80}")
            if label.strip() not in ("0", "1"):
                raise DatasetFormatError(f"{str(path)!r} line {number}: label must be 0 or 1, got {label!r:.20}")
            texts.append(sentence.strip())
            labels.append(int(label))
    return texts, np.asarray(labels, dtype=np.int64)


# --------------------------------------------------------------------------- time series
def time_series(name: str, data_dir=None, *, verify: bool = True, download: bool = False,
                cache_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """A classic univariate series of the Time Series Data Library (``timeseries/<name>.csv``).

    Parameters
    ----------
    name : {"airline-passengers", "monthly-sunspots", "daily-min-temperatures"}
        144 monthly airline passenger totals (thousands, 1949-1960); 2,820 monthly mean sunspot
        numbers (1749-1983); 3,650 daily minimum temperatures in Melbourne (deg C, 1981-1990).
    data_dir : path, optional
        The data directory (holding ``timeseries/``); ``$RNNLAB_DATA`` when omitted.
    verify, download, cache_dir
        As for :func:`ptb`.

    Returns
    -------
    dates : ndarray of str, shape (T,)
        The first column as written (``"1949-01"``, ``"1981-01-01"``), quotes removed.
    values : ndarray of float64, shape (T,)
        The second column.

    Notes
    -----
    The files are ASCII CSV with CRLF line ends and no line break after the last record. Line 1
    must be the header (``"Month","Passengers"`` etc.); every other line one ``date,value``
    record with a non-empty date and a finite number. Lines are split on ``"\\n"`` and a trailing
    ``"\\r"`` removed, so LF files and a final line break are accepted too. Any other line is a
    :class:`DatasetFormatError` naming the file and its line number (1-based, header = line 1).
    The daily series skips 1984-12-31 and 1988-12-31 (3,650 rows for 3,652 days).
    """
    check_choice("name", name, TIME_SERIES)
    raw, path = _read("timeseries", f"{name}.csv", data_dir, verify=verify, download=download, cache_dir=cache_dir)
    lines = [line.removesuffix("\r") for line in _lines(_decode(raw, path, "ascii"))]
    header = [field.strip().strip('"') for field in lines[0].split(",")]
    expected = TIME_SERIES[name]
    if tuple(header) != expected:
        raise DatasetFormatError(f"{str(path)!r} line 1: expected the header \"{expected[0]}\",\"{expected[1]}\", "
                                 f"got {lines[0]!r:.80}")
    if len(lines) == 1:
        raise DatasetFormatError(f"{str(path)!r} has a header but no records")
    dates: list[str] = []
    values: list[float] = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split(",")
        where = f"{str(path)!r} line {number}"
        if len(fields) != 2:
            found = "an empty line" if not line.strip() else f"{len(fields)} field(s) in {line!r:.80}"
            raise DatasetFormatError(f"{where}: expected 2 comma-separated fields (date,value), got {found}")
        date = fields[0].strip().strip('"')
        if not date:
            raise DatasetFormatError(f"{where}: the date field is empty in {line!r:.80}")
        try:
            value = float(fields[1])
        except ValueError:
            raise DatasetFormatError(f"{where}: value {fields[1]!r:.40} is not a number") from None
        if not math.isfinite(value):
            raise DatasetFormatError(f"{where}: value {fields[1]!r:.40} is not finite")
        dates.append(date)
        values.append(value)
    return np.asarray(dates, dtype=str), np.asarray(values, dtype=np.float64)
