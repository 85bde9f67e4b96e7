"""``rnnlab.interop`` and Keras 3 (torch backend): from_keras / to_keras, .keras files, against Keras itself.

Every recurrent option is run in both libraries with the same weights and the same random projection loss
``sum(output * R) + sum(state * R_s)``; outputs, final states, ``dx`` and every weight gradient must agree
(Keras's gradients come from torch's autograd: on the torch backend a Keras variable is a torch
``Parameter``). The expected Keras layout is written out here from the documented map, independently
of :mod:`rnnlab.io.keras`::

    kernel = U[blocks].T    recurrent_kernel = W[blocks].T    bias = b[blocks]
    GRU reset_after: bias = [b[blocks]; [0, 0, b_hn][blocks]]   (gradient: [db; [db_r, db_z, db_hn]][blocks])

with ``blocks`` LSTM i, f, c, o (the same as rnnlab's) and GRU z, r, h (rnnlab's r, z, n with the first
two swapped).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import rnnlab
from rnnlab.interop import from_keras, load_keras, save_keras, to_keras  # the 0.1.0 path, as users write it

pytest.importorskip("torch")
pytest.importorskip("h5py")
pytestmark = pytest.mark.keras

B, T, D, H = 3, 5, 4, 3
KERAS_BLOCKS = {"SimpleRNN": [0], "LSTM": [0, 1, 2, 3], "GRU": [1, 0, 2]}
TOL = {"float64": 1e-12, "float32": 2e-5}


@pytest.fixture(scope="module")
def keras():
    """Keras 3 on the torch backend, imported once for the module (the import takes seconds), computing float64
    in float64.

    Keras's type promotion follows JAX's default: on any backend but TensorFlow, ``result_type`` maps float64
    to float32, so ``ops.matmul`` of two float64 tensors runs in float32 and casts back (a float64 layer then
    agrees with rnnlab to 1e-8 only). The module lifts that mapping while it runs, and
    ``test_keras_really_computes_float64`` checks that it took.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KERAS_BACKEND", "torch")  # read by Keras's first import
        keras = pytest.importorskip("keras")
        assert keras.backend.backend() == "torch", "Keras was imported with another backend before this module"
        from keras.src.backend.common import dtypes

        patch.setitem(dtypes.BIT64_TO_BIT32_DTYPE, "float64", "float64")
        yield keras


@pytest.fixture(scope="module")
def torch():
    import torch

    return torch


# ---------------------------------------------------------------------- the documented map, written out
def blocks(kind: str, a: np.ndarray) -> np.ndarray:
    return np.concatenate([a[k * H:(k + 1) * H] for k in KERAS_BLOCKS[kind]], axis=0)


def keras_layout(kind: str, p: dict, *, gradient: bool) -> list[np.ndarray]:
    """Keras's ``[kernel, recurrent_kernel, bias]`` of one rnnlab direction's parameters (or gradients)."""
    out = [blocks(kind, p["U"]).T, blocks(kind, p["W"]).T]
    if "b_hn" not in p:
        return out + [blocks(kind, p["b"])]
    recurrent_bias = np.concatenate([p["b"][:2 * H] if gradient else np.zeros(2 * H), p["b_hn"]])
    return out + [np.stack([blocks(kind, p["b"]), blocks(kind, recurrent_bias)])]


def directions(module) -> list:
    return [module.forward_layer, module.backward_layer] if isinstance(module, rnnlab.Bidirectional) else [module]


def keras_cells(klayer) -> list:
    if hasattr(klayer, "forward_layer"):
        return [klayer.forward_layer.cell, klayer.backward_layer.cell]
    return [klayer.cell]


def flat(out) -> list:
    """Outputs and states as one flat list (a merge_mode=None pair is two entries, as Keras returns it)."""
    if isinstance(out, (list, tuple)):
        return [a for item in out for a in flat(item)]
    return [out]


def make_mask(padding: str | None) -> np.ndarray | None:
    lengths = np.array([T, T - 2, 1])
    if padding is None:
        return None
    t = np.arange(T)[None, :]
    return t < lengths[:, None] if padding == "right" else t >= (T - lengths)[:, None]


def rnnlab_layer(kind, dtype, *, bidirectional=None, seed=0, **options):
    cls = {"SimpleRNN": rnnlab.SimpleRNN, "LSTM": rnnlab.LSTM, "GRU": rnnlab.GRU}[kind]
    layer = cls(H, input_size=D, bias_initializer="uniform:0.5", seed=seed, dtype=dtype, **options)
    return layer if bidirectional is False else rnnlab.Bidirectional(layer, bidirectional)


