"""Rows of a user's tabular files (CSV, TSV, JSONL) and labelled texts, with errors that point at the line.

:func:`read_records` yields ``(line_number, record)`` for each row of a ``.csv``/``.tsv`` file (the
first line is the header) or each object of a ``.jsonl`` file (blank lines skipped; extra fields are
kept and ignored by the callers). :func:`read_labelled` reads ``(texts, labels)`` for text
classification from such files, or from a directory holding one sub-folder of ``.txt`` files per
class (each file one text, its folder's name its label).

Every error is a :class:`~rnnlab.data.sources.DatasetFormatError` naming the file and, where there
is one, the line: an empty file, a missing column (the columns found are listed), a row with the
wrong number of fields, a line that is not JSON or not an object, an empty class folder.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

from rnnlab.data.readers import read_lines
from rnnlab.data.sources import DatasetFormatError

__all__ = ["read_records", "read_labelled", "read_texts", "column_error"]

_DELIMITERS = {"csv": ",", "tsv": "\t"}


def column_error(path, column: str, key: str, found: Sequence[str], line: int | None = None) -> DatasetFormatError:
    """The error of a missing column: names the file (and line), the column, the config key, the columns found."""
    where = f"{str(path)!r}" + ("" if line is None else f" line {line}")
    return DatasetFormatError(f"{where}: no column {column!r} ([data] {key}); the columns found are: "
                              f"{', '.join(map(repr, found)) or '(none)'}")


def read_records(path, format: str) -> Iterator[tuple[int, dict]]:
    """``(line_number, record)`` for each row of ``path``: a dict of column -> str (CSV, TSV) or the
    JSON object (JSONL). Streams the file. The line number is the row's first line (header = line 1)."""
    path = Path(path)
    if format in _DELIMITERS:
        yield from _delimited(path, _DELIMITERS[format])
    elif format == "jsonl":
        yield from _jsonl(path)
    else:
        raise ValueError(f"format must be one of 'csv', 'tsv', 'jsonl' for records, got {format!r}")


def _delimited(path: Path, delimiter: str) -> Iterator[tuple[int, dict]]:
    position = [0]

    def lines():
        for number, line in read_lines(path):
            position[0] = number
            yield line + "\n"

    reader = csv.reader(lines(), delimiter=delimiter)
    try:
        header = next(reader, None)
        while header is not None and not any(h.strip() for h in header):  # leading blank lines
            header = next(reader, None)
        if header is None:
            raise DatasetFormatError(f"{str(path)!r} is empty: expected a header line naming the columns, then rows")
        header = [h.strip() for h in header]
        start = position[0] + 1
        for row in reader:
            first, start = start, position[0] + 1
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != len(header):
                raise DatasetFormatError(f"{str(path)!r} line {first}: unreadable row: {len(row)} fields where the "
                                         f"header has {len(header)} ({', '.join(map(repr, header))})")
            yield first, dict(zip(header, row))
    except csv.Error as exc:
        raise DatasetFormatError(f"{str(path)!r} line {position[0]}: unreadable row ({exc})") from None


def _jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    for number, line in read_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetFormatError(f"{str(path)!r} line {number}: unreadable row, not JSON ({exc.msg} at column "
                                     f"{exc.colno})") from None
        if not isinstance(record, dict):
            raise DatasetFormatError(f"{str(path)!r} line {number}: unreadable row, expected a JSON object "
                                     f"{{\"text\": ..., \"label\": ...}}, got {type(record).__name__}")
        yield number, record


def _text_of(path, number: int, value, column: str) -> str:
    if not isinstance(value, str):
        raise DatasetFormatError(f"{str(path)!r} line {number}: the text ({column!r}) must be a string, got "
                                 f"{type(value).__name__} {value!r:.60}")
    return value


def _label_of(path, number: int, value, column: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DatasetFormatError(f"{str(path)!r} line {number}: the label ({column!r}) must be a string or an "
                                 f"integer, got {type(value).__name__} {value!r:.60}")
    label = str(value).strip()
    if not label:
        raise DatasetFormatError(f"{str(path)!r} line {number}: empty label ({column!r})")
    return label


def read_texts(files: Sequence[Path], format: str, text_column: str = "text") -> list[str]:
    """The texts of ``files``: one per line of ``.txt`` files (blank lines skipped), or the ``text_column``
    of each row of CSV/TSV/JSONL files (other columns ignored). For prediction."""
    texts = []
    for path in files:
        if format == "txt":
            texts += [line for _, line in read_lines(path) if line.strip()]
            continue
        for number, record in read_records(path, format):
            if text_column not in record:
                raise column_error(path, text_column, "text_column", list(record), number)
            texts.append(_text_of(path, number, record[text_column], text_column))
    if not texts:
        raise DatasetFormatError(f"{', '.join(repr(str(p)) for p in files)}: no text to read (empty file)")
    return texts


def read_labelled(files: Sequence[Path], format: str, *, text_column: str = "text", label_column: str = "label",
                  root=None) -> tuple[list[str], list[str]]:
    """``(texts, labels)`` of labelled files, the labels as strings (``1`` and ``"1"`` are one class).

    Parameters
    ----------
    files : sequence of Path
        CSV/TSV/JSONL files with a text and a label column; or, with ``format == "txt"``, the ``.txt``
        files under ``root``, one sub-folder per class (``root/<class>/<any name>.txt``).
    format : str
        ``"csv"``, ``"tsv"``, ``"jsonl"`` or ``"txt"``.
    root : path, optional
        The directory of the class folders (``format == "txt"``).
    """
    if format == "txt":
        return _class_folders(files, root)
    texts, labels = [], []
    for path in files:
        before = len(texts)
        for number, record in read_records(path, format):
            for column, key in ((text_column, "text_column"), (label_column, "label_column")):
                if column not in record:
                    raise column_error(path, column, key, list(record), number)
            texts.append(_text_of(path, number, record[text_column], text_column))
            labels.append(_label_of(path, number, record[label_column], label_column))
        if len(texts) == before:
            raise DatasetFormatError(f"{str(path)!r} is empty: a header but no row")
    return texts, labels


def _class_folders(files: Sequence[Path], root) -> tuple[list[str], list[str]]:
    if root is None or not Path(root).is_dir():
        raise DatasetFormatError("labelled .txt files must sit in a directory with one sub-folder per class "
                                 "(path = \"reviews/\" holding reviews/positive/*.txt, reviews/negative/*.txt, ...)")
    root = Path(root)
    texts, labels = [], []
    for path in files:
        parts = path.relative_to(root).parts
        if len(parts) < 2:
            raise DatasetFormatError(f"{str(path)!r} lies directly in {str(root)!r}; each .txt file must be in the "
                                     f"sub-folder of its class ({str(root / '<class>' / path.name)!r})")
        texts.append("\n".join(line for _, line in read_lines(path)))
        labels.append(parts[0])
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if folder.name not in labels:
            raise DatasetFormatError(f"class folder {str(folder)!r} is empty: each class needs at least one .txt file")
    empty = [i for i, t in enumerate(texts) if not t.strip()]
    if empty:
        raise DatasetFormatError(f"{str(files[empty[0]])!r} is empty: each file holds one text of its class")
    return texts, labels
