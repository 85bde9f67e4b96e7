"""Generation and prediction with trained models.

- Language models: :func:`sample` (text), :func:`generate_ids` (token ids), :func:`rank_next`
  (next-token prediction with ranked probabilities), built on :class:`Generator`, which carries
  the recurrent state so that each new token costs one time step.
- New raw inputs: :func:`predict_classes` / :func:`predict_proba` (text through the saved
  :class:`~rnnlab.text.Vocabulary`) and :func:`predict_values` (numbers through a fitted scaler).

A *language model* is a module that maps token ids (B, T) to next-token logits (B, T, V), e.g.
``Sequential([Embedding(V, E), LSTM(H, return_sequences=True), Dropout(0.2), LSTM(H,
return_sequences=True), Dense(V)])``; a model ending in a layer with ``return_sequences=False``
(logits (B, V) for the last step) works as well.

State carrying
--------------
The state is passed explicitly, as a state map ``{recurrent layer name: states}``
(:mod:`rnnlab.nn.state`): ``gen.prime(ids)`` is one forward pass over the whole prime (T =
len(ids)) from zeros, and ``gen.step(id)`` one forward pass over T = 1 from the state map the
previous call ended with (``gen.states``), so the logits after n tokens equal those of a forward
pass over all n of them (``tests/unit/test_generate.py`` checks this to 1e-10 in float64), at the
cost of one step per token. The model's ``stateful`` flags and carried states are neither used nor
changed. Layers that read a sequence from its end (``Bidirectional``, ``go_backwards=True``) cannot
generate left to right and are refused. Generation calls the model with ``training=False`` (no
dropout); the layers' tapes then hold the last step, so call ``forward`` again before any
``backward``. Prediction (:func:`predict_proba`, ...) runs every batch from zeros, the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from rnnlab._validation import as_generator, check_positive_int
from rnnlab.data.text import Vocabulary, char_tokenize, pad_sequences, word_tokenize
from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.functional import log_softmax, sigmoid, softmax
from rnnlab.nn.module import Module
from rnnlab.nn.recurrent import Recurrent
from rnnlab.nn.seq2seq import OneToMany, Seq2Seq
from rnnlab.nn.state import StateMap, forward_with_states

__all__ = [
    "SamplingConfig",
    "Generator",
    "recurrent_layers",
    "next_token_probs",
    "sample_token",
    "generate_ids",
    "sample",
    "rank_next",
    "encode_texts",
    "predict_proba",
    "predict_classes",
    "predict_values",
]


# =========================================================================== sampling
@dataclass(frozen=True)
class SamplingConfig:
    """How the next token is chosen from the logits ``z`` (V,).

    Parameters
    ----------
    temperature : float
        T > 0: the logits are divided by T. T < 1 sharpens the distribution, T > 1 flattens it,
        T -> 0+ tends to greedy decoding.
    top_k : int, optional
        Keep only the k most probable tokens (ties broken by the lower id); k >= V keeps all.
    top_p : float, optional
        Nucleus sampling: keep the smallest set of most probable tokens whose total probability
        (after temperature and top-k) is >= p, 0 < p <= 1. The most probable token is always kept.
    greedy : bool
        Take the arg-max (the lowest id among ties); temperature, top-k and top-p then change
        nothing, and no random number is drawn.

    Notes
    -----
    In log space, so that nothing overflows (Holtzman et al. 2020 for top-p)::

        s_k = (z_k - max_j z_j) / T                         (<= 0; a tiny T sends s_k to -inf)
        s_k = -inf  for banned tokens and for those outside the top-k / nucleus
        log p_k = s_k - log sum_j exp(s_j)                 (the max term is exp(0) = 1)

    A token is drawn by inverting the cumulative distribution with one uniform number ``u``:
    the first k with ``sum_{j<=k} p_j > u``; a token of probability 0 is never drawn.
    """

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    greedy: bool = False

    def __post_init__(self):
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, (int, float, np.integer, np.floating)):
            raise TypeError(f"temperature must be a number > 0, got {type(t).__name__} {t!r}")
        if not (math.isfinite(t) and t > 0):
            raise ValueError(f"temperature must be a finite number > 0 (use greedy=True for arg-max decoding), got {t}")
        if self.top_k is not None:
            check_positive_int("top_k", self.top_k)
        p = self.top_p
        if p is not None:
            if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
                raise TypeError(f"top_p must be a number in (0, 1] or None, got {type(p).__name__} {p!r}")
            if not 0 < p <= 1:
                raise ValueError(f"top_p must be in (0, 1] (the probability mass kept), got {p}")
        if not isinstance(self.greedy, (bool, np.bool_)):
            raise TypeError(f"greedy must be a bool, got {type(self.greedy).__name__} {self.greedy!r}")


def _check_logits(logits) -> np.ndarray:
    z = np.array(logits, dtype=np.float64)  # (V,), a copy we may write into
    if z.ndim != 1 or z.size == 0:
        raise ValueError(f"logits must be a non-empty 1-D array (V,), got shape {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError(f"logits must be finite, got {z[~np.isfinite(z)][:3].tolist()} at index "
                         f"{int(np.flatnonzero(~np.isfinite(z))[0])}")
    return z


def _check_banned(banned, V: int) -> np.ndarray:
    """``banned`` as a sorted int array of ids in [0, V)."""
    if banned is None:
        return np.zeros(0, dtype=np.int64)
    if isinstance(banned, (int, np.integer)) and not isinstance(banned, bool):
        banned = [banned]
    arr = np.unique(np.asarray(list(banned)))
    if arr.size and (not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() >= V):
        raise ValueError(f"banned must hold token ids in [0, {V}), got {arr.tolist()[:10]}")
    if arr.size >= V:
        raise ValueError(f"banned excludes all {V} tokens: nothing is left to generate")
    return arr.astype(np.int64)


def _filtered_log_probs(z: np.ndarray, config: SamplingConfig, banned: np.ndarray) -> np.ndarray:
    """``log p`` (V,) after banning, temperature, top-k and top-p (see :class:`SamplingConfig`); overwrites z."""
    V = z.shape[0]
    z[banned] = -np.inf
    z -= z.max()  # (V,) <= 0, the maximum exactly 0
    with np.errstate(over="ignore"):
        z /= config.temperature  # (V,) a tiny temperature may overflow to -inf: probability 0, as intended
    if config.top_k is not None and config.top_k < V:
        order = np.argsort(-z, kind="stable")  # (V,) most probable first, ties by id
        z[order[config.top_k:]] = -np.inf
    logp = log_softmax(z)  # (V,)
    if config.top_p is not None and config.top_p < 1:
        order = np.argsort(-logp, kind="stable")  # (V,)
        cum = np.cumsum(np.exp(logp[order]))  # (V,)
        keep = min(int(np.searchsorted(cum, config.top_p, side="left")) + 1, V)
        z[order[keep:]] = -np.inf
        logp = log_softmax(z)
    return logp


def _choose(z: np.ndarray, config: SamplingConfig, banned: np.ndarray, rng: np.random.Generator) -> int:
    """One token id from validated logits z (V,) (overwritten)."""
    if config.greedy:
        z[banned] = -np.inf
        return int(np.argmax(z))
    p = np.exp(_filtered_log_probs(z, config, banned))  # (V,)
    cdf = np.cumsum(p)  # (V,)
    return int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))


def next_token_probs(logits, *, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                     banned=None) -> np.ndarray:
    """The distribution the next token is drawn from, given the logits (V,).

    Returns
    -------
    ndarray of float64, shape (V,)
        ``softmax(z / T)`` restricted to the allowed, top-k and nucleus tokens, renormalised
        (equations in :class:`SamplingConfig`). ``banned`` ids get probability 0.
    """
    config = SamplingConfig(temperature, top_k, top_p)
    z = _check_logits(logits)
    return np.exp(_filtered_log_probs(z, config, _check_banned(banned, z.shape[0])))


def sample_token(logits, rng=None, *, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 greedy: bool = False, banned=None) -> int:
    """Choose one token id from the logits (V,) (see :class:`SamplingConfig`).

    ``rng`` is a ``numpy.random.Generator`` (or an int seed, or None for fresh entropy); greedy
    decoding draws nothing from it.
    """
    config = SamplingConfig(temperature, top_k, top_p, greedy)
    z = _check_logits(logits)
    return _choose(z, config, _check_banned(banned, z.shape[0]), as_generator(rng))


# =========================================================================== state carrying
def recurrent_layers(model: Module, *, causal: bool = False) -> list[tuple[str, Recurrent]]:
    """Every recurrent layer inside ``model`` (itself included), as ``(dotted_name, layer)``: the
    keys of the model's state map.

    With ``causal=True``, a layer that reads sequences from their end (a ``Bidirectional``
    wrapper or ``go_backwards=True``) raises ValueError: it cannot run left to right one token
    at a time.
    """
    found: list[tuple[str, Recurrent]] = []
    for path, module in model.named_modules():
        where = f"layer {path!r}" if path else "the model"
        if causal and isinstance(module, Bidirectional):
            raise ValueError(f"{where} is Bidirectional: its backward half reads each sequence from the end, so it "
                             "cannot generate one token at a time; generate with a unidirectional model")
        if isinstance(module, Recurrent):
            if causal and module.go_backwards:
                raise ValueError(f"{where} ({type(module).__name__}) has go_backwards=True: it reads each sequence "
                                 "from the end, so it cannot generate one token at a time")
            found.append((path, module))
    return found


def _check_model(model, role: str = "model") -> Module:
    if not isinstance(model, Module):
        raise TypeError(f"{role} must be an rnnlab Module (e.g. a Sequential), got {type(model).__name__}")
    if isinstance(model, (OneToMany, Seq2Seq)):
        raise TypeError(f"{role} is a {type(model).__name__}, which takes its own inputs; use its generate() method")
    return model


class Generator:
    """Run a language model one token at a time, carrying its recurrent state.

    Parameters
    ----------
    model : Module
        Maps token ids (1, T) to logits (1, T, V) or (1, V); its recurrent layers must read left
        to right (no ``Bidirectional``, no ``go_backwards``). A model with no recurrent layer (a
        bigram model, or a test stub) is allowed: each step then sees its token only.

    Examples
    --------
    >>> with Generator(model) as gen:              # doctest: +SKIP
    ...     logits = gen.prime([5, 8, 2])          # one forward over T = 3
    ...     logits = gen.step(int(logits.argmax()))   # one forward over T = 1

    Notes
    -----
    The generator holds the state, ``states``: the state map after the tokens read so far (None
    before :meth:`prime`; see the module docstring). The model's layers keep nothing between calls,
    so several generators may share a model; one generator serves one with-block at a time.
    """

    def __init__(self, model: Module):
        self.model = _check_model(model)
        self.layers = [layer for _, layer in recurrent_layers(model, causal=True)]
        if self.layers and not model.takes_state_map:
            raise TypeError(f"{type(model).__name__} does not take its recurrent state as a state map, so it cannot "
                            "carry it from token to token; generate with a Sequential")
        self.num_classes: int | None = None
        self.states: StateMap | None = None
        self._open = False
        self._primed = False

    def __enter__(self) -> Generator:
        if self._open:
            raise RuntimeError("this Generator is already in use (a with-block is open); create another one")
        self._open = True
        self._primed = False
        self.states = None
        return self

    def __exit__(self, *exc_info) -> None:
        self._open = self._primed = False
        self.states = None

    def _run(self, ids: np.ndarray, states: StateMap) -> np.ndarray:
        out, final = forward_with_states(self.model, ids[None, :], states, training=False)  # (1, T, V) or (1, V)
        out = out[0] if isinstance(out, tuple) else out
        out = np.asarray(out)
        if out.ndim not in (2, 3) or out.shape[0] != 1:
            raise ValueError(f"a language model must return logits of shape (1, T, V) or (1, V) for ids of shape "
                             f"(1, {len(ids)}), got shape {out.shape}")
        z = np.array(out[0, -1] if out.ndim == 3 else out[0], dtype=np.float64)  # (V,)
        if self.num_classes is not None and z.shape[0] != self.num_classes:
            raise ValueError(f"the model returned {z.shape[0]} logits after returning {self.num_classes}")
        if not np.isfinite(z).all():
            raise ValueError(f"the model returned non-finite logits after {len(ids)} input token(s) "
                             f"(first at id {int(np.flatnonzero(~np.isfinite(z))[0])})")
        self.num_classes = z.shape[0]
        self.states = final
        return z

    def prime(self, ids) -> np.ndarray:
        """Clear the state and read the prime ``ids`` (T,) in one forward pass.

        Returns
        -------
        ndarray of float64, shape (V,)
            The logits of the token after the prime.
        """
        if not self._open:
            raise RuntimeError("Generator.prime must run inside `with Generator(model) as gen:`, which carries the "
                               "model's state from token to token")
        arr = np.asarray(ids)
        if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"prime ids must be a non-empty 1-D sequence of int token ids, got shape {arr.shape} "
                             f"and dtype {arr.dtype}")
        self._primed = False
        z = self._run(arr.astype(np.int64), {})  # from zeros
        self._primed = True
        return z

    def step(self, token: int) -> np.ndarray:
        """Feed one token (a forward pass over T = 1) and return the next logits (V,), float64."""
        if not self._primed:
            raise RuntimeError("Generator.step needs a state to continue from: call prime(ids) first, inside the "
                               "with-block")
        if isinstance(token, bool) or not isinstance(token, (int, np.integer)):
            raise TypeError(f"token must be an int id, got {type(token).__name__} {token!r}")
        if not 0 <= token < self.num_classes:
            raise ValueError(f"token must be an id in [0, {self.num_classes}), got {token}")
        return self._run(np.array([token], dtype=np.int64), self.states)


def _check_stop_ids(stop, V: int) -> list[tuple[int, ...]]:
    """``stop`` (an id, or an iterable of ids and id sequences) as a list of non-empty id tuples."""
    if stop is None:
        return []
    if isinstance(stop, (int, np.integer)) and not isinstance(stop, bool):
        stop = [stop]
    if isinstance(stop, (str, bytes)) or not isinstance(stop, Iterable):
        raise TypeError(f"stop must be token ids: an int or an iterable of ints and id sequences, got "
                        f"{type(stop).__name__} {stop!r:.60}")
    stops = []
    for entry in stop:
        seq = (entry,) if isinstance(entry, (int, np.integer)) else entry
        if isinstance(seq, (str, bytes)) or not isinstance(seq, Iterable):
            raise TypeError(f"stop entries must be ids or id sequences, got {type(entry).__name__} {entry!r:.60}")
        seq = tuple(seq)
        if not seq or any(isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < V for i in seq):
            raise ValueError(f"stop entries must be non-empty sequences of token ids in [0, {V}), got {entry!r:.60}")
        stops.append(tuple(int(i) for i in seq))
    return stops


def generate_ids(model: Module, prime_ids, *, length: int, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, greedy: bool = False, stop=None, include_stop: bool = True, banned=None,
                 seed=None) -> list[int]:
    """Continue ``prime_ids`` with up to ``length`` new token ids from a language model.

    Parameters
    ----------
    model : Module
        A language model (see the module docstring).
    prime_ids : sequence of int, length >= 1
        The prime: read in one forward pass to warm the state.
    length : int
        The most new tokens to generate (> 0).
    temperature, top_k, top_p, greedy
        The sampling rule, see :class:`SamplingConfig`.
    stop : int or iterable of (int or sequence of int), optional
        Stop right after the generated tokens end with one of these ids or id sequences (only
        generated tokens count, not the prime).
    include_stop : bool
        Keep the stop sequence at the end of the result (default) or drop it.
    banned : iterable of int, optional
        Ids never generated (e.g. ``<pad>``).
    seed : int, numpy.random.Generator or None
        Source of the random draws: the same seed gives the same tokens.

    Returns
    -------
    list of int
        The new ids only (the prime excluded).

    Notes
    -----
    Cost: one forward pass over the prime, then one over T = 1 per further token (the last
    token chosen is never fed), carrying the state (:class:`Generator`). Every sampled token
    draws exactly one uniform number.
    """
    config = SamplingConfig(temperature, top_k, top_p, greedy)
    length = check_positive_int("length", length)
    if not isinstance(include_stop, bool):
        raise TypeError(f"include_stop must be a bool, got {type(include_stop).__name__} {include_stop!r}")
    return _generate(model, prime_ids, config, length, stop, include_stop, banned, as_generator(seed))


def _generate(model, prime_ids, config: SamplingConfig, length: int, stop, include_stop: bool, banned,
              rng: np.random.Generator, vocab: Vocabulary | None = None) -> list[int]:
    """The loop of :func:`generate_ids` on validated options; ``vocab`` checks the model's output size."""
    out: list[int] = []
    hit: tuple[int, ...] | None = None
    with Generator(model) as gen:
        z = gen.prime(prime_ids)  # (V,)
        V = z.shape[0]
        if vocab is not None:
            _check_output_size(V, vocab)
        stops = _check_stop_ids(stop, V)
        banned = _check_banned(banned, V)
        while True:
            out.append(_choose(z, config, banned, rng))
            hit = next((s for s in stops if len(out) >= len(s) and tuple(out[-len(s):]) == s), None)
            if hit is not None or len(out) == length:
                break
            z = gen.step(out[-1])
    if hit is not None and not include_stop:
        del out[-len(hit):]
    return out


