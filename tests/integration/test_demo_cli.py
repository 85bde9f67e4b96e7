"""The command line through ``rnnlab.cli.main(argv)``: exit codes, messages, the demo's report.

Every test runs in its own ``tmp_path`` (the demo must not write anything there).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

import rnnlab
from rnnlab import cli
from rnnlab.demo import DemoConfig, run_demo


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RNNLAB_DATA", raising=False)
    yield
    assert list(tmp_path.iterdir()) == [] or all(p.name == "data" for p in tmp_path.iterdir()), \
        f"the command wrote files: {sorted(p.name for p in tmp_path.iterdir())}"


# --------------------------------------------------------------------------- usage
def test_no_command_is_a_usage_error(capsys):
    assert cli.main([]) == 2
    assert "a command is required: demo, gradcheck" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["gradcheck", "--help"], ["--version"]])
def test_help_and_version_exit_zero(argv, capsys):
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert ("usage: rnnlab" in out) or (out.strip() == f"rnnlab {rnnlab.__version__}")


@pytest.mark.parametrize("argv, message", [
    (["train"], r"invalid choice: 'train'"),
    (["demo", "--epochs", "0"], r"argument --epochs: expected a positive integer, got 0"),
    (["demo", "--epochs", "two"], r"argument --epochs: expected a positive integer, got 'two'"),
    (["demo", "--cell", "transformer"], r"argument --cell: invalid choice: 'transformer'"),
    (["demo", "--limit", "5"], r"argument --limit: expected an integer >= 10, got 5"),
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
                  "Seq2Seq(LSTM)"):
        assert re.search(rf"^{re.escape(label)}\s", out, re.M), label
    assert re.search(r"^LSTM\s+initial_state\.1\s+\d\.\d{3}e-\d\d\s+ok$", out, re.M)
    assert "FAIL" not in out and out.rstrip().endswith("all passed")


def test_gradcheck_command_exits_one_when_a_gradient_exceeds_the_tolerance(capsys):
    assert cli.main(["gradcheck", "--tol", "1e-30"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and re.search(r"tolerance 1e-30: \d+ FAILED$", out.rstrip())


# --------------------------------------------------------------------------- demo: data errors
def test_demo_without_data_exits_one_saying_how_to_provide_it(capsys):
    assert cli.main(["demo", "--epochs", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("rnnlab demo: error: no data directory given") and "RNNLAB_DATA" in err and "--data-dir" in err


def test_demo_with_a_data_dir_lacking_the_dataset_names_the_folder(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    assert cli.main(["demo", "--data-dir", str(tmp_path / "data")]) == 1
    assert f"'{tmp_path / 'data' / 'uci_sentiment'}' not found" in capsys.readouterr().err


def test_demo_with_a_damaged_file_exits_one_on_the_checksum(tmp_path, data_dir, capsys):
    folder = tmp_path / "data" / "uci_sentiment"
    shutil.copytree(data_dir / "uci_sentiment", folder)
    for path in folder.iterdir():
        path.chmod(0o644)  # the shared copies are read-only
    (folder / "imdb_labelled.txt").write_text("tampered\t1\n", encoding="utf-8")
    assert cli.main(["demo", "--data-dir", str(tmp_path / "data")]) == 1
    assert "checksum mismatch" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "data")


def test_demo_reads_the_data_directory_from_the_environment(data_dir, monkeypatch, capsys):
    monkeypatch.setenv("RNNLAB_DATA", str(data_dir))
    assert cli.main(["demo", "--epochs", "1", "--limit", "100"]) == 0
    assert "80 train / 20 test" in capsys.readouterr().out


# --------------------------------------------------------------------------- demo: the report
@pytest.mark.slow
@pytest.mark.parametrize("cell, bidirectional, layer_line", [
    ("lstm", True, "bidirectional (Bidirectional)"),
    ("gru", False, "gru (GRU)"),
    ("rnn", False, "simple_rnn (SimpleRNN)"),
])
def test_demo_prints_summary_epochs_accuracy_and_probe_predictions(data_dir, cell, bidirectional, layer_line, capsys):
    argv = ["demo", "--data-dir", str(data_dir), "--epochs", "2", "--limit", "400", "--cell", cell,
            "--bidirectional" if bidirectional else "--no-bidirectional"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "320 train / 80 test (seed 0)" in out
    assert 'Model: "sequential"' in out and layer_line in out and "embedding (Embedding)" in out
    assert re.search(r"^Total params: [\d,]+$", out, re.M)
    assert re.search(r"^epoch  1/2  loss \d\.\d{4}  accuracy \d\.\d{4}  test_loss \d\.\d{4}  test_accuracy \d\.\d{4}", out, re.M)
    assert re.search(r"^epoch  2/2 ", out, re.M)
    assert re.search(r"^test accuracy: \d\.\d{4} \(\d+/80\)", out, re.M)
    for phrase in ("movie was good", "movie was bad", "movie was not good"):
        assert re.search(rf"'{phrase}'\s+-> (positive|negative)\s+\(P\(positive\) = \d\.\d{{3}}\)", out), phrase


@pytest.mark.slow
def test_demo_is_reproducible_and_beats_chance(data_dir):
    config = DemoConfig(data_dir=str(data_dir), epochs=2, limit=1500, bidirectional=False, seed=3)
    first = run_demo(config, print_fn=lambda line: None)
    second = run_demo(config, print_fn=lambda line: None)
    assert first.history == second.history and first.predictions == second.predictions
    assert (first.n_train, first.n_test) == (1200, 300)
    assert first.test_accuracy > 0.65, f"test accuracy {first.test_accuracy:.3f} on 300 held-out sentences"
    assert run_demo(DemoConfig(**{**config.__dict__, "seed": 4}), print_fn=lambda line: None).history != first.history


def test_demo_config_rejects_bad_values():
    with pytest.raises(ValueError, match=r"cell must be one of 'lstm', 'gru', 'rnn'; got 'cnn'"):
        DemoConfig(cell="cnn")
    with pytest.raises(ValueError, match=r"epochs must be a positive int, got 0"):
        DemoConfig(epochs=0)
    with pytest.raises(ValueError, match=r"test_fraction must lie in \(0, 1\), got 1.0"):
        DemoConfig(test_fraction=1.0)
