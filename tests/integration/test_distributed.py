"""Data-parallel training over MPI (``rnnlab.training.distributed``), run as ``mpiexec -n 2`` subprocesses.

The training runs are in ``mpi_worker.py`` (tiny models: a masked sentiment LSTM, a stateful GRU language
model with truncated BPTT, a SimpleRNN forecaster), each started once alone and once on two ranks; the
tests compare what they wrote. Skipped when mpiexec or mpi4py is missing (``pip install '.[mpi]'``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mpi4py", reason="the data-parallel tests need mpi4py (pip install '.[mpi]')")
MPIEXEC = shutil.which("mpiexec")
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="the data-parallel tests need mpiexec (pip install '.[mpi]')")

WORKER = str(Path(__file__).with_name("mpi_worker.py"))
SRC = str(Path(__file__).resolve().parents[2] / "src")
# a hang guard only: a job that takes this long is stuck, and the test fails instead of hanging
HANG = 120

EQUIVALENCE = [f"{case}:{opt}:float64:6" for case in ("sentiment", "lm", "forecast") for opt in ("sgd", "adam")]
EQUIVALENCE += [f"{case}:adam:float32:6" for case in ("sentiment", "lm", "forecast")]
RESUMED = ["lm:adam:float64:12", "sentiment:adam:float64:12"]
KILL_STEP = 5


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def _run(ranks: int | None, *argv: str, cwd=None, env=None) -> subprocess.CompletedProcess:
    command = [sys.executable, *argv] if ranks is None else [MPIEXEC, "-n", str(ranks), sys.executable, *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=HANG, env={**_env(), **(env or {})},
                          cwd=cwd)


def _worker(ranks: int | None, root: Path, specs, *options: str, env=None) -> subprocess.CompletedProcess:
    return _run(ranks, WORKER, str(root), *specs, *options, env=env)


def _weights(path: Path) -> dict:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


def _dir(root: Path, spec: str) -> Path:
    return root / spec.replace(":", "-")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every run alone and on two ranks; the resumed runs killed mid-step on rank 1, then resumed on two
    ranks and alone."""
    root = tmp_path_factory.mktemp("mpi")
    out = {}
    for name, ranks, specs in (("one", None, EQUIVALENCE + RESUMED), ("two", 2, EQUIVALENCE + RESUMED)):
        done = _worker(ranks, root / name, specs)
        assert done.returncode == 0, done.stderr
    out["killed"] = [_worker(2, root / "killed", [spec], "--kill-rank", "1", "--kill-step", str(KILL_STEP))
                     for spec in RESUMED]
    for name, ranks in (("resumed2", 2), ("resumed1", None)):
        shutil.copytree(root / "killed", root / name)
        done = _worker(ranks, root / name, RESUMED, "--resume")
        assert done.returncode == 0, done.stderr
    out["root"] = root
    return out


@pytest.mark.parametrize("spec", EQUIVALENCE)
def test_two_ranks_end_with_the_weights_of_one_process_on_the_same_global_batch(runs, spec):
    one, two = _dir(runs["root"] / "one", spec), _dir(runs["root"] / "two", spec)
    initial, alone = _weights(one / "initial.npz"), _weights(one / "weights.npz")
    parallel = _weights(two / "weights.npz")
    assert _max_diff(alone, initial) > 1e-3  # the steps changed the weights
    tolerance = 1e-10 if spec.endswith("float64:6") else 1e-5
    assert _max_diff(alone, parallel) <= tolerance
    # the sharded evaluation, reduced over the ranks, is that of one process
    results_one = json.loads((one / "results.json").read_text())
    results_two = json.loads((two / "results.json").read_text())
    assert results_one.keys() == results_two.keys()
    for key in results_one:
        assert results_two[key] == pytest.approx(results_one[key], rel=tolerance * 10, abs=tolerance)
    # the training history (global loss per epoch, validation) is the same
    history_one = json.loads((one / "history.json").read_text())
    history_two = json.loads((two / "history.json").read_text())
    assert history_two["step"] == history_one["step"]
    np.testing.assert_allclose(history_two["loss"], history_one["loss"], rtol=tolerance * 10)
    np.testing.assert_allclose(history_two["val_loss"], history_one["val_loss"], rtol=tolerance * 10)


