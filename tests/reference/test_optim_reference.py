"""rnnlab.optim against torch.optim: ten steps of every algorithm on the same fake model, float64.

The model has two parameters and the gradient of ``f(w, b) = 1/2 sum w * (A w) + 1/4 sum b^4 - t.b``,
so the gradients change at every step; each side computes them from its own current parameters.
After every step the parameters (and at the end the optimizer buffers, which share PyTorch's
names) must agree to 1e-10.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab import optim

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.reference

STEPS = 10
TOL = 1e-10


class FakeModel:
    """Parameters ``w`` (4, 3), ``b`` (5,) behind the ``named_parameters``/``named_grads`` protocol."""

    def __init__(self, w, b, A, t):
        self.params = {"layer.w": w.copy(), "layer.b": b.copy()}
        self.grads = {key: np.zeros_like(value) for key, value in self.params.items()}
        self.A, self.t = A, t

    def compute_grads(self):
        gw, gb = gradients(self.params["layer.w"], self.params["layer.b"], self.A, self.t)
        self.grads["layer.w"][...] = gw
        self.grads["layer.b"][...] = gb

    def named_parameters(self):
        yield from self.params.items()

    def named_grads(self):
        yield from self.grads.items()


def gradients(w, b, A, t):
    return A @ w, b**3 - t


def problem(rng):
    m = rng.normal(size=(4, 4))
    return rng.normal(size=(4, 3)), rng.normal(size=5), m @ m.T / 4 + np.eye(4), rng.normal(size=5)


CASES = [
    ("sgd", {"lr": 0.05}),
    ("sgd", {"lr": 0.05, "momentum": 0.9}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "dampening": 0.5, "weight_decay": 0.1}),
    ("sgd", {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    ("sgd", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.05}),
    ("adam", {}),
    ("adam", {"lr": 0.1, "betas": (0.8, 0.99), "eps": 1e-6}),
    ("adam", {"lr": 0.1, "weight_decay": 0.1}),
    ("adam", {"lr": 0.1, "amsgrad": True}),
    ("adam", {"lr": 0.1, "betas": (0.3, 0.5), "weight_decay": 0.05, "amsgrad": True}),
    ("adamw", {}),
    ("adamw", {"lr": 0.1, "weight_decay": 0.5}),
    ("adamw", {"lr": 0.1, "weight_decay": 0.1, "amsgrad": True}),
    ("rmsprop", {}),
    ("rmsprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-6, "weight_decay": 0.1}),
    ("rmsprop", {"lr": 0.01, "momentum": 0.9}),
    ("rmsprop", {"lr": 0.01, "centered": True}),
    ("rmsprop", {"lr": 0.01, "alpha": 0.3, "momentum": 0.5, "centered": True, "weight_decay": 0.1}),
    ("adagrad", {}),
    ("adagrad", {"lr": 0.1, "lr_decay": 0.1}),
    ("adagrad", {"lr": 0.1, "weight_decay": 0.1, "initial_accumulator_value": 0.5, "eps": 1e-6}),
]
TORCH_CLASSES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop", "adagrad": "Adagrad"}


@pytest.mark.parametrize("name, kwargs", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_trajectory_matches_torch(name, kwargs, rng):
    w0, b0, A, t = problem(rng)
    model = FakeModel(w0, b0, A, t)
    opt = optim.get(name, **kwargs)

    tw = torch.tensor(w0, requires_grad=True)
    tb = torch.tensor(b0, requires_grad=True)
    torch_kwargs = {"lr": kwargs.get("lr", opt.lr), **kwargs}
    topt = getattr(torch.optim, TORCH_CLASSES[name])([tw, tb], foreach=False, **torch_kwargs)

    for step in range(STEPS):
        if step == 5:  # a schedule changing the learning rate mid-run
            opt.lr = opt.lr * 0.5
            for group in topt.param_groups:
                group["lr"] *= 0.5
        model.compute_grads()
        opt.step(model)
        gw, gb = gradients(tw.detach().numpy(), tb.detach().numpy(), A, t)
        tw.grad, tb.grad = torch.tensor(gw), torch.tensor(gb)
        topt.step()
        np.testing.assert_allclose(model.params["layer.w"], tw.detach().numpy(), rtol=TOL, atol=TOL,
                                   err_msg=f"step {step}")
        np.testing.assert_allclose(model.params["layer.b"], tb.detach().numpy(), rtol=TOL, atol=TOL,
                                   err_msg=f"step {step}")

    # the buffers too, under PyTorch's names (SGD without momentum keeps none)
    for key, tensor in (("layer.w", tw), ("layer.b", tb)):
        ours, theirs = opt.state[key], topt.state[tensor]
        for buffer, value in theirs.items():
            if buffer == "step":
                assert ours["step"] == int(value)
            elif value is not None:
                np.testing.assert_allclose(ours[buffer], value.numpy(), rtol=TOL, atol=TOL, err_msg=buffer)
        assert set(ours) <= set(theirs) | {"step"}


@pytest.mark.parametrize("ratio", [0.1, 0.9, 1.1])
def test_clip_grad_norm_matches_torch(ratio, rng):
    w0, b0, A, t = problem(rng)
    model = FakeModel(w0, b0, A, t)
    model.compute_grads()
    max_norm = ratio * np.sqrt(sum(np.sum(g**2) for _, g in model.named_grads()))
    tensors = [torch.tensor(w0, requires_grad=True), torch.tensor(b0, requires_grad=True)]
    for tensor, (_, g) in zip(tensors, model.named_grads()):
        tensor.grad = torch.tensor(g)
    expected = torch.nn.utils.clip_grad_norm_(tensors, max_norm)
    assert optim.clip_grad_norm(model, max_norm) == pytest.approx(expected.item(), rel=TOL)
    for tensor, (_, g) in zip(tensors, model.named_grads()):
        np.testing.assert_allclose(g, tensor.grad.numpy(), rtol=TOL, atol=TOL)


def test_clip_grad_value_matches_torch(rng):
    w0, b0, A, t = problem(rng)
    model = FakeModel(w0, b0, A, t)
    model.compute_grads()
    tensors = [torch.tensor(w0, requires_grad=True), torch.tensor(b0, requires_grad=True)]
    for tensor, (_, g) in zip(tensors, model.named_grads()):
        tensor.grad = torch.tensor(g)
    torch.nn.utils.clip_grad_value_(tensors, 0.3)
    optim.clip_grad_value(model, 0.3)
    for tensor, (_, g) in zip(tensors, model.named_grads()):
        np.testing.assert_array_equal(g, tensor.grad.numpy())
