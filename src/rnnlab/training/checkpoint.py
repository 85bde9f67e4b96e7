"""Checkpoints of a training run: the run directory's layout, the atomic write of a checkpoint, reading one
back (checksums, format), and the parts of the resume state that are not the trainer's own (random
generators, the loss's configuration).

Layout of ``run_dir``::

    rnnlab-run.json        the mark of a run directory rnnlab owns (written first, by claim_run_dir)
    train_config.json      TrainConfig, the loss, the model's config (the run's resolved configuration)
    train.log              every log line
    history.json/.csv      per-epoch results; <quantity>.png curves
    checkpoint.json        the manifest: which checkpoint is the latest, with SHA-256 of its files
    checkpoints/<name>/    model/ (rnnlab.io.save: config.json + weights.npz), optimizer.npz,
                           streams.npz (carried states, anchors, kept inputs), state.json
                           (epoch, batch, step, history, epoch accumulators, every RNG state,
                           schedule / early stopping / callback states)

A run directory is rnnlab's when it holds ``rnnlab-run.json`` (or, for runs of rnnlab 0.1, a
checkpoint manifest): :func:`claim_run_dir` creates the mark in a new or empty directory and refuses
any other, so a run never writes over files it did not make.

A checkpoint is written into a fresh directory, each file fsynced, then ``checkpoint.json`` is
replaced atomically (temporary file + ``os.replace``) to point at it, then the checkpoint the
previous manifest recorded and any directory of rnnlab's checkpoint naming left by a killed write
(``epochEEEE-batchBBBBBB-stepSSSSSSSSS-xxxxxx``, with ``.tmp-`` in front while written) are deleted;
nothing else in ``checkpoints/`` is touched. A process killed at any moment leaves the previous
complete checkpoint as the latest. A write that fails (a full disk, a read-only directory) removes
its partial directory and raises :class:`RunDirectoryError`; a checkpoint that cannot be read back
(a file missing, corrupt, of another format, or a manifest pointing outside the run) raises
:class:`CheckpointError` naming the file.

Resuming loads the weights, the optimizer state, the RNG state of the trainer and of
every layer that has one (``_rng``: dropout, layers built lazily), the carried recurrent states,
the schedule, early-stopping and callback states, the history and the position (epoch, batch within
it, step), and asks the data for ``batches_from(epoch, batch)``: the run then goes on exactly as
an uninterrupted run with the same seeds would, bit for bit. A run resumed with another optimizer
(``[train]`` may change) starts that optimizer from a fresh state and logs so; ``state.json`` names
the optimizer its state belongs to.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnlab._files import fsync_directory, sha256_file, write_atomic
from rnnlab.io import files as model_io
from rnnlab.nn import losses as losses_module
from rnnlab.nn.module import Module

__all__ = ["Checkpoint", "CheckpointError", "RunDirectoryError", "claim_run_dir", "latest_checkpoint",
           "read_checkpoint", "write_checkpoint"]

CHECKPOINT_FORMAT = "rnnlab-train-checkpoint"
CHECKPOINT_VERSION = 1
MANIFEST = "checkpoint.json"
CHECKPOINTS = "checkpoints"
RUN_CONFIG = "train_config.json"
LOG_FILE = "train.log"
CHECKED_FILES = ("state.json", "optimizer.npz", "streams.npz")  # with SHA-256 in the manifest
RUN_MARKER = "rnnlab-run.json"
#: the names of checkpoint directories, ``.tmp-`` in front while one is being written
_NAME = re.compile(r"(?P<tmp>\.tmp-)?epoch\d{4,}-batch\d{6,}-step\d{9,}-[0-9a-f]{6}")
#: what a failed write of the run directory means: no room, or no writing there at all
_UNWRITABLE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})
_NO_OLDER = ("rnnlab keeps only the latest checkpoint, so no older one can be used instead: start the run again "
             "in a new run directory")


class CheckpointError(ValueError):
    """The latest checkpoint of a run cannot be read back: its manifest or a file is missing, corrupt, of
    another format, or outside the run directory. The message names the file and what is wrong."""


class RunDirectoryError(OSError):
    """A run directory cannot be written: the disk is full, it is read-only, or writing is not permitted.
    The message names the directory and the reason; ``errno`` is the system's."""


