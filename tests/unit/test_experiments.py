"""rnnlab.experiments: every experiment's fast mode end to end, its numbers checked independently, and the CLI."""

from __future__ import annotations

import argparse
import base64
import html
import json
import math
import struct
import sys

import numpy as np
import pytest

from rnnlab import cli
from rnnlab.cli.experiment import configure_cli, run_cli
from rnnlab.lab.config import ConfigError
from rnnlab.lab.experiments import (
    EXPERIMENTS,
    PlotDependencyError,
    command_line,
    delayed_recall,
)
from rnnlab.nn.recurrent import LSTM, SimpleRNN

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAMES = ["vanishing", "adding", "copy", "exploding", "truncation"]


def _strict_json(text: str):
    def refuse(constant):
        raise AssertionError(f"results.json holds {constant}")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def fast_runs(tmp_path_factory):
    """Each experiment run once in fast mode (seed 0), under the same float-error rules as the tests."""
    runs = {}
    with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
        for name in NAMES:
            out = tmp_path_factory.mktemp(name)
            messages = []
            results = EXPERIMENTS[name].run(out, mode="fast", seed=0, progress=messages.append)
            runs[name] = (out, results, messages)
    return runs


# ---------------------------------------------------------------------------- files every run writes
def test_the_registry_holds_the_five_experiments():
    assert list(EXPERIMENTS) == NAMES
    for name, e in EXPERIMENTS.items():
        assert e.name == name and e.summary and e.full_estimate
        assert set(e.settings) == {"fast", "full"}


@pytest.mark.parametrize("name", NAMES)
def test_fast_run_writes_results_pngs_and_a_self_contained_report(fast_runs, name):
    out, results, messages = fast_runs[name]
    assert messages, "progress received no line"
    on_disk = _strict_json((out / "results.json").read_text("utf-8"))
    assert on_disk == json.loads(json.dumps(results))
    assert on_disk["experiment"] == name and on_disk["mode"] == "fast" and on_disk["seed"] == 0
    assert on_disk["findings"] and all(isinstance(line, str) and line for line in on_disk["findings"])
    assert on_disk["figures"]
    report = (out / "report.html").read_text("utf-8")
    assert report.startswith("<!DOCTYPE html>") and report.rstrip().endswith("</html>")
    assert html.escape(results["command"]) in report
    assert "src=\"http" not in report and "<script" not in report  # nothing fetched from elsewhere
    for line in results["findings"]:
        assert html.escape(line) in report
    for figure in results["figures"]:
        png = (out / figure["file"]).read_bytes()
        assert png[:8] == PNG_SIGNATURE
        assert png[12:16] == b"IHDR"
        width, height = struct.unpack(">II", png[16:24])
        assert width >= 300 and height >= 200
        assert len(png) > 5000
        assert f"data:image/png;base64,{base64.b64encode(png).decode('ascii')}" in report
        assert html.escape(figure["caption"]) in report
    assert not list(out.glob(".*.tmp"))  # no temporary file left behind


def test_same_seed_gives_the_same_numbers(tmp_path, fast_runs):
    again = EXPERIMENTS["exploding"].run(tmp_path, mode="fast", seed=0)
    first = fast_runs["exploding"][1]
    assert again["runs"] == first["runs"]
    other = EXPERIMENTS["exploding"].run(tmp_path / "other", mode="fast", seed=1)
    assert other["runs"]["clipped"]["loss"] != first["runs"]["clipped"]["loss"]


# ---------------------------------------------------------------------------- vanishing
def _tanh_rnn_grad_norms(x, u, U, W, b):
    """||dL/da_t|| per sequence and step for L = sum_b u_b . a_T, written out by hand (float64)."""
    B, T, _ = x.shape
    a = np.zeros((T + 1, B, W.shape[0]))  # a[0] = 0, a[t+1] = a_t
    for t in range(T):
        a[t + 1] = np.tanh(x[:, t] @ U.T + a[t] @ W.T + b)
    norms = np.zeros((B, T))
    d = u.copy()  # dL/da_T
    for t in range(T - 1, -1, -1):
        norms[:, t] = np.linalg.norm(d, axis=1)
        d = (d * (1.0 - a[t + 1] ** 2)) @ W  # dL/da_{t-1}
    return norms


