"""rnnlab.datasets: the loaders, checksum verification, the download registry, and the error messages.

The real files are read from the shared data directory (the ``data_dir`` fixture); broken copies
are built in ``tmp_path``.
"""

from __future__ import annotations

import hashlib
import re
import shutil

import numpy as np
import pytest

from rnnlab.data.datasets import (
    CACHE_ENV,
    DATA_ENV,
    EOS,
    REMOTES,
    ChecksumError,
    DatasetFormatError,
    DatasetNotFoundError,
    default_cache_dir,
    movie_reviews,
    ptb,
    ptb_char_text,
    read_checksums,
    time_series,
    tiny_shakespeare,
    uci_sentiment,
    verified_bytes,
)

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
    assert texts[1019] == ('" The structure of this film is easily the most tightly constructed '
                           'in the history of cinema.')
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
    with pytest.raises(DatasetNotFoundError,
                       match=rf"data directory '{re.escape(str(missing))}'.*does not exist.*RNNLAB_DATA"):
        uci_sentiment(missing)


def test_missing_dataset_folder_names_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match=rf"folder '{re.escape(str(tmp_path / 'uci_sentiment'))}' not found .*RNNLAB_DATA"):
        uci_sentiment(tmp_path)


def test_missing_file_names_the_path_and_the_remedy(fake_root):
    path = fake_root / "uci_sentiment" / "amazon_cells_labelled.txt"
    with pytest.raises(DatasetNotFoundError,
                       match=rf"data file '{re.escape(str(path))}' not found; .*RNNLAB_DATA=.*--data-dir"):
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
    with pytest.raises(ValueError,
                       match=r"sources must be a non-empty selection of 'amazon', 'imdb', 'yelp'; got \('netflix',\)"):
        uci_sentiment(data_dir, sources=("netflix",))


# =========================================================================== the other loaders
# Expected values below are typed from the SOURCE.md files (and the papers they cite), never computed
# by the code under test.

PTB_WORD_TOKENS = {"train": 929_589, "valid": 73_760, "test": 82_430}  # with one <eos> per line
PTB_LINES = {"train": 42_068, "valid": 3_370, "test": 3_761}
PTB_CHAR = {  # rebuilt file: bytes, sha256, symbols + one end-of-line symbol per line
    "train": (10_034_964, "e313d91425e06c4f0a8fb6e881dcce0c291f2a0e9f4dda54833069b122f91da9", 5_017_482),
    "valid": (786_084, "21661f63ec355085879458b6524644d4add5573541b4be14fb52ab2e2e995eb8", 393_042),
    "test": (884_846, "1ef5607ac3c463b16e38bfe7900dd3bfc91de5a96e0f21e7eab5188b465b8ebe", 442_423),
}
PTB_VALID_LINE_1 = "consumers may want to move their telephones a little closer to the tv set"


def copy_folder(data_dir, root, folder, *names):
    """``root/folder`` with the real SOURCE.md and copies of ``names``, for tests to damage."""
    (root / folder).mkdir(parents=True, exist_ok=True)
    for name in ("SOURCE.md", *names):
        shutil.copyfile(data_dir / folder / name, root / folder / name)
    return root / folder


@pytest.fixture(scope="module")
def ptb_words(data_dir):
    return ptb(data_dir)


def test_ptb_word_streams_have_the_published_token_counts(ptb_words):
    assert {split: len(stream) for split, stream in ptb_words.items()} == PTB_WORD_TOKENS
    assert {split: stream.count(EOS) for split, stream in ptb_words.items()} == PTB_LINES
    train_vocab = set(ptb_words["train"])
    assert len(train_vocab) == 10_000 and {"<unk>", EOS, "N"} <= train_vocab
    assert set(ptb_words["valid"]) <= train_vocab and set(ptb_words["test"]) <= train_vocab
    valid = ptb_words["valid"]
    assert " ".join(valid[:valid.index(EOS)]) == PTB_VALID_LINE_1
    assert ptb_words["test"][-3:] == ["with", "us", EOS] and ptb_words["train"][-1] == EOS


def test_ptb_split_returns_one_stream(data_dir, ptb_words):
    assert ptb(data_dir, split="test") == ptb_words["test"]


def test_ptb_char_text_follows_the_rule_of_source_md():
    # line " a b " -> " a _ b ", line " cd " -> " c d "; join with \n, add \n, drop the first char, add " "
    assert ptb_char_text(" a b \n cd \n") == "a _ b \n c d \n "


