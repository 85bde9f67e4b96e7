"""The benchmark suite's machinery runs end to end on a tiny configuration (no timing is asserted)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

run = pytest.importorskip("benchmarks.run")


def test_tiny_suite_writes_wellformed_json_and_markdown(tmp_path):
    assert run.main(["--tiny", "--rounds", "2", "--cells", "lstm", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "results.json").read_text())
    markdown = (tmp_path / "results.md").read_text()

    libs = set(result["per_round"])
    assert {"rnnlab", "gemm"} <= libs
    names = [case["name"] for case in result["cases"]]
    assert names == ["lstm/train/tiny-T5-B3-H8", "lstm/forward/tiny-T5-B3-H8", "lstm/generate/B1-H8"]
    for lib in libs:
        for name in names:
            runs = result["per_round"][lib][name]
            assert len(runs) == 2 and all(math.isfinite(t) and t > 0 for t in runs), (lib, name, runs)
    rows = result["summary"]["timings"]
    if "torch" in libs:
        assert "lstm/generate/B1-H8#layer" in result["per_round"]["torch"]
        assert all(row["rnnlab_over_torch"]["median"] > 0 for row in rows)
        assert result["meta"]["libraries"]["torch"]["torch_threads"] >= 1
    for row in result["summary"]["memory"]:
        assert row["rnnlab"]["peak"] > 0 and row["rnnlab"]["rss_before"] > 0
    assert [row["case"] for row in result["summary"]["memory"]] == ["lstm/train/tiny-T5-B3-H8"]
    machine = result["meta"]["machine"]
    assert machine["cpu"] and machine["logical_cpus"] >= 1
    assert result["meta"]["libraries"]["rnnlab"]["blas"]

    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    # header + one row per timed case (+1 for the nn.LSTM generation comparison when torch runs) + memory
    expected_rows = 1 + len(names) + ("torch" in libs) + 1 + 1
    assert len(table) == expected_rows, markdown
    assert "Machine:" in markdown


def test_bad_arguments_are_refused(capsys):
    with pytest.raises(SystemExit):
        run.main(["--rounds", "0", "--tiny"])
    assert "rounds and reps must be >= 1" in capsys.readouterr().err
