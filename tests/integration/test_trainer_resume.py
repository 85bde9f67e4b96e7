"""Nothing lost: an interrupted run, resumed from its last checkpoint, ends bit for bit where an
uninterrupted run with the same seeds ends.

The setup exercises every piece of state a checkpoint must hold: a token stream (``rnnlab.data.LMStream``,
with a random offset per epoch from its seed) whose batches continue one another (carried recurrent
states), the general k1/k2 truncated BPTT (kept anchor states and inputs reaching back into the
previous batch), dropout (a layer RNG), Adam (optimizer moments), a plateau schedule and early
stopping (their counters), and a metric and the loss (epoch accumulators).

Run as a script (``python test_trainer_resume.py RUN_DIR POINT HANGING``) this file trains the same setup,
for the test that kills it with SIGKILL: slowly for POINT ``mid-epoch``, or stopping for good (after creating
the file HANGING) at POINT of its second checkpoint write.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from rnnlab.data.batches import LMStream
from rnnlab.nn.layers import Dense, Dropout, Embedding
from rnnlab.nn.recurrent import GRU, LSTM
from rnnlab.nn.sequential import Sequential
from rnnlab.training.callbacks import Callback, HistoryWriter
from rnnlab.training.checkpoint import claim_run_dir
from rnnlab.training.trainer import TrainConfig, Trainer, latest_checkpoint

V, B, WINDOW = 7, 4, 6


def text_ids(n, seed):
    """A toy language: words from a tiny vocabulary, so there is something to learn."""
    rng = np.random.default_rng(seed)
    words = [[1, 2, 3], [4, 5], [1, 6], [2, 4, 5, 3]]
    ids = []
    while len(ids) < n:
        ids += words[rng.integers(len(words))] + [0]
    return np.array(ids[:n])


def build(model_seed=0, epochs=3, checkpoint_every_steps=7):
    model = Sequential([Embedding(V, 5, seed=model_seed), LSTM(8, return_sequences=True, seed=model_seed + 1),
                        Dropout(0.25, seed=model_seed + 2), GRU(6, return_sequences=True, seed=model_seed + 3),
                        Dense(V, seed=model_seed + 4)])
    config = TrainConfig(epochs=epochs, lr=0.02, clip_norm=1.0, bptt_k1=2, bptt_k2=5, metrics=["accuracy"],
                         schedule="plateau", patience=5,
                         schedule_args={"monitor": "val_accuracy", "patience": 1, "factor": 0.5, "min_delta": 0.3},
                         checkpoint_every_steps=checkpoint_every_steps, log_every=10_000)
    train = LMStream(text_ids(260, 0), batch_size=B, bptt=WINDOW, seed=1)
    val = LMStream(text_ids(120, 1), batch_size=2, bptt=WINDOW, seed=2)
    return model, config, train, val


def weights(model):
    return {name: p.copy() for name, p in model.named_parameters()}


def assert_bitwise_equal(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name]), name


def without_time(history):
    return {k: v for k, v in history.items() if k != "time"}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    model, config, train, val = build()
    history = Trainer(model, "cross_entropy", config, train, val, tmp_path_factory.mktemp("reference")).run()
    return weights(model), history


class Interrupt(Callback):
    def __init__(self, at_step):
        self.at_step = at_step

    def on_batch_end(self, trainer, logs):
        if trainer.step >= self.at_step:
            raise KeyboardInterrupt(f"interrupted after step {trainer.step}")


# ---------------------------------------------------------------------- tests
def test_the_reference_run_learns_and_uses_every_piece_of_state(uninterrupted):
    _, history = uninterrupted
    assert history["epoch"] == [1, 2, 3]
    assert history["loss"][-1] < history["loss"][0] < math.log(V) + 0.1
    assert history["lr"] == [0.02, 0.02, 0.01]  # the plateau schedule acted: its state matters on resume
    assert len(LMStream(text_ids(260, 0), batch_size=B, bptt=WINDOW, seed=1)) == 11  # 31 steps, checkpoints every 7


@pytest.mark.parametrize("at_step", [12, 45, 80])
def test_resuming_after_an_interruption_ends_with_bitwise_identical_weights(tmp_path, uninterrupted, at_step):
    expected_weights, expected_history = uninterrupted
    model, config, train, val = build()
    with pytest.raises(KeyboardInterrupt):
        Trainer(model, "cross_entropy", config, train, val, tmp_path, callbacks=[Interrupt(at_step)]).run()
    manifest = json.loads((tmp_path / "checkpoint.json").read_text())
    assert 0 < manifest["step"] < at_step

    # a different seed: every weight and the dropout generator must come from the checkpoint
    model, config, train, val = build(model_seed=100)
    history = Trainer(model, "cross_entropy", config, train, val, tmp_path).run(resume=True)
    assert_bitwise_equal(weights(model), expected_weights)
    assert without_time(history) == without_time(expected_history)
    assert json.loads((tmp_path / "history.json").read_text())["loss"] == expected_history["loss"]


def test_trainer_resume_rebuilds_model_loss_and_config_from_the_run_directory(tmp_path, uninterrupted):
    expected_weights, expected_history = uninterrupted
    model, config, train, val = build()
    with pytest.raises(KeyboardInterrupt):
        Trainer(model, "cross_entropy", config, train, val, tmp_path, callbacks=[Interrupt(25)]).run()
    trainer = Trainer.resume(tmp_path, train, val)
    assert trainer.config == config and type(trainer.loss).__name__ == "SoftmaxCrossEntropy"
    history = trainer.run()
    assert_bitwise_equal(weights(trainer.model), expected_weights)
    assert without_time(history) == without_time(expected_history)
    assert "resumed from" in (tmp_path / "train.log").read_text()


def test_a_run_directory_with_a_checkpoint_is_not_overwritten_and_resume_needs_one(tmp_path):
    model, config, train, val = build(epochs=1)
    with pytest.raises(FileNotFoundError,
                       match=r"no checkpoint to resume from in .* \(looked for .*checkpoint.json.\)"):
        Trainer(model, "cross_entropy", config, train, val, tmp_path).run(resume=True)
    Trainer(model, "cross_entropy", config, train, val, tmp_path).run()
    with pytest.raises(FileExistsError, match="already holds a training checkpoint; pass resume=True"):
        Trainer(model, "cross_entropy", config, train, val, tmp_path).run()


def test_a_corrupt_checkpoint_file_is_detected(tmp_path):
    model, config, train, val = build(epochs=1)
    Trainer(model, "cross_entropy", config, train, val, tmp_path).run()
    path = latest_checkpoint(tmp_path) / "optimizer.npz"
    data = bytearray(path.read_bytes())
    data[-40] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="optimizer.npz' does not match its SHA-256"):
        Trainer(model, "cross_entropy", config, train, val, tmp_path).run(resume=True)


def test_only_the_latest_complete_checkpoint_is_kept_and_nothing_else_is_removed(tmp_path):
    model, config, train, val = build(epochs=1, checkpoint_every_steps=3)
    claim_run_dir(tmp_path)
    (tmp_path / "checkpoints").mkdir(parents=True)
    for name in (".tmp-epoch0000-batch000001-step000000001-abcdef",  # as a killed run leaves them
                 "epoch0000-batch000002-step000000002-012345", "notes"):  # and one that is not rnnlab's
        (tmp_path / "checkpoints" / name).mkdir()
    Trainer(model, "cross_entropy", config, train, val, tmp_path).run()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [latest_checkpoint(tmp_path).name, "notes"]
    assert sorted(p.name for p in latest_checkpoint(tmp_path).iterdir()) == ["model", "optimizer.npz", "state.json",
                                                                             "streams.npz"]


#: where the child is killed: after a step checkpoint inside epoch 2 (while it trains), or while it writes its second
#: checkpoint: between the files of its temporary directory, after the rename before the manifest, and after the
#: manifest before the older checkpoint is removed
KILL_POINTS = ["mid-epoch", "in-checkpoint-files", "before-manifest", "before-cleanup"]


def no_curves(*args, **kwargs):
    """In place of HistoryWriter.plot where a test times a kill: matplotlib's import and drawing cost seconds."""
    return []


