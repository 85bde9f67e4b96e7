"""Issue 15, part B: the tagging task and forecasting from a CSV, end to end through ``cli.main`` on files written here.

Train, evaluate (a split and another file), predict from a file (stdout, --out CSV/JSONL, --format json), the
compressed forms, a CoNLL file with a wider column layout, and the data errors (exit code 2, one line).
"""

from __future__ import annotations

import bz2
import csv
import datetime
import gzip
import importlib.util
import json
import lzma
import math
import re
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import in_tmp_path, run  # noqa: F401  (in_tmp_path: an autouse fixture)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

PEOPLE = ["anna", "bruno", "chen", "dara"]
PLACES = ["oslo", "lima", "kyoto"]
WORDS = ["went", "to", "saw", "the", "river", "and", "met"]


def failed_with_one_line(result, *fragments) -> None:
    code, _, err = result
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err


def sentences(n: int, seed: int) -> list[list[tuple[str, str, str]]]:
    """``n`` generated sentences of ``(token, part of speech, entity tag)``: a person, three words, a place."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        s = [(PEOPLE[rng.integers(4)].title(), "NNP", "B-PER")]
        if rng.random() < 0.5:
            s.append(("Smith", "NNP", "I-PER"))
        s += [(w, "VB" if w in ("went", "saw", "met") else "X", "O") for w in rng.choice(WORDS, 3, replace=False)]
        s.append((PLACES[rng.integers(3)].title(), "NNP", "B-LOC"))
        out.append(s)
    return out


def write_conll(path: str, data, opener=open, sep: str = " ") -> str:
    with opener(path, "wt", encoding="utf-8") as f:
        f.write("-DOCSTART- -X- -X- O\n\n")
        for s in data:
            f.write("".join(f"{tok}{sep}{pos}{sep}B-NP{sep}{tag}\n" for tok, pos, tag in s) + "\n")
    return path


TAGGER = """
[data]
task = "tagging"
{data}
batch_size = 8
[model]
hidden_size = 6
embedding_dim = 6
[train]
epochs = 2
optimizer = "adam"
lr = 0.05
"""


def test_tagging_wide_compressed_file_trains_evaluates_and_predicts(capsys):
    write_conll("corpus.conll.gz", sentences(40, 0), gzip.open, sep="\t")  # 4 columns: entities in the last
    Path("tagger.toml").write_text(TAGGER.format(data='path = "corpus.conll.gz"\nval_frac = 0.2\ntest_frac = 0.2'))
    code, out, err = run(capsys, "train", "tagger.toml", "--run-dir", "run")
    assert code == 0, err
    metrics = json.loads(Path("run/metrics.json").read_text())
    assert 0 <= metrics["test"]["accuracy"] <= 1 and set(metrics["test"]["entities"]) >= {"precision", "recall", "f1"}
    assert json.loads(Path("run/tags.json").read_text())["tags"] == ["B-LOC", "B-PER", "I-PER", "O"]
    assert "bidirectional = true" in Path("run/config.toml").read_text()  # the tagger's default

    code, out, err = run(capsys, "evaluate", "run")
    assert code == 0 and "entities.f1" in out, err
    write_conll("other.conll.bz2", sentences(6, 1) + [[("Zorro", "NNP", "B-PER")]], bz2.open)
    code, out, err = run(capsys, "evaluate", "run", "--path", "other.conll.bz2")
    assert code == 0, err
    assert "sentences" in out and "entities.true_entities" in out

    Path("new.txt").write_text("Anna went to Lima\nZorro met Smith\n", encoding="utf-8")
    code, out, err = run(capsys, "predict", "run", "--file", "new.txt")
    assert code == 0, err
    rows = [line.split("\t") for line in out.splitlines()]
    assert rows[0] == ["sentence", "token", "tag", "probability"] and len(rows) == 1 + 7
    assert [r[1] for r in rows[1:]] == ["Anna", "went", "to", "Lima", "Zorro", "met", "Smith"]
    assert {r[2] for r in rows[1:]} <= {"B-LOC", "B-PER", "I-PER", "O"}  # "Zorro" is <unk>, still tagged

    code, out, err = run(capsys, "predict", "run", "--file", "other.conll.bz2", "--out", "pred.jsonl")
    assert code == 0, err
    lines = [json.loads(line) for line in Path("pred.jsonl").read_text().splitlines()]
    assert lines[0]["token"] == sentences(6, 1)[0][0][0] and len(lines) == sum(map(len, sentences(6, 1))) + 1
    code, out, err = run(capsys, "predict", "run", "--file", "new.txt", "--format", "json")
    assert code == 0 and [r["token"] for r in json.loads(out)][:2] == ["Anna", "went"], err


def test_tagging_given_splits_other_columns_and_unseen_tags(capsys):
    write_conll("train.conll", sentences(24, 2))
    write_conll("test.conll", sentences(4, 3))
    pos = 'train_path = "train.conll"\ntest_path = "test.conll"\nval_frac = 0\ntag_column = 1'
    Path("pos.toml").write_text(TAGGER.format(data=pos))
    code, out, err = run(capsys, "train", "pos.toml", "--run-dir", "pos")
    assert code == 0, err
    metrics = json.loads(Path("pos/metrics.json").read_text())
    assert json.loads(Path("pos/tags.json").read_text())["tags"] == ["NNP", "VB", "X"]
    assert "entities" not in metrics["test"] and 0 <= metrics["test"]["accuracy"] <= 1  # not BIO tags

    Path("bad.conll").write_text("Anna NNP B-NP B-PER\nsang ZZ B-NP O\n", encoding="utf-8")
    failed_with_one_line(run(capsys, "evaluate", "pos", "--path", "bad.conll"), "tag 'ZZ'", "bad.conll", "line 2")
    Path("bad.toml").write_text(TAGGER.format(data=pos.replace("test.conll", "bad.conll")))
    failed_with_one_line(run(capsys, "train", "bad.toml", "--run-dir", "bad"), "tag 'ZZ'", "bad.conll", "line 2",
                         "test part")
    assert not Path("bad").exists()


def test_tagging_file_errors_exit_2(capsys):
    Path("t.toml").write_text(TAGGER.format(data='path = "missing.conll"'))
    failed_with_one_line(run(capsys, "train", "t.toml"), "missing.conll", "no such file")
    Path("latin.conll").write_bytes("Anna B-PER\nZ\xfcrich B-LOC\n".encode("latin-1"))
    Path("t.toml").write_text(TAGGER.format(data='path = "latin.conll"'))
    failed_with_one_line(run(capsys, "train", "t.toml"), "latin.conll", "line 2", "not valid UTF-8", "0xfc")
    Path("t.toml").write_text(TAGGER.format(data='path = "a.csv"'))
    Path("a.csv").write_text("x,y\n")
    failed_with_one_line(run(capsys, "train", "t.toml"), "CoNLL")
    Path("t.toml").write_text(TAGGER.format(data=""))
    failed_with_one_line(run(capsys, "train", "t.toml"), "set path")
    Path("mixed").mkdir()
    write_conll("mixed/a.conll", sentences(3, 0))
    Path("mixed/b.txt").write_text("Anna went\n")
    Path("t.toml").write_text(TAGGER.format(data='path = "mixed"'))
    failed_with_one_line(run(capsys, "train", "t.toml"), "mixes formats")


# --------------------------------------------------------------------------- forecasting from a CSV
def write_series(path: str, n: int = 90, opener=open, gap_at: int | None = None, bad_at: int | None = None) -> str:
    rng = np.random.default_rng(5)
    start = datetime.date(2023, 3, 1)
    with opener(path, "wt", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["day", "temp", "wind", "demand"])
        for t in range(n):
            temp = 12 + 6 * math.sin(2 * math.pi * t / 14) + rng.normal(0, 0.3)
            row = [(start + datetime.timedelta(days=t)).isoformat(), f"{temp:.3f}",
                   f"{3 + rng.random():.3f}", f"{80 + 2 * temp + rng.normal(0, 0.5):.2f}"]
            if t == gap_at:
                row[1] = ""
            if t == bad_at:
                row[3] = "n.a"
            writer.writerow(row)
    return path


FORECASTER = """
[data]
task = "forecasting"
path = "{path}"
columns = ["temp", "wind", "demand"]
target = {target}
date_column = "day"
lookback = 7
horizon = 2
batch_size = 16
{extra}
[model]
cell = "gru"
hidden_size = 6
[train]
epochs = 2
optimizer = "adam"
lr = 0.01
"""


def test_forecasting_multivariate_compressed_csv_trains_evaluates_and_predicts(capsys):
    write_series("series.csv.xz", opener=lzma.open, gap_at=20)
    Path("f.toml").write_text(FORECASTER.format(path="series.csv.xz", target='["demand", "temp"]',
                                                extra='missing = "interpolate"\nseason = 7'))
    code, out, err = run(capsys, "train", "f.toml", "--run-dir", "run")
    assert code == 0, err
    test = json.loads(Path("run/metrics.json").read_text())["test"]
    units = test["original_units"]
    assert set(units) == {"model", "naive", "seasonal_naive"}
    assert set(units["model"]["per_target"]) == {"demand", "temp"}
    assert all(math.isfinite(units[k]["rmse"]) for k in units)
    if importlib.util.find_spec("matplotlib") is not None:  # the test extra has it
        assert Path("run/forecast.png").read_bytes().startswith(b"\x89PNG")
    info = json.loads(Path("run/series.json").read_text())
    assert info["inputs"] == ["temp", "wind", "demand"] and info["targets"] == ["demand", "temp"]

    write_series("later.csv", n=30)
    code, out, err = run(capsys, "evaluate", "run", "--path", "later.csv")
    assert code == 0, err
    assert re.search(r"^windows +22$", out, re.M)  # 30 rows - lookback 7 - horizon 2 + 1
    assert "original_units.naive.rmse" in out

    code, out, err = run(capsys, "predict", "run", "--file", "later.csv", "--out", "forecast.csv")
    assert code == 0, err
    with open("forecast.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["date", "demand t+1", "temp t+1", "demand t+2", "temp t+2"]
    assert len(rows) == 1 + 30 - 7 + 1 and rows[1][0] == "2023-03-07" and rows[-1][0] == "2023-03-30"
    assert all(math.isfinite(float(v)) for row in rows[1:] for v in row[1:])
    failed_with_one_line(run(capsys, "predict", "run", "1", "2"), "--file")


@pytest.mark.parametrize("series, target, extra, fragments", [
    ({"gap_at": 10}, '"demand"', "", ("series.csv' line 12, column 'temp': missing value",)),
    ({"bad_at": 4}, '"demand"', "", ("line 6, column 'demand': expected a number, got 'n.a'",)),
    ({"n": 12}, '"demand"', "", ("12 rows is too short for lookback = 7",)),
    ({}, '"load"', "", ("no column 'load'", "'day', 'temp', 'wind', 'demand'")),
    ({}, '"demand"', 'dataset = "monthly-sunspots"', ("leave dataset out",)),
])
def test_forecasting_csv_errors_exit_2_with_one_line(capsys, series, target, extra, fragments):
    write_series("series.csv", **series)
    Path("f.toml").write_text(FORECASTER.format(path="series.csv", target=target, extra=extra))
    failed_with_one_line(run(capsys, "train", "f.toml", "--run-dir", "run"), *fragments)
    assert not Path("run").exists()


# --------------------------------------------------------------------------- the examples
@pytest.mark.parametrize("name", ["tagging_own_data", "forecasting_csv"])
def test_the_own_data_examples_train_a_step(capsys, name):
    code, _, err = run(capsys, "train", EXAMPLES / f"{name}.toml", "--set", "train.max_steps=1", "--run-dir", name)
    assert code == 0, err
    metrics = json.loads(Path(name, "metrics.json").read_text())
    assert metrics["steps"] == 1 and math.isfinite(metrics["test"]["loss"])
