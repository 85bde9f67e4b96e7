"""rnnlab.kernels: choosing the implementation of the time loops' elementwise work, and the numba
kernels' own numerics (their agreement with the NumPy path and PyTorch is checked by the
gradcheck and reference suites, which run on both backends)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import rnnlab
from rnnlab.nn import kernels

needs_numba = pytest.mark.skipif(not kernels.available(), reason="numba is not installed")


def test_set_backend_and_use_restore_the_previous_one():
    before = kernels.backend()
    with kernels.use("numpy"):
        assert kernels.backend() == "numpy" and kernels.fused(np.float32) is None
    assert kernels.backend() == before


def test_an_unknown_backend_names_the_choices():
    with pytest.raises(ValueError, match=r"kernel backend must be one of 'auto', 'numba', 'numpy'; got 'cuda'"):
        kernels.set_backend("cuda")


def test_the_environment_variable_sets_the_backend_and_a_bad_value_is_named():
    env = dict(os.environ, RNNLAB_KERNELS="numpy")
    code = "from rnnlab import kernels; print(kernels.backend())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "numpy"
    env["RNNLAB_KERNELS"] = "fortran"  # the import works; the first layer call names the variable
    code = ("import numpy as np, rnnlab; from rnnlab import kernels; print(kernels.environment_error()); "
            "rnnlab.LSTM(2)(np.zeros((1, 2, 3), np.float32))")
    bad = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert "RNNLAB_KERNELS='fortran': kernel backend must be one of" in bad.stdout
    assert bad.returncode != 0 and "ValueError: environment variable RNNLAB_KERNELS='fortran'" in bad.stderr
    code = "import numpy as np, rnnlab; rnnlab.kernels.use('numpy'); print(rnnlab.LSTM(2)(np.ones((1, 2, 3))).shape)"
    chosen = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert chosen.stdout.strip() == "(1, 2)"  # a backend chosen in code replaces the refused one


def test_use_called_plainly_switches_the_backend_and_checks_the_name():
    before = kernels.backend()
    try:
        kernels.use("numpy")  # as the README writes it: no `with`
        assert kernels.backend() == "numpy" and kernels.fused(np.float32) is None
        with pytest.raises(ValueError, match=r"got 'cuda'"):
            kernels.use("cuda")
        with pytest.raises(ValueError, match=r"got 'cuda'"):
            with kernels.use("cuda"):
                pass
        assert kernels.backend() == "numpy"
        with kernels.use("auto"):
            assert kernels.backend() == "auto"
        assert kernels.backend() == "numpy"  # the block restores what was in force
    finally:
        kernels.set_backend(before)


@needs_numba
def test_auto_fuses_float32_only_and_numba_fuses_both():
    with kernels.use("auto"):
        assert kernels.fused(np.float32) is not None and kernels.fused(np.float64) is None
    with kernels.use("numba"):
        assert kernels.fused(np.float32) is not None and kernels.fused(np.float64) is not None


def test_numba_backend_without_numba_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(kernels, "available", lambda: False)
    with pytest.raises(ValueError, match=r"needs numba: pip install rnnlab\[fast\]"):
        kernels.set_backend("numba")
    with kernels.use("auto"):
        assert kernels.fused(np.float32) is None  # auto falls back to NumPy


# ---------------------------------------------------------------------------- tanh
def _float32_grid():
    dense = np.linspace(-12, 12, 2_000_001, dtype=np.float32)
    tiny = np.geomspace(1e-38, 1, 20_001).astype(np.float32)
    return np.concatenate([dense, tiny, -tiny, np.float32([0.0, -0.0, 9.0, -9.0, 1e30, -1e30])])


@needs_numba
def test_float32_tanh_is_within_6_ulps_bounded_and_odd():
    from rnnlab.nn.kernels import numba_kernels as _fused

    x = _float32_grid()
    y = np.empty_like(x)
    _fused.tanh_array(x, y)
    exact = np.tanh(x.astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    assert (np.abs(y - exact) / ulp).max() <= 6.0
    assert np.abs(y).max() <= 1.0
    y_neg = np.empty_like(x)
    _fused.tanh_array(-x, y_neg)
    np.testing.assert_array_equal(y_neg, -y)


@needs_numba
def test_float64_tanh_is_exact_to_rounding():
    from rnnlab.nn.kernels import numba_kernels as _fused

    x = np.linspace(-20, 20, 100_001)
    y = np.empty_like(x)
    _fused.tanh_array(x, y)
    np.testing.assert_allclose(y, np.tanh(x), rtol=1e-15, atol=0)  # libm against NumPy's SIMD tanh: 2 ulps


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_are_not_hidden(dtype, bad):
    """No nnan/ninf fast-math: NaN in gives NaN out, and tanh(+-inf) = +-1 as in NumPy."""
    from rnnlab.nn.kernels import numba_kernels as _fused

    x = np.array([bad, 0.5], dtype=dtype)
    y = np.empty_like(x)
    _fused.tanh_array(x, y)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(np.isnan(y), np.isnan(np.tanh(x)))
        np.testing.assert_allclose(y[~np.isnan(y)], np.tanh(x)[~np.isnan(y)], rtol=1e-6)


@needs_numba
@pytest.mark.parametrize("make", [rnnlab.LSTM, rnnlab.GRU, rnnlab.SimpleRNN])
def test_a_nan_weight_makes_nan_outputs_on_both_backends(make):
    """A NaN in a unit's bias makes that unit NaN from the first step, then every unit through W."""
    x = np.ones((2, 4, 3), dtype=np.float32)
    outputs = {}
    for backend in ("numpy", "numba"):
        layer = make(5, input_size=3, return_sequences=True, seed=0)
        layer.params["b"][0] = np.nan
        with kernels.use(backend), np.errstate(invalid="ignore"):
            outputs[backend] = layer(x)
    np.testing.assert_array_equal(np.isnan(outputs["numba"]), np.isnan(outputs["numpy"]))
    assert np.isnan(outputs["numba"][:, 1:]).all()


