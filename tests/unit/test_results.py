"""rnnlab.lab.results: docs/results.json is valid and docs/results.md holds the tables written from it; the
checks and the tables on small made-up records; the ``python -m rnnlab.lab.results`` command."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from rnnlab.lab import results

ROOT = Path(__file__).resolve().parents[2]
RECORDS = ROOT / "docs" / "results.json"
PAGE = ROOT / "docs" / "results.md"


def record(**changes) -> dict:
    base = {"dataset": "ptb", "metric": "perplexity", "split": "test", "value": 84.2,
            "techniques": ["variational_dropout", "tying"], "params": 6_000_000,
            "command": "rnnlab train examples/ptb_regularised.toml --run-dir runs/ptb_reg", "date": "2026-12-07",
            "model": "2 x 400 LSTM", "published": 85.1, "published_source": "Inan et al. 2016"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


PAGE_TEXT = ("# Results\n\nprose before\n\n<!-- results-table:begin -->\nold\n<!-- results-table:end -->\n\n"
             "between\n\n<!-- ablation-table:begin -->\n<!-- ablation-table:end -->\n\nprose after\n")


# ----------------------------------------------------------------------------------------- the project's files
def test_the_project_records_are_valid():
    records = results.load(RECORDS)
    assert records, "docs/results.json holds no record"
    assert {r["dataset"] for r in records} >= {"ptb", "tiny_shakespeare", "mr", "copy", "adding", "sunspots"}


def test_the_results_page_holds_the_tables_written_from_the_records():
    page = PAGE.read_text(encoding="utf-8")
    records = results.load(RECORDS)
    assert results.rewrite(page, records) == page, \
        "docs/results.md differs from docs/results.json: run python -m rnnlab.lab.results --write docs/results.md"
    block = page.split("<!-- results-table:begin -->")[1].split("<!-- results-table:end -->")[0]
    rows = [line for line in block.splitlines() if line.startswith("| ") and not line.startswith("| task ")]
    assert len(rows) == len({(r["dataset"], r.get("model"), r["command"]) for r in records})


def test_every_command_of_the_records_is_on_the_page_or_follows_its_pattern():
    page = PAGE.read_text(encoding="utf-8")
    for i, r in enumerate(results.load(RECORDS)):
        # the adding runs other than LSTM at T = 100 are the page's "likewise model.cell = ..., data.seq_len = ..."
        generic = re.sub(r"seq_len=\d+ --set model\.cell=\w+ --run-dir runs/adding_\w+",
                         "seq_len=100 --set model.cell=lstm --run-dir runs/adding_lstm_T100", r["command"])
        assert generic in page, f"record {i}: its command is not in docs/results.md: {r['command']}"


# ----------------------------------------------------------------------------------------- checks
def test_a_good_record_passes():
    r = record()
    assert results.check_record(r) is r
    assert results.check_records([r, record(split="val", value=88.0)])


@pytest.mark.parametrize(("changes", "key", "message"), [
    ({"colour": "red"}, "colour", "unknown key"),
    ({"date": ...}, "date", "missing key"),
    ({"metric": "accuracy", "value": 1.2, "published": ...}, "value", r"fraction in \[0, 1\]"),
    ({"metric": "recall", "value": -0.1, "published": ...}, "value", r"fraction in \[0, 1\]"),
    ({"value": 0.5}, "value", "number >= 1"),
    ({"value": float("nan")}, "value", "finite"),
    ({"value": "84.2"}, "value", "expected a number"),
    ({"value": True}, "value", "expected a number"),
    ({"techniques": ["tying", "dropconnect"]}, "techniques", "'dropconnect'"),
    ({"techniques": "tying"}, "techniques", "expected a list"),
    ({"techniques": ["tying", "tying"]}, "techniques", "named twice"),
    ({"params": 3.5}, "params", "positive integer or null"),
    ({"params": True}, "params", "positive integer or null"),
    ({"date": "7 Dec 2026"}, "date", "YYYY-MM-DD"),
    ({"date": "2026-13-01"}, "date", "YYYY-MM-DD"),
    ({"dataset": "imdb"}, "dataset", "'imdb'"),
    ({"dataset": ["ptb"]}, "dataset", r"\['ptb'\]"),
    ({"techniques": [["tying"]]}, "techniques", r"\['tying'\]"),
    ({"split": "train"}, "split", "'train'"),
    ({"command": ""}, "command", "non-empty one-line string"),
    ({"std": 1.0}, "std", "needs split 'cv'"),
    ({"published": -3.0}, "published", "number >= 1"),
    ({"ablation_of": "tying"}, "ablation_of", "cannot be in 'techniques'"),
    ({"ablation_of": []}, "ablation_of", "non-empty list"),
])
def test_a_bad_record_is_refused_naming_its_index_and_key(changes, key, message):
    with pytest.raises(ValueError, match=rf"record 3.*'{key}'") as info:
        results.check_records([record(split="val"), record(split="cv"), record(dataset="mr", metric="accuracy",
                                                                                value=0.8, published=0.79),
                               record(**changes)])
    assert re.search(message, str(info.value)), str(info.value)


def test_the_same_figure_twice_and_an_unmatched_ablation_are_refused():
    with pytest.raises(ValueError, match="record 1: the same figure as record 0"):
        results.check_records([record(), record(value=90.0)])
    alone = record(techniques=["variational_dropout"], ablation_of="tying")
    with pytest.raises(ValueError, match=r"record 0, key 'ablation_of'.*\['tying', 'variational_dropout'\]"):
        results.check_records([alone])
    assert results.check_records([record(), alone])
    with pytest.raises(ValueError, match="expected a JSON list"):
        results.check_records({"records": []})
    with pytest.raises(ValueError, match="record 0: expected a JSON object"):
        results.check_records([[1, 2]])


def test_load_names_the_file_and_the_fault(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("[{]", encoding="utf-8")
    with pytest.raises(ValueError, match=r"results\.json: not valid JSON \(line 1"):
        results.load(path)
    path.write_text(json.dumps([record(value=0)]), encoding="utf-8")
    with pytest.raises(ValueError, match=r"results\.json: record 0, key 'value'"):
        results.load(path)


# ----------------------------------------------------------------------------------------- tables
def test_the_summary_has_one_row_per_run_with_its_figures_and_what_they_are_compared_to():
    cv = record(dataset="mr", metric="accuracy", split="cv", value=0.7641, std=0.0137, published=0.774,
                published_source="LSTM, random embeddings", techniques=[], model="LSTM", command="rnnlab train a")
    records = [record(split="val", value=88.15, published=87.3), record(), cv]
    table = results.summary_table(records).splitlines()
    assert table[0] == "| task | techniques | parameters | rnnlab | published or baseline |"
    assert len(table) == 2 + 2  # the PTB run's validation and test figures share a row
    assert table[2] == ("| PTB word LM: 2 x 400 LSTM | variational_dropout, tying | 6,000,000 | "
                        "validation perplexity 88.15; test perplexity 84.2 | 87.3; 85.1 (Inan et al. 2016) |")
    assert "cross-validated accuracy 76.41 ± 1.37 %" in table[3]
    assert "77.4 % (LSTM, random embeddings)" in table[3] and "| none |" in table[3]


def test_the_summary_writes_small_values_without_exponent_and_bits_beside_nats():
    small = record(dataset="adding", metric="mse", value=0.00007, techniques=[], published=...,
                   published_source=..., model="GRU 128, T = 100")
    char = record(dataset="tiny_shakespeare", metric="nats_per_char", split="val", value=1.497, params=None,
                  techniques=["dropout"], published=..., published_source="char-rnn: about 1.4-1.5", command="b")
    table = results.summary_table([small, char])
    assert "test MSE 0.00007 |" in table and "e-05" not in table
    assert "validation loss 1.497 nats/char (2.160 bits/char)" in table
    assert "| dropout |  | validation loss" in table  # no parameter count known
    assert table.rstrip().endswith("| char-rnn: about 1.4-1.5 |")


def test_the_ablation_table_puts_a_run_beside_the_same_run_without_a_technique():
    full = record()
    no_tying = record(techniques=["variational_dropout"], value=87.0, ablation_of="tying", command="c1")
    bare = record(techniques=[], value=114.3, ablation_of=["variational_dropout", "tying"], command="c2")
    other = record(dataset="copy", metric="recall", split="val", value=0.99, techniques=["chrono"],
                   model="LSTM 128, T = 100", published=...)
    lstm = record(dataset="copy", metric="recall", split="val", value=0.184, techniques=[], command="c3",
                  model="LSTM 128, T = 100", published=..., ablation_of="chrono")
    alone = record(split="val", value=88.0)  # its group has one set of techniques: not in the table
    swapped = record(techniques=["variational_dropout", "weight_drop"], value=83.5, command="c4")
    averaged = record(techniques=["tying", "ema"], value=90.0, command="c5")
    table = results.ablation_table(results.check_records([bare, full, other, no_tying, alone, lstm, swapped,
                                                          averaged])).splitlines()
    assert table[:2] == ["| task | figure | techniques | rnnlab | difference |", "|---|---|---|---:|---|"]
    assert table[2:] == [
        "| PTB word LM: 2 x 400 LSTM | test perplexity | variational_dropout, tying | 84.2 |  |",
        "|  |  | variational_dropout, weight_drop | 83.5 | -0.7 without tying, with weight_drop |",
        "|  |  | tying, ema | 90 | +5.8 without variational_dropout, with ema |",
        "|  |  | variational_dropout | 87 | +2.8 without tying |",
        "|  |  | none | 114.3 | +30.1 without variational_dropout, tying |",
        "| copy memory: LSTM 128, T = 100 | validation recall | chrono | 99 % |  |",
        "|  |  | none | 18.4 % | -80.6 points without chrono |",
    ]


def test_the_ablation_table_says_so_when_there_is_none():
    assert results.ablation_table([record()]).startswith("No ablation yet")


def test_rewrite_replaces_only_the_marked_blocks_and_is_idempotent():
    records = [record()]
    page = results.rewrite(PAGE_TEXT, records)
    assert page.startswith("# Results\n\nprose before\n\n<!-- results-table:begin -->\n| task |")
    assert "old" not in page and "between\n\n" in page and page.endswith("-->\n\nprose after\n")
    assert results.summary_table(records) in page and results.ablation_table(records) in page
    assert results.rewrite(page, records) == page


@pytest.mark.parametrize("broken", [
    PAGE_TEXT.replace("<!-- ablation-table:end -->", ""),
    PAGE_TEXT.replace("<!-- results-table:begin -->\nold\n<!-- results-table:end -->",
                      "<!-- results-table:end -->\nold\n<!-- results-table:begin -->"),
    PAGE_TEXT + "<!-- results-table:begin -->\n",
])
def test_rewrite_refuses_a_page_without_its_markers(broken):
    with pytest.raises(ValueError, match="the page needs one <!-- (results|ablation)-table:begin -->"):
        results.rewrite(broken, [record()])


# ----------------------------------------------------------------------------------------- command
def test_the_command_writes_checks_and_reports_errors(tmp_path, capsys):
    records, page = tmp_path / "results.json", tmp_path / "results.md"
    records.write_text(json.dumps([record()]), encoding="utf-8")
    page.write_text(PAGE_TEXT, encoding="utf-8")
    argv = ["--records", str(records)]
    assert results.main([*argv, "--check", str(page)]) == 1
    assert "tables differ from" in capsys.readouterr().err
    assert results.main([*argv, "--write", str(page)]) == 0
    assert "rewritten" in capsys.readouterr().out
    assert page.read_text(encoding="utf-8") == results.rewrite(PAGE_TEXT, [record()])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json", "results.md"]  # no temporary left
    assert results.main([*argv, "--check", str(page)]) == 0
    assert results.main([*argv, "--write", str(page)]) == 0
    assert "already up to date" in capsys.readouterr().out
    assert results.main(argv) == 0
    assert capsys.readouterr().out.startswith("| task | techniques |")
    bad = copy.deepcopy(record())
    bad["techniques"] = ["magic"]
    records.write_text(json.dumps([bad]), encoding="utf-8")
    assert results.main([*argv, "--write", str(page)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "record 0, key 'techniques'" in err and "'magic'" in err
    assert results.main(["--records", str(tmp_path / "missing.json")]) == 2
    assert "missing.json" in capsys.readouterr().err


def test_the_example_of_the_module_docstring_is_a_valid_run_and_its_ablation():
    example = json.loads("[" + results.__doc__.split("made up)::")[1].strip() + "]")
    table = results.ablation_table(results.check_records(example)).splitlines()
    assert len(table) == 4 and table[3].endswith("| +3 without tying |")
