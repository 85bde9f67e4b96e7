"""Reading a user's own data files: paths, formats, compression and decoding, with errors that point at the line.

A ``[data] path`` names a file, a directory or a glob, relative to the config file's folder unless it is
absolute; :func:`resolve_paths` turns it into a sorted list of files. The format comes from the suffix
(``.txt``, ``.csv``, ``.tsv``, ``.jsonl``, ``.conll``, each optionally followed by ``.gz``, ``.bz2`` or
``.xz``) or is given explicitly; :func:`detect_format` decides it and refuses a mixture.
:func:`open_text` opens a file for reading as UTF-8, decompressing by suffix, and :func:`read_lines`
yields ``(line_number, line)`` pairs, turning a byte that is not UTF-8 into a
:class:`~rnnlab.data.sources.DatasetFormatError` naming the file, the line and the byte.

Every error here is a :class:`~rnnlab.data.sources.DatasetFormatError` (a ``ValueError``) or a
:class:`~rnnlab.data.sources.DatasetNotFoundError` (a ``FileNotFoundError``); the command line turns
both into one line on stderr.
"""

from __future__ import annotations

import bz2
import glob
import gzip
import io
import lzma
from collections.abc import Iterator
from pathlib import Path

from rnnlab.data.sources import DatasetFormatError, DatasetNotFoundError

__all__ = ["FORMATS", "COMPRESSIONS", "resolve_path", "resolve_paths", "detect_format", "split_suffix", "open_text",
           "read_lines"]

#: The formats a data file may have, by suffix.
FORMATS = ("txt", "csv", "tsv", "jsonl", "conll")
#: Compression suffixes and the module that opens them.
COMPRESSIONS = {".gz": gzip, ".bz2": bz2, ".xz": lzma}
_GLOB_CHARS = frozenset("*?[")


def resolve_path(path, base_dir=None) -> Path:
    """``path`` as a :class:`~pathlib.Path`, joined to ``base_dir`` (the config file's folder) when relative."""
    if not isinstance(path, (str, Path)) or not str(path):
        raise TypeError(f"path must be a non-empty str or pathlib.Path, got {path!r}")
    path = Path(path).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path


def split_suffix(path) -> tuple[str, str]:
    """``(format_suffix, compression_suffix)`` of a file name: ``"a.csv.gz"`` gives ``(".csv", ".gz")``."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    compression = suffixes.pop() if suffixes and suffixes[-1] in COMPRESSIONS else ""
    return (suffixes[-1] if suffixes else ""), compression


def _is_data_file(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".")


def resolve_paths(path, base_dir=None) -> list[Path]:
    """The files ``path`` names: itself when a file, the files under it (recursively) when a directory,
    the matches when a glob; sorted, hidden files skipped. Nothing found is a ``DatasetNotFoundError``."""
    full = resolve_path(path, base_dir)
    text = str(full)
    if _GLOB_CHARS & set(text):
        files = sorted(p for p in map(Path, glob.glob(text, recursive=True)) if _is_data_file(p))
        if not files:
            raise DatasetNotFoundError(f"data path {str(path)!r}: no file matches the pattern {text!r}")
        return files
    if full.is_file():
        return [full]
    if full.is_dir():
        files = sorted(p for p in full.rglob("*") if _is_data_file(p))
        if not files:
            raise DatasetNotFoundError(f"data path {str(path)!r}: the directory {text!r} holds no file")
        return files
    where = f" (resolved against {str(base_dir)!r})" if base_dir is not None and not Path(path).is_absolute() else ""
    raise DatasetNotFoundError(f"data path {str(path)!r}: no such file or directory{where}")


def detect_format(paths, format: str | None = None) -> str:
    """The one format of ``paths`` (one of :data:`FORMATS`): ``format`` when given, else from the suffixes.

    A suffix rnnlab does not know, or files of different formats together, are a ``DatasetFormatError``."""
    if format is not None:
        if format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
        return format
    paths = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    found: dict[str, Path] = {}
    for p in paths:
        suffix, _ = split_suffix(p)
        name = suffix.lstrip(".")
        if name not in FORMATS:
            raise DatasetFormatError(f"{str(p)!r}: cannot tell the format from the suffix {suffix or '(none)'!r}; "
                                     f"expected one of {', '.join('.' + f for f in FORMATS)} (optionally with "
                                     f"{', '.join(COMPRESSIONS)}), or set format = \"...\" in [data]")
        found.setdefault(name, p)
    if len(found) > 1:
        listed = ", ".join(f"{name} ({str(p)!r})" for name, p in found.items())
        raise DatasetFormatError(f"the data path mixes formats: {listed}; keep one format per path or set "
                                 f"format = \"...\" in [data]")
    return next(iter(found))


def open_text(path) -> io.TextIOWrapper:
    """``path`` opened for reading as strict UTF-8 text, decompressed by its suffix (``.gz``, ``.bz2``, ``.xz``).

    A UTF-8 byte-order mark is skipped. Prefer :func:`read_lines`, whose decoding errors name the line."""
    path = Path(path)
    _, compression = split_suffix(path)
    try:
        raw = COMPRESSIONS[compression].open(path, "rb") if compression else open(path, "rb")
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{str(path)!r}: no such file") from None
    except IsADirectoryError:
        raise DatasetFormatError(f"{str(path)!r} is a directory, expected a file") from None
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")


def read_lines(path) -> Iterator[tuple[int, str]]:
    """``(line_number, line)`` for each line of ``path`` (numbered from 1, the line ending removed).

    Streams: memory stays flat in the file's size. A byte that is not UTF-8 raises a ``DatasetFormatError``
    naming the file, the line and the byte; a damaged compressed file names the file."""
    path = Path(path)
    number = 0
    stream = open_text(path)
    try:
        with stream:
            for number, line in enumerate(_lines_bytes_checked(stream, path), start=1):
                yield number, line
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise DatasetFormatError(f"{str(path)!r}: cannot read the file after line {number} ({exc})") from None


def _lines_bytes_checked(stream: io.TextIOWrapper, path: Path) -> Iterator[str]:
    """The lines of ``stream``; on a decoding error, find the offending line and byte in the raw bytes."""
    try:
        for line in stream:
            yield line.rstrip("\r\n")
    except UnicodeDecodeError:
        raise _decode_error(path) from None


def _decode_error(path: Path) -> DatasetFormatError:
    """Re-read ``path`` as bytes line by line to name the first line that is not UTF-8 and its byte."""
    _, compression = split_suffix(path)
    opener = COMPRESSIONS[compression].open if compression else open
    with opener(path, "rb") as raw:
        for number, line in enumerate(raw, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return DatasetFormatError(f"{str(path)!r} line {number}: not valid UTF-8 (byte 0x{line[exc.start]:02x} "
                                          f"at column {exc.start + 1}); save the file as UTF-8")
    return DatasetFormatError(f"{str(path)!r}: not valid UTF-8; save the file as UTF-8")
