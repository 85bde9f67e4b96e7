"""Sequence generators: :class:`OneToMany` (one input, a sequence out) and :class:`Seq2Seq` (encoder-decoder)."""

from __future__ import annotations

import numpy as np

from rnnlab._validation import as_float_array, check_choice, check_features, check_positive_int
from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.layers import Dense, Embedding, OneHot
from rnnlab.nn.module import Module, registered
from rnnlab.nn.recurrent import Recurrent
from rnnlab.nn.sequential import Sequential

# OneToMany and Seq2Seq share one decoding idea: in training the model reads the true previous
# token (teacher forcing) so the whole target sequence is one forward/backward call; at inference it
# feeds back its own greedy choice one step at a time, carrying the recurrent state.

def _first(out):
    """The output of a module call: the first item when the call also returns states."""
    return out[0] if isinstance(out, tuple) else out


def _check_same_dtype(parts: dict[str, Module]) -> np.dtype:
    dtypes = {name: m.dtype for name, m in parts.items()}
    if len(set(dtypes.values())) != 1:
        raise ValueError("all parts must share one dtype, got " + ", ".join(f"{k}={v.name}" for k, v in dtypes.items()))
    return next(iter(dtypes.values()))


def _check_ids(name: str, ids, num_classes: int | None = None) -> np.ndarray:
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array of token ids, got dtype {ids.dtype}")
    if ids.ndim != 2 or ids.shape[0] == 0 or ids.shape[1] == 0:
        raise ValueError(f"{name} must have shape (batch, timesteps) with both > 0, got shape {ids.shape}")
    if ids.min() < 0 or (num_classes is not None and ids.max() >= num_classes):
        upper = "" if num_classes is None else f", {num_classes}"
        raise ValueError(f"{name} ids must lie in [0{upper}), got values from {ids.min()} to {ids.max()}")
    return ids


def _pair(name: str, x, first: str, second: str):
    if not isinstance(x, (tuple, list)) or len(x) != 2:
        raise TypeError(f"{name} takes x as a pair ({first}, {second}) in training (teacher forcing), "
                        f"got {type(x).__name__}; use generate() to produce sequences without targets")
    return x


def _zeros_like_output(y):
    return [np.zeros_like(a) for a in y] if isinstance(y, list) else np.zeros_like(y)


