"""The Python API under the reliability battery's bad inputs (issue 16): the kernel switch, model files
that are not what they claim, values beyond float32, inputs without features, the download advice,
and streamed generation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import rnnlab
from rnnlab import GRU, LSTM, Dense, Embedding, ModelFileError, Sequential, kernels
from rnnlab.data.datasets import DatasetNotFoundError, time_series
from rnnlab.data.text import Vocabulary
from rnnlab.generate import predict_values, sample
from rnnlab.io import files
from rnnlab.lab.config import load_config
from rnnlab.lab.tasks import build_task


# --------------------------------------------------------------------------- item 2: kernels.use
def test_kernels_use_called_as_the_readme_writes_it_switches_the_backend():
    before = kernels.backend()
    other = "numpy" if before != "numpy" else "auto"
    try:
        kernels.use(other)
        assert kernels.backend() == other
        with kernels.use(before):
            assert kernels.backend() == before
        assert kernels.backend() == other
    finally:
        kernels.set_backend(before)


@pytest.mark.parametrize("plain", [True, False])
def test_kernels_use_checks_the_name_either_way(plain):
    before = kernels.backend()
    with pytest.raises(ValueError, match=r"kernel backend must be one of 'auto', 'numba', 'numpy'; got 'cuda'"):
        if plain:
            kernels.use("cuda")
        else:
            with kernels.use("cuda"):
                pass
    assert kernels.backend() == before


# --------------------------------------------------------------------------- items 5 and 16: model files
@pytest.fixture
def model_dir(tmp_path) -> Path:
    model = Sequential([Embedding(20, 4, seed=0), GRU(5, return_sequences=True, seed=1), Dense(3, seed=2)])
    model.build((None, 7))
    return rnnlab.save(model, tmp_path / "model")


@pytest.mark.parametrize("name", [files.WEIGHTS_FILE, files.CONFIG_FILE])
def test_a_model_file_that_is_a_directory(model_dir, name):
    (model_dir / name).unlink()
    (model_dir / name).mkdir()
    with pytest.raises(ModelFileError, match=rf"cannot read '.*{name}': it is a directory, not a file"):
        rnnlab.load(model_dir)


def _edit(model_dir: Path, edit) -> None:
    path = model_dir / files.CONFIG_FILE
    document = json.loads(path.read_text("utf-8"))
    edit(document)
    path.write_text(json.dumps(document), encoding="utf-8")


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["config"]["layers"][1]["config"].update(hidden_size=30_000),
     r"config\.layers\[1\]\.config\.hidden_size = 30000 does not match the listed weights, whose largest "
     r"dimension is 20"),
    (lambda d: d["config"]["layers"][0]["config"].update(dim=20),
     r"describes a Sequential of at least .* parameters, but the weight listing holds"),
])
def test_a_config_asking_for_larger_layers_than_listed_is_refused_before_building(model_dir, monkeypatch, edit,
                                                                                  message):
    _edit(model_dir, edit)

    def never(*args, **kwargs):
        raise AssertionError("the module was built from a config that does not fit the weight listing")

    monkeypatch.setattr(files, "_rebuild", never)
    with pytest.raises(ModelFileError, match=message):
        rnnlab.load(model_dir)


def test_an_unedited_model_still_loads(model_dir):
    listing = json.loads((model_dir / "config.json").read_text())["weights"]
    assert dict(rnnlab.load(model_dir).named_parameters()).keys() == listing.keys()


# --------------------------------------------------------------------------- item 11: beyond float32
@pytest.mark.parametrize("value", [1e39, -1e300])
def test_a_finite_value_beyond_float32_is_named(value):
    model = Sequential([LSTM(3, seed=0), Dense(1, seed=1)])
    x = np.ones((2, 4, 1))
    x[1, 2, 0] = value
    with pytest.raises(ValueError, match=re.escape(f"x holds {value:.6g} at index (1, 2, 0), out of float32's range")):
        model(x)  # under the suite's np.errstate(over="raise"), a cast that overflowed would raise instead


def test_predict_values_names_a_raw_value_beyond_float32():
    model = Sequential([LSTM(3, seed=0), Dense(1, seed=1)])
    model.build((None, 4, 1))
    with pytest.raises(ValueError, match=r"x holds 1e\+300 at index \(0, 3, 0\), out of float32's range"):
        predict_values(model, [[1.0, 2.0, 3.0, 1e300]])


def test_a_float64_model_takes_values_beyond_float32():
    model = Sequential([LSTM(3, seed=0, dtype="float64"), Dense(1, seed=1, dtype="float64")])
    assert np.isfinite(model(np.full((1, 2, 1), 1e39))).all()  # the gates saturate


# --------------------------------------------------------------------------- item 12: messages
@pytest.mark.parametrize("layer", [LSTM(4), GRU(4), Dense(4)])
def test_an_input_without_features_names_its_shape(layer):
    with pytest.raises(ValueError, match=r"needs inputs with at least one feature on their last axis; got input "
                                         r"shape \(2, 3, 0\)") as info:
        layer(np.zeros((2, 3, 0), np.float32))
    assert "input_size" not in str(info.value)


def test_the_download_advice_reaches_loader_callers_only(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"pass download=True") as direct:
        time_series("airline-passengers", tmp_path)
    assert direct.value.download_hint and direct.value.reason in str(direct.value)
    config_file = tmp_path / "fc.toml"
    config_file.write_text('[data]\ntask = "forecasting"\ndataset = "airline-passengers"\nlookback = 12\n',
                           encoding="utf-8")
    with pytest.raises(DatasetNotFoundError) as through_config:
        build_task(load_config(config_file), tmp_path)
    assert "download=True" not in str(through_config.value)
    assert str(through_config.value) == direct.value.reason


# --------------------------------------------------------------------------- item 18: streaming
@pytest.fixture
def lm():
    vocab = Vocabulary(specials=("<unk>",)).fit([list("abcdefgh")])
    model = Sequential([Embedding(len(vocab), 6, seed=0), LSTM(8, return_sequences=True, seed=1),
                        Dense(len(vocab), seed=2)])
    model.build((None, 5))
    return model, vocab


@pytest.mark.parametrize("options", [{}, {"stop": "ab", "include_stop": False}, {"stop": ["c", "hg"]}])
def test_sample_streams_pieces_that_make_the_returned_text(lm, options):
    model, vocab = lm
    pieces = []
    text = sample(model, vocab, "abc", length=60, seed=4, on_text=pieces.append, **options)
    assert "".join(pieces) == text == sample(model, vocab, "abc", length=60, seed=4, **options)
    assert all(p in vocab.tokens for p in pieces)  # one token at a time, as it is made


def test_sample_rejects_an_on_text_that_is_not_callable(lm):
    model, vocab = lm
    with pytest.raises(TypeError, match=r"on_text must be a callable or None, got str"):
        sample(model, vocab, "abc", length=3, on_text="print")
