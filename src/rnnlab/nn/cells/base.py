"""The cell protocol: one time step of a recurrent network, forward and backward, with no time loop.

A cell owns the maths of one step; :class:`rnnlab.nn.recurrent.Recurrent` owns time, direction, masks
and state. The time loop calls, in order::

    tape = cell.allocate(T, B, X, states0, workspace)  # time-major buffers, the cell's scratch, the path
    cell.input_projection(p, tape)                     # one GEMM for all steps: X U^T (+ b)
    for t in range(T):  cell.step(p, tape, t)          # one GEMM per step, a_{t-1} W^T, then elementwise work
                                                       # (cell.skip_step(tape, t) where the whole batch is padding)
    tape.dgates, tape.grad_norms = ...                 # (T, B, G*H) buffer; per-step norms or None
    cell.prepare_backward(tape)                        # the backward path and scratch
    for t in reversed(range(T)):  dstate = cell.step_backward(p, tape, t, dstate, dy)
    cell.accumulate_grads(p, grads, tape)              # dU, dW, db as one GEMM each over all steps
    dX = cell.input_grad(p, tape)                      # one GEMM: dgates U

How the elementwise work runs (a numba kernel, NumPy ufuncs, or for the LSTM NumPy over halved
weights) is the call's :class:`Path`, chosen by :meth:`Cell.path` alone, once per forward call and once
per backward call, and kept in the tape's scratch. Every path computes the same equations into the
same buffers. docs/performance.md ("Why the code is shaped this way") explains the buffers' shapes.

Notation (the brief's): ``x_t`` input (B, D), ``a_t``/``h_t`` hidden state (B, H), ``U`` (G*H, D) input
weights (PyTorch ``weight_ih``), ``W`` (G*H, H) recurrent weights (``weight_hh``), ``b`` (G*H,) bias,
G gates stacked along the first axis in PyTorch's order.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

from rnnlab.nn import initializers, kernels
from rnnlab.nn.kernels import StepKernels


class Path(enum.Enum):
    """How a cell computes the elementwise work of a call's steps (each path gives the same numbers)."""

    KERNEL = "kernel"  #: one numba kernel per step after its GEMM (rnnlab.nn.kernels)
    HALVED = "halved"  #: NumPy; the LSTM's one tanh over its four gates, the sigmoid rows of U, W, b halved
    NUMPY = "numpy"  #: NumPy, one ufunc per operation


# the members as module constants: ``Path.KERNEL`` costs ~0.3 us per lookup on Python 3.11, in every step
KERNEL, HALVED, NUMPY = Path.KERNEL, Path.HALVED, Path.NUMPY


@dataclass(eq=False, repr=False, slots=True)
class Scratch:
    """A call's per-step buffers and decisions, beside the tape's (T, ...) arrays; each cell extends it.

    Attributes
    ----------
    path
        the forward steps' :class:`Path`, from :meth:`Cell.path` in ``allocate``.
    backward_path
        the backward steps', from :meth:`Cell.path` in ``prepare_backward`` (``HALVED`` and
        ``NUMPY`` run the same backward step: halving only changes the forward products).
    kernels
        the step kernels while either path is ``KERNEL``, else None.
    W_T
        (H, G*H) ``W^T`` for the forward products ``h_{t-1} W^T``, set by ``input_projection``.
    no_dy
        (B, 1, H) zeros, the ``dy`` handed to a backward kernel when the loop has none (made on first use).
    h_drop
        (B, H) ``h_{t-1} * m_h``, the recurrent GEMM's input under recurrent dropout (made on first use).
    """

    path: Path
    kernels: StepKernels | None
    backward_path: Path = field(init=False, default=NUMPY)
    W_T: np.ndarray = field(init=False)
    no_dy: np.ndarray | None = field(init=False, default=None)
    h_drop: np.ndarray | None = field(init=False, default=None)


S = TypeVar("S", bound=Scratch)


