"""``use_ema`` in the Trainer: validation, ``restore_best`` and the final model use the optimizer's moving
average of the weights, the checkpoints keep the iterates and the average, and a resumed run equals one
never stopped (see rnnlab.training.trainer, "Averaged weights"). The ASGD tests' helpers build the runs."""

from __future__ import annotations

import numpy as np
import pytest
from test_trainer_asgd import Record, assert_resumes_bitwise, no_curves, val_loss_of  # noqa: F401 (no_curves: autouse)
from test_trainer_asgd import build as build_asgd
from test_trainer_resume import assert_bitwise_equal, weights

from rnnlab.io import files as model_io
from rnnlab.training.trainer import Trainer, latest_checkpoint

ARGS = {"use_ema": True, "ema_momentum": 0.8}


def build(optimizer="adam", optimizer_args=ARGS, restore_best=False, model_seed=0):
    return build_asgd(optimizer_args, restore_best=restore_best, model_seed=model_seed, optimizer=optimizer, lr=0.02)


@pytest.mark.parametrize("restore_best", [False, True])
def test_validation_best_weights_and_final_model_are_the_moving_averages(tmp_path, restore_best):
    model, config, train, val = build(restore_best=restore_best)
    record = Record("ema")
    trainer = Trainer(model, "cross_entropy", config, train, val, tmp_path / "run", callbacks=[record])
    history = trainer.run()
    for epoch in range(3):
        assert not np.allclose(record.avg[epoch]["1.W"], record.raw[epoch]["1.W"])
        assert history["val_loss"][epoch] == pytest.approx(val_loss_of(record.avg[epoch], val), rel=1e-12, abs=0)
    assert history["val_loss"][2] != pytest.approx(val_loss_of(record.raw[2], val), rel=1e-9)
    best = int(np.argmin(history["val_loss"])) if restore_best else 2
    assert_bitwise_equal(weights(model), record.avg[best])
    assert_bitwise_equal(weights(model_io.load(latest_checkpoint(tmp_path / "run") / "model")), record.raw[2])
    log = (tmp_path / "run" / "train.log").read_text()
    assert "the model holds the exponential moving average of the weights (ema_momentum 0.8)" in log


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_resume_is_bitwise_identical(tmp_path, optimizer):
    assert_resumes_bitwise(tmp_path, lambda **kw: build(optimizer, **kw), stops=(6, 17))


def test_without_ema_the_model_ends_with_its_iterates(tmp_path):
    model, config, train, val = build(optimizer_args={})
    Trainer(model, "cross_entropy", config, train, val, tmp_path / "run").run()
    assert_bitwise_equal(weights(model), weights(model_io.load(latest_checkpoint(tmp_path / "run") / "model")))
    assert "moving average" not in (tmp_path / "run" / "train.log").read_text()
