"""Model files: :func:`save` a built module to a directory, :func:`load` it back.

A model is a *directory* (as Hugging Face ``save_pretrained`` and TensorFlow SavedModel do), so the
files a run adds later, ``vocab.json`` and the like, sit beside the weights and travel with them::

    model/
      config.json    what to build: class name, its get_config(), dtype, the weight listing, checksum
      weights.npz    the parameters, one array per dotted name ("0.forward.U"); arrays only, no pickle

``config.json`` (format version 1)::

    {"format": "rnnlab", "format_version": 1, "rnnlab_version": "0.1.0",
     "class_name": "Sequential", "config": {...model.get_config()...}, "dtype": "float32",
     "input_shape": [null, 20, 8],                       # only for modules that record one (Sequential)
     "weights_sha256": "9f86d0...",                      # of weights.npz, byte for byte
     "weights": {"0.E": {"shape": [50, 8], "dtype": "float32"}, ...}}

Loading trusts nothing in the directory: the weights file must match the checksum, every array must
match the listing by name, shape and dtype, the listing must match the module rebuilt from the config,
and ``np.load(..., allow_pickle=False)`` refuses any object array, so a model file can never run code.
Every problem raises :class:`ModelFileError` naming the file, the key and the value at fault.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from rnnlab._files import fsync_directory, remove_stale_temps, sha256_file, temp_path, temps_of
from rnnlab.nn.module import Module, registered

FORMAT = "rnnlab"
#: the version of the model directory format written into ``config.json``
FORMAT_VERSION = 1
#: a model directory's JSON file: the format, its version and the model's configuration
CONFIG_FILE = "config.json"
#: a model directory's ``.npz`` of weights, under their dotted parameter names
WEIGHTS_FILE = "weights.npz"

__all__ = ["CONFIG_FILE", "FORMAT_VERSION", "WEIGHTS_FILE", "ModelFileError", "load", "read_config", "read_npz", "save"]


class ModelFileError(ValueError):
    """A model directory is missing, not an rnnlab model, too new, corrupt or inconsistent."""


# ---------------------------------------------------------------------- save
def save(model: Module, path: str | os.PathLike) -> Path:
    """Write ``model`` to the directory ``path`` (created if needed) and return it as a ``Path``.

    Parameters
    ----------
    model : Module
        A built module (every sub-module built: call it once on data, or ``build(input_shape)``).
    path : str or os.PathLike
        The model directory. Existing ``config.json`` and ``weights.npz`` in it are replaced; any
        other file (``vocab.json``, ...) is left alone.

    Returns
    -------
    pathlib.Path
        ``path``, so that ``load(save(model, path))`` reads back what was written.

    Raises
    ------
    ValueError
        If a sub-module is not built, or the module's config is not JSON-serialisable (e.g. a custom
        initialiser callable).
    ModelFileError
        If ``path`` exists and is not a directory.

    Notes
    -----
    Each file is written to a hidden temporary file in the same directory, flushed and fsynced, then
    renamed over its final name with ``os.replace`` (atomic on POSIX and Windows), and the directory
    is fsynced: a save interrupted at any point never leaves a half-written file under a final name,
    and the temporary files are removed on every error. Both files are staged before either is
    renamed, the weights first and ``config.json`` last; ``config.json`` holds the SHA-256 of the
    weights, so a model never silently pairs one save's config with another save's weights. A
    process killed in the instant between the two renames leaves the new weights, the old
    ``config.json`` and the new one complete under its temporary name: :func:`load` finds that one by
    the weights' checksum and reads the new model. The temporary files (``.weights.npz.<pid>-<hex>.tmp``,
    ``.config.json.<pid>-<hex>.tmp``) a killed save leaves are removed when the next save into the
    directory starts (after it has put in place a config that a kill between the renames left
    staged), so repeated kills leave no growing litter.

    The carried state of a ``stateful`` layer is not part of the model file: it belongs to a stream
    of data, not to the model. A loaded model starts from zero state (call ``reset_state()`` on the
    original to compare the two). Optimizer state is not saved either.
    """
    if not isinstance(model, Module):
        raise TypeError(f"model must be an rnnlab Module, got {type(model).__name__}")
    directory = _as_path(path)
    for name, module in _unbuilt(model):
        where = "the model" if name == "" else f"layer {name!r} ({type(module).__name__}) of the model"
        raise ValueError(f"cannot save an unbuilt {type(model).__name__}: {where} has no weights yet; "
                         "call the model on data or call model.build(input_shape) first")
    class_name = type(model).__name__
    try:
        same_class = registered(class_name) is type(model)
    except ValueError:
        same_class = False
    if not same_class:
        raise ValueError(f"cannot save {class_name}: rnnlab.module.registered({class_name!r}) does not return "
                         "this class, so load() could not rebuild it")
    arrays = dict(model.named_parameters())  # {dotted name: live array}
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "rnnlab_version": _version(),
        "class_name": class_name,
        "config": model.get_config(),
        "dtype": np.dtype(model.dtype).name,
    }
    input_shape = getattr(model, "input_shape", None)
    if isinstance(input_shape, (tuple, list)):
        document["input_shape"] = [None if d is None else int(d) for d in input_shape]
    document["weights_sha256"] = None  # filled in once the weights are staged
    document["weights"] = {key: {"shape": list(a.shape), "dtype": a.dtype.name} for key, a in arrays.items()}
    try:
        json.dumps(document, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot save {class_name}: its get_config() is not JSON-serialisable ({exc})") from None

    if directory.exists() and not directory.is_dir():
        raise ModelFileError(f"cannot save to '{directory}': it exists and is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    _finish_interrupted_save(directory)
    staged: list[Path] = []
    try:
        weights_tmp = _stage(directory / WEIGHTS_FILE, lambda f: _write_npz(f, arrays), staged)
        document["weights_sha256"] = sha256_file(weights_tmp)
        text = json.dumps(document, indent=2, allow_nan=False) + "\n"
        config_tmp = _stage(directory / CONFIG_FILE, lambda f: f.write(text.encode("utf-8")), staged)
        os.replace(weights_tmp, directory / WEIGHTS_FILE)
        os.replace(config_tmp, directory / CONFIG_FILE)
    finally:
        for tmp in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    fsync_directory(directory)
    return directory


def _write_npz(f: BinaryIO, arrays: dict[str, np.ndarray]) -> None:
    """What ``np.savez`` writes (an uncompressed zip of ``<name>.npy`` members, readable by ``np.load``),
    with ``allow_pickle=False`` on every NumPy version and no clash between a weight's name and
    ``savez``'s own keyword arguments (``file``, ``allow_pickle``)."""
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, value in arrays.items():
            with zf.open(key + ".npy", mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)


