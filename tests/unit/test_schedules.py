"""Learning-rate schedules, epoch by epoch, against values computed by hand."""

from __future__ import annotations

import math

import pytest

from rnnlab.optim import schedules
from rnnlab.optim.schedules import (
    CosineDecay,
    ExponentialDecay,
    ReduceOnPlateau,
    StepDecay,
)


def test_constant_keeps_the_initial_rate():
    s = schedules.get("constant", 0.3)
    assert [s.lr(e) for e in range(4)] == [0.3, 0.3, 0.3, 0.3]


def test_step_decay_is_zarembas_halving_after_four_epochs():
    # Zaremba et al. small model: lr 1 for epochs 1-4, then halved every epoch
    s = StepDecay(1.0, decay_after=4, factor=0.5)
    assert [s.lr(e) for e in range(8)] == [1.0, 1.0, 1.0, 1.0, 0.5, 0.25, 0.125, 0.0625]


def test_step_decay_from_the_first_epoch_when_decay_after_is_zero():
    s = StepDecay(2.0, decay_after=0, factor=0.5)
    assert [s.lr(e) for e in range(3)] == [1.0, 0.5, 0.25]


def test_exponential_decay():
    s = ExponentialDecay(0.1, gamma=0.5)
    assert [s.lr(e) for e in range(4)] == pytest.approx([0.1, 0.05, 0.025, 0.0125], rel=1e-15)


def test_cosine_decay_follows_half_a_cosine_then_stays_at_min_lr():
    s = CosineDecay(1.0, t_max=4, min_lr=0.0)
    r = math.sqrt(2) / 2
    expected = [1.0, (1 + r) / 2, 0.5, (1 - r) / 2, 0.0, 0.0]
    assert [s.lr(e) for e in range(6)] == pytest.approx(expected, abs=1e-15)
    s = CosineDecay(0.2, t_max=2, min_lr=0.1)
    assert [s.lr(e) for e in range(3)] == pytest.approx([0.2, 0.15, 0.1], abs=1e-15)


def test_plateau_reduces_after_patience_epochs_without_improvement():
    s = ReduceOnPlateau(1.0, monitor="val_loss", factor=0.5, patience=2)
    rates = []
    for epoch, v in enumerate([3.0, 2.0, 2.5, 2.4, 2.2, 1.0, 1.5, 1.6]):
        assert s.lr(epoch) == (rates[-1] if rates else 1.0)
        s.epoch_end(epoch, {"val_loss": v})
        rates.append(s.lr(epoch + 1))
    # 3 best; 2 best; 2.5 wait 1; 2.4 wait 2 -> 0.5; 2.2 wait 1; 1.0 best; 1.5 wait 1; 1.6 wait 2 -> 0.25
    assert rates == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25]


def test_plateau_max_mode_min_delta_min_lr_and_cooldown():
    s = ReduceOnPlateau(1.0, monitor="val_accuracy", factor=0.5, patience=1, min_delta=0.05, cooldown=1, min_lr=0.3)
    assert s.mode == "max"  # "auto" maximises accuracies
    rates = []
    for epoch, v in enumerate([0.5, 0.52, 0.53, 0.54, 0.7, 0.7]):
        s.epoch_end(epoch, {"val_accuracy": v})
        rates.append(s.lr(epoch + 1))
    # 0.5 best; 0.52 no (min_delta) -> 0.5 and a cooldown; 0.53 cooldown epoch, not counted;
    # 0.54 counts -> 0.25, clamped to min_lr 0.3; 0.7 best; 0.7 no -> 0.15 -> 0.3
    assert rates == [1.0, 0.5, 0.5, 0.3, 0.3, 0.3]


def test_plateau_state_dict_round_trip_continues_identically():
    values = [3.0, 2.0, 2.5, 2.4, 2.6, 2.7, 2.8]
    a = ReduceOnPlateau(1.0, factor=0.5, patience=2)
    for e, v in enumerate(values[:4]):
        a.epoch_end(e, {"val_loss": v})
    b = ReduceOnPlateau(1.0, factor=0.5, patience=2)
    b.load_state_dict(a.state_dict())
    for e, v in enumerate(values[4:], start=4):
        a.epoch_end(e, {"val_loss": v})
        b.epoch_end(e, {"val_loss": v})
        assert a.lr(e + 1) == b.lr(e + 1)
    assert a.state_dict() == b.state_dict() and a.lr(7) == 0.25


def test_plateau_names_a_missing_monitor():
    s = ReduceOnPlateau(1.0, monitor="val_loss")
    with pytest.raises(KeyError, match="'val_loss'.*they have loss"):
        s.epoch_end(0, {"loss": 1.0})


@pytest.mark.parametrize(("name", "kwargs", "match"), [
    ("linear", {}, "schedule must be one of 'constant', 'step', 'exponential', 'cosine', 'plateau'; got 'linear'"),
    ("step", {"decay_every": 2},
     r"unknown argument\(s\) \['decay_every'\]; its arguments are \['decay_after', 'factor'\]"),
    ("step", {"factor": 1.5}, r"factor must be a finite number in \(0, 1\], got 1.5"),
    ("step", {"decay_after": -1}, "decay_after must be an int >= 0, got -1"),
    ("exponential", {"gamma": 0}, r"gamma must be a finite number in \(0, 1\], got 0.0"),
    ("cosine", {"t_max": 0}, "t_max must be an int >= 1, got 0"),
    ("cosine", {"min_lr": 2.0}, r"min_lr must be a finite number in \[0, 1\], got 2.0"),
    ("plateau", {"factor": 1.0}, r"factor must be a finite number in \(0, 1\), got 1.0"),
    ("plateau", {"mode": "up"}, "mode must be one of 'auto', 'min', 'max'; got 'up'"),
])
def test_bad_arguments_name_the_argument_the_value_and_the_choices(name, kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        schedules.get(name, 1.0, **kwargs)


def test_negative_epoch_and_bad_lr_are_refused():
    with pytest.raises(ValueError, match="epoch must be an int >= 0, got -1"):
        StepDecay(1.0).lr(-1)
    with pytest.raises(ValueError, match=r"lr must be a finite number in \(0, inf\), got 0.0"):
        StepDecay(0.0)
