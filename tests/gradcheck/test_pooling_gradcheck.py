"""Pooling over time (``GlobalMaxPool1D``, ``GlobalAveragePool1D``) against central finite differences, in float64.

Each pooling alone (its input gradient; it has no parameters) and a BiLSTM classifier built on it
(``Bidirectional(LSTM, return_sequences=True) -> pooling -> Dense``, every parameter and ``x``), without a
mask and with right, left, inner-gap and mixed padding. The inputs are Gaussian, so no two steps tie for
a maximum within the finite-difference step.
"""

import numpy as np
import pytest

from rnnlab.nn import gradcheck
from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.layers import Dense
from rnnlab.nn.pooling import GlobalAveragePool1D, GlobalMaxPool1D
from rnnlab.nn.recurrent import LSTM
from rnnlab.nn.sequential import Sequential

pytestmark = pytest.mark.usefixtures("poison_uninitialised_memory")

TOL = 1e-6
B, T, D, H = 3, 5, 2, 3
POOLS = {"max": GlobalMaxPool1D, "mean": GlobalAveragePool1D}
# (B=3, T=5) masks, 1 = valid step
MASKS = {
    None: None,
    "right": [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]],
    "left": [[1, 1, 1, 1, 1], [0, 0, 1, 1, 1], [0, 0, 0, 0, 1]],
    "gap": [[1, 1, 0, 1, 1], [1, 0, 0, 0, 1], [1, 1, 1, 1, 1]],
    "mixed": [[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 0, 1, 1, 1]],
}


def mask_of(kind):
    return None if kind is None else np.array(MASKS[kind], dtype=bool)


def check(module, x, mask):
    report = gradcheck(module, x, mask=mask)
    assert set(report.errors) == set(module.params) | {"x"}, sorted(report.errors)
    failed = {name: err for name, err in report.errors.items() if not err < TOL}
    assert not failed, f"relative error >= {TOL} for {sorted(failed)}:\n{report}"
    vacuous = [name for name, g in module.grads.items() if not np.any(g)]
    assert not vacuous, f"parameters with an all-zero gradient (nothing was checked): {vacuous}"


@pytest.mark.parametrize("mask_kind", list(MASKS), ids=lambda k: f"mask_{k}")
@pytest.mark.parametrize("pool", POOLS)
def test_pooling_alone(pool, mask_kind, rng):
    layer = POOLS[pool](dtype="float64")
    x = rng.standard_normal((B, T, 4))
    mask = mask_of(mask_kind)
    check(layer, x, mask)
    # padded steps get no gradient at all; for max, exactly one step per (row, feature) gets one
    dx = layer.backward(rng.standard_normal((B, 4)))
    if mask is not None:
        assert not np.any(dx[~mask])
    if pool == "max":
        assert ((dx != 0).sum(axis=1) == 1).all()


@pytest.mark.parametrize("mask_kind", [None, "right", "left", "mixed"], ids=lambda k: f"mask_{k}")
@pytest.mark.parametrize("pool", POOLS)
def test_bilstm_pooled_classifier(pool, mask_kind, rng):
    model = Sequential([Bidirectional(LSTM(H, input_size=D, return_sequences=True, dtype="float64", seed=1)),
                        POOLS[pool](dtype="float64"), Dense(2, dtype="float64", seed=2)])
    prng = np.random.default_rng(7)
    for _, p in model.named_parameters():
        p[...] = 0.5 * prng.standard_normal(p.shape)
    x = rng.standard_normal((B, T, D))
    assert model(x, mask=mask_of(mask_kind)).shape == (B, 2)
    check(model, x, mask_of(mask_kind))