def run_both(keras, torch, module, dtype, mask, rng):
    """Forward and backward through ``module`` and through ``to_keras(module)``; both results, rnnlab's
    gradients already in Keras's layout."""
    klayer = to_keras(module)
    x = rng.standard_normal((B, T, D)).astype(dtype)
    ys = flat(module(x, mask=mask))
    R = [rng.standard_normal(y.shape).astype(dtype) for y in ys]
    n_out = 2 if getattr(module, "merge_mode", "concat") is None else 1
    dy = R[:n_out] if n_out == 2 else R[0]
    dx = module.backward(dy, *R[n_out:])
    grads = [w for rec in directions(module) for w in keras_layout(type(rec).__name__, rec.grads, gradient=True)]

    xt = torch.tensor(x, requires_grad=True)
    kys = flat(klayer(xt, mask=None if mask is None else torch.tensor(mask)))
    loss = sum((ky * torch.tensor(r)).sum() for ky, r in zip(kys, R))
    loss.backward()
    variables = [v for cell in keras_cells(klayer) for v in cell.trainable_weights]
    assert {str(v.dtype) for v in variables} == {dtype}  # a float64 comparison runs in float64
    assert {str(ky.dtype) for ky in kys} == {f"torch.{dtype}"}
    kgrads = [v.value.grad.numpy() for v in variables]
    return (ys, dx, grads), ([ky.detach().numpy() for ky in kys], xt.grad.numpy(), kgrads)


def assert_close(ours, theirs, dtype):
    (ys, dx, grads), (kys, kdx, kgrads) = ours, theirs
    assert len(ys) == len(kys) and len(grads) == len(kgrads)
    for a, b in zip(ys + [dx] + grads, kys + [kdx] + kgrads):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=0, atol=TOL[dtype])


# ---------------------------------------------------------------------- forward, states and gradients
def test_keras_really_computes_float64(keras, torch, rng):
    a, b = rng.standard_normal((4, 6)), rng.standard_normal((6, 5))
    product = keras.ops.matmul(torch.tensor(a), torch.tensor(b))
    assert product.dtype == torch.float64
    np.testing.assert_allclose(product.numpy(), a @ b, rtol=0, atol=1e-14)  # float32 would be off by ~1e-7


CELLS = [("SimpleRNN", {"activation": a}) for a in ("tanh", "relu", "sigmoid", "linear")] + [
    ("LSTM", {}), ("GRU", {"reset_after": True}), ("GRU", {"reset_after": False})]


@pytest.mark.parametrize("kind, cell", CELLS, ids=lambda v: v if isinstance(v, str) else "-".join(map(str, v.values())))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_each_cell_matches_keras(keras, torch, rng, kind, cell, dtype):
    module = rnnlab_layer(kind, dtype, bidirectional=False, return_sequences=True, return_state=True, **cell)
    ours, theirs = run_both(keras, torch, module, dtype, None, rng)
    assert_close(ours, theirs, dtype)


OPTIONS = [dict(return_sequences=rs, return_state=st, go_backwards=gb)
           for rs in (True, False) for st in (True, False) for gb in (False, True)]


@pytest.mark.parametrize("kind, cell", [("LSTM", {}), ("GRU", {"reset_after": True}), ("GRU", {"reset_after": False})],
                         ids=["lstm", "gru", "gru-original"])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(k for k, v in o.items() if v) or "plain")
@pytest.mark.parametrize("padding", ["right", "left"])
def test_options_and_masks_match_keras(keras, torch, rng, kind, cell, options, padding):
    """Every flag with right and left padding (the unmasked runs are test_each_cell_matches_keras's)."""
    module = rnnlab_layer(kind, "float64", bidirectional=False, **options, **cell)
    ours, theirs = run_both(keras, torch, module, "float64", make_mask(padding), rng)
    assert_close(ours, theirs, "float64")


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("kind, return_sequences, padding",
                         [("LSTM", True, "right"), ("GRU", False, "left"), ("SimpleRNN", True, None)])
def test_bidirectional_matches_keras_in_every_merge_mode(keras, torch, rng, merge_mode, kind, return_sequences,
                                                          padding):
    module = rnnlab_layer(kind, "float64", bidirectional=merge_mode, return_sequences=return_sequences,
                          return_state=True)
    ours, theirs = run_both(keras, torch, module, "float64", make_mask(padding), rng)
    assert_close(ours, theirs, "float64")


