"""rnnlab.data.tagging (CoNLL reader, BIO chunks, entity scores) and rnnlab.data.series_csv (a series CSV's errors)."""

import gzip
import math

import numpy as np
import pytest

from rnnlab.data.series_csv import read_series_csv
from rnnlab.data.sources import DatasetFormatError
from rnnlab.data.tagging import bio_chunks, chunk_scores, is_bio, read_conll, read_token_lines


# --------------------------------------------------------------------------- CoNLL
def test_read_conll_sentences_columns_docstart_and_lines(tmp_path):
    path = tmp_path / "a.conll"
    path.write_text("-DOCSTART- -X- O O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n\n"
                    "Peter\tNNP\tB-NP\tB-PER\nBlackburn NNP I-NP I-PER\n", encoding="utf-8")
    first, second = read_conll(path)
    assert first.tokens == ["EU", "rejects"] and first.tags == ["B-ORG", "O"] and first.lines == [3, 4]
    assert second.tokens == ["Peter", "Blackburn"] and second.tags == ["B-PER", "I-PER"] and second.lines == [7, 8]
    assert second.source == str(path)
    pos = read_conll(path, token_column=0, tag_column=1)
    assert [s.tags for s in pos] == [["NNP", "VBZ"], ["NNP", "NNP"]]
    untagged = read_conll(path, tag_column=None)
    assert untagged[0].tags is None and untagged[1].tokens == ["Peter", "Blackburn"]


def test_read_conll_compressed_and_errors(tmp_path):
    packed = tmp_path / "b.conll.gz"
    with gzip.open(packed, "wt", encoding="utf-8") as f:
        f.write("a O\nb B-X\n")
    assert read_conll(packed)[0].tags == ["O", "B-X"]
    one = tmp_path / "one.conll"
    one.write_text("a O\nlonely\n", encoding="utf-8")
    with pytest.raises(DatasetFormatError, match=r"one\.conll' line 2: expected a token and its tag"):
        read_conll(one)
    with pytest.raises(DatasetFormatError, match=r"line 1: tag_column 5 does not exist in a line of 2"):
        read_conll(packed, tag_column=5)
    empty = tmp_path / "empty.conll"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DatasetFormatError, match="no sentence found"):
        read_conll(empty)
    with pytest.raises(TypeError, match="tag_column must be an int, got str"):
        read_conll(packed, tag_column="2")


def test_read_token_lines_one_sentence_per_line(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("Anna went home\n\n  Bob  \n", encoding="utf-8")
    assert [s.tokens for s in read_token_lines(path)] == [["Anna", "went", "home"], ["Bob"]]


# --------------------------------------------------------------------------- BIO chunks, worked by hand
@pytest.mark.parametrize("tags, chunks", [
    (["O", "O"], []),
    (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 2), ("LOC", 3, 4)]),
    (["B-LOC", "B-LOC", "I-LOC"], [("LOC", 0, 1), ("LOC", 1, 3)]),       # B starts a new entity
    (["O", "I-ORG", "I-ORG", "O"], [("ORG", 1, 3)]),                      # I after O begins one (IOB1 style)
    (["B-PER", "I-ORG", "I-ORG"], [("PER", 0, 1), ("ORG", 1, 3)]),        # I of another type begins one
    (["B-MISC", "I-MISC", "I-MISC"], [("MISC", 0, 3)]),                   # an entity ending the sentence
])
def test_bio_chunks(tags, chunks):
    assert bio_chunks(tags) == chunks


def test_chunk_scores_exact_matches_by_hand():
    true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "O", "O", "B-LOC"], ["B-ORG", "B-LOC"]]
    # true entities: PER 0-2, LOC 3-4, ORG 0-1 (3); predicted: PER 0-1, LOC 3-4, ORG 0-1, LOC 1-2 (4);
    # right: LOC 3-4 and ORG 0-1 (2)  ->  precision 2/4, recall 2/3, F1 = 2 (1/2)(2/3) / (7/6) = 4/7
    scores = chunk_scores(true, pred)
    assert (scores["true_entities"], scores["predicted_entities"], scores["correct_entities"]) == (3, 4, 2)
    assert math.isclose(scores["precision"], 0.5) and math.isclose(scores["recall"], 2 / 3)
    assert math.isclose(scores["f1"], 4 / 7)
    assert chunk_scores([["O"]], [["O"]])["f1"] == 0.0
    with pytest.raises(ValueError, match="sentence 0: true_tags has 1 tags and pred_tags 2"):
        chunk_scores([["O"]], [["O", "O"]])