def test_vanishing_numbers_equal_a_hand_written_backward_of_the_tanh_rnn(fast_runs):
    _, results, _ = fast_runs["vanishing"]
    s = results["settings"]
    B, T, D, H = s["batch"], s["timesteps"], s["input_size"], s["hidden_size"]
    per_repeat = []
    for r in range(s["repeats"]):
        rng = np.random.default_rng([0, r])  # the documented recipe: x first, then u
        x = rng.standard_normal((B, T, D))
        u = rng.standard_normal((B, H))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        layer = SimpleRNN(H, activation="tanh", input_size=D, seed=np.random.default_rng([0, r, 1]), dtype="float64")
        p = layer.params
        norms = _tanh_rnn_grad_norms(x, u, p["U"], p["W"], p["b"])[:, ::-1]  # column = lag
        per_repeat.append(norms)
        np.testing.assert_allclose(results["cells"]["rnn_tanh"]["per_repeat"][r], norms.mean(axis=0), rtol=1e-9)
    expected = np.concatenate(per_repeat).mean(axis=0)
    np.testing.assert_allclose(results["cells"]["rnn_tanh"]["mean"], expected, rtol=1e-9)
    assert expected[-1] < 1e-3 * expected[0]  # the hand-written backward itself shows the fading


def test_vanishing_lstm_numbers_equal_finite_differences(fast_runs):
    """||dL_T/dh_t|| by central differences on h_t (c_t held), run forward from (h_t, c_t)."""
    _, results, _ = fast_runs["vanishing"]
    s = results["settings"]
    B, T, D, H = s["batch"], s["timesteps"], s["input_size"], s["hidden_size"]
    r = 1
    rng = np.random.default_rng([0, r])
    x = rng.standard_normal((B, T, D))
    u = rng.standard_normal((B, H))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    layer = LSTM(H, input_size=D, seed=np.random.default_rng([0, r, 1]), dtype="float64", return_state=True)
    eps = 1e-6
    for lag in (3, 12):
        t = T - 1 - lag  # h_t is h_{T-lag} in 1-based step numbering: lag steps before the last
        _, h_t, c_t = layer(x[:, :t + 1])
        grad = np.zeros((B, H))
        for j in range(H):  # the B sequences are independent: one column of all of them at once
            plus, minus = h_t.copy(), h_t.copy()
            plus[:, j] += eps
            minus[:, j] -= eps
            L_plus = np.sum(u * layer(x[:, t + 1:], initial_state=[plus, c_t])[1], axis=1)  # (B,)
            L_minus = np.sum(u * layer(x[:, t + 1:], initial_state=[minus, c_t])[1], axis=1)
            grad[:, j] = (L_plus - L_minus) / (2 * eps)
        expected = np.linalg.norm(grad, axis=1).mean()
        assert results["cells"]["lstm"]["per_repeat"][r][lag] == pytest.approx(expected, rel=1e-5)


