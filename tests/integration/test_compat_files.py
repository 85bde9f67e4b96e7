"""Run directories written by rnnlab 0.1.0 still load, resume and predict.

``tests/fixtures/v0_1_0/`` holds what a user of 0.1.0 has on disk (``make.py`` there wrote it):
``adding_cut/``, an adding-problem run interrupted after step 8 of 12, with ``adding_whole.npz``, the
weights of the same run left uninterrupted; and ``uci_run/``, a bidirectional GRU sentiment run with its
vocabulary, with ``uci_predict.json``, what ``rnnlab predict`` printed for three sentences. The tests copy
them to ``tmp_path`` first: the fixtures are never written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import rnnlab
from rnnlab import cli
from rnnlab.nn import kernels

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "v0_1_0"
PREDICT = json.loads((FIXTURES / "uci_predict.json").read_text(encoding="utf-8"))


def _copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def _same_kernels_as_at_creation() -> bool:
    """The fixtures were made with the backend ``PREDICT["backend"]`` and numba installed, so float32 layers
    ran the numba kernels; the same kernels give the same bits."""
    return kernels.available() and kernels.backend() in (PREDICT["backend"], "numba")


def _weights(path) -> dict:
    return dict(rnnlab.load(path).named_parameters())


def test_an_interrupted_0_1_0_run_resumes_to_the_weights_of_the_uninterrupted_run(tmp_path, capsys):
    run = _copy("adding_cut", tmp_path)
    assert json.loads((run / "checkpoint.json").read_text())["step"] == 8
    code = cli.main(["train", str(run / "config.toml"), "--run-dir", str(run), "--resume"])
    _, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads((run / "metrics.json").read_text())["steps"] == 12
    assert "resumed from" in (run / "train.log").read_text()
    resumed = _weights(run / "model")
    with np.load(FIXTURES / "adding_whole.npz") as whole:
        assert sorted(whole.files) == sorted(resumed)
        for name in whole.files:
            assert resumed[name].dtype == whole[name].dtype == np.float32, name
            # float32 rounding, no more: the bias gradients' summation order (a GEMV since 0.1.0) and, on
            # the NumPy path, the step kernels round differently from the code that made the fixtures
            # (bit-identical resume within one version is tests/integration/test_trainer_resume.py's)
            np.testing.assert_allclose(resumed[name], whole[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_a_0_1_0_model_directory_loads(tmp_path):
    run = _copy("uci_run", tmp_path)
    model = rnnlab.load(run / "model")
    assert isinstance(model, rnnlab.Sequential)
    assert any(isinstance(m, rnnlab.Bidirectional) for _, m in model.named_modules())
    assert any(isinstance(m, rnnlab.GRU) for _, m in model.named_modules())
    with np.load(FIXTURES / "uci_run" / "model" / "weights.npz") as stored:
        params = dict(model.named_parameters())
        assert len(params) == len(stored.files)
        assert sum(p.size for p in params.values()) == sum(stored[f].size for f in stored.files)


def test_a_0_1_0_run_predicts_what_0_1_0_printed(tmp_path, capsys):
    run = _copy("uci_run", tmp_path)
    assert cli.main(["predict", str(run), *PREDICT["sentences"]]) == 0
    out, _ = capsys.readouterr()
    if _same_kernels_as_at_creation():
        assert out == PREDICT["stdout"]
    else:  # another backend: the same labels and texts, probabilities to float32 rounding
        rows, expected = [line.split("\t") for line in out.splitlines()], [
            line.split("\t") for line in PREDICT["stdout"].splitlines()]
        assert [(r[0], r[2]) for r in rows] == [(e[0], e[2]) for e in expected]
        assert [float(r[1]) for r in rows[1:]] == pytest.approx([float(e[1]) for e in expected[1:]], abs=2e-4)
