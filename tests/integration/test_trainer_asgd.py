"""Averaged SGD in the Trainer: evaluation, restore_best and the final model use the optimizer's average;
NT-ASGD starts averaging when the validation loss stalls; a resumed run equals one never stopped, across
the start of the averaging (see rnnlab.training.trainer, "Averaged weights")."""

from __future__ import annotations

import numpy as np
import pytest
from test_trainer_resume import Interrupt, assert_bitwise_equal, weights

from rnnlab.data.batches import LMStream
from rnnlab.io import files as model_io
from rnnlab.nn.layers import Dense, Embedding
from rnnlab.nn.recurrent import LSTM
from rnnlab.nn.sequential import Sequential
from rnnlab.training.callbacks import Callback, HistoryWriter
from rnnlab.training.trainer import TrainConfig, Trainer, latest_checkpoint

V, B, WINDOW = 7, 4, 6
STEPS_PER_EPOCH = 11  # 260 tokens in batches of 4 x 6


def text_ids(n, seed, words=((1, 2, 3), (4, 5), (1, 6), (2, 4, 5, 3))):
    rng = np.random.default_rng(seed)
    ids = []
    while len(ids) < n:
        ids += list(words[rng.integers(len(words))]) + [0]
    return np.array(ids[:n])


def build(optimizer_args, epochs=3, restore_best=False, model_seed=0, val_words=None, optimizer="asgd", lr=0.5):
    model = Sequential([Embedding(V, 5, seed=model_seed), LSTM(8, return_sequences=True, seed=model_seed + 1),
                        Dense(V, seed=model_seed + 2)])
    config = TrainConfig(epochs=epochs, optimizer=optimizer, lr=lr, optimizer_args=optimizer_args, clip_norm=1.0,
                         metrics=["perplexity"], restore_best=restore_best, checkpoint_every_steps=4,
                         log_every=10_000)
    train = LMStream(text_ids(260, 0), batch_size=B, bptt=WINDOW, seed=1)
    val_text = text_ids(120, 1) if val_words is None else text_ids(120, 1, val_words)
    val = LMStream(val_text, batch_size=2, bptt=WINDOW, seed=2)
    return model, config, train, val


class Record(Callback):
    """At each epoch's end: the iterates and the optimizer's averages (its state ``buffer``)."""

    def __init__(self, buffer="ax"):
        self.raw, self.avg, self.buffer = [], [], buffer

    def on_epoch_end(self, trainer, epoch, logs):
        self.raw.append(weights(trainer.model))
        self.avg.append({name: state[self.buffer].copy() for name, state in trainer.optimizer.state.items()})


@pytest.fixture(autouse=True)
def no_curves(monkeypatch):
    monkeypatch.setattr(HistoryWriter, "plot", lambda *args, **kwargs: [])


def val_loss_of(avg_weights, val):
    """The validation loss of a model holding ``avg_weights``, by a trainer that does not run (no swap)."""
    model, config, train, _ = build({"lambd": 0.0})
    model.set_weights(avg_weights)
    return Trainer(model, "cross_entropy", config, train, val, "unused-run-dir").evaluate(val)["loss"]


@pytest.mark.parametrize("restore_best", [False, True])
def test_validation_best_weights_and_final_model_are_the_averages(tmp_path, restore_best):
    t0 = STEPS_PER_EPOCH + 3  # averaging from step 16, in the second epoch
    model, config, train, val = build({"lambd": 0.0, "t0": t0}, restore_best=restore_best)
    record = Record()
    trainer = Trainer(model, "cross_entropy", config, train, val, tmp_path / "run", callbacks=[record])
    history = trainer.run()
    # before the averaging starts, the average is the iterate; after, it is not
    assert_bitwise_equal(record.avg[0], record.raw[0])
    for epoch in (1, 2):
        assert not np.allclose(record.avg[epoch]["1.W"], record.raw[epoch]["1.W"])
    # every epoch validated the averaged weights
    for epoch in range(3):
        assert history["val_loss"][epoch] == pytest.approx(val_loss_of(record.avg[epoch], val), rel=1e-12, abs=0)
    assert history["val_loss"][2] != pytest.approx(val_loss_of(record.raw[2], val), rel=1e-9)
    # the model ends with the averages (restore_best: the best epoch's), the checkpoint keeps the iterates
    best = int(np.argmin(history["val_loss"])) if restore_best else 2
    assert_bitwise_equal(weights(model), record.avg[best])
    assert_bitwise_equal(weights(model_io.load(latest_checkpoint(tmp_path / "run") / "model")), record.raw[2])
    assert trainer.evaluate(val)["loss"] == pytest.approx(history["val_loss"][best], rel=1e-12, abs=0)
    assert "the model holds the weights averaged since step 16" in (tmp_path / "run" / "train.log").read_text()


