"""Durable file writing shared by model files, checkpoints, run histories and downloads.

The rule everywhere: write to a temporary file beside the target, flush and fsync it, rename it over
the target with ``os.replace`` (atomic), then fsync the directory so the rename itself survives a
crash. A reader sees the old file or the new one, never a torn one.

Temporary files are named ``.<target name>.<pid>-<random hex>.tmp`` (:func:`temp_path`). A process
killed mid-write leaves one behind; :func:`remove_stale_temps` removes those of a target whose
writing process is gone (:func:`temps_of`), and every atomic write of that target calls it, so
killed writes never pile up.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

#: ``.<name>.<pid>-<hex>.tmp``; also the names of earlier versions: ``.<name>.<pid>.tmp`` (write_atomic) and
#: ``.<name>.<16 hex>.tmp`` (model files), which carry no usable process id
_TEMP = re.compile(r"\.(?P<name>.+)\.(?:(?P<pid>\d{1,9})(?:-[0-9a-f]{8})?|[0-9a-f]{16})\.tmp")


def fsync_directory(directory: Path) -> None:
    """Make renames in ``directory`` durable (POSIX); a no-op where directories cannot be opened."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def temp_path(path: Path) -> Path:
    """A fresh hidden temporary name beside ``path``, carrying this process's id: ``.<name>.<pid>-<hex>.tmp``."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def temps_of(path: Path, *, stale: bool = True) -> list[Path]:
    """The temporary files of :func:`temp_path`'s naming beside ``path`` (for ``path``'s name); with
    ``stale`` only those whose writing process no longer runs: what writes killed mid-way left behind."""
    path = Path(path)
    try:
        entries = list(os.scandir(path.parent))
    except (FileNotFoundError, NotADirectoryError):
        return []
    out = []
    for entry in entries:
        match = _TEMP.fullmatch(entry.name)
        if (match and match["name"] == path.name and not (stale and _running(match["pid"]))
                and entry.is_file(follow_symlinks=False)):
            out.append(Path(entry.path))
    return sorted(out)


def remove_stale_temps(path: Path) -> None:
    """Remove the stale :func:`temps_of` ``path``."""
    for tmp in temps_of(path):
        tmp.unlink(missing_ok=True)


def _running(pid: str | None) -> bool:
    """Whether the process ``pid`` (a string of digits, or None for a name without one) still runs."""
    if pid is None:
        return False
    if os.name != "posix":
        return True  # os.kill(pid, 0) is no probe on Windows: leave the file
    if int(pid) == os.getpid():
        return True  # a write of this process still in flight (another thread's)
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # it exists (another user's), or the check is not possible here: leave the file
    return True


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, and rename it over ``path``; then
    remove the temporary files that killed writes of ``path`` left."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # after a failure; a no-op after the rename
    fsync_directory(path.parent)
    remove_stale_temps(path)


@contextlib.contextmanager
def open_atomic(path: Path) -> Iterator[BinaryIO]:
    """A binary file to stream into, renamed over ``path`` when the block ends without an exception
    (:func:`write_atomic` for data too large to hold in memory); after an exception ``path`` is untouched."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_directory(path.parent)
    remove_stale_temps(path)