def test_rank_zero_alone_writes_the_log_and_records_the_world_size(runs):
    two = _dir(runs["root"] / "two", EQUIVALENCE[0])
    log = (two / "train.log").read_text()
    assert log.count("training Sequential in") == 1  # one writer
    assert json.loads((two / "train_config.json").read_text())["world_size"] == 2
    assert "world_size" not in json.loads((_dir(runs["root"] / "one", EQUIVALENCE[0]) / "train_config.json")
                                          .read_text())


def test_a_rank_killed_mid_step_ends_the_job_with_a_message_and_a_good_checkpoint(runs):
    from rnnlab.training.checkpoint import read_checkpoint

    for spec, done in zip(RESUMED, runs["killed"]):
        assert done.returncode != 0
        assert "killed" in (done.stdout + done.stderr).lower()  # the launcher says which rank died and how
        ckpt = read_checkpoint(_dir(runs["root"] / "killed", spec))  # verifies every file's SHA-256
        assert 0 < ckpt.state["step"] < KILL_STEP
        assert not (_dir(runs["root"] / "killed", spec) / "weights.npz").exists()  # the run did not finish


def test_an_error_on_one_rank_stops_every_rank_with_a_message_naming_it(tmp_path):
    done = _worker(2, tmp_path, ["forecast:sgd:float64:6"], "--kill-rank", "1", "--kill-step", "2", "--how", "raise")
    assert done.returncode != 0
    assert "rank 1 of 2 failed (RuntimeError: a test failure in update 2); stopping all 2 ranks" in done.stderr


def test_a_rank_that_hangs_is_caught_by_the_watchdog_of_the_others(tmp_path):
    done = _worker(2, tmp_path, ["forecast:sgd:float64:6"], "--kill-rank", "1", "--kill-step", "2", "--how", "hang",
                   env={"RNNLAB_MPI_TIMEOUT": "2"})
    assert done.returncode != 0
    assert ("rnnlab: rank 0 of 2 waited more than 2 s in an Allreduce: another rank is stuck or gone; stopping all 2 "
            "ranks") in done.stderr


@pytest.mark.parametrize("spec", RESUMED)
def test_resuming_on_two_ranks_is_bit_identical_and_alone_equal_to_1e_10(runs, spec):
    root = runs["root"]
    uninterrupted2, resumed2 = _weights(_dir(root / "two", spec) / "weights.npz"), _weights(
        _dir(root / "resumed2", spec) / "weights.npz")
    assert all(np.array_equal(uninterrupted2[k], resumed2[k]) for k in uninterrupted2)
    uninterrupted1, resumed1 = _weights(_dir(root / "one", spec) / "weights.npz"), _weights(
        _dir(root / "resumed1", spec) / "weights.npz")
    assert _max_diff(uninterrupted1, resumed1) <= 1e-10  # resumed by one process from a two-rank checkpoint