@dataclass(eq=False)
class Tape(Generic[S]):
    """Everything one forward call keeps for its backward call; it belongs to the call, not the layer.

    Attributes
    ----------
    X
        (T, B, D) time-major input, in processing order.
    states
        list of (T+1, B, H) arrays, one per state tensor (``[h]`` or ``[h, c]``); index 0 holds
        the initial state, index t+1 the state carried out of step t (equal to the state before the
        step where the mask is 0).
    gates
        (T, B, G*H) the step's pre-activations until ``step`` turns them into activations.
    scratch
        the cell's :class:`Scratch` (``LSTMScratch``, ``GRUScratch``, ``ElmanScratch``).
    mask
        (T, B, 1) boolean, or None.
    input_mask
        (B, D) the input dropout mask ``m_x`` (scaled, the same at every step), or None; ``X``
        then holds ``x_t * m_x``.
    weight_mask
        (G*H, H) the weight-drop mask ``M`` on ``W`` (scaled, one per call), or None; the call
        then runs with ``W_dropped = W * M`` in place of ``W``.
    recurrent_mask
        (B, H) the recurrent dropout mask ``m_h`` (scaled, the same at every step), or None:
        every product with ``W`` reads ``h_{t-1} * m_h`` (:meth:`Cell.recurrent_input`); the carried
        state itself is not masked.
    dgates
        (T, B, G*H) gradients of the pre-activations, filled by ``step_backward``.
    grad_norms
        per-step ``||dL/dh_t||`` (and ``||dL/dc_t||``), (T, B) each, when recorded.
    workspace
        the :class:`Workspace` the tape's big buffers come from (the layer's, kept across calls).
    """

    X: np.ndarray
    states: list[np.ndarray]
    gates: np.ndarray
    scratch: S
    mask: np.ndarray | None = None
    recurrent_mask: np.ndarray | None = None
    input_mask: np.ndarray | None = None
    weight_mask: np.ndarray | None = None
    W_dropped: np.ndarray | None = None
    dgates: np.ndarray | None = None
    grad_norms: dict[str, np.ndarray] | None = None
    workspace: Workspace = field(default_factory=lambda: Workspace())

    def buffer(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """An uninitialised array of the tape's dtype for this call, from the workspace."""
        return self.workspace.empty(name, shape, self.gates.dtype)


class Workspace:
    """The big buffers of a layer's tape, kept from one call to the next and handed out again.

    A layer keeps one workspace: its next call writes over the previous call's tape, which only the
    last call's backward pass reads. Nothing a layer returns lives in it: outputs, final states and
    gradients are arrays of their own.
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


class Cell(Generic[S]):
    """Base of the Elman, LSTM and GRU cells: parameter creation, the path choice and the shared GEMMs."""

    gate_names: tuple[str, ...] = ("a",)
    state_names: tuple[str, ...] = ("h",)

    def __init__(self, hidden_size: int):
        self.hidden_size = hidden_size

    @property
    def gates(self) -> int:
        return len(self.gate_names)

    # ------------------------------------------------------------------ the path
    @property
    def has_kernel(self) -> bool:
        """Whether :mod:`rnnlab.nn.kernels` has step kernels for this cell's configuration."""
        return False

    @property
    def has_halved(self) -> bool:
        """Whether this cell has the NumPy :data:`Path.HALVED` form (the LSTM with a tanh candidate)."""
        return False

    #: whether the backward kernel can run while per-step gradient norms are recorded (the loop records
    #: ``||dL/dh_t||``; a cell with more states records the others itself, which its kernel does not)
    kernel_records_grad_norms: bool = True

    def path(self, dtype, steps: int, *, grad_norms: bool = False) -> Path:
        """How this cell computes a call's steps; the only place that chooses.

        ``KERNEL`` when the cell has kernels for its configuration and the backend in force
        (:func:`rnnlab.nn.kernels.fused`) provides them for ``dtype``, except, in the backward pass
        (``grad_norms``: norms are recorded), for a cell whose kernel cannot record them; else
        ``HALVED`` for a cell that has it, over more than one step (a single step does not pay for the
        halved weight copies); else ``NUMPY``. ``allocate`` asks once per forward call,
        ``prepare_backward`` once per backward call; every step reads the answer from the scratch.
        """
        if (self.has_kernel and (self.kernel_records_grad_norms or not grad_norms)
                and kernels.fused(dtype) is not None):
            return KERNEL
        if self.has_halved and steps > 1:
            return HALVED
        return NUMPY

    # ------------------------------------------------------------------ parameters
    def param_shapes(self, input_size: int) -> dict[str, tuple[int, ...]]:
        GH, H = self.gates * self.hidden_size, self.hidden_size
        return {"U": (GH, input_size), "W": (GH, H), "b": (GH,)}

    #: whether the cell takes the ``chrono`` bias initialiser (it has a forget or update gate)
    takes_chrono = False

    def init_params(self, input_size: int, rng: np.random.Generator, dtype, kernel_init, recurrent_init, bias_init):
        """Initial values, each gate block of ``U``, ``W`` and ``b`` drawn on its own (H rows); with the
        ``chrono`` bias initialiser the biases start at zero and the cell sets its gates' (``chrono_biases``)."""
        H = self.hidden_size
        chrono = bias_init if isinstance(bias_init, initializers.chrono) else None
        if chrono is not None:
            bias_init = initializers.zeros
        values = {}
        for name, shape in self.param_shapes(input_size).items():
            init = {"U": kernel_init, "W": recurrent_init}.get(name, bias_init)
            blocks = [init((H,) + shape[1:], rng, dtype, fan_in=shape[-1] if len(shape) > 1 else input_size, fan_out=H,
                           hidden_size=H)
                      for _ in range(shape[0] // H)]
            values[name] = np.concatenate(blocks, axis=0)
        if chrono is not None:
            self.chrono_biases(values["b"], chrono, rng)
        return values

    def chrono_biases(self, b: np.ndarray, chrono: initializers.chrono, rng: np.random.Generator) -> None:
        """Set the chrono gate biases in ``b`` (G*H,), in place (a cell with ``takes_chrono``)."""
        raise ValueError(f"bias_initializer {chrono!r} needs a gated cell (LSTM or GRU), not {type(self).__name__}")

    # ------------------------------------------------------------------ the loop's pieces
    def allocate(self, T: int, B: int, X: np.ndarray, states0: list[np.ndarray],
                 workspace: Workspace | None = None) -> Tape[S]:
        """The tape of one call, its scratch and forward path; its big buffers come from ``workspace``
        (a fresh one when None)."""
        H, dtype = self.hidden_size, X.dtype
        ws = Workspace() if workspace is None else workspace
        states = []
        for name, s0 in zip(self.state_names, states0):
            s = ws.empty("state_" + name, (T + 1, B, H), dtype)  # (T+1, B, H)
            s[0] = s0
            states.append(s)
        gates = ws.empty("gates", (T, B, self.gates * H), dtype)  # (T, B, G*H)
        path = self.path(dtype, T)
        scratch = self.new_scratch(path, kernels.module() if path is KERNEL else None, T, B, dtype, ws)
        return Tape(X=X, states=states, gates=gates, scratch=scratch, workspace=ws)

    def new_scratch(self, path: Path, step_kernels: StepKernels | None, T: int, B: int, dtype,
                    workspace: Workspace) -> S:  # pragma: no cover - abstract
        """The cell's :class:`Scratch` for a forward call of T steps over B rows."""
        raise NotImplementedError

    def input_projection(self, p: dict, tape: Tape[S]) -> None:
        """``gates[t] = x_t U^T + b`` for every t, as one (T*B, D) x (D, G*H) GEMM (on the kernel path
        without ``b``, which each step's kernel adds); then ``W^T`` into the scratch."""
        T, B, D = tape.X.shape
        # one input feature: an outer product, which BLAS runs three times slower as a GEMM of inner size 1
        product = np.multiply if D == 1 else np.matmul
        product(tape.X.reshape(T * B, D), p["U"].T, out=tape.gates.reshape(T * B, -1))
        if tape.scratch.path is not KERNEL:
            tape.gates += p["b"]
        tape.scratch.W_T = self.recurrent_weight(p, tape)

    def recurrent_weight(self, p: dict, tape: Tape[S]) -> np.ndarray:
        """``W^T`` (H, G*H) for the forward loop's products ``h_{t-1} W^T``: a C-contiguous copy (by
        blocks of rows) when the call has more than one step and more than one row, else the view
        ``W.T`` of the parameter."""
        T, B, _ = tape.X.shape
        W = p["W"]
        if T == 1 or B == 1:
            return W.T
        W_T = tape.buffer("W_T", W.shape[::-1])  # (H, G*H)
        for r in range(0, W.shape[0], _TRANSPOSE_BLOCK):
            np.copyto(W_T[:, r:r + _TRANSPOSE_BLOCK], W[r:r + _TRANSPOSE_BLOCK].T)
        return W_T

    @staticmethod
    def recurrent_input(tape: Tape[S], t: int) -> np.ndarray:
        """``h_{t-1}`` as the products with ``W`` read it at step t (``t`` indexes the state tape):
        the state itself, or ``h_{t-1} * m_h`` in a scratch buffer under recurrent dropout."""
        h = tape.states[0][t]  # (B, H)
        m = tape.recurrent_mask
        if m is None:
            return h
        out = tape.scratch.h_drop
        if out is None:
            out = tape.scratch.h_drop = np.empty_like(h)
        return np.multiply(h, m, out=out)

    @staticmethod
    def recurrent_inputs(tape: Tape[S]) -> np.ndarray:
        """Every step's :meth:`recurrent_input` as one (T*B, H) matrix, for the ``dW`` GEMM."""
        h = tape.states[0][:-1]  # (T, B, H)
        if tape.recurrent_mask is not None:
            h = h * tape.recurrent_mask
        return h.reshape(-1, h.shape[-1])

    def step(self, p: dict, tape: Tape[S], t: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def step_backward(self, p: dict, tape: Tape[S], t: int, dstate: list[np.ndarray],
                      dy: np.ndarray | None = None) -> list[np.ndarray]:  # pragma: no cover
        """One step back: ``dstate`` holds the gradients reaching step t's states from step t+1 (the
        cell may write into them), ``dy`` the whole output gradient (B, T, H), C-contiguous, when the
        loop has not added ``dy[:, t]`` to ``dstate[0]`` already (a kernel adds it within its own
        pass). Returns step t-1's, in buffers of the cell's (never the ones it was given)."""
        raise NotImplementedError

    @staticmethod
    def output_grad(tape: Tape[S], dy: np.ndarray | None, t: int) -> tuple[np.ndarray, int]:
        """``(dy, t)`` for a kernel that reads ``dy[:, t]``; (B, 1, H) zeros and 0 when ``dy`` is None."""
        if dy is not None:
            return dy, t
        zeros = tape.scratch.no_dy
        if zeros is None:
            B, H = tape.states[0].shape[1:]
            zeros = tape.scratch.no_dy = np.zeros((B, 1, H), dtype=tape.gates.dtype)
        return zeros, 0

    def skip_step(self, tape: Tape[S], t: int) -> None:
        """Forward over a step that is padding for the whole batch: the state is carried, no maths runs.
        A cell zeroes here any buffer of step t that ``accumulate_grads`` reads besides the states."""

    def skip_step_backward(self, tape: Tape[S], t: int) -> None:
        """Backward over such a step: its pre-activation gradients (and the cell's others) are zero."""
        tape.dgates[t] = 0

    def prepare_backward(self, tape: Tape[S]) -> None:
        """Choose the backward path (``tape.grad_norms`` is set by then); a cell extends this with the
        scratch its backward loop needs beyond ``tape.dgates``."""
        scratch = tape.scratch
        scratch.backward_path = self.path(tape.gates.dtype, tape.gates.shape[0], grad_norms=tape.grad_norms is not None)
        if scratch.backward_path is KERNEL:
            scratch.kernels = kernels.module()

    def accumulate_grads(self, p: dict, g: dict, tape: Tape[S]) -> None:
        """``dU += sum_t dgates_t^T x_t``, ``dW += sum_t dgates_t^T a_{t-1}``, ``db += sum_t dgates_t``,
        one GEMM each."""
        T, B, D = tape.X.shape
        dG = tape.dgates.reshape(T * B, -1)  # (T*B, G*H)
        g["U"] += dG.T @ tape.X.reshape(T * B, D)
        g["W"] += dG.T @ self.recurrent_inputs(tape)
        g["b"] += np.matmul(np.ones(T * B, dG.dtype), dG)  # the column sums as a GEMV: one BLAS pass

    def input_grad(self, p: dict, tape: Tape[S]) -> np.ndarray:
        """``dx_t = dgates_t U`` for every t, one GEMM; returns (T, B, D)."""
        T, B, D = tape.X.shape
        return (tape.dgates.reshape(T * B, -1) @ p["U"]).reshape(T, B, D)

    def get_config(self) -> dict:
        return {}


def resolve_initializers(kernel, recurrent, bias):
    return (initializers.get(kernel, "kernel_initializer"), initializers.get(recurrent, "recurrent_initializer"),
            initializers.get(bias, "bias_initializer"))
