"""What the fault tests share: a tiny run configuration (the adding problem, a few steps), the command line run
in-process in a temporary directory, and a trained run directory to break."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rnnlab import cli

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
checkpoint_every_steps = 1
"""


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("adding.toml").write_text(ADDING, encoding="utf-8")


@pytest.fixture
def rnnlab(capsys):
    """``rnnlab(*argv) -> (exit code, stdout, stderr)``, through ``cli.main`` in this process."""
    def run(*argv):
        code = cli.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err
    return run


@pytest.fixture
def trained(rnnlab) -> Path:
    """``run``: a run of the adding problem stopped after 2 steps, with its checkpoint (step 2)."""
    code, _, err = rnnlab("train", "adding.toml", "--set", "train.max_steps=2", "--run-dir", "run")
    assert code == 0, err
    assert json.loads(Path("run/checkpoint.json").read_text())["step"] == 2
    return Path("run")


@pytest.fixture
def one_line():
    """``one_line(stderr) -> its only line``: an expected error is one line, never a traceback."""
    def only(err: str) -> str:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err, err
        return lines[0]
    return only
