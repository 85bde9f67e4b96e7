"""The experiments' training: one update is the library's training step (:func:`_step`, a divergence
turned into :class:`_Diverged`), inference runs in chunks (:func:`_predict`), and a learning curve trains
on fresh batches, evaluated at fixed intervals (:func:`_learning_curve`), keeping its progress at every
evaluation in :class:`CurveCheckpoints` so that a stopped run resumes where it was."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rnnlab._files import write_atomic
from rnnlab.nn.state import forward_with_states
from rnnlab.nn.step import StepDiverged, train_step
from rnnlab.training.checkpoint import CheckpointError, restore_rng_states, rng_states

#: the format of a learning-curve checkpoint (``checkpoints/<key>.npz``)
CURVE_CHECKPOINT_FORMAT = "rnnlab-curve-checkpoint"
#: the version of :data:`CURVE_CHECKPOINT_FORMAT` this code reads and writes
CURVE_CHECKPOINT_VERSION = 1
_KEY = re.compile(r"[A-Za-z0-9_.=-]+")
_CHECKPOINT_NAME = re.compile(r"[A-Za-z0-9_.=-]+\.npz")


class _Diverged(Exception):
    """A step produced a value that is not finite (or beyond a stated bound); the message says which."""


def _step(model, loss_fn, optimizer, x, y, mask=None, *, clip_norm: float | None = None, states=None):
    """One update through the library's training step (:func:`rnnlab.nn.step.train_step`), with ``mask``
    marking the outputs the loss counts; :class:`_Diverged` when it finds a value that is not finite
    (the weights are then unchanged). Returns the step's :class:`~rnnlab.nn.step.StepResult`."""
    try:
        return train_step(model, loss_fn, optimizer, x, y, loss_mask=mask, clip_norm=clip_norm, states=states)
    except StepDiverged as exc:
        raise _Diverged(str(exc)) from None


def _predict(model, x, batch: int = 500) -> np.ndarray:
    """The model's outputs on ``x`` in chunks of ``batch`` sequences, inference mode; :class:`_Diverged`
    if a float overflows."""
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            return np.concatenate([model(x[i:i + batch]) for i in range(0, len(x), batch)], axis=0)
    except FloatingPointError as exc:
        raise _Diverged(f"the forward pass on the validation data overflowed ({exc})") from None


def _carry(model, x, states):
    """The state map after reading ``x`` from ``states`` in inference mode (no update); :class:`_Diverged`
    if a float overflows."""
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            return forward_with_states(model, x, states)[1]
    except FloatingPointError as exc:
        raise _Diverged(f"the forward pass overflowed ({exc})") from None


