"""rnnlab.datasets: the UCI sentiment loader, checksum verification and its error messages.

The real files are read from the shared data directory (the ``data_dir`` fixture); broken copies
are built in ``tmp_path``.
"""

from __future__ import annotations

import hashlib
import re
import shutil

import numpy as np
import pytest

from rnnlab.datasets import (ChecksumError, DatasetFormatError, DatasetNotFoundError, read_checksums,
                             uci_sentiment, verified_bytes)

# from uci_sentiment/SOURCE.md, typed here so the parser is checked against the document
AMAZON_SHA256 = "47003fc0a0d4840b00e96e715b6189bad09e7443a3da41c4cbe12ffc79f86ae3"


@pytest.fixture
def fake_root(tmp_path, data_dir):
    """A data directory with the real SOURCE.md and a copy of the yelp file, to be damaged by tests."""
    folder = tmp_path / "uci_sentiment"
    folder.mkdir()
    shutil.copyfile(data_dir / "uci_sentiment" / "SOURCE.md", folder / "SOURCE.md")
    shutil.copyfile(data_dir / "uci_sentiment" / "yelp_labelled.txt", folder / "yelp_labelled.txt")
    return tmp_path


def test_loads_the_three_thousand_labelled_sentences(data_dir):
    texts, labels = uci_sentiment(data_dir)
    assert len(texts) == 3000 and labels.shape == (3000,) and labels.dtype == np.int64
    assert labels.sum() == 1500 and set(np.unique(labels)) == {0, 1}
    assert texts[0] == "So there is no way for me to plug it in here in the US unless I go by a converter."
    assert labels[0] == 0
    # imdb line 19 has an unbalanced quote: it must stay one sentence, not swallow the next lines
    assert texts[1018].endswith('in a sea of faux "masterpieces.') and labels[1018] == 1
    assert texts[1019] == '" The structure of this film is easily the most tightly constructed in the history of cinema.'
    # imdb line 179 holds U+0085, a line break for str.splitlines but not for the loader
    assert texts[1178] == "The script is\x85was there a script?" and labels[1178] == 0


def test_sources_select_and_order_the_files(data_dir):
    texts, labels = uci_sentiment(data_dir, sources=("yelp", "amazon"))
    assert len(texts) == 2000
    assert texts[0] == "Wow... Loved this place." and labels[0] == 1
    assert texts[1000].startswith("So there is no way for me to plug it in")
    texts, _ = uci_sentiment(data_dir, sources="imdb")
    assert len(texts) == 1000


def test_reads_the_directory_from_the_environment(data_dir, monkeypatch):
    monkeypatch.setenv("RNNLAB_DATA", str(data_dir))
    texts, _ = uci_sentiment(sources=("amazon",))
    assert len(texts) == 1000


def test_checksums_are_parsed_from_source_md_and_match_the_files(data_dir):
    folder = data_dir / "uci_sentiment"
    sums = read_checksums(folder)
    assert set(sums) == {"amazon_cells_labelled.txt", "imdb_labelled.txt", "yelp_labelled.txt", "readme.txt"}
    assert sums["amazon_cells_labelled.txt"] == AMAZON_SHA256
    assert hashlib.sha256((folder / "amazon_cells_labelled.txt").read_bytes()).hexdigest() == AMAZON_SHA256
    assert verified_bytes(folder, "readme.txt").startswith(b"This dataset was created")


def test_no_data_directory_says_how_to_provide_it(monkeypatch):
    monkeypatch.delenv("RNNLAB_DATA", raising=False)
    with pytest.raises(DatasetNotFoundError, match=r"neither a data_dir argument nor RNNLAB_DATA is set.*--data-dir"):
        uci_sentiment()


def test_missing_directory_names_the_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFoundError, match=rf"data directory '{re.escape(str(missing))}'.*does not exist.*RNNLAB_DATA"):
        uci_sentiment(missing)


def test_missing_dataset_folder_names_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError, match=rf"folder '{re.escape(str(tmp_path / 'uci_sentiment'))}' not found .*RNNLAB_DATA"):
        uci_sentiment(tmp_path)


def test_missing_file_names_the_path_and_the_remedy(fake_root):
    path = fake_root / "uci_sentiment" / "amazon_cells_labelled.txt"
    with pytest.raises(DatasetNotFoundError, match=rf"data file '{re.escape(str(path))}' not found; .*RNNLAB_DATA=.*--data-dir"):
        uci_sentiment(fake_root)


def test_a_damaged_file_fails_the_checksum(fake_root):
    path = fake_root / "uci_sentiment" / "yelp_labelled.txt"
    path.write_bytes(path.read_bytes().replace(b"Loved", b"Hated", 1))
    with pytest.raises(ChecksumError, match=r"checksum mismatch for .*yelp_labelled.txt.*lists sha256 c76468b7b5c6"):
        uci_sentiment(fake_root, sources=("yelp",))
    texts, _ = uci_sentiment(fake_root, sources=("yelp",), verify=False)
    assert texts[0] == "Wow... Hated this place."


def test_a_missing_source_md_cannot_verify(fake_root):
    (fake_root / "uci_sentiment" / "SOURCE.md").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"checksum list .*SOURCE.md' not found"):
        uci_sentiment(fake_root, sources=("yelp",))


def test_source_md_without_a_checksum_table_is_a_format_error(fake_root):
    (fake_root / "uci_sentiment" / "SOURCE.md").write_text("# notes\n\n| file | size |\n|---|---|\n| a | 1 |\n")
    with pytest.raises(DatasetFormatError, match=r"no table with 'file' and 'sha256' columns"):
        uci_sentiment(fake_root, sources=("yelp",))


@pytest.mark.parametrize("content, match", [
    (b"good\t1\nno tab here\n", r"line 2: expected 'sentence<TAB>label', found no tab"),
    (b"good\t1\nbad\t2\n", r"line 2: label must be 0 or 1, got '2'"),
    (b"good\t1\n\xff\xfe\t0\n", r"line 2: not valid UTF-8"),
    (b"", r"is empty"),
])
def test_malformed_files_report_the_line(fake_root, content, match):
    (fake_root / "uci_sentiment" / "yelp_labelled.txt").write_bytes(content)
    with pytest.raises(DatasetFormatError, match=match):
        uci_sentiment(fake_root, sources=("yelp",), verify=False)


def test_splits_on_the_last_tab_only(fake_root):
    (fake_root / "uci_sentiment" / "yelp_labelled.txt").write_bytes(b"a\tb with a tab\t1\nplain\t0\n")
    texts, labels = uci_sentiment(fake_root, sources=("yelp",), verify=False)
    assert texts == ["a\tb with a tab", "plain"] and labels.tolist() == [1, 0]


def test_unknown_source_is_rejected(data_dir):
    with pytest.raises(ValueError, match=r"sources must be a non-empty selection of 'amazon', 'imdb', 'yelp'; got \('netflix',\)"):
        uci_sentiment(data_dir, sources=("netflix",))