@pytest.mark.parametrize("point", KILL_POINTS)
def test_killed_with_sigkill_then_resumed_matches_the_uninterrupted_run(tmp_path, uninterrupted, point, monkeypatch):
    expected_weights, expected_history = uninterrupted
    monkeypatch.setattr(HistoryWriter, "plot", no_curves)
    run_dir = tmp_path / "run"
    hanging = tmp_path / "hanging"  # the child creates it where it waits to be killed
    child = subprocess.Popen([sys.executable, __file__, str(run_dir), point, str(hanging)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    manifest = run_dir / "checkpoint.json"
    deadline = time.monotonic() + 60
    killed_at = None
    try:
        while time.monotonic() < deadline and child.poll() is None:
            if point != "mid-epoch" and hanging.exists():
                os.kill(child.pid, signal.SIGKILL)
                killed_at = json.loads(manifest.read_text())
                break
            if point == "mid-epoch" and manifest.exists():
                try:
                    position = json.loads(manifest.read_text())
                except json.JSONDecodeError:  # never happens with an atomic rename; would be a bug
                    raise AssertionError("checkpoint.json was read half-written") from None
                if position["epoch"] >= 1 and position["batch"] > 0:  # a step checkpoint inside epoch 2
                    os.kill(child.pid, signal.SIGKILL)
                    killed_at = position
                    break
            time.sleep(0.005)
    finally:
        if child.poll() is None and killed_at is None:
            child.kill()
        stderr = child.communicate()[1].decode()
    assert killed_at is not None, f"the child ended (code {child.returncode}) before it was killed: {stderr}"
    assert child.returncode == -signal.SIGKILL

    model, config, train, val = build(model_seed=100)
    trainer = Trainer.resume(run_dir, train, val)
    assert trainer.step >= killed_at["step"]
    history = trainer.run()
    assert_bitwise_equal(weights(trainer.model), expected_weights)
    assert without_time(history) == without_time(expected_history)
    # what the killed write left is gone: one checkpoint, no temporary directory or file
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == [latest_checkpoint(run_dir).name]
    assert not [p for p in run_dir.rglob("*") if p.name.startswith(".")]


# ---------------------------------------------------------------------- the child process
class Slow(Callback):
    """Time for the parent to see a checkpoint and kill this process in the middle of an epoch."""

    def on_batch_end(self, trainer, logs):
        time.sleep(0.03)


def _hang_at(point: str, hanging: str) -> None:
    """Make this process stop for good at ``point`` of its second checkpoint, after creating ``hanging``."""
    from rnnlab.training import checkpoint

    name, nth = {"in-checkpoint-files": ("_save_npz", 4), "before-manifest": ("write_atomic", 2),
                 "before-cleanup": ("_remove_own", 4)}[point]
    original, calls = getattr(checkpoint, name), []

    def hang(*args, **kwargs):
        if name != "write_atomic" or args[0].name == "checkpoint.json":  # not the run directory's mark
            calls.append(args)
        if len(calls) == nth:
            open(hanging, "w").close()
            time.sleep(60)
        return original(*args, **kwargs)

    setattr(checkpoint, name, hang)


def _child(run_dir: str, point: str, hanging: str) -> None:
    HistoryWriter.plot = no_curves
    if point != "mid-epoch":
        _hang_at(point, hanging)
    model, config, train, val = build()
    slow = [Slow()] if point == "mid-epoch" else []
    Trainer(model, "cross_entropy", config, train, val, run_dir, callbacks=slow).run()


if __name__ == "__main__":
    _child(*sys.argv[1:])