class OneToMany(Module):
    """One-to-many: a sequence of ``steps`` outputs generated from one input vector per example.

    Parameters
    ----------
    layer : SimpleRNN, LSTM or GRU
        The recurrent layer, built with ``return_sequences=True`` (and ``return_state=True`` when
        ``feedback=True``, since generation then runs it one step at a time).
    output : Module
        Maps the hidden states (B, T, H) to the outputs (B, T, K), e.g. ``Dense(K)``.
    steps : int
        T, the number of outputs produced (``generate`` may ask for another length).
    input_mode : "first" (default), "every" or "state"
        Where the input vector ``x`` (B, D) enters:

        - ``"first"``: as the input of the first step, zeros afterwards ("Show and Tell",
          Vinyals et al. 2015, feeds the image this way);
        - ``"every"``: as the input of every step (Keras' ``RepeatVector``);
        - ``"state"``: through a learned bridge ``s_0 = tanh(V_s x + c_s)`` that sets the initial
          state (for the LSTM ``[h_0; c_0]``), as NeuralTalk (Karpathy & Fei-Fei 2015) does; the
          bridge is the child ``"bridge"`` (a ``Dense``). Needs ``feedback=True``, since the
          recurrent layer would otherwise have no input at all.
    feedback : bool
        Also feed the previous output token as a one-hot vector of size K (zeros at the first
        step): an autoregressive generator. In training the *true* previous token is fed (teacher
        forcing), so ``forward`` takes ``x = (inputs, targets)`` with ``targets`` (B, T) ints in
        ``[0, K)``; :meth:`generate` feeds back its own greedy choices.
    input_size : int, optional
        D, the size of ``x``; inferred from the first call when omitted (then kept in the config,
        so ``from_config`` rebuilds every part, the bridge included).
    seed : int or numpy.random.Generator, optional
        Initial weights of the bridge (``input_mode="state"``).

    Notes
    -----
    The step input is ``u_t = [x-part_t ; onehot(d_{t-1})]`` (either part may be absent), so with
    ``"first"`` the layer sees ``x_0 = x`` and ``x_t = 0`` for ``t > 0``. Backward, through the
    same pieces in reverse: ``dx = du_0[:, :D]`` ("first"), ``dx = sum_t du_t[:, :D]`` ("every"),
    ``dx = dV_s``-chain of the initial-state gradient ``[dh_0; dc_0]`` through the bridge
    ("state"); the one-hot part is a constant and has no gradient.

    Shapes: ``x`` (B, D) float; ``targets`` (B, T) int; output (B, T, K). Parameters are named
    ``"bridge.*"``, ``"rnn.*"`` and ``"output.*"``.
    """

    INPUT_MODES = ("first", "every", "state")

    def __init__(self, layer: Recurrent, output: Module, steps: int, *, input_mode: str = "first",
                 feedback: bool = False, input_size: int | None = None, seed=None, name: str | None = None):
        if not isinstance(layer, Recurrent):
            raise TypeError(f"layer must be a SimpleRNN, LSTM or GRU (a causal recurrent layer), "
                            f"got {type(layer).__name__}")
        if not isinstance(output, Module):
            raise TypeError(f"output must be an rnnlab module such as Dense(K), got {type(output).__name__}")
        self.steps = check_positive_int("steps", steps)
        check_choice("input_mode", input_mode, self.INPUT_MODES)
        if not isinstance(feedback, bool):
            raise TypeError(f"feedback must be a bool, got {feedback!r}")
        if not layer.return_sequences:
            raise ValueError("layer must be built with return_sequences=True: OneToMany emits an output at every step")
        if feedback and not layer.return_state:
            raise ValueError("with feedback=True, layer must be built with return_state=True: generation runs it one "
                             "step at a time and carries its state")
        if feedback and not isinstance(getattr(output, "units", None), int):
            raise ValueError(f"with feedback=True, output must have a number of classes `units` (e.g. Dense(K)), "
                             f"got {type(output).__name__}")
        if input_mode == "state" and not feedback:
            raise ValueError("input_mode='state' needs feedback=True: otherwise the recurrent layer has no input at "
                             "all; use input_mode='first' or 'every', or set feedback=True")
        super().__init__(dtype=_check_same_dtype({"layer": layer, "output": output}), name=name)
        self.layer, self.output = layer, output
        self.input_mode, self.feedback = input_mode, feedback
        self.seed = seed
        self.bridge = None
        if input_mode == "state":
            n_state = len(layer.state_names) * layer.hidden_size
            self.bridge = Dense(n_state, activation="tanh", seed=seed, dtype=self.dtype)
        self.initial_state_grad = None
        self.output_mask = None
        self._cache = None
        self.input_size = None
        self.built = all(m.built for _, m in self.children())
        if input_size is not None:
            self.build((None, input_size))

    @property
    def num_classes(self) -> int | None:
        return getattr(self.output, "units", None)

    def children(self):
        kids = [("bridge", self.bridge)] if self.bridge is not None else []
        return kids + [("rnn", self.layer), ("output", self.output)]

    # ------------------------------------------------------------------ shapes
    def _step_width(self, D: int) -> int:
        return (D if self.input_mode != "state" else 0) + (self.num_classes if self.feedback else 0)

    def build(self, input_shape):
        D = check_features(type(self).__name__, input_shape)
        if self.input_size is not None and D != self.input_size:
            raise ValueError(f"OneToMany was built for inputs of {self.input_size} features, got {D}")
        self.input_size = D
        if self.bridge is not None:
            self.bridge.build((None, D))
        self.layer.build((None, self.steps, self._step_width(D)))
        self.output.build(self.layer.output_shape((None, self.steps)))
        self.built = True

    def output_shape(self, input_shape):
        return self.output.output_shape(self.layer.output_shape((input_shape[0], self.steps)))

    # ------------------------------------------------------------------ forward / backward
    def _inputs(self, x: np.ndarray, T: int, prev: np.ndarray | None, start: int = 0) -> np.ndarray:
        """The layer's input u (B, T, D') for steps ``start .. start+T-1``, from x (B, D) and the
        previous tokens ``prev`` (B, T) (-1 = no token, i.e. a zero one-hot)."""
        B, D = x.shape
        parts = []
        if self.input_mode == "every":
            parts.append(np.broadcast_to(x[:, None, :], (B, T, D)))  # (B, T, D)
        elif self.input_mode == "first":
            first = np.zeros((B, T, D), dtype=self.dtype)  # (B, T, D): x at step 0 only
            if start == 0:
                first[:, 0] = x
            parts.append(first)
        if self.feedback:
            onehot = np.zeros((B, T, self.num_classes), dtype=self.dtype)  # (B, T, K)
            b, t = np.nonzero(prev >= 0)
            onehot[b, t, prev[b, t]] = 1.0
            parts.append(onehot)
        return np.ascontiguousarray(np.concatenate(parts, axis=-1))

    def _bridge_states(self, x, initial_state, training):
        if self.bridge is None:
            return initial_state
        if initial_state is not None:
            raise ValueError("initial_state must be None with input_mode='state': the input sets the initial state")
        z = self.bridge(x, training=training)  # (B, n*H)
        H = self.layer.hidden_size
        return [np.ascontiguousarray(z[:, i * H:(i + 1) * H]) for i in range(len(self.layer.state_names))]

    def forward(self, x, mask=None, initial_state=None, training: bool = False):
        """Outputs (B, T, K) for inputs ``x`` (B, D), or ``x = (inputs, targets)`` with ``feedback``."""
        targets = None
        if self.feedback:
            x, targets = _pair("OneToMany with feedback=True", x, "inputs (B, D)", "targets (B, T)")
            targets = _check_ids("targets", targets, self.num_classes)
        return self._forward(x, self.steps if targets is None else targets.shape[1], targets, mask, initial_state,
                             training)

    def _forward(self, x, T: int, targets, mask, initial_state, training):
        x = self._check_x(x)
        prev = None
        if targets is not None:
            if targets.shape[0] != x.shape[0]:
                raise ValueError(f"targets must have one row per input: x has {x.shape[0]}, targets {targets.shape[0]}")
            prev = np.full(targets.shape, -1, dtype=np.int64)  # (B, T): nothing before step 0
            prev[:, 1:] = targets[:, :-1]
        u = self._inputs(x, T, prev)  # (B, T, D')
        states = self._bridge_states(x, initial_state, training)
        y = _first(self.layer(u, mask=mask, initial_state=states, training=training))  # (B, T, H)
        out = self.output(y, training=training)  # (B, T, K)
        self.output_mask = None if mask is None else np.asarray(mask, dtype=bool)
        self._cache = (x.shape[1],)
        self.built = True
        return out

    def _check_x(self, x) -> np.ndarray:
        """Validate x (B, D) and build the parts for D (or check D against the built size)."""
        x = as_float_array("x", x, self.dtype, ndim=2)
        if x.shape[0] == 0:
            raise ValueError(f"x must hold at least one example, got shape {x.shape}")
        self.build(x.shape)
        return x

    def backward(self, dy, *d_states, input_grad: bool = True):
        (D,) = self._need_tape(self._cache)
        dh = self.output.backward(dy)  # (B, T, H)
        du = self.layer.backward(dh, input_grad=input_grad and self.bridge is None)  # (B, T, D')
        d_init = self.layer.initial_state_grad
        self.initial_state_grad = None if self.bridge is not None else d_init
        if self.bridge is not None:  # input_mode "state": the bridge has weights, its backward always runs
            return self.bridge.backward(np.concatenate(d_init, axis=-1), input_grad=input_grad)  # (B, D)
        if not input_grad:
            return None
        if self.input_mode == "first":
            return du[:, 0, :D].copy()  # (B, D)
        return du[:, :, :D].sum(axis=1)  # (B, D), input_mode "every"

    # ------------------------------------------------------------------ inference
    def generate(self, x, steps: int | None = None, initial_state=None) -> np.ndarray:
        """Greedy generation: the arg-max class at each step, shape (B, steps) int64.

        Without ``feedback`` this is the arg-max of ``forward``; with it, each step's choice is
        fed back as the next step's input, one step (and one state update) at a time.
        """
        steps = self.steps if steps is None else check_positive_int("steps", steps)
        x = self._check_x(x)
        if not self.feedback:
            out = self._forward(x, steps, None, None, initial_state, False)  # (B, steps, K)
            self._cache = None
            return out.argmax(axis=-1)
        states = self._bridge_states(x, initial_state, False)
        prev = np.full((x.shape[0], 1), -1, dtype=np.int64)  # (B, 1): no token before step 0
        chosen = []
        for t in range(steps):
            y, *states = self.layer(self._inputs(x, 1, prev, start=t), initial_state=states)  # (B, 1, H), (B, H) each
            prev = self.output(y).argmax(axis=-1)  # (B, 1)
            chosen.append(prev[:, 0])
        self._cache = None  # the tapes hold the last single step, not a sequence: no backward
        return np.stack(chosen, axis=1)

    # ------------------------------------------------------------------ config
    def get_config(self):
        return {"layer": {"class_name": type(self.layer).__name__, "config": self.layer.get_config()},
                "output": {"class_name": type(self.output).__name__, "config": self.output.get_config()},
                "steps": self.steps, "input_mode": self.input_mode, "feedback": self.feedback,
                "input_size": self.input_size,
                "seed": self.seed if isinstance(self.seed, int) else None, "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        layer, output = (registered(config[k]["class_name"]).from_config(config.pop(k)["config"])
                         for k in ("layer", "output"))
        return cls(layer, output, **config)