def test_stateful_layers_carry_the_same_state_as_keras(keras, torch, rng):
    module = rnnlab_layer("LSTM", "float64", bidirectional=False, return_sequences=True, stateful=True)
    klayer = to_keras(module, batch_size=B)
    assert klayer.stateful
    for _ in range(3):  # the second and third calls start where the previous one ended
        x = rng.standard_normal((B, T, D))
        np.testing.assert_allclose(module(x), klayer(torch.tensor(x)).detach().numpy(), rtol=0, atol=1e-12)


# ---------------------------------------------------------------------- Keras-made layers and models in
def randomize(keras_object, rng):
    for v in keras_object.trainable_weights:
        v.assign(rng.uniform(-0.6, 0.6, v.shape).astype(str(v.dtype)))


@pytest.mark.parametrize("make", [
    lambda k: k.layers.LSTM(H, return_sequences=True, use_bias=False),
    lambda k: k.layers.GRU(H, return_state=True, go_backwards=True, dtype="float64"),
    lambda k: k.layers.GRU(H, reset_after=False, return_sequences=True),
    lambda k: k.layers.SimpleRNN(H, activation="relu", return_sequences=True),
    lambda k: k.layers.Bidirectional(k.layers.LSTM(H, return_sequences=True), merge_mode="ave"),
    lambda k: k.layers.Bidirectional(k.layers.GRU(H, return_state=True), merge_mode=None),
], ids=["lstm-nobias", "gru-backwards-f64", "gru-original", "simple-relu", "bidi-ave", "bidi-none-state"])
def test_from_keras_reproduces_a_keras_layer(keras, torch, rng, make):
    klayer = make(keras)
    dtype = klayer.dtype_policy.name
    x = rng.standard_normal((B, T, D)).astype(dtype)
    klayer(torch.tensor(x))  # builds it
    randomize(klayer, rng)
    module = from_keras(klayer)
    assert module.dtype == np.dtype(dtype)
    for ours, theirs in zip(flat(module(x)), flat(klayer(torch.tensor(x)))):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=0, atol=TOL[dtype])
    # round trip: the weights come back bitwise (a reset-after GRU's two biases: their sum, r and z blocks)
    back = to_keras(module)
    for v, w in zip(klayer.trainable_weights, back.trainable_weights):
        a, b = v.value.detach().numpy(), w.value.detach().numpy()
        if a.ndim == 2 and a.shape[0] == 2:
            a, b = a.sum(axis=0), b.sum(axis=0)  # (2, 3H): input + recurrent
        np.testing.assert_array_equal(a, b)


def test_a_lone_keras_layer_differs_only_on_masked_steps_where_keras_repeats_the_last_output(keras, torch, rng):
    klayer = keras.layers.GRU(H, return_sequences=True, dtype="float64")  # zero_output_for_mask=False, Keras's default
    x, mask = rng.standard_normal((B, T, D)), make_mask("right")
    klayer(torch.tensor(x))
    randomize(klayer, rng)
    theirs = klayer(torch.tensor(x), mask=torch.tensor(mask)).detach().numpy()
    ours = from_keras(klayer)(x, mask=mask)
    np.testing.assert_allclose(ours[mask], theirs[mask], rtol=0, atol=1e-12)
    assert np.all(ours[~mask] == 0) and np.all(np.abs(theirs[~mask]).max(axis=-1) > 0)


def keras_text_model(keras, rng):
    model = keras.Sequential([
        keras.Input((None,), dtype="int32"), keras.layers.Embedding(11, D, mask_zero=True),
        keras.layers.Bidirectional(keras.layers.LSTM(H, return_sequences=True), merge_mode="sum"),
        keras.layers.GRU(H, reset_after=False, return_sequences=True), keras.layers.GRU(H),
        keras.layers.Dropout(0.25), keras.layers.Dense(2, activation="tanh")])
    randomize(model, rng)
    return model


IDS = np.array([[3, 1, 4, 1, 5], [9, 2, 6, 0, 0], [5, 0, 0, 0, 0]])  # right-padded with 0


