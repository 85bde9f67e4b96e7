"""The ``forecasting`` task on the user's own CSV file: several input series, one or several targets.

``[data] path`` names a ``.csv`` or ``.tsv`` file (optionally compressed) read by
:func:`rnnlab.data.series_csv.read_series_csv`: ``columns`` are the inputs (F features per step,
default: the targets), ``target`` the K series forecast ``horizon`` steps ahead, ``date_column``
orders the rows and labels the predictions, ``missing`` says what to do with gaps.

Pipeline (the leakage rule of :mod:`rnnlab.data.timeseries`): the rows are split by time,
``1 - val_frac - test_frac`` / ``val_frac`` / ``test_frac`` (defaults 0.15, 0.15); one scaler is
fitted on the training rows of the inputs and one on those of the targets; each part is cut into
windows ``x`` (N, lookback, F) of the inputs with targets ``y`` (N, horizon K) of the targets, the
validation and test windows looking back into the rows before them. Errors are reported in the
targets' units next to the naive forecast (each target's last value in the window) and, with
``season``, the seasonal-naive one.

The run directory also holds ``series.json``: the input and target columns, the date column and
both fitted scalers (what ``rnnlab predict --file`` and ``rnnlab evaluate --path`` need), and, with
matplotlib installed, ``forecast.png``: each target over the test part against its date (or line)
with the model's forecast one step ahead.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from rnnlab._files import write_atomic
from rnnlab.data.batches import ArrayBatches
from rnnlab.data.readers import detect_format, resolve_paths
from rnnlab.data.series_csv import SeriesTable, format_date, read_series_csv
from rnnlab.data.timeseries import (
    MinMaxScaler,
    Scaler,
    StandardScaler,
    make_windows,
    naive_forecast,
    seasonal_naive_forecast,
)
from rnnlab.lab.config import ConfigError, DataConfig, RunConfig
from rnnlab.lab.userdata import data_errors
from rnnlab.nn.grad_mode import no_grad
from rnnlab.nn.state import forward_with_states

__all__ = ["SERIES_FILE", "PLOT_FILE", "build", "draw_forecast", "read_series_info", "file_batches", "predict_file"]

#: a forecasting run's series: columns, targets, window and horizon
SERIES_FILE = "series.json"
#: a forecasting run's drawing of its test forecast
PLOT_FILE = "forecast.png"
_SCALERS = {"minmax": MinMaxScaler, "standard": StandardScaler}


def _inputs(d: DataConfig) -> tuple[str, ...]:
    return d.columns if d.columns is not None else d.target


def _read(source, d: DataConfig, names) -> SeriesTable:
    """The table of ``source``: a path or glob (str) or a list of files, which must name one CSV/TSV file."""
    path_text = source if isinstance(source, str) else ", ".join(map(str, source))
    with data_errors():  # a data file error is a usage error: one line, exit code 2
        paths = resolve_paths(source) if isinstance(source, str) else [Path(p) for p in source]
        if len(paths) != 1:
            raise ConfigError(f"forecasting reads one CSV file; {path_text!r} names {len(paths)} files")
        fmt = detect_format(paths, d.format)
        if fmt not in ("csv", "tsv"):
            raise ConfigError(f"forecasting reads a .csv or .tsv file (optionally .gz/.bz2/.xz); {path_text!r} is "
                              f"{fmt!r}")
        return read_series_csv(paths[0], list(dict.fromkeys(names)), date_column=d.date_column, missing=d.missing,
                               delimiter="\t" if fmt == "tsv" else ",")


def _scaler(name: str) -> Scaler | None:
    return None if name == "none" else _SCALERS[name]()


def _scale(scaler: Scaler | None, values: np.ndarray) -> np.ndarray:
    return values if scaler is None else scaler.transform(values)


def _last_step(y: np.ndarray) -> np.ndarray:
    return y if y.ndim == 2 else y[:, -1]


def _predict(model, x: np.ndarray, target_scaler: Scaler | None, batch_size: int = 256) -> np.ndarray:
    """The model's forecasts (N, horizon K) of the last step, in the targets' units."""
    out = []
    with no_grad():
        for start in range(0, len(x), batch_size):
            y, _ = forward_with_states(model, x[start:start + batch_size], {}, training=False)
            out.append(_last_step(np.asarray(y, dtype=np.float64)))
    y = np.concatenate(out)  # (N, H*K)
    return y if target_scaler is None else target_scaler.inverse_transform(y)


def _errors(forecast: np.ndarray, truth: np.ndarray) -> dict:
    return {"rmse": float(np.sqrt(np.mean((forecast - truth) ** 2))), "mae": float(np.mean(np.abs(forecast - truth)))}


def _original_units(model, x, x_targets_raw, y_raw, target_scaler, d: DataConfig, targets) -> dict:
    """RMSE/MAE of the model and the naive baselines in the targets' units (per target with several)."""
    y_raw = _last_step(y_raw)  # (N, H*K)
    forecasts = {"model": _predict(model, x, target_scaler), "naive": naive_forecast(x_targets_raw, d.horizon)}
    if d.season is not None:
        forecasts["seasonal_naive"] = seasonal_naive_forecast(x_targets_raw, d.season, d.horizon)
    report = {name: _errors(f, y_raw) for name, f in forecasts.items()}
    if len(targets) > 1:
        K = len(targets)
        report["model"]["per_target"] = {t: _errors(forecasts["model"][:, k::K], y_raw[:, k::K])
                                         for k, t in enumerate(targets)}
    return {"original_units": report}


