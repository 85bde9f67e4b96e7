"""rnnlab's published figures: the records of ``docs/results.json``, checked, and the tables of
``docs/results.md`` written from them.

``docs/results.json`` is the one source of every figure rnnlab reached that ``docs/results.md``
reports: a JSON list of records, one per figure (one metric of one run on one split). The summary
table and the ablation table of ``docs/results.md`` sit between marker comments and are rewritten
from the records by ``python -m rnnlab.lab.results --write docs/results.md``; a test checks that the
page and the records agree, and the documentation site writes the same tables when it builds.

Record
------
Required keys:

``dataset`` : str
    A key of :data:`DATASETS` (``"ptb"``, ``"tiny_shakespeare"``, ``"mr"``, ``"adding"``, ``"copy"``,
    ``"sunspots"``).
``metric`` : str
    A key of :data:`METRICS` (``"perplexity"``, ``"nats_per_char"``, ``"accuracy"``, ``"recall"``,
    ``"mse"``, ``"rmse"``, ``"mae"``, ``"nats_per_step"``).
``split`` : str
    ``"val"``, ``"test"`` or ``"cv"`` (the mean over the test folds of a cross-validation).
``value`` : number
    Finite; accuracy and recall as fractions in [0, 1], perplexity >= 1, the others >= 0.
``techniques`` : list of str
    The regularisation and initialisation techniques the run used, each a key of :data:`TECHNIQUES`
    (``[]`` for none), without repeats.
``params`` : int or null
    The model's number of parameters (null only where it cannot be known).
``command`` : str
    The command line that produced the figure, as ``docs/results.md`` shows it.
``date`` : str
    ``YYYY-MM-DD``, the day the figure was measured (recorded).

Optional keys: ``model`` (str, short: ``"2 x 200 LSTM"``; it tells runs of one data set apart),
``published`` (number, the published figure or baseline the value is compared to, in the value's
units) and ``published_source`` (str, where it comes from; alone, a comparison without one number),
``std`` (number, the standard deviation over the folds; ``split = "cv"`` only), ``ablation_of``
(str or list of str: the technique(s) this run leaves out of another record that is otherwise the
same: same dataset, metric, split and model, its techniques these plus those), ``notes`` (str).

Tables
------
The summary (:func:`summary_table`) has one row per run: the records with the same dataset, model
and command, in the order of their first record, each cell listing the run's figures in record order.
The ablation table (:func:`ablation_table`) groups the records by dataset, metric, split and model and
shows every group holding more than one set of techniques, its runs side by side (most techniques
first) with each one's difference to the first.

Adding a figure is adding a record to ``docs/results.json`` and running the ``--write`` command (a new
data set, metric or technique is one entry in :data:`DATASETS`, :data:`METRICS` or :data:`TECHNIQUES`).
A run and its ablation, for example (the figures made up)::

    {"dataset": "ptb", "metric": "perplexity", "split": "test", "value": 84.0,
     "techniques": ["locked_dropout", "variational_dropout", "tying"], "params": 6000000,
     "command": "rnnlab train examples/ptb_regularised.toml --run-dir runs/ptb_reg", "date": "2026-12-08",
     "model": "2 x 400 LSTM", "published": 85.1, "published_source": "Inan et al. 2016"},
    {"dataset": "ptb", "metric": "perplexity", "split": "test", "value": 87.0,
     "techniques": ["locked_dropout", "variational_dropout"], "params": 10000000,
     "command": "rnnlab train examples/ptb_regularised.toml --set model.tie_weights=false --run-dir runs/ptb_untied",
     "date": "2026-12-08", "model": "2 x 400 LSTM", "ablation_of": "tying"}
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rnnlab._files import write_atomic

#: data set name -> its name in the tables
DATASETS = {
    "mr": "MR sentiment",
    "tiny_shakespeare": "Tiny Shakespeare char LM",
    "ptb": "PTB word LM",
    "adding": "adding problem",
    "copy": "copy memory",
    "sunspots": "monthly sunspots, one month ahead",
}

#: metric name -> (its name in the tables, its unit, kind): a "fraction" is in [0, 1] and shown in %,
#: "perplexity" is >= 1, "nonnegative" is >= 0
METRICS = {
    "perplexity": ("perplexity", "", "perplexity"),
    "nats_per_char": ("loss", "nats/char", "nonnegative"),
    "nats_per_step": ("loss", "nats/step", "nonnegative"),
    "accuracy": ("accuracy", "%", "fraction"),
    "recall": ("recall", "%", "fraction"),
    "mse": ("MSE", "", "nonnegative"),
    "rmse": ("RMSE", "", "nonnegative"),
    "mae": ("MAE", "", "nonnegative"),
}

#: split name -> its words in the tables
SPLITS = {"val": "validation", "test": "test", "cv": "cross-validated"}

#: technique name -> what it means (docs/regularisation.md describes each)
TECHNIQUES = {
    "dropout": "ordinary dropout between layers or before the output layer, a fresh mask at every step",
    "locked_dropout": "dropout between layers with one mask per sequence (locked)",
    "variational_dropout": "Gal & Ghahramani's dropout inside the recurrent layers, one mask per sequence "
                           "(`input_dropout` and/or `recurrent_dropout`)",
    "embedding_dropout": "whole words' embedding vectors dropped",
    "weight_drop": "DropConnect on each recurrent W, a mask per batch (AWD-LSTM)",
    "tying": "the input embedding and the output layer share one matrix",
    "chrono": "chrono initialisation of the gate biases (Tallec & Ollivier 2018)",
    "zoneout": "zoneout on the recurrent state (Krueger et al. 2017)",
    "layer_norm": "layer-normalised recurrent cell (Ba et al. 2016)",
    "max_pool": "max-pooling over time of a classifier's recurrent outputs",
    "ema": "an exponential moving average of the weights, validated and kept (the optimizers' `use_ema`)",
}

REQUIRED = ("dataset", "metric", "split", "value", "techniques", "params", "command", "date")
OPTIONAL = ("model", "published", "published_source", "std", "ablation_of", "notes")

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


# ----------------------------------------------------------------------------------------- checks
def _number(where: str, key: str, value, kind: str) -> float:
    """``value`` as a finite float of ``kind``'s range, or a ValueError naming ``where`` and ``key``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}, key {key!r}: expected a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{where}, key {key!r}: expected a finite number, got {value!r}")
    low, high = {"fraction": (0.0, 1.0), "perplexity": (1.0, math.inf)}.get(kind, (0.0, math.inf))
    if not low <= value <= high:
        expected = "a fraction in [0, 1]" if kind == "fraction" else f"a number >= {low:g}"
        raise ValueError(f"{where}, key {key!r}: expected {expected}, got {value!r}")
    return float(value)