def test_a_keras_sequential_with_masking_embedding_and_dense_matches_with_gradients(keras, torch, rng):
    model = keras_text_model(keras, rng)
    module = from_keras(model)
    assert [type(m).__name__ for m in module.layers] == ["Embedding", "Bidirectional", "GRU", "GRU", "Dropout", "Dense"]
    y = module(IDS)
    ky = model(torch.tensor(IDS))
    np.testing.assert_allclose(y, ky.detach().numpy(), rtol=0, atol=2e-5)
    R = rng.standard_normal(y.shape).astype("float32")
    module.backward(R)
    (ky * torch.tensor(R)).sum().backward()
    embedding, dense = model.layers[0], model.layers[-1]
    np.testing.assert_allclose(module.layers[0].grads["E"], embedding.embeddings.value.grad.numpy(), atol=2e-5)
    np.testing.assert_allclose(module.layers[-1].grads["V"], dense.kernel.value.grad.numpy().T, atol=2e-5)
    np.testing.assert_allclose(module.layers[-1].grads["c"], dense.bias.value.grad.numpy(), atol=2e-5)


# ---------------------------------------------------------------------- .keras files
# Keras's own model.save turns its variables into arrays with np.array(tensor), which NumPy 2 flags
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
def test_a_file_keras_saved_loads_into_rnnlab_and_one_rnnlab_saved_loads_into_keras(keras, torch, rng, tmp_path):
    model = keras_text_model(keras, rng)
    expected = model(torch.tensor(IDS)).detach().numpy()
    model.save(tmp_path / "keras.keras")
    module = load_keras(tmp_path / "keras.keras")
    np.testing.assert_allclose(module(IDS), expected, rtol=0, atol=2e-5)
    np.testing.assert_array_equal(module.layers[0].params["E"], model.layers[0].embeddings.value.detach().numpy())

    save_keras(module, tmp_path / "rnnlab.keras")
    loaded = keras.saving.load_model(tmp_path / "rnnlab.keras")
    np.testing.assert_allclose(loaded(torch.tensor(IDS)).detach().numpy(), module(IDS), rtol=0, atol=2e-5)
    for v, w in zip(model.trainable_weights, loaded.trainable_weights):
        a, b = v.value.detach().numpy(), w.value.detach().numpy()
        if a.ndim == 2 and a.shape[0] == 2:
            a, b = a.sum(axis=0), b.sum(axis=0)  # a reset-after GRU's (2, 3H) bias: its sum
        np.testing.assert_array_equal(a, b)


