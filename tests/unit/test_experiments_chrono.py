"""The chrono cells of the learning-curve experiments (``lstm-chrono``, ``gru-chrono``: T_max = the task's T) and
the ``--cells`` and ``--sequences`` options of ``rnnlab experiment adding|copy``."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest

from rnnlab import cli
from rnnlab.cli.experiment import configure_cli, run_cli
from rnnlab.lab.config import ConfigError
from rnnlab.lab.experiments import CELLS, CHRONO_CELLS, EXPERIMENTS, command_line, make_recurrent


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnnlab experiment")
    configure_cli(parser)
    return parser


# ---------------------------------------------------------------------------- the cells' biases
@pytest.mark.parametrize("T", [3, 5, 100, 500])
def test_lstm_chrono_forget_bias_is_in_0_log_T_minus_1_and_the_input_bias_its_negative(T):
    H = 64
    layer = make_recurrent("lstm-chrono", H, input_size=3, seed=T, T_max=T)
    b = layer.params["b"]  # gates i, f, g, o
    b_i, b_f, b_g, b_o = b[:H], b[H:2 * H], b[2 * H:3 * H], b[3 * H:]
    assert np.all(b_f >= 0) and np.all(b_f <= math.log(T - 1) + 1e-6)
    np.testing.assert_array_equal(b_i, -b_f)
    assert not b_g.any() and not b_o.any()
    assert len(np.unique(b_f)) == H  # drawn per unit, not a constant
    assert layer.get_config()["bias_initializer"] == f"chrono:{T}"


def test_lstm_chrono_biases_spread_as_log_of_a_uniform():
    T, H = 100, 4000
    layer = make_recurrent("lstm-chrono", H, input_size=1, seed=0, T_max=T, kernel_initializer="zeros",
                           recurrent_initializer="zeros")  # zeros: no orthogonal 4000 x 16000 matrix to draw
    b_f = layer.params["b"][H:2 * H].astype(np.float64)
    u = np.exp(b_f)  # U(1, T - 1): mean T / 2, quartiles at 1 + (T - 2) / 4 and 1 + 3 (T - 2) / 4
    assert u.mean() == pytest.approx(T / 2, rel=0.05)
    np.testing.assert_allclose(np.quantile(u, [0.25, 0.75]), [1 + (T - 2) / 4, 1 + 3 * (T - 2) / 4], rtol=0.08)


def test_gru_chrono_sets_the_update_gate_only():
    T, H = 50, 32
    layer = make_recurrent("gru-chrono", H, input_size=3, seed=1, T_max=T)
    b = layer.params["b"]  # gates r, z, n
    b_z = b[H:2 * H]
    assert np.all(b_z >= 0) and np.all(b_z <= math.log(T - 1) + 1e-6) and len(np.unique(b_z)) == H
    assert not b[:H].any() and not b[2 * H:].any()


def test_the_chrono_cells_are_in_the_cell_list_with_their_labels():
    assert set(CHRONO_CELLS) == {"lstm-chrono", "gru-chrono"} <= set(CELLS)
    assert CELLS["lstm-chrono"][2] == "LSTM (chrono)" and CELLS["gru-chrono"][2] == "GRU (chrono)"
    assert "lstm-chrono" in EXPERIMENTS["copy"].settings["full"].cells
    assert "lstm-chrono" in EXPERIMENTS["adding"].settings["full"].cells


@pytest.mark.parametrize("T_max", [None, 2, 1.5, True, "100"])
def test_a_chrono_cell_needs_a_T_max_above_2(T_max):
    with pytest.raises(ValueError, match=r"T_max of the chrono cell 'lstm-chrono' must be a number > 2"):
        make_recurrent("lstm-chrono", 4, input_size=2, seed=0, T_max=T_max)


# ---------------------------------------------------------------------------- a run with chosen cells
@pytest.fixture(scope="module")
def chrono_copy(tmp_path_factory):
    out = tmp_path_factory.mktemp("copy")
    with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
        results = EXPERIMENTS["copy"].run(out, mode="fast", seed=0, timesteps=[4], cells=["lstm-chrono", "lstm"],
                                          sequences=100)
    return out, results


def test_results_json_records_the_cells_the_budget_and_T_max(chrono_copy):
    out, results = chrono_copy
    saved = json.loads((out / "results.json").read_text("utf-8"))
    assert saved["settings"]["cells"] == ["lstm-chrono", "lstm"]
    assert saved["settings"]["max_sequences"] == 100
    assert [(r["cell"], r["label"], r["T"], r["chrono_T_max"]) for r in saved["runs"]] == [
        ("lstm-chrono", "LSTM (chrono)", 4, 4), ("lstm", "LSTM", 4, None)]
    assert all(r["sequences"][-1] == 100 for r in saved["runs"])
    assert saved["command"] == f"rnnlab experiment copy --cells lstm-chrono lstm --timesteps 4 --sequences 100 " \
                               f"--out {out}"


def test_copy_findings_say_per_cell_and_T_whether_solved_and_the_best_recall(chrono_copy):
    _, results = chrono_copy
    findings = " ".join(results["findings"])
    for r in results["runs"]:
        assert f"T = {r['T']}, {r['label']}: " in findings
        assert f"best recall accuracy {100 * r['best_recall_accuracy']:.1f} %" in findings
        solved = [n for n, a in zip(r["sequences"], r["recall_accuracy"]) if a >= 0.99]
        assert r["solved_at"] == (solved[0] if solved else None)
    assert results["findings"][0].startswith("T = 4: ")


def test_the_chrono_cell_changes_the_untrained_model(chrono_copy):
    """Both runs of a T draw the same weights from the same seeds; only the chrono biases set them apart."""
    _, results = chrono_copy
    chrono, plain = results["runs"]
    assert chrono["val_loss"][0] != plain["val_loss"][0]  # same seeds, different biases


def test_command_line_with_cells_and_sequences():
    assert command_line("copy", "full", 0, "experiments/copy", [100], ["lstm-chrono"], 1_000_000) == (
        "rnnlab experiment copy --full --cells lstm-chrono --timesteps 100 --sequences 1000000")


# ---------------------------------------------------------------------------- the command line's checks
@pytest.mark.parametrize("argv, message", [
    (["copy", "--cells", "lstm", "nope"], r"--cells: unknown cell 'nope' in \['lstm', 'nope'\]; valid choices: "
                                          r"rnn_tanh, rnn_sigmoid, rnn_relu, irnn, lstm, gru, lstm-chrono, gru-chrono"),
    (["adding", "--cells", "gru", "gru"], r"--cells: cells must be distinct, got 'gru' more than once"),
    (["vanishing", "--cells", "lstm"], r"--cells: cells can be chosen for the learning-curve experiments "
                                       r"\(adding, copy\), not for 'vanishing'"),
    (["copy", "--sequences", "0"], r"--sequences: sequences must be a positive multiple of the fast mode's batch "
                                   r"size 20 \(the runs train whole batches\), got 0"),
    (["copy", "--full", "--sequences", "1020"], r"--sequences: sequences must be a positive multiple of the full "
                                                r"mode's batch size 50 .*got 1020"),
    (["exploding", "--sequences", "100"], r"--sequences: sequences can be chosen for the learning-curve "
                                          r"experiments \(adding, copy\), not for 'exploding'"),
    (["copy", "--timesteps", "2"], r"the chrono cells \(lstm-chrono\) take T_max = T, which must be > 2; "
                                   r"got timesteps \[2\]"),
    (["adding", "--cells", "gru-chrono", "--timesteps", "5", "1"], r"the chrono cells \(gru-chrono\) take T_max"),
])
def test_cli_bad_cells_and_sequences_are_config_errors(tmp_path, argv, message):
    with pytest.raises(ConfigError, match=message):
        run_cli(_parser().parse_args([*argv, "--out", str(tmp_path / "x")]))
    assert not (tmp_path / "x").exists()  # refused before anything is written


def test_cli_bad_cells_exit_2_with_one_line(tmp_path, capsys):
    assert cli.main(["experiment", "copy", "--cells", "lstm_chrono", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown cell 'lstm_chrono'" in err[0] and "lstm-chrono" in err[0]


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"cells": "lstm"}, TypeError, "cells must be a non-empty list of cell names, got 'lstm'"),
    ({"cells": []}, TypeError, r"cells must be a non-empty list of cell names, got \[\]"),
    ({"sequences": 100.0}, TypeError, "sequences must be a positive int, got float 100.0"),
    ({"sequences": -20}, ValueError, "sequences must be a positive multiple"),
])
def test_run_rejects_bad_cells_and_sequences(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        EXPERIMENTS["adding"].run(tmp_path / "x", **kwargs)


# ---------------------------------------------------------------------------- --lr and --batch-size
def test_lr_and_batch_size_replace_the_modes_and_are_in_the_command(tmp_path):
    out = tmp_path / "copy"
    results = EXPERIMENTS["copy"].run(out, mode="fast", timesteps=[4], cells=["lstm"], sequences=40, lr=0.02,
                                      batch_size=8)
    saved = json.loads((out / "results.json").read_text("utf-8"))
    assert saved["settings"]["lr"] == 0.02 and saved["settings"]["batch_size"] == 8
    assert saved["runs"][0]["sequences"][-1] == 40
    assert saved["command"] == (f"rnnlab experiment copy --cells lstm --timesteps 4 --sequences 40 --lr 0.02 "
                                f"--batch-size 8 --out {out}")
    assert results["command"] == saved["command"]


def test_lr_changes_the_training_and_nothing_else(tmp_path):
    """The same seeds with another learning rate: the same untrained model, different trained ones."""
    runs = [EXPERIMENTS["copy"].run(tmp_path / str(lr), mode="fast", timesteps=[4], cells=["lstm"], sequences=40,
                                    lr=lr)["runs"][0] for lr in (0.01, 0.03)]
    assert runs[0]["val_loss"][0] == runs[1]["val_loss"][0]
    assert runs[0]["val_loss"][-1] != runs[1]["val_loss"][-1]


def test_command_line_with_lr_and_batch_size():
    assert command_line("copy", "full", 0, "experiments/copy", [100], ["lstm-chrono"], 1_000_000, 0.003, 25) == (
        "rnnlab experiment copy --full --cells lstm-chrono --timesteps 100 --sequences 1000000 --lr 0.003 "
        "--batch-size 25")


@pytest.mark.parametrize("argv, message", [
    (["copy", "--lr", "0"], r"--lr: lr must be a finite number > 0, got 0.0"),
    (["copy", "--lr", "nan"], r"--lr: lr must be a finite number > 0, got nan"),
    (["copy", "--batch-size", "0"], r"--batch-size: batch_size must be a positive int, got 0"),
    (["vanishing", "--lr", "0.1"], r"--lr: lr can be chosen for the learning-curve experiments \(adding, copy\), "
                                   r"not for 'vanishing'"),
    (["exploding", "--batch-size", "4"], r"--batch-size: batch_size can be chosen for the learning-curve"),
    (["copy", "--batch-size", "30", "--sequences", "100"], r"--sequences: sequences must be a positive multiple "
                                                          r"of the batch size 30 .*got 100"),
    (["copy", "--full", "--batch-size", "30"], r"the full mode's budget of 1000000 sequences is not a multiple of "
                                               r"batch_size 30; choose sequences too"),
])
def test_cli_bad_lr_and_batch_size_are_config_errors(tmp_path, argv, message):
    with pytest.raises(ConfigError, match=message):
        run_cli(_parser().parse_args([*argv, "--out", str(tmp_path / "x")]))
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"lr": "0.1"}, TypeError, "lr must be a number, got str '0.1'"),
    ({"lr": -1.0}, ValueError, "lr must be a finite number > 0, got -1.0"),
    ({"batch_size": 2.0}, TypeError, "batch_size must be a positive int, got float 2.0"),
    ({"batch_size": True}, TypeError, "batch_size must be a positive int, got bool True"),
])
def test_run_rejects_bad_lr_and_batch_size(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        EXPERIMENTS["adding"].run(tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()
