"""Download with cache, against a loopback HTTP server (no test reaches beyond 127.0.0.1).

The server serves ``tmp_path/"srv"``, laid out like a data directory, and records every request
path; ``base_url`` points :func:`rnnlab.datasets.download` at it. Tests of a loader's own download
(``download=True``) point that file's :data:`REMOTES` entry at the server.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import socket
import threading
import urllib.parse
import urllib.request
from dataclasses import replace
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rnnlab.data.datasets import (
    REMOTES,
    ChecksumError,
    DownloadError,
    download,
    fetch,
    time_series,
    tiny_shakespeare,
    uci_sentiment,
)

AIRLINE_SHA256 = "8cb51be753a718d9be5d76d7e238cc224792754676adc21faa59e954b0201621"  # timeseries/SOURCE.md


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch):
    """Fail any request that would leave the machine (a test bug, not a network failure)."""
    real = urllib.request.urlopen

    def urlopen(request, *args, **kwargs):
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        host = urllib.parse.urlsplit(url).hostname
        if host != "127.0.0.1":
            pytest.fail(f"a test tried to reach {url}")
        return real(request, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    monkeypatch.delenv("RNNLAB_DATA", raising=False)
    monkeypatch.delenv("RNNLAB_CACHE", raising=False)


class Server:
    """A ThreadingHTTPServer on 127.0.0.1 (port 0) serving ``root``; ``requests`` lists the paths asked for."""

    def __init__(self, root):
        self.root = root
        self.requests: list[str] = []
        self.truncate: set[str] = set()  # paths answered with a Content-Length larger than the body
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self):
                server.requests.append(self.path)
                if self.path in server.truncate:
                    self.send_response(200)
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    self.wfile.write(b"only ten b")
                    self.close_connection = True
                    return
                super().do_GET()

            def log_message(self, *args):  # keep the test output clean
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def put(self, folder: str, name: str, content: bytes) -> None:
        (self.root / folder).mkdir(parents=True, exist_ok=True)
        (self.root / folder / name).write_bytes(content)


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path / "srv")
    srv.root.mkdir()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()
    srv.thread.join(timeout=5)


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def serve_real(server, data_dir, folder, *names, at=None):
    """Serve the real ``data_dir/folder/name`` files at ``/<at or folder>/<name>``."""
    for name in names:
        server.put(at or folder, name, (data_dir / folder / name).read_bytes())


def point_remote_at(monkeypatch, server, folder, name, **changes):
    """Make ``REMOTES[folder][name]`` (the origin a loader downloads from) a URL of the loopback server."""
    remote = replace(REMOTES[folder][name], url=f"{server.url}/origin/{folder}/{name}", **changes)
    monkeypatch.setitem(REMOTES[folder], name, remote)


def test_first_download_fetches_and_the_second_uses_the_cache(server, data_dir, cache):
    names = ("airline-passengers.csv", "monthly-sunspots.csv", "daily-min-temperatures.csv")
    serve_real(server, data_dir, "timeseries", *names)
    folder = download("timeseries", cache_dir=cache, base_url=server.url)
    assert folder == cache / "timeseries"
    assert sorted(server.requests) == sorted(f"/timeseries/{n}" for n in names)
    for name in names:  # the cached files are the served ones, and nothing else is left behind
        assert (folder / name).read_bytes() == (data_dir / "timeseries" / name).read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)
    assert download("timeseries", cache_dir=cache, base_url=server.url) == folder
    assert len(server.requests) == 3  # no new request
    # a loader without the data directory reads the cache, again without a request
    dates, values = time_series("airline-passengers", download=True, cache_dir=cache)
    assert values.shape == (144,) and dates[0] == "1949-01" and len(server.requests) == 3


def test_the_cache_defaults_to_rnnlab_cache(server, data_dir, tmp_path, monkeypatch):
    serve_real(server, data_dir, "timeseries", "airline-passengers.csv")
    monkeypatch.setenv("RNNLAB_CACHE", str(tmp_path / "env-cache"))
    path = fetch("timeseries", "airline-passengers.csv", base_url=server.url + "/")
    assert path == tmp_path / "env-cache" / "timeseries" / "airline-passengers.csv"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == AIRLINE_SHA256


def test_a_corrupted_served_file_is_refused_and_not_kept(server, data_dir, cache):
    good = (data_dir / "timeseries" / "airline-passengers.csv").read_bytes()
    server.put("timeseries", "airline-passengers.csv", good.replace(b"112", b"113", 1))
    with pytest.raises(ChecksumError, match=rf"checksum mismatch for the download of {re.escape(server.url)}"
                       rf"/timeseries/airline-passengers.csv: .* lists sha256 {AIRLINE_SHA256}, "
                       rf"the server sent [0-9a-f]{{64}}; "
                       rf"the file was not kept"):
        fetch("timeseries", "airline-passengers.csv", cache_dir=cache, base_url=server.url)
    assert list((cache / "timeseries").iterdir()) == []  # neither the temporary file nor the target
    # once the server has the right file, the next call downloads it
    server.put("timeseries", "airline-passengers.csv", good)
    path = fetch("timeseries", "airline-passengers.csv", cache_dir=cache, base_url=server.url)
    assert path.read_bytes() == good and len(server.requests) == 2


def test_a_404_says_what_failed_and_how_to_place_the_file(server, cache):
    target = cache / "tinyshakespeare" / "input.txt"
    with pytest.raises(DownloadError, match=rf"could not download {re.escape(server.url)}/tinyshakespeare/input.txt: "
                       rf"HTTP 404 .*the server does not serve the file.*; to place the file by hand, download "
                       rf"https://raw\.githubusercontent\.com/karpathy/char-rnn/[0-9a-f]{{40}}"
                       rf"/data/tinyshakespeare/input\.txt "
                       rf".*copy it to '{re.escape(str(target))}'"):
        download("tinyshakespeare", cache_dir=cache, base_url=server.url)
    assert server.requests == ["/tinyshakespeare/input.txt"]
    assert list(target.parent.iterdir()) == []


def test_a_refused_connection_says_the_machine_may_be_offline(cache):
    with socket.socket() as s:  # a port nobody listens on: bound, then released
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match=rf"could not download http://127.0.0.1:{port}/mr/rt-polarity.pos: "
                       rf".*[Cc]onnection refused.*the machine may be offline or the server unreachable; "
                       rf"to place the file by hand"):
        fetch("mr", "rt-polarity.pos", cache_dir=cache, base_url=f"http://127.0.0.1:{port}")
    assert list((cache / "mr").iterdir()) == []


def test_a_server_that_never_answers_times_out(cache):
    with socket.socket() as listener:  # accepts connections (backlog) but never replies
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with pytest.raises(DownloadError, match=r"could not download .*timed out.*may be offline"):
            fetch("mr", "rt-polarity.neg", cache_dir=cache, base_url=f"http://127.0.0.1:{port}", timeout=0.2)
    assert list((cache / "mr").iterdir()) == []


def test_a_truncated_transfer_is_an_interrupted_download(server, cache):
    server.truncate.add("/mr/rt-polarity.neg")
    with pytest.raises(DownloadError, match=r"the download of .*/mr/rt-polarity.neg was interrupted: "
                       r"received 10 of the 1000 bytes announced; the machine may be offline"):
        fetch("mr", "rt-polarity.neg", cache_dir=cache, base_url=server.url)
    assert list((cache / "mr").iterdir()) == []


def test_a_damaged_cached_file_is_reported(server, data_dir, cache):
    serve_real(server, data_dir, "timeseries", "airline-passengers.csv")
    path = fetch("timeseries", "airline-passengers.csv", cache_dir=cache, base_url=server.url)
    path.write_bytes(path.read_bytes().replace(b"112", b"113", 1))
    with pytest.raises(ChecksumError,
                       match=r"checksum mismatch for .*airline-passengers.csv'.*delete it to download it again"):
        fetch("timeseries", "airline-passengers.csv", cache_dir=cache, base_url=server.url)
    assert fetch("timeseries", "airline-passengers.csv", cache_dir=cache, verify=False) == path
    assert len(server.requests) == 1


def test_a_loader_downloads_only_what_the_data_directory_lacks(server, data_dir, tmp_path, cache, monkeypatch):
    point_remote_at(monkeypatch, server, "timeseries", "airline-passengers.csv")
    point_remote_at(monkeypatch, server, "timeseries", "monthly-sunspots.csv")
    serve_real(server, data_dir, "timeseries", "airline-passengers.csv", "monthly-sunspots.csv", at="origin/timeseries")
    local = tmp_path / "data" / "timeseries"  # a data directory holding one of the two files
    local.mkdir(parents=True)
    for name in ("SOURCE.md", "monthly-sunspots.csv"):
        shutil.copyfile(data_dir / "timeseries" / name, local / name)

    _, sunspots = time_series("monthly-sunspots", tmp_path / "data", download=True, cache_dir=cache)
    assert sunspots.shape == (2820,) and server.requests == []  # found locally: no request
    _, passengers = time_series("airline-passengers", tmp_path / "data", download=True, cache_dir=cache)
    assert server.requests == ["/origin/timeseries/airline-passengers.csv"]
    assert passengers[:3].tolist() == [112.0, 118.0, 132.0]
    assert (cache / "timeseries" / "airline-passengers.csv").is_file()
    time_series("airline-passengers", tmp_path / "data", download=True, cache_dir=cache)
    assert len(server.requests) == 1  # the second load uses the cache


def test_a_loader_downloads_when_there_is_no_data_directory(server, data_dir, cache, monkeypatch):
    point_remote_at(monkeypatch, server, "tinyshakespeare", "input.txt")
    serve_real(server, data_dir, "tinyshakespeare", "input.txt", at="origin/tinyshakespeare")
    text = tiny_shakespeare(split="valid", download=True, cache_dir=cache)
    assert len(text) == 111_540 and server.requests == ["/origin/tinyshakespeare/input.txt"]


@pytest.mark.parametrize("header", [b"Sentence\tsentiment\n", b"x" * 70_000 + b"\n"],
                         ids=["short", "longer-than-a-chunk"])
def test_an_added_header_line_is_dropped_from_the_origin(server, data_dir, cache, monkeypatch, header):
    """imdb_labelled.txt is published with an added first line; the download drops it before checking."""
    point_remote_at(monkeypatch, server, "uci_sentiment", "imdb_labelled.txt")
    real = (data_dir / "uci_sentiment" / "imdb_labelled.txt").read_bytes()
    server.put("origin/uci_sentiment", "imdb_labelled.txt", header + real)
    texts, labels = uci_sentiment(sources="imdb", download=True, cache_dir=cache)
    assert len(texts) == 1000 and labels.sum() == 500
    assert (cache / "uci_sentiment" / "imdb_labelled.txt").read_bytes() == real


def test_the_header_is_not_dropped_from_a_mirror(server, data_dir, cache):
    """A base_url mirror holds the files as in a data directory: imdb is served without header, as is."""
    serve_real(server, data_dir, "uci_sentiment", "imdb_labelled.txt")
    path = fetch("uci_sentiment", "imdb_labelled.txt", cache_dir=cache, base_url=server.url)
    assert path.read_bytes() == (data_dir / "uci_sentiment" / "imdb_labelled.txt").read_bytes()


def test_unknown_names_are_rejected(cache):
    with pytest.raises(ValueError, match=r"name must be one of 'ptb', 'tinyshakespeare', 'mr', 'uci_sentiment', "
                       r"'timeseries'; got 'imagenet'"):
        download("imagenet", cache_dir=cache)
    with pytest.raises(ValueError, match=r"filename must be one of 'input.txt'; got 'shakespeare.txt'"):
        fetch("tinyshakespeare", "shakespeare.txt", cache_dir=cache)
    assert not cache.exists()


def test_the_guard_stops_a_request_to_the_real_origin(cache):
    """Without base_url, fetch asks the GitHub origin, through urllib.request.urlopen: the guard refuses it."""
    with pytest.raises(pytest.fail.Exception, match=r"a test tried to reach https://raw\.githubusercontent\.com/"
                       r"jbrownlee/Datasets/d20fcb6402ae34e653d4513b00f39257bb37ed7f/airline-passengers\.csv"):
        fetch("timeseries", "airline-passengers.csv", cache_dir=cache)
    assert list((cache / "timeseries").iterdir()) == []