# --------------------------------------------------------------------------- the command line
def test_mpiexec_rnnlab_train_writes_one_run_directory_with_world_size(tmp_path):
    config = tmp_path / "adding.toml"
    config.write_text('[data]\ntask = "adding"\nseq_len = 6\nn_train = 40\nn_val = 10\nn_test = 10\nbatch_size = 8\n'
                      '[model]\ncell = "gru"\nhidden_size = 4\n[train]\nepochs = 2\nmetrics = ["mse"]\n'
                      "restore_best = true\n")
    done = _run(2, "-m", "rnnlab", "train", str(config), "--run-dir", "dp", "--distributed", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("run written to dp") == 1  # rank 0 reports
    metrics = json.loads((tmp_path / "dp" / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["steps"] == 10
    log = (tmp_path / "dp" / "train.log").read_text()
    assert "data-parallel training: world_size 2" in log and "BLAS threads per rank" in log
    assert log.count("restored the weights of epoch") == 1 and (tmp_path / "dp" / "best.npz").is_file()


def test_mpiexec_deals_cross_validation_folds_to_the_ranks(tmp_path):
    data_dir = os.environ.get("RNNLAB_DATA")
    if not data_dir or not (Path(data_dir) / "uci_sentiment").exists():
        pytest.skip("needs the uci_sentiment data set in RNNLAB_DATA")
    config = tmp_path / "cv.toml"
    config.write_text('[data]\ntask = "sentiment"\ndataset = "uci_sentiment"\nlimit = 90\ncv_folds = 3\n'
                      "batch_size = 30\n[model]\nhidden_size = 3\nembedding_dim = 3\n[train]\nmax_steps = 1\n")
    done = _run(2, "-m", "rnnlab", "train", str(config), "--run-dir", "cv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    folds = [json.loads((tmp_path / "cv" / f"fold-0{k}" / "metrics.json").read_text()) for k in (1, 2, 3)]
    summary = json.loads((tmp_path / "cv" / "metrics.json").read_text())
    assert summary["world_size"] == 2 and summary["fold_accuracy"] == [f["test"]["accuracy"] for f in folds]
    # folds 1 and 3 went to rank 0, fold 2 to rank 1: each fold's log was written by one process
    assert all((tmp_path / "cv" / f"fold-0{k}" / "train.log").read_text().count("training Sequential") == 1
               for k in (1, 2, 3))


@pytest.mark.parametrize("name, key", [("adding", "runs"), ("exploding", "runs"), ("vanishing", "cells")])
def test_mpiexec_deals_an_experiments_runs_to_the_ranks_with_the_numbers_of_one_process(tmp_path, name, key):
    from rnnlab.lab.experiments import EXPERIMENTS

    done = _run(2, "-m", "rnnlab", "experiment", name, "--out", str(tmp_path / name))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("report:") == 1  # rank 0 reports
    parallel = json.loads((tmp_path / name / "results.json").read_text())
    experiment = EXPERIMENTS[name]
    alone = json.loads(json.dumps(experiment.compute(experiment.settings["fast"], 0, lambda message: None)))

    def numbers(runs):  # a learning curve's training time differs from run to run
        return [{k: v for k, v in run.items() if k != "seconds"} if isinstance(run, dict) else run for run in runs]

    assert len(alone[key]) >= 2 and numbers(parallel[key]) == numbers(alone[key])


def test_mpiexec_resumes_an_experiment_with_the_numbers_of_one_uninterrupted_process(tmp_path):
    from rnnlab.lab.experiments import EXPERIMENTS

    class Stop(Exception):
        pass

    seen = []

    def stop_at_fifth(message):
        seen.append(message)
        if len(seen) == 5:
            raise Stop

    out = tmp_path / "copy"
    with pytest.raises(Stop):  # the first cell ends, the second is checkpointed at 0 sequences
        EXPERIMENTS["copy"].run(out, progress=stop_at_fifth)
    refused = _run(2, "-m", "rnnlab", "experiment", "copy", "--out", str(out))
    assert refused.returncode == 2 and "--resume" in refused.stderr  # every rank sees the checkpoints
    done = _run(2, "-m", "rnnlab", "experiment", "copy", "--out", str(out), "--resume")
    assert done.returncode == 0, done.stderr
    alone = EXPERIMENTS["copy"].run(tmp_path / "alone")

    def numbers(runs):
        return [{k: v for k, v in run.items() if k != "seconds"} for run in runs]

    assert numbers(json.loads((out / "results.json").read_text())["runs"]) == numbers(alone["runs"])
    assert not (out / "checkpoints").exists()
