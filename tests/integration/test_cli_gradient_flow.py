"""``rnnlab diagnose`` and ``rnnlab experiment`` through ``cli.main(argv)`` in a temporary directory."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_helpers import in_tmp_path, run  # noqa: F401  (in_tmp_path: an autouse fixture)

ADDING = """
[data]
task = "adding"
seq_len = 12
n_train = 32
n_val = 16
n_test = 16
batch_size = 8

[model]
cell = "{cell}"
hidden_size = 5

[train]
epochs = 1
lr = 0.01
"""


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_diagnose_prints_a_labelled_line_per_recurrent_layer(capsys, cell):
    Path("adding.toml").write_text(ADDING.format(cell=cell), encoding="utf-8")
    code, _, err = run(capsys, "train", "adding.toml", "--run-dir", "run")
    assert code == 0, err
    code, out, err = run(capsys, "diagnose", "run")
    assert code == 0, err
    label = [line for line in out.splitlines() if line.lstrip().startswith("0 ")]
    assert len(label) == 1 and any(word in label[0] for word in ("vanishing", "healthy", "exploding")), out
    code, out, err = run(capsys, "diagnose", "run", "--json", "--split", "test")
    assert code == 0, err
    (layer,) = json.loads(out)["layers"]
    assert layer["name"] == "0" and layer["hidden_size"] == 5 and layer["timesteps"] == 12


def test_diagnose_of_a_missing_run_is_exit_code_1(capsys):
    code, _, err = run(capsys, "diagnose", "no-such-run")
    assert code == 1 and "'no-such-run' does not exist" in err


def test_experiment_list_and_a_fast_run(capsys):
    code, out, _ = run(capsys, "experiment", "--list")
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == [
        "vanishing", "adding", "copy", "exploding", "truncation"]
    code, out, err = run(capsys, "experiment", "vanishing", "--out", "exp")
    assert code == 0, err
    assert (Path("exp") / "report.html").is_file() and (Path("exp") / "results.json").is_file()


def test_an_unknown_experiment_is_a_usage_error(capsys):
    code, _, err = run(capsys, "experiment", "nonsense")
    assert code == 2 and "vanishing" in err


def test_diagnose_of_a_file_says_it_is_not_a_directory(capsys):
    Path("notes.txt").write_text("not a run", encoding="utf-8")
    code, _, err = run(capsys, "diagnose", "notes.txt")
    assert code == 1 and "run directory 'notes.txt' is not a directory" in err


CHAR_LM = """
[data]
task = "language_model"
dataset = "tiny_shakespeare"
level = "char"
batch_size = 4
bptt = 10

[model]
cell = "lstm"
hidden_size = 6

[train]
epochs = 1
max_steps = 2
"""


def test_inspect_writes_the_page_of_a_trained_language_model(capsys, data_dir):
    Path("lm.toml").write_text(CHAR_LM, encoding="utf-8")
    code, _, err = run(capsys, "train", "lm.toml", "--run-dir", "lm", "--data-dir", data_dir)
    assert code == 0, err
    code, out, err = run(capsys, "inspect", "lm", "--text", "ROMEO: hi", "--quantity", "c", "--unit", "2",
                         "--out", "page.html")
    assert code == 0, err
    page = Path("page.html").read_text(encoding="utf-8")
    assert len(re.findall(r'<span class="tok[^"]*" data-i="\d+"', page)) == len("ROMEO: hi")  # one per character
    code, _, err = run(capsys, "inspect", "lm", "--text", "x", "--quantity", "z")
    assert code == 2 and "z" in err
