"""rnnlab.data.readers: paths, formats, compression and UTF-8 errors of a user's own files."""

import bz2
import gzip
import lzma

import pytest

from rnnlab.data.readers import detect_format, read_lines, resolve_paths, split_suffix
from rnnlab.data.sources import DatasetFormatError, DatasetNotFoundError


@pytest.mark.parametrize("suffix, opener", [("", open), (".gz", gzip.open), (".bz2", bz2.open), (".xz", lzma.open)])
def test_read_lines_decompresses_by_suffix(tmp_path, suffix, opener):
    path = tmp_path / f"a.txt{suffix}"
    with opener(path, "wb") as f:
        f.write("\ufeffone\r\ntwo é\nthree".encode())
    assert list(read_lines(path)) == [(1, "one"), (2, "two é"), (3, "three")]


def test_not_utf8_names_file_line_and_byte(tmp_path):
    path = tmp_path / "a.csv.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"text,label\nfine,1\nbad \xff here,0\n")
    with pytest.raises(DatasetFormatError, match=r"a\.csv\.gz' line 3: not valid UTF-8 \(byte 0xff at column 5\)"):
        list(read_lines(path))


def test_damaged_compressed_file_is_a_format_error(tmp_path):
    path = tmp_path / "a.txt.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DatasetFormatError, match="a.txt.gz"):
        list(read_lines(path))


def test_resolve_paths_file_directory_glob_and_missing(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ("d/b.txt", "d/sub/a.txt", "d/.hidden.txt", "c.txt"):
        (tmp_path / name).write_text("x\n")
    assert resolve_paths("c.txt", tmp_path) == [tmp_path / "c.txt"]
    assert resolve_paths("d", tmp_path) == [tmp_path / "d/b.txt", tmp_path / "d/sub/a.txt"]
    assert resolve_paths("**/*.txt", tmp_path) == sorted(
        [tmp_path / "c.txt", tmp_path / "d/b.txt", tmp_path / "d/sub/a.txt"])
    with pytest.raises(DatasetNotFoundError, match="no such file or directory"):
        resolve_paths("nope.txt", tmp_path)
    with pytest.raises(DatasetNotFoundError, match="no file matches"):
        resolve_paths("*.csv", tmp_path)


def test_detect_format_suffixes_explicit_and_mixtures():
    assert split_suffix("x.tar.CSV.gz") == (".csv", ".gz")
    assert detect_format(["a.conll", "b.conll.xz"]) == "conll"
    assert detect_format(["a.dat"], "tsv") == "tsv"
    with pytest.raises(DatasetFormatError, match="cannot tell the format"):
        detect_format(["a.dat"])
    with pytest.raises(DatasetFormatError, match="mixes formats"):
        detect_format(["a.csv", "b.jsonl"])
    with pytest.raises(ValueError, match="format must be one of"):
        detect_format(["a.csv"], "xlsx")

