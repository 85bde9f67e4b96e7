"""Pooling over time (``rnnlab.nn.pooling``): the forward semantics with padding masks, ties, dtypes, errors,
model files and the summary; and ``[model] pooling`` in the run configuration and the classifiers it builds.
(Gradients: tests/gradcheck/test_pooling_gradcheck.py; PyTorch: tests/reference/test_pooling_reference.py.)"""

from __future__ import annotations

import numpy as np
import pytest

import rnnlab
from rnnlab import optim
from rnnlab.io.files import load, save
from rnnlab.lab.config import ConfigError, DataConfig, ModelConfig, RunConfig, parse_config, to_toml
from rnnlab.lab.tasks import build_model, build_task
from rnnlab.nn import losses
from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.layers import Dense, Dropout, Embedding
from rnnlab.nn.pooling import GlobalAveragePool1D, GlobalAveragePooling1D, GlobalMaxPool1D, GlobalMaxPooling1D
from rnnlab.nn.recurrent import LSTM
from rnnlab.nn.sequential import Sequential
from rnnlab.nn.step import train_step

POOLS = [GlobalMaxPool1D, GlobalAveragePool1D]
# (B=3, T=4): right padding, left padding, no padding
MASK = np.array([[1, 1, 0, 0], [0, 1, 1, 1], [1, 1, 1, 1]], dtype=bool)


def test_padded_steps_never_win_the_max_and_do_not_count_in_the_mean(rng):
    x = rng.standard_normal((3, 4, 2))
    x[~MASK] = 100.0  # padding that would win every max and dominate every mean
    got_max = GlobalMaxPool1D(dtype="float64")(x, mask=MASK)
    got_mean = GlobalAveragePool1D(dtype="float64")(x, mask=MASK)
    for b in range(3):
        valid = x[b, MASK[b]]  # (n_b, 2)
        np.testing.assert_array_equal(got_max[b], valid.max(axis=0))
        np.testing.assert_allclose(got_mean[b], valid.mean(axis=0), rtol=1e-15)
    # without a mask every step counts
    np.testing.assert_array_equal(GlobalMaxPool1D()(x), x.max(axis=1))
    np.testing.assert_allclose(GlobalAveragePool1D()(x), x.mean(axis=1), rtol=1e-15)


def test_a_tied_maximum_sends_its_gradient_to_the_first_tied_step():
    x = np.array([[[1.0, 5.0], [4.0, 5.0], [4.0, 2.0], [4.0, 5.0]]])  # feature 0: steps 1-3 tie; feature 1: 0, 1, 3
    layer = GlobalMaxPool1D(dtype="float64")
    np.testing.assert_array_equal(layer(x), [[4.0, 5.0]])
    dx = layer.backward(np.array([[2.0, 3.0]]))
    np.testing.assert_array_equal(dx[0], [[0, 3], [2, 0], [0, 0], [0, 0]])
    # masked, the first *valid* tied step gets it
    layer(x, mask=np.array([[False, False, True, True]]))
    np.testing.assert_array_equal(layer.backward(np.array([[2.0, 3.0]]))[0], [[0, 0], [0, 0], [2, 0], [0, 3]])


