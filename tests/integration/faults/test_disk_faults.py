"""A full disk while a checkpoint is written, and a read-only run directory, on small tmpfs mounts.

Mounting needs root (as on CI); elsewhere these tests skip and say so.
"""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from rnnlab.io import files as model_io
from rnnlab.training.callbacks import Checkpointer, HistoryWriter


@pytest.fixture
def tmpfs():
    """``tmpfs(path, options)`` mounts a tmpfs at ``path`` (``remount`` in the options changes a mount); all are
    unmounted afterwards. Skips the test where mounting is not permitted."""
    mounted = []

    def mount(path: Path, options: str) -> Path:
        path.mkdir(exist_ok=True)
        if shutil.which("mount") is None:
            pytest.skip("no mount command: the full-disk and read-only tests mount a small tmpfs")
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True,
                                text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (the tests run as root on CI): {result.stderr.strip()}")
        if "remount" not in options:
            mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path) -> Path:
    """Fill the file system of ``directory`` to the last byte; returns the file that holds it."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as f:  # unbuffered: nothing left to fail at close
        for size in (1 << 16, 1 << 10, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC

    return filler


def test_a_full_disk_while_a_checkpoint_is_written_is_one_line_and_the_run_resumes(rnnlab, one_line, tmpfs,
                                                                                   monkeypatch, tmp_path):
    disk = tmpfs(tmp_path / "disk", "size=4m")
    monkeypatch.setattr(HistoryWriter, "plot", lambda *args, **kwargs: [])
    original = Checkpointer.on_batch_end
    filler = []

    def fill_then_checkpoint(self, trainer, logs):
        if trainer.step == 3 and not filler:
            filler.append(fill(disk))
        original(self, trainer, logs)

    monkeypatch.setattr(Checkpointer, "on_batch_end", fill_then_checkpoint)
    code, _, err = rnnlab("train", "adding.toml", "--run-dir", disk / "run")
    assert code == 1
    line = one_line(err)
    assert line.startswith(f"rnnlab train: error: cannot write a checkpoint (step 3) in '{disk / 'run'}'")
    assert "No space left on device; the last good checkpoint, " in line and "step000000002" in line
    assert json.loads((disk / "run/checkpoint.json").read_text())["step"] == 2
    leftovers = [p.name for p in (disk / "run").rglob("*") if p.name.startswith(".")]
    assert leftovers == []  # the partial checkpoint went with the error

    filler[0].unlink()  # space again: the run goes on from its last good checkpoint
    monkeypatch.setattr(Checkpointer, "on_batch_end", original)
    code, _, err = rnnlab("train", "adding.toml", "--run-dir", disk / "run", "--resume")
    assert code == 0, err
    assert rnnlab("train", "adding.toml", "--run-dir", "whole")[0] == 0
    whole, resumed = (dict(model_io.load(d).named_parameters()) for d in ("whole/model", disk / "run/model"))
    assert all(np.array_equal(whole[k], resumed[k]) for k in whole)


def test_a_read_only_run_directory_is_one_line_for_a_new_run_and_for_a_resumed_one(rnnlab, one_line, tmpfs,
                                                                                  tmp_path):
    read_only = tmpfs(tmp_path / "ro", "size=1m,ro")
    code, _, err = rnnlab("train", "adding.toml", "--run-dir", read_only / "run")
    assert code == 1
    assert one_line(err) == (f"rnnlab train: error: cannot write the run directory's mark in '{read_only / 'run'}' "
                             f"('{read_only / 'run'}'): Read-only file system")

    disk = tmpfs(tmp_path / "disk", "size=4m")
    assert rnnlab("train", "adding.toml", "--set", "train.max_steps=2", "--run-dir", disk / "run")[0] == 0
    tmpfs(disk, "remount,ro")
    code, _, err = rnnlab("train", "adding.toml", "--set", "train.max_steps=4", "--run-dir", disk / "run", "--resume")
    assert code == 1
    assert one_line(err).startswith(f"rnnlab train: error: cannot write the run's configuration in '{disk / 'run'}'")
    assert err.rstrip().endswith("Read-only file system")
