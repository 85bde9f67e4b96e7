"""The command line under bad input: one line on stderr, the documented exit code, never a traceback.

Cases of the reliability battery (issue 16) that go through ``rnnlab ...``: every command with a set
of bad inputs (:func:`test_every_command_refuses_bad_input_in_one_line`), ``--debug`` and
``RNNLAB_DEBUG`` for the traceback, ``RNNLAB_KERNELS`` and Ctrl-C while the program starts, runs whose
files are missing or not files, unknown tokens, a model whose weights exploded, and ``generate``'s
cap and streaming. The runs are trained once per module (a few steps on a slice of the data).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnlab
from rnnlab import cli
from rnnlab.cli.run import MAX_LENGTH
from rnnlab.generate.generator import Generator
from rnnlab.nn import kernels

SRC = Path(rnnlab.__file__).resolve().parents[1]

CONFIGS = {
    "lm": '[data]\ntask = "language_model"\ndataset = "tiny_shakespeare"\nlevel = "char"\nlimit = 3000\n'
          "batch_size = 4\nbptt = 16\n[model]\nhidden_size = 8\n[train]\nmax_steps = 2\n",
    "senti": '[data]\ntask = "sentiment"\ndataset = "uci_sentiment"\nlimit = 200\nbatch_size = 20\n'
             "[model]\nhidden_size = 4\nembedding_dim = 4\n[train]\nmax_steps = 2\n",
    "fc": '[data]\ntask = "forecasting"\ndataset = "airline-passengers"\nlookback = 12\nhorizon = 2\n'
          "[model]\nhidden_size = 4\n[train]\nmax_steps = 2\n",
}
ADDING = '[data]\ntask = "adding"\nseq_len = 10\nn_train = 16\nn_val = 8\nn_test = 8\nbatch_size = 8\n' \
         "[model]\nhidden_size = 4\n[train]\nmax_steps = 1\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir) -> Path:
    """A folder holding trained runs ``lm`` (characters), ``senti`` (sentiment) and ``fc`` (forecasting)."""
    root = tmp_path_factory.mktemp("runs")
    for name, text in CONFIGS.items():
        (root / f"{name}.toml").write_text(text, encoding="utf-8")
        assert cli.main(["train", str(root / f"{name}.toml"), "--run-dir", str(root / name),
                         "--data-dir", str(data_dir)]) == 0
    (root / "adding.toml").write_text(ADDING, encoding="utf-8")
    (root / "bad.toml").write_text("[data\n", encoding="utf-8")
    (root / "a_file").write_text("not a run\n", encoding="utf-8")
    return root


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RNNLAB_DEBUG", raising=False)


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def copy_run(runs: Path, name: str, to: str) -> Path:
    return Path(shutil.copytree(runs / name, to))


# --------------------------------------------------------------------------- the sweep
TWELVE = [str(v) for v in range(300, 312)]

BAD_INPUTS = [  # (argv with {runs} for the trained runs' folder, exit code, a part of the message)
    ([], 2, "a command is required"),
    (["nosuch"], 2, "invalid choice: 'nosuch'"),
    (["--debug"], 2, "a command is required"),
    (["train", "missing.toml"], 2, "'missing.toml' not found"),
    (["train", "{runs}/bad.toml"], 2, "bad.toml"),
    (["train", "{runs}/adding.toml", "--set", "model.hidden_size=big"], 2, "hidden_size"),
    (["train", "{runs}/adding.toml", "--run-dir", "{runs}/a_file"], 1, "a_file"),
    (["train", "{runs}/adding.toml", "--run-dir", "{runs}/fc"], 1, "already holds a training run"),
    (["train", "{runs}/adding.toml", "--bogus"], 2, "unrecognized arguments: --bogus"),
    (["summary", "{runs}/bad.toml"], 2, "bad.toml"),
    (["evaluate", "missing"], 1, "does not exist"),
    (["evaluate", "{runs}/a_file"], 1, "is not a directory"),
    (["evaluate", "{runs}/lm", "--split", "test"], 1, "no 'test' part"),
    (["evaluate", "{runs}/lm", "--split", "dev"], 2, "invalid choice: 'dev'"),
    (["generate", "missing", "--prime", "a"], 1, "does not exist"),
    (["generate", "{runs}/lm"], 2, "--prime"),
    (["generate", "{runs}/lm", "--prime", ""], 2, "prime must hold at least one token"),
    (["generate", "{runs}/lm", "--prime", "a", "--length", "0"], 2, "expected an integer from 1 to"),
    (["generate", "{runs}/lm", "--prime", "a", "--length", str(MAX_LENGTH + 1)], 2, "expected an integer from 1 to"),
    (["generate", "{runs}/lm", "--prime", "a", "--temperature", "-1"], 2, "expected a positive number"),
    (["generate", "{runs}/lm", "--prime", "a", "--stop", "\u20ac\u20ac"], 2, "not in it"),
    (["generate", "{runs}/fc", "--prime", "a"], 1, "generate needs a language_model run"),
    (["predict", "missing", "x"], 1, "does not exist"),
    (["predict", "{runs}/fc", "1", "2"], 2, "lookback = 12"),
    (["predict", "{runs}/fc", *TWELVE[:-1], "lots"], 2, "predicts from numbers"),
    (["predict", "{runs}/fc", *TWELVE[:5], "nan", *TWELVE[6:]], 2, "input 6 of 12 is 'nan'"),
    (["predict", "{runs}/fc", *TWELVE[:-1], "1e300"], 2, "out of float32's range"),
    (["predict", "{runs}/senti", ""], 2, "no token"),
    (["diagnose", "missing"], 1, "does not exist"),
    (["diagnose", "{runs}/fc", "--batch-size", "0"], 2, "expected a positive integer"),
    (["experiment", "nosuch"], 2, "nosuch"),
    (["inspect", "missing", "--text", "a"], 1, "does not exist"),
    (["inspect", "{runs}/fc", "--text", "a"], 1, "inspect reads text"),
    (["inspect", "{runs}/lm", "--text", "ab", "--out", "{runs}"], 2, "is a directory"),
    (["inspect", "{runs}/lm", "--text", "ab", "--out", "{runs}/nofolder/page.html"], 2, "does not exist"),
    (["inspect", "{runs}/lm", "--file", "{runs}/missing.txt"], 2, "not found"),
    (["demo", "nosuch"], 2, "invalid choice: 'nosuch'"),
    (["gradcheck", "--tol", "-1"], 2, "argument --tol: expected a positive number"),
    (["gradcheck", "--cell", "lstm"], 2, "unrecognized arguments: --cell lstm"),
]


@pytest.mark.parametrize("argv, code, message", BAD_INPUTS, ids=[" ".join(a[:3]) or "(none)" for a, _, _ in BAD_INPUTS])
def test_every_command_refuses_bad_input_in_one_line(runs, capsys, argv, code, message):
    got, _, err = run(capsys, *[a.replace("{runs}", str(runs)) for a in argv])
    line = one_line(err)
    assert got == code, err
    assert line.startswith("rnnlab") and ": error: " in line and message in line, line


def test_debug_flag_and_environment_show_the_traceback(runs, capsys, monkeypatch):
    for argv in (["--debug", "evaluate", "missing"], ["evaluate", "missing", "--debug"]):
        code, _, err = run(capsys, *argv)
        assert code == 1 and "Traceback" in err and "RunError" in err
        assert err.splitlines()[-1] == "rnnlab evaluate: error: run directory 'missing' does not exist"
    monkeypatch.setenv("RNNLAB_DEBUG", "1")
    code, _, err = run(capsys, "predict", runs / "fc", "1", "2")
    assert code == 2 and "Traceback" in err and err.splitlines()[-1].startswith("rnnlab predict: error: ")


# --------------------------------------------------------------------------- model files and run files
@pytest.mark.parametrize("name", ["weights.npz", "config.json"])
def test_a_model_file_that_is_a_directory_is_a_model_file_error(runs, capsys, name):
    run_dir = copy_run(runs, "fc", "fc")
    (run_dir / "model" / name).unlink()
    (run_dir / "model" / name).mkdir()
    code, _, err = run(capsys, "evaluate", run_dir)
    assert code == 1 and "it is a directory, not a file" in one_line(err) and name in err
    with pytest.raises(rnnlab.ModelFileError, match="it is a directory, not a file"):
        rnnlab.load(run_dir / "model")


def test_inspect_out_naming_a_directory_says_so(runs, capsys):
    Path("pages").mkdir()
    code, _, err = run(capsys, "inspect", runs / "lm", "--text", "to be", "--out", "pages")
    assert code == 2 and "inspect: the output 'pages' is a directory" in one_line(err)
    assert list(Path("pages").iterdir()) == []


def test_generate_without_vocab_json_names_the_missing_file(runs, capsys):
    run_dir = copy_run(runs, "lm", "lm")
    (run_dir / "vocab.json").unlink()
    code, _, err = run(capsys, "generate", run_dir, "--prime", "ROMEO:")
    line = one_line(err)
    assert code == 1 and "lacks its vocab.json" in line and str(run_dir / "vocab.json") in line
    assert "NoneType" not in line


def test_predict_with_nan_names_the_value_and_its_position(runs, capsys):
    code, _, err = run(capsys, "predict", runs / "fc", *TWELVE[:2], "nan", *TWELVE[3:])
    assert code == 2 and "input 3 of 12 is 'nan'" in one_line(err)
    assert "got 12" not in err


def test_a_value_beyond_float32_is_named_without_a_numpy_warning(runs, capsys):
    code, _, err = run(capsys, "predict", runs / "fc", *TWELVE[:-1], "1e300")
    line = one_line(err)  # no RuntimeWarning line either (and under pytest a warning would be an error)
    assert code == 2 and "x (scaled by the scaler) holds 1e+300 at index (0, 11, 0), out of float32's range" in line
    assert "NaN or inf" not in line


# --------------------------------------------------------------------------- warnings
def test_unknown_characters_of_a_prime_are_counted_and_shown(runs, capsys):
    code, out, err = run(capsys, "generate", runs / "lm", "--prime", "ZQX\u20ac", "--length", "5", "--seed", "1")
    vocab = rnnlab.data.text.Vocabulary.from_json((runs / "lm" / "vocab.json").read_text("utf-8"))
    unknown = [c for c in "ZQX\u20ac" if c not in vocab]
    assert code == 0 and out.startswith("ZQX\u20ac") and unknown  # the run's 3000 characters lack some of them
    line = one_line(err)
    assert line.startswith(f"rnnlab generate: warning: the prime: {len(unknown)} of 4 tokens are not in the run's "
                           "vocabulary and are read as '<unk>': ")
    assert all(repr(c) in line for c in unknown)


def test_unknown_words_of_a_text_to_classify_are_counted_and_shown(runs, capsys):
    code, out, err = run(capsys, "predict", runs / "senti", "zzzqqq xxyyzz")
    assert code == 0 and out.splitlines()[1].endswith("\tzzzqqq xxyyzz")
    assert one_line(err) == ("rnnlab predict: warning: the input: 2 of 2 tokens are not in the run's vocabulary and "
                             "are read as '<unk>': 'zzzqqq', 'xxyyzz'")


def test_known_tokens_give_no_warning(runs, capsys):
    vocab = rnnlab.data.text.Vocabulary.from_json((runs / "lm" / "vocab.json").read_text("utf-8"))
    prime = "".join(t for t in vocab.tokens if len(t) == 1)[:6]
    code, _, err = run(capsys, "generate", runs / "lm", "--prime", prime, "--length", "3")
    assert code == 0 and err == ""


def test_a_run_whose_weights_exploded_warns_in_evaluate_and_diagnose(runs, capsys):
    run_dir = copy_run(runs, "fc", "fc")
    model = rnnlab.load(run_dir / "model")
    for name, w in model.named_parameters():
        if name.endswith(".W"):
            w *= np.float32(1e23)
    rnnlab.save(model, run_dir / "model")
    for argv in (["evaluate", run_dir], ["diagnose", run_dir]):
        with np.errstate(all="ignore"):  # the forward pass of such a model overflows
            code, out, err = run(capsys, *argv)
        line = one_line(err)
        assert code == 0 and line.startswith(f"rnnlab {argv[0]}: warning: the weights of the model ")
        assert "have exploded" in line and "None" not in out


# --------------------------------------------------------------------------- generate: cap and streaming
def test_generate_streams_its_text_so_an_interrupt_keeps_what_was_made(runs, capsys, monkeypatch):
    full = run(capsys, "generate", runs / "lm", "--prime", "ROMEO:", "--length", "40", "--seed", "2")[1]
    step, calls = Generator.step, []

    def interrupted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 10:
            raise KeyboardInterrupt
        return step(self, *args, **kwargs)

    monkeypatch.setattr(Generator, "step", interrupted)
    code, out, err = run(capsys, "generate", runs / "lm", "--prime", "ROMEO:", "--length", "40", "--seed", "2")
    assert code == 130 and one_line(err) == "rnnlab generate: interrupted"
    assert out == full[:len("ROMEO:") + 10] + "\n"  # the prime and the 10 characters sampled before the Ctrl-C


# --------------------------------------------------------------------------- the process: environment, Ctrl-C
def _python(args, env_changes, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("RNNLAB_DEBUG", "RNNLAB_KERNELS")}
    env.update(env_changes)
    env["PYTHONPATH"] = os.pathsep.join([*env_changes.get("PYTHONPATH", "").split(os.pathsep), str(SRC)]).strip(
        os.pathsep)
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=120, **kwargs)


def test_a_bad_rnnlab_kernels_is_one_line_and_exit_2(runs, monkeypatch, capsys):
    proc = _python(["-m", "rnnlab", "summary", str(runs / "adding.toml")], {"RNNLAB_KERNELS": "bogus"})
    assert proc.returncode == 2 and proc.stdout == ""
    assert one_line(proc.stderr) == ("rnnlab summary: error: environment variable RNNLAB_KERNELS='bogus': kernel "
                                     "backend must be one of 'auto', 'numba', 'numpy'; got 'bogus'")
    proc = _python(["-c", "import rnnlab; print(rnnlab.kernels.environment_error() is not None)"],
                   {"RNNLAB_KERNELS": "bogus"})
    assert proc.returncode == 0 and proc.stdout.strip() == "True"  # importing rnnlab works


def test_ctrl_c_while_the_program_starts_is_one_line_and_exit_130(tmp_path):
    """A KeyboardInterrupt raised by the imports (here by a stand-in for numpy, the first heavy one) is
    what a Ctrl-C during start-up is."""
    fake = tmp_path / "fake" / "numpy"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise KeyboardInterrupt\n", encoding="utf-8")
    proc = _python(["-m", "rnnlab", "--version"], {"PYTHONPATH": str(tmp_path / "fake")})
    assert proc.returncode == 130 and one_line(proc.stderr) == "rnnlab: interrupted while starting"
    library = _python(["-c", "import rnnlab"], {"PYTHONPATH": str(tmp_path / "fake")})
    assert library.returncode != 0 and "KeyboardInterrupt" in library.stderr  # a program importing rnnlab: as usual


def test_ctrl_c_while_the_commands_load_is_one_line_and_exit_130(tmp_path):
    """The same once the package has loaded, during the command modules' imports (argparse, first
    imported by rnnlab.cli)."""
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "argparse.py").write_text("raise KeyboardInterrupt\n", encoding="utf-8")
    proc = _python(["-m", "rnnlab", "--version"], {"PYTHONPATH": str(fake)})
    assert proc.returncode == 130 and one_line(proc.stderr) == "rnnlab: interrupted while starting"


def test_the_debug_environment_variable_in_a_process(runs):
    proc = _python(["-m", "rnnlab", "evaluate", str(runs / "a_file")], {"RNNLAB_DEBUG": "1"})
    assert proc.returncode == 1 and "Traceback" in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("rnnlab evaluate: error: ")
    plain = _python(["-m", "rnnlab", "evaluate", str(runs / "a_file")], {})
    assert plain.returncode == 1 and one_line(plain.stderr).startswith("rnnlab evaluate: error: ")


def test_a_refused_rnnlab_kernels_stops_every_command_before_it_works(monkeypatch, capsys, runs):
    """An RNNLAB_KERNELS refused at import is reported by every command before it does any work."""
    monkeypatch.setattr(kernels, "_env_error", "environment variable RNNLAB_KERNELS='x': bad")
    code, out, err = run(capsys, "summary", runs / "adding.toml")
    assert code == 2 and out == ""
    assert one_line(err) == "rnnlab summary: error: environment variable RNNLAB_KERNELS='x': bad"


def test_metrics_of_the_trained_runs_are_json(runs):
    """The fixture's runs are complete (their metrics file reads back), so the cases above test what they name."""
    for name in CONFIGS:
        assert json.loads((runs / name / "metrics.json").read_text("utf-8"))["task"]
