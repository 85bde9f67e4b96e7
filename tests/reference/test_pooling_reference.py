"""GlobalMaxPool1D and GlobalAveragePool1D against PyTorch: ``torch.max(dim=1)`` over the valid steps (padding
filled with ``-inf``) and the masked mean ``(x * m).sum(1) / m.sum(1)``; outputs and the input gradient of the
loss ``sum(y * R)`` for a Gaussian ``R``, with right and left padding, in float64 and float32."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.nn.pooling import GlobalAveragePool1D, GlobalMaxPool1D

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.reference

TOL = {"float64": 1e-12, "float32": 2e-6}
B, T, F = 4, 7, 5


def lengths_mask(lengths, padding: str) -> np.ndarray:
    steps = np.arange(T)
    right = steps[None, :] < np.asarray(lengths)[:, None]  # (B, T)
    return right if padding == "right" else right[:, ::-1].copy()


def torch_max(xt, mt):
    return xt.masked_fill(~mt[:, :, None], float("-inf")).max(dim=1).values


def torch_mean(xt, mt):
    m = mt[:, :, None].to(xt.dtype)
    return (xt * m).sum(dim=1) / m.sum(dim=1)


CASES = {"max": (GlobalMaxPool1D, torch_max), "mean": (GlobalAveragePool1D, torch_mean)}


@pytest.mark.parametrize("padding", ["none", "right", "left"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", CASES)
def test_pooling_against_torch(rng, kind, dtype, padding):
    cls, reference = CASES[kind]
    x = rng.standard_normal((B, T, F)).astype(dtype)
    R = rng.standard_normal((B, F)).astype(dtype)
    mask = np.ones((B, T), bool) if padding == "none" else lengths_mask([7, 3, 1, 5], padding)

    xt = torch.tensor(x, requires_grad=True)
    yt = reference(xt, torch.tensor(mask))
    (yt * torch.tensor(R)).sum().backward()

    layer = cls()
    for _ in range(2):  # a second call: nothing of the first one is reused
        y = layer(x, mask=None if padding == "none" else mask)
        dx = layer.backward(R)
        assert y.dtype == np.dtype(dtype) and dx.dtype == np.dtype(dtype)
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=TOL[dtype], atol=TOL[dtype], err_msg="y")
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=TOL[dtype], atol=TOL[dtype], err_msg="dx")
