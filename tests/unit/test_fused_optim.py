"""The optimizers' one-pass numba updates give the same bits as their NumPy form."""

import numpy as np
import pytest

from rnnlab import optim
from rnnlab.optim import _fused

pytest.importorskip("numba")

CONFIGS = [
    ("sgd", {"lr": 0.3}),
    ("sgd", {"lr": 0.1, "weight_decay": 0.01}),
    ("sgd", {"lr": 0.1, "momentum": 0.9}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3, "weight_decay": 1e-3}),
    ("sgd", {"lr": 0.1, "momentum": 0.8, "nesterov": True}),
    ("adam", {"lr": 1e-2}),
    ("adam", {"lr": 1e-2, "betas": (0.3, 0.9), "weight_decay": 0.1}),  # 1 - beta1 >= 0.5: lerp's other branch
    ("adam", {"lr": 1e-2, "amsgrad": True, "eps": 1e-6}),
    ("adamw", {"lr": 1e-2}),
    ("adamw", {"lr": 1e-2, "weight_decay": 0.3, "amsgrad": True}),
]


class _Params:
    def __init__(self, dtype, seed):
        rng = np.random.default_rng(seed)
        self.p = {"W": rng.standard_normal((64, 48)).astype(dtype), "b": rng.standard_normal(5000).astype(dtype),
                  "tiny": rng.standard_normal(7).astype(dtype)}
        self.g = {k: np.zeros_like(v) for k, v in self.p.items()}
        self.rng = rng

    def named_parameters(self):
        return iter(self.p.items())

    def named_grads(self):
        return iter(self.g.items())

    def new_grads(self):
        for g in self.g.values():
            g[...] = self.rng.standard_normal(g.shape) * self.rng.choice([1e-4, 1.0, 30.0])


def _run(name, kwargs, dtype, fused, monkeypatch):
    monkeypatch.setattr(_fused, "_KERNELS", None if fused else False)
    model, opt = _Params(dtype, 0), optim.get(name, **kwargs)
    for step in range(6):
        model.new_grads()
        opt.lr = kwargs["lr"] * (1 + 0.1 * step)
        opt.step(model)
    return model.p, opt.state_dict()


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, kwargs", CONFIGS)
def test_fused_update_equals_numpy_bit_for_bit(name, kwargs, dtype, threads, monkeypatch):
    """Also with the updates split in blocks between threads (small blocks, so that every
    parameter the kernels take is split)."""
    from rnnlab import _threads

    monkeypatch.setattr(_threads, "_threads", threads)
    monkeypatch.setattr(_fused, "_MIN_SPLIT", 100)
    fused_params, fused_state = _run(name, kwargs, dtype, True, monkeypatch)
    plain_params, plain_state = _run(name, kwargs, dtype, False, monkeypatch)
    for key in plain_params:
        np.testing.assert_array_equal(fused_params[key], plain_params[key], err_msg=key)
    assert fused_state.keys() == plain_state.keys()
    for key, value in plain_state.items():
        np.testing.assert_array_equal(fused_state[key], value, err_msg=key)


def test_kernels_are_used_for_large_contiguous_parameters(monkeypatch):
    monkeypatch.setattr(_fused, "_KERNELS", None)
    p = np.zeros(5000, np.float32)
    assert _fused.usable(p, np.zeros_like(p))
    assert not _fused.usable(p[:10], np.zeros(10, np.float32))  # small: NumPy
    assert not _fused.usable(p, np.zeros(5000))  # mixed dtypes
    assert not _fused.usable(p[::2], np.zeros(2500, np.float32))  # strided


def test_disabled_by_environment(monkeypatch):
    monkeypatch.setattr(_fused, "_KERNELS", None)
    monkeypatch.setenv("RNNLAB_FUSED_OPTIM", "0")
    assert _fused.kernels() is None
    p = np.zeros(5000, np.float32)
    assert not _fused.usable(p, np.zeros_like(p))
