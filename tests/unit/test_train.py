"""TrainConfig validation, the Trainer's loop, history files, progress, early stopping, divergence."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from dataclasses import dataclass

import numpy as np
import pytest

from rnnlab._errors import TrainingDiverged
from rnnlab.nn.layers import Dense, Dropout
from rnnlab.nn.losses import get as get_loss
from rnnlab.nn.recurrent import SimpleRNN
from rnnlab.nn.sequential import Sequential
from rnnlab.optim.optimizers import Optimizer
from rnnlab.training.callbacks import Callback, EarlyStopping
from rnnlab.training.metrics import Metric
from rnnlab.training.trainer import TrainConfig, Trainer, latest_checkpoint


# ---------------------------------------------------------------------- stand-ins for rnnlab.data
@dataclass
class Batch:
    x: np.ndarray
    y: np.ndarray
    mask: np.ndarray | None = None
    new_sequence: bool = True


class FixedBatches:
    def __init__(self, batches):
        self.batches = list(batches)

    def __len__(self):
        return len(self.batches)

    def set_epoch(self, epoch):
        self.epoch = epoch

    def batches_from(self, epoch, start):
        return iter(self.batches[start:])


def regression_batches(sizes=(4, 4, 3), T=5, D=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return FixedBatches(Batch(rng.standard_normal((n, T, D)).astype(dtype), rng.standard_normal((n, 1)).astype(dtype))
                        for n in sizes)


def classification_batches(sizes=(5, 3), T=4, D=3, C=3, seed=0):
    rng = np.random.default_rng(seed)
    return FixedBatches(Batch(rng.standard_normal((n, T, D)), rng.integers(0, C, n)) for n in sizes)


def rnn(out=1, seed=0, dtype="float64"):
    return Sequential([SimpleRNN(4, input_size=3, seed=seed, dtype=dtype), Dense(out, seed=seed + 1, dtype=dtype)])


def quiet(**kwargs):
    return TrainConfig(**{"log_every": 10_000, **kwargs})


class Recording(Callback):
    """Remembers every hook call, the batch logs and a copy of the weights after each step."""

    def __init__(self):
        self.calls, self.batch_logs, self.weights = [], [], []

    def on_train_begin(self, trainer):
        self.calls.append("train_begin")
        self.weights.append({k: v.copy() for k, v in trainer.model.named_parameters()})

    def on_epoch_begin(self, trainer, epoch):
        self.calls.append(f"epoch_begin {epoch}")

    def on_batch_end(self, trainer, logs):
        self.calls.append("batch")
        self.batch_logs.append(dict(logs))
        self.weights.append({k: v.copy() for k, v in trainer.model.named_parameters()})

    def on_epoch_end(self, trainer, epoch, logs):
        self.calls.append(f"epoch_end {epoch}")

    def on_train_end(self, trainer):
        self.calls.append(f"train_end {type(trainer.error).__name__}")


# ---------------------------------------------------------------------- TrainConfig
def test_config_round_trips_through_a_dict_and_json():
    config = TrainConfig(epochs=3, optimizer="sgd", optimizer_args={"momentum": 0.9}, lr=1.0, clip_norm=5.0,
                         bptt_k1=5, bptt_k2=10, schedule="step", schedule_args={"decay_after": 4, "factor": 0.5},
                         patience=2, monitor="val_accuracy", metrics=["accuracy"], checkpoint_every_steps=100)
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    assert again.truncation == (5, 10) and TrainConfig(bptt=7).truncation == (7, 7) and TrainConfig().truncation is None


def test_unknown_config_keys_are_named_with_the_valid_ones():
    with pytest.raises(ValueError,
                       match=r"unknown TrainConfig key\(s\) \['epoch', 'learning_rate'\]; valid keys are epochs, "):
        TrainConfig.from_dict({"epoch": 3, "learning_rate": 0.1})


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"epochs": 0}, ValueError, "TrainConfig.epochs must be an int >= 1, got int 0"),
    ({"epochs": 2.5}, TypeError, "TrainConfig.epochs must be an int >= 1, got float 2.5"),
    ({"optimizer": "adamm"}, ValueError, "TrainConfig.optimizer must be one of 'sgd', 'adam', .*; got 'adamm'"),
    ({"lr": -0.1}, ValueError, r"TrainConfig.lr must be a finite number > 0, got float -0.1"),
    ({"lr": float("nan")}, ValueError, "TrainConfig.lr must be a finite number > 0"),
    ({"optimizer": "sgd", "optimizer_args": {"momentum": 1.5}}, ValueError,
     r"TrainConfig.optimizer_args \{'momentum': 1.5\} do not suit optimizer 'sgd': momentum must be in \[0, 1\)"),
    ({"optimizer_args": {"lr": 0.1}}, ValueError, "must not contain 'lr'"),
    ({"clip_norm": 0}, ValueError, "TrainConfig.clip_norm must be a finite number > 0 or None, got float 0.0"),
    ({"bptt": 0}, ValueError, "TrainConfig.bptt must be an int >= 1 or None, got int 0"),
    ({"bptt": 5, "bptt_k1": 5, "bptt_k2": 5}, ValueError, "either bptt .* or bptt_k1 and bptt_k2, not both"),
    ({"bptt_k1": 5}, ValueError, "bptt_k1 and bptt_k2 go together; got bptt_k1=5, bptt_k2=None"),
    ({"bptt_k1": 5, "bptt_k2": 3}, ValueError, "bptt_k2 must be >= bptt_k1 .*got bptt_k1=5, bptt_k2=3"),
    ({"schedule": "linear"}, ValueError, "TrainConfig.schedule must be one of 'constant', 'step', .*; got 'linear'"),
    ({"schedule": "step", "schedule_args": {"factor": 2}}, ValueError,
     r"TrainConfig.schedule_args \{'factor': 2\} do not suit schedule 'step': factor must be"),
    ({"schedule": "cosine", "schedule_args": {"t_mx": 3}}, TypeError, r"unknown argument\(s\) \['t_mx'\]"),
    ({"monitor": "val_accuracy"}, ValueError,
     "TrainConfig.monitor must be one of 'loss', 'val_loss'; got 'val_accuracy'"),
    ({"mode": "up"}, ValueError, "TrainConfig.mode must be one of 'auto', 'min', 'max'; got 'up'"),
    ({"patience": 0}, ValueError, "TrainConfig.patience must be an int >= 1 or None, got int 0"),
    ({"metrics": "accuracy"}, TypeError, "TrainConfig.metrics must be a list of metric names, got str 'accuracy'"),
    ({"metrics": ["accuracy", "accuracy"]}, ValueError, "lists a metric twice"),
    ({"metrics": ["val_accuracy"]}, ValueError, "invalid metric name 'val_accuracy'"),
    ({"seed": -1}, ValueError, "TrainConfig.seed must be an int >= 0, got int -1"),
    ({"checkpoint_every_steps": 0}, ValueError, "TrainConfig.checkpoint_every_steps must be an int >= 1 or None"),
    ({"log_every": True}, TypeError, "TrainConfig.log_every must be an int >= 1, got bool True"),
    ({"max_steps": 0}, ValueError, "TrainConfig.max_steps must be an int >= 1 or None, got int 0"),
    ({"schedule": "plateau", "schedule_args": {"monitor": "val_mae"}}, ValueError,
     r"TrainConfig.schedule_args\['monitor'\] must be one of 'loss', 'val_loss'; got 'val_mae'"),
])
def test_bad_config_fields_are_named_with_the_value_and_the_choices(kwargs, error, match):
    with pytest.raises(error, match=match):
        TrainConfig(**kwargs)


def test_trainer_refuses_inputs_it_cannot_use(tmp_path):
    data = regression_batches()
    with pytest.raises(ValueError, match=r"val is None, but the config reads validation results: "
                                         r"monitor='val_loss' \(early stopping\)"):
        Trainer(rnn(), "mse", quiet(patience=2), data, None, tmp_path)
    with pytest.raises(TypeError, match="train must follow the Batches protocol .* list lacks batches_from"):
        Trainer(rnn(), "mse", quiet(), [1, 2], None, tmp_path)
    with pytest.raises(ValueError, match=r"metrics \['f1'\] are given to the Trainer but not listed in config.metrics"):
        Trainer(rnn(), "mse", quiet(), data, None, tmp_path, metrics={"f1": Metric()})
    with pytest.raises(ValueError, match="config.metrics: metric must be one of 'accuracy', .*; got 'f1'"):
        Trainer(rnn(), "mse", quiet(metrics=["f1"]), data, None, tmp_path)
    with pytest.raises(TypeError, match="metric 'f1' must be an rnnlab.metrics.Metric, got function"):
        Trainer(rnn(), "mse", quiet(metrics=["f1"]), data, None, tmp_path, metrics={"f1": lambda *a: 0.0})
    with pytest.raises(ValueError, match="loss must be one of"):
        Trainer(rnn(), "msee", quiet(), data, None, tmp_path)


# ---------------------------------------------------------------------- the loop and the history
def accuracy(y_pred, y_true):
    return float((y_pred.argmax(-1) == y_true).mean())


class Frozen(Optimizer):
    """Leaves every weight as it is, so epoch results can be recomputed from the final model."""

    def __init__(self):
        super().__init__(lr=1.0)

    def step(self, model):
        pass


def test_history_holds_weighted_epoch_means_and_is_written_as_json_and_csv(tmp_path):
    train, val = classification_batches(sizes=(5, 3)), classification_batches(sizes=(4, 2, 1), seed=1)
    rec = Recording()
    direct_val = []

    class DirectValidation(Callback):
        def on_epoch_end(self, trainer, epoch, logs):  # the same weights validation just used
            x = np.concatenate([b.x for b in val.batches])
            y = np.concatenate([b.y for b in val.batches])
            y_pred = trainer.model(x)
            direct_val.append((float(get_loss("cross_entropy")(y_pred, y)), accuracy(y_pred, y)))

    config = quiet(epochs=3, lr=0.05, metrics=["accuracy"])
    history = Trainer(rnn(out=3), "cross_entropy", config, train, val, tmp_path,
                      callbacks=[rec, DirectValidation()]).run()
    assert history["epoch"] == [1, 2, 3] and history["step"] == [2, 4, 6] and history["lr"] == [0.05] * 3
    losses = [b["loss"] for b in rec.batch_logs]
    for e in range(3):  # batch means weighted by batch size 5 and 3
        assert history["loss"][e] == pytest.approx((5 * losses[2 * e] + 3 * losses[2 * e + 1]) / 8, rel=1e-12)
        assert history["val_loss"][e] == pytest.approx(direct_val[e][0], rel=1e-10)
        assert history["val_accuracy"][e] == pytest.approx(direct_val[e][1], rel=1e-12)
    assert json.loads((tmp_path / "history.json").read_text()) == history
    with open(tmp_path / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(history)
    assert [float(r["val_loss"]) for r in rows] == history["val_loss"]  # written exactly (repr)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert rec.calls[:3] == ["train_begin", "epoch_begin 0", "batch"] and rec.calls[-1] == "train_end NoneType"
    saved = json.loads((tmp_path / "train_config.json").read_text())
    assert saved["config"] == config.to_dict() and saved["loss"]["class_name"] == "SoftmaxCrossEntropy"


def test_training_metrics_are_exact_over_the_epoch_not_means_of_batch_values(tmp_path):
    rng = np.random.default_rng(0)
    model = Sequential([SimpleRNN(4, input_size=3, return_sequences=True, seed=0, dtype="float64"),
                        Dense(5, seed=1, dtype="float64")])
    sizes, T = (6, 2, 3), 4
    batches = []
    for n in sizes:  # unequal batches, some padding
        mask = rng.random((n, T)) > 0.3
        mask[:, 0] = True
        batches.append(Batch(rng.standard_normal((n, T, 3)), rng.integers(0, 5, (n, T)), mask))
    trainer = Trainer(model, "cross_entropy", quiet(epochs=1, metrics=["accuracy", "perplexity"]),
                      FixedBatches(batches), None, tmp_path)
    trainer.optimizer = Frozen()
    history = trainer.run()
    right = nll = count = 0
    for b in batches:
        logits = model(b.x, mask=b.mask)  # (n, T, 5)
        logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        picked = np.take_along_axis(logp, b.y[..., None], -1)[..., 0]
        right += int(((logits.argmax(-1) == b.y) & b.mask).sum())
        nll -= float(picked[b.mask].sum())
        count += int(b.mask.sum())
    assert history["accuracy"][0] == pytest.approx(right / count, rel=1e-12)
    assert history["perplexity"][0] == pytest.approx(math.exp(nll / count), rel=1e-12)
    assert history["loss"][0] == pytest.approx(nll / count, rel=1e-12)  # batch losses weighted by valid steps


def test_perplexity_equals_exp_of_the_epoch_loss_while_the_weights_change(tmp_path):
    train = classification_batches(sizes=(6, 2, 3))
    history = Trainer(rnn(out=3), "cross_entropy", quiet(epochs=2, lr=0.1, metrics=["perplexity"]), train, train,
                      tmp_path).run()
    for e in range(2):
        assert history["perplexity"][e] == pytest.approx(math.exp(history["loss"][e]), rel=1e-12)
        assert history["val_perplexity"][e] == pytest.approx(math.exp(history["val_loss"][e]), rel=1e-12)


def test_masked_targets_weigh_by_their_valid_steps(tmp_path):
    rng = np.random.default_rng(0)
    model = Sequential([SimpleRNN(4, input_size=3, return_sequences=True, seed=0, dtype="float64"),
                        Dense(1, seed=1, dtype="float64")])
    x = rng.standard_normal((2, 6, 3))
    mask = np.ones((2, 6), bool)
    mask[0, 2:] = False  # 8 valid steps of 12
    first, second = Batch(x, rng.standard_normal((2, 6, 1)), mask), Batch(x, rng.standard_normal((2, 6, 1)))
    rec = Recording()
    history = Trainer(model, "mse", quiet(epochs=1), FixedBatches([first, second]), None, tmp_path,
                      callbacks=[rec]).run()
    l1, l2 = (b["loss"] for b in rec.batch_logs)
    assert history["loss"][0] == pytest.approx((8 * l1 + 12 * l2) / 20, rel=1e-12)


def test_schedule_sets_each_epochs_learning_rate(tmp_path):
    config = quiet(epochs=4, optimizer="sgd", lr=1.0, schedule="step", schedule_args={"decay_after": 2, "factor": 0.5})
    history = Trainer(rnn(), "mse", config, regression_batches(), None, tmp_path).run()
    assert history["lr"] == [1.0, 1.0, 0.5, 0.25]


def test_clip_norm_bounds_each_sgd_update(tmp_path):
    rec = Recording()
    config = quiet(epochs=1, optimizer="sgd", lr=1.0, clip_norm=1e-3)
    Trainer(rnn(), "mse", config, regression_batches(), None, tmp_path, callbacks=[rec]).run()
    for before, after, logs in zip(rec.weights, rec.weights[1:], rec.batch_logs):
        step = math.sqrt(sum(float(((after[k] - before[k]) ** 2).sum()) for k in before))
        assert logs["grad_norm"] > 1e-3  # the clip was active ...
        assert step == pytest.approx(1e-3, rel=1e-5)  # ... and the update is lr * clip_norm long


def test_max_steps_stops_mid_epoch_and_closes_that_epoch(tmp_path):
    history = Trainer(rnn(), "mse", quiet(epochs=5, max_steps=4), regression_batches(), None, tmp_path).run()
    assert history["epoch"] == [1, 2] and history["step"] == [3, 4]


def test_stateful_flags_are_restored_and_saved_as_the_user_set_them(tmp_path):
    model = rnn()
    Trainer(model, "mse", quiet(epochs=1), regression_batches(), None, tmp_path).run()
    assert model.layers[0].stateful is False and model.layers[0].states is None
    saved = json.loads((latest_checkpoint(tmp_path) / "model" / "config.json").read_text())
    assert saved["config"]["layers"][0]["config"]["stateful"] is False


def test_the_trainer_passes_the_state_and_leaves_a_stateful_layer_alone(tmp_path):
    """A user's stateful layer trains exactly as a plain one, and keeps the state it carried before the run."""
    plain, stateful = rnn(), rnn()
    stateful.layers[0].stateful = True
    stateful(np.ones((1, 2, 3)))  # carries a state for a batch of 1 (the training batches hold 4 and 3)
    carried = stateful.layers[0].states
    for model, run_dir in ((plain, tmp_path / "plain"), (stateful, tmp_path / "stateful")):
        Trainer(model, "mse", quiet(epochs=2), regression_batches(), regression_batches(), run_dir).run()
    for (name, p), (_, q) in zip(plain.named_parameters(), stateful.named_parameters()):
        np.testing.assert_array_equal(p, q, err_msg=name)
    assert stateful.layers[0].stateful is True
    np.testing.assert_array_equal(stateful.layers[0].states[0], carried[0])