@pytest.mark.parametrize("split", ["train", "valid", "test"])
def test_ptb_char_files_are_rebuilt_byte_for_byte(data_dir, split):
    size, sha, _ = PTB_CHAR[split]
    rebuilt = ptb_char_text((data_dir / "ptb" / f"ptb.{split}.txt").read_text(encoding="ascii")).encode("ascii")
    assert len(rebuilt) == size
    assert hashlib.sha256(rebuilt).hexdigest() == sha


def test_ptb_char_streams_have_the_published_symbol_counts(data_dir):
    streams = ptb(data_dir, level="char")
    assert {split: len(s) for split, s in streams.items()} == {split: v[2] for split, v in PTB_CHAR.items()}
    assert {split: s.count(EOS) for split, s in streams.items()} == PTB_LINES
    assert len(set(streams["train"])) == 50  # 49 symbols + <eos>, the char-level PTB alphabet
    valid = streams["valid"]
    first_line = valid[:valid.index(EOS)]
    assert all(len(symbol) == 1 for symbol in first_line)
    assert "".join(first_line) == PTB_VALID_LINE_1.replace(" ", "_")


def test_tiny_shakespeare_text_and_the_nanogpt_split(data_dir):
    text = tiny_shakespeare(data_dir)
    assert len(text) == 1_115_394 and text.count("\n") == 40_000
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    assert set(text) == set("\n !$&',-.3:;?" + letters) and len(set(text)) == 65
    assert text.startswith("First Citizen:\nBefore we proceed any further, hear me speak.")
    train, valid = tiny_shakespeare(data_dir, split="train"), tiny_shakespeare(data_dir, split="valid")
    assert (len(train), len(valid)) == (1_003_854, 111_540)
    assert train + valid == text


def test_movie_reviews_read_as_cp1252_split_on_newline_only(data_dir):
    texts, labels = movie_reviews(data_dir)
    assert len(texts) == 10_662 and labels.shape == (10_662,) and labels.dtype == np.int64
    assert labels[:5331].tolist() == [1] * 5331 and labels[5331:].tolist() == [0] * 5331
    assert texts[0].startswith("the rock is destined to be the 21st century's new \" conan \"")
    assert texts[-1].endswith("but it's just too dry and too placid .")
    # byte 0x85 is cp1252's ellipsis, inside a sentence; as latin-1 U+0085 it would split lines
    assert sum("\u2026" in t for t in texts) > 0 and not any("\x85" in t for t in texts)
    assert not any(t != t.strip() or not t for t in texts)


def test_movie_reviews_keep_a_sentence_whole_around_byte_0x85(data_dir, tmp_path):
    folder = copy_folder(data_dir, tmp_path, "mr", "rt-polarity.neg")
    (folder / "rt-polarity.pos").write_bytes(b"wait \x85 for it .\nfine .\n")
    texts, labels = movie_reviews(tmp_path, verify=False)
    assert texts[:2] == ["wait \u2026 for it .", "fine ."] and labels[:2].tolist() == [1, 1]
    assert len(texts) == 2 + 5331


TIME_SERIES_RECORDS = {  # name: (records, first (date, value), last (date, value))
    "airline-passengers": (144, ("1949-01", 112.0), ("1960-12", 432.0)),
    "monthly-sunspots": (2820, ("1749-01", 58.0), ("1983-12", 33.4)),
    "daily-min-temperatures": (3650, ("1981-01-01", 20.7), ("1990-12-31", 13.0)),
}


@pytest.mark.parametrize("name", sorted(TIME_SERIES_RECORDS))
def test_time_series_records(data_dir, name):
    dates, values = time_series(name, data_dir)
    n, first, last = TIME_SERIES_RECORDS[name]
    assert dates.shape == values.shape == (n,) and values.dtype == np.float64
    assert (dates[0], values[0]) == first and (dates[-1], values[-1]) == last
    assert all(isinstance(d, str) for d in dates[:3].tolist())


def test_daily_temperatures_lack_two_new_years_eves(data_dir):
    dates, _ = time_series("daily-min-temperatures", data_dir)
    assert "1984-12-31" not in dates and "1988-12-31" not in dates and "1984-02-29" in dates


