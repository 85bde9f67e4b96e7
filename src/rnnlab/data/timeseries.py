"""Time-series pipeline: split by time, scale, cut into windows, and the naive baselines.

The usual path (``prepare_forecast`` does it in one call)::

    train, val, test = split_by_time(series, train_frac=0.7, val_frac=0.15)
    scaler = MinMaxScaler().fit(train)                       # training part only
    x_tr, y_tr = make_windows(scaler.transform(train), lookback=24)
    x_va, y_va = make_windows(scaler.transform(val), 24, context=scaler.transform(train))
    x_te, y_te = make_windows(scaler.transform(test), 24,
                              context=scaler.transform(np.concatenate([train, val])))
    ...
    y_pred = scaler.inverse_transform(model.predict(x_te))   # errors reported in original units
    baseline = naive_forecast(test_windows_in_original_units)

Shapes
------
A series is (T,) (one feature, F = 1) or (T, F). ``make_windows`` returns inputs
``x`` (N, lookback, F) and targets ``y``: the next ``horizon`` values after the window, flattened
step-major to (N, horizon * F) (so (N, horizon) for a univariate series); with
``many_to_many=True`` every step t gets the next ``horizon`` values after it, (N, lookback,
horizon * F), and the last step's targets are the many-to-one targets. Errors of a many-to-many
model are compared with the baselines on that last step.

Leakage rule
------------
* Time is never shuffled across the split: the training part comes first, then validation, then
  test, each contiguous (``split_by_time``).
* A scaler is fitted on the **training part only**, then applied unchanged to validation and
  test (whose values may therefore fall outside the [0, 1] range of a ``MinMaxScaler``).
* Every target of a part lies in that part. The *inputs* of the first windows of the validation
  part look back into the end of the training part, and those of the test part into the end of
  the validation part (and of the training part when validation is shorter than the lookback),
  passed as ``context``. That is not leakage: those values precede the forecast in time and are
  known when it is made; it lets the targets start at the first step of each part. With
  ``many_to_many=True`` the early steps of those windows also carry targets that lie in the
  context (earlier parts); only the last step's targets are guaranteed to lie in the part.
* Training windows never see validation or test values, as inputs or targets.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from rnnlab._validation import check_positive_int

__all__ = ["make_windows", "split_by_time", "Scaler", "MinMaxScaler", "StandardScaler", "naive_forecast",
           "seasonal_naive_forecast", "ForecastData", "prepare_forecast"]


# --------------------------------------------------------------------------- checks
def _as_series(name: str, series, *, allow_empty: bool = False) -> np.ndarray:
    """``series`` as a float (T, F) array: (T,) becomes (T, 1); ints become float64; NaN/inf rejected."""
    if not isinstance(series, np.ndarray):
        if isinstance(series, (list, tuple)):
            series = np.asarray(series)
        else:
            raise TypeError(f"{name} must be a NumPy array of shape (T,) or (T, F), got {type(series).__name__}")
    if series.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape (T,) or (T, F), got shape {series.shape}")
    if np.issubdtype(series.dtype, np.integer) or series.dtype == bool:
        series = series.astype(np.float64)
    elif not np.issubdtype(series.dtype, np.floating):
        raise TypeError(f"{name} must hold numbers, got dtype {series.dtype}")
    if series.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} must have at least one time step, got shape {series.shape}")
    if series.ndim == 2 and series.shape[1] == 0:
        raise ValueError(f"{name} must have at least one feature, got shape {series.shape}")
    finite = np.isfinite(series)
    if not finite.all():
        bad = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(f"{name} contains NaN or inf at index {bad}; fill or drop missing values first")
    return series.reshape(series.shape[0], -1)


def _check_windows(name: str, x) -> np.ndarray:
    """Windows as (N, L, F): (N, L) means F = 1."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array of windows (N, lookback, F), got {type(x).__name__}")
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must have shape (N, lookback, F) or (N, lookback) with N, lookback >= 1, "
                         f"got shape {x.shape}")
    return x


