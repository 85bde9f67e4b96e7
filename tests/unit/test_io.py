"""Model files: save/load round trips, the on-disk format, atomic writes, and every error of a bad file."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

import rnnlab
from rnnlab.io.files import ModelFileError, load, read_config, save
from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.layers import Dense, Dropout, Embedding
from rnnlab.nn.module import Module
from rnnlab.nn.recurrent import GRU, LSTM, SimpleRNN
from rnnlab.nn.sequential import Sequential


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# ---------------------------------------------------------------------- models under test
# Each factory returns (model, inputs, mask); the model is built, and its weights are then replaced by
# random values (below), so a load that dropped the weights and kept the seeded init would fail.
def _floats(dtype, B=3, T=5, D=3, seed=0):
    r = np.random.default_rng(seed)
    x = r.standard_normal((B, T, D)).astype(dtype)
    mask = np.ones((B, T), dtype=bool)
    mask[1, 3:] = False  # right padding
    mask[2, :2] = False  # left padding
    return x, mask


def simple_rnn(dtype):
    return (SimpleRNN(4, input_size=3, return_sequences=True, seed=1, dtype=dtype), *_floats(dtype))


def simple_rnn_relu_backwards(dtype):
    return (SimpleRNN(4, activation="relu", input_size=3, go_backwards=True, seed=1, dtype=dtype), *_floats(dtype))


def lstm_return_state(dtype):
    return (LSTM(4, input_size=3, return_state=True, forget_bias=None, seed=2, dtype=dtype), *_floats(dtype))


def gru(dtype):
    return (GRU(4, input_size=3, seed=3, dtype=dtype), *_floats(dtype))


def gru_reset_before(dtype):
    return (GRU(4, reset_after=False, input_size=3, return_sequences=True, seed=3, dtype=dtype), *_floats(dtype))


def bidirectional_lstm(dtype):
    return (Bidirectional(LSTM(3, input_size=3, return_sequences=True, seed=4, dtype=dtype)), *_floats(dtype))


def bidirectional_gru_states(dtype):
    layer = GRU(3, return_state=True, seed=5, dtype=dtype)  # built lazily, on the first call
    model = Bidirectional(layer, merge_mode="sum")
    x, mask = _floats(dtype)
    model(x, mask=mask)
    return model, x, mask


def sequential_text(dtype):
    model = Sequential([Embedding(12, 4, mask_zero=True, seed=6, dtype=dtype),
                        GRU(5, return_sequences=True, seed=7, dtype=dtype),  # input size inferred at the first call
                        Dropout(0.3, seed=8, dtype=dtype),
                        Dense(3, seed=9, dtype=dtype)])
    ids = np.array([[3, 1, 4, 1, 5], [9, 2, 6, 0, 0], [5, 3, 5, 8, 0]])  # (B, T), 0 = padding
    model(ids)
    return model, ids, None


def sequential_stack(dtype):
    model = Sequential([Bidirectional(SimpleRNN(4, return_sequences=True, seed=10, dtype=dtype), merge_mode="ave"),
                        LSTM(3, seed=11, dtype=dtype),
                        Dense(2, activation="tanh", seed=12, dtype=dtype)], name="stack")
    model.build((None, 5, 3))
    return (model, *_floats(dtype))


FACTORIES = [simple_rnn, simple_rnn_relu_backwards, lstm_return_state, gru, gru_reset_before, bidirectional_lstm,
             bidirectional_gru_states, sequential_text, sequential_stack]


def _randomize(model: Module, seed: int = 99) -> None:
    r = np.random.default_rng(seed)
    model.set_weights({k: r.uniform(-0.8, 0.8, v.shape) for k, v in model.named_parameters()})


def _outputs(model, x, mask) -> list[np.ndarray]:
    out = model(x, mask=mask)
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _modules(module: Module, prefix=""):
    yield prefix or "<root>", module
    for name, child in module.children():
        yield from _modules(child, f"{prefix}{name}.")


def _files(path: Path) -> set[str]:
    return set(os.listdir(path))


# ---------------------------------------------------------------------- round trips
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("factory", FACTORIES, ids=lambda f: f.__name__)
def test_round_trip_predicts_bitwise_identically(factory, dtype, tmp_path):
    model, x, mask = factory(dtype)
    _randomize(model)
    expected = _outputs(model, x, mask)

    loaded = load(save(model, tmp_path / "model"))

    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    assert [name for name, _ in _modules(loaded) if not _.built] == []
    original, restored = dict(model.named_parameters()), dict(loaded.named_parameters())
    assert list(restored) == list(original)
    for key, value in original.items():
        assert restored[key].dtype == value.dtype == np.dtype(dtype), key
        np.testing.assert_array_equal(restored[key], value, err_msg=key)
    got = _outputs(loaded, x, mask)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(g, e)  # bitwise, not approximately


def test_loaded_model_differs_from_a_fresh_one(tmp_path):
    """The round trip above can fail: a rebuilt-but-not-loaded model predicts differently."""
    model, x, mask = gru("float64")
    _randomize(model)
    fresh = GRU.from_config(model.get_config())
    assert not np.array_equal(fresh(x, mask=mask), model(x, mask=mask))
    np.testing.assert_array_equal(load(save(model, tmp_path / "m"))(x, mask=mask), model(x, mask=mask))


def test_loaded_sequential_keeps_its_input_shape_and_summary(tmp_path):
    model, *_ = sequential_stack("float32")
    loaded = load(save(model, tmp_path / "m"))
    assert loaded.input_shape == (None, 5, 3)
    assert all(layer.built for layer in loaded.layers)
    assert loaded.layers[0].forward_layer.built and loaded.layers[0].backward_layer.built
    assert loaded.summary(print_fn=None) == model.summary(print_fn=None)


def test_stateful_state_is_not_saved(tmp_path):
    model = LSTM(3, input_size=2, stateful=True, seed=0, dtype="float64")
    _randomize(model)
    x1, _ = _floats("float64", D=2, seed=1)
    x2, _ = _floats("float64", D=2, seed=2)
    model(x1)  # now carries a state
    assert model.states is not None
    loaded = load(save(model, tmp_path / "m"))
    assert loaded.stateful and loaded.states is None
    carried = model(x2)
    model.reset_state()
    from_zero = model(x2)
    assert not np.array_equal(carried, from_zero)
    np.testing.assert_array_equal(loaded(x2), from_zero)


def test_save_returns_the_directory_and_load_takes_a_str(tmp_path):
    model, x, mask = simple_rnn("float32")
    path = save(model, str(tmp_path / "nested" / "dir"))
    assert path == tmp_path / "nested" / "dir" and path.is_dir()
    np.testing.assert_array_equal(load(str(path))(x, mask=mask), model(x, mask=mask))


# ---------------------------------------------------------------------- the files on disk
def test_config_file_lists_format_class_dtype_weights_and_checksum(tmp_path):
    model = LSTM(4, input_size=3, seed=0, dtype="float64")
    path = save(model, tmp_path / "m")
    assert _files(path) == {"config.json", "weights.npz"}
    doc = json.loads((path / "config.json").read_text(encoding="utf-8"))
    assert doc["format"] == "rnnlab" and doc["format_version"] == 1
    assert doc["rnnlab_version"] == rnnlab.__version__
    assert doc["class_name"] == "LSTM" and doc["dtype"] == "float64"
    assert doc["config"]["hidden_size"] == 4 and doc["config"]["input_size"] == 3
    # 4 gates x H=4 rows: U (16, 3), W (16, 4), b (16,)
    assert doc["weights"] == {"U": {"shape": [16, 3], "dtype": "float64"}, "W": {"shape": [16, 4], "dtype": "float64"},
                              "b": {"shape": [16], "dtype": "float64"}}
    assert doc["weights_sha256"] == hashlib.sha256((path / "weights.npz").read_bytes()).hexdigest()
    assert read_config(path) == doc


def test_weights_file_is_a_plain_npz_of_dotted_names(tmp_path):
    model, *_ = sequential_stack("float32")
    path = save(model, tmp_path / "m")
    with np.load(path / "weights.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(k for k, _ in model.named_parameters())
        assert "0.backward.W" in npz.files
        np.testing.assert_array_equal(npz["2.V"], model.params["2.V"])


def test_saving_again_replaces_the_model_and_keeps_other_files(tmp_path):
    path = tmp_path / "m"
    first, x, mask = gru("float32")
    save(first, path)
    (path / "vocab.json").write_text('["a", "b"]', encoding="utf-8")
    second, _, _ = gru("float32")
    _randomize(second, seed=5)
    save(second, path)
    assert _files(path) == {"config.json", "weights.npz", "vocab.json"}
    assert (path / "vocab.json").read_text(encoding="utf-8") == '["a", "b"]'
    np.testing.assert_array_equal(load(path)(x, mask=mask), second(x, mask=mask))


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_saved_files_get_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        path = save(gru("float32")[0], tmp_path / "m")
    finally:
        os.umask(umask)
    for name in ("config.json", "weights.npz"):
        assert (path / name).stat().st_mode & 0o777 == 0o644, name  # not mkstemp's 0o600


# ---------------------------------------------------------------------- atomic writes
@pytest.fixture
def saved(tmp_path):
    """A model saved once; the tests below interrupt a second save over it."""
    model, x, mask = simple_rnn("float64")
    path = save(model, tmp_path / "m")
    before = {name: (path / name).read_bytes() for name in ("config.json", "weights.npz")}
    return path, model, x, mask, before


def _assert_intact(path, model, x, mask, before):
    assert _files(path) == {"config.json", "weights.npz"}  # no temporary file left behind
    assert {name: (path / name).read_bytes() for name in before} == before
    np.testing.assert_array_equal(load(path)(x, mask=mask), model(x, mask=mask))


def _other_model():
    other = SimpleRNN(4, input_size=3, return_sequences=True, dtype="float64")
    _randomize(other, seed=7)
    return other


def test_crash_while_writing_weights_keeps_previous_model(saved, monkeypatch):
    path, model, x, mask, before = saved
    real, calls = np.lib.format.write_array, []

    def write_then_crash(fp, array, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the first array is already in the temporary file
            fp.write(b"\x00" * 10)
            raise KeyboardInterrupt
        return real(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", write_then_crash)
    with pytest.raises(KeyboardInterrupt):
        save(_other_model(), path)
    monkeypatch.undo()
    assert len(calls) == 2
    _assert_intact(path, model, x, mask, before)


@pytest.mark.parametrize("failing_call", [1, 2])
def test_crash_at_a_rename_leaves_no_temporary_file(saved, monkeypatch, failing_call):
    path, model, x, mask, before = saved
    real, calls = os.replace, []

    def replace(src, dst):
        calls.append(Path(dst).name)
        if len(calls) == failing_call:
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="No space left"):
        save(_other_model(), path)
    monkeypatch.undo()
    assert calls == ["weights.npz", "config.json"][:failing_call]  # weights first, config.json (the commit) last
    if failing_call == 1:
        _assert_intact(path, model, x, mask, before)
    else:
        # New weights under the old config: detected by the checksum, never loaded as a mixed model.
        assert _files(path) == {"config.json", "weights.npz"}
        assert (path / "config.json").read_bytes() == before["config.json"]
        with pytest.raises(ModelFileError, match=r"weights\.npz' is corrupt, truncated or from another save"):
            load(path)


def test_failed_first_save_leaves_no_model_and_no_temporary_file(tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="Input/output error"):
        save(gru("float32")[0], tmp_path / "m")
    monkeypatch.undo()
    assert _files(tmp_path / "m") == set()
    with pytest.raises(ModelFileError, match="no config.json"):
        load(tmp_path / "m")


# ---------------------------------------------------------------------- save errors
def test_save_refuses_an_unbuilt_model(tmp_path):
    with pytest.raises(ValueError, match=r"unbuilt SimpleRNN: the model has no weights yet.*build\(input_shape\)"):
        save(SimpleRNN(4), tmp_path / "m")
    with pytest.raises(ValueError, match=r"unbuilt Sequential: layer '0' \(SimpleRNN\) of the model has no weights"):
        save(Sequential([SimpleRNN(4), Dense(1)]), tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_save_refuses_a_path_that_is_a_file(tmp_path):
    target = tmp_path / "model.npz"
    target.write_bytes(b"x")
    with pytest.raises(ModelFileError, match=re.escape(f"cannot save to '{target}': it exists and is not a directory")):
        save(gru("float32")[0], target)


def test_save_refuses_a_class_the_registry_cannot_rebuild(tmp_path, monkeypatch):
    monkeypatch.setattr(rnnlab.module, "_REGISTRY", dict(rnnlab.module._REGISTRY))  # the classes below stay local

    class _IoShadowed(Module):
        pass

    first = _IoShadowed
    type("_IoShadowed", (Module,), {})  # a second class registered under the same name
    instance = first()
    instance.built = True
    with pytest.raises(ValueError, match=r"registered\('_IoShadowed'\) does not return this class"):
        save(instance, tmp_path / "m")


def test_save_refuses_a_config_that_is_not_json(tmp_path):
    model = SimpleRNN(2, input_size=2, name="rnn")
    model.name = np.float32(1.0)  # what any numpy scalar in a config does
    with pytest.raises(ValueError,
                       match=r"cannot save SimpleRNN: its get_config\(\) is not JSON-serialisable .*float32"):
        save(model, tmp_path / "m")


def test_save_checks_its_arguments(tmp_path):
    with pytest.raises(TypeError, match="model must be an rnnlab Module, got dict"):
        save({}, tmp_path / "m")
    with pytest.raises(TypeError, match="path must be a str or os.PathLike, got int 3"):
        save(gru("float32")[0], 3)


# ---------------------------------------------------------------------- load errors
@pytest.fixture
def model_dir(tmp_path):
    model = SimpleRNN(4, input_size=3, seed=0)  # float32; U (4, 3), W (4, 4), b (4,)
    return save(model, tmp_path / "m")


def _edit_config(path: Path, edit) -> None:
    doc = json.loads((path / "config.json").read_text(encoding="utf-8"))
    edit(doc)
    (path / "config.json").write_text(json.dumps(doc), encoding="utf-8")


def _replace_weights(path: Path, data: bytes) -> None:
    """Write ``data`` as weights.npz and record its checksum, as a consistent (if hostile) save would."""
    (path / "weights.npz").write_bytes(data)
    _edit_config(path, lambda doc: doc.update(weights_sha256=hashlib.sha256(data).hexdigest()))


def _npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _saved_arrays(path: Path) -> dict:
    with np.load(path / "weights.npz") as npz:
        return {k: npz[k] for k in npz.files}


def test_missing_directory_names_where_it_looked(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(ModelFileError,
                       match=re.escape(f"no rnnlab model at '{missing}': the directory does not exist")):
        load(missing)


def test_a_file_is_not_a_model_directory(model_dir):
    weights = model_dir / "weights.npz"
    with pytest.raises(ModelFileError, match=re.escape(f"'{weights}' is not an rnnlab model: a model is a directory")):
        load(weights)


def test_missing_config_file(model_dir):
    (model_dir / "config.json").unlink()
    with pytest.raises(ModelFileError, match=re.escape(f"no config.json (looked for '{model_dir / 'config.json'}')")):
        load(model_dir)


def test_missing_weights_file(model_dir):
    (model_dir / "weights.npz").unlink()
    with pytest.raises(ModelFileError, match=re.escape(f"no weights.npz in the model directory '{model_dir}'")):
        load(model_dir)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("format"), "it has no 'format' key"),
    (lambda d: d.update(format="keras"), "it has format 'keras' (expected 'format': 'rnnlab')"),
], ids=["no-format-key", "other-format"])
def test_not_an_rnnlab_model(model_dir, edit, message):
    _edit_config(model_dir, edit)
    with pytest.raises(ModelFileError, match=re.escape(f"config.json' is not an rnnlab model file: {message}")):
        load(model_dir)


def test_newer_format_version(model_dir):
    _edit_config(model_dir, lambda d: d.update(format_version=2, rnnlab_version="9.0"))
    with pytest.raises(ModelFileError,
                       match=r"has format_version 2, written by rnnlab 9\.0; .*reads format_version up to 1"):
        load(model_dir)


@pytest.mark.parametrize("value", ["1", 0, True, None])
def test_bad_format_version(model_dir, value):
    _edit_config(model_dir, lambda d: d.update(format_version=value))
    with pytest.raises(ModelFileError, match=re.escape(f"'format_version' must be a positive integer, got {value!r}")):
        load(model_dir)


def test_corrupt_json_names_the_line(model_dir):
    (model_dir / "config.json").write_text('{\n  "format": "rnnlab",\n  "format_version": 1,\n  "class_name" "x"\n}',
                                           encoding="utf-8")
    with pytest.raises(ModelFileError,
                       match=r"config\.json' is not valid JSON: Expecting ':' delimiter at line 4, column 16"):
        load(model_dir)


def test_truncated_json(model_dir):
    text = (model_dir / "config.json").read_text(encoding="utf-8")
    (model_dir / "config.json").write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(ModelFileError, match=r"is not valid JSON: .* at line \d+, column \d+"):
        load(model_dir)


def test_config_that_is_not_text_or_not_an_object(model_dir):
    (model_dir / "config.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(ModelFileError, match=r"config\.json' is not UTF-8 text"):
        load(model_dir)
    (model_dir / "config.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ModelFileError, match=r"config\.json' must hold a JSON object, got a JSON list"):
        load(model_dir)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("weights_sha256"), "has no 'weights_sha256' key"),
    (lambda d: d.pop("class_name"), "has no 'class_name' key"),
    (lambda d: d.update(config=[1]), "'config' must be a JSON object, got list [1]"),
    (lambda d: d.update(class_name=7), "'class_name' must be a JSON string, got int 7"),
    (lambda d: d["weights"].update(W={"shape": [4, 4], "dtype": "int8"}),
     "the listing of weight 'W' must be"),
    (lambda d: d.update(input_shape=[None, -1]),
     "'input_shape' must be a list of positive integers or nulls, got [None, -1]"),
], ids=["no-checksum", "no-class-name", "config-not-object", "class-name-not-string", "bad-listing", "bad-input-shape"])
def test_malformed_config_document(model_dir, edit, message):
    _edit_config(model_dir, edit)
    with pytest.raises(ModelFileError, match=re.escape(message)):
        load(model_dir)


def test_truncated_weights_fail_the_checksum(model_dir):
    data = (model_dir / "weights.npz").read_bytes()
    (model_dir / "weights.npz").write_bytes(data[:-100])
    expected = hashlib.sha256(data).hexdigest()
    with pytest.raises(ModelFileError,
                       match=rf"weights\.npz' is corrupt, truncated or from another save: .*expects {expected} "
                                             rf"\({len(data) - 100} bytes on disk\)"):
        load(model_dir)


def test_flipped_byte_fails_the_checksum(model_dir):
    data = bytearray((model_dir / "weights.npz").read_bytes())
    data[len(data) // 2] ^= 0x01
    (model_dir / "weights.npz").write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="SHA-256 is"):
        load(model_dir)


def test_weights_that_np_load_cannot_read(model_dir):
    good = (model_dir / "weights.npz").read_bytes()
    _replace_weights(model_dir, good[: len(good) // 2])  # a truncated zip, with a matching checksum
    with pytest.raises(ModelFileError, match=r"cannot read '.*weights\.npz' as an \.npz archive"):
        load(model_dir)
    _replace_weights(model_dir, b"\x80\x04garbage")  # not a zip at all (here, the start of a pickle)
    with pytest.raises(ModelFileError, match=r"weights\.npz': it is not an \.npz archive \(no zip header"):
        load(model_dir)


def test_pickled_object_array_is_refused(model_dir):
    arrays = _saved_arrays(model_dir)
    arrays["W"] = np.array([{"payload": 1}] * 16, dtype=object).reshape(4, 4)
    _replace_weights(model_dir, _npz_bytes(**arrays))
    with pytest.raises(ModelFileError,
                       match=r"weights\.npz' holds an object array.*pickles are refused \(allow_pickle=False\)"):
        load(model_dir)


def test_weight_missing_from_the_file(model_dir):
    arrays = _saved_arrays(model_dir)
    del arrays["W"]
    _replace_weights(model_dir, _npz_bytes(**arrays))
    with pytest.raises(ModelFileError, match=re.escape("weights.npz' lacks weight(s) ['W'] listed in config.json")):
        load(model_dir)


def test_unexpected_weight_in_the_file(model_dir):
    arrays = _saved_arrays(model_dir)
    arrays["extra.Z"] = np.zeros(2, dtype=np.float32)
    _replace_weights(model_dir, _npz_bytes(**arrays))
    with pytest.raises(ModelFileError,
                       match=re.escape("weights.npz' holds weight(s) ['extra.Z'] not listed in config.json")):
        load(model_dir)


def test_weight_of_the_wrong_shape(model_dir):
    arrays = _saved_arrays(model_dir)
    arrays["W"] = np.zeros((4, 5), dtype=np.float32)
    _replace_weights(model_dir, _npz_bytes(**arrays))
    with pytest.raises(ModelFileError, match=re.escape("weight 'W' has shape (4, 5), config.json lists (4, 4)")):
        load(model_dir)


def test_weight_of_the_wrong_dtype(model_dir):
    arrays = _saved_arrays(model_dir)
    arrays["b"] = arrays["b"].astype(np.float64)
    _replace_weights(model_dir, _npz_bytes(**arrays))
    with pytest.raises(ModelFileError, match=re.escape("weight 'b' has dtype float64, config.json lists float32")):
        load(model_dir)


def test_listing_that_does_not_match_the_rebuilt_model(model_dir):
    _edit_config(model_dir, lambda d: d["config"].update(hidden_size=3))  # weights are for H = 4
    with pytest.raises(ModelFileError, match=re.escape("weight 'U' is listed as float32 (4, 3), but the SimpleRNN "
                                                       "its config builds has float32 (3, 3)")):
        load(model_dir)


def test_listing_without_a_weight_the_model_has(model_dir):
    arrays = _saved_arrays(model_dir)
    del arrays["b"]
    _replace_weights(model_dir, _npz_bytes(**arrays))
    _edit_config(model_dir, lambda d: d["weights"].pop("b"))
    with pytest.raises(ModelFileError,
                       match=re.escape("does not have the listed weights: missing from the file ['b']")):
        load(model_dir)


def test_unknown_class_name(model_dir):
    _edit_config(model_dir, lambda d: d.update(class_name="Transformer"))
    with pytest.raises(ModelFileError,
                       match=r"'class_name' 'Transformer' is not an rnnlab module \(unknown module class"):
        load(model_dir)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.update(hidden_size=-1), "ValueError: hidden_size must be a positive int, got -1"),
    (lambda c: c.update(units=3), "TypeError: "),
    (lambda c: c.update(input_size=None), "layer <root>"),
], ids=["invalid-value", "unknown-argument", "no-input-size"])
def test_config_that_does_not_rebuild(model_dir, edit, message):
    _edit_config(model_dir, lambda d: edit(d["config"]))
    expected = ("the model is not built after from_config; its config lacks the input size" if message == "layer <root>"
                else f"cannot rebuild SimpleRNN from its 'config': {message}")
    with pytest.raises(ModelFileError, match=re.escape(expected)):
        load(model_dir)


def test_npz_entries_are_read_with_allow_pickle_false(model_dir, monkeypatch):
    seen = []
    real = np.load

    def spy(*args, **kwargs):
        seen.append(kwargs.get("allow_pickle"))
        return real(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    load(model_dir)
    assert seen == [False]


def test_npz_written_by_save_is_uncompressed_zip_of_npy(model_dir):
    with zipfile.ZipFile(model_dir / "weights.npz") as zf:
        assert sorted(zf.namelist()) == ["U.npy", "W.npy", "b.npy"]
        assert {info.compress_type for info in zf.infolist()} == {zipfile.ZIP_STORED}


# ---------------------------------------------------------------------- config round trips of other modules
def test_numpy_integer_seed_survives_get_config():
    assert SimpleRNN(3, input_size=2, seed=np.int64(3)).get_config()["seed"] == 3


def test_builtin_initializer_function_is_saveable(tmp_path):
    model = SimpleRNN(3, input_size=2, recurrent_initializer=rnnlab.initializers.orthogonal)
    assert load(save(model, tmp_path / "m")).get_config()["recurrent_initializer"] == "orthogonal"


def test_numpy_float_forget_bias_is_saveable(tmp_path):
    model = LSTM(3, input_size=2, forget_bias=np.float32(1.0))
    assert load(save(model, tmp_path / "m")).get_config()["forget_bias"] == 1.0


def test_non_numeric_forget_bias_is_refused():
    with pytest.raises(TypeError, match="forget_bias must be a number or None, got str 'x'"):
        LSTM(3, forget_bias="x")
