"""Optimizers and gradient clipping, matching ``torch.optim`` update for update.

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

Each algorithm is a short ``_update`` that follows PyTorch's single-tensor implementation (the
formulas in ``torch/optim/*.py`` and the docs pages cited in each class), including where weight
decay enters and where ``eps`` is added, so trajectories agree to rounding. With numba installed,
``SGD`` and ``Adam``/``AdamW`` run that same update as one compiled pass per parameter
(the private ``rnnlab.optim._fused``), giving the same bits.

``clip_grad_norm`` and ``clip_grad_value`` act on the gradients in place before ``step``.
"""

from __future__ import annotations

import numpy as np

from rnnlab._validation import check_bool, check_number, check_positive_int, check_rate, registry_entry
from rnnlab.optim import _fused

__all__ = ["Optimizer", "SGD", "ASGD", "Adam", "AdamW", "RMSprop", "Adagrad", "get", "NAMES"]


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


# --------------------------------------------------------------------------- algorithms
class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum.

    Momentum: Polyak (1964); the Nesterov form of Sutskever et al., "On the importance of
    initialization and momentum in deep learning", ICML 2013. Formula of
    https://pytorch.org/docs/stable/generated/torch.optim.SGD.html.

    Parameters
    ----------
    lr : float
        Learning rate ``gamma``.
    momentum : float in [0, 1)
        ``mu``.
    nesterov : bool
        Nesterov momentum; needs ``momentum > 0`` and ``dampening == 0``.
    weight_decay : float
        ``lambda``, added to the gradient.
    dampening : float in [0, 1]
        ``tau``.

    Notes
    -----
    With gradient ``g_t`` of parameter ``theta``::

        g_t <- g_t + lambda theta_{t-1}                           (if lambda != 0)
        b_t = g_t  if t = 1  else  mu b_{t-1} + (1 - tau) g_t     (if mu != 0)
        g_t <- g_t + mu b_t  (nesterov)   or   b_t
        theta_t = theta_{t-1} - gamma g_t

    State: ``momentum_buffer`` (``b``) when ``momentum > 0``.
    """

    _config_keys = ("lr", "momentum", "nesterov", "weight_decay", "dampening")

    def __init__(self, lr: float, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0,
                 dampening: float = 0.0, *, use_ema: bool = False, ema_momentum: float = 0.99):
        super().__init__(lr, weight_decay, use_ema=use_ema, ema_momentum=ema_momentum)
        self.momentum = check_rate("momentum", momentum)
        self.dampening = check_rate("dampening", dampening, high_inclusive=True)
        self.nesterov = check_bool("nesterov", nesterov)
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError(
                f"nesterov=True requires momentum > 0 and dampening = 0, "
                f"got momentum={self.momentum}, dampening={self.dampening}"
            )

    def _buffers(self):
        return ("momentum_buffer",) if self.momentum else ()

    def _update(self, p, g, state, a, b):
        if _fused.usable(p, g):
            dt = p.dtype.type
            buf = state["momentum_buffer"].reshape(-1) if self.momentum else p.reshape(-1)[:0]
            args = (dt(self.lr), dt(self.weight_decay), dt(self.momentum), dt(1.0 - self.dampening),
                    dt(self.dampening), state["step"] == 1, self.nesterov)
            _fused.blocks(_fused.kernels().sgd, (p.reshape(-1), g.reshape(-1), buf), args)
            return
        if self.weight_decay:
            g = _add_scaled(g, p, self.weight_decay, out=a)
        if self.momentum:
            buf = state["momentum_buffer"]
            if state["step"] == 1:
                np.copyto(buf, g)
            else:
                buf *= self.momentum
                buf += np.multiply(g, 1.0 - self.dampening, out=b) if self.dampening else g
            if self.nesterov:
                g = np.add(np.multiply(buf, self.momentum, out=b), g, out=b)  # g + mu b_t
            else:
                g = buf
        np.multiply(g, self.lr, out=b)
        p -= b


class ASGD(Optimizer):
    """Averaged SGD: SGD with a decaying step and a running average of the iterates (Polyak averaging).

    Polyak & Juditsky, "Acceleration of stochastic approximation by averaging", SIAM J. Control
    Optim. 30 (1992); the non-monotonically triggered form (NT-ASGD) of Merity, Keskar & Socher,
    "Regularizing and Optimizing LSTM Language Models", ICLR 2018. Formula, names and defaults of
    https://pytorch.org/docs/stable/generated/torch.optim.ASGD.html.

    Parameters
    ----------
    lr : float
        ``gamma``.
    lambd : float >= 0
        Decay term: the step shrinks as ``(1 + lambd gamma t)^-alpha`` and each update first scales
        the parameter by ``1 - lambd eta``.
    alpha : float >= 0
        Power of the step's decay.
    t0 : float >= 0
        The step after which averaging starts (PyTorch's default 1e6: effectively never).
    weight_decay : float
        ``lambda``, added to the gradient.
    nonmono : int >= 1, optional
        For :class:`rnnlab.training.Trainer`: start averaging (set ``t0`` to the steps so far, see
        :meth:`start_averaging`) at the end of the first epoch whose validation loss is worse than the
        best of the epochs more than ``nonmono`` epochs before it (NT-ASGD; Merity et al. use 5). The
        optimizer itself does not read it.

    Notes
    -----
    With ``eta_0 = gamma``, ``mu_0 = 1``, at step ``t`` (1-based), as PyTorch's single-tensor form::

        g_t <- g_t + lambda theta_{t-1}                     (if lambda != 0)
        theta_t = theta_{t-1} (1 - lambd eta_{t-1}) - eta_{t-1} g_t
        ax_t = theta_t  if mu_{t-1} = 1  else  ax_{t-1} + mu_{t-1} (theta_t - ax_{t-1})
        eta_t = gamma / (1 + lambd gamma t)^alpha
        mu_t = 1 / max(1, t - t0)

    so ``ax`` is the mean of the iterates from step ``t0 + 2`` on (a copy of ``theta`` before).
    ``eta_t`` and ``mu_t`` are computed after step ``t`` from the ``lr`` and ``t0`` of that moment
    and kept for the next step (PyTorch's order). No compiled kernel: the NumPy form only.

    State: ``eta``, ``mu`` (numbers) and ``ax`` (the average) per parameter; the state dict also
    holds ``t0``, so an averaging started by :meth:`start_averaging` survives a resume.
    :meth:`swap_average` exchanges the parameters and their averages (evaluate, then swap back);
    :meth:`load_average` copies the averages into the parameters.
    """

    _config_keys = ("lr", "lambd", "alpha", "t0", "weight_decay", "nonmono")
    _scalars = ("eta", "mu")

    def __init__(self, lr: float = 1e-2, lambd: float = 1e-4, alpha: float = 0.75, t0: float = 1e6,
                 weight_decay: float = 0.0, nonmono: int | None = None, *, use_ema: bool = False,
                 ema_momentum: float = 0.99):
        if use_ema is not False:
            raise ValueError(f"ASGD keeps its own average of the weights (ax); use_ema is for the other optimizers, "
                             f"got use_ema={use_ema!r}")
        super().__init__(lr, weight_decay, ema_momentum=ema_momentum)
        self.lambd = check_number("lambd", lambd)
        self.alpha = check_number("alpha", alpha)
        self.t0 = check_number("t0", t0)
        self.nonmono = None if nonmono is None else check_positive_int("nonmono", nonmono)

    def _buffers(self):
        return ("ax",)

    def _init_state(self, p):
        return {"step": 0, "eta": self.lr, "mu": 1.0, "ax": np.zeros_like(p)}

    def _update(self, p, g, state, a, b):
        if self.weight_decay:
            g = _add_scaled(g, p, self.weight_decay, out=a)
        eta, mu, ax = state["eta"], state["mu"], state["ax"]
        if self.lambd:
            p *= 1.0 - self.lambd * eta
        p -= np.multiply(g, eta, out=b)
        if mu != 1:
            ax += np.multiply(np.subtract(p, ax, out=b), mu, out=b)
        else:
            np.copyto(ax, p)
        t = state["step"]
        state["eta"] = self.lr / ((1.0 + self.lambd * self.lr * t) ** self.alpha)
        state["mu"] = 1.0 / max(1.0, t - self.t0)

    # ----------------------------------------------------------------- the average
    @property
    def _average_buffer(self) -> str:
        return "ax"

    @property
    def averaging(self) -> bool:
        """Whether ``ax`` is (or from the next step becomes) a mean of several iterates: ``t0 < steps``
        or ``t0`` reached at the next step."""
        return self.t0 <= self.steps

    def start_averaging(self) -> None:
        """Average from here on: ``t0 = steps``, so the iterates from two steps later are averaged
        (as a fresh ``torch.optim.ASGD(t0=0)`` would, AWD-LSTM's switch from SGD)."""
        self.t0 = float(self.steps)

    def describe_average(self) -> str:
        return f"the weights averaged since step {int(self.t0) + 2}"

    # ----------------------------------------------------------------- state dict
    def state_dict(self) -> dict:
        """``Optimizer.state_dict()`` plus ``"t0"`` (which :meth:`start_averaging` may have set)."""
        out = super().state_dict()
        out["t0"] = float(self.t0)
        return out

    def load_state_dict(self, state_dict: dict) -> None:
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        if "t0" not in state_dict:
            raise ValueError(f"state_dict must contain 't0' (an ASGD state), got keys {sorted(state_dict)}")
        t0 = check_number("t0", _as_scalar("t0", state_dict["t0"]))
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "t0"})
        self.t0 = t0


class Adam(Optimizer):
    """Adam, with optional AMSGrad and L2 weight decay added to the gradient.

    Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, arXiv:1412.6980; AMSGrad:
    Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond", ICLR 2018. Formula of
    https://pytorch.org/docs/stable/generated/torch.optim.Adam.html.

    Parameters
    ----------
    lr : float
        ``gamma``.
    betas : (float, float), each in [0, 1)
        ``(beta1, beta2)``, decay rates of the first and second moment averages.
    eps : float
        ``epsilon``, added to the bias-corrected root of the second moment.
    weight_decay : float
        ``lambda``, added to the gradient (coupled L2; see ``AdamW`` for the decoupled form).
    amsgrad : bool
        Normalise by the running maximum of the second moment.

    Notes
    -----
    ::

        g_t <- g_t + lambda theta_{t-1}                        (if lambda != 0)
        m_t = beta1 m_{t-1} + (1 - beta1) g_t                  (torch: m.lerp_(g, 1 - beta1))
        v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
        vmax_t = max(vmax_{t-1}, v_t)                          (amsgrad; used instead of v_t below)
        theta_t = theta_{t-1} - gamma / (1 - beta1^t) * m_t / (sqrt(v_t) / sqrt(1 - beta2^t) + epsilon)

    State: ``exp_avg`` (m), ``exp_avg_sq`` (v), ``max_exp_avg_sq`` (vmax, amsgrad only).
    """

    _config_keys = ("lr", "betas", "eps", "weight_decay", "amsgrad")
    _decoupled = False

    def __init__(self, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 amsgrad: bool = False, *, use_ema: bool = False, ema_momentum: float = 0.99):
        super().__init__(lr, weight_decay, use_ema=use_ema, ema_momentum=ema_momentum)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (check_rate("betas[0]", betas[0]), check_rate("betas[1]", betas[1]))
        self.eps = check_number("eps", eps)
        self.amsgrad = check_bool("amsgrad", amsgrad)

    def _buffers(self):
        return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if self.amsgrad else ("exp_avg", "exp_avg_sq")

    def _update(self, p, g, state, a, b):
        beta1, beta2 = self.betas
        if _fused.usable(p, g):
            dt, t, w = p.dtype.type, state["step"], 1.0 - beta1
            vmax = state["max_exp_avg_sq"].reshape(-1) if self.amsgrad else p.reshape(-1)[:0]
            decay = 1.0 - self.lr * self.weight_decay if self._decoupled and self.weight_decay else 1.0
            coupled = 0.0 if self._decoupled else self.weight_decay
            args = (dt(coupled), dt(decay), dt(w), dt(1.0 - w), abs(w) < 0.5, dt(beta2), dt(1.0 - beta2),
                    dt((1.0 - beta2**t) ** 0.5), dt(self.eps), dt(self.lr / (1.0 - beta1**t)))
            _fused.blocks(_fused.kernels().adam, (p.reshape(-1), g.reshape(-1), state["exp_avg"].reshape(-1),
                                                  state["exp_avg_sq"].reshape(-1), vmax), args)
            return
        if self.weight_decay:
            if self._decoupled:
                p *= 1.0 - self.lr * self.weight_decay
            else:
                g = _add_scaled(g, p, self.weight_decay, out=a)
        m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
        _lerp_(m, g, 1.0 - beta1, tmp=b)
        v *= beta2
        v += np.multiply(np.multiply(g, 1.0 - beta2, out=b), g, out=b)
        if self.amsgrad:
            v = np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        step_size = self.lr / (1.0 - beta1**t)
        denom = np.sqrt(v, out=b)
        denom /= (1.0 - beta2**t) ** 0.5
        denom += self.eps
        update = np.divide(m, denom, out=b)
        update *= step_size
        p -= update


class AdamW(Adam):
    """Adam with decoupled weight decay.

    Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019, arXiv:1711.05101.
    Formula of https://pytorch.org/docs/stable/generated/torch.optim.AdamW.html.

    Parameters
    ----------
    lr, betas, eps, amsgrad
        As in ``Adam``.
    weight_decay : float
        ``lambda`` (default 1e-2, as PyTorch), applied to the parameter, not the gradient.

    Notes
    -----
    ``theta_{t-1} <- theta_{t-1} (1 - gamma lambda)`` first, then the ``Adam`` update with the raw
    gradient (no ``lambda theta`` term in ``g_t``).
    """

    _decoupled = True

    def __init__(self, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
                 amsgrad: bool = False, *, use_ema: bool = False, ema_momentum: float = 0.99):
        super().__init__(lr, betas, eps, weight_decay, amsgrad, use_ema=use_ema, ema_momentum=ema_momentum)


class RMSprop(Optimizer):
    """RMSprop, optionally centered and with momentum.

    Tieleman & Hinton, Coursera "Neural Networks for Machine Learning", lecture 6.5 (2012); the
    centered variant from Graves, "Generating Sequences With Recurrent Neural Networks",
    arXiv:1308.0850. Formula of https://pytorch.org/docs/stable/generated/torch.optim.RMSprop.html.

    Parameters
    ----------
    lr : float
        ``gamma``.
    alpha : float in [0, 1)
        Smoothing constant of the squared-gradient average.
    eps : float
        ``epsilon``, added to the root (outside the square root).
    momentum : float in [0, 1)
        ``mu``.
    centered : bool
        Normalise by an estimate of the gradient's variance instead of its second moment.
    weight_decay : float
        ``lambda``, added to the gradient.

    Notes
    -----
    ::

        g_t <- g_t + lambda theta_{t-1}                        (if lambda != 0)
        v_t = alpha v_{t-1} + (1 - alpha) g_t^2
        gbar_t = alpha gbar_{t-1} + (1 - alpha) g_t            (centered)
        r_t = sqrt(v_t - gbar_t^2) + epsilon   (centered)   or   sqrt(v_t) + epsilon
        b_t = mu b_{t-1} + g_t / r_t ;  theta_t = theta_{t-1} - gamma b_t    (mu > 0)
        theta_t = theta_{t-1} - gamma g_t / r_t                               (mu = 0)

    State: ``square_avg`` (v), ``grad_avg`` (gbar, centered), ``momentum_buffer`` (b, mu > 0).
    """

    _config_keys = ("lr", "alpha", "eps", "momentum", "centered", "weight_decay")

    def __init__(self, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, momentum: float = 0.0,
                 centered: bool = False, weight_decay: float = 0.0, *, use_ema: bool = False,
                 ema_momentum: float = 0.99):
        super().__init__(lr, weight_decay, use_ema=use_ema, ema_momentum=ema_momentum)
        self.alpha = check_rate("alpha", alpha)
        self.eps = check_number("eps", eps)
        self.momentum = check_rate("momentum", momentum)
        self.centered = check_bool("centered", centered)

    def _buffers(self):
        return (("square_avg",) + (("grad_avg",) if self.centered else ())
                + (("momentum_buffer",) if self.momentum else ()))

    def _update(self, p, g, state, a, b):
        if self.weight_decay:
            g = _add_scaled(g, p, self.weight_decay, out=a)
        v = state["square_avg"]
        v *= self.alpha
        v += np.multiply(np.multiply(g, 1.0 - self.alpha, out=b), g, out=b)
        if self.centered:
            gbar = state["grad_avg"]
            _lerp_(gbar, g, 1.0 - self.alpha, tmp=b)
            avg = np.multiply(gbar, -1.0, out=b)  # v - gbar^2 as torch's v.addcmul(gbar, gbar, value=-1)
            avg *= gbar
            avg += v
            np.sqrt(avg, out=avg)
        else:
            avg = np.sqrt(v, out=b)
        avg += self.eps
        if self.momentum:
            buf = state["momentum_buffer"]
            buf *= self.momentum
            buf += np.divide(g, avg, out=b)
            p -= np.multiply(buf, self.lr, out=b)
        else:
            update = np.divide(g, avg, out=b)
            update *= self.lr
            p -= update


class Adagrad(Optimizer):
    """Adagrad: per-coordinate steps scaled by the root of the summed squared gradients.

    Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning and Stochastic
    Optimization", JMLR 12 (2011). Formula of
    https://pytorch.org/docs/stable/generated/torch.optim.Adagrad.html.

    Parameters
    ----------
    lr : float
        ``gamma``.
    lr_decay : float
        ``eta``: the step ``t`` uses ``gamma / (1 + (t - 1) eta)``.
    weight_decay : float
        ``lambda``, added to the gradient.
    initial_accumulator_value : float
        Starting value of the sum of squares.
    eps : float
        ``epsilon``, added to the root.

    Notes
    -----
    ::

        g_t <- g_t + lambda theta_{t-1}                        (if lambda != 0)
        gamma_t = gamma / (1 + (t - 1) eta)
        s_t = s_{t-1} + g_t^2
        theta_t = theta_{t-1} - gamma_t g_t / (sqrt(s_t) + epsilon)

    State: ``sum`` (s).
    """

    _config_keys = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def __init__(self, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, *, use_ema: bool = False,
                 ema_momentum: float = 0.99):
        super().__init__(lr, weight_decay, use_ema=use_ema, ema_momentum=ema_momentum)
        self.lr_decay = check_number("lr_decay", lr_decay)
        self.initial_accumulator_value = check_number("initial_accumulator_value", initial_accumulator_value)
        self.eps = check_number("eps", eps)

    def _buffers(self):
        return ("sum",)

    def _init_state(self, p):
        return {"step": 0, "sum": np.full_like(p, self.initial_accumulator_value)}

    def _update(self, p, g, state, a, b):
        if self.weight_decay:
            g = _add_scaled(g, p, self.weight_decay, out=a)
        clr = self.lr / (1.0 + (state["step"] - 1) * self.lr_decay)
        s = state["sum"]
        s += np.multiply(g, g, out=b)
        std = np.sqrt(s, out=b)
        std += self.eps
        update = np.divide(g, std, out=b)
        update *= clr
        p -= update


# --------------------------------------------------------------------------- lookup
#: optimizer name -> class, what ``get`` accepts
NAMES: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad,
                                     "asgd": ASGD}


def get(name_or_instance, /, **kwargs) -> Optimizer:
    """Return an optimizer from its name (built with ``kwargs``) or an ``Optimizer`` unchanged.

    Parameters
    ----------
    name_or_instance : str or Optimizer
        ``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``, ``"adagrad"`` or ``"asgd"``, or an instance.
    **kwargs
        Constructor arguments (``lr=...``); not allowed with an instance.
    """
    entry = registry_entry("optimizer", name_or_instance, Optimizer, NAMES, kwargs)
    return entry if isinstance(entry, Optimizer) else entry(**kwargs)
