"""Dense and Embedding against torch.nn.Linear and torch.nn.Embedding: outputs and every gradient.

Dense is one GEMM over all leading axes, so it is compared on 2-D to 5-D inputs, each activation, both
dtypes, twice in a row (the second call on the kept buffers); Embedding with repeated ids (the
scatter-add) and with padding (``mask_zero=True`` against ``padding_idx=0``, the padded positions'
output gradient zeroed as a masked loss downstream does). The loss is ``sum(y * R)`` for a Gaussian ``R``.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.nn.layers import Dense, Embedding

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.reference

TOL = {"float64": 1e-12, "float32": 2e-5}
TORCH_ACTIVATIONS = {None: lambda z: z, "tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}


def close(actual, expected, dtype, what):
    np.testing.assert_allclose(actual, expected, rtol=TOL[dtype], atol=TOL[dtype], err_msg=what)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("activation", list(TORCH_ACTIVATIONS), ids=lambda a: f"act_{a}")
@pytest.mark.parametrize("shape", [(6, 5), (3, 4, 5), (2, 3, 4, 5), (2, 1, 3, 2, 5)], ids=lambda s: f"{len(s)}d")
def test_dense_against_torch_linear(rng, dtype, activation, shape):
    H, K = shape[-1], 7
    linear = torch.nn.Linear(H, K, dtype=getattr(torch, dtype))
    with torch.no_grad():  # a bias that is not small, so a missed bias term shows
        linear.bias.normal_()
    layer = Dense(K, activation, input_size=H, dtype=dtype)
    layer.set_weights({"V": linear.weight.detach().numpy(), "c": linear.bias.detach().numpy()})

    x = rng.standard_normal(shape).astype(dtype)
    R = rng.standard_normal(shape[:-1] + (K,)).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    yt = TORCH_ACTIVATIONS[activation](linear(xt))
    (yt * torch.tensor(R)).sum().backward()

    for _ in range(2):  # the second call runs on the kept buffers
        layer.zero_grad()
        y = layer(x)
        dx = layer.backward(R)
        close(y, yt.detach().numpy(), dtype, "y")
        close(dx, xt.grad.numpy(), dtype, "dx")
        close(layer.grads["V"], linear.weight.grad.numpy(), dtype, "dV")
        close(layer.grads["c"], linear.bias.grad.numpy(), dtype, "dc")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_embedding_with_repeated_ids_against_torch(rng, dtype):
    V, dim = 11, 6
    table = torch.nn.Embedding(V, dim, dtype=getattr(torch, dtype))
    layer = Embedding(V, dim, dtype=dtype)
    layer.set_weights({"E": table.weight.detach().numpy()})
    ids = rng.integers(0, V, (4, 9))
    ids[:, ::3] = 5  # id 5 at a third of the positions
    R = rng.standard_normal((4, 9, dim)).astype(dtype)

    yt = table(torch.tensor(ids))
    (yt * torch.tensor(R)).sum().backward()
    y = layer(ids)
    assert layer.backward(R) is None
    close(y, yt.detach().numpy(), dtype, "y")
    close(layer.grads["E"], table.weight.grad.numpy(), dtype, "dE")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_embedding_with_padding_against_torch_padding_idx(rng, dtype):
    V, dim = 9, 4
    table = torch.nn.Embedding(V, dim, padding_idx=0, dtype=getattr(torch, dtype))
    layer = Embedding(V, dim, mask_zero=True, dtype=dtype)
    layer.set_weights({"E": table.weight.detach().numpy()})
    ids = np.array([[3, 1, 4, 1, 5, 0, 0], [0, 0, 2, 6, 5, 3, 5], [8, 0, 8, 8, 0, 1, 0]])
    mask = layer.compute_mask(None, ids)
    R = rng.standard_normal(ids.shape + (dim,)).astype(dtype) * mask[..., None]  # a masked loss's gradient

    yt = table(torch.tensor(ids))
    (yt * torch.tensor(R)).sum().backward()
    y = layer(ids)
    layer.backward(R)
    close(y, yt.detach().numpy(), dtype, "y")
    close(layer.grads["E"], table.weight.grad.numpy(), dtype, "dE")
    np.testing.assert_array_equal(layer.grads["E"][0], 0.0)
