"""State maps: the recurrent state of a whole model, passed in and read out explicitly.

A *state map* is a dict ``{dotted name: states}`` with an entry per recurrent layer inside a module,
the layer named as :meth:`Module.named_modules` names it from that module (``"1"``, ``"2.forward"``;
``""`` for the module itself), and ``states`` the layer's state arrays, each (B, H): ``(h,)`` for
``SimpleRNN`` and ``GRU``, ``(h, c)`` for ``LSTM``. A missing entry, or None, stands for zeros.

Modules with ``takes_state_map`` (the recurrent layers, ``Bidirectional``, ``Sequential``) take a
state map as ``initial_state``: ``y = model(x, initial_state={"0": (h0, c0)})`` runs each recurrent
layer from its entry, and :func:`final_states` then gives the map of the states after the last step,
``s_T``, for the next call. Passing a map makes the state explicit: a ``stateful`` layer neither
reads nor updates its carried state in that call. This is how the trainer carries state across
truncated-BPTT windows and how generation carries it from token to token::

    y1, s = forward_with_states(model, x[:, :k], {})    # from zeros
    y2, s = forward_with_states(model, x[:, k:], s)     # as if x had been read in one call

(the states are values: no gradient flows from ``y2`` into the first call).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnnlab.nn.module import Module
from rnnlab.nn.recurrent import Recurrent

__all__ = ["StateMap", "check_state_keys", "final_states", "forward_with_states", "recurrent_layers", "sub_states"]

#: ``{dotted name of a recurrent layer: its state arrays (each (B, H)), or None for zeros}``
StateMap = dict[str, tuple[np.ndarray, ...] | None]


def recurrent_layers(module: Module) -> list[tuple[str, Recurrent]]:
    """Every recurrent layer inside ``module`` (itself included), as ``(dotted_name, layer)``, in
    :meth:`Module.named_modules` order: the keys of a full state map."""
    return [(name, m) for name, m in module.named_modules() if isinstance(m, Recurrent)]


def sub_states(states: Mapping, child: str) -> StateMap:
    """The entries of ``states`` under the child named ``child``, renamed from that child
    (``{"1.forward": s}`` gives ``{"forward": s}`` for child ``"1"``, ``{"1": s}`` gives ``{"": s}``)."""
    prefix = child + "."
    out = {}
    for key, value in states.items():
        if key == child:
            out[""] = value
        elif key.startswith(prefix):
            out[key[len(prefix):]] = value
    return out


def check_state_keys(states, children: list[str], owner: str) -> None:
    """Every key of the state map ``states`` must lie under one of ``children`` (the names of the
    children that take state maps); raises ValueError naming the others."""
    if not isinstance(states, Mapping) or not all(isinstance(k, str) for k in states):
        raise TypeError(f"a state map must be a dict of dotted layer names to states, got {type(states).__name__}")
    unknown = sorted(k for k in states if k.split(".")[0] not in children)
    if unknown:
        raise ValueError(f"the state map names {unknown}, which are no recurrent layers of {owner}; "
                         f"its children that take a state: {children}")


def final_states(module: Module) -> StateMap:
    """The state map after the last forward call: each recurrent layer's ``final_state``, ``s_T``
    (None for a layer that has not run)."""
    return {name: layer.final_state for name, layer in recurrent_layers(module)}


def forward_with_states(model: Module, x, states: Mapping | None = None, *, mask=None, training: bool = False):
    """``(y, final)``: a forward pass from the state map ``states`` and the state map after it.

    ``states=None`` calls the model as it is (``stateful`` layers use their carried state); a mapping
    (``{}`` for zeros everywhere) is passed as ``initial_state`` to a model with ``takes_state_map``.
    A model that cannot take a state map (a custom container, ``Seq2Seq``) is called as it is when
    every entry is None, and raises TypeError when a state would have to go into it.
    """
    if states is None:
        y = model(x, mask=mask, training=training)
    elif model.takes_state_map:
        y = model(x, mask=mask, initial_state=dict(states), training=training)
    elif all(s is None for s in states.values()):
        y = model(x, mask=mask, training=training)
    else:
        raise TypeError(f"{type(model).__name__} does not take a state map (initial_state={{layer name: states}}), "
                        "so no recurrent state can be carried into it; use a Sequential")
    return y, final_states(model)
