"""The registry: :class:`Experiment` (one experiment's settings per mode and its compute, findings, tables and
draw functions; :meth:`Experiment.run` writes a run's files), the five of them in :data:`EXPERIMENTS`,
:func:`get` by name, and :func:`command_line`, the command that reproduces a run."""

from __future__ import annotations

import numbers
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from rnnlab._files import write_atomic
from rnnlab._validation import check_number, check_positive_int
from rnnlab.lab.config import ConfigError
from rnnlab.lab.experiments._cells import CELLS, CHRONO_CELLS
from rnnlab.lab.experiments._curves import CurveSettings
from rnnlab.lab.experiments._loop import CurveCheckpoints
from rnnlab.lab.experiments._report import _Matplotlib, _report_html, _write_json
from rnnlab.lab.experiments.adding import _compute_adding, _draw_adding, _findings_adding, _tables_adding
from rnnlab.lab.experiments.copy import _compute_copy, _draw_copy, _findings_copy, _tables_copy
from rnnlab.lab.experiments.exploding import (
    ExplodingSettings,
    _compute_exploding,
    _draw_exploding,
    _findings_exploding,
    _tables_exploding,
)
from rnnlab.lab.experiments.truncation import (
    TruncationSettings,
    _compute_truncation,
    _draw_truncation,
    _findings_truncation,
    _tables_truncation,
)
from rnnlab.lab.experiments.vanishing import (
    VanishingSettings,
    _compute_vanishing,
    _draw_vanishing,
    _findings_vanishing,
    _tables_vanishing,
)
from rnnlab.training.distributed import launch_rank, world

#: how much an experiment runs: ``fast`` (a quick check) or ``full`` (the published figures)
MODES = ("fast", "full")
#: the cells the learning-curve experiments train by default (``--cells`` chooses others)
ADDING_CELLS = ("rnn_tanh", "irnn", "lstm", "lstm-chrono", "gru")
COPY_CELLS = ("lstm", "lstm-chrono", "gru")
#: the default output directory, relative to the working directory: ``experiments/NAME``
DEFAULT_OUT = "experiments"
#: where a learning-curve experiment keeps its checkpoints while it runs, inside its output directory
CHECKPOINT_DIR = "checkpoints"


