"""rnnlab.optim.ASGD beyond the shared optimizer tests of test_optim.py: the average by hand, starting it, and
its state dict (``t0`` and the per-parameter numbers ``eta`` and ``mu``); swapping the average in and out is
tested with the moving average in test_optim_ema.py."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.optim import ASGD


class Model:
    def __init__(self, rng, dtype=np.float64):
        self.params = {"a.w": rng.normal(size=(3, 4)).astype(dtype), "a.b": rng.normal(size=4).astype(dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.rng = rng

    def named_parameters(self):
        yield from self.params.items()

    def named_grads(self):
        yield from self.grads.items()

    def new_grads(self):
        for g in self.grads.values():
            g[...] = self.rng.normal(size=g.shape)


def test_the_average_is_the_mean_of_the_iterates_from_t0_plus_2(rng):
    model, t0 = Model(rng), 3
    opt = ASGD(lr=0.1, lambd=0.0, t0=t0)
    iterates = []
    for _ in range(9):
        model.new_grads()
        opt.step(model)
        iterates.append(model.params["a.w"].copy())
    np.testing.assert_allclose(opt.state["a.w"]["ax"], np.mean(iterates[t0 + 1:], axis=0), rtol=1e-13, atol=1e-15)
    assert opt.state["a.w"]["eta"] == 0.1 and opt.state["a.w"]["mu"] == 1 / (9 - t0)


def test_start_averaging_sets_t0_to_the_steps_so_far(rng):
    model = Model(rng)
    opt = ASGD(lr=0.1, lambd=0.0)
    assert not opt.averaging and opt.steps == 0
    for _ in range(4):
        model.new_grads()
        opt.step(model)
    np.testing.assert_array_equal(opt.state["a.w"]["ax"], model.params["a.w"])  # a copy until it averages
    opt.start_averaging()
    assert opt.t0 == 4.0 and opt.averaging and opt.get_config()["t0"] == 4.0
    iterates = []
    for _ in range(4):
        model.new_grads()
        opt.step(model)
        iterates.append(model.params["a.w"].copy())
    np.testing.assert_allclose(opt.state["a.w"]["ax"], np.mean(iterates[1:], axis=0), rtol=1e-13, atol=1e-15)


def test_state_dict_holds_t0_and_the_numbers_and_resumes_bit_for_bit(rng, tmp_path):
    model = Model(rng)
    opt = ASGD(lr=0.1, lambd=0.01)
    for _ in range(3):
        model.new_grads()
        opt.step(model)
    opt.start_averaging()
    for _ in range(3):
        model.new_grads()
        opt.step(model)
    sd = opt.state_dict()
    assert sd["t0"] == 3.0 and isinstance(sd["state.a.w.eta"], float) and isinstance(sd["state.a.w.mu"], float)
    assert isinstance(sd["state.a.w.step"], int)
    np.savez(tmp_path / "opt.npz", **sd)
    with np.load(tmp_path / "opt.npz", allow_pickle=False) as data:
        loaded = {k: data[k] for k in data.files}
    restored = ASGD(lr=0.1, lambd=0.01)  # the configured t0 (1e6) gives way to the saved one
    restored.load_state_dict(loaded)
    assert restored.t0 == 3.0 and restored.state["a.w"]["mu"] == opt.state["a.w"]["mu"]
    twin = Model(np.random.default_rng(0))
    twin.params = {k: v.copy() for k, v in model.params.items()}
    twin.rng = np.random.default_rng(7)
    model.rng = np.random.default_rng(7)
    for _ in range(3):
        model.new_grads()
        opt.step(model)
        twin.new_grads()
        restored.step(twin)
    for k in model.params:
        np.testing.assert_array_equal(twin.params[k], model.params[k])
        np.testing.assert_array_equal(restored.state[k]["ax"], opt.state[k]["ax"])


def test_load_state_dict_errors_name_what_is_wrong(rng):
    model = Model(rng)
    opt = ASGD(lr=0.1)
    model.new_grads()
    opt.step(model)
    sd = opt.state_dict()
    with pytest.raises(ValueError, match=r"state_dict must contain 't0' \(an ASGD state\), got keys \['lr', "):
        ASGD().load_state_dict({k: v for k, v in sd.items() if k != "t0"})
    with pytest.raises(ValueError, match=r"state_dict lacks \['mu'\] for parameter 'a.w'"):
        ASGD().load_state_dict({k: v for k, v in sd.items() if k != "state.a.w.mu"})
    with pytest.raises(ValueError, match=r"t0 must be a finite number >= 0, got -1.0"):
        ASGD().load_state_dict({**sd, "t0": -1.0})
    with pytest.raises(TypeError, match=r"state.a.w.eta must be a number, got ndarray"):
        ASGD().load_state_dict({**sd, "state.a.w.eta": np.zeros(2)})
    with pytest.raises(TypeError, match=r"state_dict must be a dict, got list"):
        ASGD().load_state_dict([])
    fresh = ASGD()
    with pytest.raises(ValueError, match=r"unexpected state_dict key 'state.a.w.exp_avg'"):
        fresh.load_state_dict({**sd, "state.a.w.exp_avg": np.zeros(4)})
    assert fresh.state == {} and fresh.t0 == 1e6  # unchanged by a refused state dict