def test_time_series_accepts_lf_and_a_final_newline(data_dir, tmp_path):
    folder = copy_folder(data_dir, tmp_path, "timeseries")
    (folder / "airline-passengers.csv").write_bytes(b'"Month","Passengers"\n"1949-01",112\n"1949-02",118.5\r\n')
    dates, values = time_series("airline-passengers", tmp_path, verify=False)
    assert dates.tolist() == ["1949-01", "1949-02"] and values.tolist() == [112.0, 118.5]


HEADER = b'"Month","Passengers"\r\n'


@pytest.mark.parametrize("body, match", [
    (b'"1949-01",112\r\n"1949-02";118\r\n"1949-03",132',
     r"line 3: expected 2 comma-separated fields \(date,value\), got 1 field"),
    (b'"1949-01",112\r\n"1949-02",118,7', r"line 3: expected 2 comma-separated fields .*got 3 field"),
    (b'"1949-01",112\r\n\r\n"1949-03",132', r"line 3: expected 2 comma-separated fields .*got an empty line"),
    (b'"1949-01",112\r\n"1949-02",?', r"line 3: value '\?' is not a number"),
    (b'"1949-01",112\r\n"1949-02",nan', r"line 3: value 'nan' is not finite"),
    (b'"1949-01",112\r\n"",118', r"line 3: the date field is empty"),
    (b'"1949-01",112\r\n"1949-02",1\xe918', r"line 3: not valid ASCII \(byte 0xe9"),
])
def test_a_malformed_csv_row_names_the_file_and_line(data_dir, tmp_path, body, match):
    folder = copy_folder(data_dir, tmp_path, "timeseries")
    (folder / "airline-passengers.csv").write_bytes(HEADER + body)
    with pytest.raises(DatasetFormatError, match=r"airline-passengers\.csv' " + match):
        time_series("airline-passengers", tmp_path, verify=False)


@pytest.mark.parametrize("content, match", [
    (b"", r"is empty; restore the original file"),
    (b"\r\n", r"is empty \(2 bytes of whitespace\)"),
    (HEADER.rstrip(), r"has a header but no records"),
    (b'"Date","Temp"\r\n"1949-01",112',
     r"line 1: expected the header \"Month\",\"Passengers\", got '\"Date\",\"Temp\"'"),
])
def test_an_empty_or_headless_csv_is_refused(data_dir, tmp_path, content, match):
    folder = copy_folder(data_dir, tmp_path, "timeseries")
    (folder / "airline-passengers.csv").write_bytes(content)
    with pytest.raises(DatasetFormatError, match=match):
        time_series("airline-passengers", tmp_path, verify=False)


# loader call, folder, file it reads, files it also needs, an edit that keeps the format valid
LOADERS = {
    "ptb": (lambda root, **kw: ptb(root, split="valid", **kw), "ptb", "ptb.valid.txt", (), (b"the", b"tha")),
    "ptb-char": (lambda root, **kw: ptb(root, level="char", split="valid", **kw), "ptb", "ptb.valid.txt", (),
                 (b"the", b"tha")),
    "tiny_shakespeare": (lambda root, **kw: tiny_shakespeare(root, **kw), "tinyshakespeare", "input.txt", (),
                         (b"Citizen", b"Citizan")),
    "movie_reviews": (lambda root, **kw: movie_reviews(root, **kw), "mr", "rt-polarity.pos", ("rt-polarity.neg",),
                      (b"rock", b"rack")),
    "time_series": (lambda root, **kw: time_series("monthly-sunspots", root, **kw), "timeseries",
                    "monthly-sunspots.csv", (), (b"58.0", b"58.5")),
}


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_a_damaged_file_fails_its_checksum_unless_verify_is_false(data_dir, tmp_path, loader):
    load, folder, name, others, (old, new) = LOADERS[loader]
    copy_folder(data_dir, tmp_path, folder, name, *others)
    expected = read_checksums(data_dir / folder)[name]
    path = tmp_path / folder / name
    raw = path.read_bytes()
    assert old in raw
    path.write_bytes(raw.replace(old, new, 1))
    with pytest.raises(ChecksumError, match=rf"checksum mismatch for '{re.escape(str(path))}': "
                       rf"SOURCE.md lists sha256 {expected}, the file has [0-9a-f]{{64}}"):
        load(tmp_path)
    load(tmp_path, verify=False)  # the edited copy loads when asked to


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_a_missing_file_says_where_it_looked_and_how_to_provide_it(data_dir, tmp_path, loader):
    load, folder, name, others, _ = LOADERS[loader]
    copy_folder(data_dir, tmp_path, folder, *others)
    path = tmp_path / folder / name
    cache = tmp_path / "cache"
    with pytest.raises(DatasetNotFoundError, match=rf"data file '{re.escape(str(path))}' not found; "
                       rf".*{DATA_ENV}=.*--data-dir "
                       rf".*or pass download=True to download it from https://raw\.githubusercontent\.com/"
                       rf".*/{re.escape(name)} "
                       rf"into the cache '{re.escape(str(cache / folder))}'"):
        load(tmp_path, cache_dir=cache)
    assert not cache.exists()  # nothing downloaded without download=True


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_an_empty_file_is_refused(data_dir, tmp_path, loader):
    load, folder, name, others, _ = LOADERS[loader]
    copy_folder(data_dir, tmp_path, folder, *others)
    (tmp_path / folder / name).write_bytes(b"")
    with pytest.raises(DatasetFormatError, match=rf"'{re.escape(str(tmp_path / folder / name))}' is empty"):
        load(tmp_path, verify=False)