def test_is_bio():
    assert is_bio(["O", "B-PER", "I-PER"])
    assert not is_bio(["NN", "VB"]) and not is_bio(["O", "I-PER"]) and not is_bio([])


# --------------------------------------------------------------------------- series CSV
def write(tmp_path, text, name="s.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_series_csv_columns_dates_sorted_and_tsv(tmp_path):
    path = write(tmp_path, "date,a,b\n2024-01-03,3,30\n2024-01-01,1,10\n2024-01-02,2,20\n")
    table = read_series_csv(path, ["b", "a"], date_column="date")
    assert table.values.tolist() == [[10, 1], [20, 2], [30, 3]]
    assert [d.day for d in table.dates] == [1, 2, 3] and table.lines.tolist() == [3, 4, 2]
    tsv = write(tmp_path, "m\tv\n2020-01\t1.5\n2020-02\t2.5\n", "s.tsv")
    assert read_series_csv(tsv, ["v"], date_column="m").values[:, 0].tolist() == [1.5, 2.5]


def test_read_series_csv_errors_name_line_and_column(tmp_path):
    path = write(tmp_path, "a,b\n1,2\n3,x\n")
    with pytest.raises(DatasetFormatError, match=r"s\.csv' line 3, column 'b': expected a number, got 'x'"):
        read_series_csv(path, ["a", "b"])
    with pytest.raises(DatasetFormatError, match=r"no column 'c'; the header has 'a', 'b'"):
        read_series_csv(path, ["a", "c"])
    gap = write(tmp_path, "a,b\n1,2\n,4\n5,NA\n")
    with pytest.raises(DatasetFormatError, match=r"line 3, column 'a': missing value.*interpolate"):
        read_series_csv(gap, ["a", "b"])
    with pytest.raises(DatasetFormatError, match="the file is empty"):
        read_series_csv(write(tmp_path, "", "e.csv"), ["a"])
    with pytest.raises(DatasetFormatError, match="header but no rows"):
        read_series_csv(write(tmp_path, "a\n", "h.csv"), ["a"])
    with pytest.raises(DatasetFormatError, match=r"line 3: expected 2 cells as in the header, got 3"):
        read_series_csv(write(tmp_path, "a,b\n1,2\n1,2,3\n", "w.csv"), ["a"])
    with pytest.raises(DatasetFormatError, match=r"line 2, column 'd': cannot read 'soon' as a date"):
        read_series_csv(write(tmp_path, "d,a\nsoon,1\n", "d.csv"), ["a"], date_column="d")
    with pytest.raises(DatasetFormatError, match=r"lines 2 and 3: the same date 2024-01-01T00:00:00 twice"):
        read_series_csv(write(tmp_path, "d,a\n2024-01-01,1\n2024-01-01,2\n", "dd.csv"), ["a"], date_column="d")


def test_read_series_csv_missing_drop_and_interpolate(tmp_path):
    gap = write(tmp_path, "a,b\n1,2\n,4\n5,NA\n7,8\n")
    dropped = read_series_csv(gap, ["a", "b"], missing="drop")
    assert dropped.values.tolist() == [[1, 2], [7, 8]] and dropped.lines.tolist() == [2, 5]
    filled = read_series_csv(gap, ["a", "b"], missing="interpolate")
    np.testing.assert_allclose(filled.values, [[1, 2], [3, 4], [5, 6], [7, 8]])
    edges = write(tmp_path, "a\n\n1\n2\nnan\n", "edges.csv")  # a blank line is skipped, not a missing value
    np.testing.assert_allclose(read_series_csv(edges, ["a"], missing="interpolate").values[:, 0], [1, 2, 2])
    with pytest.raises(DatasetFormatError, match="column 'a': every value is missing"):
        read_series_csv(write(tmp_path, "a,b\n,1\n,2\n", "all.csv"), ["a", "b"], missing="interpolate")