# =========================================================================== text in, text out
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


def _check_output_size(V: int, vocab: Vocabulary) -> None:
    if V != len(vocab):
        raise ValueError(f"the model outputs {V} logits per step but the vocabulary has {len(vocab)} tokens: "
                         "they must be the model's vocabulary")


def sample(model: Module, vocab: Vocabulary, prime: str, *, length: int, temperature: float = 1.0,
           top_k: int | None = None, top_p: float | None = None, greedy: bool = False, stop=None,
           include_stop: bool = True, seed=None, tokenizer=None, joiner: str | None = None) -> str:
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
                                 f"emit those), got tokens {tokens!r}" + (f"; not in it: {missing!r}" if missing else ""))
            stop_ids.append(vocab.encode(tokens))
    banned = None if vocab.pad_id is None else [vocab.pad_id]  # <pad> is never a real next token
    ids = _generate(model, vocab.encode(prime_tokens), config, length, stop_ids, include_stop, banned,
                    as_generator(seed), vocab)
    return joiner.join(vocab.decode(np.asarray(ids, dtype=np.int64)))


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


# =========================================================================== prediction for new raw inputs
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
            raise ValueError(f"texts[{i}] holds no token after tokenization ({text!r}): there is nothing to predict from")
        seqs.append(vocab.encode(tokens))
    pad = vocab.pad_id if vocab.pad_id is not None else 0
    return pad_sequences(seqs, maxlen=maxlen, truncating=truncating, value=pad)


