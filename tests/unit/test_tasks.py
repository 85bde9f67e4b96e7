"""Tasks (``rnnlab.tasks``): the model builder, and the data, loss and metrics of each task built from a config."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnlab.data.datasets import time_series
from rnnlab.data.text import char_tokenize, word_tokenize
from rnnlab.lab.config import ConfigError, ModelConfig, parse_config
from rnnlab.lab.tasks import (
    LABELS,
    RunError,
    build_model,
    build_task,
    ptb_char_tokenize,
    tokenizer_of,
    whitespace_tokenize,
)
from rnnlab.nn.bidirectional import Bidirectional
from rnnlab.nn.layers import Dense, Dropout, Embedding, LockedDropout, OneHot
from rnnlab.nn.recurrent import GRU, LSTM, SimpleRNN


def config(data: str, model: str = "", train: str = "", overrides=()):
    return parse_config(f"[data]\n{data}\n[model]\n{model}\n[train]\n{train}\n", overrides)


# --------------------------------------------------------------------------- model
def test_model_embedding_bilstm_stack_with_dropout_on_every_non_recurrent_connection():
    cfg = ModelConfig(hidden_size=4, num_layers=2, embedding_dim=3, dropout=0.5, bidirectional=True)
    model = build_model(cfg, inputs="ids", n_inputs=7, n_outputs=2, sequence_output=False, mask_zero=True)
    assert [type(layer) for layer in model.layers] == [Embedding, Dropout, Bidirectional, Dropout, Bidirectional,
                                                       Dropout, Dense]
    # E 7x3; BiLSTM(3->4): 2 x (16*3 + 16*4 + 16); BiLSTM(8->4): 2 x (16*8 + 16*4 + 16); Dense 8->2
    assert model.count_params() == 21 + 2 * (48 + 64 + 16) + 2 * (128 + 64 + 16) + 18
    ids = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 1, 2]])
    assert model(ids).shape == (2, 2)
    assert model.layers[0].mask_zero


def test_model_for_values_and_for_one_hot_tokens():
    values = build_model(ModelConfig(cell="gru", hidden_size=5), inputs="values", n_inputs=2, n_outputs=3,
                         sequence_output=False)
    assert [type(layer) for layer in values.layers] == [GRU, Dense]
    assert values(np.zeros((4, 6, 2), np.float32)).shape == (4, 3)
    tokens = build_model(ModelConfig(cell="rnn", activation="relu", hidden_size=5), inputs="ids", n_inputs=9,
                         n_outputs=9, sequence_output=True)
    assert [type(layer) for layer in tokens.layers] == [OneHot, SimpleRNN, Dense]
    assert tokens.layers[1].get_config()["activation"] == "relu"
    assert tokens(np.zeros((2, 4), np.int64)).shape == (2, 4, 9)


@pytest.mark.parametrize("locked", [False, True])
def test_one_hot_inputs_get_no_dropout_the_layers_after_them_do(locked):
    """Dropping a one-hot vector's entry drops the token (a locked mask: the same characters for the whole
    sequence), so the dropout starts after the first recurrent layer, as PyTorch's nn.LSTM(dropout=) does."""
    model = build_model(ModelConfig(hidden_size=5, num_layers=2, dropout=0.3, locked_dropout=locked,
                                    recurrent_dropout=0.1), inputs="ids", n_inputs=9, n_outputs=9,
                        sequence_output=True)
    between = LockedDropout if locked else Dropout
    assert [type(layer) for layer in model.layers] == [OneHot, LSTM, between, LSTM, between, Dense]
    assert [layer.get_config()["recurrent_dropout"] for layer in (model.layers[1], model.layers[3])] == [0.1, 0.1]
    assert [layer.rate for layer in (model.layers[2], model.layers[4])] == [0.3, 0.3]
    with_embedding = build_model(ModelConfig(hidden_size=5, embedding_dim=4, dropout=0.3, locked_dropout=locked),
                                 inputs="ids", n_inputs=9, n_outputs=9, sequence_output=True)
    assert [type(layer) for layer in with_embedding.layers] == [Embedding, between, LSTM, between, Dense]


