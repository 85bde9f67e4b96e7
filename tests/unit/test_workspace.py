"""A recurrent layer reuses its tape's big buffers from one call to the next (rnnlab.cells.base.Workspace).

What a call returns must never live in those buffers: outputs, final states, activations, recorded
gradient norms, the input and initial-state gradients of one call stay as they were through the
next call and its backward pass.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.recurrent import GRU, LSTM, SimpleRNN

pytestmark = pytest.mark.usefixtures("kernel_backend")

MAKERS = {
    "rnn": lambda **kw: SimpleRNN(5, input_size=3, **kw),
    "lstm": lambda **kw: LSTM(5, input_size=3, **kw),
    "gru": lambda **kw: GRU(5, input_size=3, **kw),
    "gru-v1": lambda **kw: GRU(5, input_size=3, reset_after=False, **kw),
}


@pytest.mark.parametrize("make", list(MAKERS.values()), ids=list(MAKERS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nothing_a_call_returned_changes_when_the_layer_is_called_again(rng, make, dtype):
    layer = make(return_sequences=True, return_state=True, seed=0, dtype=dtype)
    layer.record_grad_norms = True
    x1, x2 = rng.standard_normal((2, 4, 6, 3))
    dy1, dy2 = rng.standard_normal((2, 4, 6, 5))

    first = layer(x1)
    acts = layer.activations()
    dx1 = layer.backward(dy1)
    init_grad, norms = layer.initial_state_grad, layer.grad_norms
    kept = [a.copy() for a in (*first, dx1, *init_grad, *acts.values(), *norms.values())]

    layer(x2)  # writes over the first call's tape
    layer.backward(dy2)
    for before, now in zip(kept, (*first, dx1, *init_grad, *acts.values(), *norms.values())):
        np.testing.assert_array_equal(now, before)


@pytest.mark.parametrize("make", list(MAKERS.values()), ids=list(MAKERS))
def test_a_second_call_gives_what_a_fresh_layer_gives(rng, make):
    """Stale values in a reused buffer must not leak into the next call (masks: skipped steps too)."""
    x1, x2 = rng.standard_normal((2, 3, 5, 3))
    mask = np.array([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [0, 0, 0, 0, 0]], dtype=bool)
    dy = rng.standard_normal((3, 5, 5))
    used, fresh = (make(return_sequences=True, seed=0, dtype="float64") for _ in range(2))
    used(x1)
    used.backward(dy)
    used.zero_grad()
    y_used = used(x2, mask=mask)
    dx_used = used.backward(dy)
    y_fresh = fresh(x2, mask=mask)
    dx_fresh = fresh.backward(dy)
    np.testing.assert_array_equal(y_used, y_fresh)
    np.testing.assert_array_equal(dx_used, dx_fresh)
    for name, g in fresh.grads.items():
        np.testing.assert_array_equal(used.grads[name], g, err_msg=name)


def test_the_buffers_are_reused_for_the_same_shape_and_replaced_for_another(rng):
    layer = LSTM(4, input_size=3, return_sequences=True, seed=0)
    layer(rng.standard_normal((2, 5, 3)))
    gates = layer._tape.gates
    layer(rng.standard_normal((2, 5, 3)))
    assert layer._tape.gates is gates
    layer(rng.standard_normal((2, 7, 3)))
    assert layer._tape.gates is not gates and layer._tape.gates.shape == (7, 2, 16)


def test_the_two_directions_of_a_bidirectional_layer_have_their_own_buffers(rng):
    layer = Bidirectional(GRU(4, input_size=3, return_sequences=True, seed=0))
    layer(rng.standard_normal((2, 5, 3)))
    forward, backward = layer.forward_layer._tape, layer.backward_layer._tape
    assert not np.shares_memory(forward.gates, backward.gates)
    assert not np.shares_memory(forward.states[0], backward.states[0])


@pytest.mark.parametrize("make", list(MAKERS.values()), ids=list(MAKERS))
@pytest.mark.parametrize("shape", [(1, 4, 3), (4, 1, 3), (4, 6, 3), (1, 1, 3)], ids=["B1", "T1", "B4-T6", "B1-T1"])
def test_forward_and_backward_never_write_into_the_parameters(rng, make, shape):
    """The forward loop works on a transposed (and, on the NumPy path, halved) copy of ``W`` when it
    pays; when it does not, ``W.T`` is a view of the parameter and must stay read-only. H = 1 makes
    that view contiguous, the case that once let a halving write through."""
    for hidden in (5, 1):
        layer = make(return_sequences=True, seed=0, dtype="float64")
        layer = type(layer)(hidden, input_size=3, return_sequences=True, seed=0, dtype="float64",
                            **layer.cell.get_config())
        params = {k: v.copy() for k, v in layer.params.items()}
        x = rng.standard_normal(shape)
        y = layer(x)
        layer.backward(np.ones_like(y))
        layer(x)
        for k, v in layer.params.items():
            np.testing.assert_array_equal(v, params[k], err_msg=f"hidden={hidden}: parameter {k} changed")
