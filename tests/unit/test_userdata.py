"""The user's files: [data] path keys, their resolution against the config's folder, the splits, the records and
labelled texts, and the corpus encoded to token ids."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from rnnlab.data.corpus import encode_corpus, load_corpus
from rnnlab.data.records import read_labelled, read_records
from rnnlab.data.sources import DatasetFormatError
from rnnlab.data.text import Vocabulary
from rnnlab.lab.config import ConfigError, load_config, parse_config, to_toml
from rnnlab.lab.userdata import data_files, split_indices
from rnnlab.training.metrics import confusion_matrix, macro_f1


def test_relative_paths_are_taken_from_the_config_folder(tmp_path):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "run.toml").write_text('[data]\ntask = "classification"\ntrain_path = "../d/train.csv"\n'
                                              'val_path = "/abs/val.csv"\n')
    config = load_config(tmp_path / "cfg" / "run.toml")
    assert config.data.train_path == str((tmp_path / "cfg" / "../d/train.csv").absolute())
    assert config.data.val_path == "/abs/val.csv"
    again = parse_config(to_toml(config))  # the resolved config reads the same files from anywhere
    assert again.data == config.data


@pytest.mark.parametrize("data, message", [
    ('task = "classification"', "reads your own files"),
    ('task = "classification"\npath = "a.csv"\ntrain_path = "b.csv"', "either path"),
    ('task = "classification"\nval_path = "b.csv"', "needs train_path"),
    ('task = "language_model"\ndataset = "ptb"\npath = "a.txt"', "either dataset"),
    ('task = "classification"\ntrain_path = "a.csv"\nval_frac = 0.2', "leave val_frac out"),
    ('task = "sentiment"\ndataset = "mr"\npath = "a.csv"', "does not apply"),
    ('task = "language_model"\ndataset = "ptb"\nlevel = "subword"', "'subword' is for a language_model"),
    ('task = "classification"\npath = "a.csv"\nformat = "xlsx"', "expected one of 'txt'"),
    ('task = "classification"\npath = "a.csv"\ntext_column = "x"\nlabel_column = "x"', "must differ"),
])
def test_file_keys_are_checked(data, message):
    with pytest.raises(ConfigError, match=message):
        parse_config("[data]\n" + data)


def test_builtin_language_model_configs_keep_their_keys():
    config = parse_config('[data]\ntask = "language_model"\ndataset = "ptb"\n')
    assert not {"path", "format", "val_frac", "test_frac"} & set(config.data.to_dict())


def test_data_files_by_part_and_format(tmp_path):
    for name in ("a.csv", "b.csv.gz"):
        (tmp_path / name).write_text("x")
    config = parse_config(f'[data]\ntask = "classification"\npath = "{tmp_path}/*.csv*"\n')
    files = data_files(config.data)
    assert files.format == "csv" and not files.given and [p.name for p in files.parts["all"]] == ["a.csv", "b.csv.gz"]


def test_split_indices_stratified_seeded_and_ordered():
    labels = np.array(["a"] * 20 + ["b"] * 10)
    parts = split_indices(30, 0.2, 0.1, seed=3, stratify=labels)
    together = np.concatenate([parts["train"], parts["val"], parts["test"]])
    assert sorted(together.tolist()) == list(range(30))
    assert sorted(labels[parts["test"]].tolist()) == ["a", "a", "b"]  # 10 % of each class
    assert [len(parts[p]) for p in ("train", "val", "test")] == [21, 6, 3]
    again = split_indices(30, 0.2, 0.1, seed=3, stratify=labels)
    assert all(np.array_equal(parts[p], again[p]) for p in parts)
    ordered = split_indices(10, 0.2, 0.1, ordered=True)
    assert [ordered[p].tolist() for p in ("train", "val", "test")] == [list(range(7)), [7, 8], [9]]
    assert split_indices(5, 0.0, 0.0)["val"] is None
    with pytest.raises(ConfigError, match="cannot split 2 texts"):
        split_indices(2, 0.1, 0.1, what="texts")


def test_read_records_csv_with_quoted_newline_and_jsonl(tmp_path):
    (tmp_path / "a.csv").write_text('text,label\n"two\nlines",x\nplain,y\n\n')
    assert list(read_records(tmp_path / "a.csv", "csv")) == [(2, {"text": "two\nlines", "label": "x"}),
                                                            (4, {"text": "plain", "label": "y"})]
    with gzip.open(tmp_path / "a.jsonl.gz", "wt") as f:
        f.write('{"text": "a", "label": 1, "more": [1]}\n\n{"text": "b", "label": "1"}\n')
    texts, labels = read_labelled([tmp_path / "a.jsonl.gz"], "jsonl")
    assert texts == ["a", "b"] and labels == ["1", "1"]
    (tmp_path / "b.jsonl").write_text('{"text": "a", "label": 1.5}\n')
    with pytest.raises(DatasetFormatError, match="line 1: the label .* a string or an integer"):
        read_labelled([tmp_path / "b.jsonl"], "jsonl")


def test_encode_corpus_matches_fitting_on_the_token_lists(tmp_path):
    train = ["b a b", "c b"]
    val = ["a d", "b"]
    vocab, ids = encode_corpus({"train": lambda: iter(train), "val": lambda: iter(val)}, str.split, tmp_path,
                               eos="<eos>", fingerprint={"v": 1})
    tokens = [line.split() + ["<eos>"] for line in train]
    expected = Vocabulary(specials=("<unk>",)).fit(tokens)
    assert vocab == expected
    assert ids["train"].tolist() == expected.encode([t for line in tokens for t in line])
    assert vocab.decode(ids["val"].tolist()) == ["a", "<unk>", "<eos>", "b", "<eos>"]
    assert ids["train"].dtype == np.uint16 and isinstance(ids["train"], np.memmap)
    assert load_corpus(tmp_path, {"v": 1})["val"].tolist() == ids["val"].tolist()
    assert load_corpus(tmp_path, {"v": 2}) is None  # another tokenization: encode again
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokens-train.npy", "tokens-val.npy", "tokens.json"]


def test_confusion_matrix_and_macro_f1():
    cm = confusion_matrix([0, 0, 1, 2, 2], [0, 1, 1, 2, 0], 4)
    assert cm.tolist() == [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    f1 = [2 * 1 / (2 + 1 + 1), 2 * 1 / (2 + 1 + 0), 2 * 1 / (2 + 0 + 1)]  # class 3 has no sample: left out
    assert macro_f1(cm) == pytest.approx(np.mean(f1))
