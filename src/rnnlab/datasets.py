"""Data set loaders that read local files and verify them against their ``SOURCE.md`` checksums.

Where the files live
--------------------
A *data directory* holds one folder per data set (``<data_dir>/uci_sentiment/...``), each with a
``SOURCE.md`` whose Markdown table lists every file with its SHA-256. The directory is the
``data_dir`` argument when given, else the environment variable ``RNNLAB_DATA`` (the command line
passes ``--data-dir``). Files are read, never written or copied.

Errors
------
Every failure raises a :class:`DatasetError` subclass whose message says what went wrong and how to
fix it: :class:`DatasetNotFoundError` (also a ``FileNotFoundError``) names the paths it looked at
and the two ways to point rnnlab at the data; :class:`ChecksumError` gives the expected and the
actual digest; :class:`DatasetFormatError` (also a ``ValueError``) gives the file and line number.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np

__all__ = ["DATA_ENV", "DatasetError", "DatasetNotFoundError", "ChecksumError", "DatasetFormatError",
           "resolve_data_dir", "read_checksums", "verified_bytes", "uci_sentiment", "UCI_SENTIMENT_FILES"]

DATA_ENV = "RNNLAB_DATA"

#: source name -> file name, in the order the loader concatenates them
UCI_SENTIMENT_FILES = {
    "amazon": "amazon_cells_labelled.txt",
    "imdb": "imdb_labelled.txt",
    "yelp": "yelp_labelled.txt",
}


class DatasetError(Exception):
    """Base class of the data set errors (the command line turns them into exit code 1)."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A data directory, data set folder or file is missing."""


class ChecksumError(DatasetError):
    """A file's SHA-256 differs from the one its ``SOURCE.md`` lists."""


class DatasetFormatError(DatasetError, ValueError):
    """A file (or its ``SOURCE.md``) does not have the documented format."""


_HOW = (f"point rnnlab at the data directory (the folder holding one sub-folder per data set) with the "
        f"environment variable {DATA_ENV}=/path/to/data or the command-line option --data-dir /path/to/data")


def resolve_data_dir(data_dir=None) -> Path:
    """The data directory: ``data_dir`` if given, else ``$RNNLAB_DATA``; it must exist."""
    source = "data_dir argument / --data-dir option"
    if data_dir is None:
        data_dir = os.environ.get(DATA_ENV) or None
        source = f"environment variable {DATA_ENV}"
        if data_dir is None:
            raise DatasetNotFoundError(f"no data directory given: neither a data_dir argument nor {DATA_ENV} is set; {_HOW}")
    if not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"data_dir must be a path (str or os.PathLike), got {type(data_dir).__name__} {data_dir!r}")
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise DatasetNotFoundError(f"data directory {str(path)!r} (from the {source}) does not exist or is not a directory; {_HOW}")
    return path


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
        actual = hashlib.sha256(data).hexdigest()
        if actual != sums[name]:
            raise ChecksumError(f"checksum mismatch for {str(path)!r}: SOURCE.md lists sha256 {sums[name]}, the file has "
                                f"{actual}; the file is damaged or a different version; restore the original file")
    return data


def _dataset_folder(data_dir, name: str) -> Path:
    root = resolve_data_dir(data_dir)
    folder = root / name
    if not folder.is_dir():
        raise DatasetNotFoundError(f"data set folder {str(folder)!r} not found (looked in the data directory {str(root)!r}); "
                                   f"it must contain a '{name}' folder; {_HOW}")
    return folder


def uci_sentiment(data_dir=None, sources=("amazon", "imdb", "yelp"), *, verify: bool = True) -> tuple[list[str], np.ndarray]:
    """The UCI "Sentiment Labelled Sentences" (Kotzias et al. 2015): 3 x 1,000 sentences, labels 0/1.

    Parameters
    ----------
    data_dir : path, optional
        The data directory (holding ``uci_sentiment/``); ``$RNNLAB_DATA`` when omitted.
    sources : sequence of {"amazon", "imdb", "yelp"}
        Which files to read, concatenated in this order.
    verify : bool
        Check every file's SHA-256 against ``uci_sentiment/SOURCE.md`` (default).

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
    folder = _dataset_folder(data_dir, "uci_sentiment")
    texts: list[str] = []
    labels: list[int] = []
    for source in sources:
        name = UCI_SENTIMENT_FILES[source]
        raw = verified_bytes(folder, name, verify=verify)
        try:
            content = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise DatasetFormatError(f"{str(folder / name)!r} line {line}: not valid UTF-8 ({exc.reason})") from None
        lines = content.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if not lines:
            raise DatasetFormatError(f"{str(folder / name)!r} is empty")
        for number, line in enumerate(lines, start=1):
            sentence, tab, label = line.rstrip("\r").rpartition("\t")
            if not tab:
                raise DatasetFormatError(f"{str(folder / name)!r} line {number}: expected 'sentence<TAB>label', "
                                         f"found no tab in {line!r:.80}")
            if label.strip() not in ("0", "1"):
                raise DatasetFormatError(f"{str(folder / name)!r} line {number}: label must be 0 or 1, got {label!r:.20}")
            texts.append(sentence.strip())
            labels.append(int(label))
    return texts, np.asarray(labels, dtype=np.int64)
