"""A user's time series from a CSV (or TSV) file: named input columns, target columns and an optional date column.

The file has a header row naming its columns; every other row is one time step, oldest first (or in
any order when a date column is given: the rows are then sorted by date). Values are numbers; an
empty cell or one of ``NA``, ``N/A``, ``NaN``, ``null``, ``None`` (any case) is a missing value::

    date,temperature,humidity,load
    2024-01-01,3.5,0.81,120.0
    2024-01-02,,0.78,118.5          <- a missing value

Missing values
--------------
``missing="error"`` (the default) refuses them, naming the file, line and column;
``"drop"`` drops every row with a missing value in a column that is read;
``"interpolate"`` fills each gap linearly between its neighbours in the same column (by row
position, or by date when a date column is given); a gap at the start or the end takes the nearest
value. A value that is neither a number nor missing is always an error naming the line and column.

Dates
-----
``date_column`` is parsed as ISO 8601 (``2024-01-31``, ``2024-01-31T12:00``, ``2024-01-31 12:00:00``)
or as a month ``2024-01`` or a year ``2024``. Two rows with the same date are an error.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from rnnlab.data.readers import read_lines, split_suffix
from rnnlab.data.sources import DatasetFormatError

__all__ = ["SeriesTable", "read_series_csv", "parse_date", "format_date", "MISSING_POLICIES", "MISSING_MARKERS"]

#: What to do with missing values.
MISSING_POLICIES = ("error", "drop", "interpolate")
#: Cell texts read as a missing value (compared lower-cased, after stripping spaces).
MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "none"})


@dataclass
class SeriesTable:
    """The columns read from a series file, one row per time step, oldest first.

    Attributes
    ----------
    values : ndarray, shape (T, F)
        float64, the columns of ``names`` in that order, no missing value left.
    names : list of str
        The F column names.
    dates : list of datetime or None
        One per row when a date column was read.
    lines : ndarray of int, shape (T,)
        The file line of each row (after sorting and dropping).
    source : str
    """

    values: np.ndarray
    names: list[str]
    dates: list[datetime] | None
    lines: np.ndarray
    source: str

    def column(self, names: Sequence[str]) -> np.ndarray:
        """The (T, len(names)) values of ``names``."""
        return self.values[:, [self.names.index(n) for n in names]]


def parse_date(text: str) -> datetime:
    """``text`` as a datetime: ISO 8601, or ``YYYY-MM``, or ``YYYY``; ValueError otherwise."""
    text = text.strip()
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    for pattern in ("%Y-%m", "%Y/%m", "%Y"):
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            pass
    raise ValueError(f"cannot read {text!r} as a date (expected ISO 8601 such as 2024-01-31, or 2024-01, or 2024)")


def format_date(date: datetime) -> str:
    """ISO 8601, the date alone when the time is midnight: ``2024-01-31`` or ``2024-01-31T12:00:00``."""
    midnight = date.hour == date.minute == date.second == date.microsecond == 0 and date.tzinfo is None
    return date.date().isoformat() if midnight else date.isoformat()


def _delimiter(path: Path, delimiter: str | None) -> str:
    if delimiter is not None:
        return delimiter
    return "\t" if split_suffix(path)[0] == ".tsv" else ","


def read_series_csv(path, names: Sequence[str], *, date_column: str | None = None, missing: str = "error",
                    delimiter: str | None = None) -> SeriesTable:
    """Read the columns ``names`` (and ``date_column``) of a CSV/TSV series file (module docstring).

    Parameters
    ----------
    path : path
        A ``.csv`` or ``.tsv`` file, optionally compressed (``.gz``, ``.bz2``, ``.xz``).
    names : sequence of str
        The value columns to read, in the order of the returned ``values``.
    date_column : str, optional
    missing : "error", "drop" or "interpolate"
    delimiter : str, optional
        Default: a tab for ``.tsv``, a comma otherwise.

    Raises
    ------
    DatasetFormatError
        An empty file, a missing column (naming the columns found), a row with the wrong number of
        cells, a value that is not a number (line and column), a missing value with
        ``missing="error"`` (line and column), a date that cannot be read, two rows with one date.
    """
    if missing not in MISSING_POLICIES:
        raise ValueError(f"missing must be one of {', '.join(map(repr, MISSING_POLICIES))}, got {missing!r}")
    if isinstance(names, str) or not names or not all(isinstance(n, str) for n in names):
        raise TypeError(f"names must be a non-empty sequence of column names, got {names!r}")
    path = Path(path)
    where = repr(str(path))
    lines = read_lines(path)
    reader = csv.reader((line for _, line in lines), delimiter=_delimiter(path, delimiter))
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):  # blank lines before the header
            header = next(reader, None)
        if header is None:
            raise DatasetFormatError(f"{where}: the file is empty (expected a header row naming the columns)")
        header = [h.strip() for h in header]
        wanted = list(dict.fromkeys([*names, *([date_column] if date_column else [])]))
        absent = [n for n in wanted if n not in header]
        if absent:
            raise DatasetFormatError(f"{where}: no column {', '.join(map(repr, absent))}; the header has "
                                     f"{', '.join(map(repr, header))}")
        index = [header.index(n) for n in names]
        date_index = header.index(date_column) if date_column else None
        rows, dates, numbers = [], [], []
        for cells in reader:
            number = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise DatasetFormatError(f"{where} line {number}: expected {len(header)} cells as in the header, "
                                         f"got {len(cells)}")
            row = []
            for name, i in zip(names, index):
                text = cells[i].strip()
                if text.lower() in MISSING_MARKERS:
                    if missing == "error":
                        raise DatasetFormatError(
                            f"{where} line {number}, column {name!r}: missing value; fill it in, or set "
                            f"missing = \"interpolate\" or \"drop\" in [data]")
                    row.append(math.nan)
                    continue
                try:
                    value = float(text)
                except ValueError:
                    value = math.nan
                if not math.isfinite(value):
                    raise DatasetFormatError(f"{where} line {number}, column {name!r}: expected a number, got "
                                             f"{text!r:.40}")
                row.append(value)
            if date_index is not None:
                try:
                    dates.append(parse_date(cells[date_index]))
                except ValueError as exc:
                    raise DatasetFormatError(f"{where} line {number}, column {date_column!r}: {exc}") from None
            rows.append(row)
            numbers.append(number)
    except csv.Error as exc:
        raise DatasetFormatError(f"{where} line {reader.line_num}: not a readable CSV row ({exc})") from None
    finally:
        lines.close()
    if not rows:
        raise DatasetFormatError(f"{where}: the file has a header but no rows")
    values = np.array(rows, dtype=np.float64).reshape(len(rows), len(names))  # (T, F)
    line_numbers = np.array(numbers)
    if date_index is not None:
        order = sorted(range(len(dates)), key=dates.__getitem__)
        dates = [dates[i] for i in order]
        values, line_numbers = values[order], line_numbers[order]
        for a, b in zip(range(len(dates) - 1), range(1, len(dates))):
            if dates[a] == dates[b]:
                raise DatasetFormatError(f"{where} lines {line_numbers[a]} and {line_numbers[b]}: the same date "
                                         f"{dates[a].isoformat()} twice in column {date_column!r}")
    gaps = np.isnan(values)
    if gaps.any():
        if missing == "drop":
            keep = ~gaps.any(axis=1)
            values, line_numbers = values[keep], line_numbers[keep]
            dates = [d for d, k in zip(dates, keep) if k] if date_index is not None else dates
            if not len(values):
                raise DatasetFormatError(f"{where}: every row has a missing value; nothing is left after dropping")
        else:  # interpolate
            position = (np.array([d.timestamp() for d in dates]) if date_index is not None
                        else np.arange(len(values), dtype=np.float64))
            for f in range(values.shape[1]):
                bad = gaps[:, f]
                if bad.all():
                    raise DatasetFormatError(f"{where}, column {names[f]!r}: every value is missing; nothing to "
                                             "interpolate from")
                if bad.any():
                    values[bad, f] = np.interp(position[bad], position[~bad], values[~bad, f])
    return SeriesTable(values, list(names), dates if date_index is not None else None, line_numbers, str(path))
