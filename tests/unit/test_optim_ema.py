"""``use_ema`` on the optimizers (Keras' exponential moving average of the weights): the recurrence, the state
dict and a resume, swapping the average in and out, the config, and the refusals."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab import optim


class FakeModel:
    def __init__(self, rng, dtype=np.float64):
        self.params = {"w": rng.normal(size=(3, 4)).astype(dtype), "b": rng.normal(size=4).astype(dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def named_parameters(self):
        yield from self.params.items()

    def named_grads(self):
        yield from self.grads.items()


def set_gradients(model, step):
    for i, (name, g) in enumerate(model.grads.items()):  # a gradient that depends on the weights and the step
        g[...] = np.sin(model.params[name] * (i + 1) + step)


NAMES = ["sgd", "adam", "adamw", "rmsprop", "adagrad"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.99, 1.0])
def test_the_average_follows_its_recurrence(rng, name, momentum):
    model = FakeModel(rng)
    opt = optim.get(name, lr=0.05, use_ema=True, ema_momentum=momentum)
    plain = optim.get(name, lr=0.05)
    twin = FakeModel(np.random.default_rng(0))
    twin.params = {k: v.copy() for k, v in model.params.items()}
    expected = None
    for step in range(6):
        set_gradients(model, step)
        set_gradients(twin, step)
        opt.step(model)
        plain.step(twin)
        for k in model.params:  # the average does not change the trajectory
            np.testing.assert_array_equal(model.params[k], twin.params[k])
        if expected is None:
            expected = {k: v.copy() for k, v in model.params.items()}
        else:
            expected = {k: momentum * expected[k] + (1 - momentum) * model.params[k] for k in expected}
        for k in expected:
            np.testing.assert_allclose(opt.state[k]["ema"], expected[k], rtol=1e-14, atol=1e-15)


def test_float32_rounds_the_momentum_first_as_keras(rng):
    model = FakeModel(rng, np.float32)
    opt = optim.SGD(lr=0.1, use_ema=True, ema_momentum=0.99)
    set_gradients(model, 0)
    opt.step(model)
    before = opt.state["w"]["ema"].copy()
    set_gradients(model, 1)
    opt.step(model)
    m = np.float32(0.99)
    expected = before * m + model.params["w"] * (np.float32(1) - m)
    np.testing.assert_array_equal(opt.state["w"]["ema"], expected)
    assert opt.state["w"]["ema"].dtype == np.float32


@pytest.mark.parametrize("name", NAMES)
def test_a_resumed_optimizer_continues_bit_for_bit(rng, name):
    def run(steps, model, opt):
        for step in steps:
            set_gradients(model, step)
            opt.step(model)

    model = FakeModel(rng)
    start = {k: v.copy() for k, v in model.params.items()}
    opt = optim.get(name, lr=0.05, use_ema=True, ema_momentum=0.9)
    run(range(8), model, opt)
    other = FakeModel(rng)
    other.params = {k: v.copy() for k, v in start.items()}
    first = optim.get(name, lr=0.05, use_ema=True, ema_momentum=0.9)
    run(range(4), other, first)
    saved = {k: np.array(v) for k, v in first.state_dict().items()}  # as np.load returns them
    assert {"state.w.ema", "state.b.ema"} <= saved.keys()
    resumed = optim.get(name, lr=0.05, use_ema=True, ema_momentum=0.9)
    resumed.load_state_dict(saved)
    run(range(4, 8), other, resumed)
    for k in start:
        np.testing.assert_array_equal(other.params[k], model.params[k])
        np.testing.assert_array_equal(resumed.state[k]["ema"], opt.state[k]["ema"])


def test_a_state_without_the_average_is_refused_when_it_is_kept(rng):
    model = FakeModel(rng)
    plain = optim.Adam()
    set_gradients(model, 0)
    plain.step(model)
    with pytest.raises(ValueError, match=r"state_dict lacks \['ema'\] for parameter 'w'"):
        optim.Adam(use_ema=True).load_state_dict(plain.state_dict())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("make, buffer, description", [
    (lambda: optim.Adam(lr=0.1, use_ema=True, ema_momentum=0.5), "ema",
     "the exponential moving average of the weights (ema_momentum 0.5)"),
    (lambda: optim.ASGD(lr=0.1, t0=0), "ax", "the weights averaged since step 2"),
], ids=["ema", "asgd"])
def test_swap_average_twice_restores_both_and_load_average_copies(rng, dtype, make, buffer, description):
    model = FakeModel(rng, dtype)
    opt = make()
    assert opt.keeps_average and opt.steps == 0
    opt.swap_average(model)  # before any step: nothing to swap
    for step in range(5):
        set_gradients(model, step)
        opt.step(model)
    assert opt.averaging and opt.steps == 5
    raw = {k: v.copy() for k, v in model.params.items()}
    avg = {k: opt.state[k][buffer].copy() for k in raw}
    arrays = dict(model.params)
    opt.swap_average(model)
    for k in raw:
        assert model.params[k] is arrays[k]  # in place: the layers keep their arrays
        np.testing.assert_array_equal(model.params[k], avg[k])
        np.testing.assert_array_equal(opt.state[k][buffer], raw[k])
        assert not np.array_equal(raw[k], avg[k])
    opt.swap_average(model)
    for k in raw:
        np.testing.assert_array_equal(model.params[k], raw[k])
        np.testing.assert_array_equal(opt.state[k][buffer], avg[k])
    opt.load_average(model)
    for k in raw:
        np.testing.assert_array_equal(model.params[k], avg[k])
        np.testing.assert_array_equal(opt.state[k][buffer], avg[k])
    assert opt.describe_average() == description


def test_without_ema_nothing_is_kept_or_swapped(rng):
    model = FakeModel(rng)
    opt = optim.Adam()
    set_gradients(model, 0)
    opt.step(model)
    raw = {k: v.copy() for k, v in model.params.items()}
    opt.swap_average(model)
    opt.load_average(model)
    assert not opt.keeps_average and not opt.averaging and "ema" not in opt.state["w"]
    for k in raw:
        np.testing.assert_array_equal(model.params[k], raw[k])


def test_config_round_trip():
    opt = optim.Adam(lr=0.01, use_ema=True, ema_momentum=0.999)
    config = opt.get_config()
    assert config["use_ema"] is True and config["ema_momentum"] == 0.999
    again = optim.Adam.from_config(config)
    assert again.use_ema and again.ema_momentum == 0.999
    assert "use_ema" not in optim.Adam().get_config()  # unchanged when unused
    assert repr(optim.SGD(lr=0.1)) == "SGD(lr=0.1, momentum=0.0, nesterov=False, weight_decay=0.0, dampening=0.0)"


@pytest.mark.parametrize("kwargs, error, message", [
    ({"use_ema": 1}, TypeError, "use_ema must be a bool"),
    ({"use_ema": True, "ema_momentum": 1.5}, ValueError, "ema_momentum"),
    ({"use_ema": True, "ema_momentum": -0.1}, ValueError, "ema_momentum"),
])
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        optim.Adam(**kwargs)


def test_asgd_keeps_its_own_average():
    with pytest.raises(ValueError, match=r"ASGD keeps its own average of the weights \(ax\); use_ema is for the "
                                         r"other optimizers, got use_ema=True"):
        optim.ASGD(use_ema=True)
    assert optim.ASGD().keeps_average
