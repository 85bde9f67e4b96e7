"""Running a language model one token at a time: :class:`Generator`, which carries the recurrent state,
and :func:`generate_ids` (token ids in, token ids out).

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
``backward``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from rnnlab._validation import as_generator, check_positive_int
from rnnlab.data.text import Vocabulary
from rnnlab.generate.sampling import SamplingConfig, _check_banned, _choose
from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.module import Module
from rnnlab.nn.recurrent import Recurrent
from rnnlab.nn.seq2seq import OneToMany, Seq2Seq
from rnnlab.nn.state import StateMap, forward_with_states

__all__ = ["Generator", "generate_ids", "recurrent_layers"]


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


def _check_output_size(V: int, vocab: Vocabulary) -> None:
    if V != len(vocab):
        raise ValueError(f"the model outputs {V} logits per step but the vocabulary has {len(vocab)} tokens: "
                         "they must be the model's vocabulary")


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
    return list(_iterate(model, prime_ids, config, length, stop, include_stop, banned, rng, vocab))


def _iterate(model, prime_ids, config: SamplingConfig, length: int, stop, include_stop: bool, banned,
             rng: np.random.Generator, vocab: Vocabulary | None = None) -> Iterator[int]:
    """The ids of :func:`_generate`, each yielded as soon as it is final (for streaming the text).

    Without ``include_stop``, an id that could still begin a stop sequence to be dropped is held
    back until it cannot (at most the longest stop sequence's length minus one ids).
    """
    out: list[int] = []
    hit: tuple[int, ...] | None = None
    emitted = 0
    with Generator(model) as gen:
        z = gen.prime(prime_ids)  # (V,)
        V = z.shape[0]
        if vocab is not None:
            _check_output_size(V, vocab)
        stops = _check_stop_ids(stop, V)
        banned = _check_banned(banned, V)
        held = 0 if include_stop or not stops else max(len(s) for s in stops) - 1
        while True:
            out.append(_choose(z, config, banned, rng))
            hit = next((s for s in stops if len(out) >= len(s) and tuple(out[-len(s):]) == s), None)
            if hit is not None or len(out) == length:
                break
            while emitted < len(out) - held:
                yield out[emitted]
                emitted += 1
            z = gen.step(out[-1])
    if hit is not None and not include_stop:
        del out[-len(hit):]
    yield from out[emitted:]
