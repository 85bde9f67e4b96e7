"""Bidirectional: two independent recurrent layers, one reading each sequence reversed, merged per step."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnnlab._validation import as_float_array, check_choice
from rnnlab.nn.module import Module, registered
from rnnlab.nn.recurrent import Recurrent
from rnnlab.nn.state import check_state_keys, sub_states


def _concat_backward(dy, y_f, y_b):
    H = y_f.shape[-1]
    return dy[..., :H], dy[..., H:]


#: how ``Bidirectional`` merges the two directions' outputs: ``concat``, ``sum``, ``mul``, ``ave``, or None
#: (both, as a list)
MERGE_MODES = {
    # name: (merge(y_f, y_b), split(dy, y_f, y_b) -> (dy_f, dy_b), output size from H)
    "concat": (lambda f, b: np.concatenate([f, b], axis=-1), _concat_backward, lambda H: 2 * H),
    "sum": (lambda f, b: f + b, lambda dy, f, b: (dy, dy), lambda H: H),
    "mul": (lambda f, b: f * b, lambda dy, f, b: (dy * b, dy * f), lambda H: H),
    "ave": (lambda f, b: 0.5 * (f + b), lambda dy, f, b: (0.5 * dy, 0.5 * dy), lambda H: H),
    None: (lambda f, b: [f, b], lambda dy, f, b: tuple(dy), lambda H: H),
}


class Bidirectional(Module):
    """Two independent recurrent layers over the same input, one reading each sequence reversed.

    The backward layer is a fresh copy of ``layer`` (same configuration, its own weights) with
    ``go_backwards`` flipped; its outputs are put back in time order before merging, so step t of the
    result sees the whole sequence. With a mask the backward layer passes over the padding first and
    starts each sequence from its own last valid step, exactly as PyTorch's packed sequences do.

    Parameters
    ----------
    layer : Recurrent
        The forward layer (its ``return_sequences``, ``return_state``, ``stateful`` apply to both).
    merge_mode : "concat" (default), "sum", "mul", "ave" or None
        How the two outputs are combined per step; None returns them as a list ``[y_f, y_b]``.

    Notes
    -----
    With ``return_state`` the call returns ``y, *states_f, *states_b``; ``initial_state`` takes the
    forward states then the backward ones, or a state map with entries ``"forward"`` and ``"backward"``
    (:mod:`rnnlab.nn.state`). Parameters are named ``forward.*`` and ``backward.*``.
    """

    takes_state_map = True

    def __init__(self, layer: Recurrent, merge_mode: str | None = "concat", *, name: str | None = None):
        if not isinstance(layer, Recurrent):
            raise TypeError(f"layer must be a recurrent layer (SimpleRNN, LSTM, GRU), got {type(layer).__name__}")
        check_choice("merge_mode", merge_mode, MERGE_MODES)
        super().__init__(dtype=layer.dtype, name=name)
        self.merge_mode = merge_mode
        self.forward_layer = layer
        config = layer.get_config()
        config["go_backwards"] = not layer.go_backwards
        config["seed"] = layer._rng  # draws after the forward layer: independent weights, one seed
        self.backward_layer = type(layer).from_config(config)
        self._cache = None
        self.initial_state_grad = None
        self.built = layer.built

    def children(self):
        return [("forward", self.forward_layer), ("backward", self.backward_layer)]

    def build(self, input_shape):
        self.forward_layer.build(input_shape)
        self.backward_layer.build(input_shape)
        self.built = True

    @property
    def return_sequences(self):
        return self.forward_layer.return_sequences

    @property
    def return_state(self):
        return self.forward_layer.return_state

    def output_shape(self, input_shape):
        shape = self.forward_layer.output_shape(input_shape)
        return shape[:-1] + (MERGE_MODES[self.merge_mode][2](shape[-1]),)

    def compute_mask(self, mask, x=None):
        return self.forward_layer.compute_mask(mask, x)

    def reset_state(self):
        self.forward_layer.reset_state()
        self.backward_layer.reset_state()

    def forward(self, x, mask=None, initial_state=None, training: bool = False):
        n = len(self.forward_layer.state_names)
        init_f = init_b = None
        if isinstance(initial_state, Mapping):  # a state map: one entry per direction
            check_state_keys(initial_state, ["forward", "backward"], "a Bidirectional layer")
            init_f, init_b = sub_states(initial_state, "forward"), sub_states(initial_state, "backward")
        elif initial_state is not None:
            if not isinstance(initial_state, (list, tuple)) or len(initial_state) != 2 * n:
                got = (f"{len(initial_state)} arrays" if isinstance(initial_state, (list, tuple))
                       else f"a {type(initial_state).__name__}")
                raise ValueError(f"initial_state of a Bidirectional layer must be {2 * n} arrays (the forward "
                                 f"layer's states, then the backward layer's), got {got}")
            init_f, init_b = list(initial_state[:n]), list(initial_state[n:])
        out_f = self.forward_layer(x, mask=mask, initial_state=init_f, training=training)
        out_b = self.backward_layer(x, mask=mask, initial_state=init_b, training=training)
        states = []
        if self.return_state:
            (y_f, *s_f), (y_b, *s_b) = out_f, out_b
            states = s_f + s_b
        else:
            y_f, y_b = out_f, out_b
        if self.return_sequences:
            y_b = y_b[:, ::-1]  # back to time order
        self.built = True
        self._cache = (y_f, y_b)
        y = MERGE_MODES[self.merge_mode][0](y_f, y_b)
        return (y, *states) if self.return_state else y

    def activations(self) -> dict[str, dict[str, np.ndarray]]:
        """``{"forward": ..., "backward": ...}``: each direction's :meth:`Recurrent.activations`, both in
        the input's time order (the backward layer's are reversed back from its processing order)."""
        backward = {k: v[:, ::-1].copy() for k, v in self.backward_layer.activations().items()}
        return {"forward": self.forward_layer.activations(), "backward": backward}

    def backward(self, dy, *d_states, input_grad: bool = True):
        y_f, y_b = self._need_tape(self._cache)
        if self.merge_mode is None:
            if not isinstance(dy, (list, tuple)) or len(dy) != 2:
                raise ValueError("with merge_mode=None, dy must be a pair [dy_forward, dy_backward]")
        else:
            dy = as_float_array("dy", dy, self.dtype)
            expected = y_f.shape[:-1] + (MERGE_MODES[self.merge_mode][2](y_f.shape[-1]),)
            if dy.shape != expected:
                raise ValueError(f"dy must have the output's shape {expected}, got {dy.shape}")
        dy_f, dy_b = MERGE_MODES[self.merge_mode][1](dy, y_f, y_b)
        if self.return_sequences:
            dy_b = np.asarray(dy_b)[:, ::-1]
        n = len(self.forward_layer.state_names)
        d_states = list(d_states) + [None] * (2 * n - len(d_states))
        dx = self.forward_layer.backward(dy_f, *d_states[:n], input_grad=input_grad)
        dx_b = self.backward_layer.backward(dy_b, *d_states[n:2 * n], input_grad=input_grad)
        self.initial_state_grad = self.forward_layer.initial_state_grad + self.backward_layer.initial_state_grad
        if not input_grad:
            return None
        dx += dx_b
        return dx

    def get_config(self):
        return {"layer": {"class_name": type(self.forward_layer).__name__, "config": self.forward_layer.get_config()},
                "merge_mode": self.merge_mode, "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        inner = config.pop("layer")
        layer = registered(inner["class_name"]).from_config(inner["config"])
        return cls(layer, **config)
