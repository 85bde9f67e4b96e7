"""Finite-difference gradient checking of any module's hand-written backward pass.

The scalar checked is a random projection of the outputs, ``L = sum(y * R)`` with ``R ~ N(0, 1)``
(an all-ones ``R`` would hide sign and permutation bugs), so ``dL/dy = R`` is what ``backward``
receives. Every parameter, the input (when it is a float array) and the initial state(s) are
perturbed entry by entry with central differences::

    dL/dp_k  ~  (L(p + eps e_k) - L(p - eps e_k)) / (2 eps)

and compared with the analytic gradient by the norm-wise relative error
``||g_analytic - g_numeric|| / max(||g_analytic||, ||g_numeric||)`` (0 when both are 0). In float64
with ``eps = 1e-6`` a correct backward pass gives about 1e-9 or less; the check requires float64
because float32 round-off alone is about 1e-3 at that step size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rnnlab.nn.module import Module


@dataclass
class GradcheckReport:
    """Worst relative error per checked quantity (``"x"``, ``"initial_state.0"``, dotted parameter names)."""

    errors: dict[str, float] = field(default_factory=dict)

    @property
    def max_error(self) -> float:
        return max(self.errors.values(), default=0.0)

    def passed(self, tol: float = 1e-6) -> bool:
        return self.max_error < tol

    def __str__(self) -> str:
        width = max((len(k) for k in self.errors), default=4)
        lines = [f"{'name'.ljust(width)}  relative error"]
        lines += [f"{k.ljust(width)}  {v:.3e}" for k, v in self.errors.items()]
        return "\n".join(lines)


def numerical_gradient(f, array: np.ndarray, eps: float = 1e-6, entries=None) -> np.ndarray:
    """Central differences ``(f(a + eps e_k) - f(a - eps e_k)) / (2 eps)`` of a scalar function.

    ``array`` is perturbed in place, one entry at a time, and restored; ``f(array)`` returns the
    scalar. ``entries`` are flat indices to differentiate (all by default); the result has one value
    per entry, or ``array``'s shape if all.
    """
    if not array.flags.c_contiguous:
        raise ValueError("numerical_gradient perturbs array in place, so it must be C-contiguous")
    flat = array.reshape(-1)  # a view
    idx = np.arange(flat.size) if entries is None else np.asarray(entries)
    grad = np.zeros(len(idx))
    for j, k in enumerate(idx):
        old = flat[k]
        flat[k] = old + eps
        plus = f(array)
        flat[k] = old - eps
        minus = f(array)
        flat[k] = old
        grad[j] = (plus - minus) / (2 * eps)
    return grad.reshape(array.shape) if entries is None else grad


def _rel_error(a: np.ndarray, n: np.ndarray) -> float:
    scale = max(np.linalg.norm(a), np.linalg.norm(n))
    return 0.0 if scale == 0 else float(np.linalg.norm(a - n) / scale)


def _as_list(out) -> list[np.ndarray]:
    if isinstance(out, np.ndarray):
        return [out]
    flat = []
    for item in out:
        flat += _as_list(item)
    return flat


def gradcheck(module: Module, x, *, mask=None, initial_state=None, eps: float = 1e-6, seed: int = 0,
              params: list[str] | None = None, max_entries: int | None = None,
              training: bool = False) -> GradcheckReport:
    """Compare ``module.backward`` with central finite differences.

    Parameters
    ----------
    module : Module
        Built with ``dtype="float64"``; called in inference mode (dropout off) unless ``training``.
    x : array
        The input; its gradient is checked when it is a float array.
    mask, initial_state
        Passed to the module; the initial states' gradients are checked (``initial_state_grad``).
    eps : float
        Step of the central differences.
    params : list of str, optional
        Dotted parameter names to check (all by default).
    max_entries : int, optional
        Check at most this many randomly chosen entries of each array (all by default).
    training : bool
        Call the module in training mode: the first call draws every dropout mask, and every later
        call reuses them (each module's ``fixed_masks``, restored afterwards), so the function
        differentiated is the one with those masks.

    Returns
    -------
    GradcheckReport
        Worst relative error per parameter, ``"x"`` and ``"initial_state.i"``.
    """
    if module.dtype != np.float64:
        raise ValueError(f"gradcheck needs a float64 module (float32 round-off swamps finite differences); "
                         f"got dtype {module.dtype.name}: build it with dtype='float64'")
    rng = np.random.default_rng(seed)
    stateful = [m for _, m in module.named_modules() if getattr(m, "stateful", False)]
    saved = [None if layer._state is None else [s.copy() for s in layer._state] for layer in stateful]

    def run():
        for layer, state in zip(stateful, saved):
            layer._state = None if state is None else [s.copy() for s in state]
        return module(x, mask=mask, initial_state=initial_state, training=training)

    out = run()
    modules = [m for _, m in module.named_modules()]
    fixed_before = [m.fixed_masks for m in modules]
    if training:
        for m in modules:
            if getattr(m, "dropout_masks", None):
                m.fixed_masks = dict(m.dropout_masks)
    flat = _as_list(out)
    R = [rng.standard_normal(o.shape) for o in flat]

    def loss() -> float:
        return float(sum(np.sum(o * r) for o, r in zip(_as_list(run()), R)))

    # analytic: re-run so the tape is the one for these exact inputs, then backward with dL/dy = R
    module.zero_grad()
    run()
    if isinstance(out, tuple):
        dy = R[0] if isinstance(out[0], np.ndarray) else [R[0], R[1]]
        d_states = R[len(_as_list(out[0])):]
        dx = module.backward(dy, *d_states)
    elif isinstance(out, list):  # Bidirectional with merge_mode=None
        dx = module.backward(R)
    else:
        dx = module.backward(R[0])
    analytic = {k: g.copy() for k, g in module.named_grads()}
    d_init = getattr(module, "initial_state_grad", None)

    def numeric(array: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
        idx = np.arange(array.size)
        if max_entries is not None and array.size > max_entries:
            idx = rng.choice(array.size, size=max_entries, replace=False)
        return idx, numerical_gradient(lambda _: loss(), array, eps, entries=idx)

    report = GradcheckReport()
    for name, p in module.named_parameters():
        if params is not None and name not in params:
            continue
        idx, num = numeric(p, name)
        report.errors[name] = _rel_error(analytic[name].reshape(-1)[idx], num)
    if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating):
        if x.dtype != np.float64:
            raise ValueError(f"gradcheck needs a float64 x, got dtype {x.dtype}")
        idx, num = numeric(x, "x")
        report.errors["x"] = _rel_error(np.asarray(dx).reshape(-1)[idx], num)
    if initial_state is not None and d_init is not None:
        states = [initial_state] if isinstance(initial_state, np.ndarray) else list(initial_state)
        for i, (s, ds) in enumerate(zip(states, d_init)):
            idx, num = numeric(s, f"initial_state.{i}")
            report.errors[f"initial_state.{i}"] = _rel_error(ds.reshape(-1)[idx], num)
    for layer, state in zip(stateful, saved):
        layer._state = state
    for m, fixed in zip(modules, fixed_before):
        m.fixed_masks = fixed
    return report
