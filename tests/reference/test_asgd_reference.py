"""rnnlab.optim.ASGD against torch.optim.ASGD: twenty steps with averaging starting mid-run.

Each side computes the gradient of ``f(w, b) = 1/2 sum w * (A w) + 1/4 sum b^4 - t.b`` from its own
parameters; after every step the parameters and the averages ``ax`` must agree (float64 to 1e-12,
float32 to a few units of float32 rounding). PyTorch keeps ``eta`` and ``mu`` as tensors of its
default dtype, so the float64 case sets that default to float64 (the float32 case keeps float32).
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab import optim

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.reference

STEPS = 20
TOLERANCE = {np.float64: 1e-12, np.float32: 2e-6}

CASES = [
    {"lr": 0.05, "t0": 8},  # torch's lambd and alpha
    {"lr": 0.05, "lambd": 0.05, "alpha": 0.5, "t0": 5.0, "weight_decay": 0.1},
    {"lr": 0.1, "lambd": 0.0, "t0": 11},  # AWD-LSTM's form: constant step
    {"lr": 0.05, "t0": 0},  # averaging from the start
    {"lr": 0.05},  # t0 = 1e6: ax is a copy of the parameters
]


def problem(rng, dtype):
    m = rng.normal(size=(4, 4))
    return (rng.normal(size=(4, 3)).astype(dtype), rng.normal(size=5).astype(dtype),
            (m @ m.T / 4 + np.eye(4)).astype(dtype), rng.normal(size=5).astype(dtype))


def gradients(w, b, A, t):
    return A @ w, b**3 - t


class FakeModel:
    def __init__(self, w, b):
        self.params = {"layer.w": w.copy(), "layer.b": b.copy()}
        self.grads = {key: np.zeros_like(value) for key, value in self.params.items()}

    def named_parameters(self):
        yield from self.params.items()

    def named_grads(self):
        yield from self.grads.items()


@pytest.fixture
def torch_default_dtype():
    before = torch.get_default_dtype()
    yield lambda dtype: torch.set_default_dtype(torch.float64 if dtype == np.float64 else torch.float32)
    torch.set_default_dtype(before)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kwargs", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_asgd_trajectory_and_average_match_torch(kwargs, dtype, rng, torch_default_dtype):
    torch_default_dtype(dtype)
    w0, b0, A, t = problem(rng, dtype)
    model = FakeModel(w0, b0)
    opt = optim.ASGD(**kwargs)
    tw, tb = torch.tensor(w0, requires_grad=True), torch.tensor(b0, requires_grad=True)
    topt = torch.optim.ASGD([tw, tb], foreach=False, **kwargs)
    tol = TOLERANCE[dtype]
    for step in range(STEPS):
        if step == 13:  # a schedule changing the learning rate mid-run
            opt.lr = opt.lr * 0.5
            for group in topt.param_groups:
                group["lr"] *= 0.5
        for key, g in zip(("layer.w", "layer.b"), gradients(model.params["layer.w"], model.params["layer.b"], A, t)):
            model.grads[key][...] = g
        opt.step(model)
        gw, gb = gradients(tw.detach().numpy(), tb.detach().numpy(), A, t)
        tw.grad, tb.grad = torch.tensor(gw), torch.tensor(gb)
        topt.step()
        for key, tensor in (("layer.w", tw), ("layer.b", tb)):
            assert model.params[key].dtype == dtype
            np.testing.assert_allclose(model.params[key], tensor.detach().numpy(), rtol=tol, atol=tol,
                                       err_msg=f"{key} after step {step + 1}")
            np.testing.assert_allclose(opt.state[key]["ax"], topt.state[tensor]["ax"].numpy(), rtol=tol, atol=tol,
                                       err_msg=f"ax of {key} after step {step + 1}")
    for key, tensor in (("layer.w", tw), ("layer.b", tb)):
        ours, theirs = opt.state[key], topt.state[tensor]
        assert set(ours) == set(theirs)
        assert ours["step"] == int(theirs["step"]) == STEPS
        for name in ("eta", "mu"):
            assert ours[name] == pytest.approx(theirs[name].item(), rel=tol)
    if kwargs.get("t0", 1e6) < STEPS - 2:  # the average differs from the last iterate once it averages
        assert not np.allclose(opt.state["layer.w"]["ax"], model.params["layer.w"])
    else:
        np.testing.assert_array_equal(opt.state["layer.w"]["ax"], model.params["layer.w"])
