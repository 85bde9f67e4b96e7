"""Subword tokens: a byte-pair-encoding (BPE) tokenizer trained on a corpus, with Hugging Face ``tokenizers``.

``tokenizers`` is an optional dependency (the ``subword`` extra: ``pip install "rnnlab[subword]"``),
imported only here and only when a subword tokenizer is trained or loaded.

:func:`train_bpe` learns the merges on an iterable of lines (streamed: the training split of a
corpus), with a Metaspace pre-tokenizer (a word's first piece carries ``"▁"`` for the space before
it, as SentencePiece does), so the pieces join back to the text: :meth:`BPETokenizer.detokenize`.
The tokenizer saves to and loads from one JSON document (the library's own format, no pickle).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["BPETokenizer", "train_bpe", "SPACE", "EXTRA"]

#: what marks the start of a word in the pieces
SPACE = "\u2581"
#: the optional extra that installs the tokenizer library
EXTRA = "subword"


def _library():
    try:
        import tokenizers
    except ImportError:
        raise ModuleNotFoundError(f"level = 'subword' needs the Hugging Face tokenizers package, which is not "
                                  f"installed; install it with: pip install \"rnnlab[{EXTRA}]\"") from None
    return tokenizers


class BPETokenizer:
    """A trained BPE tokenizer: ``tokenize(text) -> pieces`` and ``detokenize(pieces) -> text``."""

    def __init__(self, tokenizer):
        self._tokenizer = tokenizer

    def __call__(self, text: str) -> list[str]:
        """The pieces of ``text`` (``"▁the", "re"`` ...)."""
        return self._tokenizer.encode(text).tokens

    @staticmethod
    def detokenize(pieces: Iterable[str]) -> str:
        """The text the pieces spell: joined, each ``"▁"`` a space (a leading one dropped)."""
        text = "".join(pieces).replace(SPACE, " ")
        return text[1:] if text.startswith(" ") else text

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size()

    def to_json(self) -> str:
        return self._tokenizer.to_str()

    @classmethod
    def from_json(cls, text: str) -> BPETokenizer:
        try:
            return cls(_library().Tokenizer.from_str(text))
        except Exception as exc:  # the library raises its own exception types for a malformed document
            if isinstance(exc, ModuleNotFoundError):
                raise
            raise ValueError(f"not a tokenizer JSON document: {exc}") from None


def train_bpe(lines: Iterable[str], vocab_size: int, *, min_frequency: int = 1, specials=("<unk>",)) -> BPETokenizer:
    """A BPE tokenizer of at most ``vocab_size`` pieces learnt from ``lines`` (an iterable of str, read once).

    Unknown characters at encoding time become ``specials[0]``."""
    tk = _library()
    tokenizer = tk.Tokenizer(tk.models.BPE(unk_token=specials[0]))
    tokenizer.pre_tokenizer = tk.pre_tokenizers.Metaspace()
    tokenizer.decoder = tk.decoders.Metaspace()
    trainer = tk.trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                     special_tokens=list(specials), show_progress=False)
    tokenizer.train_from_iterator(lines, trainer=trainer)
    return BPETokenizer(tokenizer)
