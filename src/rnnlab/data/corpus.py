"""A text corpus encoded once into token ids on disk, then read memory-mapped: memory stays flat in its size.

:func:`encode_corpus` reads the lines of each part of a corpus (``train``, and optionally ``val`` and
``test``) once, tokenizes them, and writes every part's ids to ``<out_dir>/tokens-<part>.npy``;
:func:`load_corpus` opens them with ``np.load(mmap_mode="r")``, so a language model streams its
batches from the disk (:class:`~rnnlab.data.batches.LMStream` takes the memory map as it is).

How it is computed
------------------
One pass over the text: each line's tokens, followed by the end-of-line token (``eos``), get
*provisional* ids in order of first appearance, written in chunks to a temporary file; the Python
objects alive at any time are one chunk of ids and the table of distinct tokens. The training
part's counts are then a ``np.bincount`` over its provisional ids (read back in chunks), the
:class:`~rnnlab.data.text.Vocabulary` is fitted on those counts (:meth:`~Vocabulary.fit_counts`:
the same ids as fitting on the token lists), and a lookup array maps every provisional id to its
final id (``<unk>`` for tokens training never saw, or below ``min_freq``) while the parts are
copied to their ``.npy`` files. The ids are ``uint16`` when the vocabulary has at most 65,536
entries, else ``uint32``. A ``tokens.json`` manifest records the sources (names, sizes, modification
times) and the tokenization, so an unchanged corpus is not encoded twice (e.g. on ``--resume``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np

from rnnlab._files import open_atomic, write_atomic
from rnnlab.data.text import Vocabulary

__all__ = ["encode_corpus", "load_corpus", "corpus_fingerprint", "MANIFEST"]

#: the manifest of an encoded corpus folder: its parts, their lengths and the fingerprint of what they encode
MANIFEST = "tokens.json"
_CHUNK = 1 << 18  # ids per chunk written or read


class _FirstSeen(dict):
    """token -> provisional id, a new token getting the next id (``map(table.__getitem__, tokens)`` runs in C)."""

    def __missing__(self, token):
        self[token] = i = len(self)
        return i


def _part_file(out_dir: Path, part: str) -> Path:
    return out_dir / f"tokens-{part}.npy"


def corpus_fingerprint(files: Mapping[str, Iterable[Path]], tokenization: Mapping) -> dict:
    """What identifies an encoding: every source file's name, size and modification time per part, and
    ``tokenization`` (level, tokenizer, vocabulary settings...)."""
    sources = {part: [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in map(Path, paths)]
               for part, paths in files.items()}
    return {"sources": sources, "tokenization": dict(tokenization)}


def load_corpus(out_dir, fingerprint: dict | None = None) -> dict[str, np.ndarray] | None:
    """The memory-mapped parts written by :func:`encode_corpus` in ``out_dir``, or None when there are none
    or (given ``fingerprint``) they were made from other sources or another tokenization."""
    out_dir = Path(out_dir)
    manifest = out_dir / MANIFEST
    if not manifest.is_file():
        return None
    try:
        document = json.loads(manifest.read_text("utf-8"))
        if fingerprint is not None and document.get("fingerprint") != json.loads(json.dumps(fingerprint)):
            return None
        return {part: np.load(_part_file(out_dir, part), mmap_mode="r") for part in document["parts"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def encode_corpus(parts: Mapping[str, Callable[[], Iterable[str]]], tokenize: Callable[[str], list[str]], out_dir, *,
                  eos: str, vocab: Vocabulary | None = None, min_freq: int = 1, max_size: int | None = None,
                  specials=("<unk>",), fingerprint: dict | None = None) -> tuple[Vocabulary, dict[str, np.ndarray]]:
    """Encode the lines of every part into ``out_dir/tokens-<part>.npy`` and return ``(vocab, memmaps)``.

    Parameters
    ----------
    parts : mapping of part name -> callable returning an iterable of lines
        ``"train"`` first; each callable is called once.
    tokenize : callable str -> list of str
        Applied to each line; ``eos`` is appended after each line's tokens.
    vocab : Vocabulary, optional
        Use this vocabulary (unknown tokens -> ``<unk>``) instead of fitting one on the training part
        with ``min_freq``, ``max_size`` and ``specials``.
    fingerprint : dict, optional
        Written to the manifest, for :func:`load_corpus` to recognise the encoding.

    Returns
    -------
    vocab : Vocabulary
    memmaps : dict of part -> ndarray of uint16 or uint32, shape (L_part,)
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / f".tokens.{os.getpid()}.raw"
    table = _FirstSeen()
    lookup = table.__getitem__
    counts: dict[str, int] = {}
    try:
        with open(raw, "wb") as f:
            for part, lines in parts.items():
                n, chunk = 0, []
                for line in lines():
                    chunk.extend(map(lookup, tokenize(line)))
                    chunk.append(lookup(eos))
                    if len(chunk) >= _CHUNK:
                        np.asarray(chunk, dtype=np.uint32).tofile(f)
                        n, chunk = n + len(chunk), []
                np.asarray(chunk, dtype=np.uint32).tofile(f)
                counts[part] = n + len(chunk)
        tokens = list(table)  # provisional id -> token
        del table
        if vocab is None:
            train_counts = np.zeros(len(tokens), dtype=np.int64)
            for ids in _chunks(raw, 0, counts.get("train", 0)):
                train_counts += np.bincount(ids, minlength=len(tokens))
            vocab = Vocabulary(min_freq, max_size, specials=specials).fit_counts(
                {t: int(c) for t, c in zip(tokens, train_counts) if c})
        final = np.array(vocab.encode(tokens), dtype=np.int64)  # provisional -> final id (unseen -> <unk>)
        dtype = np.dtype(np.uint16 if len(vocab) <= 1 << 16 else np.uint32)
        start = 0
        for part, n in counts.items():
            with open_atomic(_part_file(out_dir, part)) as f:
                np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                         "fortran_order": False, "shape": (n,)})
                for ids in _chunks(raw, start, n):
                    f.write(final[ids].astype(dtype).tobytes())
            start += n
    finally:
        raw.unlink(missing_ok=True)
    manifest = {"parts": list(counts), "tokens": counts, "fingerprint": fingerprint}
    write_atomic(out_dir / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
    return vocab, {part: np.load(_part_file(out_dir, part), mmap_mode="r") for part in counts}


def _chunks(raw: Path, start: int, n: int):
    """The provisional ids ``[start, start + n)`` of ``raw``, in chunks read from the file (not mapped)."""
    with open(raw, "rb") as f:
        f.seek(start * 4)
        while n > 0:
            ids = np.fromfile(f, dtype=np.uint32, count=min(n, _CHUNK))
            if ids.size == 0:
                break
            n -= ids.size
            yield ids
