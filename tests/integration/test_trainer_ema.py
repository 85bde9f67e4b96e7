"""``use_ema`` in the Trainer: validation, ``restore_best`` and the final model use the optimizer's moving
average of the weights, the checkpoints keep the iterates and the average, and a resumed run equals one
never stopped (see rnnlab.training.trainer, "Averaged weights")."""

from __future__ import annotations

import numpy as np
import pytest
from test_trainer_asgd import text_ids
from test_trainer_resume import Interrupt, assert_bitwise_equal, weights

from rnnlab.data.batches import LMStream
from rnnlab.io import files as model_io
from rnnlab.nn.layers import Dense, Embedding
from rnnlab.nn.recurrent import LSTM
from rnnlab.nn.sequential import Sequential
from rnnlab.training.callbacks import Callback, HistoryWriter
from rnnlab.training.trainer import TrainConfig, Trainer, latest_checkpoint

V, B, WINDOW = 7, 4, 6
ARGS = {"use_ema": True, "ema_momentum": 0.8}


def build(optimizer="adam", optimizer_args=ARGS, restore_best=False, model_seed=0):
    model = Sequential([Embedding(V, 5, seed=model_seed), LSTM(8, return_sequences=True, seed=model_seed + 1),
                        Dense(V, seed=model_seed + 2)])
    config = TrainConfig(epochs=3, optimizer=optimizer, lr=0.02, optimizer_args=optimizer_args, clip_norm=1.0,
                         metrics=["perplexity"], restore_best=restore_best, checkpoint_every_steps=4,
                         log_every=10_000)
    train = LMStream(text_ids(260, 0), batch_size=B, bptt=WINDOW, seed=1)
    val = LMStream(text_ids(120, 1), batch_size=2, bptt=WINDOW, seed=2)
    return model, config, train, val


class Record(Callback):
    """At each epoch's end: the iterates and the optimizer's moving averages."""

    def __init__(self):
        self.raw, self.avg = [], []

    def on_epoch_end(self, trainer, epoch, logs):
        self.raw.append(weights(trainer.model))
        self.avg.append({name: state["ema"].copy() for name, state in trainer.optimizer.state.items()})


@pytest.fixture(autouse=True)
def no_curves(monkeypatch):
    monkeypatch.setattr(HistoryWriter, "plot", lambda *args, **kwargs: [])


def val_loss_of(some_weights, val):
    model, config, train, _ = build(optimizer_args={})
    model.set_weights(some_weights)
    return Trainer(model, "cross_entropy", config, train, val, "unused-run-dir").evaluate(val)["loss"]


@pytest.mark.parametrize("restore_best", [False, True])
def test_validation_best_weights_and_final_model_are_the_moving_averages(tmp_path, restore_best):
    model, config, train, val = build(restore_best=restore_best)
    record = Record()
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
    model, config, train, val = build(optimizer)
    expected = Trainer(model, "cross_entropy", config, train, val, tmp_path / "reference").run()
    expected_weights = weights(model)
    for at_step in (6, 17):
        run_dir = tmp_path / f"stopped-at-{at_step}"
        model, config, train, val = build(optimizer)
        with pytest.raises(KeyboardInterrupt):
            Trainer(model, "cross_entropy", config, train, val, run_dir, callbacks=[Interrupt(at_step)]).run()
        model, config, train, val = build(optimizer, model_seed=50)
        history = Trainer(model, "cross_entropy", config, train, val, run_dir).run(resume=True)
        assert_bitwise_equal(weights(model), expected_weights)
        assert history["val_loss"] == expected["val_loss"] and history["loss"] == expected["loss"]


def test_without_ema_the_model_ends_with_its_iterates(tmp_path):
    model, config, train, val = build(optimizer_args={})
    trainer = Trainer(model, "cross_entropy", config, train, val, tmp_path / "run")
    trainer.run()
    assert_bitwise_equal(weights(model), weights(model_io.load(latest_checkpoint(tmp_path / "run") / "model")))
    assert "moving average" not in (tmp_path / "run" / "train.log").read_text()