def _windows(inputs, targets, d: DataConfig, context=None):
    """``(x (N, L, F), y (N, H K) or (N, L, H K), x of the targets (N, L, K))`` of one part."""
    ci, ct = (None, None) if context is None else context
    x, _ = make_windows(inputs, d.lookback, d.horizon, d.many_to_many, context=ci)
    x_t, y = make_windows(targets, d.lookback, d.horizon, d.many_to_many, context=ct)
    return x, y, x_t


def build(config: RunConfig) -> dict:
    """The keyword arguments of the task's data (``rnnlab.lab.tasks._Data``): batches, shapes, report, artefacts."""
    d = config.data
    dtype = np.dtype(config.model.dtype)
    inputs, targets = _inputs(d), d.target
    table = _read(d.path, d, [*inputs, *targets])
    if d.limit is not None:
        table = SeriesTable(table.values[:d.limit], table.names, None if table.dates is None else table.dates[:d.limit],
                            table.lines[:d.limit], table.source)
    if d.season is not None and d.season > d.lookback:
        raise ConfigError(f"config [data] season: the seasonal-naive baseline looks one season back within the "
                          f"window, so season must be <= lookback = {d.lookback}; got {d.season}")
    T = len(table.values)
    val_frac = 0.15 if d.val_frac is None else d.val_frac
    test_frac = 0.15 if d.test_frac is None else d.test_frac
    n_train, n_val = round(T * (1 - val_frac - test_frac)), round(T * val_frac)
    n_test = T - n_train - n_val
    needed = d.lookback + d.horizon
    if n_train < needed or n_test < 1 or (val_frac > 0 and n_val < 1):
        least = int(np.ceil(needed / (1 - val_frac - test_frac)))
        raise ConfigError(f"{table.source!r}: a series of {T} rows is too short for lookback = {d.lookback} and "
                          f"horizon = {d.horizon}: its training part ({n_train} rows) needs at least "
                          f"lookback + horizon = {needed} rows and the other parts one row each (about {least} rows "
                          f"in all with val_frac {val_frac} and test_frac {test_frac})")
    cut = {"train": slice(0, n_train), "val": slice(n_train, n_train + n_val), "test": slice(n_train + n_val, T)}
    raw_in, raw_t = table.column(inputs), table.column(targets)  # (T, F), (T, K)
    in_scaler, t_scaler = _scaler(d.scaler), _scaler(d.scaler)
    if in_scaler is not None:
        in_scaler.fit(raw_in[cut["train"]])
        t_scaler.fit(raw_t[cut["train"]])
    s_in, s_t = _scale(in_scaler, raw_in), _scale(t_scaler, raw_t)
    parts = {}
    for name, sl in cut.items():
        if sl.stop == sl.start:
            continue
        before = slice(0, sl.start)
        context = None if name == "train" else (s_in[before], s_t[before])
        x, y, _ = _windows(s_in[sl], s_t[sl], d, context)
        _, y_raw, x_t_raw = _windows(raw_in[sl], raw_t[sl], d, None if name == "train" else
                                     (raw_in[before], raw_t[before]))
        parts[name] = (x.astype(dtype), y.astype(dtype), x_t_raw, y_raw)
    batches = {name: ArrayBatches(x, y, batch_size=d.batch_size, shuffle=(name == "train"), seed=d.seed)
               for name, (x, y, _, _) in parts.items()}

    def report(model, split: str) -> dict:
        x, _, x_t_raw, y_raw = parts[split]
        return _original_units(model, x, x_t_raw, y_raw, t_scaler, d, targets)

    def when(i: int) -> str:
        return format_date(table.dates[i]) if table.dates is not None else f"row {i + 1}"

    spans = "; ".join(f"{name} {sl.stop - sl.start} rows ({when(sl.start)} .. {when(sl.stop - 1)})"
                      for name, sl in cut.items() if sl.stop > sl.start)
    shape = "many-to-many" if d.many_to_many else "many-to-one"
    line = (f"{Path(table.source).name}: {T} rows, inputs {', '.join(inputs)} -> targets {', '.join(targets)}; "
            f"split by time: {spans}; {shape} windows of {d.lookback} -> {d.horizon}: "
            + ", ".join(f"{name} {len(p[0])}" for name, p in parts.items()) + f"; scaler {d.scaler} (fitted on train)")
    info = {"inputs": list(inputs), "targets": list(targets), "date_column": d.date_column,
            "input_scaler": None if in_scaler is None else json.loads(in_scaler.to_json()),
            "target_scaler": None if t_scaler is None else json.loads(t_scaler.to_json())}
    def finish(model, run_dir: Path, log) -> None:
        x, _, _, y_raw = parts["test"]
        K, start = len(targets), cut["test"].start
        where = (table.dates[start:start + len(x)] if table.dates is not None
                 else table.lines[start:start + len(x)].tolist())
        draw_forecast(Path(run_dir) / PLOT_FILE, where, _last_step(y_raw)[:, :K], _predict(model, x, t_scaler)[:, :K],
                      targets, "date" if table.dates is not None else "line", log)

    x_train = parts["train"][0]
    return {"train": batches["train"], "val": batches.get("val"), "test": batches.get("test"), "inputs": "values",
            "n_inputs": x_train.shape[2], "n_outputs": parts["train"][1].shape[-1], "sequence_output": d.many_to_many,
            "loss": "mse", "metrics": ("mse", "mae"), "timesteps": d.lookback, "description": [line],
            "report": report, "finish": finish,
            "artefacts": {SERIES_FILE: (json.dumps(info, indent=1) + "\n").encode("utf-8")}}


