"""What a run writes and how it words its numbers: ``results.json`` (:func:`_jsonable`, :func:`_write_json`),
the self-contained ``report.html`` (:func:`_report_html`, :func:`_table_html`), the figures (:class:`_Matplotlib`,
the Agg figure factory; :class:`PlotDependencyError` when matplotlib is missing), and the number formats the
findings and tables share (:func:`_sci`, :func:`_count`, :func:`_pct`, :func:`_finite_list`, :func:`_positive`)."""

from __future__ import annotations

import base64
import html
import io
import json
import math
import numbers
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from rnnlab._files import write_atomic


class PlotDependencyError(ImportError):
    """matplotlib, the optional ``plot`` extra, is missing: the figures cannot be drawn."""


# ============================================================================ small formatting helpers
def _sci(value: float, digits: int = 2) -> str:
    """``0.0887``, ``135`` or ``3.2e-12``: three significant digits between 0.01 and 1000, else scientific."""
    if value == 0:
        return "0"
    return f"{value:.{digits + 1}g}" if 1e-2 <= abs(value) < 1e3 else f"{value:.{digits - 1}e}"


def _count(n: int) -> str:
    return f"{n:,}"


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def _finite_list(values, what: str) -> list[float]:
    """``values`` as a list of floats, refusing NaN and inf (never written silently)."""
    out = [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]
    bad = [i for i, v in enumerate(out) if not math.isfinite(v)]
    if bad:
        raise FloatingPointError(f"{what} holds a non-finite value {out[bad[0]]} at index {bad[0]}")
    return out


def _positive(values) -> np.ndarray:
    """Values for a log axis: zeros and negatives become NaN (not drawn)."""
    a = np.asarray([math.nan if v is None else v for v in values], dtype=np.float64)
    a[~(a > 0)] = math.nan
    return a


# ============================================================================ plotting
class _Matplotlib:
    """The Agg-backed figure factory (no pyplot state), imported only when an experiment runs."""

    def __init__(self):
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError as exc:
            raise PlotDependencyError(
                "the experiments draw their figures with matplotlib, which is not installed: "
                "pip install rnnlab[plot]") from exc
        self._Figure, self._Canvas = Figure, FigureCanvasAgg

    def figure(self, width: float, height: float, rows: int = 1, cols: int = 1):
        """A new figure and the flat list of its ``rows x cols`` axes."""
        fig = self._Figure(figsize=(width, height), dpi=100)
        self._Canvas(fig)
        axes = [fig.add_subplot(rows, cols, i + 1) for i in range(rows * cols)]
        return fig, axes

    @staticmethod
    def png(fig) -> bytes:
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()


# ============================================================================ results.json and report.html
def _jsonable(value, where: str = "results"):
    """Plain JSON types; a NaN or inf raises (a missing value must be None, stated on purpose)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist(), where)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value}: results must hold finite numbers (None for a missing value)")
        return value
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"{where} is a {type(value).__name__}, which JSON cannot hold")


def _write_json(path: Path, results: dict) -> None:
    text = json.dumps(_jsonable(results), indent=1, allow_nan=False) + "\n"
    write_atomic(path, text.encode("utf-8"))


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f2f2f2}code,pre{background:#f6f6f6;padding:2px 4px}img{max-width:100%}figure{margin:1.5em 0}
figcaption{color:#555;font-size:.95em}"""


def _table_html(caption: str, header: list[str], rows: list[list[str]]) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><caption>{esc(caption)}</caption><tr>{head}</tr>{body}</table>"


def _report_html(results: dict, tables, figures) -> str:
    """A self-contained page: title, command, settings, findings, tables, the figures embedded."""
    esc = html.escape
    settings_rows = [[k, ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)]
                     for k, v in results["settings"].items()]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>rnnlab experiment {esc(results['experiment'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(results['title'])}</h1>",
        (f"<p>Reproduce with <code>{esc(results['command'])}</code> ({esc(results['mode'])} mode, seed "
         f"{results['seed']}; {results['elapsed_seconds']:.2f} s of computation).</p>"),
        "<h2>Findings</h2><p>Written from this run's numbers.</p><ul>",
        *(f"<li>{esc(line)}</li>" for line in results["findings"]),
        "</ul><h2>Results</h2>",
        *(_table_html(*t) for t in tables),
        "<h2>Figures</h2>",
        _table_html("Figures of this report", ["file", "shows"], [[f, c] for f, c, _ in figures]),
    ]
    for filename, caption, png in figures:
        data = base64.b64encode(png).decode("ascii")
        parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{esc(caption)}">'
                     f"<figcaption>{esc(filename)}: {esc(caption)}</figcaption></figure>")
    parts += ["<h2>Settings</h2>", _table_html("Settings of this run", ["setting", "value"], settings_rows),
              "<p>All numbers are in <code>results.json</code> beside this page.</p></body></html>"]
    return "\n".join(parts) + "\n"