# ---------------------------------------------------------------------- progress, curves
def test_plain_log_lines_every_log_every_steps_and_per_epoch(tmp_path, capsys):
    config = TrainConfig(epochs=2, log_every=2)
    Trainer(rnn(), "mse", config, regression_batches(sizes=(2,) * 5), regression_batches(), tmp_path).run()
    out = capsys.readouterr().out
    step_lines = [line for line in out.splitlines() if " step " in line and ": loss" in line]
    assert [line.split(" step ")[1].split(":")[0] for line in step_lines] == ["2", "4", "6", "8", "10"]
    assert "epoch 1/2 batch 2/5 step 2: loss" in out
    epoch_lines = [line for line in out.splitlines() if " done in " in line]
    assert len(epoch_lines) == 2 and "val_loss" in epoch_lines[1] and epoch_lines[1].startswith("epoch 2/2 done in")
    assert (tmp_path / "train.log").read_text().splitlines()[-1] == epoch_lines[-1]


def test_a_progress_bar_on_a_terminal(tmp_path, monkeypatch):
    pytest.importorskip("tqdm")

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    Trainer(rnn(), "mse", TrainConfig(epochs=1, log_every=1), regression_batches(), None, tmp_path).run()
    out = terminal.getvalue()
    assert "epoch 1/1: 100%" in out and "3/3" in out
    assert " step 1: loss" not in out  # the bar replaces the per-step lines
    assert "epoch 1/1 done in" in out


