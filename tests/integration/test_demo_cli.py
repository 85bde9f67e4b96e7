"""The command line through ``rnnlab.cli.main(argv)``: exit codes, messages, and both demos' reports.

Every test runs in its own ``tmp_path`` as the working directory; a demo may write only where it is
told to (``--run-dir run``, ``--data-dir data``), which the fixture checks afterwards.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys

import pytest

import rnnlab
from rnnlab import cli
from rnnlab.data.datasets import DatasetError
from rnnlab.lab.demo import (
    CharLMConfig,
    SentimentConfig,
    TimeBudget,
    run_charlm,
    run_sentiment,
    stdlib_corpus,
)


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RNNLAB_DATA", raising=False)
    yield
    assert all(p.name in ("data", "run") for p in tmp_path.iterdir()), \
        f"the command wrote files: {sorted(p.name for p in tmp_path.iterdir())}"


# A char-LM run of a few seconds: 60,000 characters, 64 units, 2 epochs of 27 windows of 32 rows x 64 steps.
QUICK = ["--limit", "60000", "--hidden", "64", "--epochs", "2"]


def _quick_config(**changes) -> CharLMConfig:
    return CharLMConfig(**{"limit": 60000, "hidden_size": 64, "epochs": 2, "sample_length": 80, **changes})


# --------------------------------------------------------------------------- usage
def test_no_command_is_a_usage_error(capsys):
    assert cli.main([]) == 2
    assert "a command is required: demo, gradcheck" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["demo", "charlm", "--help"],
                                  ["demo", "sentiment", "--help"], ["gradcheck", "--help"], ["--version"]])
def test_help_and_version_exit_zero(argv, capsys):
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert ("usage: rnnlab" in out) or (out.strip() == f"rnnlab {rnnlab.__version__}")


def test_demo_help_names_both_demos_and_the_char_lm_options(capsys):
    assert cli.main(["demo", "--help"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  charlm +\(the default\) a character-level LSTM", out, re.M)
    assert re.search(r"^  sentiment +a \(bidirectional\) LSTM sentiment classifier", out, re.M)
    for option in ("--epochs", "--seed", "--hidden", "--minutes", "--corpus-bytes", "--run-dir", "--limit"):
        assert option in out, option
    assert cli.main(["demo", "sentiment", "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: rnnlab demo sentiment" in out and "--cell" in out and "--data-dir" in out and "--hidden" not in out


@pytest.mark.parametrize("argv, message", [
    (["frobnicate"], r"invalid choice: 'frobnicate'"),
    (["demo", "bogus"], r"argument \[DEMO\]: invalid choice: 'bogus' \(choose from 'charlm', 'sentiment'\)"),
    (["demo", "--epochs", "0"], r"argument --epochs: expected a positive integer, got 0"),
    (["demo", "charlm", "--epochs", "two"], r"argument --epochs: expected a positive integer, got 'two'"),
    (["demo", "--hidden", "0"], r"argument --hidden: expected a positive integer, got 0"),
    (["demo", "--seed", "-1"], r"argument --seed: expected an integer >= 0, got -1"),
    (["demo", "--minutes", "0"], r"argument --minutes: expected a positive number, got 0"),
    (["demo", "--minutes", "soon"], r"argument --minutes: expected a positive number, got 'soon'"),
    (["demo", "--corpus-bytes", "100"], r"argument --corpus-bytes: expected an integer >= 2000, got 100"),
    (["demo", "--limit", "5"], r"argument --limit: expected an integer >= 2000, got 5"),
    (["demo", "--cell=gru"], r"unrecognized arguments: --cell=gru"),  # a sentiment option
    (["demo", "sentiment", "--epochs", "0"], r"argument --epochs: expected a positive integer, got 0"),
    (["demo", "sentiment", "--epochs", "two"], r"argument --epochs: expected a positive integer, got 'two'"),
    (["demo", "sentiment", "--cell", "transformer"], r"argument --cell: invalid choice: 'transformer'"),
    (["demo", "sentiment", "--limit", "5"], r"argument --limit: expected an integer >= 10, got 5"),
    (["demo", "sentiment", "--hidden", "8"], r"unrecognized arguments: --hidden 8"),  # a charlm option
    (["demo", "--frobnicate"], r"unrecognized arguments: --frobnicate"),
    (["gradcheck", "--tol", "-1"], r"argument --tol: expected a positive number, got -1"),
])
def test_bad_options_exit_two_naming_the_option(argv, message, capsys):
    assert cli.main(argv) == 2
    assert re.search(message, capsys.readouterr().err)


def test_python_dash_m_runs_the_same_main():
    done = subprocess.run([sys.executable, "-m", "rnnlab", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == f"rnnlab {rnnlab.__version__}"
    done = subprocess.run([sys.executable, "-m", "rnnlab"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "a command is required" in done.stderr


# --------------------------------------------------------------------------- gradcheck
def test_gradcheck_command_passes_and_prints_the_table(capsys):
    assert cli.main(["gradcheck"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["module", "gradient", "of", "relative", "error", "result"]
    for label in ("SimpleRNN(tanh)", "LSTM", "GRU(reset_after=False)", "Bidirectional(LSTM)", "OneToMany(first)",
                  "Seq2Seq(LSTM)", "GlobalMaxPool1D", "BiLSTM+GlobalAveragePool1D+Dense"):
        assert re.search(rf"^{re.escape(label)}\s", out, re.M), label
    assert re.search(r"^LSTM\s+initial_state\.1\s+\d\.\d{3}e-\d\d\s+ok$", out, re.M)
    assert "FAIL" not in out and out.rstrip().endswith("all passed")


def test_gradcheck_command_exits_one_when_a_gradient_exceeds_the_tolerance(capsys):
    assert cli.main(["gradcheck", "--tol", "1e-30"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and re.search(r"tolerance 1e-30: \d+ FAILED$", out.rstrip())


# --------------------------------------------------------------------------- demo (char-LM): the corpus
def test_the_corpus_is_the_public_stdlib_modules_sorted_by_name_and_cut(tmp_path):
    folder = tmp_path / "data" / "lib"
    folder.mkdir(parents=True)
    (folder / "zeta.py").write_text("z = 1\n", encoding="utf-8")
    (folder / "alpha.py").write_text("a = 'é'", encoding="utf-8")  # no final newline: one is added
    (folder / "_private.py").write_text("secret = 1\n", encoding="utf-8")
    (folder / "Beta.py").write_text("B = 2\r\n", encoding="utf-8")  # upper case sorts first; CRLF becomes LF
    (folder / "notes.txt").write_text("not python\n", encoding="utf-8")
    text, files = stdlib_corpus(10_000, folder)
    assert files == ["Beta.py", "alpha.py", "zeta.py"]
    assert text == "B = 2\na = 'é'\nz = 1\n"
    text, files = stdlib_corpus(8, folder)  # stops reading once it has enough, and cuts
    assert (text, files) == ("B = 2\na ", ["Beta.py", "alpha.py"])
    shutil.rmtree(tmp_path / "data")


def test_a_stdlib_without_sources_is_a_data_error_saying_where_it_looked(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "_only_private.py").write_text("x = 1\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=re.escape(f"'{tmp_path / 'data'}' holds no *.py source files")):
        stdlib_corpus(5000, tmp_path / "data")
    shutil.rmtree(tmp_path / "data")


def test_the_real_corpus_starts_with_the_first_public_stdlib_module():
    import os
    import sysconfig

    stdlib = sysconfig.get_paths()["stdlib"]
    first = min(n for n in os.listdir(stdlib) if n.endswith(".py") and not n.startswith("_"))
    with open(os.path.join(stdlib, first), encoding="utf-8") as f:
        head = f.read()[:3000]
    text, files = stdlib_corpus(3000)
    assert files == [first] and text == head  # the first module alone is longer than 3,000 characters
    assert len(stdlib_corpus(200_000)[0]) == 200_000


# --------------------------------------------------------------------------- demo (char-LM): the run
def test_char_lm_demo_trains_shows_progress_and_validation_and_writes_python(capsys):
    assert cli.main(["demo", *QUICK]) == 0
    out = capsys.readouterr().out
    V = int(re.search(r"vocabulary V = (\d+) characters", out).group(1))
    assert 60 < V < 100  # source code: letters, digits, punctuation, space, newline
    assert re.search(r"^train 54,000 characters, validation 6,000 \(the last 10%\)", out, re.M)
    assert re.search(r"^lstm \(LSTM\) +\(None, 64, 64\) +24,832 *$", out, re.M)  # 4 H (D + H + 1) with D = 32, H = 64
    assert len(re.findall(r"^epoch 1/2 batch \d+/27 step \d+: loss \d\.\d{4}", out, re.M)) >= 5  # progress lines
    assert re.search(r"^epoch 2/2 done in [\d.]+ s: .*val_loss [\d.]+, val_bits_per_character [\d.]+$", out, re.M)
    reports = re.findall(r"^validation after epoch (\d): (\d\.\d{4}) nats/char = (\d\.\d{4}) bits/char "
                         r"\(uniform baseline log2 V = (\d\.\d{3})\)$", out, re.M)
    assert [r[0] for r in reports] == ["1", "2"]
    for _, nats, bits, baseline in reports:
        assert float(bits) == pytest.approx(float(nats) / math.log(2), abs=2e-4)
        assert float(baseline) == pytest.approx(math.log2(V), abs=1e-3)
    first_bpc, last_bpc = float(reports[0][2]), float(reports[1][2])
    assert last_bpc < first_bpc and last_bpc < math.log2(V) - 1.0, reports  # learnt at least the character frequencies
    final = re.search(r"^final validation \(2 epoch\(s\), 54 steps\): [\d.]+ nats/char, ([\d.]+) bits/char", out, re.M)
    assert float(final.group(1)) == pytest.approx(last_bpc, abs=1e-3)
    samples = re.split(r"^--- primed with '(\w+ )', temperature ([\d.]+) ---\n", out.split("\nfinal validation")[1],
                       flags=re.M)
    assert [(prime, t) for prime, t in zip(samples[1::3], samples[2::3])] == [
        ("def ", "0.6"), ("class ", "0.6"), ("import ", "0.6"), ("def ", "0.9"), ("class ", "0.9"), ("import ", "0.9")]
    texts = samples[3::3]
    texts[-1], done = texts[-1].rsplit("\ndone in ", 1)
    assert re.fullmatch(r"[\d.]+ s\n", done)
    for prime, text in zip(samples[1::3], texts):
        assert text.startswith(prime) and len(text.rstrip("\n")) >= len(prime) + 100, (prime, text)  # 300 characters


def test_char_lm_demo_is_reproducible_from_its_seed():
    quiet = lambda line: None  # noqa: E731
    first, second = run_charlm(_quick_config(), print_fn=quiet), run_charlm(_quick_config(), print_fn=quiet)
    assert first.history["val_loss"] == second.history["val_loss"] and first.history["loss"] == second.history["loss"]
    assert first.samples == second.samples and len(first.samples) == 6
    assert not first.stopped_by_budget and first.epochs_run == 2 and first.run_dir is None
    other = run_charlm(_quick_config(seed=1), print_fn=quiet)
    assert other.history["loss"] != first.history["loss"] and other.samples != first.samples


def test_char_lm_demo_keeps_its_run_directory_and_refuses_to_overwrite_it(tmp_path, capsys):
    assert cli.main(["demo", *QUICK, "--epochs", "1", "--run-dir", "run"]) == 0
    run = tmp_path / "run"
    for name in ("train_config.json", "train.log", "history.json", "history.csv", "checkpoint.json", "vocab.json",
                 "corpus.json", "samples.txt"):
        assert (run / name).is_file(), name
    history = json.loads((run / "history.json").read_text("utf-8"))
    assert history["epoch"] == [1] and history["val_bits_per_character"][0] < 6
    corpus = json.loads((run / "corpus.json").read_text("utf-8"))
    assert corpus["characters"] == 60000 and corpus["files"][0].endswith(".py")
    assert "--- primed with 'import ', temperature 0.9 ---" in (run / "samples.txt").read_text("utf-8")
    capsys.readouterr()
    assert cli.main(["demo", *QUICK, "--run-dir", "run"]) == 1
    assert re.search(r"^rnnlab demo: error: the run directory 'run' already holds a training run",
                     capsys.readouterr().err, re.M)


def test_char_lm_demo_stops_cleanly_at_its_time_budget(capsys):
    # 1e-6 min = 60 microseconds, long gone when the first batch ends: one batch, then validation and samples
    assert cli.main(["demo", "--limit", "60000", "--hidden", "32", "--epochs", "3", "--minutes", "0.000001"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^time budget of 1e-06 min reached at epoch 1, batch 1/27 \(step 1\)", out, re.M)
    assert re.search(r"^epoch 1/3 done in ", out, re.M) and not re.search(r"^epoch 2/3", out, re.M)
    assert re.search(r"^final validation \(1 epoch\(s\), 1 steps, stopped by the time budget\)", out, re.M)
    assert out.count("--- primed with ") == 6


def test_char_lm_config_and_time_budget_reject_bad_values():
    with pytest.raises(ValueError, match=r"hidden_size must be a positive int, got 0"):
        CharLMConfig(hidden_size=0)
    with pytest.raises(ValueError, match=r"limit must be an int >= 2000, got 100"):
        CharLMConfig(limit=100)
    with pytest.raises(ValueError, match=r"minutes must be a finite number > 0, got -1"):
        CharLMConfig(minutes=-1)
    with pytest.raises(ValueError, match=r"seed must be an int >= 0, got -2"):
        CharLMConfig(seed=-2)
    with pytest.raises(ValueError, match=r"val_fraction must lie in \(0, 0.5\), got 0.7"):
        CharLMConfig(val_fraction=0.7)
    with pytest.raises(ValueError, match=r"temperatures must be numbers > 0, got \(0.5, 0\)"):
        CharLMConfig(temperatures=(0.5, 0))
    with pytest.raises(ValueError, match=r"seconds must be a number > 0, got 0"):
        TimeBudget(0)


def test_a_corpus_too_short_for_the_batches_says_so():
    with pytest.raises(ValueError, match=r"the corpus of 2,000 characters is too short for batch_size=32, bptt=64"):
        run_charlm(CharLMConfig(limit=2000, val_fraction=0.01), print_fn=lambda line: None)


# --------------------------------------------------------------------------- demo sentiment: data errors
def test_sentiment_demo_without_data_exits_one_saying_how_to_provide_it(capsys):
    assert cli.main(["demo", "sentiment", "--epochs", "1"]) == 1
    err = capsys.readouterr().err
    assert (err.startswith("rnnlab demo: error: no data directory given") and "RNNLAB_DATA" in err
            and "--data-dir" in err)


def test_sentiment_demo_with_a_data_dir_lacking_the_dataset_names_the_folder(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    assert cli.main(["demo", "sentiment", "--data-dir", str(tmp_path / "data")]) == 1
    assert f"'{tmp_path / 'data' / 'uci_sentiment'}' not found" in capsys.readouterr().err


def test_sentiment_demo_with_a_damaged_file_exits_one_on_the_checksum(tmp_path, data_dir, capsys):
    folder = tmp_path / "data" / "uci_sentiment"
    shutil.copytree(data_dir / "uci_sentiment", folder)
    for path in folder.iterdir():
        path.chmod(0o644)  # the shared copies are read-only
    (folder / "imdb_labelled.txt").write_text("tampered\t1\n", encoding="utf-8")
    assert cli.main(["demo", "sentiment", "--data-dir", str(tmp_path / "data")]) == 1
    assert "checksum mismatch" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "data")


def test_sentiment_demo_reads_the_data_directory_from_the_environment(data_dir, monkeypatch, capsys):
    monkeypatch.setenv("RNNLAB_DATA", str(data_dir))
    assert cli.main(["demo", "sentiment", "--epochs", "1", "--limit", "100"]) == 0
    assert "80 train / 20 test" in capsys.readouterr().out


# --------------------------------------------------------------------------- demo sentiment: the report
@pytest.mark.slow
@pytest.mark.parametrize("cell, bidirectional, layer_line", [
    ("lstm", True, "bidirectional (Bidirectional)"),
    ("gru", False, "gru (GRU)"),
    ("rnn", False, "simple_rnn (SimpleRNN)"),
])
def test_sentiment_demo_prints_summary_epochs_accuracy_and_probe_predictions(data_dir, cell, bidirectional, layer_line,
                                                                              capsys):
    argv = ["demo", "sentiment", "--data-dir", str(data_dir), "--epochs", "2", "--limit", "400", "--cell", cell,
            "--bidirectional" if bidirectional else "--no-bidirectional"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "320 train / 80 test (seed 0)" in out
    assert 'Model: "sequential"' in out and layer_line in out and "embedding (Embedding)" in out
    assert re.search(r"^Total params: [\d,]+$", out, re.M)
    assert re.search(r"^epoch  1/2  loss \d\.\d{4}  accuracy \d\.\d{4}  test_loss \d\.\d{4}  "
                     r"test_accuracy \d\.\d{4}", out, re.M)
    assert re.search(r"^epoch  2/2 ", out, re.M)
    assert re.search(r"^test accuracy: \d\.\d{4} \(\d+/80\)", out, re.M)
    for phrase in ("movie was good", "movie was bad", "movie was not good"):
        assert re.search(rf"'{phrase}'\s+-> (positive|negative)\s+\(P\(positive\) = \d\.\d{{3}}\)", out), phrase


@pytest.mark.slow
def test_sentiment_demo_is_reproducible_and_beats_chance(data_dir):
    config = SentimentConfig(data_dir=str(data_dir), epochs=2, limit=1500, bidirectional=False, seed=3)
    first = run_sentiment(config, print_fn=lambda line: None)
    second = run_sentiment(config, print_fn=lambda line: None)
    assert first.history == second.history and first.predictions == second.predictions
    assert (first.n_train, first.n_test) == (1200, 300)
    assert first.test_accuracy > 0.65, f"test accuracy {first.test_accuracy:.3f} on 300 held-out sentences"
    assert (run_sentiment(SentimentConfig(**{**config.__dict__, "seed": 4}), print_fn=lambda line: None).history
            != first.history)


def test_sentiment_config_rejects_bad_values():
    with pytest.raises(ValueError, match=r"cell must be one of 'rnn', 'lstm', 'gru'; got 'cnn'"):
        SentimentConfig(cell="cnn")
    with pytest.raises(ValueError, match=r"epochs must be a positive int, got 0"):
        SentimentConfig(epochs=0)
    with pytest.raises(ValueError, match=r"test_fraction must lie in \(0, 1\), got 1.0"):
        SentimentConfig(test_fraction=1.0)
