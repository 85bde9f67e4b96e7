"""Resuming the learning-curve experiments (``rnnlab experiment adding|copy --resume``): the checkpoints kept at
every evaluation, a resumed run equal to an uninterrupted one number for number, and the refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnlab import cli
from rnnlab.lab.experiments import EXPERIMENTS
from rnnlab.lab.experiments._loop import CurveCheckpoints
from rnnlab.training.checkpoint import CheckpointError


class _Stop(Exception):
    """Raised from the progress callback: the run is killed there."""


def _stopped_at(n: int):
    """A progress callback that raises :class:`_Stop` at its ``n``-th message."""
    seen = []

    def progress(message: str) -> None:
        seen.append(message)
        if len(seen) == n:
            raise _Stop(message)
    return progress


def _curves(results: dict) -> list[dict]:
    """The runs without their training time, which differs from run to run."""
    return [{k: v for k, v in run.items() if k != "seconds"} for run in results["runs"]]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """Each curve experiment's fast mode, run once without a stop."""
    root = tmp_path_factory.mktemp("whole")
    return {name: EXPERIMENTS[name].run(root / name) for name in ("adding", "copy")}


@pytest.mark.parametrize("name", ["adding", "copy"])
@pytest.mark.parametrize("stop", [2, 4, 5, 9])
def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path, uninterrupted, name, stop):
    out = tmp_path / "run"
    with pytest.raises(_Stop):
        EXPERIMENTS[name].run(out, progress=_stopped_at(stop))
    assert list((out / "checkpoints").glob("*.npz"))  # the progress is on disk
    assert not (out / "results.json").exists()
    messages = []
    resumed = EXPERIMENTS[name].run(out, resume=True, progress=messages.append)
    whole = uninterrupted[name]
    assert _curves(resumed) == _curves(whole)
    assert resumed["findings"] == whole["findings"]
    assert resumed["command"].split(" --out")[0] == whole["command"].split(" --out")[0]  # no --resume in it
    assert any("resumed at" in m or "ended in an earlier part" in m for m in messages)
    assert not (out / "checkpoints").exists()  # a finished run removes its own checkpoints
    saved = json.loads((out / "results.json").read_text("utf-8"))
    assert _curves(saved) == _curves(whole)
    # every part's training time is counted
    assert saved["elapsed_seconds"] >= max(run["seconds"] for run in saved["runs"])


def test_a_run_ended_in_an_earlier_part_is_not_trained_again(tmp_path):
    out = tmp_path / "run"
    n_messages = 4 + 1  # the first cell's 4 evaluations (0, 100, 200, 300 sequences), then the second's first
    with pytest.raises(_Stop):
        EXPERIMENTS["copy"].run(out, progress=_stopped_at(n_messages))
    messages = []
    EXPERIMENTS["copy"].run(out, resume=True, progress=messages.append)
    assert messages[0] == "copy LSTM T=5: ended in an earlier part (the budget of 300 training sequences was used)"
    assert not any(m.startswith("copy LSTM T=5: ") and "sequences," in m for m in messages)


