"""Unit tests of rnnlab.optim: hyper-parameter checks, the step protocol, state dicts, clipping.

Trajectories are compared with ``torch.optim`` in tests/reference/test_optim_reference.py.
"""

from __future__ import annotations

import json
import math
import tracemalloc

import numpy as np
import pytest

from rnnlab import optim
from rnnlab.optim import (
    ASGD,
    SGD,
    Adagrad,
    Adam,
    AdamW,
    RMSprop,
    clip_grad_norm,
    clip_grad_value,
)


class FakeModel:
    """Parameters ``w`` (4, 3) and ``b`` (5,) with the gradient of ``f = 1/2 w.A w + 1/4 sum b^4 - t.b``."""

    def __init__(self, rng, size=(4, 3), dtype=np.float64):
        self.params = {"layer.w": rng.normal(size=size).astype(dtype), "layer.b": rng.normal(size=5).astype(dtype)}
        self.grads = {key: np.zeros_like(value) for key, value in self.params.items()}
        m = rng.normal(size=(size[0], size[0]))
        self.A = m @ m.T / size[0] + np.eye(size[0])
        self.t = rng.normal(size=5)

    def compute_grads(self):
        w, b = self.params["layer.w"], self.params["layer.b"]
        self.grads["layer.w"][...] = self.A @ w
        self.grads["layer.b"][...] = b**3 - self.t

    def named_parameters(self):
        yield from self.params.items()

    def named_grads(self):
        yield from self.grads.items()

    def copy(self):
        clone = object.__new__(FakeModel)
        clone.params = {k: v.copy() for k, v in self.params.items()}
        clone.grads = {k: v.copy() for k, v in self.grads.items()}
        clone.A, clone.t = self.A, self.t
        return clone