def _predict_batches(model: Module, x: np.ndarray, mask: np.ndarray | None, batch_size: int) -> np.ndarray:
    """Model outputs for x in batches, inference mode, each batch from zeros (the state map ``{}``)."""
    batch_size = check_positive_int("batch_size", batch_size)
    outs = []
    for start in range(0, len(x), batch_size):
        sl = slice(start, start + batch_size)
        out, _ = forward_with_states(model, x[sl], {}, mask=None if mask is None else mask[sl], training=False)
        outs.append(np.asarray(out[0] if isinstance(out, tuple) else out))
    return np.concatenate(outs, axis=0)


def predict_proba(model: Module, vocab: Vocabulary, texts: Sequence[str], *, tokenizer=None, maxlen: int | None = None,
                  truncating: str = "post", batch_size: int = 256) -> np.ndarray:
    """Class probabilities (B, K) for new raw texts, through the saved vocabulary (:func:`encode_texts`).

    The model maps ids (B, T) with a mask to logits (B, K): ``softmax`` per row; or to one logit
    (B, 1) of the positive class (trained with binary cross-entropy): ``[1 - s, s]`` with
    ``s = sigmoid(z)``, so K = 2.
    """
    model = _check_model(model)
    ids, mask = encode_texts(vocab, texts, tokenizer=tokenizer, maxlen=maxlen, truncating=truncating)
    z = _predict_batches(model, ids, mask, batch_size).astype(np.float64)  # (B, K)
    if z.ndim != 2:
        raise ValueError(f"predict_proba needs a classifier with one row of logits per text, (B, K); the model "
                         f"returned shape {z.shape} (a recurrent layer before the output needs return_sequences=False)")
    if z.shape[1] == 1:
        s = sigmoid(z[:, 0])  # (B,)
        return np.stack([1.0 - s, s], axis=1)
    return softmax(z)