@pytest.mark.parametrize("loader, bad, match", [
    ("ptb", b" good words \n caf\xe9 \n", r"ptb.valid.txt' line 2: not valid ASCII \(byte 0xe9 at offset 17"),
    ("tiny_shakespeare", b"First\nSecond\nTh\xc3\xafrd\n", r"input.txt' line 3: not valid ASCII \(byte 0xc3"),
    # 0x81 is one of the five bytes cp1252 leaves undefined
    ("movie_reviews", b"good .\n\x81 bad byte .\n",
     r"rt-polarity.pos' line 2: not valid cp1252 \(Windows-1252\) \(byte 0x81"),
])
def test_bytes_invalid_in_the_documented_encoding_name_the_line(data_dir, tmp_path, loader, bad, match):
    load, folder, name, others, _ = LOADERS[loader]
    copy_folder(data_dir, tmp_path, folder, *others)
    (tmp_path / folder / name).write_bytes(bad)
    with pytest.raises(DatasetFormatError, match=match + r".*the file must be"):
        load(tmp_path, verify=False)


def test_a_blank_movie_review_line_is_refused(data_dir, tmp_path):
    folder = copy_folder(data_dir, tmp_path, "mr", "rt-polarity.neg")
    (folder / "rt-polarity.pos").write_bytes(b"good .\n \nfine .\n")
    with pytest.raises(DatasetFormatError, match=r"rt-polarity.pos' line 2: blank line"):
        movie_reviews(tmp_path, verify=False)


@pytest.mark.parametrize("call, match", [
    (lambda d: ptb(d, level="byte"), r"level must be one of 'word', 'char'; got 'byte'"),
    (lambda d: ptb(d, split="validation"), r"split must be one of 'train', 'valid', 'test'; got 'validation'"),
    (lambda d: tiny_shakespeare(d, split="val"), r"split must be one of 'all', 'train', 'valid'; got 'val'"),
    (lambda d: time_series("sunspots", d), r"name must be one of 'airline-passengers', 'monthly-sunspots', "
                                           r"'daily-min-temperatures'; got 'sunspots'"),
])
def test_unknown_choices_are_rejected(data_dir, call, match):
    with pytest.raises(ValueError, match=match):
        call(data_dir)


def test_data_dir_of_the_wrong_type_is_rejected():
    with pytest.raises(TypeError, match=r"data_dir must be a path \(str or os.PathLike\), got int 3"):
        tiny_shakespeare(3)


# =========================================================================== the download registry
@pytest.mark.parametrize("folder", ["ptb", "tinyshakespeare", "mr", "uci_sentiment", "timeseries"])
def test_remotes_match_source_md(data_dir, folder):
    """Every file of the folder has a commit-pinned raw GitHub URL and the digest SOURCE.md lists."""
    sums = read_checksums(data_dir / folder)
    assert set(REMOTES[folder]) == set(sums)
    source = (data_dir / folder / "SOURCE.md").read_text(encoding="utf-8")
    for name, remote in REMOTES[folder].items():
        assert remote.sha256 == sums[name]
        m = re.fullmatch(r"https://raw\.githubusercontent\.com/([\w.-]+/[\w.-]+)/([0-9a-f]{40})/(.+)", remote.url)
        assert m, remote.url
        repo, commit, path = m.groups()
        assert repo in source and commit in source, (repo, commit)  # the origin SOURCE.md cites
        assert path.rsplit("/", 1)[-1] == name


def test_default_cache_dir_comes_from_the_environment_or_home(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "rnnlab"