def test_init_sets_every_weight_and_forget_bias_overrides_it_unless_none():
    H = 6
    drawn = build_model(ModelConfig(init="uniform:0.1", forget_bias=None, hidden_size=H, embedding_dim=4, num_layers=2),
                        inputs="ids", n_inputs=11, n_outputs=11, sequence_output=True)
    for name, p in drawn.named_parameters():
        assert np.abs(p).max() <= 0.1, name
        assert np.abs(p).max() > 0.05, name  # drawn, not left at zero (biases included)
    biased = build_model(ModelConfig(init="uniform:0.1", forget_bias=1.0, hidden_size=H, embedding_dim=4),
                         inputs="ids", n_inputs=11, n_outputs=11, sequence_output=True)
    b = dict(biased.named_parameters())["1.b"]  # gates i, f, g, o
    assert np.all(b[H:2 * H] == 1.0) and np.abs(b[:H]).max() <= 0.1 and np.abs(b[2 * H:]).max() <= 0.1
    assert isinstance(biased.layers[1], LSTM)


def test_the_model_seed_fixes_the_weights():
    def make(seed):
        return dict(build_model(ModelConfig(hidden_size=3, seed=seed), inputs="values", n_inputs=2, n_outputs=1,
                                sequence_output=False).named_parameters())

    a, b, c = make(0), make(0), make(1)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["0.U"], c["0.U"])


def test_tokenizers():
    def data(text):
        return config(text).data

    assert tokenizer_of(data('task = "sentiment"\ndataset = "mr"')) == (whitespace_tokenize, " ")
    assert tokenizer_of(data('task = "sentiment"\ndataset = "uci_sentiment"')) == (word_tokenize, " ")
    assert (tokenizer_of(data('task = "sentiment"\ndataset = "uci_sentiment"\ntokenizer = "whitespace"'))[0]
            is whitespace_tokenize)
    assert (tokenizer_of(data('task = "language_model"\ndataset = "tiny_shakespeare"\nlevel = "char"'))
            == (char_tokenize, ""))
    assert tokenizer_of(data('task = "language_model"\ndataset = "ptb"\nlevel = "char"')) == (ptb_char_tokenize, "")
    assert whitespace_tokenize("The  cat's\tmat") == ["the", "cat's", "mat"]
    assert ptb_char_tokenize("A b") == ["a", "_", "b"]


# --------------------------------------------------------------------------- synthetic tasks
def test_adding_task(tmp_path):
    cfg = config('task = "adding"\nseq_len = 12\nn_train = 40\nn_val = 10\nn_test = 8\nbatch_size = 16',
                 "hidden_size = 4")
    task = build_task(cfg)
    assert task.loss == "mse" and task.config.train.metrics == ("mse",)
    assert task.input_shape == (None, 12, 2)
    assert [len(b.x) for b in (task.train, task.val, task.test)] == [40, 10, 8]
    assert len(task.train) == 3 and task.val.shuffle is False
    assert not np.array_equal(task.train.x[:8], task.test.x)  # the parts are drawn independently
    assert task.model(task.train.x[:2]).shape == (2, 1)
    results = task.evaluate("test", task.trainer(tmp_path))
    assert results["baseline_mse"] == pytest.approx(1 / 6)
    assert results["loss"] == pytest.approx(results["mse"], rel=1e-6)
    assert list(tmp_path.iterdir()) == []  # building and evaluating write nothing
    # solved: the first epoch whose validation MSE is below 0.01, and the sequences presented by then
    assert task._solved({"val_loss": [0.2, 0.05, 0.009, 0.02, 0.001]}) == {"threshold_mse": 0.01, "epoch": 3,
                                                                           "sequences": 3 * 40}
    assert task._solved({"val_loss": [0.2, 0.011]})["epoch"] is None


def test_copy_task_and_metrics_given_in_the_config_are_kept():
    cfg = config('task = "copy"\nseq_len = 5\nn_train = 20\nn_val = 4\nn_test = 4', "hidden_size = 4",
                 'metrics = ["accuracy", "perplexity"]')
    task = build_task(cfg)
    assert task.config.train.metrics == ("accuracy", "perplexity")
    assert task.loss == "cross_entropy" and task.input_shape == (None, 25)
    assert task.train.x.dtype == np.int64 and task.train.x.max() <= 9
    assert task.model(task.train.x[:3]).shape == (3, 25, 10)
    assert "baseline cross-entropy" in task.description[0]


