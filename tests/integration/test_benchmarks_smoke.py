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


def test_e2e_tiny_writes_the_tables(tmp_path, data_dir):
    """``python -m benchmarks.e2e --tiny`` on three examples (the stateful language model, the masked BiLSTM,
    the regression on values; the character model would only repeat the language model's path): every
    library and every measurement is there, both whole runs trained the same steps, the tables have their rows."""
    pytest.importorskip("torch")
    e2e = pytest.importorskip("benchmarks.e2e.__main__")
    names = ["ptb_small", "sentiment_mr", "sunspots"]
    assert e2e.main(["--tiny", "--examples", *names, "--data-dir", str(data_dir), "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "results.json").read_text())
    markdown = (tmp_path / "results.md").read_text()

    assert [spec["name"] for spec in result["examples"]] == names
    per_round = result["per_round"]
    assert set(per_round) == {"rnnlab", "torch", "gemm"}
    for name in names:
        for lib, measured in (("rnnlab", ("train", "eval", "whole")), ("torch", ("train", "eval", "whole")),
                              ("gemm", ("train",))):
            for what in measured:
                runs = per_round[lib][name][what]
                assert len(runs) == 1 and all(math.isfinite(t) and t > 0 for t in runs), (lib, name, what, runs)
        for lib in ("rnnlab", "torch"):
            assert [run["steps"] for run in result["whole_runs"][lib][name]] == [3], (lib, name)
    assert result["meta"]["libraries"]["rnnlab"]["same_batches"] == dict.fromkeys(names, True)
    assert result["meta"]["libraries"]["torch"]["torch_threads"] >= 1
    for row in result["summary"]:
        for key in ("train_rnnlab_over_torch", "train_rnnlab_over_floor", "eval_rnnlab_over_torch",
                    "whole_rnnlab_over_torch"):
            assert row[key]["median"] > 0, (row["example"], key)
    assert "<OUT>" in result["meta"]["command"] and "<DATA>" in result["meta"]["command"]

    # three tables (training step, evaluation, whole run): a header and one row per example each
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert len(table) == 3 * (1 + len(names)), markdown
    for label in ("PTB small", "MR BiLSTM sentiment", "sunspots forecasting"):
        assert sum(line.startswith(f"| {label} |") for line in table) == 3, label
    assert "Machine:" in markdown


def test_the_onnx_benchmark_writes_both_libraries_times(tmp_path):
    pytest.importorskip("onnxruntime")
    onnx_inference = pytest.importorskip("benchmarks.onnx_inference")
    assert onnx_inference.main(["--preset", "tiny", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "results.json").read_text())
    assert [row["case"] for row in result["summary"]] == ["batch", "step"]
    for lib in ("rnnlab", "onnxruntime"):
        for case in ("batch", "step"):
            (t,) = result["per_round"][lib][case]
            assert math.isfinite(t) and t > 0, (lib, case, t)
    assert result["meta"]["machine"]["logical_cpus"] >= 1 and "| step |" in (tmp_path / "results.md").read_text()