@needs_numba
@pytest.mark.parametrize("make", [rnnlab.LSTM, rnnlab.GRU, rnnlab.SimpleRNN])
def test_a_tape_from_one_backend_is_differentiated_by_the_other(rng, make):
    """Both paths leave the same quantities in the same buffers, so forward on one and backward on
    the other gives the gradients of either (float64: to rounding)."""
    layer = make(6, input_size=4, return_sequences=True, seed=0, dtype="float64")
    x = rng.standard_normal((3, 7, 4))
    dy = rng.standard_normal((3, 7, 6))
    grads = {}
    for fwd, bwd in (("numpy", "numpy"), ("numba", "numpy"), ("numpy", "numba")):
        layer.zero_grad()
        with kernels.use(fwd):
            layer(x)
        with kernels.use(bwd):
            dx = layer.backward(dy)
        grads[fwd, bwd] = dx, {k: v.copy() for k, v in layer.grads.items()}
    ref_dx, ref = grads["numpy", "numpy"]
    for key, (dx, g) in grads.items():
        np.testing.assert_allclose(dx, ref_dx, rtol=1e-12, atol=1e-13, err_msg=str(key))
        for name in ref:
            np.testing.assert_allclose(g[name], ref[name], rtol=1e-12, atol=1e-13, err_msg=f"{key} {name}")