# --------------------------------------------------------------------------- sentiment
def test_sentiment_splits_vocabulary_from_training_texts_only_and_padding(data_dir):
    cfg = config('task = "sentiment"\ndataset = "uci_sentiment"\nlimit = 300\nbatch_size = 25\nbucket = false',
                 "hidden_size = 4\nembedding_dim = 3")
    task = build_task(cfg, data_dir)
    sizes = [len(b.x) for b in (task.train, task.val, task.test)]
    assert sum(sizes) == 300 and sizes[2] == 30 and 26 <= sizes[1] <= 28
    vocab = task.vocab
    assert vocab.tokens[:2] == ["<pad>", "<unk>"]
    # every counted token comes from the training texts, and every training token was counted
    assert sum(vocab.counts.values()) == int(task.train.mask.sum())
    assert (task.test.x[task.test.mask] == vocab.unk_id).any()  # words seen only outside training are unknown
    assert np.all(task.train.x[~task.train.mask] == 0)  # post padding with <pad> = 0
    assert task.train.mask[:, 0].all() and task.train.x.shape[1] == task.input_shape[1]
    assert task.labels == LABELS and task.config.train.metrics == ("accuracy",)


def test_sentiment_cross_validation_folds_hold_out_different_texts(data_dir):
    def make(fold):
        return build_task(config(f'task = "sentiment"\ndataset = "uci_sentiment"\nlimit = 90\ncv_folds = 3\n'
                                 f'fold = {fold}\nbucket = false\nmaxlen = 40\nval_frac = 0', "hidden_size = 2"),
                          data_dir)

    first, second = make(1), make(2)
    assert len(first.test.x) == len(second.test.x) == 30 and len(first.train.x) == 60 and first.val is None
    assert not np.array_equal(first.test.x, second.test.x)
    assert "fold 2 of 3" in second.description[0]