def _finish_interrupted_save(directory: Path) -> None:
    """Before a save: complete a save killed between its two renames (its staged ``config.json`` is put in
    place), then remove the temporary files killed saves left, so that kills never pile them up."""
    stale_configs = temps_of(directory / CONFIG_FILE)
    if stale_configs and (directory / WEIGHTS_FILE).is_file():
        staged = _config_staged_for(directory, sha256_file(directory / WEIGHTS_FILE))
        if staged in stale_configs:
            os.replace(staged, directory / CONFIG_FILE)
            fsync_directory(directory)
    for name in (WEIGHTS_FILE, CONFIG_FILE):
        remove_stale_temps(directory / name)


def _stage(target: Path, write: Callable[[BinaryIO], object], staged: list[Path]) -> Path:
    """Write a hidden temporary file next to ``target``, fsync it, and return its path."""
    tmp = temp_path(target)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)  # umask applies
    staged.append(tmp)
    with os.fdopen(fd, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    return tmp


# ---------------------------------------------------------------------- load
def load(path: str | os.PathLike) -> Module:
    """Rebuild the module saved in the directory ``path`` by :func:`save`, with its weights.

    Parameters
    ----------
    path : str or os.PathLike
        The model directory (holding ``config.json`` and ``weights.npz``).

    Returns
    -------
    Module
        ``registered(class_name).from_config(config)``, built (every sub-module), holding the saved
        weights bit for bit: it predicts exactly as the saved model did. Stateful layers start from
        zero state.

    Raises
    ------
    ModelFileError
        If the directory or a file is missing, ``config.json`` is not JSON, not an rnnlab model
        (``format``), written by a newer format (``format_version``), or malformed; if
        ``weights.npz`` does not match its SHA-256, cannot be read, holds an object (pickled)
        array, or a weight is missing, unexpected, or of another shape or dtype than the listing;
        if the config asks for larger layers than the listing holds (checked before building anything),
        or does not rebuild a module whose parameters match the listing.
    """
    directory = _as_path(path)
    document = read_config(directory)
    _check_sizes(directory / CONFIG_FILE, document)  # before anything is read or built from the config
    weights_path = directory / WEIGHTS_FILE
    try:
        data = weights_path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"no {WEIGHTS_FILE} in the model directory '{directory}' "
                             f"(looked for '{weights_path}')") from None
    except OSError as exc:  # a directory under the file's name, no permission, an I/O error
        raise ModelFileError(_unreadable(weights_path, exc)) from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != document["weights_sha256"]:
        staged = _config_staged_for(directory, actual)
        if staged is not None:  # a save killed between its two renames: its config.json is complete, staged
            document = _read_config_file(staged)
    if actual != document["weights_sha256"]:
        raise ModelFileError(f"'{weights_path}' is corrupt, truncated or from another save: its SHA-256 is {actual}, "
                             f"{CONFIG_FILE} expects {document['weights_sha256']} ({len(data)} bytes on disk)")
    weights = _read_npz(weights_path, data)
    _check_weights(weights_path, weights, document["weights"])

    model = _rebuild(directory / CONFIG_FILE, document)
    own = dict(model.named_parameters())
    listing = document["weights"]
    missing, unexpected = sorted(set(own) - set(listing)), sorted(set(listing) - set(own))
    if missing or unexpected:
        raise ModelFileError(f"'{directory / CONFIG_FILE}': the {document['class_name']} its config builds does not "
                             f"have the listed weights: missing from the file {missing}, not in the model {unexpected}")
    for key, target in own.items():
        shape, dtype = tuple(listing[key]["shape"]), listing[key]["dtype"]
        if target.shape != shape or target.dtype.name != dtype:
            raise ModelFileError(f"'{directory / CONFIG_FILE}': weight {key!r} is listed as {dtype} {shape}, but the "
                                 f"{document['class_name']} its config builds has {target.dtype.name} {target.shape}")
    model.set_weights(weights)
    return model


