"""rnnlab.timeseries: windows, split by time, scalers, naive baselines, the leakage rule."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rnnlab.data.timeseries import (
    MinMaxScaler,
    Scaler,
    StandardScaler,
    make_windows,
    naive_forecast,
    prepare_forecast,
    seasonal_naive_forecast,
    split_by_time,
)


# ---------------------------------------------------------------------------- windows
def test_many_to_one_windows_by_hand():
    x, y = make_windows(np.array([10.0, 11, 12, 13, 14]), lookback=2)
    assert x.shape == (3, 2, 1) and y.shape == (3, 1)
    assert x[:, :, 0].tolist() == [[10, 11], [11, 12], [12, 13]]
    assert y.tolist() == [[12], [13], [14]]


def test_multistep_multifeature_windows_are_step_major():
    series = np.stack([np.arange(6.0), 10 + np.arange(6.0)], axis=1)  # (6, 2): a_t = t, b_t = 10 + t
    x, y = make_windows(series, lookback=2, horizon=2)
    assert x.shape == (3, 2, 2) and y.shape == (3, 4)
    assert x[0].tolist() == [[0, 10], [1, 11]]
    assert y.tolist() == [[2, 12, 3, 13], [3, 13, 4, 14], [4, 14, 5, 15]]


def test_many_to_many_windows_by_hand():
    x, y = make_windows(np.arange(6.0), lookback=3, many_to_many=True)
    assert x.shape == (3, 3, 1) and y.shape == (3, 3, 1)
    assert y[:, :, 0].tolist() == [[1, 2, 3], [2, 3, 4], [3, 4, 5]]  # x shifted by one step
    x2, y2 = make_windows(np.arange(7.0), lookback=3, horizon=2, many_to_many=True)
    assert y2.shape == (3, 3, 2)
    assert y2[0].tolist() == [[1, 2], [2, 3], [3, 4]]
    _, y_last = make_windows(np.arange(7.0), lookback=3, horizon=2)
    np.testing.assert_array_equal(y2[:, -1], y_last)  # the last step holds the many-to-one target


def test_windows_with_context_start_targets_at_the_first_step():
    past, part = np.arange(0.0, 10.0), np.arange(10.0, 14.0)
    x, y = make_windows(part, lookback=3, context=past)
    assert x.shape == (4, 3, 1)
    assert x[0, :, 0].tolist() == [7, 8, 9]  # looks back into the end of the previous part
    assert y[:, 0].tolist() == [10, 11, 12, 13]  # every target in the part itself
    xs, ys = make_windows(part, lookback=3, context=np.array([9.0]))  # short context: fewer windows
    assert ys[:, 0].tolist() == [12, 13] and xs[0, :, 0].tolist() == [9, 10, 11]


def test_windows_keep_float32_and_convert_integers():
    x, y = make_windows(np.arange(5, dtype=np.float32), 2)
    assert x.dtype == y.dtype == np.float32
    assert make_windows(np.arange(5), 2)[0].dtype == np.float64


def test_window_errors():
    with pytest.raises(ValueError, match=r"series has 4 steps, too short for lookback=3 and horizon=2 "
                                         r"\(needs at least lookback \+ horizon = 5\)"):
        make_windows(np.arange(4.0), 3, 2)
    with pytest.raises(ValueError, match=r"series must have shape \(T,\) or \(T, F\), got shape \(2, 3, 4\)"):
        make_windows(np.zeros((2, 3, 4)), 1)
    with pytest.raises(ValueError, match=r"series contains NaN or inf at index \(2,\)"):
        make_windows(np.array([1.0, 2, np.nan, 4]), 1)
    with pytest.raises(ValueError, match="lookback must be a positive int, got 0"):
        make_windows(np.arange(4.0), 0)
    with pytest.raises(ValueError, match=r"context must have the series' 2 features, got shape \(3,\)"):
        make_windows(np.zeros((5, 2)), 2, context=np.zeros(3))
    with pytest.raises(TypeError, match="series must hold numbers, got dtype <U1"):
        make_windows(np.array(["a", "b"]), 1)


# ---------------------------------------------------------------------------- split
def test_split_by_time_keeps_order():
    train, val, test = split_by_time(np.arange(10), 0.6, 0.2)
    assert train.tolist() == [0, 1, 2, 3, 4, 5] and val.tolist() == [6, 7] and test.tolist() == [8, 9]
    train, val, test = split_by_time(np.arange(20.0).reshape(10, 2), 0.5, 0.0)
    assert train.shape == (5, 2) and val.shape == (0, 2) and test[0].tolist() == [10, 11]
    train, _, _ = split_by_time(np.arange(100), 0.29, 0.3)  # 100 * 0.29 is 28.999...: still 29
    assert len(train) == 29


def test_split_by_time_errors():
    with pytest.raises(ValueError, match="train_frac \\+ val_frac must be < 1 to leave a test part, got 0.7 \\+ 0.3"):
        split_by_time(np.arange(10), 0.7, 0.3)
    with pytest.raises(ValueError, match=r"train_frac must be in \(0, 1\), got 0"):
        split_by_time(np.arange(10), 0, 0.3)
    with pytest.raises(ValueError, match=r"series of 3 steps is too short to split with train_frac=0.5, val_frac=0.4"):
        split_by_time(np.arange(3), 0.5, 0.4)


# ---------------------------------------------------------------------------- scalers
def test_minmax_scaler_by_hand_fitted_on_train_only():
    scaler = MinMaxScaler().fit(np.array([2.0, 4.0, 6.0]))
    assert scaler.transform(np.array([2.0, 4.0, 6.0, 8.0])).tolist() == [0.0, 0.5, 1.0, 1.5]
    scaler = MinMaxScaler(feature_range=(-1, 1)).fit(np.array([[0.0, 10.0], [4.0, 30.0]]))
    assert scaler.transform(np.array([[2.0, 10.0]])).tolist() == [[0.0, -1.0]]


def test_standard_scaler_by_hand():
    scaler = StandardScaler().fit(np.array([1.0, 2.0, 3.0]))
    z = scaler.transform(np.array([1.0, 2.0, 3.0, 5.0]))
    np.testing.assert_allclose(z, np.array([-1.0, 0.0, 1.0, 3.0]) / math.sqrt(2 / 3))


@pytest.mark.parametrize("cls", [MinMaxScaler, StandardScaler])
def test_scaler_round_trip_and_json(cls, rng):
    train = rng.normal(5.0, 3.0, size=(40, 3))
    test = rng.normal(5.0, 3.0, size=(7, 3))
    scaler = cls().fit(train)
    z = scaler.transform(test)
    assert not np.allclose(z, test)
    np.testing.assert_allclose(scaler.inverse_transform(z), test, rtol=1e-12, atol=1e-12)
    # windows (N, L, F) and step-major flattened targets (N, H * F) use the same statistics
    x, y = make_windows(test, lookback=2, horizon=2)
    np.testing.assert_allclose(scaler.transform(y).reshape(-1, 3), scaler.transform(y.reshape(-1, 3)))
    np.testing.assert_allclose(scaler.transform(x).reshape(-1, 3), scaler.transform(x.reshape(-1, 3)))
    text = scaler.to_json()
    assert json.loads(text)["type"] == cls.__name__
    for restored in (cls.from_json(text), Scaler.from_json(text)):
        assert type(restored) is cls
        np.testing.assert_array_equal(restored.transform(test), z)  # exact: float64 through JSON
    unfitted = Scaler.from_json(cls().to_json())
    assert not unfitted.fitted


def test_scaler_keeps_float32_and_handles_constant_features():
    scaler = MinMaxScaler().fit(np.array([[1.0, 3.0], [1.0, 5.0]]))
    z = scaler.transform(np.array([[1.0, 4.0]], dtype=np.float32))
    assert z.dtype == np.float32 and z.tolist() == [[0.0, 0.5]]
    assert StandardScaler().fit(np.full(4, 2.0)).transform(np.array([2.0, 3.0])).tolist() == [0.0, 1.0]


def test_scaler_errors():
    with pytest.raises(RuntimeError, match=r"MinMaxScaler is not fitted: call fit\(train_part\) first"):
        MinMaxScaler().transform(np.ones(3))
    scaler = StandardScaler().fit(np.ones((4, 2)))
    with pytest.raises(ValueError,
                       match=r"data must have a last axis of 2 features \(or a multiple.*got shape \(4, 3\)"):
        scaler.transform(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"data contains NaN or inf at index \(1,\)"):
        MinMaxScaler().fit(np.array([1.0, np.inf]))
    with pytest.raises(ValueError, match="feature_range must have lo < hi, got \\(1, 0\\)"):
        MinMaxScaler(feature_range=(1, 0))
    with pytest.raises(ValueError, match="MinMaxScaler.from_json got a StandardScaler document; use Scaler.from_json"):
        MinMaxScaler.from_json(scaler.to_json())
    with pytest.raises(ValueError, match="scaler JSON must have a 'type' among"):
        Scaler.from_json('{"type": "Bogus"}')
    doc = json.loads(scaler.to_json())
    doc["mean"] = [1.0]
    with pytest.raises(ValueError, match=r"StandardScaler JSON field 'mean' must hold 2 numbers, got \[1.0\]"):
        Scaler.from_json(json.dumps(doc))


# ---------------------------------------------------------------------------- baselines
def test_naive_and_seasonal_naive_by_hand():
    x, y = make_windows(np.array([1.0, 2, 3, 4, 5, 6, 7, 8]), lookback=4, horizon=3)
    assert x[0, :, 0].tolist() == [1, 2, 3, 4]
    assert naive_forecast(x, horizon=3)[0].tolist() == [4, 4, 4]
    # period 2: repeat the last observed cycle (3, 4): 3, 4, 3
    assert seasonal_naive_forecast(x, season=2, horizon=3)[0].tolist() == [3, 4, 3]
    # period 4 on window [2, 3, 4, 5]: one season back from steps 6, 7, 8 -> 2, 3, 4
    assert seasonal_naive_forecast(x, season=4, horizon=3)[1].tolist() == [2, 3, 4]
    np.testing.assert_array_equal(seasonal_naive_forecast(x, 1, 3), naive_forecast(x, 3))
    assert naive_forecast(x[:, :, 0]).shape == (2, 1)  # (N, L) windows: one feature


def test_naive_baseline_error_on_a_tiny_series_by_hand():
    series = np.array([1.0, 3.0, 2.0, 4.0, 3.0, 5.0])
    x, y = make_windows(series, lookback=2)
    # targets 2, 4, 3, 5; naive predictions 3, 2, 4, 3 -> errors -1, 2, -1, 2
    assert np.mean((naive_forecast(x) - y) ** 2) == pytest.approx((1 + 4 + 1 + 4) / 4)
    # seasonal with period 2: predictions 1, 3, 2, 4 -> errors 1, 1, 1, 1
    assert np.mean(np.abs(seasonal_naive_forecast(x, 2) - y)) == pytest.approx(1.0)


def test_baseline_errors():
    x = np.zeros((3, 4, 1))
    with pytest.raises(ValueError, match=r"season must be at most the window length \(lookback = 4\).*got 5"):
        seasonal_naive_forecast(x, 5)
    with pytest.raises(ValueError, match=r"x must have shape \(N, lookback, F\) or \(N, lookback\).*got shape \(3,\)"):
        naive_forecast(np.zeros(3))
    with pytest.raises(TypeError, match="x must be a NumPy array of windows"):
        naive_forecast([[1.0]])


# ---------------------------------------------------------------------------- one call, leakage
def test_prepare_forecast_follows_the_leakage_rule():
    series = np.arange(100.0)
    data = prepare_forecast(series, lookback=5, horizon=2, train_frac=0.6, val_frac=0.2, scaler="minmax")
    # the scaler saw the training part (0..59) only
    assert data.scaler.data_min.tolist() == [0.0] and data.scaler.data_max.tolist() == [59.0]
    raw = data.scaler.inverse_transform
    # training windows: inputs and targets all before step 60
    assert raw(data.x_train).max() < 60 and raw(data.y_train).max() < 60 + 1e-9
    # validation: targets start at step 60 and end at 79; inputs look back into training
    np.testing.assert_allclose(raw(data.y_val)[:, 0], np.arange(60.0, 79.0))
    np.testing.assert_allclose(raw(data.x_val)[0, :, 0], [55, 56, 57, 58, 59])
    # test: targets start at step 80; the first inputs are the end of the validation part
    np.testing.assert_allclose(data.y_test_raw[:, 0], np.arange(80.0, 99.0))
    np.testing.assert_allclose(data.x_test_raw[0, :, 0], [75, 76, 77, 78, 79])
    np.testing.assert_allclose(raw(data.x_test), data.x_test_raw)
    np.testing.assert_allclose(data.y_val_raw, raw(data.y_val))
    assert data.x_test.max() > 1.0  # test values lie outside the training range: not clipped


def test_prepare_forecast_without_validation_or_scaler():
    data = prepare_forecast(np.arange(20.0), 3, train_frac=0.75, val_frac=0.0, scaler=None)
    assert data.x_val is None and data.scaler is None
    assert data.y_test[:, 0].tolist() == [15, 16, 17, 18, 19]
    with pytest.raises(ValueError, match="scaler must be one of 'minmax', 'standard', None or a Scaler; got 'robust'"):
        prepare_forecast(np.arange(20.0), 3, scaler="robust")
    with pytest.raises(ValueError, match=r"cannot window the split \(parts of 14, 3, 3 steps\).*series has 14 steps"):
        prepare_forecast(np.arange(20.0), 10, horizon=5)