def test_save_keras_of_a_float64_layer_loads_in_keras_in_float64(keras, torch, rng, tmp_path):
    module = rnnlab.Sequential([rnnlab_layer("GRU", "float64", bidirectional="concat", return_sequences=True),
                                rnnlab.Dense(2, activation="sigmoid", input_size=2 * H, dtype="float64")])
    save_keras(module, tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert {str(v.dtype) for v in loaded.weights} == {"float64"}
    x = rng.standard_normal((B, T, D))
    np.testing.assert_allclose(loaded(torch.tensor(x)).detach().numpy(), module(x), rtol=0, atol=1e-12)


def test_the_converters_are_the_ones_of_rnnlab_io_keras():
    from rnnlab.io import keras as keras_module

    assert from_keras is rnnlab.io.interop.from_keras is keras_module.from_keras
    assert {"from_keras", "to_keras", "load_keras", "save_keras"} <= set(rnnlab.interop.__all__)


def test_load_and_save_keras_need_only_h5py(tmp_path):
    """In a fresh interpreter: a .keras file written and read back bitwise, Keras never imported."""
    script = (
        "import sys, numpy as np, rnnlab\n"
        "from rnnlab.interop import load_keras, save_keras\n"
        "m = rnnlab.Sequential([rnnlab.Embedding(7, 4, mask_zero=True, seed=0),\n"
        "    rnnlab.Bidirectional(rnnlab.GRU(3, reset_after=False, return_sequences=True, input_size=4, seed=1),\n"
        "                         'mul'), rnnlab.LSTM(2, input_size=3, seed=2), rnnlab.Dropout(0.5),\n"
        "    rnnlab.Dense(2, input_size=2, seed=3)])\n"
        f"p = save_keras(m, {str(tmp_path / 'm.keras')!r})\n"
        "back = load_keras(p)\n"
        "assert sorted(back.params) == sorted(m.params)\n"
        "assert all(np.array_equal(back.params[k], v) for k, v in m.params.items())\n"
        "ids = np.array([[1, 2, 0], [3, 0, 0]])\n"
        "assert np.array_equal(back(ids), m(ids))\n"
        "assert 'keras' not in sys.modules\n"
        "print('ok')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        config = json.loads(archive.read("config.json"))
    assert [layer["class_name"] for layer in config["config"]["layers"]] == [
        "InputLayer", "Embedding", "Bidirectional", "LSTM", "Dropout", "Dense"]


# ---------------------------------------------------------------------- what does not convert, and what it says
def test_options_keras_cannot_express_are_named(keras):
    lstm = rnnlab.LSTM(H, input_size=D, candidate_activation="relu")
    with pytest.raises(ValueError, match=r"layer 0, LSTM\(candidate_activation='relu'\), has no Keras equivalent"):
        to_keras(rnnlab.Sequential([lstm]))
    with pytest.raises(TypeError, match="to_keras: the module is a OneHot"):
        to_keras(rnnlab.OneHot(5))
    with pytest.raises(ValueError, match="the module is stateful.*pass batch_size="):
        to_keras(rnnlab.GRU(H, input_size=D, stateful=True))
    with pytest.raises(ValueError, match="to_keras: the module is not built"):
        to_keras(rnnlab.GRU(H))
    with pytest.raises(ValueError, match="batch_size must be positive, got 0"):
        save_keras(rnnlab.GRU(H, input_size=D), "unused.keras", batch_size=0)
    with pytest.raises(TypeError, match="batch_size must be an int or None, got float 2.0"):
        to_keras(rnnlab.GRU(H, input_size=D), batch_size=2.0)


@pytest.mark.parametrize("make, error, match", [
    (lambda k: k.layers.Dense(2, activation="softmax"), ValueError,
     r"activation='softmax'.*apply softmax to the logits"),
    (lambda k: k.layers.LSTM(H, activation="relu"), ValueError, r"activation='relu', which rnnlab cannot express"),
    (lambda k: k.layers.GRU(H, recurrent_activation="hard_sigmoid"), ValueError,
     r"recurrent_activation='hard_sigmoid'.*sigmoid"),
    (lambda k: k.layers.SimpleRNN(H, activation="elu"), ValueError, r"activation='elu'; rnnlab's SimpleRNN supports"),
    (lambda k: k.layers.Conv1D(2, 3), TypeError, r"the layer \(conv1d.*\) is a Keras Conv1D"),
    (lambda k: k.layers.Dropout(0.5, noise_shape=(None, 1, D)), ValueError, "noise_shape"),
], ids=["softmax", "lstm-relu", "hard-sigmoid", "elu", "conv1d", "noise-shape"])
def test_options_rnnlab_cannot_express_are_named(keras, torch, make, error, match):
    layer = make(keras)
    layer(torch.zeros((B, T, D)))
    with pytest.raises(error, match=match):
        from_keras(layer)


def test_recurrent_dropout_converts_with_a_warning_and_functional_models_do_not(keras, torch):
    layer = keras.layers.LSTM(H, dropout=0.2, recurrent_dropout=0.1)
    layer(torch.zeros((B, T, D)))
    with pytest.warns(UserWarning, match=r"'dropout': 0.2, 'recurrent_dropout': 0.1.*no input or recurrent dropout"):
        module = from_keras(layer)
    assert isinstance(module, rnnlab.LSTM)
    inputs = keras.Input((T, D))
    functional = keras.Model(inputs, keras.layers.GRU(H)(inputs))
    with pytest.raises(TypeError, match="a keras.Sequential or a single layer, got a Functional model"):
        from_keras(functional)
    with pytest.raises(TypeError, match="from_keras expects a Keras layer or Sequential model, got LSTM"):
        from_keras(rnnlab.LSTM(H, input_size=D))


def test_load_keras_names_a_file_that_is_not_a_keras_file(tmp_path):
    bad = tmp_path / "notes.keras"
    bad.write_text("hello", encoding="utf-8")
    with pytest.raises(ValueError, match=r"notes.keras' is not a Keras 3 .keras file \(not a zip archive\)"):
        load_keras(bad)
    with zipfile.ZipFile(tmp_path / "half.keras", "w") as archive:
        archive.writestr("config.json", "{}")
    with pytest.raises(ValueError, match="lacks model.weights.h5"):
        load_keras(tmp_path / "half.keras")


def test_load_keras_names_a_layer_whose_weights_are_missing(tmp_path):
    model = rnnlab.Sequential([rnnlab.GRU(H, input_size=D), rnnlab.Dense(2, input_size=H)])
    path = save_keras(model, tmp_path / "m.keras")
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"].append(config["config"]["layers"][2])  # a second Dense, with no weights stored
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "broken.keras", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ValueError, match=r"layer 2 \(dense\): a Keras Dense has 1 or 2 weight arrays, got 0"):
        load_keras(tmp_path / "broken.keras")