def read_config(path: str | os.PathLike) -> dict:
    """The validated contents of ``path/config.json`` (see the module docstring), without the weights."""
    directory = _as_path(path)
    config_path = directory / CONFIG_FILE
    if not directory.exists():
        raise ModelFileError(f"no rnnlab model at '{directory}': the directory does not exist")
    if not directory.is_dir():
        raise ModelFileError(f"'{directory}' is not an rnnlab model: a model is a directory holding "
                             f"{CONFIG_FILE} and {WEIGHTS_FILE}, this is a file")
    try:
        raw = config_path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"'{directory}' is not an rnnlab model directory: no {CONFIG_FILE} "
                             f"(looked for '{config_path}')") from None
    except OSError as exc:
        raise ModelFileError(_unreadable(config_path, exc)) from None
    return _parse_config(config_path, raw)


def _read_config_file(config_path: Path) -> dict:
    try:
        raw = config_path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ModelFileError(_unreadable(config_path, exc)) from None
    return _parse_config(config_path, raw)


def _config_staged_for(directory: Path, weights_sha256: str) -> Path | None:
    """The staged ``config.json`` of a save killed between its two renames, found by the checksum of the
    weights it renamed into place; None if there is none."""
    for tmp in temps_of(directory / CONFIG_FILE, stale=False):
        try:
            document = json.loads(tmp.read_bytes().decode("utf-8"))
        except (OSError, ValueError):  # a config killed while being staged: not the one
            continue
        if isinstance(document, dict) and document.get("weights_sha256") == weights_sha256:
            return tmp
    return None


