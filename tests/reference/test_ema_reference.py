"""``use_ema`` against PyTorch and Keras: the exponential moving average of the weights that rnnlab's
optimizers keep, next to ``torch.optim.swa_utils.AveragedModel`` with ``get_ema_multi_avg_fn`` (beside
``torch.optim.Adam``) and Keras 3's ``use_ema`` (on ``keras.optimizers.SGD``, torch backend), over
twenty steps of the same gradients, with the learning rate halved mid-run."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab import optim

torch = pytest.importorskip("torch")

STEPS = 20
TOLERANCE = {np.float64: 1e-12, np.float32: 2e-6}


class FakeModel:
    def __init__(self, params):
        self.params = {k: v.copy() for k, v in params.items()}
        self.grads = {k: np.zeros_like(v) for k, v in params.items()}

    def named_parameters(self):
        yield from self.params.items()

    def named_grads(self):
        yield from self.grads.items()


def gradient(params: dict, step: int) -> dict:
    """A gradient that depends on the weights and the step (the same function on both sides)."""
    return {k: np.sin(params[k] * factor + 0.1 * step) for k, factor in (("w", 1.5), ("b", 2.5))}


def start(rng, dtype):
    return {"w": rng.normal(size=(4, 3)).astype(dtype), "b": rng.normal(size=5).astype(dtype)}


@pytest.fixture
def torch_default_dtype():
    """Set torch's default dtype to the case's (Adam keeps its step count as a tensor of that dtype)."""
    before = torch.get_default_dtype()
    yield lambda dtype: torch.set_default_dtype(torch.float64 if dtype == np.float64 else torch.float32)
    torch.set_default_dtype(before)


@pytest.mark.reference
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("decay", [0.9, 0.999])
def test_adam_ema_matches_torch_averaged_model(rng, dtype, decay, torch_default_dtype):
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    torch_default_dtype(dtype)
    params = start(rng, dtype)
    model = FakeModel(params)
    opt = optim.Adam(lr=0.05, use_ema=True, ema_momentum=decay)
    tmodel = torch.nn.ParameterDict({k: torch.nn.Parameter(torch.tensor(v)) for k, v in params.items()})
    topt = torch.optim.Adam(tmodel.parameters(), lr=0.05, foreach=False)
    ema = AveragedModel(tmodel, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=False)
    for step in range(STEPS):
        if step == 11:
            opt.lr *= 0.5
            topt.param_groups[0]["lr"] *= 0.5
        for k, g in gradient(model.params, step).items():
            model.grads[k][...] = g
        opt.step(model)
        for k, g in gradient({k: p.detach().numpy() for k, p in tmodel.items()}, step).items():
            tmodel[k].grad = torch.tensor(g)
        topt.step()
        ema.update_parameters(tmodel)
        for k in params:
            np.testing.assert_allclose(model.params[k], tmodel[k].detach().numpy(), rtol=TOLERANCE[dtype],
                                       atol=TOLERANCE[dtype])
            expected = ema.module[k].detach().numpy()
            np.testing.assert_allclose(opt.state[k]["ema"], expected, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


@pytest.fixture(scope="module")
def keras():
    """Keras 3 on the torch backend (as tests/reference/test_keras.py imports it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KERAS_BACKEND", "torch")
        keras = pytest.importorskip("keras")
        assert keras.backend.backend() == "torch", "Keras was imported with another backend before this module"
        yield keras


def numpy_of(variable) -> np.ndarray:
    """A Keras variable's value (on the torch backend, a torch parameter) as a NumPy array."""
    return variable.value.detach().numpy().copy()


@pytest.mark.keras
@pytest.mark.parametrize("momentum", [0.5, 0.99])
def test_sgd_ema_matches_keras_use_ema(keras, rng, momentum):
    params = start(rng, np.float32)
    model = FakeModel(params)
    opt = optim.SGD(lr=0.1, use_ema=True, ema_momentum=momentum)
    variables = [keras.Variable(v, name=k) for k, v in params.items()]
    kopt = keras.optimizers.SGD(learning_rate=0.1, use_ema=True, ema_momentum=momentum)
    kopt.build(variables)
    for step in range(STEPS):
        for k, g in gradient(model.params, step).items():
            model.grads[k][...] = g
        opt.step(model)
        values = {k: numpy_of(v) for k, v in zip(params, variables)}
        kopt.apply_gradients([(torch.tensor(g), v)
                              for g, v in zip(gradient(values, step).values(), variables)])
        for k, average in zip(params, kopt._model_variables_moving_average):
            np.testing.assert_allclose(opt.state[k]["ema"], numpy_of(average), rtol=2e-6,
                                       atol=2e-6)
    kopt.finalize_variable_values(variables)  # what Keras' fit does at the end: the average into the weights
    opt.load_average(model)
    for k, v in zip(params, variables):
        np.testing.assert_allclose(model.params[k], numpy_of(v), rtol=2e-6, atol=2e-6)
