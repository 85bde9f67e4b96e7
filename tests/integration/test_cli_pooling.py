"""``[model] pooling`` through the command line: a BiLSTM with max- or mean-pooling over time and embedding dropout
trained on a CSV file the test writes (``task = "classification"``), then summary, evaluate and predict on the
saved run; an empty text is one line and exit code 2."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import in_tmp_path, run  # noqa: F401  (in_tmp_path: an autouse fixture)

CUES = {"joy": ["sunny", "bright", "warm"], "gloom": ["rainy", "grey", "cold"]}
FILLER = ["the", "day", "was", "and", "a", "very"]


def write_csv(name: str, n: int, empty_row: int | None = None) -> Path:
    rng = np.random.default_rng(0)
    lines = ["text,label"]
    for i in range(n):
        label = list(CUES)[i % 2]
        words = list(rng.choice(FILLER, rng.integers(1, 6))) + list(rng.choice(CUES[label], 2))
        lines.append(f"{'' if i == empty_row else ' '.join(words)},{label}")
    Path(name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(name)


def write_config(pooling: str) -> Path:
    text = f"""[data]
task = "classification"
path = "reviews.csv"
batch_size = 8
bucket = true

[model]
bidirectional = true
hidden_size = 5
embedding_dim = 6
pooling = "{pooling}"
embedding_dropout = 0.2
dropout = 0.3

[train]
epochs = 1
lr = 0.01
"""
    Path("own.toml").write_text(text, encoding="utf-8")
    return Path("own.toml")


@pytest.mark.parametrize("pooling, layer", [("max", "GlobalMaxPool1D"), ("mean", "GlobalAveragePool1D")])
def test_a_pooled_classifier_trains_evaluates_and_predicts(capsys, pooling, layer):
    write_csv("reviews.csv", 48)
    cfg = write_config(pooling)
    code, out, err = run(capsys, "summary", cfg)
    assert code == 0, err
    assert f"({layer})" in out and "embedding_dropout=0.2" in out and f'pooling = "{pooling}"' in out
    code, out, err = run(capsys, "train", cfg, "--run-dir", "run")
    assert code == 0, err
    assert f'pooling = "{pooling}"' in Path("run", "config.toml").read_text("utf-8")
    assert layer in Path("run", "model", "config.json").read_text("utf-8")
    metrics = json.loads(Path("run", "metrics.json").read_text("utf-8"))
    assert 0 <= metrics["test"]["accuracy"] <= 1
    code, out, err = run(capsys, "evaluate", "run", "--path", "reviews.csv")
    assert code == 0, err
    assert re.search(r"^accuracy\s+[\d.]+$", out, re.M)
    Path("new.txt").write_text("sunny warm day\ncold grey\n", encoding="utf-8")
    code, out, err = run(capsys, "predict", "run", "--file", "new.txt")
    assert code == 0, err
    assert [line.split("\t")[0] in CUES for line in out.splitlines()[1:]] == [True, True]


def test_an_empty_text_with_pooling_is_one_line_and_exit_code_2(capsys):
    write_csv("reviews.csv", 30, empty_row=4)
    code, out, err = run(capsys, "train", write_config("max"), "--run-dir", "run")
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "pooling = 'max'" in err and "has no tokens" in err and "Traceback" not in err
