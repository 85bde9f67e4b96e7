"""The cell protocol: one time step of a recurrent network, forward and backward, with no time loop.

A cell owns the maths of one step; :class:`rnnlab.recurrent.Recurrent` owns time, direction, masks
and state. The time loop calls, in order::

    tape = cell.allocate(T, B, D, dtype, states0)     # preallocated time-major buffers
    cell.input_projection(p, tape)                    # one GEMM for all steps: X U^T (+ b)
    for t in range(T):  cell.step(p, tape, t)         # one fused GEMM per step: a_{t-1} W^T
    ...
    cell.prepare_backward(tape)                       # scratch buffers for the backward loop
    for t in reversed(range(T)):  dstate = cell.step_backward(p, tape, t, dstate, dy)
    cell.accumulate_grads(p, grads, tape)             # dU, dW as one GEMM each over all steps
    dX = cell.input_grad(p, tape)                     # one GEMM: dgates U

Performance habits every cell keeps (docs/performance.md measures them): no allocation inside the
loop (per-step products go to scratch through ``np.matmul(..., out=)``, elementwise work through
``out=``), gate activations in one contiguous (B, G*H) block per step, and ``step_backward`` returns
state gradients in buffers it alternates between, never the ones it was given (the loop adds into
them in place).

Notation (the brief's): ``x_t`` input (B, D), ``a_t``/``h_t`` hidden state (B, H), ``U`` (G*H, D) input
weights (PyTorch ``weight_ih``), ``W`` (G*H, H) recurrent weights (``weight_hh``), ``b`` (G*H,) bias,
G gates stacked along the first axis in PyTorch's order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rnnlab.nn import initializers, kernels


@dataclass
class Tape:
    """Everything one forward call keeps for its backward call; it belongs to the call, not the layer.

    Attributes
    ----------
    X : (T, B, D) time-major input, in processing order.
    states : list of (T+1, B, H) arrays, one per state tensor (``[h]`` or ``[h, c]``); index 0 holds
        the initial state, index t+1 the state carried out of step t (equal to the state before the
        step where the mask is 0).
    gates : (T, B, G*H) the step's pre-activations until ``step`` turns them into activations.
    mask : (T, B, 1) boolean, or None.
    dgates : (T, B, G*H) gradients of the pre-activations, filled by ``step_backward``.
    grad_norms : per-step ``||dL/dh_t||`` (and ``||dL/dc_t||``), (T, B) each, when recorded.
    extra : cell-specific buffers (e.g. ``hn`` for the GRU).
    fused : the module of fused step kernels (:mod:`rnnlab._fused`) chosen for this call by
        :func:`rnnlab.kernels.fused`, or None for the NumPy ufunc path.
    workspace : the :class:`Workspace` the tape's big buffers come from (the layer's, kept across calls).
    """

    X: np.ndarray
    states: list[np.ndarray]
    gates: np.ndarray
    mask: np.ndarray | None = None
    dgates: np.ndarray | None = None
    grad_norms: dict[str, np.ndarray] | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    fused: object | None = None
    workspace: Workspace = field(default_factory=lambda: Workspace())

    def buffer(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """An uninitialised array of the tape's dtype for this call, from the workspace."""
        return self.workspace.empty(name, shape, self.gates.dtype)