def test_checkpoints_without_resume_are_refused_and_kept(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(_Stop):
        EXPERIMENTS["copy"].run(out, progress=_stopped_at(3))
    before = {p.name: p.read_bytes() for p in (out / "checkpoints").iterdir()}
    with pytest.raises(ValueError, match=r"holds the checkpoints of an unfinished run .*--resume"):
        EXPERIMENTS["copy"].run(out)
    assert {p.name: p.read_bytes() for p in (out / "checkpoints").iterdir()} == before


@pytest.mark.parametrize("option, value, differs", [
    ("lr", 0.02, "settings.lr: 0.01 in the checkpoint, 0.02 now"),
    ("seed", 3, "seed: 0 in the checkpoint, 3 now"),
    ("sequences", 400, "settings.max_sequences: 300 in the checkpoint, 400 now"),
])
def test_resuming_with_other_settings_names_them(tmp_path, option, value, differs):
    out = tmp_path / "run"
    with pytest.raises(_Stop):
        EXPERIMENTS["copy"].run(out, progress=_stopped_at(2))
    with pytest.raises(ValueError, match="written by a run with other settings") as info:
        EXPERIMENTS["copy"].run(out, resume=True, **{option: value})
    assert differs in str(info.value)


def test_nothing_to_resume(tmp_path):
    with pytest.raises(ValueError, match="nothing to resume"):
        EXPERIMENTS["copy"].run(tmp_path / "empty", resume=True)
    assert not (tmp_path / "empty").exists()  # refused before anything is written


def test_resume_of_an_experiment_without_checkpoints_is_refused(tmp_path):
    with pytest.raises(ValueError, match="resume applies to the learning-curve experiments .*adding, copy"):
        EXPERIMENTS["vanishing"].run(tmp_path / "v", resume=True)


def test_resume_must_be_a_bool(tmp_path):
    with pytest.raises(TypeError, match="resume must be a bool, got int 1"):
        EXPERIMENTS["copy"].run(tmp_path / "c", resume=1)


def test_an_unreadable_checkpoint_is_a_checkpoint_error(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(_Stop):
        EXPERIMENTS["copy"].run(out, progress=_stopped_at(2))
    (path,) = (out / "checkpoints").glob("*.npz")
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable learning-curve checkpoint"):
        EXPERIMENTS["copy"].run(out, resume=True)


def test_discard_removes_its_own_files_only(tmp_path):
    directory = tmp_path / "checkpoints"
    directory.mkdir()
    (directory / "copy-lstm-T5.npz").write_bytes(b"x")
    (directory / "notes.txt").write_text("mine", encoding="utf-8")
    (directory / "sub").mkdir()
    CurveCheckpoints(directory, {}).discard()
    assert sorted(p.name for p in directory.iterdir()) == ["notes.txt", "sub"]


def test_the_checkpoint_holds_no_pickle(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(_Stop):
        EXPERIMENTS["copy"].run(out, progress=_stopped_at(3))
    (path,) = (out / "checkpoints").glob("*.npz")
    with np.load(path, allow_pickle=False) as data:  # would raise on an object array
        meta = json.loads(str(data["meta"]))
        assert any(name.startswith("param.") for name in data.files)
    assert meta["format"] == "rnnlab-curve-checkpoint" and meta["progress"]["seen"] == 100


def test_cli_resume_without_checkpoints_is_one_line_and_exit_2(tmp_path, capsys):
    assert cli.main(["experiment", "copy", "--resume", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nothing to resume" in err


def test_cli_resume_continues_a_stopped_run(tmp_path, capsys, uninterrupted):
    out = tmp_path / "run"
    with pytest.raises(_Stop):
        EXPERIMENTS["copy"].run(out, progress=_stopped_at(7))  # the second cell at 200 sequences
    capsys.readouterr()
    assert cli.main(["experiment", "copy", "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert cli.main(["experiment", "copy", "--resume", "--out", str(out)]) == 0
    assert "resumed at 100 sequences" in capsys.readouterr().err
    saved = json.loads((out / "results.json").read_text("utf-8"))
    assert _curves(saved) == _curves(uninterrupted["copy"])


def test_resumable_says_whether_checkpoints_wait(tmp_path):
    out = tmp_path / "run"
    assert not EXPERIMENTS["copy"].resumable(out)
    with pytest.raises(_Stop):
        EXPERIMENTS["copy"].run(out, progress=_stopped_at(3))
    assert EXPERIMENTS["copy"].resumable(out) and EXPERIMENTS["adding"].resumable(out)  # the same folder layout
    assert not EXPERIMENTS["vanishing"].resumable(out)


def test_cli_ctrl_c_prints_the_resume_command(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    calls = {"n": 0}

    def interrupt_at_third(message: str) -> None:  # stands in for the CLI's progress printer: Ctrl-C there
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr("rnnlab.cli.experiment._progress", interrupt_at_third)
    code = cli.main(["experiment", "copy", "--lr", "0.02", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 130 and len(err.splitlines()) == 1
    assert err.endswith(f"continue with: rnnlab experiment copy --lr 0.02 --out {out} --resume")
    assert cli.main(["experiment", "copy", "--lr", "0.02", "--out", str(out), "--resume"]) == 0


def test_cli_ctrl_c_before_any_checkpoint_is_a_plain_interrupt(tmp_path, capsys, monkeypatch):
    def interrupt(message: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("rnnlab.cli.experiment._progress", interrupt)
    assert cli.main(["experiment", "copy", "--out", str(tmp_path / "run")]) == 130
    assert "--resume" not in capsys.readouterr().err