# --------------------------------------------------------------------------- windows and splits
def make_windows(series, lookback: int, horizon: int = 1, many_to_many: bool = False, *,
                 context=None) -> tuple[np.ndarray, np.ndarray]:
    """Cut a series into overlapping input windows and their targets (stride 1).

    Parameters
    ----------
    series : ndarray, shape (T,) or (T, F)
        The values, oldest first.
    lookback : int
        L, the steps each input window holds.
    horizon : int
        H, how many future values are predicted (1 = one step ahead).
    many_to_many : bool
        Give every step of the window its own targets instead of the last step only.
    context : ndarray, shape (C,) or (C, F), optional
        Values immediately *preceding* ``series`` in time (the tail of the previous part of a
        split). Its last ``L`` values are prepended, so the first target is ``series[0]`` when
        C >= L; all targets of the last step still lie in ``series``.

    Returns
    -------
    x : ndarray, shape (N, L, F)
        ``x[i] = s[i : i + L]``, where ``s`` is ``series`` with the context prepended.
    y : ndarray, shape (N, H * F), or (N, L, H * F) if ``many_to_many``
        Many-to-one: ``y[i, h F + f] = s[i + L + h, f]`` for h = 0..H-1, the H values after the
        window. Many-to-many: ``y[i, t, h F + f] = s[i + t + 1 + h, f]``, the H values after step
        t (so ``y[:, -1]`` is the many-to-one target, and with H = 1 ``y`` is ``x`` shifted by one
        step).

    Notes
    -----
    ``N = len(s) - L - H + 1``, which must be at least 1. Both arrays are new (contiguous)
    arrays of the series' float dtype (integers become float64).

    Examples
    --------
    >>> x, y = make_windows(np.arange(6.0), lookback=3, horizon=2)
    >>> x[:, :, 0].tolist(), y.tolist()
    ([[0.0, 1.0, 2.0], [1.0, 2.0, 3.0]], [[3.0, 4.0], [4.0, 5.0]])
    """
    s = _as_series("series", series)
    L = check_positive_int("lookback", lookback)
    H = check_positive_int("horizon", horizon)
    if not isinstance(many_to_many, (bool, np.bool_)):
        raise TypeError(f"many_to_many must be True or False, got {type(many_to_many).__name__} {many_to_many!r}")
    F = s.shape[1]
    if context is not None:
        c = _as_series("context", context, allow_empty=True)
        if c.shape[1] != F:
            raise ValueError(f"context must have the series' {F} features, got shape {np.shape(context)} "
                             f"for series {np.shape(series)}")
        s = np.concatenate([c[max(len(c) - L, 0):].astype(s.dtype, copy=False), s])
    N = len(s) - L - H + 1
    if N < 1:
        what = "series plus context" if context is not None else "series"
        raise ValueError(f"{what} has {len(s)} steps, too short for lookback={L} and horizon={H} "
                         f"(needs at least lookback + horizon = {L + H})")
    view = np.lib.stride_tricks.sliding_window_view
    x = view(s, L, axis=0)[:N].transpose(0, 2, 1)  # (N, L, F)
    # ahead[j] = s[j + 1 : j + 1 + H] flattened step-major: the H values after step j
    ahead = view(s[1:], H, axis=0).transpose(0, 2, 1).reshape(-1, H * F)  # (len(s) - H, H*F)
    if many_to_many:
        y = view(ahead, L, axis=0)[:N].transpose(0, 2, 1)  # (N, L, H*F)
    else:
        y = ahead[L - 1:L - 1 + N]  # (N, H*F)
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def split_by_time(series, train_frac: float, val_frac: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split a series into consecutive training, validation and test parts (no shuffling).

    Parameters
    ----------
    series : ndarray, shape (T,) or (T, F)
    train_frac, val_frac : float
        Fractions of T for the first two parts: ``n_train = round(T train_frac)``,
        ``n_val = round(T val_frac)``; the test part is the rest and must not be empty.
        ``val_frac = 0`` gives an empty validation part.

    Returns
    -------
    train, val, test : ndarrays of the input's shape along the other axes (copies)
        ``series[:n_train]``, ``series[n_train : n_train + n_val]``, ``series[n_train + n_val:]``.
    """
    arr = np.asarray(series)
    _as_series("series", series)  # validation only: the parts keep the input's shape and dtype
    for name, frac, low_ok in (("train_frac", train_frac, False), ("val_frac", val_frac, True)):
        if isinstance(frac, bool) or not isinstance(frac, (int, float, np.floating, np.integer)):
            raise TypeError(f"{name} must be a number, got {type(frac).__name__} {frac!r}")
        if not ((0 <= frac < 1) if low_ok else (0 < frac < 1)):
            raise ValueError(f"{name} must be in {'[0, 1)' if low_ok else '(0, 1)'}, got {frac}")
    if train_frac + val_frac >= 1:
        raise ValueError(f"train_frac + val_frac must be < 1 to leave a test part, got {train_frac} + {val_frac}")
    T = len(arr)
    n_train, n_val = round(T * train_frac), round(T * val_frac)
    if n_train < 1 or n_train + n_val >= T or (val_frac > 0 and n_val < 1):
        raise ValueError(f"series of {T} steps is too short to split with train_frac={train_frac}, "
                         f"val_frac={val_frac}: parts of {n_train}, {n_val}, {T - n_train - n_val} steps")
    return arr[:n_train].copy(), arr[n_train:n_train + n_val].copy(), arr[n_train + n_val:].copy()


# --------------------------------------------------------------------------- scalers
class Scaler:
    """Per-feature affine scaling ``z = (v - shift) / scale``, fitted on the training part only.

    ``fit(data)`` takes (T,) or (..., F) values (statistics over every axis but the last; a 1-D
    series is one feature). ``transform`` and ``inverse_transform`` accept any array whose last
    axis holds the F features, or k F values flattened step-major (the (N, H F) targets of
    :func:`make_windows`); with F = 1 any shape. Integer input becomes float64; float input keeps
    its dtype. The fitted statistics are stored in float64 and round-trip exactly through
    ``to_json``/``from_json``.
    """

    _registry: dict[str, type[Scaler]] = {}
    _params: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        Scaler._registry[cls.__name__] = cls

    def __init__(self):
        self.n_features: int | None = None

    # subclasses: _fit_stats(v (M, F)) -> None; _shift_scale() -> (shift (F,), scale (F,))
    def _fit_stats(self, v: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _shift_scale(self) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def fitted(self) -> bool:
        return self.n_features is not None

    def fit(self, data) -> Scaler:
        """Compute the per-feature statistics of ``data`` (the training part only); returns self."""
        v = self._values("data", data)
        if v.size == 0:
            raise ValueError(f"data must hold at least one value to fit {type(self).__name__}, "
                             f"got shape {np.shape(data)}")
        v = v.reshape(-1, 1) if v.ndim == 1 else v.reshape(-1, v.shape[-1])  # (M, F)
        self._fit_stats(v.astype(np.float64))
        self.n_features = v.shape[1]
        return self

    def fit_transform(self, data) -> np.ndarray:
        return self.fit(data).transform(data)

    def transform(self, data) -> np.ndarray:
        """``z = (v - shift) / scale`` feature by feature."""
        v, shift, scale = self._broadcast("data", data)
        return ((v - shift) / scale).astype(v.dtype, copy=False)

    def inverse_transform(self, data) -> np.ndarray:
        """``v = z scale + shift``: back to the original units (for reporting errors)."""
        z, shift, scale = self._broadcast("data", data)
        return (z * scale + shift).astype(z.dtype, copy=False)

    def _values(self, name: str, data) -> np.ndarray:
        if not isinstance(data, np.ndarray):
            if isinstance(data, (list, tuple)) or np.isscalar(data):
                data = np.asarray(data)
            else:
                raise TypeError(f"{name} must be a NumPy array, got {type(data).__name__}")
        if np.issubdtype(data.dtype, np.integer):
            data = data.astype(np.float64)
        elif not np.issubdtype(data.dtype, np.floating):
            raise TypeError(f"{name} must hold numbers, got dtype {data.dtype}")
        if not np.isfinite(data).all():
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(data))[0])
            raise ValueError(f"{name} contains NaN or inf at index {bad}")
        return data

    def _broadcast(self, name: str, data):
        if not self.fitted:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(train_part) first")
        v = self._values(name, data)
        shift, scale = self._shift_scale()  # (F,), (F,)
        F = self.n_features
        if F == 1:
            return v, shift[0], scale[0]
        last = v.shape[-1] if v.ndim else 0
        if v.ndim == 0 or last % F:
            raise ValueError(f"{name} must have a last axis of {F} features (or a multiple, steps x features "
                             f"flattened step-major), got shape {v.shape}")
        reps = last // F
        return v, np.tile(shift, reps), np.tile(scale, reps)

    # ---- serialisation
    def get_config(self) -> dict:
        """Constructor arguments (JSON-ready)."""
        return {}

    def to_json(self) -> str:
        """A JSON document with the class, its configuration and the fitted statistics (null if unfitted)."""
        state = {name: (None if getattr(self, name) is None else np.asarray(getattr(self, name), np.float64).tolist())
                 for name in self._params}
        return json.dumps({"type": type(self).__name__, "config": self.get_config(), "n_features": self.n_features,
                           **state})

    @classmethod
    def from_json(cls, text: str) -> Scaler:
        """Rebuild a scaler from :meth:`to_json`. ``Scaler.from_json`` accepts any scaler type."""
        try:
            doc = json.loads(text)
        except (TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"text is not a scaler JSON document: {exc}") from None
        if not isinstance(doc, dict) or doc.get("type") not in Scaler._registry:
            raise ValueError(f"scaler JSON must have a 'type' among {sorted(Scaler._registry)}, "
                             f"got {doc.get('type') if isinstance(doc, dict) else doc!r}")
        klass = Scaler._registry[doc["type"]]
        if cls is not Scaler and klass is not cls:
            raise ValueError(f"{cls.__name__}.from_json got a {doc['type']} document; use Scaler.from_json")
        expected = {"type", "config", "n_features", *klass._params}
        if set(doc) != expected:
            raise ValueError(f"{doc['type']} JSON must have exactly the keys {sorted(expected)}, got {sorted(doc)}")
        scaler = klass(**doc["config"])
        if doc["n_features"] is not None:
            F = doc["n_features"]
            for name in klass._params:
                value = np.asarray(doc[name], dtype=np.float64)
                if value.shape != (F,):
                    raise ValueError(f"{doc['type']} JSON field {name!r} must hold {F} numbers, got {doc[name]!r}")
                setattr(scaler, name, value)
            scaler.n_features = int(F)
        return scaler

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args}){'' if self.fitted else ' (not fitted)'}"


class MinMaxScaler(Scaler):
    """Map each feature's training range ``[min, max]`` onto ``feature_range`` (default [0, 1]).

    Notes
    -----
    ``z = lo + (v - min) (hi - lo) / (max - min)``, i.e. shift = ``min - lo (max - min) / (hi - lo)``,
    scale = ``(max - min) / (hi - lo)``. A constant feature (max = min) uses max - min = 1, so
    it maps to ``lo``. Values outside the training range map outside ``feature_range`` (no
    clipping).
    """

    _params = ("data_min", "data_max")

    def __init__(self, feature_range=(0.0, 1.0)):
        super().__init__()
        try:
            lo, hi = (float(v) for v in feature_range)
        except (TypeError, ValueError):
            raise TypeError(f"feature_range must be a pair of numbers (lo, hi), got {feature_range!r}") from None
        if not lo < hi:
            raise ValueError(f"feature_range must have lo < hi, got {feature_range!r}")
        self.feature_range = (lo, hi)
        self.data_min: np.ndarray | None = None
        self.data_max: np.ndarray | None = None

    def _fit_stats(self, v):
        self.data_min, self.data_max = v.min(axis=0), v.max(axis=0)

    def _shift_scale(self):
        lo, hi = self.feature_range
        span = self.data_max - self.data_min
        span = np.where(span > 0, span, 1.0)
        scale = span / (hi - lo)
        return self.data_min - lo * scale, scale

    def get_config(self) -> dict:
        return {"feature_range": list(self.feature_range)}


class StandardScaler(Scaler):
    """Standardise each feature to zero mean and unit variance over the training part.

    Notes
    -----
    ``z = (v - mean) / std`` with the population standard deviation (ddof = 0); a constant
    feature (std = 0) uses std = 1.
    """

    _params = ("mean", "std")

    def __init__(self):
        super().__init__()
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def _fit_stats(self, v):
        self.mean, self.std = v.mean(axis=0), v.std(axis=0)

    def _shift_scale(self):
        return self.mean, np.where(self.std > 0, self.std, 1.0)


# --------------------------------------------------------------------------- baselines
def naive_forecast(x, horizon: int = 1) -> np.ndarray:
    """The naive (persistence) forecast: every future value equals the window's last value.

    Parameters
    ----------
    x : ndarray, shape (N, L, F) or (N, L)
        Input windows, as :func:`make_windows` returns them (in the units to report).
    horizon : int
        H, as given to :func:`make_windows`.

    Returns
    -------
    ndarray, shape (N, H * F)
        ``y_hat[i, h F + f] = x[i, L - 1, f]``: directly comparable with the many-to-one ``y``.
    """
    x = _check_windows("x", x)
    H = check_positive_int("horizon", horizon)
    return np.tile(x[:, -1, :], (1, H))  # (N, H*F)


def seasonal_naive_forecast(x, season: int, horizon: int = 1) -> np.ndarray:
    """The seasonal naive forecast: each future value equals the value one season earlier.

    Parameters
    ----------
    x : ndarray, shape (N, L, F) or (N, L)
        Input windows; the season must fit in them: ``season <= L``.
    season : int
        m, the period in steps (12 for monthly data with a yearly cycle).
    horizon : int
        H, as given to :func:`make_windows`.

    Returns
    -------
    ndarray, shape (N, H * F)

    Notes
    -----
    Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*, sec. 5.2:
    ``y_hat_{T+h} = y_{T+h-m(k+1)}`` with ``k = floor((h - 1) / m)``, h = 1..H, i.e. the value of
    the same season in the last observed cycle. In window coordinates (last step ``L - 1``):
    ``y_hat[i, (h-1) F + f] = x[i, L - 1 + h - m ceil(h / m), f]``. With m = 1 this is the naive
    forecast.
    """
    x = _check_windows("x", x)
    m = check_positive_int("season", season)
    H = check_positive_int("horizon", horizon)
    L = x.shape[1]
    if m > L:
        raise ValueError(f"season must be at most the window length (lookback = {L}) to find last cycle's value, "
                         f"got {m}")
    steps = [L - 1 + h - m * math.ceil(h / m) for h in range(1, H + 1)]
    return np.concatenate([x[:, t, :] for t in steps], axis=1)  # (N, H*F)


# --------------------------------------------------------------------------- one-call preparation
@dataclass
class ForecastData:
    """Windows of the three parts of a split, scaled, with the fitted scaler.

    ``x_*`` are (N, L, F) and ``y_*`` (N, H F) or (N, L, H F), in scaled units; ``*_raw`` are
    the same windows and targets in original units (for baselines and error reports).
    ``x_val``/``y_val`` and their raw versions are None when the split has no validation part.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray
    scaler: Scaler | None
    x_test_raw: np.ndarray
    y_test_raw: np.ndarray
    x_val_raw: np.ndarray | None = None
    y_val_raw: np.ndarray | None = None


_SCALERS = {"minmax": MinMaxScaler, "standard": StandardScaler}


def prepare_forecast(series, lookback: int, *, horizon: int = 1, train_frac: float = 0.7, val_frac: float = 0.15,
                     scaler="minmax", many_to_many: bool = False) -> ForecastData:
    """Split by time, fit the scaler on the training part, and window each part (leakage rule above).

    Parameters
    ----------
    series : ndarray, shape (T,) or (T, F)
    lookback, horizon, many_to_many
        As in :func:`make_windows`.
    train_frac, val_frac : float
        As in :func:`split_by_time`.
    scaler : "minmax", "standard", None, or an unfitted Scaler
        Fitted on the training part only; None keeps original units.

    Returns
    -------
    ForecastData
        Validation windows take the training tail as context; test windows take the tail of
        training + validation, so each part's targets start at its first step.
    """
    train, val, test = split_by_time(series, train_frac, val_frac)
    if isinstance(scaler, str):
        if scaler not in _SCALERS:
            raise ValueError(f"scaler must be one of {', '.join(map(repr, _SCALERS))}, None or a Scaler; "
                             f"got {scaler!r}")
        scaler = _SCALERS[scaler]()
    elif scaler is not None and not isinstance(scaler, Scaler):
        raise TypeError(f"scaler must be a name, None or a Scaler instance, got {type(scaler).__name__}")
    if scaler is not None:
        scaler.fit(train)
    scale = (lambda v: v) if scaler is None else scaler.transform

    def windows(part, context):
        try:
            return make_windows(part, lookback, horizon, many_to_many, context=context)
        except ValueError as exc:
            raise ValueError(f"cannot window the split (parts of {len(train)}, {len(val)}, {len(test)} steps): "
                             f"{exc}") from None

    x_tr, y_tr = windows(scale(train), None)
    before_test = np.concatenate([train, val])
    x_te_raw, y_te_raw = windows(test, before_test)
    x_te, y_te = windows(scale(test), scale(before_test))
    x_va = y_va = x_va_raw = y_va_raw = None
    if len(val):
        x_va, y_va = windows(scale(val), scale(train))
        x_va_raw, y_va_raw = windows(val, train)
    return ForecastData(x_tr, y_tr, x_va, y_va, x_te, y_te, scaler, x_te_raw, y_te_raw, x_va_raw, y_va_raw)
