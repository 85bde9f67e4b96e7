"""Tagged sentences (many-to-many, aligned): CoNLL-style files, and the chunks of BIO/IOB2 tags.

File format
-----------
One token per line with its tag, the columns separated by whitespace (spaces or tabs); a blank line
ends a sentence. Wider files (CoNLL-2003: ``token POS chunk entity``) choose their columns with
``token_column`` and ``tag_column``: 0-based, negative counting from the end (defaults 0 and -1, the
first and the last column). Lines starting with ``-DOCSTART-`` (document boundaries in CoNLL-2003)
are skipped, as are lines starting with ``#`` (comments in CoNLL-U)::

    The     DT  B-NP  O
    Parisian JJ I-NP  B-MISC
    ...
                                  <- blank line: next sentence

:func:`read_conll` returns :class:`Sentence` records that remember the file and line of every
token, so a tag the training part never saw can be reported where it is.

Chunks
------
:func:`bio_chunks` reads the entities out of BIO/IOB2 tags: ``B-X`` begins an entity of type X,
``I-X`` continues it, ``O`` is outside. As in the CoNLL evaluation script, an ``I-X`` that does not
follow ``B-X`` or ``I-X`` (after ``O``, or after another type) begins a new entity (IOB1 style), so
every predicted sequence has well-defined chunks. :func:`chunk_scores` compares the chunk sets of
true and predicted sequences: an entity counts as right only when its type, start and end all match
(exact match, entity level).

    precision = |true ∩ predicted| / |predicted|      recall = |true ∩ predicted| / |true|
    F1 = 2 precision recall / (precision + recall)     (0 when both are 0)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rnnlab.data.readers import read_lines
from rnnlab.data.sources import DatasetFormatError

__all__ = ["Sentence", "read_conll", "read_token_lines", "is_bio", "bio_chunks", "chunk_scores", "OUTSIDE"]

#: The tag outside every entity.
OUTSIDE = "O"
_SKIPPED_PREFIXES = ("-DOCSTART-", "#")


@dataclass
class Sentence:
    """One sentence: its tokens, their tags (None for an untagged file), and where each token is.

    ``lines[i]`` is the line number of token ``i`` in ``source``.
    """

    tokens: list[str]
    tags: list[str] | None
    source: str
    lines: list[int] = field(default_factory=list)


def _column(fields: list[str], index: int, what: str, path: Path, number: int) -> str:
    try:
        return fields[index]
    except IndexError:
        raise DatasetFormatError(f"{str(path)!r} line {number}: {what} {index} does not exist in a line of "
                                 f"{len(fields)} column(s) {fields!r:.80}") from None


def read_conll(paths, token_column: int = 0, tag_column: int | None = -1) -> list[Sentence]:
    """The sentences of CoNLL-style files (module docstring), in file order.

    Parameters
    ----------
    paths : path or sequence of paths
        Plain or compressed (``.gz``, ``.bz2``, ``.xz``) UTF-8 files.
    token_column, tag_column : int
        0-based columns (negative: from the end). ``tag_column=None`` reads tokens only (for
        prediction); a line may then have a single column.

    Raises
    ------
    DatasetFormatError
        A line without the requested columns (file, line and what it holds), a line of a single
        column when tags are read, a file that is not UTF-8, or files holding no sentence at all.
    """
    for name, value in (("token_column", token_column), ("tag_column", tag_column)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    sentences: list[Sentence] = []
    for path in paths:
        sentences += _conll_file(path, token_column, tag_column)
    if not sentences:
        listed = ", ".join(repr(str(p)) for p in paths[:3]) + (" ..." if len(paths) > 3 else "")
        raise DatasetFormatError(f"{listed}: no sentence found (the file is empty or holds only blank lines)")
    return sentences


def read_token_lines(paths) -> list[Sentence]:
    """Untagged sentences from text files: one sentence per non-blank line, tokens separated by whitespace."""
    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    sentences = []
    for path in paths:
        for number, line in read_lines(path):
            if line.strip():
                tokens = line.split()
                sentences.append(Sentence(tokens, None, str(path), [number] * len(tokens)))
    if not sentences:
        raise DatasetFormatError(f"{', '.join(repr(str(p)) for p in paths)}: no sentence found (the file is empty)")
    return sentences


def _conll_file(path: Path, token_column: int, tag_column: int | None) -> list[Sentence]:
    """The sentences of one CoNLL-style file."""
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    lines: list[int] = []
    for number, line in itertools.chain(read_lines(path), [(0, "")]):  # a final blank line closes the last sentence
        fields = line.split()
        if not fields:
            if tokens:
                sentences.append(Sentence(tokens, None if tag_column is None else tags, str(path), lines))
                tokens, tags, lines = [], [], []
            continue
        if fields[0].startswith(_SKIPPED_PREFIXES):
            continue
        if tag_column is not None and len(fields) < 2:
            raise DatasetFormatError(f"{str(path)!r} line {number}: expected a token and its tag separated by "
                                     f"whitespace, got one column {line!r:.80}")
        tokens.append(_column(fields, token_column, "token_column", path, number))
        if tag_column is not None:
            tags.append(_column(fields, tag_column, "tag_column", path, number))
        lines.append(number)
    return sentences


# --------------------------------------------------------------------------- BIO chunks
def _split_tag(tag: str) -> tuple[str, str]:
    """``("B", "PER")`` for ``"B-PER"``, ``("O", "")`` for ``"O"``; anything else is ``("", tag)``."""
    if tag == OUTSIDE:
        return OUTSIDE, ""
    prefix, dash, kind = tag.partition("-")
    if dash and prefix in ("B", "I") and kind:
        return prefix, kind
    return "", tag


def is_bio(tags: Iterable[str]) -> bool:
    """Whether every tag is ``O``, ``B-X`` or ``I-X``, and at least one is ``B-X`` (BIO/IOB2 entities)."""
    prefixes = [_split_tag(t)[0] for t in tags]
    return bool(prefixes) and "" not in prefixes and "B" in prefixes


def bio_chunks(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """The entities of one BIO/IOB2 tag sequence: ``(type, start, end)`` with ``end`` exclusive.

    Examples
    --------
    >>> from rnnlab.data.tagging import bio_chunks
    >>> bio_chunks(["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-ORG"])
    [('PER', 0, 2), ('LOC', 3, 4), ('LOC', 4, 5), ('ORG', 5, 6)]
    """
    chunks = []
    kind, start = None, 0
    for i, tag in enumerate(tags):
        prefix, this = _split_tag(tag)
        continues = prefix == "I" and this == kind
        if kind is not None and not continues:
            chunks.append((kind, start, i))
            kind = None
        if prefix in ("B", "I") and not continues:
            kind, start = this, i
    if kind is not None:
        chunks.append((kind, start, len(tags)))
    return chunks


def chunk_scores(true_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]) -> dict:
    """Entity-level ``precision``, ``recall`` and ``f1`` (exact matches, module docstring), and the counts.

    Parameters
    ----------
    true_tags, pred_tags : sequences of tag sequences
        One sequence per sentence, of the same lengths.

    Returns
    -------
    dict
        ``precision``, ``recall``, ``f1`` (floats; 0.0 when undefined), ``true_entities``,
        ``predicted_entities``, ``correct_entities`` (ints).
    """
    if len(true_tags) != len(pred_tags):
        raise ValueError(f"true_tags and pred_tags must hold the same number of sentences, got {len(true_tags)} "
                         f"and {len(pred_tags)}")
    n_true = n_pred = n_right = 0
    for i, (t, p) in enumerate(zip(true_tags, pred_tags)):
        if len(t) != len(p):
            raise ValueError(f"sentence {i}: true_tags has {len(t)} tags and pred_tags {len(p)}; they must be aligned")
        true_set, pred_set = set(bio_chunks(t)), set(bio_chunks(p))
        n_true, n_pred, n_right = n_true + len(true_set), n_pred + len(pred_set), n_right + len(true_set & pred_set)
    precision = n_right / n_pred if n_pred else 0.0
    recall = n_right / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "true_entities": n_true,
            "predicted_entities": n_pred, "correct_entities": n_right}
