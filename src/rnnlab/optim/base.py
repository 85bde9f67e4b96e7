"""The optimizers' base class, :class:`Optimizer`: the books every algorithm of :mod:`rnnlab.optim.optimizers` keeps.

One optimizer serves a whole model: ``opt.step(model)`` reads ``model.named_parameters()`` and
``model.named_grads()`` (same dotted names, same order) and updates every parameter array *in
place*, so layers keep computing with the very arrays they own. The base class keeps the books:

- ``lr``, settable between steps (learning-rate schedules assign to it);
- ``state[name]``: the per-parameter buffers (``"step"`` plus, e.g., ``"exp_avg"``), created at a
  parameter's first step, keyed by its dotted name;
- ``state_dict()`` / ``load_state_dict()``: a flat dict ``{"lr": float,
  "state.<dotted name>.<buffer>": ndarray | int | float}`` of NumPy arrays and numbers, which
  ``np.savez`` can store and ``np.load(..., allow_pickle=False)`` can read back;
- a scratch workspace (two parameter-sized views into one flat buffer per dtype) so a step
  allocates no new arrays once warm; the model's gradients are never modified by ``step``.

It also keeps an average of the weights for the algorithms that have one (``use_ema``, ASGD's
``ax``): ``keeps_average``, ``averaging``, ``swap_average``, ``load_average``.

An algorithm subclasses :class:`Optimizer` with a short ``_update`` (:mod:`rnnlab.optim.optimizers`).
"""

from __future__ import annotations

import numpy as np

from rnnlab._validation import check_bool, check_number, check_rate

__all__ = ["Optimizer"]


