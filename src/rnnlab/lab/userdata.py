"""Your own data: the files a ``[data]`` section names, their format, and how they are split.

Every task that reads the user's files goes through these three functions:

* :func:`data_files` -- ``[data] path`` (a file, a directory or a glob) or ``train_path`` with
  optional ``val_path``/``test_path`` (already absolute: :func:`~rnnlab.lab.config.load_config`
  resolved them against the config file's folder) -> a :class:`DataFiles`: the files of each part
  and their one format (``format`` or the suffixes; mixed formats are an error).
* :func:`split_indices` -- with ``path``, the task's split fractions: ``val_frac``/``test_frac``
  (default 0.1 each) of the samples, a seeded random choice, stratified by label when labels are
  given, or in order (``ordered=True``: the last samples, for sequences such as a corpus or a series).
* :func:`data_errors` -- a context manager turning the readers' errors (file missing, unreadable row,
  not UTF-8, missing column...) into :class:`~rnnlab.lab.config.ConfigError`: the command line
  prints their one line and exits with code 2, as for any other mistake in the configuration.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnlab.data.batches import train_val_split
from rnnlab.data.readers import detect_format, resolve_paths
from rnnlab.data.sources import DatasetError
from rnnlab.lab.config import ConfigError, DataConfig

__all__ = ["DataFiles", "data_files", "split_indices", "split_fractions", "data_errors", "unseen_labels_error"]

_PARTS = ("train", "val", "test")


@contextlib.contextmanager
def data_errors() -> Iterator[None]:
    """Re-raise a data error of the user's files (:class:`~rnnlab.data.sources.DatasetError`) as a ConfigError."""
    try:
        yield
    except DatasetError as exc:
        raise ConfigError(str(exc)) from None


@dataclass(frozen=True)
class DataFiles:
    """The files of a ``[data]`` section.

    Attributes
    ----------
    format : str
        One of :data:`rnnlab.data.readers.FORMATS`.
    parts : dict of str -> list of Path
        ``{"all": [...]}`` for ``path`` (split by the fractions), else ``{"train": [...], "val": ...,
        "test": ...}`` with the parts given.
    roots : dict of str -> Path or None
        The directory each part's setting names (None for a file or a glob): the folder of the class
        sub-folders of a classification.
    """

    format: str
    parts: dict[str, list[Path]]
    roots: dict[str, Path | None]

    @property
    def given(self) -> bool:
        """Whether the splits are given (``train_path``...) rather than drawn by the fractions."""
        return "train" in self.parts

    def all_files(self) -> list[Path]:
        return [p for files in self.parts.values() for p in files]


def data_files(d: DataConfig) -> DataFiles:
    """The files ``d`` names, part by part, and their format (see the module docstring)."""
    settings = {"all": d.path} if d.path is not None else {
        part: getattr(d, f"{part}_path") for part in _PARTS if getattr(d, f"{part}_path") is not None}
    if not settings:
        raise ConfigError("config [data]: no files given; set path = \"...\" or train_path = \"...\"")
    with data_errors():
        parts = {part: resolve_paths(value) for part, value in settings.items()}
        fmt = detect_format([p for files in parts.values() for p in files], d.format)
    roots = {part: (Path(value) if Path(value).is_dir() else None) for part, value in settings.items()}
    return DataFiles(fmt, parts, roots)


def split_fractions(d: DataConfig, default: float = 0.1) -> tuple[float, float]:
    """``(val_frac, test_frac)`` of ``d``, each ``default`` when unset."""
    return (default if d.val_frac is None else d.val_frac, default if d.test_frac is None else d.test_frac)


def split_indices(n: int, val_frac: float, test_frac: float, *, seed: int = 0, stratify=None,
                  ordered: bool = False, what: str = "samples") -> dict[str, np.ndarray | None]:
    """Indices of the ``train``/``val``/``test`` parts of ``n`` samples (None for a part of fraction 0).

    ``ordered``: the parts are consecutive, train first (no randomness). Otherwise ``test_frac`` of the
    samples is a seeded random choice (per class with ``stratify``, the labels), then ``val_frac`` of
    the whole (a fraction ``val_frac / (1 - test_frac)`` of the rest), as
    :func:`~rnnlab.data.batches.train_val_split` draws them. Too few samples is a ConfigError.
    """
    if n < 1 + (val_frac > 0) + (test_frac > 0):
        raise ConfigError(f"cannot split {n} {what} into training, validation (val_frac={val_frac}) and test "
                          f"(test_frac={test_frac}) parts; give more data, set the fractions to 0, or give the parts "
                          "as train_path/val_path/test_path")
    everything = np.arange(n)
    if ordered:
        n_test = min(max(round(n * test_frac), 1), n - 1) if test_frac > 0 else 0
        n_val = min(max(round(n * val_frac), 1), n - n_test - 1) if val_frac > 0 else 0
        n_train = n - n_val - n_test
        return {"train": everything[:n_train], "val": everything[n_train:n_train + n_val] if n_val else None,
                "test": everything[n_train + n_val:] if n_test else None}
    labels = None if stratify is None else np.asarray(stratify)
    try:
        if test_frac > 0:
            rest, test = train_val_split(everything, val_frac=test_frac, seed=seed, stratify=labels)
        else:
            rest, test = everything, None
        if val_frac > 0:
            train, val = train_val_split(rest, val_frac=min(val_frac / (1 - test_frac), 0.99), seed=seed,
                                         stratify=None if labels is None else labels[rest])
        else:
            train, val = rest, None
    except ValueError as exc:
        raise ConfigError(f"cannot split {n} {what} with val_frac={val_frac}, test_frac={test_frac}: {exc}") from None
    return {"train": train, "val": val, "test": test}


def unseen_labels_error(part: str, unseen, seen, what: str = "label") -> ConfigError:
    """The error of a label (or tag) of the validation or test part that training never saw."""
    unseen = sorted(set(unseen))
    return ConfigError(f"the {part} part holds the {what}{'s' if len(unseen) > 1 else ''} "
                       f"{', '.join(map(repr, unseen[:5]))}{' ...' if len(unseen) > 5 else ''} that the training "
                       f"part never has (training {what}s: {', '.join(map(repr, sorted(seen)))}); a model cannot "
                       f"predict a class it never saw: add examples of it to the training data")