class Workspace:
    """The big buffers of a layer's tape, kept from one call to the next and handed out again.

    A training step allocates the same (T, B, ...) buffers every time; allocating them afresh makes
    the allocator map new pages and the kernel fault them in, every step (and counts them again in
    the step's resident-set peak). A layer keeps one workspace: its next call writes over the
    previous call's tape, which only the last call's backward pass reads. Nothing a layer returns
    lives in it: outputs, final states and gradients are arrays of their own.
    """

    def __init__(self):
        self._arrays: dict[str, np.ndarray] = {}

    def empty(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        """The array kept under ``name`` if it has this shape and dtype, else a new one (then kept)."""
        array = self._arrays.get(name)
        if array is None or array.shape != tuple(shape) or array.dtype != np.dtype(dtype):
            array = self._arrays[name] = np.empty(shape, dtype=dtype)
        return array


_TRANSPOSE_BLOCK = 32  # rows of W per block of the W^T copy


class Cell:
    """Base of the Elman, LSTM and GRU cells: parameter creation and the shared GEMMs."""

    gate_names: tuple[str, ...] = ("a",)
    state_names: tuple[str, ...] = ("h",)

    def __init__(self, hidden_size: int):
        self.hidden_size = hidden_size

    @property
    def gates(self) -> int:
        return len(self.gate_names)

    # ------------------------------------------------------------------ parameters
    def param_shapes(self, input_size: int) -> dict[str, tuple[int, ...]]:
        GH, H = self.gates * self.hidden_size, self.hidden_size
        return {"U": (GH, input_size), "W": (GH, H), "b": (GH,)}

    def init_params(self, input_size: int, rng: np.random.Generator, dtype, kernel_init, recurrent_init, bias_init):
        """Initial values, each gate block of ``U``, ``W`` and ``b`` drawn on its own (H rows)."""
        H = self.hidden_size
        values = {}
        for name, shape in self.param_shapes(input_size).items():
            init = {"U": kernel_init, "W": recurrent_init}.get(name, bias_init)
            blocks = [init((H,) + shape[1:], rng, dtype, fan_in=shape[-1] if len(shape) > 1 else input_size, fan_out=H,
                           hidden_size=H)
                      for _ in range(shape[0] // H)]
            values[name] = np.concatenate(blocks, axis=0)
        return values

    # ------------------------------------------------------------------ the loop's pieces
    def allocate(self, T: int, B: int, X: np.ndarray, states0: list[np.ndarray],
                 workspace: Workspace | None = None) -> Tape:
        """The tape of one call; its buffers come from ``workspace`` (a fresh one when None)."""
        H, dtype = self.hidden_size, X.dtype
        ws = Workspace() if workspace is None else workspace
        states = []
        for name, s0 in zip(self.state_names, states0):
            s = ws.empty("state_" + name, (T + 1, B, H), dtype)  # (T+1, B, H)
            s[0] = s0
            states.append(s)
        return Tape(X=X, states=states, gates=ws.empty("gates", (T, B, self.gates * H), dtype),  # (T, B, G*H)
                    fused=kernels.fused(dtype), workspace=ws)

    def kernel_step(self, tape: Tape) -> bool:
        """True when the fused kernel runs this tape's steps (it then adds the bias ``b`` itself)."""
        return tape.fused is not None

    def input_projection(self, p: dict, tape: Tape) -> None:
        """``gates[t] = x_t U^T + b`` for every t, as one (T*B, D) x (D, G*H) GEMM.

        On the kernel path the bias is left out here and added by each step's kernel, which reads
        the step's gates anyway; adding it here would be one more pass over the whole (T, B, G*H) tape.
        """
        T, B, D = tape.X.shape
        np.matmul(tape.X.reshape(T * B, D), p["U"].T, out=tape.gates.reshape(T * B, -1))
        if not self.kernel_step(tape):
            tape.gates += p["b"]
        tape.extra["W_T"] = self.recurrent_weight(p, tape)

    def recurrent_weight(self, p: dict, tape: Tape) -> np.ndarray:
        """``W^T`` (H, G*H) for the forward loop's products ``h_{t-1} W^T``: a C-contiguous copy, made
        once per call, when the call has more than one step and more than one row.

        OpenBLAS multiplies (B, H) by a contiguous (H, G*H) 10-25 % faster than by the transposed
        view ``W.T`` of the (G*H, H) parameter; a row vector (B = 1) goes the other way, and a single
        step would not pay for the copy. The copy goes by blocks of rows, which keeps the strided
        writes of a large transpose within the cache.
        """
        T, B, _ = tape.X.shape
        W = p["W"]
        if T == 1 or B == 1:
            return W.T
        W_T = tape.buffer("W_T", W.shape[::-1])  # (H, G*H)
        for r in range(0, W.shape[0], _TRANSPOSE_BLOCK):
            np.copyto(W_T[:, r:r + _TRANSPOSE_BLOCK], W[r:r + _TRANSPOSE_BLOCK].T)
        return W_T

    def step(self, p: dict, tape: Tape, t: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def step_backward(self, p: dict, tape: Tape, t: int, dstate: list[np.ndarray],
                      dy: np.ndarray | None = None) -> list[np.ndarray]:  # pragma: no cover
        """One step back: ``dstate`` holds the gradients reaching step t's states from step t+1 (the
        cell may write into them), ``dy`` the whole output gradient (B, T, H), C-contiguous, when the
        loop has not added ``dy[:, t]`` to ``dstate[0]`` already (a kernel adds it within its own
        pass). Returns step t-1's."""
        raise NotImplementedError

    @staticmethod
    def output_grad(tape: Tape, dy: np.ndarray | None, t: int) -> tuple[np.ndarray, int]:
        """``(dy, t)`` for a kernel that reads ``dy[:, t]``; (B, 1, H) zeros and 0 when ``dy`` is None."""
        if dy is not None:
            return dy, t
        zeros = tape.extra.get("no_dy")
        if zeros is None:
            B, H = tape.states[0].shape[1:]
            zeros = tape.extra["no_dy"] = np.zeros((B, 1, H), dtype=tape.gates.dtype)
        return zeros, 0

    def skip_step(self, tape: Tape, t: int) -> None:
        """Forward over a step that is padding for the whole batch: the state is carried, no maths runs.
        A cell zeroes here any buffer of step t that ``accumulate_grads`` reads besides the states."""

    def skip_step_backward(self, tape: Tape, t: int) -> None:
        """Backward over such a step: its pre-activation gradients (and the cell's others) are zero."""
        tape.dgates[t] = 0

    def prepare_backward(self, tape: Tape) -> None:
        """Allocate any buffer the backward loop needs beyond ``tape.dgates`` (none by default)."""

    def accumulate_grads(self, p: dict, g: dict, tape: Tape) -> None:
        """``dU += sum_t dgates_t^T x_t``, ``dW += sum_t dgates_t^T a_{t-1}``, ``db += sum_t dgates_t``, one GEMM each."""
        T, B, D = tape.X.shape
        dG = tape.dgates.reshape(T * B, -1)  # (T*B, G*H)
        g["U"] += dG.T @ tape.X.reshape(T * B, D)
        g["W"] += dG.T @ tape.states[0][:-1].reshape(T * B, self.hidden_size)
        g["b"] += dG.sum(axis=0)

    def input_grad(self, p: dict, tape: Tape) -> np.ndarray:
        """``dx_t = dgates_t U`` for every t, one GEMM; returns (T, B, D)."""
        T, B, D = tape.X.shape
        return (tape.dgates.reshape(T * B, -1) @ p["U"]).reshape(T, B, D)

    def get_config(self) -> dict:
        return {}


def resolve_initializers(kernel, recurrent, bias):
    return (initializers.get(kernel, "kernel_initializer"), initializers.get(recurrent, "recurrent_initializer"),
            initializers.get(bias, "bias_initializer"))