# --------------------------------------------------------------------------- argument checks
def _named_params_and_grads(model) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Pair ``model.named_parameters()`` with ``model.named_grads()``, checking names, order and shapes."""
    params = list(model.named_parameters())
    grads = list(model.named_grads())
    if [n for n, _ in params] != [n for n, _ in grads]:
        raise ValueError(
            "model.named_grads() must yield the same names in the same order as model.named_parameters(); "
            f"got parameters {[n for n, _ in params]} and gradients {[n for n, _ in grads]}"
        )
    triples = []
    for (name, p), (_, g) in zip(params, grads):
        if not isinstance(p, np.ndarray) or not np.issubdtype(p.dtype, np.floating):
            raise TypeError(f"parameter {name!r} must be a float ndarray, "
                            f"got {type(p).__name__} {getattr(p, 'dtype', '')}")
        if not isinstance(g, np.ndarray) or g.shape != p.shape:
            raise ValueError(f"gradient of {name!r} must be an ndarray of the parameter's shape {p.shape}, "
                             f"got {np.shape(g)}")
        triples.append((name, p, g))
    return triples


def _add_scaled(g: np.ndarray, p: np.ndarray, weight_decay: float, out: np.ndarray) -> np.ndarray:
    """``out = g + weight_decay * p`` (PyTorch's ``grad.add(param, alpha=weight_decay)``)."""
    np.multiply(p, weight_decay, out=out)
    out += g
    return out


def _lerp_(x: np.ndarray, end: np.ndarray, w: float, tmp: np.ndarray) -> None:
    """``x <- x + w (end - x)`` in place, in the two-branch form of ``torch.lerp``."""
    np.subtract(end, x, out=tmp)
    if abs(w) < 0.5:
        tmp *= w
        x += tmp
    else:
        tmp *= 1.0 - w
        np.subtract(end, tmp, out=x)


# --------------------------------------------------------------------------- base class
class Optimizer:
    """Base class: learning rate, per-parameter state, the step loop and the state dict.

    Parameters
    ----------
    lr : float
        Learning rate ``gamma >= 0``; may be reassigned between steps (``opt.lr = ...``).
    weight_decay : float
        L2 penalty coefficient ``lambda >= 0`` (how it enters is up to each algorithm).
    use_ema : bool
        Keep an exponential moving average of the weights (Keras' ``use_ema``): after each step
        ``ema = ema_momentum ema + (1 - ema_momentum) theta``, with ``ema = theta`` after the first.
        Every optimizer takes it (keyword-only) except :class:`ASGD`, which keeps its own average.
    ema_momentum : float in [0, 1]
        The average's momentum (Keras' default 0.99).

    Notes
    -----
    The moving average is the state buffer ``ema`` (in the state dict and so in checkpoints);
    :meth:`swap_average` and :meth:`load_average` put it in the model, and
    :class:`rnnlab.training.Trainer` validates, keeps the best epoch and ends the run with it (its
    "Averaged weights"). Keras' ``fit`` validates with the raw weights and copies the average in at
    the end; PyTorch's ``swa_utils.AveragedModel`` with ``get_ema_multi_avg_fn`` computes the same
    average.

    Subclasses list their per-parameter buffers in ``_buffers()`` (zeros at the first step unless
    ``_init_state`` says otherwise), their per-parameter float numbers in ``_scalars`` (set by
    ``_init_state``), and implement ``_update(p, g, state, a, b)``, where ``state["step"]``
    has already been incremented to ``t`` and ``a``, ``b`` are scratch arrays shaped like ``p``.
    """

    _config_keys: tuple[str, ...] = ("lr", "weight_decay")
    _scalars: tuple[str, ...] = ()  # per-parameter float numbers kept in the state besides "step"

    def __init__(self, lr: float, weight_decay: float = 0.0, *, use_ema: bool = False, ema_momentum: float = 0.99):
        self.lr = lr
        self.weight_decay = check_number("weight_decay", weight_decay)
        self.use_ema = check_bool("use_ema", use_ema)
        self.ema_momentum = check_rate("ema_momentum", ema_momentum, high_inclusive=True)
        self.state: dict[str, dict] = {}
        self._unchecked: set[str] = set()  # names loaded by load_state_dict, shape-checked on first use
        self._workspace: dict[str, np.ndarray] = {}

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value) -> None:
        self._lr = check_number("lr", value)

    # ----------------------------------------------------------------- stepping
    def step(self, model) -> None:
        """Update every parameter of ``model`` in place from its current gradients."""
        triples = _named_params_and_grads(model)
        for name, p, g in triples:
            state = self.state.get(name)
            if state is None:
                state = self.state[name] = self._init_state(p)
                if self.use_ema:
                    state["ema"] = np.zeros_like(p)
            elif name in self._unchecked:
                self._check_loaded_state(name, state, p)
            state["step"] += 1
            a, b = self._scratch(p)
            self._update(p, g, state, a, b)
            if self.use_ema:
                self._update_ema(p, state, a)

    def _update_ema(self, p: np.ndarray, state: dict, a: np.ndarray) -> None:
        """``ema = m ema + (1 - m) p`` in ``p``'s precision (``m`` rounded to it first, as Keras), ``p``
        itself after the first step."""
        ema = state["ema"]
        if state["step"] == 1:
            np.copyto(ema, p)
            return
        m = p.dtype.type(self.ema_momentum)
        ema *= m
        ema += np.multiply(p, p.dtype.type(1) - m, out=a)

    def _buffers(self) -> tuple[str, ...]:
        """Names of the per-parameter arrays this configuration keeps (besides ``"step"``)."""
        return ()

    def _all_buffers(self) -> tuple[str, ...]:
        """:meth:`_buffers` and, with ``use_ema``, ``"ema"``."""
        return self._buffers() + (("ema",) if self.use_ema else ())

    def _init_state(self, p: np.ndarray) -> dict:
        return {"step": 0, **{key: np.zeros_like(p) for key in self._buffers()}}

    def _update(self, p, g, state, a, b) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _scratch(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Two arrays shaped like ``p``: views into a flat buffer per dtype that only ever grows."""
        n = p.size
        buf = self._workspace.get(p.dtype.str)
        if buf is None or buf.size < 2 * n:
            buf = self._workspace[p.dtype.str] = np.empty(2 * n, dtype=p.dtype)
        return buf[:n].reshape(p.shape), buf[n : 2 * n].reshape(p.shape)

    def _check_loaded_state(self, name: str, state: dict, p: np.ndarray) -> None:
        for key in self._all_buffers():
            if state[key].shape != p.shape:
                raise ValueError(
                    f"optimizer state {key!r} of parameter {name!r} has shape {state[key].shape}, "
                    f"but the parameter has shape {p.shape}; the state dict belongs to a different model"
                )
            if state[key].dtype != p.dtype:
                state[key] = state[key].astype(p.dtype)
        self._unchecked.discard(name)

    # ----------------------------------------------------------------- state dict
    def state_dict(self) -> dict:
        """A flat dict of copies: ``{"lr": float, "state.<name>.<buffer>": ndarray | int | float}``."""
        out: dict = {"lr": self.lr}
        for name, state in self.state.items():
            for key, value in state.items():
                if isinstance(value, np.ndarray):
                    out[f"state.{name}.{key}"] = value.copy()
                else:
                    out[f"state.{name}.{key}"] = float(value) if key in self._scalars else int(value)
        return out

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore ``lr`` and the per-parameter state from ``state_dict()``'s format (strict).

        Numbers may come back as 0-d arrays (as ``np.load`` returns them). Unknown or missing keys
        raise ``ValueError`` and leave the optimizer unchanged; array shapes are checked against the
        parameters at the next ``step``.
        """
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        if "lr" not in state_dict:
            raise ValueError(f"state_dict must contain 'lr', got keys {sorted(state_dict)}")
        lr = check_number("lr", _as_scalar("lr", state_dict["lr"]))
        expected = {"step", *self._scalars, *self._all_buffers()}
        groups: dict[str, dict] = {}
        for key, value in state_dict.items():
            if key == "lr":
                continue
            name, _, field = key.removeprefix("state.").rpartition(".")
            if not key.startswith("state.") or not name or field not in expected:
                raise ValueError(
                    f"unexpected state_dict key {key!r}: {self!r} keeps 'lr' and 'state.<parameter>.<buffer>' "
                    f"with buffers {sorted(expected)}"
                )
            groups.setdefault(name, {})[field] = value
        state: dict[str, dict] = {}
        for name, fields in groups.items():
            missing = expected - fields.keys()
            if missing:
                raise ValueError(f"state_dict lacks {sorted(missing)} for parameter {name!r}; "
                                 f"{self!r} needs {sorted(expected)}")
            step = _as_scalar(f"state.{name}.step", fields["step"])
            if step != int(step) or step < 0:
                raise ValueError(f"state.{name}.step must be a non-negative integer, got {step}")
            entry = {"step": int(step)}
            for key in self._scalars:
                entry[key] = float(_as_scalar(f"state.{name}.{key}", fields[key]))
            for key in self._all_buffers():
                arr = np.array(fields[key])  # a copy
                if not np.issubdtype(arr.dtype, np.floating):
                    raise TypeError(f"state.{name}.{key} must be a float array, got dtype {arr.dtype}")
                entry[key] = arr
            state[name] = entry
        self._lr = lr
        self.state = state
        self._unchecked = set(state)

    # ----------------------------------------------------------------- the average
    @property
    def _average_buffer(self) -> str | None:
        """The state buffer holding the average of the weights, if this optimizer keeps one."""
        return "ema" if self.use_ema else None

    @property
    def keeps_average(self) -> bool:
        """Whether the optimizer keeps an average of the weights (``use_ema``, or :class:`ASGD`)."""
        return self._average_buffer is not None

    @property
    def steps(self) -> int:
        """The largest step count of any parameter (0 before the first step)."""
        return max((int(state["step"]) for state in self.state.values()), default=0)

    @property
    def averaging(self) -> bool:
        """Whether the average differs from the weights, so that the run should end with it: with
        ``use_ema``, once a step has been taken."""
        return self.use_ema and self.steps > 0

    def describe_average(self) -> str:
        """What :meth:`load_average` puts in the model, for a log line."""
        return f"the exponential moving average of the weights (ema_momentum {self.ema_momentum:g})"

    def _averaged(self, model):
        key = self._average_buffer
        if key is None:
            return
        for name, p in model.named_parameters():
            state = self.state.get(name)
            if state is None:
                continue  # not stepped yet: its average is itself
            if name in self._unchecked:
                self._check_loaded_state(name, state, p)
            yield p, state[key]

    def swap_average(self, model) -> None:
        """Exchange every stepped parameter of ``model`` with its average, in place (bit for bit:
        calling it twice restores both); nothing without an average."""
        for p, average in self._averaged(model):
            tmp, _ = self._scratch(p)
            np.copyto(tmp, p)
            np.copyto(p, average)
            np.copyto(average, tmp)

    def load_average(self, model) -> None:
        """Copy the averages into ``model``'s parameters (the averages stay); nothing without an average."""
        for p, average in self._averaged(model):
            np.copyto(p, average)

    # ----------------------------------------------------------------- config
    def get_config(self) -> dict:
        """The constructor arguments; ``type(opt).from_config(cfg)`` builds an equal optimizer
        (``use_ema`` and ``ema_momentum`` only when the average is kept)."""
        config = {key: getattr(self, key) for key in self._config_keys}
        if self.use_ema:
            config.update(use_ema=True, ema_momentum=self.ema_momentum)
        return config

    @classmethod
    def from_config(cls, config: dict) -> Optimizer:
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


def _as_scalar(name: str, value) -> float:
    arr = np.asarray(value)
    if arr.shape != () or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    return arr.item()
