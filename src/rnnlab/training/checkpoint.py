"""Checkpoints of a training run: the run directory's layout, the atomic write of a checkpoint, reading one
back (checksums, format), and the parts of the resume state that are not the trainer's own (random
generators, the loss's configuration).

Layout of ``run_dir``::

    train_config.json      TrainConfig, the loss, the model's config (the run's resolved configuration)
    train.log              every log line
    history.json/.csv      per-epoch results; <quantity>.png curves
    checkpoint.json        the manifest: which checkpoint is the latest, with SHA-256 of its files
    checkpoints/<name>/    model/ (rnnlab.io.save: config.json + weights.npz), optimizer.npz,
                           streams.npz (carried states, anchors, kept inputs), state.json
                           (epoch, batch, step, history, epoch accumulators, every RNG state,
                           schedule / early stopping / callback states)

A checkpoint is written into a fresh directory, each file fsynced, then ``checkpoint.json`` is
replaced atomically (temporary file + ``os.replace``) to point at it, then older checkpoint
directories are deleted. A process killed at any moment leaves the previous complete checkpoint as
the latest. Resuming loads the weights, the optimizer state, the RNG state of the trainer and of
every layer that has one (``_rng``: dropout, layers built lazily), the carried recurrent states,
the schedule, early-stopping and callback states, the history and the position (epoch, batch within
it, step), and asks the data for ``batches_from(epoch, batch)``: the run then goes on exactly as
an uninterrupted run with the same seeds would, bit for bit.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnlab._files import fsync_directory, sha256_file, write_atomic
from rnnlab.io import files as model_io
from rnnlab.nn import losses as losses_module
from rnnlab.nn.module import Module

__all__ = ["Checkpoint", "latest_checkpoint", "read_checkpoint", "write_checkpoint"]

CHECKPOINT_FORMAT = "rnnlab-train-checkpoint"
CHECKPOINT_VERSION = 1
MANIFEST = "checkpoint.json"
CHECKPOINTS = "checkpoints"
RUN_CONFIG = "train_config.json"
LOG_FILE = "train.log"
CHECKED_FILES = ("state.json", "optimizer.npz", "streams.npz")  # with SHA-256 in the manifest


def latest_checkpoint(run_dir) -> Path | None:
    """The directory of the latest complete checkpoint of ``run_dir``, or None if there is none."""
    manifest = Path(run_dir) / MANIFEST
    if not manifest.exists():
        return None
    return Path(run_dir) / json.loads(manifest.read_text("utf-8"))["path"]


# ====================================================================== writing
def write_checkpoint(run_dir: Path, model: Module, optimizer_state: Mapping[str, np.ndarray],
                     stream_arrays: Mapping[str, np.ndarray], state: dict) -> Path:
    """Write a complete checkpoint and make it the latest of ``run_dir`` (atomically); returns its directory.

    ``state`` is what goes to ``state.json`` (its ``epoch``, ``batch`` and ``step`` also name the
    checkpoint and go to the manifest); the format fields are added in front.
    """
    run_dir = Path(run_dir)
    root = run_dir / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    epoch, batch, step = state["epoch"], state["batch"], state["step"]
    name = f"epoch{epoch:04d}-batch{batch:06d}-step{step:09d}-{secrets.token_hex(3)}"
    tmp = root / f".tmp-{name}"
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
    manifest = {"format": CHECKPOINT_FORMAT, "path": f"{CHECKPOINTS}/{name}", "epoch": epoch, "batch": batch,
                "step": step, "sha256": {f: sha256_file(final / f) for f in CHECKED_FILES}}
    write_atomic(run_dir / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode("utf-8"))
    fsync_directory(run_dir)
    for old in root.iterdir():  # older checkpoints and any left half-written by a killed run
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return final


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
        saved = model_io.load(self.directory / "model")
        if not model.built:
            input_shape = model_io.read_config(self.directory / "model").get("input_shape")
            if input_shape is None:
                raise ValueError("the model is not built and the checkpoint does not record its input shape; "
                                 "build the model (model.build(input_shape)) before resuming")
            model.build(tuple(input_shape))
        model.set_weights(dict(saved.named_parameters()))


def read_checkpoint(run_dir) -> Checkpoint:
    """The latest checkpoint of ``run_dir``.

    Raises ``FileNotFoundError`` when there is none (or a file the manifest lists is missing) and
    ``ValueError`` when a file does not match the manifest's checksum or is of an unknown format.
    """
    run_dir = Path(run_dir)
    manifest_path = run_dir / MANIFEST
    if not manifest_path.exists():
        raise FileNotFoundError(f"no checkpoint to resume from in '{run_dir}' (looked for '{manifest_path}')")
    manifest = json.loads(manifest_path.read_text("utf-8"))
    directory = run_dir / manifest["path"]
    for fname, digest in manifest["sha256"].items():
        if not (directory / fname).exists():
            raise FileNotFoundError(f"checkpoint '{directory}' lacks {fname}, which {manifest_path} lists")
        if sha256_file(directory / fname) != digest:
            raise ValueError(f"checkpoint file '{directory / fname}' does not match its SHA-256 in {manifest_path}: "
                             "it is corrupt or from another checkpoint")
    state = json.loads((directory / "state.json").read_text("utf-8"))
    if state.get("format") != CHECKPOINT_FORMAT or state.get("format_version", 0) > CHECKPOINT_VERSION:
        raise ValueError(f"'{directory / 'state.json'}' is not a checkpoint this rnnlab can read "
                         f"(format {state.get('format')!r}, version {state.get('format_version')!r})")
    return Checkpoint(directory, state, _load_npz(directory / "optimizer.npz"), _load_npz(directory / "streams.npz"))


def _load_npz(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


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