def _text(where: str, key: str, value) -> str:
    if not isinstance(value, str) or not value.strip() or "\n" in value:
        raise ValueError(f"{where}, key {key!r}: expected a non-empty one-line string, got {value!r}")
    return value


def _choice(where: str, key: str, value, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{where}, key {key!r}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def _techniques(where: str, key: str, value) -> list[str]:
    names = [value] if key == "ablation_of" and isinstance(value, str) else value
    if not isinstance(names, list) or (key == "ablation_of" and not names):
        expected = "a technique or a non-empty list of them" if key == "ablation_of" else "a list"
        raise ValueError(f"{where}, key {key!r}: expected {expected}, got {value!r}")
    for name in names:
        _choice(where, key, name, TECHNIQUES)
    if len(set(names)) != len(names):
        raise ValueError(f"{where}, key {key!r}: a technique is named twice in {value!r}")
    return names


def check_record(record, index: int = 0) -> dict:
    """Check one record (the keys, their types and ranges; see the module's docstring) and return it.

    Raises
    ------
    ValueError
        Naming the record's ``index`` and the key at fault, what it holds and what was expected.
    """
    where = f"record {index}"
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object, got {record!r}")
    missing = [key for key in REQUIRED if key not in record]
    if missing:
        raise ValueError(f"{where}: missing key {missing[0]!r}; a record needs {', '.join(REQUIRED)}")
    for key in record:
        if key not in REQUIRED + OPTIONAL:
            raise ValueError(f"{where}: unknown key {key!r}; the keys are {', '.join(REQUIRED + OPTIONAL)}")
    _choice(where, "dataset", record["dataset"], DATASETS)
    kind = METRICS[_choice(where, "metric", record["metric"], METRICS)][2]
    split = _choice(where, "split", record["split"], SPLITS)
    _number(where, "value", record["value"], kind)
    techniques = _techniques(where, "techniques", record["techniques"])
    params = record["params"]
    if params is not None and (isinstance(params, bool) or not isinstance(params, int) or params < 1):
        raise ValueError(f"{where}, key 'params': expected a positive integer or null, got {params!r}")
    _text(where, "command", record["command"])
    date = record["date"]
    try:
        if not isinstance(date, str) or not _DATE.fullmatch(date):
            raise ValueError
        _dt.date.fromisoformat(date)
    except ValueError:
        raise ValueError(f"{where}, key 'date': expected a date YYYY-MM-DD, got {date!r}") from None
    for key in ("model", "published_source", "notes"):
        if key in record:
            _text(where, key, record[key])
    if "published" in record:
        _number(where, "published", record["published"], kind)
    if "std" in record:
        if split != "cv":
            raise ValueError(f"{where}, key 'std': a standard deviation over folds needs split 'cv', got {split!r}")
        _number(where, "std", record["std"], "fraction" if kind == "fraction" else "nonnegative")
    if "ablation_of" in record:
        left_out = _techniques(where, "ablation_of", record["ablation_of"])
        both = sorted(set(left_out) & set(techniques))
        if both:
            raise ValueError(f"{where}, key 'ablation_of': {both[0]!r} is left out, so it cannot be in 'techniques'")
    return record


def _run_key(record: dict) -> tuple:
    return record["dataset"], record.get("model"), record["command"]


def _group_key(record: dict) -> tuple:
    return record["dataset"], record["metric"], record["split"], record.get("model")


def check_records(records) -> list[dict]:
    """Check a list of records: each one (:func:`check_record`), no figure twice, and every
    ``ablation_of`` matched by the record it is the ablation of. Returns ``records``."""
    if not isinstance(records, list):
        raise ValueError(f"results: expected a JSON list of records, got {type(records).__name__}")
    seen = {}
    for i, record in enumerate(records):
        check_record(record, i)
        key = (*_group_key(record), frozenset(record["techniques"]), record["command"])
        if key in seen:
            raise ValueError(f"record {i}: the same figure as record {seen[key]} (dataset, metric, split, model, "
                             f"techniques and command)")
        seen[key] = i
    for i, record in enumerate(records):
        if "ablation_of" in record:
            left_out = _techniques(f"record {i}", "ablation_of", record["ablation_of"])
            wanted = set(record["techniques"]) | set(left_out)
            if not any(_group_key(other) == _group_key(record) and set(other["techniques"]) == wanted
                       for other in records):
                raise ValueError(f"record {i}, key 'ablation_of': no record of the same dataset, metric, split and "
                                 f"model has the techniques {sorted(wanted)}")
    return records


def load(path) -> list[dict]:
    """The checked records of the JSON file ``path`` (:func:`check_records`)."""
    path = Path(path)
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    try:
        return check_records(records)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


# ----------------------------------------------------------------------------------------- tables
def _plain(x: float) -> str:
    """``x`` without exponent or trailing zeros: 0.00007, 119.4, 76.41."""
    return np.format_float_positional(x, trim="-")


def _number_text(metric: str, value: float, std: float | None = None) -> str:
    """A value in its metric's unit: ``76.41 ± 1.37 %``, ``1.497 nats/char (2.160 bits/char)``, ``119.4``."""
    _, unit, kind = METRICS[metric]
    scale = 100 if kind == "fraction" else 1
    shown = _plain(round(value * scale, 10)) + (f" ± {_plain(round(std * scale, 10))}" if std is not None else "")
    if metric == "nats_per_char":
        decimals = len(_plain(value).partition(".")[2])
        return f"{shown} nats/char ({value / math.log(2):.{decimals}f} bits/char)"
    return f"{shown} {unit}" if unit else shown


def _figure_name(record: dict) -> str:
    """``validation perplexity``, ``test MSE``, ``cross-validated accuracy``."""
    return f"{SPLITS[record['split']]} {METRICS[record['metric']][0]}"


def _task(record: dict) -> str:
    return DATASETS[record["dataset"]] + (f": {record['model']}" if record.get("model") else "")


def _techniques_cell(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "none"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def summary_table(records: list[dict]) -> str:
    """The summary table: one row per run (see the module's docstring), as Markdown."""
    runs: dict[tuple, list[dict]] = {}
    for record in records:
        runs.setdefault(_run_key(record), []).append(record)
    lines = ["| task | techniques | parameters | rnnlab | published or baseline |", "|---|---|---:|---|---|"]
    for figures in runs.values():
        params = sorted({r["params"] for r in figures if r["params"] is not None})
        ours = "; ".join(f"{_figure_name(r)} {_number_text(r['metric'], r['value'], r.get('std'))}" for r in figures)
        theirs = "; ".join(_number_text(r["metric"], r["published"]) for r in figures if "published" in r)
        sources = "; ".join(dict.fromkeys(r["published_source"] for r in figures if "published_source" in r))
        if sources:
            theirs = f"{theirs} ({sources})" if theirs else sources
        techniques = list(dict.fromkeys(t for r in figures for t in r["techniques"]))
        row = [_task(figures[0]), _techniques_cell(techniques), " / ".join(f"{p:,}" for p in params), ours, theirs]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines)


def ablation_table(records: list[dict]) -> str:
    """The ablation table: each group of records (dataset, metric, split, model) with more than one set of
    techniques, its runs side by side, most techniques first, and each one's difference to the first, with the
    techniques it lacks and those it has that the first lacks."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        groups.setdefault(_group_key(record), []).append(record)
    groups = {k: g for k, g in groups.items() if len({frozenset(r["techniques"]) for r in g}) > 1}
    if not groups:
        return ("No ablation yet: no run has been recorded both with and without a technique "
                "(records with the same dataset, metric, split and model).")
    lines = ["| task | figure | techniques | rnnlab | difference |", "|---|---|---|---:|---|"]
    for group in groups.values():
        group = sorted(group, key=lambda r: -len(r["techniques"]))  # stable: the file's order among equals
        top = group[0]
        fraction = METRICS[top["metric"]][2] == "fraction"
        for n, record in enumerate(group):
            difference = ""
            if n:
                delta = _plain(round((record["value"] - top["value"]) * (100 if fraction else 1), 10))
                missing = [t for t in top["techniques"] if t not in record["techniques"]]
                added = [t for t in record["techniques"] if t not in top["techniques"]]
                difference = (delta if delta.startswith("-") else "+" + delta) + (" points" if fraction else "")
                difference += f" without {', '.join(missing)}" if missing else ""
                difference += f"{',' if missing else ''} with {', '.join(added)}" if added else ""
            row = [_task(record) if n == 0 else "", _figure_name(record) if n == 0 else "",
                   _techniques_cell(record["techniques"]),
                   _number_text(record["metric"], record["value"], record.get("std")), difference]
            lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines)


#: the name in the marker comments around each generated block of the page -> what writes the block
BLOCKS = {"results-table": summary_table, "ablation-table": ablation_table}


def rewrite(page: str, records: list[dict]) -> str:
    """``page`` (Markdown) with the text between each pair of markers ``<!-- NAME:begin -->`` and
    ``<!-- NAME:end -->`` of :data:`BLOCKS` replaced by its table written from ``records``."""
    for name, render in BLOCKS.items():
        begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
        start, stop = page.find(begin), page.find(end)
        if start < 0 or stop < start or page.count(begin) != 1 or page.count(end) != 1:
            raise ValueError(f"the page needs one {begin} and, after it, one {end}")
        table = render(records)
        page = page[:start + len(begin)] + "\n" + table + "\n" + page[stop:]
    return page


def write(page_path, records: list[dict]) -> bool:
    """Rewrite the tables of the Markdown file ``page_path`` (:func:`rewrite`), atomically; whether it changed."""
    page_path = Path(page_path)
    before = page_path.read_text(encoding="utf-8")
    after = rewrite(before, records)
    if after != before:
        write_atomic(page_path, after.encode("utf-8"))
    return after != before


# ----------------------------------------------------------------------------------------- command
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rnnlab.lab.results [--records JSON] [--write PAGE | --check PAGE]``: check the records and
    print the tables, or write them into PAGE, or check that PAGE holds them (exit 1 if not). Exit 2 on an
    error in the records or the page, with one line on stderr."""
    parser = argparse.ArgumentParser(prog="python -m rnnlab.lab.results",
                                     description="Check rnnlab's result records and write the tables of "
                                                 "docs/results.md from them.")
    parser.add_argument("--records", default="docs/results.json", help="the records (default: docs/results.json)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", metavar="PAGE", help="rewrite the tables between PAGE's markers")
    action.add_argument("--check", metavar="PAGE", help="exit 1 if PAGE's tables differ from the records'")
    args = parser.parse_args(argv)
    try:
        records = load(args.records)
        if args.write:
            print(f"{args.write}: {'rewritten' if write(args.write, records) else 'already up to date'}")
        elif args.check:
            page = Path(args.check).read_text(encoding="utf-8")
            if rewrite(page, records) != page:
                print(f"{args.check}: its tables differ from {args.records}; run python -m rnnlab.lab.results "
                      f"--write {args.check}", file=sys.stderr)
                return 1
        else:
            print(summary_table(records) + "\n\n" + ablation_table(records))
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