CONFIGS = [
    (SGD, {"lr": 0.1}),
    (SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    (SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    (Adam, {"lr": 0.05, "weight_decay": 0.01}),
    (Adam, {"lr": 0.05, "amsgrad": True}),
    (AdamW, {"lr": 0.05, "weight_decay": 0.1, "amsgrad": True}),
    (RMSprop, {"lr": 0.01, "momentum": 0.5, "centered": True, "weight_decay": 0.01}),
    (RMSprop, {"lr": 0.01}),
    (Adagrad, {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.01, "initial_accumulator_value": 0.1}),
    (ASGD, {"lr": 0.05, "lambd": 0.01, "alpha": 0.5, "t0": 2.0, "weight_decay": 0.01}),
    (ASGD, {"lr": 0.1, "lambd": 0.0, "nonmono": 5}),
]
CONFIG_IDS = [f"{cls.__name__}-{i}" for i, (cls, _) in enumerate(CONFIGS)]


# --------------------------------------------------------------------------- hyper-parameters
@pytest.mark.parametrize(
    "factory, exc, match",
    [
        (lambda: SGD(lr=-0.1), ValueError, r"lr must be a finite number >= 0, got -0.1"),
        (lambda: SGD(lr=float("nan")), ValueError, r"lr must be a finite number >= 0, got nan"),
        (lambda: SGD(lr="0.1"), TypeError, r"lr must be a number, got str '0.1'"),
        (lambda: SGD(lr=True), TypeError, r"lr must be a number, got bool True"),
        (lambda: SGD(0.1, momentum=-0.5), ValueError, r"momentum must be in \[0, 1\), got -0.5"),
        (lambda: SGD(0.1, momentum=1.0), ValueError, r"momentum must be in \[0, 1\), got 1.0"),
        (lambda: SGD(0.1, dampening=1.5), ValueError, r"dampening must be in \[0, 1\], got 1.5"),
        (lambda: SGD(0.1, weight_decay=-1e-4), ValueError, r"weight_decay must be a finite number >= 0, got -0.0001"),
        (lambda: SGD(0.1, nesterov=True), ValueError,
         r"nesterov=True requires momentum > 0 and dampening = 0, got momentum=0.0"),
        (lambda: SGD(0.1, momentum=0.9, dampening=0.1, nesterov=True), ValueError,
         r"nesterov=True requires .*dampening=0.1"),
        (lambda: SGD(0.1, momentum=0.9, nesterov="yes"), TypeError, r"nesterov must be a bool, got str 'yes'"),
        (lambda: Adam(betas=(1.0, 0.999)), ValueError, r"betas\[0\] must be in \[0, 1\), got 1.0"),
        (lambda: Adam(betas=(0.9, -0.1)), ValueError, r"betas\[1\] must be in \[0, 1\), got -0.1"),
        (lambda: Adam(betas=0.9), TypeError, r"betas must be a pair \(beta1, beta2\), got 0.9"),
        (lambda: Adam(betas=(0.9, 0.99, 0.999)), TypeError, r"betas must be a pair .*got \(0.9, 0.99, 0.999\)"),
        (lambda: Adam(eps=-1e-8), ValueError, r"eps must be a finite number >= 0, got -1e-08"),
        (lambda: Adam(amsgrad=1), TypeError, r"amsgrad must be a bool, got int 1"),
        (lambda: AdamW(weight_decay=-0.01), ValueError, r"weight_decay must be a finite number >= 0, got -0.01"),
        (lambda: RMSprop(alpha=1.5), ValueError, r"alpha must be in \[0, 1\), got 1.5"),
        (lambda: RMSprop(momentum=2.0), ValueError, r"momentum must be in \[0, 1\), got 2.0"),
        (lambda: RMSprop(centered=None), TypeError, r"centered must be a bool, got NoneType None"),
        (lambda: Adagrad(lr_decay=-0.1), ValueError, r"lr_decay must be a finite number >= 0, got -0.1"),
        (lambda: Adagrad(initial_accumulator_value=-1), ValueError,
         r"initial_accumulator_value must be .*>= 0, got -1.0"),
        (lambda: Adagrad(eps=float("inf")), ValueError, r"eps must be a finite number >= 0, got inf"),
        (lambda: ASGD(lambd=-1e-4), ValueError, r"lambd must be a finite number >= 0, got -0.0001"),
        (lambda: ASGD(alpha="0.75"), TypeError, r"alpha must be a number, got str '0.75'"),
        (lambda: ASGD(t0=float("nan")), ValueError, r"t0 must be a finite number >= 0, got nan"),
        (lambda: ASGD(nonmono=0), ValueError, r"nonmono must be a positive int, got 0"),
        (lambda: ASGD(nonmono=2.5), TypeError, r"nonmono must be a positive int, got float 2.5"),
    ],
)
def test_bad_hyper_parameters(factory, exc, match):
    with pytest.raises(exc, match=match):
        factory()


def test_lr_is_settable_and_checked(rng):
    opt = SGD(0.1)
    with pytest.raises(ValueError, match=r"lr must be a finite number >= 0, got -1.0"):
        opt.lr = -1.0
    assert opt.lr == 0.1
    model = FakeModel(rng)
    model.compute_grads()
    before = model.params["layer.w"].copy()
    opt.lr = 0.25
    opt.step(model)
    np.testing.assert_allclose(model.params["layer.w"], before - 0.25 * model.grads["layer.w"], rtol=1e-15)
    opt.lr = 0.0  # a schedule may start from zero
    after = {k: v.copy() for k, v in model.params.items()}
    opt.step(model)
    for key in after:
        np.testing.assert_array_equal(model.params[key], after[key])


# --------------------------------------------------------------------------- lookup and config
@pytest.mark.parametrize("name, cls", [("sgd", SGD), ("adam", Adam), ("adamw", AdamW), ("rmsprop", RMSprop),
                                       ("adagrad", Adagrad), ("asgd", ASGD)])
def test_get_by_name(name, cls):
    opt = optim.get(name, lr=0.5)
    assert type(opt) is cls and opt.lr == 0.5


def test_get_errors():
    with pytest.raises(ValueError,
                       match=r"optimizer must be one of 'sgd', 'adam', 'adamw', 'rmsprop', 'adagrad', 'asgd'; "
                             r"got 'adamax'"):
        optim.get("adamax")
    with pytest.raises(TypeError, match=r"optimizer must be a name \(str\) or an instance of Optimizer, got float 0.1"):
        optim.get(0.1)
    opt = Adam()
    assert optim.get(opt) is opt
    with pytest.raises(ValueError, match=r"optimizer is already a Adam instance; cannot apply \{'lr': 0.1\}"):
        optim.get(opt, lr=0.1)


@pytest.mark.parametrize("cls, kwargs", CONFIGS, ids=CONFIG_IDS)
def test_config_round_trip(cls, kwargs):
    opt = cls(**kwargs)
    config = json.loads(json.dumps(opt.get_config()))
    clone = cls.from_config(config)
    assert clone.get_config() == opt.get_config()
    for key, value in kwargs.items():
        assert opt.get_config()[key] == value
    assert repr(clone) == repr(opt)


def test_adamw_defaults_to_decoupled_decay():
    assert AdamW().weight_decay == 0.01 and Adam().weight_decay == 0.0


# --------------------------------------------------------------------------- step protocol
@pytest.mark.parametrize("cls, kwargs", CONFIGS, ids=CONFIG_IDS)
def test_step_updates_in_place_and_leaves_grads_alone(cls, kwargs, rng):
    model = FakeModel(rng)
    arrays = dict(model.params)
    before = {k: v.copy() for k, v in model.params.items()}
    opt = cls(**kwargs)
    for _ in range(2):
        model.compute_grads()
        grads = {k: v.copy() for k, v in model.grads.items()}
        opt.step(model)
        for key, g in grads.items():
            np.testing.assert_array_equal(model.grads[key], g)
    for key, value in model.named_parameters():
        assert value is arrays[key]
        assert not np.array_equal(value, before[key])
    assert set(opt.state) == {"layer.w", "layer.b"}
    assert all(state["step"] == 2 for state in opt.state.values())


@pytest.mark.parametrize("cls, kwargs", CONFIGS, ids=CONFIG_IDS)
def test_step_allocates_no_parameter_sized_arrays(cls, kwargs, rng):
    model = FakeModel(rng, size=(200, 250))
    opt = cls(**kwargs)
    model.compute_grads()
    opt.step(model)  # first step creates the state and the workspace
    model.compute_grads()
    tracemalloc.start()
    try:
        opt.step(model)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < model.params["layer.w"].nbytes / 10


def test_float32_parameters_stay_float32(rng):
    model = FakeModel(rng, dtype=np.float32)
    model.compute_grads()
    for cls, kwargs in CONFIGS:
        cls(**kwargs).step(model)
    assert all(p.dtype == np.float32 for _, p in model.named_parameters())


def test_sgd_nesterov_by_hand(rng):
    """Two steps of SGD(nesterov) written out from the formula."""
    model = FakeModel(rng)
    lr, mu, wd = 0.1, 0.9, 0.01
    opt = SGD(lr, momentum=mu, nesterov=True, weight_decay=wd)
    w = model.params["layer.w"].copy()
    model.compute_grads()
    g1 = model.grads["layer.w"] + wd * w
    opt.step(model)
    w1 = w - lr * (g1 + mu * g1)
    np.testing.assert_allclose(model.params["layer.w"], w1, rtol=1e-14)
    model.compute_grads()
    g2 = model.grads["layer.w"] + wd * w1
    buf = mu * g1 + g2
    opt.step(model)
    np.testing.assert_allclose(model.params["layer.w"], w1 - lr * (g2 + mu * buf), rtol=1e-14)


def test_adam_first_step_is_lr_times_sign(rng):
    """With bias correction, Adam's first step is lr * g / (|g| + eps) ~ lr * sign(g)."""
    model = FakeModel(rng)
    before = model.params["layer.b"].copy()
    model.compute_grads()
    Adam(lr=0.01).step(model)
    np.testing.assert_allclose(before - model.params["layer.b"], 0.01 * np.sign(model.grads["layer.b"]), rtol=1e-6)


class MismatchedModel:
    def __init__(self, params, grads):
        self._params, self._grads = params, grads

    def named_parameters(self):
        return iter(self._params)

    def named_grads(self):
        return iter(self._grads)


def test_step_checks_the_model_protocol():
    w = np.zeros(3)
    with pytest.raises(ValueError,
                       match=r"same names in the same order.*got parameters \['a', 'b'\] and gradients \['b', 'a'\]"):
        SGD(0.1).step(MismatchedModel([("a", w), ("b", w)], [("b", w), ("a", w)]))
    with pytest.raises(ValueError,
                       match=r"gradient of 'a' must be an ndarray of the parameter's shape \(3,\), got \(4,\)"):
        SGD(0.1).step(MismatchedModel([("a", w)], [("a", np.zeros(4))]))
    with pytest.raises(TypeError, match=r"parameter 'a' must be a float ndarray, got ndarray int64"):
        SGD(0.1).step(MismatchedModel([("a", np.zeros(3, int))], [("a", np.zeros(3, int))]))
    unchanged = np.ones(3)
    with pytest.raises(ValueError):  # a bad entry late in the list: nothing is updated
        SGD(0.1).step(MismatchedModel([("a", unchanged), ("b", w)], [("a", np.ones(3)), ("b", np.zeros(2))]))
    np.testing.assert_array_equal(unchanged, 1.0)


# --------------------------------------------------------------------------- state dict
def _run(opt, model, steps):
    for _ in range(steps):
        model.compute_grads()
        opt.step(model)


@pytest.mark.parametrize("cls, kwargs", CONFIGS, ids=CONFIG_IDS)
def test_state_dict_round_trip_through_npz_continues_identically(cls, kwargs, rng, tmp_path):
    model = FakeModel(rng)
    opt = cls(**kwargs)
    _run(opt, model, 3)
    opt.lr = opt.lr * 0.5  # as a schedule would
    np.savez(tmp_path / "opt.npz", **opt.state_dict())
    with np.load(tmp_path / "opt.npz", allow_pickle=False) as data:
        loaded = {key: data[key] for key in data.files}
    restored = cls.from_config(opt.get_config())
    restored.load_state_dict(loaded)
    assert restored.lr == opt.lr
    twin = model.copy()
    _run(opt, model, 4)
    _run(restored, twin, 4)
    for key, value in model.named_parameters():
        np.testing.assert_array_equal(twin.params[key], value)


def test_state_dict_is_flat_numbers_and_copies(rng):
    model = FakeModel(rng)
    opt = Adam(amsgrad=True)
    _run(opt, model, 2)
    sd = opt.state_dict()
    assert set(sd) == {"lr"} | {f"state.layer.{p}.{k}" for p in "wb"
                                for k in ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")}
    assert sd["state.layer.w.step"] == 2 and isinstance(sd["state.layer.w.step"], int)
    assert isinstance(sd["lr"], float)
    sd["state.layer.w.exp_avg"][...] = 123.0
    assert not np.any(opt.state["layer.w"]["exp_avg"] == 123.0)


def test_load_state_dict_is_strict_and_atomic(rng):
    model = FakeModel(rng)
    sgd = SGD(0.1, momentum=0.9)
    _run(sgd, model, 1)
    good = sgd.state_dict()
    target = SGD(0.3, momentum=0.9)
    bad_cases = [
        ({**good, "state.layer.w.bogus": np.zeros(3)}, ValueError, r"unexpected state_dict key 'state.layer.w.bogus'"),
        ({**good, "momentum": 0.9}, ValueError, r"unexpected state_dict key 'momentum'"),
        ({k: v for k, v in good.items() if k != "state.layer.b.momentum_buffer"}, ValueError,
         r"state_dict lacks \['momentum_buffer'\] for parameter 'layer.b'"),
        ({k: v for k, v in good.items() if k != "lr"}, ValueError, r"state_dict must contain 'lr'"),
        ({**good, "lr": -1.0}, ValueError, r"lr must be a finite number >= 0, got -1.0"),
        ({**good, "state.layer.w.step": 1.5}, ValueError,
         r"state.layer.w.step must be a non-negative integer, got 1.5"),
        (Adam().state_dict() | {"state.x.step": 1, "state.x.exp_avg": np.zeros(1), "state.x.exp_avg_sq": np.zeros(1)},
         ValueError, r"unexpected state_dict key 'state.x.exp_avg'"),
    ]
    for state_dict, exc, match in bad_cases:
        with pytest.raises(exc, match=match):
            target.load_state_dict(state_dict)
        assert target.lr == 0.3 and target.state == {}
    with pytest.raises(TypeError, match=r"state_dict must be a dict, got list"):
        target.load_state_dict([])


def test_loaded_state_of_the_wrong_shape_is_caught_at_step(rng):
    opt = Adam()
    other = FakeModel(rng, size=(2, 3))
    _run(opt, other, 1)
    fresh = Adam()
    fresh.load_state_dict(opt.state_dict())
    model = FakeModel(rng)
    model.compute_grads()
    with pytest.raises(ValueError, match=r"optimizer state 'exp_avg' of parameter 'layer.w' has shape \(2, 3\), "
                                         r"but the parameter has shape \(4, 3\)"):
        fresh.step(model)


# --------------------------------------------------------------------------- clipping
def _global_norm(model):
    return math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for _, g in model.named_grads()))


@pytest.mark.parametrize("ratio", [1 / 3, 0.9])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_norm_clips_to_max_norm(dtype, ratio, rng):
    model = FakeModel(rng, dtype=dtype)
    model.compute_grads()
    norm = _global_norm(model)
    directions = {k: g / np.linalg.norm(g) for k, g in model.named_grads()}
    max_norm = norm * ratio
    returned = clip_grad_norm(model, max_norm)
    assert isinstance(returned, float)
    assert returned == pytest.approx(norm, rel=1e-6 if dtype == np.float32 else 1e-14)
    assert _global_norm(model) <= max_norm
    assert _global_norm(model) == pytest.approx(max_norm, rel=1e-5)
    for key, g in model.named_grads():
        assert g.dtype == dtype
        np.testing.assert_allclose(g / np.linalg.norm(g), directions[key], rtol=1e-5)


def test_clip_grad_norm_below_threshold_changes_nothing(rng):
    model = FakeModel(rng)
    model.compute_grads()
    before = {k: v.copy() for k, v in model.named_grads()}
    norm = clip_grad_norm(model, 10 * _global_norm(model))
    assert norm == pytest.approx(_global_norm(model), rel=1e-14)
    for key, g in model.named_grads():
        np.testing.assert_array_equal(g, before[key])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_clip_grad_norm_names_the_non_finite_parameter(bad, rng):
    model = FakeModel(rng)
    model.compute_grads()
    model.grads["layer.b"][3] = bad
    before = model.grads["layer.w"].copy()
    with pytest.raises(ValueError,
                       match=rf"gradient of parameter 'layer.b' contains NaN or inf \({bad} at index \(3,\)\)"):
        clip_grad_norm(model, 1e-3)
    np.testing.assert_array_equal(model.grads["layer.w"], before)


def test_clip_grad_norm_survives_float32_overflow_of_squares(rng):
    model = FakeModel(rng, dtype=np.float32)
    model.grads["layer.w"][...] = 1e30  # finite, but 1e60 overflows float32
    model.grads["layer.b"][...] = 0.0
    norm = clip_grad_norm(model, 1.0)
    assert norm == pytest.approx(1e30 * math.sqrt(12), rel=1e-6)
    assert _global_norm(model) <= 1.0


def test_clip_grad_norm_bad_max_norm(rng):
    for value, exc, match in [(0.0, ValueError, r"max_norm must be a finite number > 0, got 0.0"),
                              (-1, ValueError, r"max_norm must be a finite number > 0, got -1.0"),
                              ("1", TypeError, r"max_norm must be a number, got str '1'")]:
        with pytest.raises(exc, match=match):
            clip_grad_norm(FakeModel(rng), value)


def test_clip_grad_value(rng):
    model = FakeModel(rng)
    model.compute_grads()
    before = {k: v.copy() for k, v in model.named_grads()}
    arrays = dict(model.grads)
    clip_grad_value(model, 0.5)
    for key, g in model.named_grads():
        assert g is arrays[key]
        np.testing.assert_array_equal(g, np.minimum(np.maximum(before[key], -0.5), 0.5))
    with pytest.raises(ValueError, match=r"clip_value must be a finite number > 0, got -0.5"):
        clip_grad_value(model, -0.5)
