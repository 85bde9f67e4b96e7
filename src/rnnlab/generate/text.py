"""Text in, text out: :func:`sample` (text after a prime), :func:`rank_next` (the most probable next
tokens) and :func:`encode_texts` (raw texts to the padded ids and mask a model was trained on), through
the vocabulary and tokenizer of training.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from rnnlab._validation import as_generator, check_positive_int
from rnnlab.data.text import Vocabulary, char_tokenize, pad_sequences, word_tokenize
from rnnlab.generate.generator import Generator, _check_output_size, _iterate
from rnnlab.generate.sampling import SamplingConfig
from rnnlab.nn.functional import log_softmax
from rnnlab.nn.module import Module

__all__ = ["encode_texts", "rank_next", "sample"]


_TOKENIZERS: dict[str, tuple[Callable[[str], list[str]], str]] = {
    "char": (char_tokenize, ""),
    "word": (word_tokenize, " "),
}


def _check_vocab(vocab) -> Vocabulary:
    if not isinstance(vocab, Vocabulary):
        raise TypeError(f"vocab must be a fitted rnnlab.text.Vocabulary (a saved one loads with "
                        f"Vocabulary.from_json(text)), got {type(vocab).__name__}")
    vocab._check_fitted()
    return vocab


def _resolve_tokenizer(tokenizer, vocab: Vocabulary) -> tuple[Callable[[str], list[str]], str]:
    """``(tokenize, joiner)``. None infers "char" when every fitted token is one character, else "word"."""
    if tokenizer is None:
        fitted = vocab.tokens[len(vocab.specials):]
        tokenizer = "char" if fitted and all(len(t) == 1 for t in fitted) else "word"
    if callable(tokenizer):
        return tokenizer, " "
    if tokenizer not in _TOKENIZERS:
        raise ValueError(f"tokenizer must be 'char', 'word', a callable str -> list of str, or None (inferred from "
                         f"the vocabulary); got {tokenizer!r}")
    return _TOKENIZERS[tokenizer]


def _tokens(tokenize, text, argument: str) -> list[str]:
    if not isinstance(text, str):
        raise TypeError(f"{argument} must be a str, got {type(text).__name__} {text!r:.60}")
    tokens = tokenize(text)
    if isinstance(tokens, str) or not isinstance(tokens, Sequence) or not all(isinstance(t, str) for t in tokens):
        raise TypeError(f"the tokenizer must return a list of str, got {tokens!r:.60} for {argument}")
    return list(tokens)


def sample(model: Module, vocab: Vocabulary, prime: str, *, length: int, temperature: float = 1.0,
           top_k: int | None = None, top_p: float | None = None, greedy: bool = False, stop=None,
           include_stop: bool = True, seed=None, tokenizer=None, joiner: str | None = None,
           on_text: Callable[[str], object] | None = None) -> str:
    """Generate text after ``prime`` from a language model: tokenize, encode, :func:`generate_ids`, decode.

    Parameters
    ----------
    model : Module
        A language model whose logits are over ``vocab`` (V = ``len(vocab)``).
    vocab : Vocabulary
        The vocabulary the model was trained with.
    prime : str
        Seed text; it must hold at least one token. Tokens not in the vocabulary become
        ``<unk>`` (or raise, for a vocabulary without it).
    length : int
        The most new tokens (characters for a character model).
    temperature, top_k, top_p, greedy
        See :class:`SamplingConfig`.
    stop : str or iterable of str, optional
        Stop strings: each is tokenized like the prime and generation stops right after the
        generated tokens end with its tokens (``"."``, ``"\\n"``, or ``"the end"`` for a word
        model). Every token must be in the vocabulary.
    include_stop : bool
        Keep the stop string at the end of the result (default) or drop it.
    seed : int, numpy.random.Generator or None
        Same seed, same text.
    tokenizer : "char", "word", callable or None
        How ``prime`` and ``stop`` are split (:func:`~rnnlab.text.char_tokenize`,
        :func:`~rnnlab.text.word_tokenize` with its lower-casing, or your own function). None
        infers it: "char" when every non-special token of ``vocab`` is a single character.
    joiner : str, optional
        Put between the generated tokens: "" for "char", " " otherwise.
    on_text : callable, optional
        Called with each piece of the continuation as soon as it is final (a token, preceded by
        ``joiner`` after the first), so a long generation can be shown as it goes; the pieces
        concatenated are the returned text. Without ``include_stop`` a piece that may begin the
        stop string is held back until it cannot.

    Returns
    -------
    str
        The continuation only; ``prime + joiner + result`` reads as one text (for "char" the
        continuation carries its own spaces). ``<pad>`` is never generated.
    """
    config = SamplingConfig(temperature, top_k, top_p, greedy)
    length = check_positive_int("length", length)
    if not isinstance(include_stop, bool):
        raise TypeError(f"include_stop must be a bool, got {type(include_stop).__name__} {include_stop!r}")
    vocab = _check_vocab(vocab)
    tokenize, default_joiner = _resolve_tokenizer(tokenizer, vocab)
    if joiner is None:
        joiner = default_joiner
    elif not isinstance(joiner, str):
        raise TypeError(f"joiner must be a str or None, got {type(joiner).__name__} {joiner!r}")
    prime_tokens = _tokens(tokenize, prime, "prime")
    if not prime_tokens:
        raise ValueError(f"prime must hold at least one token after tokenization (the model needs an input to "
                         f"start from), got {prime!r}")
    stop_ids = None
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, Iterable):
            raise TypeError(f"stop must be a str or an iterable of str, got {type(stop).__name__} {stop!r}")
        stop_ids = []
        for s in stops:
            tokens = _tokens(tokenize, s, "each stop string")
            missing = [t for t in tokens if t not in vocab]
            if not tokens or missing:
                raise ValueError(f"stop string {s!r} must tokenize to tokens of the vocabulary (the model can only "
                                 f"emit those), got tokens {tokens!r}"
                                 + (f"; not in it: {missing!r}" if missing else ""))
            stop_ids.append(vocab.encode(tokens))
    banned = None if vocab.pad_id is None else [vocab.pad_id]  # <pad> is never a real next token
    if on_text is not None and not callable(on_text):
        raise TypeError(f"on_text must be a callable or None, got {type(on_text).__name__}")
    pieces = []
    for i in _iterate(model, vocab.encode(prime_tokens), config, length, stop_ids, include_stop, banned,
                      as_generator(seed), vocab):
        pieces.append((joiner if pieces else "") + vocab.decode([i])[0])
        if on_text is not None:
            on_text(pieces[-1])
    return "".join(pieces)


def rank_next(model: Module, vocab: Vocabulary, prefix: str, k: int = 10, *, tokenizer=None) -> list[tuple[str, float]]:
    """The ``k`` most probable next tokens after ``prefix``, with their probabilities.

    >>> rank_next(model, vocab, "the color of an apple is", k=3)   # doctest: +SKIP
    [('red', 0.93), ('green', 0.04), ('yellow', 0.01)]

    Parameters
    ----------
    model, vocab, tokenizer
        As in :func:`sample`.
    prefix : str
        The text so far (at least one token); read in one forward pass from a cleared state.
    k : int
        How many tokens to return (fewer when the vocabulary is smaller).

    Returns
    -------
    list of (str, float)
        Tokens by decreasing probability (ties by id), ``p_w = softmax(z)_w`` over the whole
        vocabulary at temperature 1; ``<pad>`` is left out of the ranking (its probability is
        not redistributed).
    """
    vocab = _check_vocab(vocab)
    k = check_positive_int("k", k)
    tokenize, _ = _resolve_tokenizer(tokenizer, vocab)
    tokens = _tokens(tokenize, prefix, "prefix")
    if not tokens:
        raise ValueError(f"prefix must hold at least one token after tokenization, got {prefix!r}")
    with Generator(model) as gen:
        z = gen.prime(vocab.encode(tokens))  # (V,)
    _check_output_size(z.shape[0], vocab)
    p = np.exp(log_softmax(z))  # (V,)
    order = [int(i) for i in np.argsort(-p, kind="stable") if i != vocab.pad_id]
    return [(vocab.tokens[i], float(p[i])) for i in order[:k]]


def encode_texts(vocab: Vocabulary, texts: Sequence[str], *, tokenizer=None, maxlen: int | None = None,
                 truncating: str = "post") -> tuple[np.ndarray, np.ndarray]:
    """Raw texts -> tokens -> ids -> padded batch and mask, as a classifier was trained on.

    Returns
    -------
    ids : ndarray of int64, shape (B, T)
        Right-padded with ``<pad>`` (id 0 by default; 0 for a vocabulary without it).
    mask : ndarray of bool, shape (B, T)
        True at real tokens. With the mask, left and right padding give the same outputs, so the
        padding side of training does not matter; ``maxlen`` and ``truncating`` (the training
        values) do.
    """
    vocab = _check_vocab(vocab)
    tokenize, _ = _resolve_tokenizer(tokenizer, vocab)
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError(f"texts must be a sequence of str (wrap a single text in a list), got {type(texts).__name__}")
    if not texts:
        raise ValueError("texts must hold at least one text, got an empty sequence")
    seqs = []
    for i, text in enumerate(texts):
        tokens = _tokens(tokenize, text, f"texts[{i}]")
        if not tokens:
            raise ValueError(f"texts[{i}] holds no token after tokenization ({text!r}): "
                             "there is nothing to predict from")
        seqs.append(vocab.encode(tokens))
    pad = vocab.pad_id if vocab.pad_id is not None else 0
    return pad_sequences(seqs, maxlen=maxlen, truncating=truncating, value=pad)