@dataclass(frozen=True)
class Experiment:
    """One experiment: its settings per mode and how to compute, tabulate, interpret and draw it.

    ``run(out_dir, mode=, seed=, progress=)`` does everything and returns the results dict (what
    ``results.json`` holds). The learning-curve experiments (``adding``, ``copy``) also take
    ``checkpoints`` in ``compute`` and keep their progress in ``out_dir/checkpoints`` while they run
    (``run(..., resume=True)`` continues a stopped run).
    """

    name: str
    title: str
    summary: str                          # one line, for ``--list``
    settings: Mapping[str, object]        # mode -> a frozen settings dataclass
    compute: Callable                     # (settings, seed, log[, checkpoints]) -> dict of numbers
    findings: Callable                    # results -> list of sentences written from the numbers
    tables: Callable                      # results -> list of (caption, header, rows)
    draw: Callable                        # (results, _Matplotlib) -> list of (file name, caption, PNG bytes)
    full_estimate: str                    # the full mode's run time on one core, measured or estimated

    def _check_timesteps(self, timesteps) -> tuple[int, ...]:
        """``timesteps`` as a tuple of positive ints, for an experiment whose settings hold a tuple of T."""
        def several_lengths(e: Experiment) -> bool:
            return isinstance(getattr(e.settings["fast"], "timesteps", None), tuple)

        if not several_lengths(self):
            several = [e.name for e in EXPERIMENTS.values() if several_lengths(e)]
            raise ValueError(f"timesteps can be chosen for the experiments that run several sequence lengths "
                             f"({', '.join(several)}), not for {self.name!r}")
        if isinstance(timesteps, (str, bytes)) or not isinstance(timesteps, (list, tuple)) or not timesteps:
            raise TypeError(f"timesteps must be a non-empty list of positive ints, got {timesteps!r}")
        for T in timesteps:
            if isinstance(T, bool) or not isinstance(T, numbers.Integral) or T < 1:
                raise ValueError(f"timesteps must be positive ints, got {T!r} in {list(timesteps)!r}")
        return tuple(int(T) for T in timesteps)

    def _curves_only(self, option: str) -> None:
        """A ValueError unless the experiment trains learning curves (its settings are :class:`CurveSettings`)."""
        if not isinstance(self.settings["fast"], CurveSettings):
            curves = [e.name for e in EXPERIMENTS.values() if isinstance(e.settings["fast"], CurveSettings)]
            raise ValueError(f"{option} can be chosen for the learning-curve experiments ({', '.join(curves)}), "
                             f"not for {self.name!r}")

    def _check_cells(self, cells) -> tuple[str, ...]:
        """``cells`` as a tuple of distinct names of :data:`CELLS`, for a learning-curve experiment."""
        self._curves_only("cells")
        if isinstance(cells, (str, bytes)) or not isinstance(cells, (list, tuple)) or not cells:
            raise TypeError(f"cells must be a non-empty list of cell names, got {cells!r}")
        for cell in cells:
            if not isinstance(cell, str) or cell not in CELLS:
                raise ValueError(f"unknown cell {cell!r} in {list(cells)!r}; valid choices: {', '.join(CELLS)}")
        repeated = sorted({c for c in cells if list(cells).count(c) > 1})
        if repeated:
            raise ValueError(f"cells must be distinct, got {', '.join(map(repr, repeated))} more than once "
                             f"in {list(cells)!r}")
        return tuple(cells)

    def _check_lr(self, lr) -> float:
        """``lr``, Adam's learning rate, as a finite float > 0, for a learning-curve experiment."""
        self._curves_only("lr")
        return check_number("lr", lr, positive=True)

    def _check_batch_size(self, batch_size) -> int:
        """``batch_size``, the training sequences per step, as a positive int, for a learning-curve experiment."""
        self._curves_only("batch_size")
        return check_positive_int("batch_size", batch_size)

    def _check_sequences(self, sequences, mode: str = "fast", batch_size=None) -> int:
        """``sequences``, the training budget per run, as a positive multiple of the batch size (``batch_size``
        when given, else the mode's)."""
        self._curves_only("sequences")
        batch = self.settings[mode].batch_size if batch_size is None else self._check_batch_size(batch_size)
        where = f"the {mode} mode's batch size" if batch_size is None else "the batch size"
        if isinstance(sequences, bool) or not isinstance(sequences, numbers.Integral):
            raise TypeError(f"sequences must be a positive int, got {type(sequences).__name__} {sequences!r}")
        if sequences < 1 or sequences % batch:
            raise ValueError(f"sequences must be a positive multiple of {where} {batch} "
                             f"(the runs train whole batches), got {sequences}")
        return int(sequences)

    def _settings(self, mode: str, *, timesteps=None, cells=None, sequences=None, lr=None, batch_size=None):
        """The mode's settings with ``timesteps``, ``cells``, ``sequences``, ``lr`` and ``batch_size`` (each
        checked) replacing its own; a ValueError when a chrono cell meets a T < 3 (it takes ``T_max = T``, which
        must be > 2), or when the budget is not a multiple of the batch size."""
        settings = self.settings[mode]
        if timesteps is not None:
            settings = replace(settings, timesteps=self._check_timesteps(timesteps))
        if cells is not None:
            settings = replace(settings, cells=self._check_cells(cells))
        if lr is not None:
            settings = replace(settings, lr=self._check_lr(lr))
        if batch_size is not None:
            settings = replace(settings, batch_size=self._check_batch_size(batch_size))
        if sequences is not None:
            settings = replace(settings, max_sequences=self._check_sequences(sequences, mode, batch_size))
        elif batch_size is not None and settings.max_sequences % settings.batch_size:
            raise ValueError(f"the {mode} mode's budget of {settings.max_sequences} sequences is not a multiple of "
                             f"batch_size {settings.batch_size}; choose sequences too")
        chrono = [c for c in getattr(settings, "cells", ()) if c in CHRONO_CELLS]
        if chrono and isinstance(settings.timesteps, tuple) and min(settings.timesteps) < 3:
            raise ValueError(f"the chrono cells ({', '.join(chrono)}) take T_max = T, which must be > 2; "
                             f"got timesteps {list(settings.timesteps)!r}")
        return settings

    def run(self, out_dir, *, mode: str = "fast", seed: int = 0, timesteps=None, cells=None, sequences=None,
            lr=None, batch_size=None, resume: bool = False, progress: Callable[[str], None] | None = None) -> dict:
        """Run the experiment and write ``results.json``, the PNG figures and ``report.html`` into ``out_dir``.

        Parameters
        ----------
        out_dir : str or os.PathLike
            Created if missing; files in it with the same names are replaced (atomically).
        mode : "fast" or "full"
            Fast: seconds, small sizes (tests). Full: the sizes the documentation reports.
        seed : int >= 0
            Seeds the data and the weights.
        timesteps : sequence of int > 0, optional
            The sequence lengths T to run instead of the mode's (``adding`` and ``copy`` only). Each T
            has its own data and weight seeds, so a T gives the same curves alone as among others.
        cells : sequence of str, optional
            The cells to train instead of the mode's (``adding`` and ``copy`` only): names of
            :data:`~rnnlab.lab.experiments.CELLS`. A chrono cell (``lstm-chrono``, ``gru-chrono``) takes
            ``T_max = T`` (for ``copy``, T is the delay), so it needs every T >= 3.
        sequences : int, optional
            The training budget per run, in sequences, instead of the mode's ``max_sequences``
            (``adding`` and ``copy`` only); a multiple of the batch size.
        lr : float > 0, optional
            Adam's learning rate instead of the mode's (``adding`` and ``copy`` only).
        batch_size : int > 0, optional
            Training sequences per step instead of the mode's (``adding`` and ``copy`` only).
        resume : bool
            Continue a stopped run of ``adding`` or ``copy`` from ``out_dir/checkpoints`` (written at
            every evaluation, removed once the report is written), with the same options: the results
            equal an uninterrupted run's, number for number, and ``elapsed_seconds`` counts every part.
            Without it, a directory holding such checkpoints is refused (ValueError), so that no
            progress is lost by forgetting the flag.
        progress : callable(str), optional
            Receives a line per milestone (a run finished, an evaluation).

        Returns
        -------
        dict
            JSON-serialisable: ``experiment``, ``mode``, ``seed``, ``command``, ``settings``, the
            experiment's numbers, ``findings`` (sentences) and ``figures`` (file names and captions).

        Raises
        ------
        PlotDependencyError
            Before any computation, when matplotlib is missing.
        ValueError
            Besides bad options: ``resume`` for an experiment without checkpoints, or with none to resume
            in ``out_dir``; checkpoints in ``out_dir`` without ``resume``, or of other settings with it.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(repr(m) for m in MODES)}; got {mode!r}")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"seed must be a non-negative int, got {type(seed).__name__} {seed!r}")
        if seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed}")
        if not isinstance(out_dir, (str, os.PathLike)):
            raise TypeError(f"out_dir must be a path (str or os.PathLike), got {type(out_dir).__name__} {out_dir!r}")
        if progress is not None and not callable(progress):
            raise TypeError(f"progress must be a callable taking a str, or None; got {type(progress).__name__}")
        if not isinstance(resume, bool):
            raise TypeError(f"resume must be a bool, got {type(resume).__name__} {resume!r}")
        mpl = _Matplotlib()  # fail before computing, not after
        log = progress or (lambda message: None)
        settings = self._settings(mode, timesteps=timesteps, cells=cells, sequences=sequences, lr=lr,
                                  batch_size=batch_size)  # refused before anything is written
        out = Path(out_dir)
        checkpoints = self._checkpoints(out, settings, int(seed), resume)
        out.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        if checkpoints is None:
            measured = self.compute(settings, int(seed), log)
        else:
            measured = self.compute(settings, int(seed), log, checkpoints=checkpoints)
        restored = 0.0 if checkpoints is None else checkpoints.restored_seconds
        command = command_line(self.name, mode, int(seed), out_dir,
                               None if timesteps is None else settings.timesteps,
                               None if cells is None else settings.cells,
                               None if sequences is None else settings.max_sequences,
                               None if lr is None else settings.lr,
                               None if batch_size is None else settings.batch_size)
        results = {"experiment": self.name, "title": self.title, "mode": mode, "seed": int(seed),
                   "command": command, "settings": asdict(settings),
                   **measured, "elapsed_seconds": round(time.perf_counter() - started + restored, 2)}
        results["findings"] = self.findings(results)
        if launch_rank() != 0:  # under mpiexec the ranks shared the runs; rank 0 writes the report
            results["figures"] = []
            return results
        _write_json(out / "results.json", results)  # the numbers are safe before anything is drawn
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a cosmetic matplotlib warning must not lose a finished run
            figures = self.draw(results, mpl)
        for filename, _, png in figures:
            write_atomic(out / filename, png)
        results["figures"] = [{"file": filename, "caption": caption} for filename, caption, _ in figures]
        _write_json(out / "results.json", results)
        write_atomic(out / "report.html", _report_html(results, self.tables(results), figures).encode("utf-8"))
        if checkpoints is not None:
            checkpoints.discard()  # the run is complete: its report holds everything they did
        return results

    def resumable(self, out_dir) -> bool:
        """Whether ``out_dir`` holds the checkpoints of an unfinished run of a learning-curve experiment, which
        ``run(out_dir, ..., resume=True)`` continues (always False for the other experiments)."""
        return (isinstance(self.settings["fast"], CurveSettings)
                and bool(CurveCheckpoints(Path(out_dir) / CHECKPOINT_DIR, {}).files()))

    def _checkpoints(self, out: Path, settings, seed: int, resume: bool) -> CurveCheckpoints | None:
        """The learning curves' checkpoints in ``out/checkpoints`` (None for the other experiments), after the
        checks of ``resume``: checkpoints there need it, and it needs checkpoints there."""
        if not isinstance(settings, CurveSettings):
            if resume:
                curves = [e.name for e in EXPERIMENTS.values() if isinstance(e.settings["fast"], CurveSettings)]
                raise ValueError(f"resume applies to the learning-curve experiments ({', '.join(curves)}), which "
                                 f"keep checkpoints; {self.name!r} runs in minutes and starts again")
            return None
        checkpoints = CurveCheckpoints(out / CHECKPOINT_DIR, {"experiment": self.name, "seed": seed,
                                                              "settings": asdict(settings)})
        held = checkpoints.files()  # under mpiexec every rank looks before any rank writes (the barrier below)
        if held and not resume:
            raise ValueError(f"'{out}' holds the checkpoints of an unfinished run ({len(held)} in "
                             f"'{checkpoints.directory}'): resume it (--resume), or choose another output directory")
        if resume and not held:
            raise ValueError(f"nothing to resume: '{checkpoints.directory}' holds no checkpoint (a finished run "
                             "removes its own); start the run without resume")
        comm = world()
        if comm is not None:
            comm.barrier(timed=False)
        return checkpoints


def command_line(name: str, mode: str, seed: int, out_dir, timesteps=None, cells=None, sequences=None, lr=None,
                 batch_size=None) -> str:
    """The ``rnnlab experiment`` command that reproduces a run (``--out`` only when not the default)."""
    parts = ["rnnlab", "experiment", name]
    if mode == "full":
        parts.append("--full")
    if cells is not None:
        parts += ["--cells", *cells]
    if timesteps is not None:
        parts += ["--timesteps", *map(str, timesteps)]
    if sequences is not None:
        parts += ["--sequences", str(sequences)]
    if lr is not None:
        parts += ["--lr", repr(float(lr))]
    if batch_size is not None:
        parts += ["--batch-size", str(batch_size)]
    if seed != 0:
        parts += ["--seed", str(seed)]
    if Path(out_dir) != Path(DEFAULT_OUT) / name:
        parts += ["--out", str(out_dir)]
    return " ".join(parts)


#: the experiments by name, as ``rnnlab experiment NAME`` runs them
EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (
    Experiment(
        name="vanishing",
        title="Vanishing gradients: ||dL_T/dh_(T-lag)|| against the lag",
        summary="gradient norm of a last-step loss against the time lag, RNN(tanh/sigmoid/relu), LSTM, GRU, log scale",
        settings={"fast": VanishingSettings(hidden_size=16, timesteps=40, input_size=4, batch=4, repeats=2),
                  "full": VanishingSettings(hidden_size=64, timesteps=200, input_size=8, batch=32, repeats=5)},
        compute=_compute_vanishing, findings=_findings_vanishing, tables=_tables_vanishing, draw=_draw_vanishing,
        full_estimate="about 5 seconds"),
    Experiment(
        name="adding",
        title="The adding problem: validation MSE against training sequences",
        summary="adding problem at T = 50, 100, 200, 400: RNN(tanh), IRNN, LSTM, LSTM (chrono), GRU against the "
                "1/6 baseline",
        settings={"fast": CurveSettings(timesteps=(10,), cells=ADDING_CELLS, hidden_size=8,
                                        batch_size=20, max_sequences=400, eval_every=100, val_size=100, lr=1e-2,
                                        clip_norm=1.0, stop_when_solved=False),
                  "full": CurveSettings(timesteps=(50, 100, 200, 400), cells=ADDING_CELLS,
                                        hidden_size=128, batch_size=50, max_sequences=100_000, eval_every=2_500,
                                        val_size=500, lr=1e-3, clip_norm=1.0, stop_when_solved=True)},
        compute=_compute_adding, findings=_findings_adding, tables=_tables_adding, draw=_draw_adding,
        full_estimate="at most about 50 minutes; a run stops once solved"),
    Experiment(
        name="copy",
        title="The copy-memory task: cross-entropy against training sequences",
        summary="copy memory at T = 100, 200 and 500: LSTM, LSTM (chrono), GRU against the memoryless baseline, "
                "1,000,000 sequences at most",
        settings={"fast": CurveSettings(timesteps=(5,), cells=COPY_CELLS, hidden_size=8,
                                        batch_size=20, max_sequences=300, eval_every=100, val_size=60, lr=1e-2,
                                        clip_norm=1.0, stop_when_solved=False),
                  "full": CurveSettings(timesteps=(100, 200, 500), cells=COPY_CELLS, hidden_size=128,
                                        batch_size=50, max_sequences=1_000_000, eval_every=5_000, val_size=500,
                                        lr=1e-3, clip_norm=1.0, stop_when_solved=True)},
        compute=_compute_copy, findings=_findings_copy, tables=_tables_copy, draw=_draw_copy,
        full_estimate="at most about 13 hours (a whole budget per cell: 36 min at T = 100, measured; "
                      "about 1.1 h at T = 200 and 2.6 h at T = 500); a run stops once solved"),
    Experiment(
        name="exploding",
        title="Exploding gradients: training with and without gradient clipping",
        summary="an IRNN trained twice with a high SGD learning rate, without and with clip_grad_norm: loss and norm",
        settings={"fast": ExplodingSettings(timesteps=40, hidden_size=16, batch_size=20, steps=60, lr=1e-2,
                                            clip_norm=1.0, loss_bound=1e6, grad_bound=1e12),
                  "full": ExplodingSettings(timesteps=100, hidden_size=64, batch_size=20, steps=2000, lr=1e-3,
                                            clip_norm=1.0, loss_bound=1e6, grad_bound=1e12)},
        compute=_compute_exploding, findings=_findings_exploding, tables=_tables_exploding, draw=_draw_exploding,
        full_estimate="about 10 seconds"),
    Experiment(
        name="truncation",
        title="Truncated BPTT: the window k against the longest dependency learned",
        summary="an LSTM learns delayed recall with truncated BPTT windows k: accuracy per lag, longest lag per k",
        settings={"fast": TruncationSettings(windows=(2, 6), lags=(1, 3), hidden_size=8, batch=8, steps=1200,
                                             val_batch=16, val_steps=300, lr=1e-2, clip_norm=1.0, threshold=0.9),
                  "full": TruncationSettings(windows=(2, 5, 10, 20, 40), lags=(1, 2, 4, 8, 12, 16, 24, 32),
                                             hidden_size=32, batch=32, steps=30_000, val_batch=64, val_steps=3_000,
                                             lr=1e-2, clip_norm=1.0, threshold=0.9)},
        compute=_compute_truncation, findings=_findings_truncation, tables=_tables_truncation, draw=_draw_truncation,
        full_estimate="about 4 minutes"),
)}


def get(name: str) -> Experiment:
    """The experiment called ``name``; a :class:`~rnnlab.lab.config.ConfigError` names the valid choices."""
    if not isinstance(name, str) or name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; valid choices: {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]
