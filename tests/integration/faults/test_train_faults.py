"""Faults of training runs, checkpoints and run directories (issue 16, part A), each as a user meets it: through
``rnnlab train`` (in-process) or the library, asserting a clear one-line error, the right exit code and that
nothing was lost."""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path

import numpy as np
import pytest

import rnnlab as rl
from rnnlab._errors import NonFiniteError
from rnnlab.io import files as model_io
from rnnlab.training.callbacks import Callback
from rnnlab.training.checkpoint import latest_checkpoint
from rnnlab.training.trainer import TrainConfig, Trainer


def checkpoint_weights(run_dir) -> dict:
    return dict(model_io.load(latest_checkpoint(run_dir) / "model").named_parameters())


def reseal(run_dir: Path, fname: str) -> None:
    """Record the checksum of the latest checkpoint's ``fname`` as it is now in the manifest (a crafted file
    that the checksum does not catch)."""
    manifest = json.loads((run_dir / "checkpoint.json").read_text())
    data = (run_dir / manifest["path"] / fname).read_bytes()
    manifest["sha256"][fname] = hashlib.sha256(data).hexdigest()
    (run_dir / "checkpoint.json").write_text(json.dumps(manifest))


# --------------------------------------------------------------------------- 1: what rnnlab did not write
def test_a_non_empty_directory_that_is_not_a_run_is_refused_and_left_untouched(rnnlab, one_line):
    Path("runs/u/checkpoints/other_tool").mkdir(parents=True)
    Path("runs/u/checkpoints/other_tool/w.bin").write_text("x")
    Path("runs/u/config.toml").write_text("# mine\n")
    code, _, err = rnnlab("train", "adding.toml", "--run-dir", "runs/u")
    assert code == 1
    assert "'runs/u' is not empty (checkpoints, config.toml) and is not an rnnlab run directory" in one_line(err)
    assert Path("runs/u/checkpoints/other_tool/w.bin").read_text() == "x"
    assert Path("runs/u/config.toml").read_text() == "# mine\n"
    assert sorted(p.name for p in Path("runs/u").iterdir()) == ["checkpoints", "config.toml"]


def test_checkpoint_cleanup_removes_only_what_rnnlab_wrote(rnnlab, trained):
    (trained / "checkpoints/other_tool").mkdir()
    (trained / "checkpoints/other_tool/w.bin").write_text("x")
    (trained / "checkpoints/README").write_text("notes")
    code, _, err = rnnlab("train", "adding.toml", "--set", "train.max_steps=5", "--run-dir", trained, "--resume")
    assert code == 0, err
    assert (trained / "checkpoints/other_tool/w.bin").read_text() == "x"
    assert sorted(p.name for p in (trained / "checkpoints").iterdir()) == sorted(
        ["README", "other_tool", latest_checkpoint(trained).name])


def test_a_run_directory_rnnlab_started_can_be_started_again(rnnlab):
    Path("fresh").mkdir()  # empty: rnnlab's to use
    assert rnnlab("train", "adding.toml", "--set", "train.max_steps=1", "--run-dir", "fresh")[0] == 0
    assert (Path("fresh") / "rnnlab-run.json").is_file()


# --------------------------------------------------------------------------- 3: resume with another optimizer
@pytest.mark.parametrize("change, line", [
    (["train.optimizer=sgd"], "the checkpoint holds the state of optimizer 'adam' and this run uses 'sgd', which "
                              "starts from a fresh state"),
    (["train.optimizer_args={amsgrad=true}"], "the checkpoint's optimizer state does not fit this run's Adam("),
], ids=["another optimizer", "other settings"])
def test_resume_with_another_optimizer_starts_it_afresh_and_says_so(rnnlab, trained, change, line):
    overrides = [a for o in ["train.max_steps=4", *change] for a in ("--set", o)]
    code, out, err = rnnlab("train", "adding.toml", *overrides, "--run-dir", trained, "--resume")
    assert code == 0, err
    assert line in out and line in (trained / "train.log").read_text()
    assert "which starts from a fresh state (no moments, step count 0)" in out
    assert json.loads((trained / "metrics.json").read_text())["steps"] == 4
    state = json.loads((latest_checkpoint(trained) / "state.json").read_text())
    assert state["optimizer"] == ("sgd" if change == ["train.optimizer=sgd"] else "adam")