def predict_classes(model: Module, vocab: Vocabulary, texts: Sequence[str], *, labels: Sequence | None = None,
                    tokenizer=None, maxlen: int | None = None, truncating: str = "post",
                    batch_size: int = 256) -> np.ndarray:
    """The most probable class of each raw text: ids (B,) int64, or ``labels[id]`` when ``labels`` is given.

    See :func:`predict_proba`; with a single output logit the class is 1 when the logit is > 0.
    """
    proba = predict_proba(model, vocab, texts, tokenizer=tokenizer, maxlen=maxlen, truncating=truncating,
                          batch_size=batch_size)  # (B, K)
    classes = proba.argmax(axis=1)  # (B,)
    if labels is None:
        return classes
    if isinstance(labels, str) or not isinstance(labels, Sequence) or len(labels) != proba.shape[1]:
        raise ValueError(f"labels must be a sequence of {proba.shape[1]} class names (one per model output class), "
                         f"got {labels!r:.80}")
    return np.asarray(labels)[classes]


def predict_values(model: Module, x, *, scaler=None, mask=None, batch_size: int = 256) -> np.ndarray:
    """Regression / forecasting outputs for new raw numbers, in the original units.

    Parameters
    ----------
    model : Module
        Maps (B, T, F) inputs to outputs, e.g. (B, horizon) or (B, T, F), in scaled units.
    x : array_like, shape (B, T, F), or (B, T) for one feature
        Raw windows, as measured (integers allowed).
    scaler : object with ``transform`` and ``inverse_transform``, optional
        The scaler fitted on the training part (e.g. ``rnnlab.timeseries.StandardScaler``, or
        any object with those two methods): ``transform`` is applied to the (B, T, F) input and
        ``inverse_transform`` to the model's output. None: no scaling.
    mask : array_like of bool, shape (B, T), optional
        Valid steps, for windows of different lengths.

    Returns
    -------
    ndarray
        ``scaler.inverse_transform(model(scaler.transform(x)))``, of the model's output shape.
    """
    model = _check_model(model)
    if scaler is not None and not all(callable(getattr(scaler, m, None)) for m in ("transform", "inverse_transform")):
        raise TypeError(f"scaler must have transform and inverse_transform methods (e.g. a fitted "
                        f"rnnlab.timeseries.StandardScaler), got {type(scaler).__name__}")
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise TypeError(f"x must hold numbers, got dtype {x.dtype}")
    if x.ndim == 2:
        x = x[:, :, None]  # (B, T, 1)
    if x.ndim != 3 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"x must have shape (batch, timesteps, features) or (batch, timesteps), got {np.shape(x)}")
    x = x.astype(np.float64)
    if scaler is not None:
        x = np.asarray(scaler.transform(x))
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != x.shape[:2]:
            raise ValueError(f"mask must have shape (batch, timesteps) = {x.shape[:2]}, got {mask.shape}")
    y = _predict_batches(model, x.astype(model.dtype), mask, batch_size)
    return y if scaler is None else np.asarray(scaler.inverse_transform(y))