def test_vanishing_tanh_rnn_fades_faster_than_the_lstm(fast_runs):
    _, results, _ = fast_runs["vanishing"]
    cells = results["cells"]
    T = results["settings"]["timesteps"]
    assert set(cells) == {"rnn_tanh", "rnn_sigmoid", "rnn_relu", "lstm", "gru"}
    for c in cells.values():
        assert c["mean"][0] == pytest.approx(1.0, abs=1e-12)  # dL_T/dh_T = u, a unit vector
        assert len(c["mean"]) == len(c["p10"]) == len(c["p90"]) == T
        assert all(lo <= hi for lo, hi in zip(c["p10"], c["p90"]))
    assert cells["rnn_tanh"]["mean"][T - 1] < cells["lstm"]["mean"][T - 1]
    assert cells["rnn_sigmoid"]["mean"][T - 1] < cells["rnn_tanh"]["mean"][T - 1]  # s' <= 1/4 against tanh' <= 1
    assert cells["rnn_tanh"]["decay_per_step"] < cells["lstm"]["decay_per_step"] < 1
    ratio = math.log10(cells["rnn_tanh"]["mean"][min(50, T - 1)])
    assert f"RNN(tanh): ||dL_T/dh_(T-lag)|| falls by a factor 10^{ratio:.1f}" in " ".join(results["findings"])


# ---------------------------------------------------------------------------- adding and copy
def test_adding_curves_are_consistent(fast_runs):
    _, results, _ = fast_runs["adding"]
    s = results["settings"]
    assert results["baseline_mse"] == pytest.approx(1 / 6)
    cells = ("rnn_tanh", "irnn", "lstm", "lstm-chrono", "gru")
    assert {(r["cell"], r["T"]) for r in results["runs"]} == {(c, T) for c in cells for T in s["timesteps"]}
    for r in results["runs"]:
        assert r["sequences"] == list(range(0, s["max_sequences"] + 1, s["eval_every"]))
        assert len(r["val_mse"]) == len(r["sequences"]) and all(v >= 0 for v in r["val_mse"])
        assert r["best_val_mse"] == min(r["val_mse"])
        assert r["val_mse"][-1] < r["val_mse"][0]  # Adam on 400 sequences improves every cell on T = 10
        hits = [n for n, v in zip(r["sequences"], r["val_mse"]) if v < 0.01]
        assert r["solved_at"] == (hits[0] if hits else None)
        assert r["label"] in " ".join(results["findings"])


def test_copy_curves_are_consistent(fast_runs):
    _, results, _ = fast_runs["copy"]
    assert results["chance_accuracy"] == pytest.approx(1 / 8)
    for r in results["runs"]:
        assert r["baseline"] == pytest.approx(10 * math.log(8) / (r["T"] + 20))
        assert all(0 <= a <= 1 for a in r["recall_accuracy"])
        assert r["best_val_loss"] == min(r["val_loss"])
        below = [n for n, v in zip(r["sequences"], r["val_loss"]) if v < r["baseline"]]
        assert r["below_baseline_at"] == (below[0] if below else None)
        assert r["val_loss"][0] == pytest.approx(math.log(10), rel=0.3)  # untrained: about uniform over 10 classes


# ---------------------------------------------------------------------------- exploding
def test_exploding_without_clipping_stops_with_a_larger_gradient_norm(fast_runs):
    _, results, _ = fast_runs["exploding"]
    s = results["settings"]
    u, c = results["runs"]["unclipped"], results["runs"]["clipped"]
    assert u["stopped"] is not None and u["steps"] < s["steps"]
    assert c["stopped"] is None and c["steps"] == len(c["loss"]) == len(c["grad_norm"]) == s["steps"]
    assert u["peak_grad_norm"] > s["grad_bound"] > c["peak_grad_norm"]
    assert u["peak_grad_norm"] == max(u["grad_norm"]) and c["peak_grad_norm"] == max(c["grad_norm"])
    # the same data and initial weights: the first step is identical in both runs
    assert u["loss"][0] == c["loss"][0] and u["grad_norm"][0] == c["grad_norm"][0]
    assert c["clipped_steps"] == sum(1 for n in c["grad_norm"] if n > s["clip_norm"])
    assert c["min_loss"] < c["first_loss"]