@contextmanager
def writing(run_dir, what: str, after: str | Callable[[], str] = ""):
    """Turn a failed write inside the block (a full disk, a read-only directory, ...) into a
    :class:`RunDirectoryError` naming ``what`` was being written in ``run_dir``, then ``after`` (a
    string, or a function giving it at the time of the failure)."""
    try:
        yield
    except RunDirectoryError:
        raise
    except OSError as exc:
        if exc.errno not in _UNWRITABLE:
            raise
        where = f" ('{exc.filename}')" if exc.filename else ""
        after = after() if callable(after) else after
        error = RunDirectoryError(f"cannot write {what} in '{run_dir}'{where}: {exc.strerror}"
                                  + (f"; {after}" if after else ""))
        error.errno = exc.errno
        raise error from None


def claim_run_dir(run_dir, *, recognised: bool = False) -> Path:
    """Make ``run_dir`` a run directory of rnnlab's, or refuse it; returns it as a Path.

    A directory that does not exist or is empty is created and marked (``rnnlab-run.json``); one that
    is already marked, holds the checkpoint manifest of an rnnlab run, or that the caller has
    ``recognised`` as a run of an earlier rnnlab (by reading its configuration back) is rnnlab's. Any
    other existing directory raises ``FileExistsError``: a run never writes over files it did not
    make. A directory that cannot be written raises :class:`RunDirectoryError`.
    """
    run_dir = Path(run_dir)
    marker = run_dir / RUN_MARKER
    if run_dir.exists() and not run_dir.is_dir():
        raise FileExistsError(f"the run directory '{run_dir}' exists and is not a directory")
    if marker.is_file():
        return run_dir
    if run_dir.is_dir():
        entries = sorted(p.name for p in run_dir.iterdir())
        if entries and not recognised and not _holds_manifest(run_dir):
            shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
            raise FileExistsError(f"'{run_dir}' is not empty ({shown}) and is not an rnnlab run directory (it has no "
                                  f"{RUN_MARKER}); rnnlab writes a run only into a new or empty directory or one of "
                                  "its own runs, so it never overwrites your files: choose another run directory")
    document = {"format": "rnnlab-run", "format_version": 1,
                "note": "this directory is an rnnlab run; rnnlab writes and removes only its own files here"}
    with writing(run_dir, "the run directory's mark"):
        run_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(marker, (json.dumps(document, indent=1) + "\n").encode("utf-8"))
    return run_dir


def _holds_manifest(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a checkpoint manifest of rnnlab's (a run of a version without the mark)."""
    try:
        return json.loads((run_dir / MANIFEST).read_text("utf-8")).get("format") == CHECKPOINT_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def latest_checkpoint(run_dir) -> Path | None:
    """The directory of the latest complete checkpoint of ``run_dir``, or None if there is none.

    Raises :class:`CheckpointError` when the manifest is not readable JSON or names a directory outside
    ``run_dir/checkpoints``.
    """
    manifest = _read_manifest(Path(run_dir))
    return None if manifest is None else Path(run_dir) / manifest["path"]


def _read_manifest(run_dir: Path) -> dict | None:
    path = run_dir / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CheckpointError(f"cannot read the checkpoint manifest '{path}': {exc.strerror}") from None
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"the checkpoint manifest '{path}' is not valid JSON ({exc}); {_NO_OLDER}") from None
    location = manifest.get("path") if isinstance(manifest, dict) else None
    parts = location.split("/") if isinstance(location, str) else []
    match = _NAME.fullmatch(parts[1]) if len(parts) == 2 and parts[0] == CHECKPOINTS else None
    if match is None or match["tmp"]:
        raise CheckpointError(f"the checkpoint manifest '{path}' names {location!r} as the latest checkpoint; it must "
                              f"be a directory '{CHECKPOINTS}/epoch...-batch...-step...-xxxxxx' inside the run "
                              f"directory, so rnnlab refuses to read it; {_NO_OLDER}")
    if not isinstance(manifest.get("sha256"), dict):
        raise CheckpointError(f"the checkpoint manifest '{path}' has no 'sha256' table of the checkpoint's files; "
                              f"{_NO_OLDER}")
    return manifest