# --------------------------------------------------------------------------- language models
def test_word_language_model_on_ptb(data_dir):
    cfg = config('task = "language_model"\ndataset = "ptb"\nlimit = 2000\nbatch_size = 4\nbptt = 10',
                 "hidden_size = 4\nembedding_dim = 3")
    task = build_task(cfg, data_dir)
    assert task.vocab.specials == ("<unk>",) and "<eos>" in task.vocab
    assert task.config.train.metrics == ("perplexity",)
    batch = next(iter(task.train))
    assert batch.x.shape == (4, 10) and np.array_equal(batch.x[:, 1:], batch.y[:, :-1])
    assert len(task.train) == math.ceil((2000 // 4 - 1) / 10)
    assert task.model(batch.x).shape == (4, 10, len(task.vocab))
    assert set(task.splits()) == {"train", "val", "test"}


def test_char_language_model_on_tiny_shakespeare_has_no_test_part(data_dir, tmp_path):
    cfg = config('task = "language_model"\ndataset = "tiny_shakespeare"\nlevel = "char"\nlimit = 500\nbatch_size = 2\n'
                 'bptt = 8', "hidden_size = 4")
    task = build_task(cfg, data_dir)
    assert task.config.train.metrics == ("bits_per_character",)
    assert task.vocab.tokens[0] == "<unk>" and all(len(t) == 1 for t in task.vocab.tokens[1:])
    assert isinstance(task.model.layers[0], OneHot) and task.test is None
    with pytest.raises(RunError, match=r"this language_model run has no 'test' part; it has train, val"):
        task.evaluate("test", task.trainer(tmp_path))


def test_a_limit_too_small_for_the_batch_is_a_config_error(data_dir):
    with pytest.raises(ConfigError,
                       match=r"the train part of ptb \(10 tokens\) is too short for batch_size=20 with limit=10"):
        build_task(config('task = "language_model"\ndataset = "ptb"\nlimit = 10\nbatch_size = 20'), data_dir)


# --------------------------------------------------------------------------- forecasting
def test_forecasting_scales_on_the_training_part_and_reports_baselines_in_original_units(data_dir, tmp_path):
    cfg = config('task = "forecasting"\ndataset = "airline-passengers"\nlookback = 12\nbatch_size = 16',
                 "hidden_size = 3")
    task = build_task(cfg, data_dir)
    _, series = time_series("airline-passengers", data_dir)  # 144 months
    n_train, n_val = round(144 * 0.7), round(144 * 0.15)
    assert (task.scaler.data_min[0], task.scaler.data_max[0]) == (series[:n_train].min(), series[:n_train].max())
    # the later values would have changed a scaler fitted on them
    assert series[n_train:].max() > series[:n_train].max()
    assert task.input_shape == (None, 12, 1) and task.train.x.dtype == np.float32
    results = task.evaluate("test", task.trainer(tmp_path))
    report = results["original_units"]
    test = series[n_train + n_val:]
    previous = series[n_train + n_val - 1:-1]
    last_year = series[n_train + n_val - 12:-12]
    assert report["naive"]["rmse"] == pytest.approx(np.sqrt(np.mean((test - previous) ** 2)))
    assert report["naive"]["mae"] == pytest.approx(np.mean(np.abs(test - previous)))
    assert report["seasonal_naive"]["rmse"] == pytest.approx(np.sqrt(np.mean((test - last_year) ** 2)))
    assert report["seasonal_naive"]["season"] == 12
    assert math.isfinite(report["model"]["rmse"]) and report["model"]["rmse"] > 0


def test_the_season_must_fit_in_the_window(data_dir):
    with pytest.raises(ConfigError,
                       match=r"season must be <= lookback = 6; got season 12 \(the default for this series\)"):
        build_task(config('task = "forecasting"\ndataset = "airline-passengers"\nlookback = 6'), data_dir)


def test_final_metrics_reuse_the_last_validation_and_evaluate_the_test_part(data_dir, tmp_path, monkeypatch):
    from rnnlab.training.trainer import Trainer

    cfg = config('task = "language_model"\ndataset = "ptb"\nlimit = 1200\nbatch_size = 4\nbptt = 10',
                 "hidden_size = 4\nembedding_dim = 3", "epochs = 1\nlog_every = 1000")
    task = build_task(cfg, data_dir)
    trainer = task.trainer(tmp_path)
    trainer.print_fn = lambda message: None
    history = trainer.run()
    evaluated = []
    real = Trainer._evaluate
    monkeypatch.setattr(Trainer, "_evaluate", lambda self, data: evaluated.append(data) or real(self, data))
    final = task.final_metrics(trainer)
    assert evaluated == [task.test]  # the validation part was evaluated at the end of the epoch, same weights
    assert final["val"] == {"loss": history["val_loss"][-1], "perplexity": history["val_perplexity"][-1]}
    assert set(final["test"]) == {"loss", "perplexity"}


def test_eval_bptt_reads_the_same_held_out_streams_in_longer_windows(data_dir, tmp_path):
    """The validation and test streams keep their rows and carry the state, so only the window length changes:
    the same loss and perplexity (float64 here, to the last bits but rounding)."""
    data = 'task = "language_model"\ndataset = "ptb"\nlimit = 1500\nbatch_size = 4\nbptt = 10'
    model = 'hidden_size = 4\nembedding_dim = 3\ndtype = "float64"'
    plain = build_task(config(data, model), data_dir)
    longer = build_task(config(data + "\neval_bptt = 60", model), data_dir)
    assert (longer.train.batch_size, longer.train.bptt) == (4, 10)
    for part in ("val", "test"):
        a, b = getattr(plain, part), getattr(longer, part)
        assert (a.batch_size, a.bptt, b.batch_size, b.bptt) == (4, 10, 4, 60)
        assert len(b) < len(a) and np.array_equal(a.rows(0), b.rows(0))
        ra, rb = plain.trainer(tmp_path / "a").evaluate(a), longer.trainer(tmp_path / "b").evaluate(b)
        assert rb == pytest.approx(ra, rel=1e-12)
    assert "evaluated in windows of 4 x 60" in longer.description[0]
    with pytest.raises(ConfigError, match="eval_bptt: does not apply to task 'sentiment'"):
        config('task = "sentiment"\ndataset = "mr"\neval_bptt = 50')


def test_eval_bptt_may_change_when_resuming(tmp_path):
    from rnnlab.lab.config import to_toml
    from rnnlab.lab.runs import _check_resumable

    data = 'task = "language_model"\ndataset = "ptb"\nbatch_size = 4\nbptt = 10'
    (tmp_path / "config.toml").write_text(to_toml(config(data)))
    _check_resumable(config(data + "\neval_bptt = 100"), tmp_path)
    with pytest.raises(ConfigError, match=r"the \[data\] section differs.*bptt: 10 -> 20"):
        _check_resumable(config(data.replace("bptt = 10", "bptt = 20")), tmp_path)
