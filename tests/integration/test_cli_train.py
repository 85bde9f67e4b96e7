"""``rnnlab train | evaluate | generate | predict | summary`` through ``cli.main(argv)`` in a temporary directory.

Exit codes (0 ok, 1 runtime/data error, 2 usage/config error, 130 interrupted), the files of a run
directory, resume, divergence, and every example config starting and running a step.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import in_tmp_path, run  # noqa: F401  (in_tmp_path: an autouse fixture)

from rnnlab.data.text import Vocabulary
from rnnlab.io import files as io
from rnnlab.lab.config import load_config
from rnnlab.training.trainer import Trainer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

ADDING = """
[data]
task = "adding"
seq_len = 10
n_train = 48
n_val = 16
n_test = 16
batch_size = 8

[model]
hidden_size = 6

[train]
epochs = 2
lr = 0.01
"""


def write(name: str, text: str) -> str:
    Path(name).write_text(text, encoding="utf-8")
    return name


def weights(path) -> dict:
    return dict(io.load(path).named_parameters())


# --------------------------------------------------------------------------- train: the run directory
def test_train_writes_the_run_directory(capsys):
    code, out, err = run(capsys, "train", write("adding.toml", ADDING), "--set", "train.max_steps=3")
    assert code == 0, err
    run_dir = Path("runs/adding")  # the default: runs/<config name>
    assert f"run written to {run_dir}" in out
    for name in ("config.toml", "metrics.json", "model/config.json", "model/weights.npz", "train_config.json",
                 "train.log", "history.json", "history.csv", "checkpoint.json"):
        assert (run_dir / name).is_file(), name
    config = load_config(run_dir / "config.toml")  # the resolved config reads back
    assert config.train.max_steps == 3 and config.train.metrics == ("mse",) and config.data.n_train == 48
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert (metrics["task"], metrics["steps"], metrics["epochs"]) == ("adding", 3, 1)
    assert set(metrics["val"]) == set(metrics["test"]) == {"loss", "mse", "baseline_mse"}
    assert metrics["test"]["baseline_mse"] == pytest.approx(1 / 6)
    assert re.search(r"^test\.mse\s+\d", out, re.M)
    history = json.loads((run_dir / "history.json").read_text())
    assert history["step"] == [3]
    solved = history["val_loss"][0] < 0.01
    assert metrics["solved"] == {"threshold_mse": 0.01, "epoch": 1 if solved else None,
                                 "sequences": 48 if solved else None}


def test_train_text_task_saves_its_vocabulary_and_predict_and_evaluate_use_it(capsys, data_dir):
    config = write("uci.toml", '[data]\ntask = "sentiment"\ndataset = "uci_sentiment"\nlimit = 200\nbatch_size = 20\n'
                               "[model]\nhidden_size = 4\nembedding_dim = 4\n[train]\nmax_steps = 2\n")
    code, _, err = run(capsys, "train", config, "--run-dir", "run", "--data-dir", data_dir)
    assert code == 0, err
    vocab = Vocabulary.from_json(Path("run/vocab.json").read_text())
    assert vocab.tokens[:2] == ["<pad>", "<unk>"] and len(vocab) > 100
    code, out, err = run(capsys, "predict", "run", "What a great phone", "Awful, it broke.")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "label\tprobability\ttext" and len(lines) == 3
    for line, text in zip(lines[1:], ("What a great phone", "Awful, it broke.")):
        label, p, shown = line.split("\t")
        assert label in ("negative", "positive") and 0.5 <= float(p) <= 1 and shown == text
    # the same texts from a file, one per line, and from a CSV's text column: the same rows
    Path("texts.txt").write_text("What a great phone\n\nAwful, it broke.\n")
    Path("texts.csv").write_text('id,text\n1,What a great phone\n2,"Awful, it broke."\n')
    for name in ("texts.txt", "texts.csv"):
        code, from_file, err = run(capsys, "predict", "run", "--file", name)
        assert code == 0, err
        assert from_file == out
    code, _, err = run(capsys, "predict", "run", "--file", "nothing.txt")
    assert code == 2 and err.count("\n") == 1 and "nothing.txt" in err
    code, out, err = run(capsys, "evaluate", "run", "--data-dir", data_dir)
    assert code == 0, err
    accuracy = float(re.search(r"^accuracy\s+(\S+)", out, re.M).group(1))
    assert accuracy == pytest.approx(json.loads(Path("run/metrics.json").read_text())["test"]["accuracy"])
    assert re.search(r"^split\s+test$", out, re.M)


def test_language_model_run_generates_reproducibly_and_ranks_next_characters(capsys, data_dir):
    config = write("lm.toml", '[data]\ntask = "language_model"\ndataset = "tiny_shakespeare"\nlevel = "char"\n'
                              "limit = 3000\nbatch_size = 4\nbptt = 16\n[model]\nhidden_size = 8\n"
                              "[train]\nmax_steps = 2\n")
    assert run(capsys, "train", config, "--run-dir", "lm", "--data-dir", data_dir)[0] == 0
    args = ["generate", "lm", "--prime", "ROMEO:", "--length", "30", "--temperature", "0.8", "--top-k", "20",
            "--seed", "3"]
    code, first, err = run(capsys, *args)
    assert code == 0, err
    assert first.startswith("ROMEO:") and len(first.rstrip("\n")) >= len("ROMEO:") + 30
    assert run(capsys, *args)[1] == first  # same seed, same text
    assert run(capsys, *args[:-1], "4")[1] != first
    for stop in ("e", "\\n"):  # the second is typed as backslash-n in a shell
        code, stopped, err = run(capsys, *args, "--stop", stop, "--stop", "zz")
        assert code == 0, err
        text = "\n" if stop == "\\n" else "e"
        continuation = stopped[len("ROMEO:"):-1]  # print() adds the last newline
        full = first[len("ROMEO:"):-1]
        assert stop != "e" or text in full  # the branch below runs at least once
        if text in full:  # the same sampled text, cut right after the first stop text
            assert continuation == full[:full.index(text) + 1]
            code, dropped, err = run(capsys, *args, "--stop", stop, "--drop-stop")
            assert code == 0 and dropped[len("ROMEO:"):-1] == continuation[:-1]
        else:
            assert continuation == full
    code, out, err = run(capsys, "predict", "lm", "To be or not to b")
    assert code == 0, err
    rows = [line.split("\t") for line in out.splitlines()[1:]]
    probabilities = [float(p) for _, p in rows]
    assert len(rows) == 10 and probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0001
    metrics = json.loads(Path("lm/metrics.json").read_text())
    assert "test" not in metrics and metrics["val"]["bits_per_character"] == pytest.approx(
        metrics["val"]["loss"] / math.log(2), rel=1e-6)


def test_many_to_many_forecasting_trains_on_every_step_and_reports_the_last(capsys, data_dir):
    config = write("m2m.toml", '[data]\ntask = "forecasting"\ndataset = "airline-passengers"\nlookback = 12\n'
                               "horizon = 2\nmany_to_many = true\n[model]\nhidden_size = 4\n[train]\nmax_steps = 2\n")
    code, out, err = run(capsys, "train", config, "--run-dir", "m2m", "--data-dir", data_dir)
    assert code == 0, err
    model = io.load("m2m/model")
    y = model(np.zeros((3, 12, 1), dtype=np.float32))
    assert y.shape == (3, 12, 2)  # a forecast of the next 2 values after every step
    metrics = json.loads(Path("m2m/metrics.json").read_text())
    units = metrics["test"]["original_units"]
    assert set(units) == {"model", "naive", "seasonal_naive"} and all(np.isfinite(v["rmse"]) for v in units.values())
    # the baselines are those of the many-to-one run on the same windows: the last step's targets
    one = write("m2o.toml", Path("m2m.toml").read_text().replace("many_to_many = true\n", ""))
    assert run(capsys, "train", one, "--run-dir", "m2o", "--data-dir", data_dir)[0] == 0
    single = json.loads(Path("m2o/metrics.json").read_text())["test"]["original_units"]
    assert units["naive"] == single["naive"] and units["seasonal_naive"] == single["seasonal_naive"]
    code, out, err = run(capsys, "predict", "m2m", *[str(v) for v in range(300, 312)])
    assert code == 0, err
    assert [line.split("\t")[0] for line in out.splitlines()] == ["step", "t+1", "t+2"]


def test_forecasting_run_predicts_from_numbers(capsys, data_dir):
    config = write("fc.toml", '[data]\ntask = "forecasting"\ndataset = "airline-passengers"\n'
                              "lookback = 12\nhorizon = 2\n"
                              "[model]\nhidden_size = 4\n[train]\nmax_steps = 2\n")
    assert run(capsys, "train", config, "--run-dir", "fc", "--data-dir", data_dir)[0] == 0
    assert (Path("fc/scaler.json")).is_file()
    history = [str(v) for v in range(300, 320)]
    code, out, err = run(capsys, "predict", "fc", *history)  # 20 values: the latest 12 are used
    assert code == 0, err
    assert [line.split("\t")[0] for line in out.splitlines()] == ["step", "t+1", "t+2"]
    assert float(out.splitlines()[1].split("\t")[1]) > 50  # in passengers (thousands), not scaled units
    code, _, err = run(capsys, "predict", "fc", "1", "2", "3")
    assert code == 2 and "needs the latest lookback = 12 finite values, oldest first; got 3" in err
    code, _, err = run(capsys, "predict", "fc", *history[:12], "lots")
    assert code == 2 and "a forecasting run predicts from numbers" in err
    code, out, err = run(capsys, "evaluate", "fc", "--split", "val", "--data-dir", data_dir)
    assert code == 0, err
    assert re.search(r"^original_units\.seasonal_naive\.rmse\s+\d", out, re.M)


# --------------------------------------------------------------------------- errors and exit codes
@pytest.mark.parametrize("argv, message", [
    (["--set", "model.hiden_size=3"],
     r"rnnlab train: error: config \[model\]: unknown key 'hiden_size' \(did you mean 'hidden_size'\?\); "
     r"valid keys: cell, "),
    (["--set", "model.hidden_size=big"], r"config \[model\] hidden_size: expected an int >= 1, got str 'big'"),
    (["--set", "train.lr=-1"], r"config \[train\] lr must be a finite number > 0, got float -1.0"),
    (["--set", "lr=1"], r"--set 'lr=1': expected section.key=value"),
    (["--set", "data.lookback=5"], r"config \[data\] lookback: does not apply to task 'adding'"),
])
def test_config_errors_exit_2_with_the_message(capsys, argv, message):
    code, _, err = run(capsys, "train", write("adding.toml", ADDING), *argv)
    assert code == 2
    assert re.search(message, err)
    assert not Path("runs").exists()  # nothing is written before the configuration is valid


def test_unreadable_configs_and_usage_errors_exit_2(capsys):
    code, _, err = run(capsys, "train", "missing.toml")
    assert code == 2 and "config file 'missing.toml' not found" in err
    code, _, err = run(capsys, "summary", write("bad.toml", "[data\ntask = 'adding'\n"))
    assert code == 2 and "is not valid TOML" in err
    assert run(capsys, "train")[0] == 2  # argparse: CONFIG is required
    code, _, err = run(capsys, "generate", "somewhere", "--prime", "x", "--top-p", "1.5")
    assert code == 2 and "argument --top-p: expected a number in (0, 1], got 1.5" in err


def test_runtime_errors_exit_1(capsys, tmp_path, data_dir):
    code, _, err = run(capsys, "evaluate", "nowhere")
    assert code == 1 and "run directory 'nowhere' does not exist" in err
    code, _, err = run(capsys, "train", write("uci.toml", '[data]\ntask = "sentiment"\ndataset = "uci_sentiment"\n'),
                       "--data-dir", tmp_path / "no-data")
    assert code == 1 and "does not exist or is not a directory" in err
    config = write("adding.toml", ADDING)
    assert run(capsys, "train", config, "--set", "train.max_steps=1")[0] == 0
    code, _, err = run(capsys, "train", config)
    assert code == 1 and "'runs/adding' already holds a training run; pass --resume" in err
    code, _, err = run(capsys, "generate", "runs/adding", "--prime", "x")
    assert code == 1 and "is a run of task 'adding'; generate needs a language_model run" in err
    code, _, err = run(capsys, "predict", "runs/adding", "1")
    assert code == 1 and "a run of task 'adding' takes generated sequences" in err
    code, _, err = run(capsys, "train", config, "--run-dir", "fresh", "--resume")
    assert code == 1 and "nothing to resume: 'fresh' holds no checkpoint" in err
    code, _, err = run(capsys, "train", config, "--resume", "--set", "data.seq_len=11")
    assert code == 2 and "--resume: the [data] section differs from the run's" in err and "seq_len: 10 -> 11" in err
    code, _, err = run(capsys, "train", write("uci.toml", '[data]\ntask = "sentiment"\ndataset = "uci_sentiment"\n'
                                                         "limit = 50\nval_frac = 0\n[train]\npatience = 2\n"),
                       "--data-dir", data_dir)
    assert code == 2 and "config [train] does not fit this sentiment run: val is None, but the config reads" in err


def test_a_diverged_run_exits_1_and_keeps_its_last_good_checkpoint(capsys):
    config = write("boom.toml", ADDING + "optimizer = 'sgd'\ncheckpoint_every_steps = 1\n")
    code, _, err = run(capsys, "train", config, "--set", "model.cell=rnn", "--set", "model.activation=relu",
                       "--set", "train.lr=100", "--run-dir", "boom")
    assert code == 1
    assert re.search(r"rnnlab train: error: training diverged at epoch 1, step (\d+) "
                     r".*the last good checkpoint, .* is kept", err)
    step = int(re.search(r"step (\d+)", err).group(1))
    manifest = json.loads(Path("boom/checkpoint.json").read_text())
    assert manifest["step"] == step - 1
    assert all(np.abs(w).max() < 1e6 for w in weights(Path("boom") / manifest["path"] / "model").values())
    assert not Path("boom/metrics.json").exists() and not Path("boom/model").exists()


# --------------------------------------------------------------------------- resume
def test_resume_after_max_steps_continues_the_run(capsys):
    config = write("adding.toml", ADDING)
    assert run(capsys, "train", config, "--set", "train.max_steps=2", "--run-dir", "r")[0] == 0
    # epoch 1 was closed after 2 steps; epoch 2 has all 6 batches, epoch 3 stops at step 9
    code, _, err = run(capsys, "train", config, "--set", "train.max_steps=9", "--set", "train.epochs=3",
                         "--run-dir", "r", "--resume")
    assert code == 0, err
    metrics = json.loads(Path("r/metrics.json").read_text())
    assert metrics["steps"] == 9 and metrics["epochs"] == 3
    assert json.loads(Path("r/history.json").read_text())["step"] == [2, 8, 9]
    log = Path("r/train.log").read_text()
    assert "resumed from" in log and "max_steps 2 -> 9" in log
    assert load_config("r/config.toml").train.max_steps == 9


def test_an_interrupted_run_resumed_ends_with_the_weights_of_an_uninterrupted_one(capsys, monkeypatch):
    config = write("drop.toml", ADDING.replace("hidden_size = 6", "hidden_size = 6\nnum_layers = 2\ndropout = 0.3")
                   + "checkpoint_every_steps = 1\n")
    assert run(capsys, "train", config, "--run-dir", "whole")[0] == 0

    original = Trainer._update

    def interrupted(self, *args, **kwargs):
        if self.step == 8:  # mid-epoch 2 (6 batches per epoch)
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_update", interrupted)
    code, _, err = run(capsys, "train", config, "--run-dir", "cut")
    assert code == 130 and "continue with: rnnlab train drop.toml --run-dir cut --resume" in err
    assert json.loads(Path("cut/checkpoint.json").read_text())["step"] == 8
    monkeypatch.setattr(Trainer, "_update", original)
    code, _, err = run(capsys, "train", config, "--run-dir", "cut", "--resume")
    assert code == 0, err
    whole, cut = weights("whole/model"), weights("cut/model")
    assert all(np.array_equal(whole[k], cut[k]) for k in whole)
    assert json.loads(Path("cut/metrics.json").read_text()) == json.loads(Path("whole/metrics.json").read_text())


# --------------------------------------------------------------------------- cross-validation
def test_cross_validation_trains_every_fold_and_reports_mean_and_std(capsys, data_dir):
    config = write("cv.toml", '[data]\ntask = "sentiment"\ndataset = "uci_sentiment"\nlimit = 90\ncv_folds = 3\n'
                              "batch_size = 30\n[model]\nhidden_size = 3\nembedding_dim = 3\n[train]\nmax_steps = 1\n")
    code, out, err = run(capsys, "train", config, "--run-dir", "cv", "--data-dir", data_dir)
    assert code == 0, err
    folds = [json.loads(Path(f"cv/fold-0{k}/metrics.json").read_text()) for k in (1, 2, 3)]
    assert [f["fold"] for f in folds] == [1, 2, 3]
    accuracies = [f["test"]["accuracy"] for f in folds]
    summary = json.loads(Path("cv/metrics.json").read_text())
    assert summary["fold_accuracy"] == accuracies and summary["cv_folds"] == 3
    assert summary["accuracy_mean"] == pytest.approx(sum(accuracies) / 3)
    assert summary["accuracy_std"] == pytest.approx(np.std(accuracies, ddof=1))
    assert re.search(r"^accuracy_mean\s+\d", out, re.M)
    assert load_config("cv/fold-02/config.toml").data.fold == 2
    code, _, err = run(capsys, "evaluate", "cv", "--data-dir", data_dir)
    assert code == 1 and "is a 3-fold cross-validation run: use one of its folds" in err
    assert run(capsys, "evaluate", "cv/fold-02", "--data-dir", data_dir)[0] == 0
    code, _, err = run(capsys, "train", config, "--run-dir", "cv", "--data-dir", data_dir)
    assert code == 1 and "'cv' already holds a cross-validation run (fold-01, fold-02, fold-03 started)" in err
    # resuming a finished cross-validation reuses every fold's results
    assert run(capsys, "train", config, "--run-dir", "cv", "--data-dir", data_dir, "--resume")[0] == 0
    assert json.loads(Path("cv/metrics.json").read_text()) == summary


def test_cross_validation_without_a_validation_part(capsys, data_dir):
    """val_frac = 0: each fold trains on the whole of its training part; no validation figures are reported."""
    config = write("cv0.toml", '[data]\ntask = "sentiment"\ndataset = "uci_sentiment"\nlimit = 90\ncv_folds = 3\n'
                               "val_frac = 0\nbatch_size = 30\n[model]\nhidden_size = 3\nembedding_dim = 3\n"
                               "[train]\nmax_steps = 1\n")
    code, out, err = run(capsys, "train", config, "--run-dir", "cv0", "--data-dir", data_dir)
    assert code == 0, err
    folds = [json.loads(Path(f"cv0/fold-0{k}/metrics.json").read_text()) for k in (1, 2, 3)]
    assert all("val" not in f and 0 <= f["test"]["accuracy"] <= 1 for f in folds)
    summary = json.loads(Path("cv0/metrics.json").read_text())
    assert summary["fold_accuracy"] == [f["test"]["accuracy"] for f in folds]
    assert "fold_val_accuracy" not in summary and "fold_val_accuracy" not in out
    assert "train 60, val 0, test 30" in out  # a fold's 90 texts: two thirds for training, none held out


def test_the_mr_cross_validation_example_trains_every_fold(capsys, data_dir):
    code, out, err = run(capsys, "train", EXAMPLES / "sentiment_mr_regularised.toml", "--set", "data.limit=100",
                         "--set", "train.max_steps=1", "--run-dir", "mr", "--data-dir", data_dir)
    assert code == 0, err
    summary = json.loads(Path("mr/metrics.json").read_text())
    assert summary["cv_folds"] == 10 and len(summary["fold_accuracy"]) == 10
    assert load_config("mr/fold-10/config.toml").model == load_config(EXAMPLES / "sentiment_mr_regularised.toml").model


# --------------------------------------------------------------------------- summary and the examples
def test_summary_prints_the_resolved_config_the_data_and_the_model(capsys):
    code, out, err = run(capsys, "summary", write("adding.toml", ADDING), "--set", "model.num_layers=2")
    assert code == 0, err
    resolved = tomllib.loads(out[:out.index("\nadding problem")])
    assert resolved["model"]["num_layers"] == 2 and resolved["train"]["metrics"] == ["mse"]
    assert "adding problem, T = 10: train 48, val 16, test 16" in out
    assert re.search(r"^Total params: [\d,]+$", out, re.M)
    assert list(Path().iterdir()) == [Path("adding.toml")]  # summary writes nothing


#: per example, the --set that makes its data tiny: the model and training sections are used as written, the
#: batch sizes too; the language models get rows of 3 tokens (one window of 2 steps per part)
TINY = {
    "adding": ["data.n_train=16", "data.n_val=8", "data.n_test=8", "data.seq_len=20"],
    "charlm_shakespeare": ["data.limit=150"],
    "ptb_small": ["data.limit=60"],
    "sentiment_mr": ["data.limit=60"],
    "sunspots": ["data.limit=600", "data.lookback=12", "data.season=12"],
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_each_example_config_starts_and_trains_a_step(capsys, data_dir, name):
    overrides = [a for o in TINY[name] + ["train.max_steps=1"] for a in ("--set", o)]
    code, _, err = run(capsys, "train", EXAMPLES / f"{name}.toml", *overrides, "--run-dir", name,
                       "--data-dir", data_dir)
    assert code == 0, err
    metrics = json.loads(Path(name, "metrics.json").read_text())
    assert metrics["steps"] == 1 and math.isfinite(metrics["val"]["loss"])
    written = load_config(Path(name, "config.toml"))
    example = load_config(EXAMPLES / f"{name}.toml")
    assert written.model == example.model  # the model as the example describes it
