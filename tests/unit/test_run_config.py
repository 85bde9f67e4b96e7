"""The run configuration (``rnnlab.config``): schema, validation messages, ``--set`` overrides, TOML round trip."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from rnnlab.lab.config import (
    ConfigError,
    DataConfig,
    ModelConfig,
    RunConfig,
    apply_overrides,
    load_config,
    parse_config,
    to_toml,
)
from rnnlab.training.trainer import TrainConfig

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.toml"))
SENTIMENT = '[data]\ntask = "sentiment"\ndataset = "mr"\n'


def test_the_five_example_configs_exist_and_validate():
    assert {p.stem for p in EXAMPLES} >= {"sentiment_mr", "charlm_shakespeare", "ptb_small", "sunspots", "adding"}
    for path in EXAMPLES:
        assert isinstance(load_config(path), RunConfig)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_to_toml_reads_back_to_the_same_config(path):
    config = load_config(path)
    text = to_toml(config, header="a header\non two lines")
    assert text.startswith("# a header\n# on two lines\n")
    assert parse_config(text) == config
    # every section written holds the applicable keys only, so re-reading never trips the applicability check
    assert set(tomllib.loads(text)["data"]) == set(config.data.applicable()) - {
        k for k in config.data.applicable() if getattr(config.data, k) is None}


def test_ptb_small_is_zaremba_small():
    c = load_config(next(p for p in EXAMPLES if p.stem == "ptb_small"))
    assert (c.data.task, c.data.dataset, c.data.level, c.data.batch_size, c.data.bptt) == (
        "language_model", "ptb", "word", 20, 20)
    assert (c.model.cell, c.model.num_layers, c.model.hidden_size, c.model.dropout, c.model.init) == (
        "lstm", 2, 200, 0.0, "uniform:0.1")
    assert c.model.forget_bias is None
    assert (c.train.epochs, c.train.optimizer, c.train.schedule) == (13, "sgd", "step")
    # lr 1 and clip 5 on a loss summed over the 20 steps == lr 20 and clip 0.25 on the per-token mean
    assert (c.train.lr / 20, c.train.clip_norm * 20) == (1.0, 5.0)
    schedule = c.train.make_schedule()
    assert [schedule.lr(e) / c.train.lr for e in range(7)] == [1, 1, 1, 1, 0.5, 0.25, 0.125]


def test_defaults_fill_in_model_and_train():
    config = parse_config(SENTIMENT)
    assert config.model == ModelConfig()
    assert config.train == TrainConfig()
    assert config.data.batch_size == 32 and config.data.dataset == "mr"


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("section, key", [("data", "lookbak"), ("model", "hiden_size"), ("train", "learning_rate")])
def test_unknown_keys_name_the_key_the_section_and_the_valid_keys(section, key):
    table = f"{key} = 1\n" if section == "data" else f"[{section}]\n{key} = 1\n"
    with pytest.raises(ConfigError) as info:
        parse_config(SENTIMENT + table)
    message = str(info.value)
    assert f"config [{section}]: unknown key {key!r}" in message
    valid = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}[section]
    assert "valid keys: " + ", ".join(f.name for f in dataclasses.fields(valid)) in message


def test_a_close_misspelling_gets_a_suggestion():
    with pytest.raises(ConfigError, match=r"unknown key 'hiden_size' \(did you mean 'hidden_size'\?\)"):
        parse_config(SENTIMENT + "[model]\nhiden_size = 3\n")


def test_unknown_and_missing_sections():
    with pytest.raises(ConfigError, match=r"unknown section \[modle\] \(did you mean 'model'\?\); "
                                          r"valid sections: \[data\], \[model\], \[train\]"):
        parse_config(SENTIMENT + "[modle]\ncell = 'gru'\n")
    with pytest.raises(ConfigError, match=r"missing section \[data\]"):
        parse_config("[model]\ncell = 'gru'\n")
    with pytest.raises(ConfigError, match=r"config \[data\]: missing required key 'task' \(one of 'sentiment', "):
        parse_config("[data]\ndataset = 'mr'\n")


@pytest.mark.parametrize("extra, message", [
    ("[model]\nhidden_size = '64'\n", r"config \[model\] hidden_size: expected an int >= 1, got str '64'"),
    ("[model]\nhidden_size = 0\n", r"config \[model\] hidden_size: expected an int >= 1, got int 0"),
    ("[model]\ndropout = 1.0\n", r"config \[model\] dropout: expected a number in \[0, 1\), got float 1.0"),
    ("[model]\nbidirectional = 'yes'\n",
     r"config \[model\] bidirectional: expected true or false, got str 'yes'"),
    ("[model]\ncell = 'transformer'\n",
     r"config \[model\] cell: expected one of 'rnn', 'lstm', 'gru', got str 'transformer'"),
    ("[model]\nembedding_dim = 2.5\n",
     r"config \[model\] embedding_dim: expected an int >= 1 or \"none\", got float 2.5"),
    ("[model]\ninit = 'gaussian'\n", r"config \[model\] init: init must be one of .*got 'gaussian'"),
    ("[train]\nlr = 'fast'\n", r"config \[train\] lr must be a finite number > 0, got str 'fast'"),
    ("[train]\nepochs = 2.5\n", r"config \[train\] epochs must be an int >= 1, got float 2.5"),
    ("[train]\noptimizer = 'lbfgs'\n", r"config \[train\] optimizer must be one of 'sgd', 'adam'"),
    ("maxlen = [3]\n", r"config \[data\] maxlen: expected an int >= 1 or \"none\", got array \[3\]"),
])
def test_wrong_types_and_values_name_the_key_the_expectation_and_the_value(extra, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(SENTIMENT + extra)


@pytest.mark.parametrize("text, message", [
    (SENTIMENT + "lookback = 12\n",
     r"config \[data\] lookback: does not apply to task 'sentiment'; keys that apply: task, dataset"),
    ('[data]\ntask = "adding"\nmaxlen = 3\n', r"config \[data\] maxlen: does not apply to task 'adding'"),
    (SENTIMENT + "[model]\ncell = 'gru'\nforget_bias = 0.0\n",
     r"config \[model\] forget_bias: does not apply to cell 'gru'"),
    (SENTIMENT + "[model]\ncell = 'gru'\nactivation = 'relu'\n",
     r"config \[model\] activation: does not apply to cell 'gru'"),
    (SENTIMENT + "level = 'char'\ntokenizer = 'word'\n",
     r"config \[data\] tokenizer: does not apply to task 'sentiment'"),
])
def test_keys_that_do_not_apply_to_the_task_or_cell_fail(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(text)


@pytest.mark.parametrize("text, message", [
    ('[data]\ntask = "sentiment"\n', r"task 'sentiment' needs a dataset, one of 'mr', 'uci_sentiment'"),
    ('[data]\ntask = "sentiment"\ndataset = "ptb"\n',
     r"dataset: expected one of 'mr', 'uci_sentiment' for task 'sentiment', got 'ptb'"),
    ('[data]\ntask = "adding"\ndataset = "mr"\n', r"task 'adding' generates its data and reads no data set"),
    (SENTIMENT + "fold = 2\n", r"fold: needs cv_folds"),
    (SENTIMENT + "cv_folds = 10\nfold = 11\n", r"fold: expected an int in \[1, cv_folds=10\], got 11"),
    (SENTIMENT + "cv_folds = 10\ntest_frac = 0.1\n", r"with cv_folds each fold is the test part in turn"),
    (SENTIMENT + "val_frac = 0.5\ntest_frac = 0.5\n", r"val_frac \+ test_frac must be < 1"),
    ('[data]\ntask = "language_model"\ndataset = "ptb"\ntokenizer = "word"\n',
     r"ptb is read as its files' whitespace-separated"),
    ('[data]\ntask = "language_model"\ndataset = "ptb"\n[model]\nbidirectional = true\n',
     r"a language model predicts the next token"),
    (SENTIMENT + "[model]\nbidirectional = true\n[train]\nbptt = 10\n",
     r"truncated BPTT .* which a bidirectional layer cannot"),
    ('[data]\ntask = "adding"\n[model]\nembedding_dim = 8\n', r"task 'adding' reads real-valued inputs"),
    (SENTIMENT + "[model]\nactivation = 'sigmoid'\n",
     r"expected 'tanh' or 'relu' for an LSTM's candidate, got 'sigmoid'"),
    (SENTIMENT + "[train]\nmetrics = ['acuracy']\n", r"metrics: 'acuracy' is not a metric of task 'sentiment'; "
                                                     r"expected names among accuracy, acc, perplexity"),
    ('[data]\ntask = "adding"\n[train]\nmetrics = ["accuracy"]\n', r"'accuracy' is not a metric of task 'adding'; "
                                                                    r"expected names among mse, "),
])
def test_cross_field_rules(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(text)


def test_config_files_that_are_missing_or_not_toml(tmp_path):
    with pytest.raises(ConfigError, match=r"config file '.*nope.toml' not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[data]\ntask = sentiment\n")
    with pytest.raises(ConfigError, match=r"config file '.*bad.toml' is not valid TOML: .*line 2"):
        load_config(bad)


# --------------------------------------------------------------------------- --set
def test_overrides_are_toml_literals_with_bare_words_as_strings():
    config = parse_config(SENTIMENT, ["train.lr=0.5", "model.cell=gru", 'data.padding="pre"',
                                      "model.bidirectional=true", "train.metrics=['accuracy']", "train.optimizer=sgd",
                                      "train.optimizer_args.momentum=0.9", "train.schedule_args={ factor = 0.5 }",
                                      "train.schedule=step", "data.max_size=500", "data.batch_size=16",
                                      "data.batch_size=8"])
    assert config.train.lr == 0.5 and isinstance(config.train.lr, float)
    assert (config.model.cell, config.data.padding, config.model.bidirectional) == ("gru", "pre", True)
    assert config.train.metrics == ("accuracy",)
    assert config.train.optimizer_args == {"momentum": 0.9}
    assert config.train.schedule_args == {"factor": 0.5}
    assert config.data.max_size == 500
    assert config.data.batch_size == 8  # the last override wins


def test_none_unsets_an_optional_key():
    base = SENTIMENT + "maxlen = 40\n[train]\nclip_norm = 5.0\n[model]\nforget_bias = 2.0\n"
    assert parse_config(base).train.clip_norm == 5.0
    config = parse_config(base, ["train.clip_norm=none", "data.maxlen=none", "model.forget_bias=none"])
    assert (config.train.clip_norm, config.data.maxlen, config.model.forget_bias) == (None, None, None)
    with pytest.raises(ConfigError, match=r"config \[model\] hidden_size: expected an int >= 1, got str 'none'"):
        parse_config(base, ["model.hidden_size=none"])


@pytest.mark.parametrize("override, message", [
    ("train.lr", r"--set 'train.lr': expected section.key=value"),
    ("lr=0.5", r"--set 'lr=0.5': expected section.key=value"),
    ("optim.lr=0.5", r"--set 'optim.lr=0.5': unknown section 'optim'; valid sections: data, model, train"),
    ("train.lr.x=1", r"--set 'train.lr.x=1': train.lr is not a table"),
    ("train.lr=abc", r"config \[train\] lr must be a finite number > 0, got str 'abc'"),
    ("model.hidden=3", r"config \[model\]: unknown key 'hidden'"),
])
def test_bad_overrides(override, message):
    with pytest.raises(ConfigError, match=message):
        parse_config('[data]\ntask = "sentiment"\ndataset = "mr"\n[train]\nlr = 0.1\n', [override])


def test_apply_overrides_does_not_touch_its_input():
    document = {"data": {"task": "adding"}, "train": {"optimizer_args": {}}}
    out = apply_overrides(document, ["train.optimizer_args.momentum=0.9", "model.cell=gru"])
    assert document == {"data": {"task": "adding"}, "train": {"optimizer_args": {}}}
    assert out == {"data": {"task": "adding"}, "train": {"optimizer_args": {"momentum": 0.9}}, "model": {"cell": "gru"}}


def test_train_section_is_exactly_trainconfig():
    fields = [f.name for f in dataclasses.fields(TrainConfig)]
    config = parse_config('[data]\ntask = "adding"\n', ["train.max_steps=3", "train.bptt=5", "train.patience=2"])
    assert list(config.to_dict()["train"]) == fields
    assert config.train == TrainConfig(max_steps=3, bptt=5, patience=2)
    assert re.search(r"\nmax_steps = 3\n", to_toml(config))