@needs_numba
def test_the_layers_hand_the_kernels_contiguous_arrays_only():
    """numba compiles one version per memory layout, and loops over a strided ('A') array do not
    vectorise: a (B, H) time slice of a (B, T, H) gradient made the backward kernels 2-3x slower.
    Every layer configuration must reach the kernels with C-contiguous arrays."""
    from rnnlab.nn.kernels import numba_kernels as _fused

    rng = np.random.default_rng(0)
    with kernels.use("numba"):
        for make in (rnnlab.LSTM, rnnlab.GRU, rnnlab.SimpleRNN):
            for dtype in ("float32", "float64"):
                for layer in (make(5, input_size=3, return_sequences=True, seed=0, dtype=dtype),
                              make(5, input_size=3, return_state=True, seed=0, dtype=dtype),
                              make(5, input_size=3, go_backwards=True, return_sequences=True, seed=0, dtype=dtype),
                              rnnlab.Bidirectional(make(5, input_size=3, return_sequences=True, seed=0, dtype=dtype)),
                              rnnlab.stack(make, 5, 2, input_size=3, seed=0, dtype=dtype)):
                    for T in (1, 4):
                        x = rng.standard_normal((2, T, 3)).astype(dtype)
                        out = layer(x, training=True)
                        grads = [np.ones_like(o) for o in (out if isinstance(out, tuple) else (out,))]
                        layer.backward(*grads)
    names = ("lstm_forward", "lstm_backward", "gru_forward", "gru_backward", "elman_tanh_forward",
             "elman_tanh_backward")
    for name in names:
        signatures = getattr(_fused, name).signatures
        assert signatures, f"{name} never ran"
        for signature in signatures:
            layouts = [arg.layout for arg in signature if hasattr(arg, "layout")]
            assert set(layouts) == {"C"}, f"{name} compiled for layouts {layouts}"


# ---------------------------------------------------------------------------- the path each cell takes
# cell configuration -> (has a kernel, has the halved-weights NumPy form), written down independently
CONFIGS = {
    "rnn-tanh": (lambda: rnnlab.SimpleRNN(4, input_size=3), True, False),
    "rnn-relu": (lambda: rnnlab.SimpleRNN(4, input_size=3, activation="relu"), False, False),
    "lstm": (lambda: rnnlab.LSTM(4, input_size=3), True, True),
    "lstm-relu": (lambda: rnnlab.LSTM(4, input_size=3, candidate_activation="relu"), False, False),
    "gru": (lambda: rnnlab.GRU(4, input_size=3), True, False),
    "gru-v1": (lambda: rnnlab.GRU(4, input_size=3, reset_after=False), False, False),
}


@pytest.mark.parametrize("config", list(CONFIGS))
def test_the_path_is_chosen_from_the_configuration_the_backend_and_the_length(config):
    from rnnlab.nn.cells import Path

    make, has_kernel, has_halved = CONFIGS[config]
    cell = make().cell
    backends = ("numpy", "auto", "numba") if kernels.available() else ("numpy", "auto")
    for backend in backends:
        with kernels.use(backend):
            for dtype in (np.float32, np.float64):
                fused = kernels.fused(dtype) is not None
                for steps in (1, 5):
                    want = (Path.KERNEL if has_kernel and fused else
                            Path.HALVED if has_halved and steps > 1 else Path.NUMPY)
                    assert cell.path(dtype, steps) is want, (backend, dtype, steps)
                    # recording gradient norms: the LSTM's backward kernel cannot record ||dL/dc_t||
                    backward = want if want is not Path.KERNEL or config != "lstm" else (
                        Path.HALVED if steps > 1 else Path.NUMPY)
                    assert cell.path(dtype, steps, grad_norms=True) is backward, (backend, dtype, steps)


@needs_numba
def test_forward_and_backward_each_take_the_path_of_the_backend_in_force_at_their_call(rng):
    from rnnlab.nn.cells import Path

    layer = rnnlab.LSTM(4, input_size=3, return_sequences=True, seed=0, dtype="float64")
    x = rng.standard_normal((2, 5, 3))
    with kernels.use("numba"):
        y = layer(x)
    with kernels.use("numpy"):
        layer.backward(np.ones_like(y))
    scratch = layer._tape.scratch
    assert scratch.path is Path.KERNEL and scratch.backward_path is Path.HALVED
    layer.record_grad_norms = True
    with kernels.use("numba"):
        layer(x)
        layer.backward(np.ones_like(y))
    assert layer._tape.scratch.path is Path.KERNEL and layer._tape.scratch.backward_path is not Path.KERNEL
    assert layer.grad_norms["c"].any()