def test_resume_across_the_start_of_averaging_is_bitwise_identical(tmp_path):
    args = {"lambd": 1e-3, "alpha": 0.75, "t0": 14, "weight_decay": 1e-4}
    assert_resumes_bitwise(tmp_path, lambda **kw: build(args, **kw), stops=(10, 21))  # before the averaging, during it


def assert_resumes_bitwise(tmp_path, make, stops):
    """Runs stopped at each step of ``stops`` and resumed (from models built with another seed by
    ``make(model_seed=...)``) end with the weights and history of the run ``make()`` builds, never stopped."""
    model, config, train, val = make()
    expected = Trainer(model, "cross_entropy", config, train, val, tmp_path / "reference").run()
    expected_weights = weights(model)
    for at_step in stops:
        run_dir = tmp_path / f"stopped-at-{at_step}"
        model, config, train, val = make()
        with pytest.raises(KeyboardInterrupt):
            Trainer(model, "cross_entropy", config, train, val, run_dir, callbacks=[Interrupt(at_step)]).run()
        model, config, train, val = make(model_seed=50)
        history = Trainer(model, "cross_entropy", config, train, val, run_dir).run(resume=True)
        assert_bitwise_equal(weights(model), expected_weights)
        assert history["val_loss"] == expected["val_loss"] and history["loss"] == expected["loss"]


# validation text that training makes ever less likely (6 follows only 1 there): its loss rises, so NT-ASGD starts
STALLING = ((6, 6, 6, 6),)


def test_nt_asgd_starts_averaging_when_validation_stalls_and_resume_remembers_it(tmp_path):
    args = {"lambd": 0.0, "nonmono": 1}
    model, config, train, val = build(args, epochs=4, val_words=STALLING)
    trainer = Trainer(model, "cross_entropy", config, train, val, tmp_path / "reference")
    expected = trainer.run()
    losses = expected["val_loss"]
    assert losses[2] > losses[0]  # epoch 3 is worse than epoch 1: the rule fires after epoch 3 (not before:
    # epoch 2 has only nonmono epochs before it)
    assert trainer.optimizer.t0 == 3 * STEPS_PER_EPOCH
    assert "averaging the weights from step 35 on" in (tmp_path / "reference" / "train.log").read_text()
    expected_weights = weights(model)

    run_dir = tmp_path / "stopped"
    model, config, train, val = build(args, epochs=4, val_words=STALLING)
    with pytest.raises(KeyboardInterrupt):
        Trainer(model, "cross_entropy", config, train, val, run_dir, callbacks=[Interrupt(40)]).run()
    model, config, train, val = build(args, epochs=4, val_words=STALLING, model_seed=50)
    resumed = Trainer(model, "cross_entropy", config, train, val, run_dir)
    history = resumed.run(resume=True)
    assert resumed.optimizer.t0 == 3 * STEPS_PER_EPOCH
    assert_bitwise_equal(weights(model), expected_weights)
    assert history["val_loss"] == expected["val_loss"]


@pytest.mark.parametrize("losses, fires", [
    ([3.0, 2.0, 2.5], False),  # not more than nonmono + 1 = 3 epochs yet
    ([3.0, 2.0, 2.5, 2.9], False),  # worse than its predecessors, not than epoch 1 (3.0)
    ([3.0, 2.0, 2.5, 3.5], True),
    ([2.0, 3.0, 2.5, 2.1], True),  # the best before the last 2 epochs is epoch 1's 2.0
])
def test_the_non_monotone_rule(tmp_path, losses, fires):
    model, config, train, val = build({"lambd": 0.0, "nonmono": 2})
    trainer = Trainer(model, "cross_entropy", config, train, val, tmp_path)
    trainer.history = {"val_loss": list(losses)}
    trainer._start_averaging_if_stalled()
    assert trainer.optimizer.averaging is fires
    assert trainer.optimizer.t0 == (0.0 if fires else 1e6)


def test_nonmono_needs_validation_data():
    with pytest.raises(ValueError, match=r"val is None, but the config reads validation results: "
                                         r"optimizer_args nonmono=3 \(NT-ASGD watches val_loss\)"):
        model, config, train, _ = build({"nonmono": 3})
        Trainer(model, "cross_entropy", config, train, None, "unused")
