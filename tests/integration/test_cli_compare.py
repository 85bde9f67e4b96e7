"""``rnnlab compare``: two real runs side by side, the figure written atomically, and the one-line errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from cli_helpers import in_tmp_path, run  # noqa: F401  (in_tmp_path: an autouse fixture)

CONFIG = """
[data]
task = "adding"
seq_len = 8
n_train = 32
n_val = 16
n_test = 16
batch_size = 8

[model]
hidden_size = 4

[train]
epochs = 3
lr = 0.01
"""


@pytest.fixture
def two_runs(capsys):
    Path("adding.toml").write_text(CONFIG, encoding="utf-8")
    for name, lr in (("fast", "0.05"), ("slow", "0.001")):
        code, _, err = run(capsys, "train", "adding.toml", "--set", f"train.lr={lr}", "--run-dir", f"runs/{name}")
        assert code == 0, err
    return "runs/fast", "runs/slow"


def test_table_and_figure(capsys, two_runs):
    pytest.importorskip("matplotlib")
    code, out, err = run(capsys, "compare", *two_runs, "--labels", "lr 0.05", "lr 0.001", "--out", "cmp.png",
                         "--title", "adding")
    assert code == 0, err
    header, fast, slow, wrote = out.splitlines()
    assert header.split()[:4] == ["run", "epochs", "best", "val_loss"]
    assert fast.startswith("lr 0.05") and fast.split()[2] == "3"  # 3 epochs
    assert slow.startswith("lr 0.001")
    assert wrote == "wrote cmp.png"
    assert Path("cmp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in Path().iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_errors_are_one_line(capsys, two_runs):
    Path("taken.png").write_bytes(b"not mine")
    cases = [
        (("compare", *two_runs, "--out", "taken.png"), 1, "'taken.png' exists; pass --force to replace it"),
        (("compare", *two_runs, "--out", "cmp.pdf"), 2, "--out must name a .png file, got 'cmp.pdf'"),
        (("compare", *two_runs, "--metric", "val_accuracy"), 2, "metric 'val_accuracy': the run 'runs/fast' has "
                                                                "no such column"),
        (("compare", "runs/fast", "nowhere"), 1, "'nowhere' is not a directory"),
        (("compare", *two_runs, "--labels", "one"), 2, "labels must name each of the 2 runs"),
    ]
    for argv, expected_code, message in cases:
        code, out, err = run(capsys, *argv)
        assert code == expected_code, (argv, err)
        assert err.startswith("rnnlab compare: error: ") and message in err and err.count("\n") == 1, err
    assert Path("taken.png").read_bytes() == b"not mine"
    if importlib.util.find_spec("matplotlib"):
        code, _, err = run(capsys, "compare", *two_runs, "--out", "taken.png", "--force")
        assert code == 0 and Path("taken.png").read_bytes()[:4] == b"\x89PNG", err
