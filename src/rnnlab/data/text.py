"""Text basics: tokenizers, a vocabulary, and padding to a batch with its mask.

The data flow is ``raw text -> tokens -> ids -> padded batch + mask``::

    >>> tokens = [word_tokenize(s) for s in ["Movie was good.", "Movie was bad!"]]
    >>> vocab = Vocabulary().fit(tokens)
    >>> ids, mask = pad_sequences([vocab.encode(t) for t in tokens])
    >>> ids.shape, mask.dtype
    ((2, 4), dtype('bool'))

Tokenization rules
------------------
``char_tokenize(text)`` returns every character (spaces and newlines included), so ``"".join``
inverts it exactly. ``word_tokenize(text)`` returns, left to right:

1. numbers with inner separators as one token: ``"3.5"``, ``"1,000"``;
2. words: runs of letters, digits and ``_`` (Unicode ``\\w``), joined by single inner
   apostrophes or hyphens: ``"don't"``, ``"slow-moving"``, ``"rock'n'roll"``;
3. every other non-space character as a token of its own: ``"!!"`` gives ``"!", "!"``,
   ``"..."`` gives three ``"."``;

and drops whitespace (Unicode ``\\s``, which includes U+0085 NEXT LINE). ``lower=True`` (the
default) lower-cases with ``str.lower`` before splitting.

Vocabulary order
----------------
The special tokens come first, in the order given (``<pad>`` = 0, ``<unk>`` = 1 by default),
then the fitted tokens by decreasing count, ties broken alphabetically (by code point), so a fit
is deterministic whatever the order of the corpus.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from rnnlab._validation import check_choice, check_positive_int

__all__ = ["char_tokenize", "word_tokenize", "Vocabulary", "pad_sequences", "PAD", "UNK"]

#: the padding token, id 0 of every vocabulary
PAD = "<pad>"
#: the unknown token, id 1 of every vocabulary
UNK = "<unk>"

_WORD_RE = re.compile(
    r"\d+(?:[.,]\d+)+"          # 3.5, 1,000
    r"|\w+(?:['\u2019-]\w+)*"   # words, don't, slow-moving
    r"|[^\w\s]"                 # any other visible character, one at a time
)


def _check_text(text) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__} {text!r:.60}")
    return text


def char_tokenize(text: str, lower: bool = False) -> list[str]:
    """Split ``text`` into characters (whitespace included); ``lower`` lower-cases first.

    >>> char_tokenize("Hi!")
    ['H', 'i', '!']
    """
    text = _check_text(text)
    return list(text.lower() if lower else text)


def word_tokenize(text: str, lower: bool = True) -> list[str]:
    """Split ``text`` into words, numbers and punctuation marks (rules in the module docstring).

    >>> word_tokenize("Movie wasn't good... 9.5/10!")
    ['movie', "wasn't", 'good', '.', '.', '.', '9.5', '/', '10', '!']
    """
    text = _check_text(text)
    return _WORD_RE.findall(text.lower() if lower else text)


# --------------------------------------------------------------------------- vocabulary
class Vocabulary:
    """A token <-> id mapping fitted on a corpus.

    Parameters
    ----------
    min_freq : int
        Keep tokens seen at least this many times (>= 1).
    max_size : int, optional
        At most this many entries *including* the specials (as torchtext's ``max_tokens``); the
        most frequent tokens are kept.
    specials : sequence of str
        Reserved tokens placed first, in this order. With the default, ``<pad>`` is id 0 and
        ``<unk>`` id 1. Without ``"<unk>"``, encoding an unknown token is an error (useful for
        a closed character set).

    Attributes
    ----------
    tokens : list of str
        ``tokens[i]`` is the token of id ``i`` (the "itos" table).
    counts : dict of str to int
        The training counts of the kept tokens (specials excluded).
    pad_id, unk_id : int or None
        Ids of ``<pad>`` and ``<unk>``, None when they are not among the specials.

    Notes
    -----
    ``fit`` orders the non-special tokens by ``(-count, token)``: decreasing frequency, then
    alphabetical, so the ids do not depend on the corpus order. Fitting again starts afresh.
    """

    FORMAT = "rnnlab.Vocabulary"
    VERSION = 1

    def __init__(self, min_freq: int = 1, max_size: int | None = None, specials: Sequence[str] = (PAD, UNK)):
        self.min_freq = check_positive_int("min_freq", min_freq)
        if isinstance(specials, str) or not isinstance(specials, Sequence):
            raise TypeError(f"specials must be a sequence of str such as ('<pad>', '<unk>'), got {specials!r}")
        specials = tuple(specials)
        for s in specials:
            if not isinstance(s, str) or not s:
                raise TypeError(f"specials must hold non-empty strings, got {s!r} in {specials!r}")
        if len(set(specials)) != len(specials):
            raise ValueError(f"specials must be distinct, got {specials!r}")
        self.specials = specials
        if max_size is not None:
            max_size = check_positive_int("max_size", max_size)
            if max_size <= len(specials):
                raise ValueError(f"max_size must exceed the number of specials ({len(specials)}: {specials!r}) "
                                 f"to leave room for any token, got {max_size}")
        self.max_size = max_size
        self.tokens: list[str] = list(specials)
        self.counts: dict[str, int] = {}
        self._stoi: dict[str, int] = {t: i for i, t in enumerate(self.tokens)}
        self.fitted = False

    # ----------------------------------------------------------------- fitting
    def fit(self, token_lists: Iterable[Sequence[str]]) -> Vocabulary:
        """Count the tokens of ``token_lists`` (an iterable of token lists) and build the table.

        Returns ``self``, so ``Vocabulary().fit(corpus)`` reads naturally.
        """
        if isinstance(token_lists, (str, bytes)):
            raise TypeError("token_lists must be an iterable of token lists such as [['movie', 'was', 'good']], "
                            "got a single string; tokenize it first (word_tokenize or char_tokenize)")
        counter: Counter[str] = Counter()
        for i, tokens in enumerate(token_lists):
            if isinstance(tokens, str) or not isinstance(tokens, Sequence):
                raise TypeError(f"token_lists must hold token lists (sequences of str); item {i} is "
                                f"{type(tokens).__name__} {tokens!r:.60}; tokenize it first")
            for tok in tokens:
                if not isinstance(tok, str):
                    raise TypeError(f"tokens must be str; item {i} holds {type(tok).__name__} {tok!r:.60}")
            counter.update(tokens)
        return self.fit_counts(counter)

    def fit_counts(self, counts: Mapping[str, int]) -> Vocabulary:
        """Build the table from token counts already made (``{token: count}``), as :meth:`fit` does from
        the token lists; for corpora too large to hold as lists. Returns ``self``."""
        if not isinstance(counts, Mapping):
            raise TypeError(f"counts must be a mapping of token to count, got {type(counts).__name__}")
        counter = counts
        special = set(self.specials)
        kept = sorted(((t, c) for t, c in counter.items() if c >= self.min_freq and t not in special),
                      key=lambda tc: (-tc[1], tc[0]))
        if self.max_size is not None:
            kept = kept[: self.max_size - len(self.specials)]
        self.tokens = list(self.specials) + [t for t, _ in kept]
        self.counts = dict(kept)
        self._stoi = {t: i for i, t in enumerate(self.tokens)}
        self.fitted = True
        return self

    # ----------------------------------------------------------------- lookups
    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token) -> bool:
        return token in self._stoi

    @property
    def pad_id(self) -> int | None:
        return self._stoi.get(PAD) if PAD in self.specials else None

    @property
    def unk_id(self) -> int | None:
        return self._stoi.get(UNK) if UNK in self.specials else None

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise ValueError("this Vocabulary is not fitted yet; call fit(token_lists) or Vocabulary.from_json(text) "
                             "first")

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Ids of ``tokens``; unknown tokens get ``<unk>`` (an error when there is no ``<unk>``)."""
        self._check_fitted()
        if isinstance(tokens, str) or not isinstance(tokens, Sequence):
            raise TypeError(f"tokens must be a sequence of str (a tokenized text), got {type(tokens).__name__} "
                            f"{tokens!r:.60}; tokenize it first")
        unk = self.unk_id
        ids = []
        for tok in tokens:
            i = self._stoi.get(tok, unk)
            if i is None:
                if not isinstance(tok, str):
                    raise TypeError(f"tokens must be str, got {type(tok).__name__} {tok!r:.60}")
                raise ValueError(f"token {tok!r} is not in the vocabulary, which has no {UNK!r} special to stand "
                                 f"for it (specials: {self.specials!r})")
            ids.append(i)
        return ids

    def decode(self, ids, skip_specials: bool = False) -> list[str]:
        """Tokens of the ids in ``ids`` (a 1-D sequence or array of ints); optionally drop the specials."""
        self._check_fitted()
        arr = np.asarray(ids)
        if arr.size == 0:
            return []
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"ids must be a 1-D sequence of ints, got shape {arr.shape} and dtype {arr.dtype}")
        if arr.min() < 0 or arr.max() >= len(self):
            bad = int(arr[(arr < 0) | (arr >= len(self))][0])
            raise ValueError(f"ids must lie in [0, {len(self)}) for this vocabulary of {len(self)} entries, got {bad}")
        n_special = len(self.specials)
        return [self.tokens[i] for i in arr.tolist() if not (skip_specials and i < n_special)]

    # ----------------------------------------------------------------- JSON
    def to_json(self) -> str:
        """A JSON document holding the settings and the id table (no pickle)."""
        self._check_fitted()
        return json.dumps({"format": self.FORMAT, "version": self.VERSION, "min_freq": self.min_freq,
                           "max_size": self.max_size, "specials": list(self.specials),
                           "tokens": self.tokens, "counts": [self.counts.get(t, 0) for t in self.tokens]},
                          ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Vocabulary:
        """Rebuild a vocabulary from :meth:`to_json`'s output; malformed documents raise ValueError."""
        if not isinstance(text, (str, bytes, bytearray)):
            raise TypeError(f"text must be the JSON string written by Vocabulary.to_json, got {type(text).__name__}")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a valid vocabulary JSON document: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != cls.FORMAT:
            raise ValueError(f"not a vocabulary JSON document: expected \"format\": {cls.FORMAT!r}, "
                             f"got {data.get('format') if isinstance(data, dict) else type(data).__name__!r}")
        if data.get("version") != cls.VERSION:
            raise ValueError(f"unsupported vocabulary format version {data.get('version')!r}; "
                             f"this rnnlab reads version {cls.VERSION}")
        missing = [k for k in ("min_freq", "max_size", "specials", "tokens", "counts") if k not in data]
        if missing:
            raise ValueError(f"vocabulary JSON document lacks the field(s) {missing}")
        vocab = cls(min_freq=data["min_freq"], max_size=data["max_size"], specials=tuple(data["specials"]))
        tokens, counts = data["tokens"], data["counts"]
        if (not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens)
                or tokens[: len(vocab.specials)] != list(vocab.specials)):
            raise ValueError("vocabulary JSON field \"tokens\" must be a list of str starting with the specials "
                             f"{list(vocab.specials)}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("vocabulary JSON field \"tokens\" holds duplicate tokens")
        if not isinstance(counts, list) or len(counts) != len(tokens) or not all(isinstance(c, int) for c in counts):
            raise ValueError(f"vocabulary JSON field \"counts\" must be {len(tokens)} ints, one per token")
        vocab.tokens = tokens
        vocab.counts = {t: c for t, c in zip(tokens, counts) if t not in vocab.specials}
        vocab._stoi = {t: i for i, t in enumerate(tokens)}
        vocab.fitted = True
        return vocab

    def __eq__(self, other) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return (self.tokens, self.counts, self.specials, self.min_freq, self.max_size, self.fitted) == \
               (other.tokens, other.counts, other.specials, other.min_freq, other.max_size, other.fitted)

    def __repr__(self) -> str:
        return (f"Vocabulary(size={len(self)}, min_freq={self.min_freq}, max_size={self.max_size}, "
                f"specials={self.specials!r})")


