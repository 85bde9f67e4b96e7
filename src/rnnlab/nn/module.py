"""The module protocol every layer and model follows.

``y = module(x, mask=None, initial_state=None, training=False)`` runs the forward pass and keeps
what the backward pass needs; ``dx = module.backward(dy)`` runs it for that last forward call and
*adds* the parameter gradients into ``module.grads`` (as PyTorch accumulates into ``.grad``;
``zero_grad()`` clears them). ``module.backward(dy, input_grad=False)`` skips ``dL/dx`` (and returns
None) when nothing needs it, as PyTorch skips the gradient of an input that does not require one:
the trainer asks for no input gradient, and a recurrent layer then saves its ``dgates U`` GEMM.
``params`` and ``grads`` are dicts with the same dotted keys (``"0.forward.W"``), holding the very
arrays the module computes with, so optimizers update them in place.

A module with ``takes_state_map`` also takes, as ``initial_state``, a *state map* ``{dotted name of a
recurrent layer inside it: its states}`` and then runs with that state made explicit (see
:mod:`rnnlab.nn.state`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from rnnlab._validation import resolve_dtype

_REGISTRY: dict[str, type[Module]] = {}


def registered(class_name: str) -> type[Module]:
    """Look a module class up by the name ``get_config`` stores (used by ``from_config`` and ``load``)."""
    try:
        return _REGISTRY[class_name]
    except KeyError:
        raise ValueError(f"unknown module class {class_name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


class Module:
    """Base class: parameter book-keeping, config round trip, call protocol."""

    #: True for layers with no weights that return their input's dtype (Dropout); the others compute in ``dtype``.
    keeps_input_dtype = False
    #: True for modules whose ``initial_state`` may be a state map (recurrent layers and the containers
    #: that route one to them: ``Bidirectional``, ``Sequential``); see :mod:`rnnlab.nn.state`.
    takes_state_map = False
    #: masks to reuse instead of drawing new ones in a training call, by name (None: draw); set by
    #: :func:`rnnlab.nn.gradcheck.gradcheck` and by tests so that training calls are deterministic
    fixed_masks: dict[str, np.ndarray] | None = None
    #: the dropout masks the last training call drew (or reused), by name; None before any
    dropout_masks: dict[str, np.ndarray] | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    def __init__(self, *, dtype="float32", name: str | None = None):
        self.dtype = resolve_dtype(dtype)
        self.name = name
        self._params: dict[str, np.ndarray] = {}
        self._grads: dict[str, np.ndarray] = {}
        self.built = False

    # ----------------------------------------------------------------- parameters
    def children(self) -> list[tuple[str, Module]]:
        """Sub-modules with their names (empty for a leaf layer)."""
        return []

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """Yield ``(dotted_name, module)`` for this module and every sub-module, parents before children.

        The module itself comes first, named ``prefix`` (``""`` by default); a child of ``"0"`` named
        ``"forward"`` is ``"0.forward"``, as in ``torch.nn.Module.named_modules``. Every walk over a model
        (trainer, diagnostics, model files, generation, viewer) goes through this one method.
        """
        yield prefix, self
        for child_name, child in self.children():
            yield from child.named_modules(f"{prefix}.{child_name}" if prefix else child_name)

    def add_param(self, name: str, value: np.ndarray) -> np.ndarray:
        value = np.ascontiguousarray(value, dtype=self.dtype)
        self._params[name] = value
        self._grads[name] = np.zeros_like(value)
        return value

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        """Yield ``(dotted_name, array)`` for every parameter, own ones first."""
        for key, value in self._params.items():
            yield prefix + key, value
        for child_name, child in self.children():
            yield from child.named_parameters(prefix + child_name + ".")

    def named_grads(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for key, value in self._grads.items():
            yield prefix + key, value
        for child_name, child in self.children():
            yield from child.named_grads(prefix + child_name + ".")

    @property
    def params(self) -> dict[str, np.ndarray]:
        return dict(self.named_parameters())

    @property
    def grads(self) -> dict[str, np.ndarray]:
        return dict(self.named_grads())

    def zero_grad(self) -> None:
        for _, g in self.named_grads():
            g.fill(0)

    def count_params(self) -> int:
        if not self.built:
            raise ValueError(
                f"{type(self).__name__} is not built yet, so its parameter count is unknown; "
                "call it on data or call build(input_shape) first"
            )
        return int(sum(p.size for _, p in self.named_parameters()))

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Copy arrays into the parameters by dotted name; names and shapes must match exactly."""
        own = self.params
        missing = sorted(set(own) - set(weights))
        unexpected = sorted(set(weights) - set(own))
        if missing or unexpected:
            raise ValueError(f"weights do not match the model: missing {missing}, unexpected {unexpected}")
        for key, target in own.items():
            value = np.asarray(weights[key])
            if value.shape != target.shape:
                raise ValueError(f"weight {key!r} must have shape {target.shape}, got {value.shape}")
            target[...] = value

    def _dropout_mask(self, name: str, shape: tuple[int, ...], rate: float, rng: np.random.Generator, dtype):
        """An inverted-dropout mask of ``shape``: ``keep / (1 - rate)`` with ``keep ~ Bernoulli(1 - rate)``,
        in ``dtype``; the entry ``name`` of :attr:`fixed_masks` instead when there is one. The mask is
        also kept in ``dropout_masks[name]`` (the masks of the last training call)."""
        fixed = self.fixed_masks
        if fixed is not None and name in fixed:
            mask = fixed[name]
            if mask.shape != tuple(shape):
                raise ValueError(f"{type(self).__name__}.fixed_masks[{name!r}] must have shape {tuple(shape)}, "
                                 f"got {mask.shape}")
        else:
            mask = (rng.random(shape) >= rate).astype(dtype) / (1.0 - rate)
        if self.dropout_masks is None:
            self.dropout_masks = {}
        self.dropout_masks[name] = mask
        return mask

    # ----------------------------------------------------------------- call protocol
    def __call__(self, x, mask=None, initial_state=None, training: bool = False):
        return self.forward(x, mask=mask, initial_state=initial_state, training=training)

    def forward(self, x, mask=None, initial_state=None, training: bool = False):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dy, *d_states, input_grad: bool = True):  # pragma: no cover - abstract
        raise NotImplementedError

    def compute_mask(self, mask, x=None):
        """The mask of this module's output, given its input mask and input (passed through by default)."""
        return mask

    def build(self, input_shape: tuple) -> None:
        """Create the parameters for an input of ``input_shape`` (batch axis may be None)."""
        self.built = True

    def output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def _need_tape(self, tape):
        if tape is None:
            raise ValueError(f"{type(self).__name__}.backward was called before forward: "
                             "there is no forward pass to differentiate")
        return tape

    # ----------------------------------------------------------------- config
    def get_config(self) -> dict:
        """JSON-serialisable constructor arguments; ``type(self).from_config(cfg)`` rebuilds the module."""
        return {"dtype": self.dtype.name, "name": self.name}

    @classmethod
    def from_config(cls, config: dict) -> Module:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items()
                         if k not in ("dtype", "name") and v is not None)
        return f"{type(self).__name__}({args})"