# --------------------------------------------------------------------------- 4, 6, 17: checkpoints that cannot be used
def _edit_state(run: Path):
    path = latest_checkpoint(run) / "state.json"
    path.write_text(path.read_text().replace('"step": 2', '"step": 3'))
    return path, "does not match its SHA-256"


def _remove_optimizer(run: Path):
    path = latest_checkpoint(run) / "optimizer.npz"
    path.unlink()
    return path, "the latest checkpoint is incomplete"


def _garble_manifest(run: Path):
    path = run / "checkpoint.json"
    path.write_text(path.read_text()[:40])
    return path, "is not valid JSON"


def _object_array(run: Path):
    path = latest_checkpoint(run) / "optimizer.npz"
    np.savez(path, **{"lr": np.array([{"a": 1}], dtype=object)})  # what only pickle can read
    reseal(run, "optimizer.npz")
    return path, "holds an object array, which only pickle can read"


@pytest.mark.parametrize("damage", [_edit_state, _remove_optimizer, _garble_manifest, _object_array])
def test_resume_from_an_unusable_checkpoint_names_the_file_and_that_no_older_one_exists(rnnlab, one_line, trained,
                                                                                       damage):
    path, what = damage(trained)
    code, _, err = rnnlab("train", "adding.toml", "--set", "train.max_steps=4", "--run-dir", trained, "--resume")
    assert code == 1
    line = one_line(err)
    assert str(path) in line and what in line
    assert "rnnlab keeps only the latest checkpoint, so no older one can be used instead" in line


@pytest.mark.parametrize("where", ["absolute", "parent"])
def test_a_manifest_pointing_outside_the_run_is_refused(rnnlab, one_line, trained, where, tmp_path):
    outside = tmp_path / "elsewhere"  # a complete checkpoint: resuming from it would work, but it is not in the run
    latest_checkpoint(trained).rename(outside)
    manifest = json.loads((trained / "checkpoint.json").read_text())
    manifest["path"] = str(outside) if where == "absolute" else "checkpoints/../../elsewhere"
    (trained / "checkpoint.json").write_text(json.dumps(manifest))
    code, _, err = rnnlab("train", "adding.toml", "--set", "train.max_steps=4", "--run-dir", trained, "--resume")
    assert code == 1
    assert f"names {manifest['path']!r} as the latest checkpoint" in one_line(err) and "refuses to read it" in err
    assert "resumed from" not in (trained / "train.log").read_text()


# --------------------------------------------------------------------------- 7: Ctrl-C before the first checkpoint
def test_ctrl_c_before_the_first_checkpoint_says_to_start_again_and_that_works(rnnlab, one_line, monkeypatch):
    original = Trainer._update

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_update", interrupted)
    code, _, err = rnnlab("train", "adding.toml", "--set", "train.max_steps=3", "--run-dir", "cut")
    assert code == 130 and "--resume" not in err
    advice = "no checkpoint was written yet, so there is nothing to resume; start again with: "
    assert advice in one_line(err)
    argv = shlex.split(err.split(advice)[1])
    assert argv == ["rnnlab", "train", "adding.toml", "--set", "train.max_steps=3", "--run-dir", "cut"]
    monkeypatch.setattr(Trainer, "_update", original)
    code, _, err = rnnlab(*argv[1:])
    assert code == 0, err


# --------------------------------------------------------------------------- 8: divergence before checkpointing
def test_blown_up_weights_are_never_checkpointed_as_good(rnnlab, one_line):
    code, _, err = rnnlab("train", "adding.toml", "--set", "model.cell=rnn", "--set", "model.activation=relu",
                          "--set", "train.optimizer=sgd", "--set", "train.lr=3", "--run-dir", "boom")
    assert code == 1
    line = one_line(err)
    assert "not checkpointing: parameter" in line and "has blown up" in line
    assert "lower the learning rate or clip the gradients (clip_norm), then resume from that checkpoint" in line
    assert all(np.abs(w).max() < 1e6 for w in checkpoint_weights("boom").values())


def test_resuming_from_a_checkpoint_of_blown_up_weights_says_to_start_again(rnnlab, one_line, trained):
    model_dir = latest_checkpoint(trained) / "model"  # as an older rnnlab could write it
    model = model_io.load(model_dir)
    model.set_weights({name: p * 1e20 for name, p in model.named_parameters()})
    model_io.save(model, model_dir)
    code, _, err = rnnlab("train", "adding.toml", "--set", "train.max_steps=4", "--run-dir", trained, "--resume")
    assert code == 1
    assert "holds weights that diverged" in one_line(err) and "resuming from it would diverge again; start the run " \
                                                             "again" in err