# --------------------------------------------------------------------------- padding
def pad_sequences(seqs: Sequence[Sequence[int]], maxlen: int | None = None, padding: str = "post",
                  truncating: str = "post", value: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pad (or cut) integer sequences to one length and return them with their mask.

    Parameters
    ----------
    seqs : sequence of sequences of int
        B sequences of token ids, of any lengths (empty ones allowed: their row is all padding).
    maxlen : int, optional
        T, the output length; the longest sequence's length when omitted.
    padding : "post" (default) or "pre"
        Put the padding after (right padding) or before (left padding) each sequence.
    truncating : "post" (default) or "pre"
        Drop the ids beyond ``maxlen`` from the end (keep the beginning) or from the start.
    value : int
        The padding id (0 = ``<pad>`` for a default :class:`Vocabulary`).

    Returns
    -------
    ids : ndarray of int64, shape (B, T)
    mask : ndarray of bool, shape (B, T)
        True where ``ids`` holds a real token: decided by position, so a real token equal to
        ``value`` is still marked valid.
    """
    if isinstance(seqs, (str, bytes)) or not isinstance(seqs, (Sequence, np.ndarray)):
        raise TypeError(f"seqs must be a sequence of id sequences, got {type(seqs).__name__}")
    check_choice("padding", padding, ("post", "pre"))
    check_choice("truncating", truncating, ("post", "pre"))
    if maxlen is not None:
        maxlen = check_positive_int("maxlen", maxlen)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"value must be an int (the padding id), got {type(value).__name__} {value!r}")
    rows = []
    for i, s in enumerate(seqs):
        if isinstance(s, (str, bytes)):
            raise TypeError(f"seqs[{i}] must be a sequence of int ids, got a string {s!r:.40}; encode it first")
        arr = np.asarray(s)
        if arr.size == 0:
            arr = np.zeros(0, dtype=np.int64)
        if arr.ndim != 1:
            raise ValueError(f"seqs[{i}] must be a flat sequence of ids, got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"seqs[{i}] must hold integer ids, got dtype {arr.dtype} ({s!r:.40})")
        rows.append(arr.astype(np.int64, copy=False))
    T = maxlen if maxlen is not None else max((len(r) for r in rows), default=0)
    ids = np.full((len(rows), T), value, dtype=np.int64)
    mask = np.zeros((len(rows), T), dtype=bool)
    for b, r in enumerate(rows):
        if len(r) > T:
            r = r[:T] if truncating == "post" else r[len(r) - T:]
        n = len(r)
        if n == 0:
            continue
        if padding == "post":
            ids[b, :n], mask[b, :n] = r, True
        else:
            ids[b, T - n:], mask[b, T - n:] = r, True
    return ids, mask