class CurveCheckpoints:
    """Where the learning curves of one experiment run keep their progress: ``directory/<key>.npz`` per
    (task, T, cell) run, rewritten (atomically) at every evaluation, with the weights, the optimizer's
    state, the training stream's generator (and any of the model's), the curve so far and the seconds
    trained; no pickle.

    ``identity`` (the experiment, seed and settings, as JSON) is stored in each file: a checkpoint of
    other settings is refused on resume, naming the settings that differ. A curve that has ended keeps
    its file (marked finished) until :meth:`discard`, which the experiment calls once its report is
    written, so a resumed run redoes no finished curve. ``restored_seconds`` adds up the training time
    of the earlier parts of the curves read back.
    """

    def __init__(self, directory, identity: dict):
        self.directory = Path(directory)
        self.identity = json.loads(json.dumps(identity))  # tuples as lists, as read back
        self.restored_seconds = 0.0

    def files(self) -> list[Path]:
        """The checkpoint files of this naming in the directory (none if it does not exist)."""
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir() if _CHECKPOINT_NAME.fullmatch(p.name) and p.is_file())

    def _path(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ValueError(f"checkpoint key must be letters, digits and '_.=-', got {key!r}")
        return self.directory / f"{key}.npz"

    def save(self, key: str, model, optimizer, rng: np.random.Generator, progress: dict) -> None:
        """Write ``key``'s checkpoint: ``model``'s weights, ``optimizer.state_dict()``, ``rng``'s state and
        ``progress`` (JSON: the curve, the sequences seen, ...)."""
        meta = {"format": CURVE_CHECKPOINT_FORMAT, "format_version": CURVE_CHECKPOINT_VERSION,
                "identity": self.identity, "input_shape": list(model.input_shape),
                "rng": rng_states(rng, model), "progress": progress, "optimizer_scalars": {}}
        arrays = {f"param.{name}": value for name, value in model.named_parameters()}
        for name, value in optimizer.state_dict().items():
            if isinstance(value, np.ndarray):
                arrays[f"optimizer.{name}"] = value
            else:
                meta["optimizer_scalars"][name] = value
        arrays["meta"] = np.array(json.dumps(meta))
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        self.directory.mkdir(parents=True, exist_ok=True)
        write_atomic(self._path(key), buffer.getvalue())

    def load(self, key: str, model, optimizer, rng: np.random.Generator) -> dict | None:
        """Restore ``key``'s checkpoint into ``model`` (built from the saved input shape if need be),
        ``optimizer`` and ``rng`` and return its progress; None when there is none. A
        :class:`~rnnlab.training.checkpoint.CheckpointError` when the file is not a checkpoint of this code, a
        ValueError when it was written with other settings."""
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
            meta = json.loads(str(arrays.pop("meta")))
        except (OSError, ValueError, KeyError) as exc:
            raise CheckpointError(f"'{path}' is not a readable learning-curve checkpoint ({exc}); remove it to start "
                             "that run again") from None
        if meta.get("format") != CURVE_CHECKPOINT_FORMAT or meta.get("format_version") != CURVE_CHECKPOINT_VERSION:
            raise CheckpointError(f"'{path}' is not a learning-curve checkpoint of version {CURVE_CHECKPOINT_VERSION} "
                             f"(format {meta.get('format')!r}, version {meta.get('format_version')!r})")
        if meta["identity"] != self.identity:
            differ = _differences(meta["identity"], self.identity)
            raise ValueError(f"'{path}' was written by a run with other settings ({'; '.join(differ)}): resume with "
                             "the same options, or choose another output directory")
        if not model.built:
            model.build(tuple(meta["input_shape"]))
        model.set_weights({name[len("param."):]: value for name, value in arrays.items() if name.startswith("param.")})
        optimizer.load_state_dict({**{name[len("optimizer."):]: value for name, value in arrays.items()
                                      if name.startswith("optimizer.")}, **meta["optimizer_scalars"]})
        restore_rng_states(rng, model, meta["rng"])
        self.restored_seconds += meta["progress"].get("seconds", 0.0)
        return meta["progress"]

    def discard(self) -> None:
        """Remove the checkpoint files (this naming only) and the directory if that leaves it empty."""
        for path in self.files():
            path.unlink(missing_ok=True)
        if self.directory.is_dir() and not any(self.directory.iterdir()):
            self.directory.rmdir()


def _differences(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """``key: saved -> current`` for every (nested) key whose value differs."""
    out = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} in the checkpoint, {b!r} now")
    return out


def _learning_curve(model, loss_fn, optimizer, draw_batch: Callable[[], tuple], evaluate: Callable[[], dict], *,
                    batch_size: int, max_sequences: int, eval_every: int, clip_norm: float | None,
                    solved: Callable[[dict], bool], stop_when_solved: bool, log: Callable[[str], None],
                    label: str, checkpoints: CurveCheckpoints | None = None, key: str | None = None,
                    rng: np.random.Generator | None = None) -> dict:
    """Train on fresh batches, evaluating every ``eval_every`` training sequences (and before training).

    Returns ``{"sequences": [...], <metric>: [...], "train_loss": [...], "solved_at": int | None,
    "stopped": str, "seconds": float}``: ``train_loss[i]`` is the mean training loss of the updates since
    the previous evaluation (None at the first point), ``solved_at`` the training sequences seen at the
    first evaluation where ``solved(metrics)`` holds, ``stopped`` why the run ended and ``seconds`` the
    time it took (all its parts).

    With ``checkpoints``, the progress is saved under ``key`` after every evaluation (``rng`` is the
    generator ``draw_batch`` draws from), and a saved one is resumed first: the resumed curve is the one
    an uninterrupted run gives, number for number. A curve that had ended is returned as it was.
    """
    if (checkpoints is None) != (key is None) or (checkpoints is not None and rng is None):
        raise ValueError("checkpoints, key and rng go together: give all three or none")
    record: dict = {"sequences": [], "train_loss": []}
    seen, since, next_eval, earlier = 0, [], eval_every, 0.0
    state = {"solved_at": None}
    saved = None if checkpoints is None else checkpoints.load(key, model, optimizer, rng)
    if saved is not None:
        if saved["finished"]:
            log(f"{label}: ended in an earlier part ({saved['record']['stopped']})")
            return saved["record"]
        record, seen, next_eval, earlier = saved["record"], saved["seen"], saved["next_eval"], saved["seconds"]
        state["solved_at"] = saved["solved_at"]
        log(f"{label}: resumed at {seen:,} sequences")
    started = time.perf_counter()

    def seconds() -> float:
        return round(earlier + time.perf_counter() - started, 2)

    def save(finished: bool) -> None:
        if checkpoints is not None:
            checkpoints.save(key, model, optimizer, rng, {"finished": finished, "record": record, "seen": seen,
                                                          "next_eval": next_eval, "solved_at": state["solved_at"],
                                                          "seconds": seconds()})

    def checkpoint() -> bool:
        metrics = evaluate()
        record["sequences"].append(seen)
        record["train_loss"].append(float(np.mean(since)) if since else None)
        for name, value in metrics.items():
            record.setdefault(name, []).append(value)
        since.clear()
        if state["solved_at"] is None and solved(metrics):
            state["solved_at"] = seen
        log(f"{label}: {seen:,} sequences, " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        return state["solved_at"] is not None

    stopped = f"the budget of {max_sequences:,} training sequences was used"
    try:
        if saved is None:
            done = checkpoint()
            save(False)
        else:
            done = state["solved_at"] is not None
        while seen < max_sequences and not (done and stop_when_solved):
            x, y, mask = draw_batch()
            value = _step(model, loss_fn, optimizer, x, y, mask, clip_norm=clip_norm).loss
            seen += batch_size
            since.append(value)
            if seen >= next_eval or seen >= max_sequences:
                done = checkpoint()
                next_eval += eval_every
                save(False)
        if done and stop_when_solved:
            stopped = f"solved after {state['solved_at']:,} sequences (the run stops once solved)"
    except _Diverged as exc:
        stopped = f"diverged after {seen:,} sequences: {exc}"
        log(f"{label}: {stopped}")
    record["solved_at"] = state["solved_at"]
    record["stopped"] = stopped
    record["seconds"] = seconds()
    save(True)
    return record

