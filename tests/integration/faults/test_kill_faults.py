"""Processes killed or interrupted mid-way: ``rnnlab.save`` under SIGKILL, ``rnnlab train`` under SIGINT and
SIGTERM. (SIGKILL during training and during a checkpoint write, then ``--resume``, is in
``tests/integration/test_trainer_resume.py``.)

Run as a script, this file is the child process the tests kill: ``save DIR POINT HANGING`` saves a model into
DIR and stops for good at POINT of the save, after creating HANGING; ``train RUN_DIR ARGS...`` runs
``rnnlab train`` slowly enough to be interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rnnlab.io import files as model_io
from rnnlab.nn.layers import Dense
from rnnlab.nn.recurrent import LSTM
from rnnlab.nn.sequential import Sequential
from rnnlab.training.callbacks import HistoryWriter

#: where a save is killed: while it writes the weights' temporary file, with both files staged and neither renamed,
#: and between the two renames (the new weights in place, the old config.json still there)
SAVE_POINTS = ["in-weights-write", "both-staged", "between-renames"]


def model(version: int) -> Sequential:
    """The model of the ``version``-th save: the same architecture, other weights."""
    m = Sequential([LSTM(16, input_size=8, seed=0), Dense(4, seed=1)])
    m.build((None, 5, 8))
    m.set_weights({name: p + version for name, p in m.named_parameters()})
    return m


def weights(m) -> dict:
    return {name: p.copy() for name, p in m.named_parameters()}


def temporaries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def wait_for(path: Path, child: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            raise AssertionError(f"the child ended (code {child.returncode}) or hung before {path.name}: "
                                 f"{child.communicate()[1].decode()}")
        time.sleep(0.005)


def child(*args: str, cwd=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, *args], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


# --------------------------------------------------------------------------- SIGKILL during rnnlab.save
def test_a_save_killed_at_any_point_leaves_a_loadable_model_and_no_growing_litter(tmp_path):
    directory = tmp_path / "model"
    model_io.save(model(0), directory)
    before, after = weights(model(0)), weights(model(1))
    for point in SAVE_POINTS:
        hanging = tmp_path / f"hanging-{point}"
        process = child("save", str(directory), point, str(hanging))
        wait_for(hanging, process)
        process.send_signal(signal.SIGKILL)
        process.communicate()
        loaded = weights(model_io.load(directory))
        expected = after if point == "between-renames" else before  # the new model once its weights are in place
        assert all(np.array_equal(loaded[k], expected[k]) for k in expected), point
        assert 1 <= len(temporaries(directory)) <= 2, temporaries(directory)  # this kill's, not the earlier ones'
    model_io.save(model(2), directory)
    assert temporaries(directory) == [] and sorted(p.name for p in directory.iterdir()) == ["config.json",
                                                                                           "weights.npz"]
    loaded = weights(model_io.load(directory))
    assert all(np.array_equal(loaded[k], v) for k, v in weights(model(2)).items())


def _save_and_hang(directory: str, point: str, hanging: str) -> None:
    def hang():
        open(hanging, "w").close()
        time.sleep(60)

    if point == "in-weights-write":
        original = model_io._write_npz

        def write_then_hang(f, arrays):
            original(f, arrays)
            f.flush()
            hang()

        model_io._write_npz = write_then_hang
    else:
        replace, calls = os.replace, []

        def replace_or_hang(*args):
            calls.append(args)
            if len(calls) == {"both-staged": 1, "between-renames": 2}[point]:
                hang()
            return replace(*args)

        model_io.os.replace = replace_or_hang
    model_io.save(model(1), directory)


# --------------------------------------------------------------------------- SIGINT and SIGTERM during training
def wait_for_checkpoint(process, manifest, step: int) -> None:
    """Until ``process`` has written a checkpoint of ``step`` or later (or ends, or a minute passes)."""
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if manifest.exists() and json.loads(manifest.read_text())["step"] >= step:
            return
        time.sleep(0.005)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_training_interrupted_by_a_signal_resumes_to_the_uninterrupted_result(rnnlab, monkeypatch, tmp_path, sig):
    monkeypatch.setattr(HistoryWriter, "plot", lambda *args, **kwargs: [])  # seconds of matplotlib, not the point
    argv = ["train", "adding.toml", "--set", "train.epochs=3", "--set", "train.checkpoint_every_steps=2", "--run-dir"]
    process = child("train", *argv, "cut", cwd=tmp_path)
    manifest = tmp_path / "cut" / "checkpoint.json"
    wait_for_checkpoint(process, manifest, 6)
    process.send_signal(sig)
    stderr = process.communicate(timeout=60)[1].decode()
    if sig == signal.SIGINT:
        assert process.returncode == 130
        assert stderr.strip() == ("rnnlab train: interrupted; continue with: rnnlab train adding.toml --set "
                                  "train.epochs=3 --set train.checkpoint_every_steps=2 --run-dir cut --resume")
    else:  # SIGTERM: the step in progress finishes and is checkpointed
        assert process.returncode == 143, stderr
        assert stderr.strip() == ("rnnlab train: stopped by SIGTERM with a checkpoint; continue with: rnnlab train "
                                  "adding.toml --set train.epochs=3 --set train.checkpoint_every_steps=2 --run-dir "
                                  "cut --resume")
        log = (tmp_path / "cut" / "train.log").read_text()
        stopped_at = json.loads(manifest.read_text())["step"]
        assert f"stopped by SIGTERM after step {stopped_at}," in log
    assert json.loads(manifest.read_text())["step"] < 18  # it was stopped before the end

    code, _, err = rnnlab(*argv, "cut", "--resume")
    assert code == 0, err
    assert rnnlab(*argv, "whole")[0] == 0
    whole, cut = weights(model_io.load("whole/model")), weights(model_io.load("cut/model"))
    assert all(np.array_equal(whole[k], cut[k]) for k in whole)
    assert json.loads(Path("cut/metrics.json").read_text()) == json.loads(Path("whole/metrics.json").read_text())


def test_sigterm_at_an_odd_step_checkpoints_that_step(rnnlab, tmp_path):
    """With checkpoints every 4 steps, a SIGTERM sent after the one of step 4 is honoured at the step in
    progress: a later checkpoint, named in the log."""
    argv = ["train", "adding.toml", "--set", "train.epochs=3", "--set", "train.checkpoint_every_steps=4", "--run-dir"]
    process = child("train", *argv, "cut", cwd=tmp_path)
    manifest = tmp_path / "cut" / "checkpoint.json"
    wait_for_checkpoint(process, manifest, 4)
    time.sleep(0.03)  # a step or so later (each takes 20 ms or more)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err.decode()
    state = json.loads(manifest.read_text())
    log = (tmp_path / "cut" / "train.log").read_text()
    assert f"stopped by SIGTERM after step {state['step']}," in log
    assert state["step"] > 4


def _train_slowly(*argv: str) -> int:
    from rnnlab import cli
    from rnnlab.training.trainer import Trainer

    update = Trainer._update

    def slow_update(self, *args, **kwargs):
        time.sleep(0.02)
        return update(self, *args, **kwargs)

    Trainer._update = slow_update
    HistoryWriter.plot = lambda *args, **kwargs: []
    return cli.main(list(argv))


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    if mode == "save":
        _save_and_hang(*rest)
    else:
        sys.exit(_train_slowly(*rest))