# ---------------------------------------------------------------------------- truncation
@pytest.mark.parametrize("lag", [1, 4, 9])
def test_delayed_recall_targets_are_the_inputs_lag_steps_before(lag):
    x, y, mask = delayed_recall(5, 200, lag, 3, symbols=4, distractors=3, max_gap=6)
    query = 4 + 3
    assert x.shape == y.shape == mask.shape == (5, 200)
    assert mask.sum() >= 5 * 200 // (lag + 1 + 6)
    rows, steps = np.nonzero(mask)
    assert np.all(steps >= lag)
    assert np.all(x[rows, steps] == query)
    assert np.array_equal(y[rows, steps], x[rows, steps - lag])
    assert np.all(y[rows, steps] < 4)
    for r, t in zip(rows, steps):  # between the cue and its query: distractors only
        between = x[r, t - lag + 1:t]
        assert np.all((between >= 4) & (between < query))
    assert np.all(mask == (x == query))  # every query has a target; no other step has one
    cues = np.argwhere(x < 4)
    assert all(mask[r, t + lag] for r, t in cues)  # every cue gets its query


def test_delayed_recall_errors():
    with pytest.raises(ValueError, match="lag must be a positive int, got 0"):
        delayed_recall(2, 10, 0, 0)
    with pytest.raises(ValueError, match="max_gap must be a non-negative int, got -1"):
        delayed_recall(2, 10, 1, 0, max_gap=-1)


def test_truncation_window_limits_the_lag_learned(fast_runs):
    _, results, _ = fast_runs["truncation"]
    s = results["settings"]
    acc = {(r["k"], r["lag"]): r["accuracy"] for r in results["runs"]}
    assert set(acc) == {(k, lag) for k in s["windows"] for lag in s["lags"]}
    assert acc[(6, 3)] > 0.9  # the window of 6 holds cue and query 3 steps apart
    assert acc[(2, 3)] < 0.6  # a window of 2 never does
    for k in s["windows"]:
        learned = [lag for lag in s["lags"] if acc[(k, lag)] >= s["threshold"]]
        assert results["longest_learned"][str(k)] == (max(learned) if learned else None)
    assert results["longest_learned"] == {"2": 1, "6": 3}
    assert "grows with the window k (1, 3 for k = 2, 6)" in " ".join(results["findings"])