@pytest.mark.parametrize("cls", POOLS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_input_dtype_is_kept_and_no_mask_leaves(cls, dtype, rng):
    layer = cls()  # the layer's own dtype only applies to inputs that are not float arrays
    x = rng.standard_normal((3, 4, 2)).astype(dtype)
    y = layer(x, mask=MASK)
    assert y.dtype == np.dtype(dtype) and y.shape == (3, 2)
    assert layer.backward(np.ones((3, 2), dtype)).dtype == np.dtype(dtype)
    assert layer.compute_mask(MASK, x) is None
    assert layer.output_shape((None, 4, 2)) == (None, 2)
    assert layer.count_params() == 0 and layer.backward(np.ones((3, 2)), input_grad=False) is None


def test_the_keras_spellings_are_the_same_classes():
    assert GlobalMaxPooling1D is GlobalMaxPool1D and GlobalAveragePooling1D is GlobalAveragePool1D
    assert rnnlab.GlobalMaxPool1D is GlobalMaxPool1D and rnnlab.GlobalAveragePooling1D is GlobalAveragePool1D


@pytest.mark.parametrize("cls", POOLS)
def test_bad_inputs_name_the_argument(cls, rng):
    layer = cls()
    x = rng.standard_normal((3, 4, 2))
    with pytest.raises(ValueError, match=r"backward was called before forward"):
        layer.backward(np.ones((3, 2)))
    with pytest.raises(TypeError, match=r"x must be a float array, got dtype int64"):
        layer(np.zeros((3, 4, 2), np.int64))
    with pytest.raises(ValueError, match=r"x must have 3 dimensions .* got shape \(3, 4\)"):
        layer(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"x must have at least one time step .* \(3, 0, 2\)"):
        layer(np.zeros((3, 0, 2)))
    with pytest.raises(ValueError, match=r"mask must have shape \(batch, timesteps\) = \(3, 4\), got \(1, 4\)"):
        layer(x, mask=MASK[:1])  # no broadcasting of a mask
    with pytest.raises(ValueError, match=r"mask: row 1 of the batch is all padding \(2 such row"):
        layer(x, mask=np.array([[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], bool))
    with pytest.raises(ValueError, match=r"initial_state must be None"):
        layer(x, initial_state=[np.zeros((3, 2))])
    layer(x, mask=MASK)
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(3, 2\), got \(1, 2\)"):
        layer.backward(np.ones((1, 2)))  # no broadcasting of dy
    with pytest.raises(ValueError, match=r"needs \(batch, timesteps, features\) inputs, got shape \(None, 4\)"):
        layer.output_shape((None, 4))


def _classifier(pool_cls, seed=0):
    return Sequential([Embedding(20, 6, mask_zero=True, seed=seed),
                       Bidirectional(LSTM(4, return_sequences=True, seed=seed + 1)),
                       pool_cls(name="pool"), Dense(3, seed=seed + 2)])


@pytest.mark.parametrize("cls", POOLS)
def test_a_pooled_classifier_saves_loads_and_summarises(cls, tmp_path, rng):
    model = _classifier(cls)
    ids = rng.integers(1, 20, (4, 7))
    ids[1, 4:] = 0  # right padding
    ids[2, :5] = 0  # left padding
    y = model(ids)
    assert y.shape == (4, 3)
    save(model, tmp_path / "m")
    loaded = load(tmp_path / "m")
    assert [type(layer) for layer in loaded.layers] == [Embedding, Bidirectional, cls, Dense]
    assert loaded.layers[2].name == "pool" and loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded(ids), y)
    # the mask reaches the pooling: more padding (whose steps output zeros) changes nothing
    np.testing.assert_allclose(model(np.pad(ids, ((0, 0), (0, 3)))), y, rtol=1e-5, atol=1e-6)
    text = model.summary(print_fn=None)
    assert f"pool ({cls.__name__})" in text
    row = next(line for line in text.splitlines() if line.startswith("pool ("))
    assert row.split()[-3:] == ["(None,", "8)", "0"]  # both directions concatenated, no parameters
    unnamed = Sequential([LSTM(2, input_size=3, return_sequences=True), cls(), Dense(1)])
    snake = {GlobalMaxPool1D: "global_max_pool1d", GlobalAveragePool1D: "global_average_pool1d"}[cls]
    assert f"{snake} ({cls.__name__})" in unnamed.summary(input_shape=(None, 5, 3), print_fn=None)


# --------------------------------------------------------------------------- [model] pooling
def config(data: str, model: str = "", overrides=()):
    return parse_config(f"[data]\n{data}\n[model]\n{model}\n", overrides)


SENTIMENT = 'task = "sentiment"\ndataset = "mr"'


def test_pooling_is_validated_naming_the_key_and_the_choices():
    with pytest.raises(ConfigError, match=r"\[model\] pooling: expected one of 'last', 'max', 'mean', got str 'avg'"):
        config(SENTIMENT, 'pooling = "avg"')
    with pytest.raises(ConfigError, match=r"\[model\] pooling: expected one of .* got int 1"):
        config(SENTIMENT, "pooling = 1")
    with pytest.raises(ConfigError, match=r"\[model\] pooling: does not apply to task 'language_model'"):
        config('task = "language_model"\ndataset = "ptb"', 'pooling = "last"')
    with pytest.raises(ConfigError, match=r"\[model\] pooling: 'max' pools the sequence of a classifier"):
        RunConfig(DataConfig(task="copy"), ModelConfig(pooling="max"))


def test_pooling_reads_back_and_is_written_only_for_the_classifiers():
    cfg = config(SENTIMENT, 'pooling = "max"')
    assert cfg.model.pooling == "max" and 'pooling = "max"' in to_toml(cfg)
    assert parse_config(to_toml(cfg)) == cfg
    assert config(SENTIMENT).model.pooling == "last"
    assert "pooling" not in to_toml(config('task = "language_model"\ndataset = "ptb"'))
    assert config('task = "classification"\npath = "x.csv"', 'pooling = "mean"').model.pooling == "mean"


@pytest.mark.parametrize("pooling, cls", [("max", GlobalMaxPool1D), ("mean", GlobalAveragePool1D)])
def test_a_pooled_model_reads_both_directions_whole_sequences(pooling, cls, rng):
    cfg = ModelConfig(hidden_size=4, embedding_dim=3, dropout=0.5, bidirectional=True, pooling=pooling,
                      embedding_dropout=0.2)
    model = build_model(cfg, inputs="ids", n_inputs=9, n_outputs=2, sequence_output=False, mask_zero=True)
    assert [type(layer) for layer in model.layers] == [Embedding, Dropout, Bidirectional, cls, Dropout, Dense]
    assert model.layers[2].return_sequences and model.layers[5].input_size == 8  # 2 directions x 4
    assert model.layers[0].dropout == 0.2
    ids = np.array([[1, 2, 3, 0, 0], [0, 4, 5, 6, 8]])
    assert model(ids).shape == (2, 2)
    with pytest.raises(ConfigError, match=r"pooling: 'max' pools a classifier's sequence"):
        build_model(ModelConfig(pooling="max"), inputs="ids", n_inputs=9, n_outputs=9, sequence_output=True)


def test_last_is_the_default_and_builds_the_model_it_always_built(rng):
    plain = build_model(ModelConfig(hidden_size=4, embedding_dim=3, bidirectional=True, dropout=0.5), inputs="ids",
                        n_inputs=9, n_outputs=2, sequence_output=False, mask_zero=True)
    last = build_model(ModelConfig(hidden_size=4, embedding_dim=3, bidirectional=True, dropout=0.5, pooling="last"),
                       inputs="ids", n_inputs=9, n_outputs=2, sequence_output=False, mask_zero=True)
    assert [type(layer) for layer in last.layers] == [Embedding, Dropout, Bidirectional, Dropout, Dense]
    assert not last.layers[2].return_sequences and last.get_config() == plain.get_config()
    ids = rng.integers(1, 9, (3, 6))
    np.testing.assert_array_equal(last(ids), plain(ids))
    for (name, p), (_, q) in zip(last.named_parameters(), plain.named_parameters()):
        np.testing.assert_array_equal(p, q, err_msg=name)


@pytest.mark.parametrize("pooling", ["max", "mean"])
def test_sentiment_with_pooling_and_embedding_dropout_trains_a_step(data_dir, pooling):
    cfg = config('task = "sentiment"\ndataset = "mr"\nlimit = 120\nbatch_size = 20',
                 f'bidirectional = true\nhidden_size = 4\nembedding_dim = 5\npooling = "{pooling}"\n'
                 'embedding_dropout = 0.3\ndropout = 0.2')
    task = build_task(cfg, data_dir)
    embedding, pool = task.model.layers[0], task.model.layers[3]
    assert isinstance(pool, {"max": GlobalMaxPool1D, "mean": GlobalAveragePool1D}[pooling])
    assert embedding.dropout == 0.3 and "embedding_dropout=0.3" in task.model.summary(task.input_shape, print_fn=None)
    batch = next(iter(task.train))
    trained = task.model(batch.x, mask=batch.mask, training=True)
    assert embedding.dropout_masks["rows"].shape == (embedding.vocab_size,)
    assert not np.array_equal(trained, task.model(batch.x, mask=batch.mask))  # dropped in training only
    before = {name: p.copy() for name, p in task.model.named_parameters()}
    result = train_step(task.model, losses.get(task.loss), optim.get("adam"), batch.x, batch.y, mask=batch.mask)
    assert np.isfinite(result.loss)
    assert all(not np.array_equal(p, before[name]) for name, p in task.model.named_parameters()
               if name != "0.E"), "a parameter was not updated"
