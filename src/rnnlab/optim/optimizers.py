"""The optimizers, matching ``torch.optim`` update for update: SGD, ASGD, Adam, AdamW, RMSprop, Adagrad.

Each algorithm is a short ``_update`` on :class:`~rnnlab.optim.base.Optimizer`, which keeps the books
(the learning rate, the per-parameter state, ``state_dict``, the scratch workspace, the average of the
weights). The updates follow PyTorch's single-tensor implementation (the formulas in
``torch/optim/*.py`` and the docs pages cited in each class), including where weight decay enters and
where ``eps`` is added, so trajectories agree to rounding. With numba installed, ``SGD`` and
``Adam``/``AdamW`` run that same update as one compiled pass per parameter (the private
``rnnlab.optim._fused``), giving the same bits.

``clip_grad_norm`` and ``clip_grad_value`` (:mod:`rnnlab.optim.clipping`) act on the gradients in
place before ``step``.
"""

from __future__ import annotations

import numpy as np

from rnnlab._validation import check_bool, check_number, check_positive_int, check_rate, registry_entry
from rnnlab.optim import _fused
from rnnlab.optim.base import Optimizer, _add_scaled, _as_scalar, _lerp_

__all__ = ["Optimizer", "SGD", "ASGD", "Adam", "AdamW", "RMSprop", "Adagrad", "get", "NAMES"]


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