def _parse_config(config_path: Path, raw: bytes) -> dict:
    """``config.json``'s bytes, decoded and validated (see the module docstring)."""
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ModelFileError(f"'{config_path}' is not UTF-8 text ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"'{config_path}' is not valid JSON: {exc.msg} at line {exc.lineno}, "
                             f"column {exc.colno}") from None
    if not isinstance(document, dict):
        raise ModelFileError(f"'{config_path}' must hold a JSON object, got a JSON {type(document).__name__}")

    if document.get("format") != FORMAT:
        got = "has no 'format' key" if "format" not in document else f"has format {document['format']!r}"
        raise ModelFileError(f"'{config_path}' is not an rnnlab model file: it {got} (expected 'format': {FORMAT!r})")
    version = document.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(f"'{config_path}': 'format_version' must be a positive integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"'{config_path}' has format_version {version}, written by rnnlab "
                             f"{document.get('rnnlab_version', '?')}; this rnnlab ({_version()}) reads format_version "
                             f"up to {FORMAT_VERSION}: upgrade rnnlab to load it")

    expected_types = {"class_name": str, "config": dict, "dtype": str, "weights_sha256": str, "weights": dict}
    for key, kind in expected_types.items():
        if key not in document:
            raise ModelFileError(f"'{config_path}' has no {key!r} key")
        if not isinstance(document[key], kind):
            raise ModelFileError(f"'{config_path}': {key!r} must be a JSON {_json_type(kind)}, "
                                 f"got {type(document[key]).__name__} {document[key]!r:.80}")
    input_shape = document.get("input_shape")
    if input_shape is not None and not (isinstance(input_shape, list) and all(
            d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0) for d in input_shape)):
        raise ModelFileError(f"'{config_path}': 'input_shape' must be a list of positive integers or nulls, "
                             f"got {input_shape!r}")
    for key, entry in document["weights"].items():
        ok = (isinstance(entry, dict) and isinstance(entry.get("shape"), list)
              and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in entry["shape"])
              and entry.get("dtype") in ("float32", "float64"))
        if not ok:
            raise ModelFileError(f"'{config_path}': the listing of weight {key!r} must be "
                                 f"{{\"shape\": [ints], \"dtype\": \"float32\"|\"float64\"}}, got {entry!r:.120}")
    return document


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file ``path``, read with ``allow_pickle=False``.

    Raises :class:`ModelFileError` naming the file when it cannot be read, is not an ``.npz``
    archive, or holds an object array (what only pickle can read).
    """
    path = _as_path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read '{path}': {exc.strerror or exc}") from None
    return _read_npz(path, data)


def _read_npz(weights_path: Path, data: bytes) -> dict[str, np.ndarray]:
    """Every array of the npz bytes, read with ``allow_pickle=False``."""
    if not data.startswith(b"PK"):  # otherwise np.load would try it as .npy or pickle
        raise ModelFileError(f"cannot read '{weights_path}': it is not an .npz archive (no zip header; "
                             f"starts with {data[:8]!r})")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except ValueError as exc:
        if _holds_object_array(data):
            raise ModelFileError(f"'{weights_path}' holds an object array, which only pickle can read; "
                                 "rnnlab's files hold numeric arrays only, and pickles are refused "
                                 "(allow_pickle=False)") from None
        raise ModelFileError(f"cannot read '{weights_path}' as an .npz archive: {exc}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelFileError(f"cannot read '{weights_path}' as an .npz archive: {type(exc).__name__}: {exc}") from None


def _holds_object_array(data: bytes) -> bool:
    """Whether an entry of the npz bytes is an object array (what only pickle can read), from the .npy headers."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.namelist():
                with archive.open(member) as f:
                    major, _ = np.lib.format.read_magic(f)
                    fmt = np.lib.format
                    read_header = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
                    if read_header(f)[2].hasobject:
                        return True
    except (OSError, EOFError, ValueError, zipfile.BadZipFile):
        return False
    return False


def _check_weights(weights_path: Path, weights: dict[str, np.ndarray], listing: dict) -> None:
    """The arrays in the file must be exactly the listed ones, with the listed shapes and dtypes."""
    missing, unexpected = sorted(set(listing) - set(weights)), sorted(set(weights) - set(listing))
    if missing:
        raise ModelFileError(f"'{weights_path}' lacks weight(s) {missing} listed in {CONFIG_FILE}")
    if unexpected:
        raise ModelFileError(f"'{weights_path}' holds weight(s) {unexpected} not listed in {CONFIG_FILE}")
    for key, entry in listing.items():
        value, shape = weights[key], tuple(entry["shape"])
        if value.shape != shape:
            raise ModelFileError(f"'{weights_path}': weight {key!r} has shape {value.shape}, "
                                 f"{CONFIG_FILE} lists {shape}")
        if value.dtype != np.dtype(entry["dtype"]):
            raise ModelFileError(f"'{weights_path}': weight {key!r} has dtype {value.dtype}, "
                                 f"{CONFIG_FILE} lists {entry['dtype']}")


