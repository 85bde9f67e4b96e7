"""Your own data through the command line: ``task = "classification"`` and ``task = "language_model"`` on files the
tests write (CSV, TSV, JSONL, class folders, text; plain and compressed), then ``evaluate --path`` and
``predict --file``, and the data errors (exit code 2, one line)."""

from __future__ import annotations

import bz2
import csv
import gzip
import json
import lzma
import math
import re
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import in_tmp_path, run  # noqa: F401  (in_tmp_path: an autouse fixture)

from rnnlab.lab.config import load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

#: words that decide a text's class, and words that carry no class
CUES = {"joy": ["sunny", "bright", "warm", "glad"], "gloom": ["rainy", "grey", "cold", "dull"],
        "calm": ["still", "quiet", "slow", "soft"]}
FILLER = ["the", "day", "was", "and", "a", "very"]

MODEL = """
[model]
hidden_size = 8
embedding_dim = 8

[train]
epochs = 1
lr = 0.01
"""


def texts(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` (text, label) pairs, the classes in turn, each text three cue words among filler."""
    rng = np.random.default_rng(seed)
    classes = list(CUES)
    rows = []
    for i in range(n):
        label = classes[i % len(classes)]
        words = list(rng.choice(FILLER, 4)) + list(rng.choice(CUES[label], 3))
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return rows


def opener(name: str):
    return {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(Path(name).suffix, open)


def write_text(name: str, text: str) -> Path:
    Path(name).parent.mkdir(parents=True, exist_ok=True)
    with opener(name)(name, "wb") as f:
        f.write(text.encode("utf-8"))
    return Path(name)


def write_table(name: str, rows, header=("text", "label")) -> Path:
    delimiter = "\t" if ".tsv" in name else ","
    lines = []
    for row in [header, *rows]:
        buf = []
        csv.writer(_Collect(buf), delimiter=delimiter, lineterminator="\n").writerow(row)
        lines.append(buf[0])
    return write_text(name, "".join(lines))


class _Collect:
    def __init__(self, buf):
        self.buf = buf

    def write(self, s):
        self.buf.append(s)


def config(name: str, data: str) -> Path:
    return write_text(name, "[data]\n" + data + "\n" + MODEL)


def metrics(run_dir) -> dict:
    return json.loads(Path(run_dir, "metrics.json").read_text("utf-8"))


# =========================================================================== classification
@pytest.mark.parametrize("data_file", ["reviews.csv", "reviews.tsv.gz", "reviews.csv.xz"])
def test_classification_from_a_table_trains_evaluates_and_predicts(capsys, data_file):
    write_table(data_file, texts(60))
    cfg = config("own.toml", f'task = "classification"\npath = "{data_file}"\nbatch_size = 8')
    code, out, err = run(capsys, "train", cfg, "--run-dir", "run")
    assert code == 0, err
    m = metrics("run")
    assert m["data"]["path"] == str(Path(data_file).absolute())
    for split in ("val", "test"):
        assert 0 <= m[split]["accuracy"] <= 1 and 0 <= m[split]["macro_f1"] <= 1
        cm = np.array(m[split]["confusion_matrix"]["matrix"])
        assert cm.shape == (3, 3) and cm.sum() == 6  # 10 % of 60 texts, stratified: 2 of each class
        assert cm.sum(axis=1).tolist() == [2, 2, 2]
        saved = json.loads(Path("run", f"confusion-{split}.json").read_text("utf-8"))
        assert saved == m[split]["confusion_matrix"]
        assert Path("run", f"confusion-{split}.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads(Path("run", "labels.json").read_text("utf-8")) == sorted(CUES)

    code, out, err = run(capsys, "evaluate", "run", "--path", data_file)
    assert code == 0, err
    assert re.search(r"^accuracy\s+[\d.]+$", out, re.M) and re.search(r"^macro_f1\s+[\d.]+$", out, re.M)

    new = write_text("new.txt", "sunny warm glad day\ncold grey rainy\n")
    code, out, err = run(capsys, "predict", "run", "--file", new)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "label\tprobability\ttext" and len(lines) == 3
    assert all(line.split("\t")[0] in CUES for line in lines[1:])


def test_classification_jsonl_with_extra_fields_and_integer_labels(capsys):
    rows = [{"id": i, "review": text, "stars": [3, 1, 2][sorted(CUES).index(label)], "lang": "en", "meta": {"x": 1}}
            for i, (text, label) in enumerate(texts(45))]
    write_text("data/reviews.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    cfg = config("cfg/own.toml", 'task = "classification"\npath = "../data/reviews.jsonl"\ntext_column = "review"\n'
                                 'label_column = "stars"\nbatch_size = 8\nval_frac = 0.2\ntest_frac = 0')
    code, _, err = run(capsys, "train", cfg, "--run-dir", "run")
    assert code == 0, err
    assert json.loads(Path("run", "labels.json").read_text("utf-8")) == ["1", "2", "3"]
    assert "test" not in metrics("run") and metrics("run")["val"]["confusion_matrix"]["labels"] == ["1", "2", "3"]

    code, out, err = run(capsys, "predict", "run", "--file", "data/reviews.jsonl", "--out", "pred.csv")
    assert code == 0, err
    with open("pred.csv", newline="", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 45 and {row["label"] for row in table} <= {"1", "2", "3"}
    assert all(0 < float(row["probability"]) <= 1 for row in table)

    code, out, err = run(capsys, "predict", "run", "--file", "data/reviews.jsonl", "--out", "pred.jsonl")
    assert code == 0, err
    first = json.loads(Path("pred.jsonl").read_text("utf-8").splitlines()[0])
    assert set(first) == {"label", "probability", "text"} and first["text"] == rows[0]["review"]


def test_classification_from_class_folders_with_given_splits(capsys):
    for part, n, seed in (("train", 30, 0), ("test", 9, 1)):
        for i, (text, label) in enumerate(texts(n, seed)):
            write_text(f"{part}/{label}/{i:03d}.txt", text + "\n")
    cfg = config("own.toml", 'task = "classification"\ntrain_path = "train"\ntest_path = "test"\nbatch_size = 6')
    code, _, err = run(capsys, "train", cfg, "--run-dir", "run")
    assert code == 0, err
    m = metrics("run")
    assert "val" not in m and np.array(m["test"]["confusion_matrix"]["matrix"]).sum() == 9

    code, out, err = run(capsys, "evaluate", "run", "--path", "test", "--format", "json")
    assert code == 2  # evaluate has no --format: a usage error
    code, out, err = run(capsys, "predict", "run", "--file", write_text("in.txt", "still quiet soft\n"),
                         "--format", "json")
    assert code == 0, err
    [row] = json.loads(out)
    assert row["label"] in CUES and row["text"] == "still quiet soft"


# =========================================================================== language model
CORPUS = "".join(f"the {w} cat sat on the {v} mat .\n" for w, v in zip(["big", "small", "old"] * 30,
                                                                        ["red", "blue"] * 45))


@pytest.mark.parametrize("level, corpus", [("word", "corpus.txt"), ("char", "corpus.txt.bz2"),
                                           ("subword", "corpus.txt.gz")])
def test_language_model_from_text_files(capsys, level, corpus):
    if level == "subword":
        pytest.importorskip("tokenizers")
    write_text(corpus, CORPUS)
    extra = "\nmax_size = 40" if level == "subword" else ""
    cfg = config("lm.toml", f'task = "language_model"\npath = "{corpus}"\nlevel = "{level}"\nbatch_size = 2\n'
                            f'bptt = 6{extra}')
    code, out, err = run(capsys, "train", cfg, "--run-dir", "run")
    assert code == 0, err
    m = metrics("run")
    metric = "bits_per_character" if level == "char" else "perplexity"
    assert math.isfinite(m["val"][metric]) and math.isfinite(m["test"][metric])
    parts = json.loads(Path("run", "data", "tokens.json").read_text("utf-8"))["tokens"]
    for part, n in parts.items():
        ids = np.load(Path("run", "data", f"tokens-{part}.npy"), mmap_mode="r")
        assert ids.shape == (n,) and ids.dtype == np.uint16
    assert Path("run", "tokenizer.json").is_file() == (level == "subword")

    code, out, err = run(capsys, "evaluate", "run", "--path", corpus)
    assert code == 0, err
    assert re.search(rf"^{metric}\s+[\d.]+$", out, re.M)

    lines = write_text("lines.txt", "the big cat sat\nthe red mat\n")
    code, out, err = run(capsys, "predict", "run", "--file", lines, "--format", "json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["text"] for r in rows] == ["the big cat sat", "the red mat"]
    assert all(r["perplexity"] > 1 and r["tokens"] > 0 for r in rows)

    code, out, err = run(capsys, "generate", "run", "--prime", "the", "--length", "5", "--seed", "0")
    assert code == 0, err
    assert out.startswith("the")


def test_language_model_resume_reuses_the_encoded_corpus(capsys):
    write_text("corpus.txt", CORPUS)
    cfg = config("lm.toml", 'task = "language_model"\npath = "corpus.txt"\nbatch_size = 2\nbptt = 6')
    assert run(capsys, "train", cfg, "--run-dir", "run")[0] == 0
    before = {p.name: p.stat().st_mtime_ns for p in Path("run", "data").iterdir()}
    code, _, err = run(capsys, "train", cfg, "--run-dir", "run", "--resume", "--set", "train.epochs=2")
    assert code == 0, err
    assert {p.name: p.stat().st_mtime_ns for p in Path("run", "data").iterdir()} == before


# =========================================================================== examples
@pytest.mark.parametrize("name", ["classification_own", "lm_own"])
def test_own_data_examples_train_a_step(capsys, name):
    code, _, err = run(capsys, "train", EXAMPLES / f"{name}.toml", "--set", "train.max_steps=1", "--run-dir", name)
    assert code == 0, err
    assert metrics(name)["steps"] == 1
    assert load_config(Path(name, "config.toml")).model == load_config(EXAMPLES / f"{name}.toml").model


# =========================================================================== errors: exit code 2, one line
def _error(capsys, *argv) -> str:
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    return lines[0]


def test_missing_column_names_the_columns_found(capsys):
    write_table("r.csv", texts(9), header=("review", "label"))
    cfg = config("own.toml", 'task = "classification"\npath = "r.csv"')
    message = _error(capsys, "train", cfg)
    assert "no column 'text' ([data] text_column)" in message and "'review', 'label'" in message


def test_unreadable_row_names_file_and_line(capsys):
    write_text("r.csv", "text,label\nsunny day,joy\nthis row,has,three\n")
    message = _error(capsys, "train", config("own.toml", 'task = "classification"\npath = "r.csv"'))
    assert "r.csv' line 3: unreadable row" in message
    write_text("r.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", label}\n')
    message = _error(capsys, "train", config("own.toml", 'task = "classification"\npath = "r.jsonl"'))
    assert "r.jsonl' line 2: unreadable row" in message


def test_not_utf8_names_file_line_and_byte(capsys):
    Path("r.csv").write_bytes(b"text,label\nsunny,joy\ncaf\xe9 grey,gloom\n")
    message = _error(capsys, "train", config("own.toml", 'task = "classification"\npath = "r.csv"'))
    assert "r.csv' line 3: not valid UTF-8 (byte 0xe9" in message


def test_empty_file_and_empty_class(capsys):
    write_text("r.csv", "")
    assert "is empty" in _error(capsys, "train", config("own.toml", 'task = "classification"\npath = "r.csv"'))
    write_text("empty.txt", "")
    assert "empty" in _error(capsys, "train", config("lm.toml", 'task = "language_model"\npath = "empty.txt"'))
    for i, (text, label) in enumerate(texts(6)):
        write_text(f"folders/{label}/{i}.txt", text)
    Path("folders/nothing").mkdir()
    message = _error(capsys, "train", config("own.toml", 'task = "classification"\npath = "folders"'))
    assert "class folder" in message and "nothing' is empty" in message


def test_label_unseen_in_training(capsys):
    write_table("train.csv", texts(12))
    write_table("test.csv", [("a new kind of day", "surprise"), ("sunny", "joy")])
    cfg = config("own.toml", 'task = "classification"\ntrain_path = "train.csv"\ntest_path = "test.csv"')
    message = _error(capsys, "train", cfg)
    assert "the test part holds the label 'surprise'" in message and "never has" in message


def test_mixed_formats_in_one_directory(capsys):
    write_table("mixed/a.csv", texts(6))
    write_text("mixed/b.jsonl", '{"text": "a", "label": "joy"}\n')
    message = _error(capsys, "train", config("own.toml", 'task = "classification"\npath = "mixed"'))
    assert "mixes formats" in message


def test_config_errors_of_the_file_keys(capsys):
    write_table("r.csv", texts(6))
    assert "no such file" in _error(capsys, "train", config("a.toml", 'task = "classification"\npath = "nope.csv"'))
    assert "either path" in _error(capsys, "train", config(
        "b.toml", 'task = "classification"\npath = "r.csv"\ntrain_path = "r.csv"'))
    assert "either dataset" in _error(capsys, "train", config(
        "c.toml", 'task = "language_model"\ndataset = "ptb"\npath = "r.csv"'))
    assert "reads your own files" in _error(capsys, "train", config("d.toml", 'task = "classification"'))
    assert "needs --file" in _error(capsys, "predict", "run", "some text", "--out", "x.csv")