# ---------------------------------------------------------------------------- arguments and plotting
@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"mode": "medium"}, ValueError, "mode must be one of 'fast', 'full'; got 'medium'"),
    ({"seed": -1}, ValueError, "seed must be a non-negative int, got -1"),
    ({"seed": "1"}, TypeError, "seed must be a non-negative int, got str '1'"),
    ({"seed": 1.0}, TypeError, "seed must be a non-negative int, got float 1.0"),
    ({"progress": 5}, TypeError, "progress must be a callable taking a str, or None; got int"),
])
def test_run_rejects_bad_arguments(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        EXPERIMENTS["vanishing"].run(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_run_rejects_an_out_dir_that_is_not_a_path():
    with pytest.raises(TypeError, match="out_dir must be a path .*, got int 3"):
        EXPERIMENTS["vanishing"].run(3)


def _hide_matplotlib(monkeypatch):
    for module in ("matplotlib", "matplotlib.figure", "matplotlib.backends", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, module, None)  # importing it now raises ImportError


def test_missing_matplotlib_fails_first_naming_the_extra(tmp_path, monkeypatch):
    _hide_matplotlib(monkeypatch)
    with pytest.raises(PlotDependencyError, match=r"pip install rnnlab\[plot\]"):
        EXPERIMENTS["adding"].run(tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing computed, nothing written


def test_results_refuse_non_finite_numbers():
    from rnnlab.lab.experiments import _jsonable

    with pytest.raises(ValueError, match=r"results.runs\[1\] is nan"):
        _jsonable({"runs": [1.0, float("nan")]})
    assert _jsonable({"a": (np.float32(0.5), np.int64(2), None, True)}) == {"a": [0.5, 2, None, True]}


def test_command_line_reproduces_the_run():
    assert command_line("adding", "full", 0, "experiments/adding") == "rnnlab experiment adding --full"
    assert command_line("copy", "fast", 3, "out/c") == "rnnlab experiment copy --seed 3 --out out/c"


# ---------------------------------------------------------------------------- command line
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnnlab experiment")
    configure_cli(parser)
    return parser


def test_cli_list_names_every_experiment_on_one_line(capsys):
    assert run_cli(_parser().parse_args(["--list"])) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == NAMES
    assert all("[full mode on one core: " in line for line in lines)


def test_cli_runs_a_fast_experiment_into_the_default_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_cli(_parser().parse_args(["exploding"])) == 0
    out = capsys.readouterr().out
    assert "report: experiments/exploding/report.html" in out
    results = _strict_json((tmp_path / "experiments" / "exploding" / "results.json").read_text("utf-8"))
    assert results["command"] == "rnnlab experiment exploding"
    for line in results["findings"]:
        assert f"- {line}" in out


def test_cli_options(tmp_path, capsys):
    args = _parser().parse_args(["exploding", "--out", str(tmp_path / "x"), "--seed", "2"])
    assert (args.name, args.full, args.seed) == ("exploding", False, 2)
    assert run_cli(args) == 0
    assert _strict_json((tmp_path / "x" / "results.json").read_text("utf-8"))["seed"] == 2
    assert _parser().parse_args(["adding", "--full"]).full is True
    with pytest.raises(SystemExit):
        _parser().parse_args(["adding", "--seed", "-1"])
    assert "expected a non-negative integer, got -1" in capsys.readouterr().err


def test_cli_unknown_or_missing_name_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown experiment 'nope'; valid choices: vanishing, adding, copy, "
                                          "exploding, truncation"):
        run_cli(_parser().parse_args(["nope"]))
    with pytest.raises(ConfigError, match=r"an experiment name is required \(or --list\); valid choices: vanishing"):
        run_cli(_parser().parse_args([]))


def test_cli_without_matplotlib_exits_1_naming_the_extra(tmp_path, monkeypatch, capsys):
    _hide_matplotlib(monkeypatch)
    with pytest.raises(PlotDependencyError):
        run_cli(_parser().parse_args(["vanishing", "--out", str(tmp_path / "v")]))
    assert cli.main(["experiment", "vanishing", "--out", str(tmp_path / "v")]) == 1
    err = capsys.readouterr().err
    assert "rnnlab experiment: error: " in err and "pip install rnnlab[plot]" in err


def test_cli_timesteps_replace_the_modes_and_each_T_runs_as_it_would_alone(tmp_path):
    assert run_cli(_parser().parse_args(["copy", "--timesteps", "4", "6", "--out", str(tmp_path / "both")])) == 0
    assert run_cli(_parser().parse_args(["copy", "--timesteps", "6", "--out", str(tmp_path / "six")])) == 0
    both = _strict_json((tmp_path / "both" / "results.json").read_text("utf-8"))
    six = _strict_json((tmp_path / "six" / "results.json").read_text("utf-8"))
    assert both["settings"]["timesteps"] == [4, 6] and six["settings"]["timesteps"] == [6]
    assert both["command"] == f"rnnlab experiment copy --timesteps 4 6 --out {tmp_path / 'both'}"
    assert sorted({r["T"] for r in both["runs"]}) == [4, 6]
    runs_six = [r for r in both["runs"] if r["T"] == 6]
    assert [r["val_loss"] for r in runs_six] == [r["val_loss"] for r in six["runs"]]


@pytest.mark.parametrize("argv, message", [
    (["vanishing", "--timesteps", "10"], "--timesteps: timesteps can be chosen for the experiments that run several "
                                         "sequence lengths \\(adding, copy\\), not for 'vanishing'"),
    (["adding", "--timesteps", "0"], r"--timesteps: timesteps must be positive ints, got 0 in \[0\]"),
])
def test_cli_bad_timesteps_are_config_errors(argv, message):
    with pytest.raises(ConfigError, match=message):
        run_cli(_parser().parse_args(argv))