def test_an_exploding_loss_stops_the_run_before_its_update(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((24, 5, 3)).astype(np.float32), rng.standard_normal((24, 1)).astype(np.float32)
    model = rl.Sequential([rl.SimpleRNN(4, input_size=3, seed=0), rl.Dense(1, seed=1)])
    seen = []

    class Weights(Callback):
        def on_batch_end(self, trainer, logs):
            seen.append({k: p.copy() for k, p in trainer.model.named_parameters()})

    config = TrainConfig(epochs=20, optimizer="sgd", lr=5.0, log_every=10_000)
    trainer = Trainer(model, "mse", config, rl.data.ArrayBatches(x, y, batch_size=4, shuffle=False), None,
                      tmp_path / "run", callbacks=[Weights()])
    with pytest.raises(rl.TrainingDiverged, match=r"step (\d+) .*: the loss exploded to .*, above its limit .* "
                                                  r"\(the limit is 10000 times the loss's running median") as info:
        trainer.run()
    assert info.value.step == trainer.step + 1 and info.value.parameter is None
    assert all(np.array_equal(p, seen[-1][k]) for k, p in model.named_parameters())  # the bad update never happened


# --------------------------------------------------------------------------- 10: Sequential.fit
def test_sequential_fit_reports_non_finite_weights_as_divergence_not_as_bad_input():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 5, 3)).astype(np.float32), rng.standard_normal((8, 1)).astype(np.float32)
    model = rl.Sequential([rl.LSTM(4, input_size=3, seed=0), rl.Dense(1, seed=1)])
    model.layers[0].params["W"][0, 0] = np.nan  # what an overflowing update leaves
    with pytest.raises(rl.TrainingDiverged, match=r"training diverged at epoch 1, step 1: the forward pass went "
                                                  r"non-finite: parameter '0.W' is not finite"):
        model.fit(x, y, optimizer="adam", batch_size=8)
    x[0, 0, 0] = np.nan  # the caller's own bad input is still named as such
    model = rl.Sequential([rl.LSTM(4, input_size=3, seed=0), rl.Dense(1, seed=1)])
    with pytest.raises(NonFiniteError, match="x contains NaN"):
        model.fit(x, y, optimizer="adam", batch_size=8)


# --------------------------------------------------------------------------- 15: the log before the screen
def test_train_log_gets_each_line_before_it_is_printed(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 5, 3)), rng.standard_normal((8, 1))
    trainer = Trainer(rl.Sequential([rl.SimpleRNN(3, input_size=3, seed=0, dtype="float64"),
                                     rl.Dense(1, seed=1, dtype="float64")]),
                      "mse", TrainConfig(epochs=1, log_every=1), rl.data.ArrayBatches(x, y, batch_size=4), None,
                      tmp_path / "run")
    printed = []

    def closed_pipe(message):  # `rnnlab train ... | head -1`: the first line goes out, the reader is gone
        if printed:
            raise BrokenPipeError(32, "Broken pipe")
        printed.append(message)

    trainer.print_fn = closed_pipe
    with pytest.raises(BrokenPipeError):
        trainer.run()
    log = (tmp_path / "run" / "train.log").read_text().splitlines()
    assert log[0] == printed[0] and len(log) >= 2 and log[1].startswith("epoch 1/1 batch 1/2 step 1: loss")


# --------------------------------------------------------------------------- 14: what killed writes leave
def test_temporary_files_of_killed_writes_are_removed_and_those_of_running_writers_kept(rnnlab, trained):
    dead = [".history.json.999999999-0badc0de.tmp", ".history.json.999999998.tmp",  # rnnlab's names, now and before
            "model/.weights.npz.0123456789abcdef.tmp"]
    running = [".history.json.1-0badc0de.tmp"]  # process 1 runs: its write may be in flight
    mine = ["history.json.tmp", ".notes.tmp"]  # not rnnlab's naming
    for name in dead + running + mine:
        (trained / name).write_text("x")
    code, _, err = rnnlab("train", "adding.toml", "--set", "train.epochs=3", "--run-dir", trained, "--resume")
    assert code == 0, err
    assert [name for name in dead + running + mine if (trained / name).exists()] == running + mine