def test_png_curves_for_the_loss_and_each_metric(tmp_path):
    pytest.importorskip("matplotlib")
    config = quiet(epochs=2, metrics=["accuracy"])
    Trainer(rnn(out=3), "cross_entropy", config, classification_batches(), classification_batches(), tmp_path).run()
    for name in ("loss.png", "accuracy.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "lr.png").exists()


def test_without_matplotlib_the_run_says_it_draws_no_curves(tmp_path, monkeypatch, capsys):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    Trainer(rnn(), "mse", quiet(epochs=2), regression_batches(), None, tmp_path).run()
    out = capsys.readouterr().out
    assert out.count("matplotlib is not installed: no PNG curves are written") == 1
    assert not (tmp_path / "loss.png").exists() and (tmp_path / "history.json").exists()


# ---------------------------------------------------------------------- early stopping
class Scripted(Metric):
    """A metric whose value in epoch e is values[e], on training and validation batches alike."""

    def __init__(self, values):
        self.values, self.epoch = values, 0
        super().__init__()

    def _terms(self, y_pred, y_true):
        return np.full(len(y_true), self.values[self.epoch])


def test_early_stopping_stops_after_patience_epochs_without_improvement(tmp_path):
    score = Scripted([3.0, 2.0, 2.5, 2.4, 1.0, 0.5, 0.4])

    class Clock(Callback):
        def on_epoch_begin(self, trainer, epoch):
            trainer.metrics["score"].epoch = epoch

    config = quiet(epochs=7, metrics=["score"], patience=2, monitor="val_score", mode="min")
    trainer = Trainer(rnn(), "mse", config, regression_batches(), regression_batches(), tmp_path,
                      callbacks=[Clock()], metrics={"score": score})
    history = trainer.run()
    # 3 best, 2 best, 2.5 (1), 2.4 (2): stop after epoch 4
    assert history["epoch"] == [1, 2, 3, 4] and history["val_score"] == [3.0, 2.0, 2.5, 2.4]
    assert "early stopping after epoch 4: val_score has not improved for 2 epoch(s); best 2 at epoch 2" in \
        (tmp_path / "train.log").read_text()
    assert trainer.run() == history  # a finished run stays finished


class Clock(Callback):
    """Tells the Scripted metric which epoch it is in."""

    def on_epoch_begin(self, trainer, epoch):
        trainer.metrics["score"].epoch = epoch


class StopAtEpochEnd(Callback):
    """Interrupts the run at the end of one epoch, before that epoch's checkpoint is taken."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, epoch, logs):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_restore_best_ends_with_the_weights_of_the_best_epoch(tmp_path):
    config = quiet(epochs=4, metrics=["score"], monitor="val_score", mode="min", restore_best=True)
    recording = Recording()
    trainer = Trainer(rnn(), "mse", config, regression_batches(), regression_batches(), tmp_path,
                      callbacks=[Clock(), recording], metrics={"score": Scripted([3.0, 2.0, 2.5, 2.4])})
    trainer.run()
    after_epoch_2 = recording.weights[2 * 3]  # index 0: before training; 3 batches per epoch
    last = recording.weights[-1]
    assert any(not np.array_equal(after_epoch_2[k], last[k]) for k in last)  # training did move on
    for name, p in trainer.model.named_parameters():
        np.testing.assert_array_equal(p, after_epoch_2[name], err_msg=name)
    assert "restored the weights of epoch 2, the best val_score (2)" in (tmp_path / "train.log").read_text()
    with np.load(tmp_path / "best.npz") as saved:
        assert sorted(saved.files) == sorted(after_epoch_2)


def test_restore_best_survives_an_interruption_and_resume(tmp_path):
    def trainer(run_dir, *extra):
        config = quiet(epochs=4, metrics=["score"], monitor="val_score", mode="min", restore_best=True)
        return Trainer(rnn(), "mse", config, regression_batches(), regression_batches(), run_dir,
                       callbacks=[Clock(), *extra], metrics={"score": Scripted([3.0, 2.0, 2.5, 2.4])})

    whole = trainer(tmp_path / "whole")
    whole.run()
    interrupted = trainer(tmp_path / "resumed", StopAtEpochEnd(2))
    with pytest.raises(KeyboardInterrupt):
        interrupted.run()
    assert not np.array_equal(interrupted.model.params["0.W"], whole.model.params["0.W"])  # not restored on error
    resumed = trainer(tmp_path / "resumed")
    resumed.run(resume=True)
    for name, p in resumed.model.named_parameters():
        np.testing.assert_array_equal(p, whole.model.params[name], err_msg=name)


def test_restore_best_must_be_a_bool():
    with pytest.raises(TypeError, match="TrainConfig.restore_best must be a bool, got str 'yes'"):
        TrainConfig(restore_best="yes")


def test_early_stopping_min_delta_and_max_mode(tmp_path):
    stopper = EarlyStopping("val_accuracy", patience=1, min_delta=0.1)

    class Fake:
        stop_training = False

        def log(self, message):
            self.message = message

    fake = Fake()
    for epoch, acc in enumerate([0.5, 0.65, 0.7]):  # "auto" maximises accuracy; +0.05 is not enough
        stopper.on_epoch_end(fake, epoch, {"val_accuracy": acc})
        if fake.stop_training:
            break
    assert epoch == 2 and stopper.best == 0.65 and stopper.best_epoch == 2


# ---------------------------------------------------------------------- divergence
def test_a_blow_up_stops_training_without_touching_the_weights_or_the_last_good_checkpoint(tmp_path):
    rec = Recording()
    config = quiet(epochs=20, optimizer="sgd", lr=5.0, checkpoint_every_steps=4)
    trainer = Trainer(rnn(dtype="float32"), "mse", config, regression_batches(sizes=(4,) * 6, dtype=np.float32), None,
                      tmp_path, callbacks=[rec])
    with pytest.raises(TrainingDiverged,
                       match=r"training diverged at epoch \d+, step \d+ \(batch \d+ of 6\): ") as info:
        trainer.run()
    exc = info.value
    assert exc.step == trainer.step + 1 == len(rec.batch_logs) + 1
    assert f"left as they were after step {exc.step - 1}" in str(exc)
    for name, p in trainer.model.named_parameters():  # untouched by the bad step
        assert np.array_equal(p, rec.weights[-1][name])
    manifest = json.loads((tmp_path / "checkpoint.json").read_text())
    assert (manifest["step"] == max(s for s in range(0, exc.step, 4) if s % 6 != 0 or s == 0)
            or manifest["step"] % 6 == 0)
    assert manifest["step"] < exc.step and str(latest_checkpoint(tmp_path)) in str(exc)
    assert rec.calls[-1] == "train_end TrainingDiverged"
    assert str(exc) in (tmp_path / "train.log").read_text()


class PoisonedGradient(Sequential):
    """Puts a NaN into one parameter's gradient on the ``at``-th backward pass."""

    def __init__(self, layers, at, name):
        super().__init__(layers)
        self.at, self.poisoned, self.calls = at, name, 0

    def backward(self, dy, *d_states, input_grad=True):
        dx = super().backward(dy, *d_states, input_grad=input_grad)
        self.calls += 1
        if self.calls == self.at:
            dict(self.named_grads())[self.poisoned][0] = np.nan
        return dx


def test_a_nan_gradient_is_named_by_parameter_epoch_and_step(tmp_path):
    model = PoisonedGradient([SimpleRNN(4, input_size=3, seed=0, dtype="float64"), Dense(1, seed=1, dtype="float64")],
                             at=5, name="0.W")
    rec = Recording()
    trainer = Trainer(model, "mse", quiet(epochs=3, checkpoint_every_steps=2), regression_batches(), None, tmp_path,
                      callbacks=[rec])
    with pytest.raises(TrainingDiverged,
                       match=r"at epoch 2, step 5 \(batch 2 of 3\): the gradient of parameter '0.W' is not finite"):
        trainer.run()
    assert trainer.step == 4 and trainer.model.calls == 5
    for name, p in model.named_parameters():
        assert np.array_equal(p, rec.weights[-1][name]) and np.isfinite(p).all()
    # checkpoints: epoch 1 ended at step 3; step 4 is mid-epoch 2 and was checkpointed; nothing after
    assert json.loads((tmp_path / "checkpoint.json").read_text())["step"] == 4


def test_a_checkpoint_of_non_finite_weights_is_refused(tmp_path):
    model = rnn()
    trainer = Trainer(model, "mse", quiet(epochs=1), regression_batches(), None, tmp_path)
    trainer.run()
    before = latest_checkpoint(tmp_path)
    model.layers[1].params["V"][0, 0] = np.inf
    with pytest.raises(TrainingDiverged, match="not checkpointing: parameter '1.V' holds NaN or inf"):
        trainer.save_checkpoint()
    assert latest_checkpoint(tmp_path) == before and before.exists()


def test_dropout_is_off_in_validation(tmp_path):
    """The validation loss of a model with heavy dropout equals its loss in inference mode."""
    model = Sequential([SimpleRNN(4, input_size=3, seed=0, dtype="float64"), Dropout(0.9, seed=0, dtype="float64"),
                        Dense(1, seed=1, dtype="float64")])
    val = regression_batches(sizes=(11,), seed=3)
    history = Trainer(model, "mse", quiet(epochs=1), regression_batches(), val, tmp_path).run()
    b = val.batches[0]
    assert history["val_loss"][0] == pytest.approx(float(get_loss("mse")(model(b.x), b.y)), rel=1e-12)


def test_evaluate_carries_the_state_through_a_stream_in_inference_mode(tmp_path):
    rng = np.random.default_rng(0)
    model = Sequential([SimpleRNN(4, input_size=3, return_sequences=True, seed=0, dtype="float64"),
                        Dropout(0.5, seed=0, dtype="float64"), Dense(1, seed=1, dtype="float64")])
    x, y = rng.standard_normal((2, 6, 3)), rng.standard_normal((2, 6, 1))
    trainer = Trainer(model, "mse", quiet(), regression_batches(), None, tmp_path)
    continued = trainer.evaluate(FixedBatches([Batch(x[:, :2], y[:, :2]),
                                               Batch(x[:, 2:], y[:, 2:], new_sequence=False)]))
    restarted = trainer.evaluate(FixedBatches([Batch(x[:, :2], y[:, :2]), Batch(x[:, 2:], y[:, 2:])]))
    whole = float(get_loss("mse")(model(x), y))  # one pass over the whole sequence, no dropout
    assert continued["loss"] == pytest.approx(whole, rel=1e-12)
    assert restarted["loss"] != pytest.approx(whole, rel=1e-6)
    assert model.layers[0].stateful is False



# ---------------------------------------------------------------------- evaluation in inference mode, reused
def lm_batches(n=3, B=2, T=5, V=7, seed=0, new_sequence=False):
    """A token stream cut into windows whose state carries over (as rnnlab.data.LMStream)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V, size=(B, n * T + 1))
    return FixedBatches(Batch(ids[:, i * T:(i + 1) * T], ids[:, i * T + 1:(i + 1) * T + 1],
                              new_sequence=new_sequence or i == 0) for i in range(n))


def lm(V=7, seed=0):
    from rnnlab.nn.layers import Embedding
    from rnnlab.nn.recurrent import LSTM

    return Sequential([Embedding(V, 3, seed=seed, dtype="float64"),
                       LSTM(4, return_sequences=True, seed=seed + 1, dtype="float64"),
                       Dense(V, seed=seed + 2, dtype="float64")])


def test_evaluate_matches_a_plain_forward_loss_and_metrics_and_keeps_no_tape(tmp_path):
    """Validation as before (float64 log-softmax for perplexity, the state carried), now under no_grad."""
    from rnnlab.nn.state import forward_with_states
    from rnnlab.training.metrics import Perplexity

    model, val = lm(), lm_batches(n=4)
    trainer = Trainer(model, "cross_entropy", quiet(metrics=["perplexity", "accuracy"]), lm_batches(), val, tmp_path)
    results = trainer.evaluate(val)
    loss, ppl, right, total, count, states = get_loss("cross_entropy"), Perplexity(), 0, 0.0, 0, {}
    for b in val.batches:
        y_pred, states = forward_with_states(model, b.x, {} if b.new_sequence else states)
        total += float(loss(y_pred, b.y)) * b.y.size
        count += b.y.size
        ppl.update(y_pred, b.y)
        right += int((y_pred.argmax(-1) == b.y).sum())
    assert results["loss"] == pytest.approx(total / count, rel=1e-12)
    assert results["perplexity"] == pytest.approx(ppl.result(), rel=1e-12)
    assert results["accuracy"] == right / count
    trainer.evaluate(lm_batches(n=2, seed=5))  # a forward pass of evaluation keeps no tape
    with pytest.raises(ValueError, match="rnnlab.nn.no_grad"):
        model.layers[1].backward(np.zeros((2, 5, 4)))


def test_a_split_is_evaluated_once_per_weights(tmp_path, monkeypatch):
    model, val = lm(), lm_batches(n=2, seed=1)
    trainer = Trainer(model, "cross_entropy", quiet(epochs=2, lr=0.5, metrics=["perplexity"]), lm_batches(), val,
                      tmp_path)
    runs = []
    real = Trainer._evaluate
    monkeypatch.setattr(Trainer, "_evaluate", lambda self, data: runs.append(data) or real(self, data))
    history = trainer.run()
    assert runs == [val, val]  # one per epoch
    again = trainer.evaluate(val)  # the final metrics: the weights are the last epoch's
    assert runs == [val, val]
    assert again == {"loss": history["val_loss"][-1], "perplexity": history["val_perplexity"][-1]}
    again["loss"] = 0.0  # a copy: the remembered results are not the caller's
    assert trainer.evaluate(val)["loss"] == history["val_loss"][-1]
    other = lm_batches(n=2, seed=1)  # equal data, but another object: evaluated
    assert trainer.evaluate(other) == trainer.evaluate(val)
    assert runs == [val, val, other]
    model.layers[2].params["c"][0] += 1.0  # new weights: evaluated again
    assert trainer.evaluate(val)["loss"] != history["val_loss"][-1]
    assert runs == [val, val, other, val]


def test_restore_best_reuses_the_best_epochs_validation(tmp_path, monkeypatch):
    model, val = lm(), lm_batches(n=2, seed=1)
    config = quiet(epochs=3, lr=3.0, metrics=["perplexity"], monitor="val_loss", restore_best=True)
    trainer = Trainer(model, "cross_entropy", config, lm_batches(n=3, seed=2), val, tmp_path)
    history = trainer.run()
    best = int(np.argmin(history["val_loss"]))
    assert best < 2  # training went past the best epoch: its weights were put back
    runs = []
    real = Trainer._evaluate
    monkeypatch.setattr(Trainer, "_evaluate", lambda self, data: runs.append(data) or real(self, data))
    results = trainer.evaluate(val)
    assert runs == [] and results["loss"] == history["val_loss"][best]
    assert results == real(trainer, val)  # what evaluating the restored weights gives


def test_request_stop_checkpoints_that_step_and_resumes_exactly(tmp_path):
    """Trainer.request_stop (what SIGTERM calls): the run raises TrainingStopped (a KeyboardInterrupt)
    after that step with a checkpoint of it, and the resumed run ends with the weights of a run never
    stopped."""
    from rnnlab._errors import TrainingStopped
    from rnnlab.training.checkpoint import latest_checkpoint

    class StopAtFive(Callback):
        def on_batch_end(self, trainer, logs):
            if trainer.step == 5:
                trainer.request_stop("a test")

    config = quiet(epochs=3, optimizer="sgd", lr=0.05)
    trainer = Trainer(rnn(), "mse", config, regression_batches(), None, tmp_path / "cut", callbacks=[StopAtFive()])
    with pytest.raises(TrainingStopped, match="stopped by a test after step 5") as info:
        trainer.run()
    assert isinstance(info.value, KeyboardInterrupt)
    assert info.value.checkpoint == latest_checkpoint(tmp_path / "cut")
    assert json.loads((tmp_path / "cut" / "checkpoint.json").read_text())["step"] == 5
    resumed = Trainer(rnn(), "mse", config, regression_batches(), None, tmp_path / "cut")
    resumed.run(resume=True)
    whole = Trainer(rnn(), "mse", config, regression_batches(), None, tmp_path / "whole")
    whole.run()
    for (name, a), (_, b) in zip(resumed.model.named_parameters(), whole.model.named_parameters()):
        np.testing.assert_array_equal(a, b, err_msg=name)
