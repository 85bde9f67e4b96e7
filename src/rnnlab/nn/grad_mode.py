"""Inference mode: forward passes and losses that keep nothing for a backward pass.

By default every forward call keeps what its backward call needs (a recurrent layer its tape, a
loss its gradient buffer), whether or not ``training`` is set: ``training`` only switches dropout,
and a gradient check differentiates a ``training=False`` forward. Evaluation never differentiates,
so it runs under :func:`no_grad`::

    with no_grad():
        y = model(x)            # recurrent layers keep no tape
        value = loss(y, t)      # the loss computes its terms only, no gradient buffer

Inside the block, ``layer.backward`` and ``loss.backward`` raise ``ValueError`` saying the forward
call ran without gradients. The outputs are bit for bit those of a forward call outside the block.
The switch is per thread, as ``torch.no_grad``; :func:`grad_enabled` reads it.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

__all__ = ["no_grad", "grad_enabled", "NO_GRAD_MESSAGE"]

_state = threading.local()

#: the end of the error a backward call raises after a forward call under ``no_grad``
NO_GRAD_MESSAGE = ("its last forward call ran under rnnlab.nn.no_grad() (inference mode), which keeps nothing "
                   "to differentiate; run the forward call outside no_grad() to differentiate it")


def grad_enabled() -> bool:
    """False inside a :func:`no_grad` block (of this thread), True otherwise."""
    return getattr(_state, "enabled", True)


@contextmanager
def no_grad():
    """``with no_grad(): ...``: forward calls and losses in the block keep nothing for a backward pass."""
    previous = grad_enabled()
    _state.enabled = False
    try:
        yield
    finally:
        _state.enabled = previous