#: config keys holding a size that allocates weights: a recurrent layer's hidden and input sizes, a dense
#: layer's units, an embedding's vocabulary and dimension
_SIZE_KEYS = ("hidden_size", "input_size", "units", "vocab_size", "dim")


def _size_entries(config, where: str = "config") -> Iterator[tuple[str, dict[str, int], dict]]:
    """``(where, {size key: value}, the dict)`` for every dict of a nested module config holding integer
    sizes."""
    if isinstance(config, dict):
        sizes = {k: config[k] for k in _SIZE_KEYS
                 if isinstance(config.get(k), int) and not isinstance(config.get(k), bool)}
        if sizes:
            yield where, sizes, config
        for key, value in config.items():
            yield from _size_entries(value, f"{where}.{key}")
    elif isinstance(config, list):
        for i, value in enumerate(config):
            yield from _size_entries(value, f"{where}[{i}]")


def _check_sizes(config_path: Path, document: dict) -> None:
    """The sizes in the module config must fit the weight listing, checked before building the module.

    A config edited to ask for far larger layers than the listed weights would otherwise allocate
    (and initialise) them before the comparison with the listing refused the file. Each size must be
    at most the largest listed dimension, and the parameters the sizes imply at the least (H·max(H, D)
    for a recurrent layer's ``W``, units·inputs for a dense one, V·dim for an embedding) must not
    exceed the listed ones in number. A dense layer tied to an embedding (``tie`` in its config) owns
    only its bias: its ``V`` is the embedding's table, listed once.
    """
    listing = document["weights"]
    largest = max((d for entry in listing.values() for d in entry["shape"]), default=0)
    listed = sum(int(np.prod(entry["shape"], dtype=np.int64)) for entry in listing.values())
    implied = 0
    for where, sizes, entry in _size_entries(document["config"]):
        for key, value in sizes.items():
            if value > largest:
                raise ModelFileError(f"'{config_path}': {where}.{key} = {value} does not match the listed weights, "
                                     f"whose largest dimension is {largest}")
        if "hidden_size" in sizes:
            implied += sizes["hidden_size"] * max(sizes["hidden_size"], sizes.get("input_size", 0))
        elif "units" in sizes:
            tied = entry.get("tie") not in (None, False)
            implied += sizes["units"] * (1 if tied else sizes.get("input_size", 1))
        elif "vocab_size" in sizes:
            implied += sizes["vocab_size"] * sizes.get("dim", 1)
    if implied > listed:
        raise ModelFileError(f"'{config_path}': its 'config' describes a {document['class_name']} of at least "
                             f"{implied:,} parameters, but the weight listing holds {listed:,}")


def _rebuild(config_path: Path, document: dict) -> Module:
    """``registered(class_name).from_config(config)``, then ``build(input_shape)``; every sub-module built."""
    class_name = document["class_name"]
    try:
        cls = registered(class_name)
    except ValueError as exc:
        raise ModelFileError(f"'{config_path}': 'class_name' {class_name!r} is not an rnnlab module ({exc})") from None
    try:
        model = cls.from_config(document["config"])
        if document.get("input_shape") is not None:
            model.build(tuple(document["input_shape"]))
    except (TypeError, ValueError, KeyError) as exc:
        raise ModelFileError(f"'{config_path}': cannot rebuild {class_name} from its 'config': "
                             f"{type(exc).__name__}: {exc}") from None
    for name, module in _unbuilt(model):
        where = "the model" if name == "" else f"layer {name!r} ({type(module).__name__})"
        raise ModelFileError(f"'{config_path}': {where} is not built after from_config; its config lacks the "
                             "input size (input_size) the weights need")
    return model


# ---------------------------------------------------------------------- helpers
def _unreadable(path: Path, exc: OSError) -> str:
    what = "it is a directory, not a file" if path.is_dir() else (exc.strerror or str(exc))
    return f"cannot read '{path}': {what}"


def _unbuilt(model: Module) -> Iterator[tuple[str, Module]]:
    """The modules without parameters yet: unbuilt leaves (a container is built when its layers are)."""
    for name, module in model.named_modules():
        if not module.children() and not module.built:
            yield name, module


def _as_path(path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__} {path!r}")
    return Path(path)


def _json_type(kind: type) -> str:
    return {str: "string", dict: "object"}[kind]


def _version() -> str:
    from rnnlab._version import (
        __version__,  # here, not at import time: rnnlab/__init__ may import this module
    )

    return __version__