def _last_recurrent(module: Module, role: str):
    """The recurrent layer whose final state a module returns (itself, or a Sequential's last layer)."""
    last = module.layers[-1] if isinstance(module, Sequential) and module.layers else module
    if not isinstance(last, (Recurrent, Bidirectional)):
        raise TypeError(f"{role} must be a recurrent layer or a Sequential ending in one, got {type(module).__name__}"
                        + (f" ending in {type(last).__name__}" if last is not module else ""))
    if not last.return_state:
        raise ValueError(f"{role}'s recurrent layer must be built with return_state=True ({type(last).__name__} has "
                         "return_state=False)")
    return last


class Seq2Seq(Module):
    """Sequence to sequence (many-to-many, unaligned): an encoder reads the source, its final state
    starts a decoder that writes the target (Sutskever et al. 2014; Cho et al. 2014).

    Parameters
    ----------
    encoder : Module
        A recurrent layer or a ``Sequential`` ending in one (e.g. ``[Embedding, LSTM]``), built with
        ``return_state=True``. A :class:`~rnnlab.recurrent.Bidirectional` encoder is allowed: its
        forward and backward final states are concatenated per state tensor, so the decoder's
        hidden size must then be twice the encoder's.
    decoder : Sequential
        Starts with an ``Embedding`` or ``OneHot`` (it reads token ids), holds exactly one recurrent
        layer, last, of the encoder's kind (same state tensors), built with
        ``return_sequences=True, return_state=True``.
    output : Module
        Maps the decoder's states (B, T, H) to logits over the target vocabulary (B, T, V).
    start_id : int
        The token fed to the decoder before the first target token.
    end_id : int, optional
        The token that ends a target; :meth:`generate` stops a sequence after producing it.
    pad_id : int or None
        Padding id of the targets (default 0): ``output_mask`` is ``targets != pad_id`` and
        :meth:`generate` fills finished sequences with it. None when 0 is a real token.

    Notes
    -----
    Training uses teacher forcing: ``forward((source, targets))`` runs the encoder on ``source``,
    sets the decoder's initial state to the encoder's final state ``s_T`` (``h_T``, and ``c_T``
    for the LSTM), and feeds the decoder ``[start_id, d_0, ..., d_{T'-2}]`` (the targets shifted
    right), returning logits for ``d_0 ... d_{T'-1}``. Backward reverses that chain:
    ``output.backward`` -> ``decoder.backward`` (BPTT over the target) -> the decoder's
    ``initial_state_grad`` ``dL/ds_0`` is the gradient of the encoder's final state, so
    ``encoder.backward(0 for its output, *dL/ds_T)`` runs BPTT over the source.
    :meth:`generate` decodes greedily, one token per step, carrying the state.

    Parameters are named ``"encoder.*"``, ``"decoder.*"`` and ``"output.*"``. A source mask (B, S)
    goes to the encoder (an ``Embedding(mask_zero=True)`` encoder makes its own); the decoder is
    causal, so padding after a target's end never changes the logits of its valid steps.
    """

    def __init__(self, encoder: Module, decoder: Sequential, output: Module, *, start_id: int,
                 end_id: int | None = None, pad_id: int | None = 0, name: str | None = None):
        for role, m in (("encoder", encoder), ("decoder", decoder), ("output", output)):
            if not isinstance(m, Module):
                raise TypeError(f"{role} must be an rnnlab module, got {type(m).__name__}")
        enc_rnn = _last_recurrent(encoder, "encoder")
        if not isinstance(decoder, Sequential) or not decoder.layers:
            raise TypeError(f"decoder must be a Sequential starting with an Embedding or OneHot and ending in a "
                            f"recurrent layer, got {type(decoder).__name__}")
        if not isinstance(decoder.layers[0], (Embedding, OneHot)):
            raise TypeError(f"decoder must start with an Embedding or OneHot (it reads token ids), got "
                            f"{type(decoder.layers[0]).__name__}")
        dec_rnn = _last_recurrent(decoder, "decoder")
        if isinstance(dec_rnn, Bidirectional) or not dec_rnn.return_sequences:
            raise ValueError("decoder's recurrent layer must be a unidirectional SimpleRNN, LSTM or GRU with "
                             "return_sequences=True (it emits one output per target step)")
        n_rec = sum(isinstance(m, (Recurrent, Bidirectional)) for m in decoder.layers)
        if n_rec != 1:
            raise ValueError(f"decoder must hold exactly one recurrent layer (its state is carried during generation), "
                             f"got {n_rec}")
        enc_cell = enc_rnn.forward_layer if isinstance(enc_rnn, Bidirectional) else enc_rnn
        if enc_cell.state_names != dec_rnn.state_names:
            raise ValueError(f"encoder and decoder must carry the same state tensors, got {type(enc_cell).__name__} "
                             f"{enc_cell.state_names} and {type(dec_rnn).__name__} {dec_rnn.state_names}")
        factor = 2 if isinstance(enc_rnn, Bidirectional) else 1
        if dec_rnn.hidden_size != factor * enc_cell.hidden_size:
            raise ValueError(f"decoder hidden_size must be {factor} x the encoder's ({enc_cell.hidden_size}) "
                             f"to take its final state, got {dec_rnn.hidden_size}")
        for key, value in (("start_id", start_id), ("end_id", end_id), ("pad_id", pad_id)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0):
                raise ValueError(f"{key} must be a non-negative int token id{'' if key == 'start_id' else ' or None'}, "
                                 f"got {value!r}")
        if start_id is None:
            raise ValueError("start_id must be a non-negative int token id, got None")
        super().__init__(dtype=_check_same_dtype({"encoder": encoder, "decoder": decoder, "output": output}), name=name)
        self.encoder, self.decoder, self.output = encoder, decoder, output
        self.start_id, self.end_id, self.pad_id = int(start_id), end_id, pad_id
        self._bidirectional = factor == 2
        self._n_states = len(dec_rnn.state_names)
        self.initial_state_grad = None
        self.output_mask = None
        self._cache = None
        self.built = all(m.built for _, m in self.children())

    def children(self):
        return [("encoder", self.encoder), ("decoder", self.decoder), ("output", self.output)]

    # ------------------------------------------------------------------ the bridge
    def _bridge(self, enc_states) -> list[np.ndarray]:
        """Encoder final states -> decoder initial states (concatenated per tensor if bidirectional)."""
        enc_states = list(enc_states)
        if not self._bidirectional:
            return enc_states
        n = self._n_states
        return [np.concatenate([f, b], axis=-1) for f, b in zip(enc_states[:n], enc_states[n:])]

    def _bridge_backward(self, d_dec) -> list[np.ndarray]:
        if not self._bidirectional:
            return list(d_dec)
        H = d_dec[0].shape[-1] // 2
        return [d[:, :H] for d in d_dec] + [d[:, H:] for d in d_dec]

    def shift_right(self, targets: np.ndarray) -> np.ndarray:
        """The decoder's teacher-forcing input: ``[start_id, d_0, ..., d_{T-2}]`` per row, (B, T)."""
        dec_in = np.empty_like(targets)
        dec_in[:, 0] = self.start_id
        dec_in[:, 1:] = targets[:, :-1]
        return dec_in

    # ------------------------------------------------------------------ forward / backward
    def forward(self, x, mask=None, initial_state=None, training: bool = False):
        """Logits (B, T', V) for ``x = (source, targets)``; ``mask`` is the source's (B, S), if any."""
        source, targets = _pair("Seq2Seq", x, "source", "targets (B, T') token ids")
        targets = _check_ids("targets", targets)
        if len(targets) != len(source):
            raise ValueError(f"source and targets must hold the same number of sequences, "
                             f"got {len(source)} and {len(targets)}")
        enc_y, *enc_states = self.encoder(source, mask=mask, initial_state=initial_state, training=training)
        dec_out = self.decoder(self.shift_right(targets), initial_state=self._bridge(enc_states), training=training)
        logits = self.output(dec_out[0], training=training)  # (B, T', V)
        self.output_mask = None if self.pad_id is None else targets != self.pad_id
        self._cache = (enc_y,)
        self.built = True
        return logits

    def backward(self, dy, *d_states, input_grad: bool = True):
        (enc_y,) = self._need_tape(self._cache)
        self.decoder.backward(self.output.backward(dy))
        d_enc = self._bridge_backward(self.decoder.initial_state_grad)
        d_source = self.encoder.backward(_zeros_like_output(enc_y), *d_enc, input_grad=input_grad)
        self.initial_state_grad = self.encoder.initial_state_grad
        return d_source

    # ------------------------------------------------------------------ inference
    def generate(self, source, max_len: int, mask=None) -> np.ndarray:
        """Greedy decoding: token ids (B, L) with L <= ``max_len``.

        Each step feeds the previous choice (``start_id`` first) and carries the decoder state, so a
        token costs one step. A sequence ends after ``end_id`` (kept in the output); its remaining
        positions hold ``pad_id`` (``end_id`` when ``pad_id`` is None). Decoding stops early once
        every sequence has ended.
        """
        max_len = check_positive_int("max_len", max_len)
        _, *enc_states = self.encoder(source, mask=mask)
        states = self._bridge(enc_states)
        B = len(states[0])
        token = np.full(B, self.start_id, dtype=np.int64)
        done = np.zeros(B, dtype=bool)
        fill = self.pad_id if self.pad_id is not None else self.end_id
        chosen = []
        for _ in range(max_len):
            y, *states = self.decoder(token[:, None], initial_state=states)  # (B, 1, H)
            token = self.output(y)[:, 0].argmax(axis=-1)  # (B,)
            if fill is not None:
                token = np.where(done, fill, token)
            chosen.append(token)
            if self.end_id is not None:
                done |= token == self.end_id
                if done.all():
                    break
        self._cache = None  # the tapes hold the last single step: no backward after generate
        return np.stack(chosen, axis=1)

    # ------------------------------------------------------------------ config
    def get_config(self):
        part = lambda m: {"class_name": type(m).__name__, "config": m.get_config()}  # noqa: E731
        return {"encoder": part(self.encoder), "decoder": part(self.decoder), "output": part(self.output),
                "start_id": self.start_id, "end_id": self.end_id, "pad_id": self.pad_id, "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        parts = [registered(config[k]["class_name"]).from_config(config.pop(k)["config"])
                 for k in ("encoder", "decoder", "output")]
        return cls(*parts, **config)