def draw_forecast(path: Path, where, truth: np.ndarray, forecast: np.ndarray, names, xlabel: str, log=print) -> bool:
    """Draw each target's ``truth`` (N, K) and one-step ``forecast`` (N, K) against ``where`` (N dates or
    line numbers) into the PNG ``path``, one panel per target. Needs matplotlib: without it, logs and returns
    False."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        log(f"matplotlib is not installed: no {path.name} is drawn (pip install matplotlib to get it)")
        return False
    fig = Figure(figsize=(7, 2.6 * len(names)), dpi=100)
    FigureCanvasAgg(fig)
    for k, name in enumerate(names):
        ax = fig.add_subplot(len(names), 1, k + 1)
        ax.plot(where, truth[:, k], label="actual")
        ax.plot(where, forecast[:, k], label="forecast t+1")
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
        ax.legend()
    ax.set_xlabel(f"{xlabel} (test part)")
    fig.autofmt_xdate()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    write_atomic(path, buffer.getvalue())
    return True


# =========================================================================== a trained run on other files
def read_series_info(run_dir: Path) -> tuple[Scaler | None, Scaler | None]:
    """The fitted input and target scalers of a run (``series.json``)."""
    path = Path(run_dir) / SERIES_FILE
    try:
        info = json.loads(path.read_text("utf-8"))
        return tuple(None if info[k] is None else Scaler.from_json(json.dumps(info[k]))
                     for k in ("input_scaler", "target_scaler"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"the forecasting run's '{path}' is missing or unusable ({exc})") from None


def file_batches(config: RunConfig, scalers, paths) -> tuple:
    """The batches of every window of another CSV file with the same columns for a trained forecaster
    (``rnnlab evaluate --path``), and ``report(model) -> dict``: the number of windows and the errors in
    original units."""
    d = config.data
    in_scaler, t_scaler = scalers
    inputs, targets = _inputs(d), d.target
    table = _read(paths, d, [*inputs, *targets])
    raw_in, raw_t = table.column(inputs), table.column(targets)
    try:
        x, y, _ = _windows(_scale(in_scaler, raw_in), _scale(t_scaler, raw_t), d)
        _, y_raw, x_t_raw = _windows(raw_in, raw_t, d)
    except ValueError as exc:
        raise ConfigError(f"{table.source!r}: {exc}") from None
    dtype = np.dtype(config.model.dtype)
    x = x.astype(dtype)
    batches = ArrayBatches(x, y.astype(dtype), batch_size=d.batch_size, shuffle=False)
    return batches, lambda model: {"windows": len(x), **_original_units(model, x, x_t_raw, y_raw, t_scaler, d,
                                                                        targets)}


def predict_file(config: RunConfig, model, scalers, paths) -> tuple[list, list]:
    """The forecasts after every window of ``lookback`` rows of a CSV file with the input columns: one row per
    window, labelled by its last row's date (or line), with ``target t+h`` for each target and step ahead."""
    d = config.data
    in_scaler, t_scaler = scalers
    inputs = _inputs(d)
    table = _read(paths, d, inputs)
    raw_in = table.column(inputs)  # (T, F)
    if len(raw_in) < d.lookback:
        raise ConfigError(f"{table.source!r}: {len(raw_in)} rows, fewer than the lookback = {d.lookback} rows one "
                          f"forecast reads")
    s_in = _scale(in_scaler, raw_in)
    x = np.lib.stride_tricks.sliding_window_view(s_in, d.lookback, axis=0).transpose(0, 2, 1)  # (N, L, F)
    forecast = _predict(model, np.ascontiguousarray(x).astype(np.dtype(config.model.dtype)), t_scaler)  # (N, H*K)
    header = ["date" if table.dates is not None else "line"] + [f"{t} t+{h + 1}" for h in range(d.horizon)
                                                                for t in d.target]
    ends = range(d.lookback - 1, len(raw_in))
    labels = [format_date(table.dates[i]) if table.dates is not None else int(table.lines[i]) for i in ends]
    return header, [(label, *map(float, row)) for label, row in zip(labels, forecast)]
