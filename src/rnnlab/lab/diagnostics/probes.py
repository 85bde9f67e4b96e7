"""The float64 copies every probe runs on: of one recurrent layer, or of a whole model whose recurrent
layers record the arguments of their calls; the checks and masks the probes share."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from rnnlab._validation import check_mask
from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.module import Module
from rnnlab.nn.recurrent import Recurrent


def _check_recurrent(layer, function: str) -> Recurrent:
    if isinstance(layer, Bidirectional):
        raise TypeError(f"{function} takes one recurrent layer, got a Bidirectional, which holds two: pass "
                        "layer.forward_layer or layer.backward_layer (or use gradient_report for a whole model)")
    if not isinstance(layer, Recurrent):
        raise TypeError(f"{function} takes a recurrent layer (SimpleRNN, LSTM, GRU), got {type(layer).__name__}")
    if not layer.built:
        raise ValueError(f"layer ({type(layer).__name__}) has no weights yet: "
                         "call it on data or build(input_shape) first")
    return layer


def _layer_copy(layer: Recurrent, **flags) -> Recurrent:
    """A float64 copy of ``layer`` with the same weights, ``stateful=False``, returning only its last output
    unless ``flags`` say otherwise; the initializers are irrelevant since the weights are copied."""
    config = layer.get_config()
    config.update(kernel_initializer="zeros", recurrent_initializer="zeros", bias_initializer="zeros", seed=None,
                  dtype="float64", return_sequences=False, return_state=False, stateful=False, name=None)
    config.update(flags)
    copy = type(layer).from_config(config)
    copy.set_weights(layer.params)
    return copy


def _as_float64(config):
    """``config`` with every ``"dtype"`` entry, at any depth, set to float64."""
    if isinstance(config, dict):
        return {k: "float64" if k == "dtype" else _as_float64(v) for k, v in config.items()}
    if isinstance(config, list):
        return [_as_float64(v) for v in config]
    return config


def _recurrent_layers(model: Module) -> list[tuple[str, Recurrent]]:
    """Every recurrent layer of ``model`` with its dotted name (the prefix of its parameters; a
    Bidirectional gives ``"<i>.forward"`` and ``"<i>.backward"``); ``"layer"`` for a bare layer."""
    return [(name or "layer", m) for name, m in model.named_modules() if isinstance(m, Recurrent)]


def _traced_copy(model: Module) -> tuple[Module, dict[str, Recurrent], dict[str, tuple]]:
    """A float64 copy of ``model`` whose recurrent layers record the arguments of their last call.

    Returns ``(copy, layers, calls)``: ``layers`` maps dotted names to the copy's recurrent layers,
    ``calls`` fills with ``name -> (x, mask, initial_state)`` as the copy runs.
    """
    if not isinstance(model, Module):
        raise TypeError(f"model must be an rnnlab Module, got {type(model).__name__}")
    if not model.built:
        raise ValueError(f"model ({type(model).__name__}) has no weights yet: "
                         "call it on data or build(input_shape) first")
    if not _recurrent_layers(model):
        raise ValueError(f"model ({type(model).__name__}) has no recurrent layer (SimpleRNN, LSTM, GRU) to diagnose")
    copy = type(model).from_config(_as_float64(model.get_config()))
    if not copy.built and getattr(model, "input_shape", None) is not None:
        copy.build(model.input_shape)
    copy.set_weights(model.params)
    layers = dict(_recurrent_layers(copy))
    calls: dict[str, tuple] = {}
    for name, layer in layers.items():
        def forward(x, mask=None, initial_state=None, training=False, *, _name=name, _forward=layer.forward):
            calls[_name] = (x, mask, initial_state)
            return _forward(x, mask=mask, initial_state=initial_state, training=training)
        layer.forward = forward  # an attribute of the private copy only
    return copy, layers, calls


@contextmanager
def _overflow_means_explosion(what: str):
    """Overflow raises, as a FloatingPointError saying what exploded."""
    try:
        with np.errstate(over="raise", invalid="raise"):
            yield
    except FloatingPointError as exc:
        raise FloatingPointError(f"{what} overflowed float64 ({exc}): its state or its gradient explodes") from None


def _finite_norms(layer: Recurrent, what: str) -> dict[str, np.ndarray]:
    """``layer.grad_norms``, checked finite (a norm is inf only when the gradient itself overflowed)."""
    if not all(np.isfinite(n).all() for n in layer.grad_norms.values()):
        raise FloatingPointError(f"{what}: the gradient norms overflowed float64 (a norm beyond about 1.8e308): "
                                 "the gradient explodes")
    return layer.grad_norms


def _processing_mask(layer: Recurrent, mask, B: int, T: int) -> np.ndarray:
    """(B, T) bool mask in ``layer``'s processing order (all True without a mask)."""
    m = check_mask(mask, B, T)
    if m is None:
        return np.ones((B, T), dtype=bool)
    return np.ascontiguousarray(m[:, ::-1]) if layer.go_backwards else m.copy()