# ====================================================================== writing
def write_checkpoint(run_dir: Path, model: Module, optimizer_state: Mapping[str, np.ndarray],
                     stream_arrays: Mapping[str, np.ndarray], state: dict) -> Path:
    """Write a complete checkpoint and make it the latest of ``run_dir`` (atomically); returns its directory.

    ``state`` is what goes to ``state.json`` (its ``epoch``, ``batch`` and ``step`` also name the
    checkpoint and go to the manifest); the format fields are added in front.
    """
    run_dir = Path(run_dir)
    root = run_dir / CHECKPOINTS
    previous = _read_manifest(run_dir)
    epoch, batch, step = state["epoch"], state["batch"], state["step"]
    name = f"epoch{epoch:04d}-batch{batch:06d}-step{step:09d}-{secrets.token_hex(3)}"
    tmp = root / f".tmp-{name}"
    kept = (f"the last good checkpoint, {run_dir / previous['path']}, is kept" if previous is not None
            else "no checkpoint had been written yet")
    try:
        with writing(run_dir, f"a checkpoint (step {step})", kept):
            root.mkdir(parents=True, exist_ok=True)
            _remove_own(root, lambda match: match["tmp"])  # half-written by a killed run
            tmp.mkdir()
            model_io.save(model, tmp / "model")
            _save_npz(tmp / "optimizer.npz", optimizer_state)
            _save_npz(tmp / "streams.npz", stream_arrays)
            with open(tmp / "state.json", "w", encoding="utf-8") as f:
                json.dump({"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, **state}, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            fsync_directory(tmp)
            final = root / name
            os.replace(tmp, final)
            fsync_directory(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # a failed write's partial directory; a no-op after the rename
    manifest = {"format": CHECKPOINT_FORMAT, "path": f"{CHECKPOINTS}/{name}", "epoch": epoch, "batch": batch,
                "step": step, "sha256": {f: sha256_file(final / f) for f in CHECKED_FILES}}
    with writing(run_dir, f"the checkpoint manifest {MANIFEST} (step {step})", kept):
        write_atomic(run_dir / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode("utf-8"))
        fsync_directory(run_dir)
    # older checkpoints: the one the previous manifest recorded, and any a killed run left complete
    if previous is not None and previous["path"] != manifest["path"]:
        shutil.rmtree(run_dir / previous["path"], ignore_errors=True)
    _remove_own(root, lambda match: match.group(0) != name)
    return final


def _remove_own(root: Path, which) -> None:
    """Remove the entries of ``root`` of rnnlab's checkpoint naming for which ``which(match)`` holds; nothing else."""
    for entry in root.iterdir():
        match = _NAME.fullmatch(entry.name)
        if match and which(match):
            shutil.rmtree(entry, ignore_errors=True)


def _save_npz(path: Path, arrays: Mapping) -> None:
    with open(path, "wb") as f:
        np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})
        f.flush()
        os.fsync(f.fileno())


# ====================================================================== reading
@dataclass
class Checkpoint:
    """The latest checkpoint of a run, checked against its manifest: its ``directory``, the ``state``
    of ``state.json``, and the arrays of ``optimizer.npz`` and ``streams.npz``."""

    directory: Path
    state: dict
    optimizer: dict[str, np.ndarray]
    streams: dict[str, np.ndarray]

    def restore_weights(self, model: Module) -> None:
        """Copy the saved weights into ``model``, building it first (from the saved input shape) if it
        is not built yet."""
        try:
            saved = model_io.load(self.directory / "model")
            input_shape = model_io.read_config(self.directory / "model").get("input_shape")
        except model_io.ModelFileError as exc:
            raise CheckpointError(f"the latest checkpoint's model is unusable: {exc}; {_NO_OLDER}") from None
        if not model.built:
            if input_shape is None:
                raise ValueError("the model is not built and the checkpoint does not record its input shape; "
                                 "build the model (model.build(input_shape)) before resuming")
            model.build(tuple(input_shape))
        model.set_weights(dict(saved.named_parameters()))


    def restore_optimizer(self, optimizer, name: str, run_dir) -> str | None:
        """Load the saved state into ``optimizer`` (the run's optimizer ``name``), unless it is another
        optimizer's or does not fit this one's settings (``[train]`` may change on resume): then the
        optimizer keeps its fresh state, and the returned line says so (None when the state was loaded)."""
        saved = self.state.get("optimizer") or _configured_optimizer(Path(run_dir))  # rnnlab 0.1 did not record it
        fresh = "which starts from a fresh state (no moments, step count 0)"
        if saved not in (None, name):
            return f"the checkpoint holds the state of optimizer {saved!r} and this run uses {name!r}, {fresh}"
        try:
            optimizer.load_state_dict(self.optimizer)
        except (ValueError, TypeError) as exc:
            return f"the checkpoint's optimizer state does not fit this run's {optimizer!r} ({exc}), {fresh}"
        return None


def _configured_optimizer(run_dir: Path) -> str | None:
    """The optimizer of the run's ``train_config.json`` as it was before this resume."""
    try:
        return json.loads((run_dir / RUN_CONFIG).read_text("utf-8"))["config"]["optimizer"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_checkpoint(run_dir) -> Checkpoint:
    """The latest checkpoint of ``run_dir``.

    Raises ``FileNotFoundError`` when there is none, and :class:`CheckpointError` (a ``ValueError``)
    naming the file when the manifest is not readable or points outside the run, a file it lists is
    missing or does not match its checksum, or a file is of an unknown format or not plain arrays.
    """
    run_dir = Path(run_dir)
    manifest_path = run_dir / MANIFEST
    manifest = _read_manifest(run_dir)
    if manifest is None:
        raise FileNotFoundError(f"no checkpoint to resume from in '{run_dir}' (looked for '{manifest_path}')")
    directory = run_dir / manifest["path"]
    for fname, digest in manifest["sha256"].items():
        path = directory / fname
        if not path.is_file():
            raise CheckpointError(f"the latest checkpoint is incomplete: '{path}', which {manifest_path} lists, "
                                  f"{'is not a file' if path.exists() else 'is missing'}; {_NO_OLDER}")
        if sha256_file(path) != digest:
            raise CheckpointError(f"checkpoint file '{path}' does not match its SHA-256 in {manifest_path}: "
                                  f"it is corrupt or from another checkpoint; {_NO_OLDER}")
    state_path = directory / "state.json"
    try:
        state = json.loads(state_path.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint file '{state_path}' is not valid JSON ({exc}); {_NO_OLDER}") from None
    if (not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT
            or state.get("format_version", 0) > CHECKPOINT_VERSION):
        got = (f"format {state.get('format')!r}, version {state.get('format_version')!r}" if isinstance(state, dict)
               else f"a JSON {type(state).__name__}")
        raise CheckpointError(f"'{state_path}' is not a checkpoint this rnnlab can read ({got})")
    return Checkpoint(directory, state, _load_npz(directory / "optimizer.npz"), _load_npz(directory / "streams.npz"))


def _load_npz(path: Path) -> dict:
    try:
        return model_io.read_npz(path)
    except model_io.ModelFileError as exc:
        raise CheckpointError(f"unusable checkpoint file: {exc}; {_NO_OLDER}") from None


# ====================================================================== random generators
def rng_states(rng: np.random.Generator, model: Module) -> dict:
    """The state of the trainer's generator and of every module's ``_rng`` (by dotted name), as JSON."""
    out = {"trainer": _to_json(rng.bit_generator.state), "modules": {}}
    for name, module in model.named_modules():
        module_rng = getattr(module, "_rng", None)
        if isinstance(module_rng, np.random.Generator):
            out["modules"][name] = _to_json(module_rng.bit_generator.state)
    return out


def restore_rng_states(rng: np.random.Generator, model: Module, states: dict) -> None:
    """Put back what :func:`rng_states` saved; a module named there that this model lacks raises ValueError."""
    rng.bit_generator.state = _from_json(states["trainer"])
    modules = dict(model.named_modules())
    unknown = sorted(set(states["modules"]) - set(modules))
    if unknown:
        raise ValueError(f"the checkpoint holds random-generator states for modules {unknown}, which this model lacks")
    for name, state in states["modules"].items():
        module_rng = getattr(modules[name], "_rng", None)
        if not isinstance(module_rng, np.random.Generator):
            raise ValueError(f"the checkpoint holds a random-generator state for module {name!r}, which has none")
        module_rng.bit_generator.state = _from_json(state)


def _to_json(value):
    """An RNG state (nested dicts with ints and maybe arrays) in JSON form; :func:`_from_json` inverts it."""
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, np.integer):
        return int(value)
    return value


def _from_json(value):
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return np.array(value["__ndarray__"], dtype=value["dtype"])
        return {k: _from_json(v) for k, v in value.items()}
    return value


# ====================================================================== the loss in train_config.json
def loss_to_config(loss) -> dict:
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def loss_from_config(spec: dict):
    cls = getattr(losses_module, spec["class_name"], None)
    if not (isinstance(cls, type) and issubclass(cls, losses_module.Loss)):
        raise ValueError(f"unknown loss class {spec['class_name']!r} in {RUN_CONFIG}")
    return cls.from_config(spec["config"])
