"""Tests for llmscratch.download under faults: a local HTTP server that trickles, stalls,
sends too much, the wrong bytes or errors; broken mirrors; caches that cannot be read or
written; leftovers of killed processes. No test touches the internet; each takes < 3 s."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from llmscratch import data, download, sources
from llmscratch.data import DataDownloadError, fetch
from llmscratch.download import fetch_source

NAME = "the_verdict"  # the smallest registry file (20 KB)
SOURCE = data.REGISTRY[NAME]


@dataclass
class Reply:
    """One answer of the test server. ``length``: "auto" (the body's), None (no header:
    the body runs until the connection closes) or a number (a lie). ``trickle``: seconds
    between bytes (0: all at once). ``delay``: seconds before answering."""

    status: int = 200
    body: bytes = b""
    delay: float = 0.0
    length: int | str | None = "auto"
    trickle: float = 0.0
    encoding: str | None = None


class _Server:
    """A local HTTP server; request i gets ``plan[i]`` (the last entry repeats)."""

    def __init__(self) -> None:
        self.plan: list[Reply] = [Reply(500)]
        self.requests = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                reply = server.plan[min(server.requests, len(server.plan) - 1)]
                server.requests += 1
                time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    if reply.length is not None:
                        length = len(reply.body) if reply.length == "auto" else reply.length
                        self.send_header("Content-Length", str(length))
                    if reply.encoding:
                        self.send_header("Content-Encoding", reply.encoding)
                    self.end_headers()
                    if reply.trickle:
                        for i in range(len(reply.body)):
                            self.wfile.write(reply.body[i:i + 1])
                            self.wfile.flush()
                            time.sleep(reply.trickle)
                    else:
                        self.wfile.write(reply.body)
                except OSError:  # the client gave up
                    pass

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/the-verdict.txt"


@pytest.fixture
def server(monkeypatch):
    """A running local server; the mirror is switched off so that fetch goes to the network."""
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    srv = _Server()
    thread = threading.Thread(target=srv.httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()
    thread.join()


@pytest.fixture
def verdict(mirror_dir) -> bytes:
    return (mirror_dir / SOURCE.filename).read_bytes()


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


def _assert_nothing_written(cache: Path) -> None:
    leftovers = sorted(p.name for p in cache.iterdir()) if cache.exists() else []
    assert leftovers == [], f"half-written files left in the cache: {leftovers}"


def _error(**kwargs) -> str:
    with pytest.raises(DataDownloadError) as info:
        fetch(NAME, **kwargs)
    return str(info.value)


# --------------------------------------------------------------------------- the happy paths


def test_download_lands_in_the_cache_then_hits_the_cache(server, cache, verdict):
    server.plan = [Reply(200, verdict)]
    path = fetch(NAME, cache_dir=cache, url=server.url)
    assert path == cache / SOURCE.filename and path.read_bytes() == verdict
    assert sorted(p.name for p in cache.iterdir()) == [SOURCE.filename]  # no temp files
    assert fetch(NAME, cache_dir=cache, url=server.url) == path
    assert server.requests == 1  # cache hit: the server saw nothing


def test_source_can_be_passed_directly(server, cache, verdict):
    server.plan = [Reply(200, verdict)]
    mine = replace(SOURCE, name="mine", url=server.url, filename="mine.txt")
    assert fetch_source(mine, cache_dir=cache).read_bytes() == verdict


def test_gzip_encoded_answer_is_decoded(server, cache, verdict):
    server.plan = [Reply(200, gzip.compress(verdict), encoding="gzip")]
    assert fetch(NAME, cache_dir=cache, url=server.url).read_bytes() == verdict


def test_env_cache_dir_is_the_default(server, verdict, monkeypatch, tmp_path):
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "from_env"))
    server.plan = [Reply(200, verdict)]
    assert fetch(NAME, url=server.url) == tmp_path / "from_env" / SOURCE.filename
    assert data.load_text(NAME, url=server.url) == verdict.decode("utf-8")
    assert server.requests == 1


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_files_get_the_users_normal_permissions(server, cache, verdict, umask):
    server.plan = [Reply(200, verdict)]
    old = os.umask(umask)
    try:
        path = fetch(NAME, cache_dir=cache, url=server.url)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


# --------------------------------------------------------------------------- slow servers


def test_trickling_server_hits_the_deadline(server, cache, verdict):
    server.plan = [Reply(200, verdict, trickle=0.01)]  # 100 bytes/s: 200 s for the file
    start = time.perf_counter()
    message = _error(cache_dir=cache, url=server.url, deadline=0.5, retries=3, backoff=0.0)
    assert time.perf_counter() - start < 1.5
    assert "the-verdict.txt did not arrive within the deadline of 0.5 s" in message
    assert "of 20,479 bytes" in message
    assert server.requests == 1  # the deadline is not retried
    _assert_nothing_written(cache)


def test_stalled_server_hits_the_deadline_not_the_read_timeout(server, cache, verdict):
    server.plan = [Reply(200, verdict, delay=2.0)]
    start = time.perf_counter()
    message = _error(cache_dir=cache, url=server.url, deadline=0.4, timeout=(5.0, 30.0), retries=1)
    assert time.perf_counter() - start < 1.2  # each read waits at most the time left
    assert "deadline of 0.4 s" in message
    _assert_nothing_written(cache)


def test_backoff_past_the_deadline_stops_retrying(server, cache):
    server.plan = [Reply(500, b"oops")]
    start = time.perf_counter()
    message = _error(cache_dir=cache, url=server.url, deadline=0.5, retries=5, backoff=2.0)
    assert time.perf_counter() - start < 0.5
    assert "gave up after 1 of 5 attempts; the deadline of 0.5 s left no time" in message
    assert server.requests == 1


def test_read_timeout_is_retried_and_writes_nothing(server, cache, verdict):
    server.plan = [Reply(200, verdict, delay=0.6)]
    start = time.perf_counter()
    message = _error(cache_dir=cache, url=server.url, timeout=(1.0, 0.1), retries=2, backoff=0.0)
    assert "could not download dataset 'the_verdict'" in message
    assert time.perf_counter() - start < 1.0  # gave up on the read timeout, twice
    assert server.requests == 2
    _assert_nothing_written(cache)


# --------------------------------------------------------------------------- wrong answers


def test_content_length_over_the_size_is_refused_before_reading(server, cache, verdict):
    server.plan = [Reply(200, verdict + b"x" * 1000)]
    message = _error(cache_dir=cache, url=server.url, retries=3, backoff=0.0)
    assert "the-verdict.txt: the server announces 21,479 bytes" in message
    assert "the registry expects 20,479" in message
    assert server.requests == 1  # not retried
    _assert_nothing_written(cache)


def test_unannounced_oversize_stops_as_soon_as_the_size_is_passed(server, cache, verdict):
    server.plan = [Reply(200, verdict + b"x" * 5_000_000, length=None)]
    message = _error(cache_dir=cache, url=server.url, retries=3, backoff=0.0)
    assert "the-verdict.txt is too large: expected 20,479 bytes, received" in message
    received = int(message.split("received ")[1].split(" ")[0].replace(",", ""))
    assert 20_479 < received <= 20_479 + download._CHUNK  # stopped at the first chunk over
    assert server.requests == 1
    _assert_nothing_written(cache)


def test_decompression_bomb_counts_decoded_bytes(server, cache):
    server.plan = [Reply(200, gzip.compress(b"\0" * 5_000_000), encoding="gzip")]  # 5 kB on the wire
    message = _error(cache_dir=cache, url=server.url, retries=1)
    assert "too large: expected 20,479 bytes" in message
    _assert_nothing_written(cache)


def test_checksum_mismatch_leaves_nothing_behind(server, cache, verdict):
    corrupted = verdict[:-1] + b"!"
    server.plan = [Reply(200, corrupted)]
    message = _error(cache_dir=cache, url=server.url, backoff=0.0)
    assert SOURCE.sha256 in message and hashlib.sha256(corrupted).hexdigest() in message
    assert server.requests == 1  # a checksum mismatch is not retried
    _assert_nothing_written(cache)


def test_short_body_is_retried(server, cache, verdict):
    server.plan = [Reply(200, verdict[:100], length=len(verdict)), Reply(200, verdict)]
    assert fetch(NAME, cache_dir=cache, url=server.url, backoff=0.0).read_bytes() == verdict
    assert server.requests == 2


def test_404_names_dataset_url_and_mirror_variable_and_is_not_retried(server, cache):
    server.plan = [Reply(404, b"not found")]
    with pytest.raises(DataDownloadError) as info:
        fetch(NAME, cache_dir=cache, url=server.url, retries=3, backoff=0.0)
    message = str(info.value)
    for part in (NAME, server.url, str(cache / SOURCE.filename), data.MIRROR_ENV, "404"):
        assert part in message
    assert info.value.__cause__ is not None  # the requests error is chained
    assert server.requests == 1
    _assert_nothing_written(cache)


def test_transient_500_is_retried(server, cache, verdict):
    server.plan = [Reply(500, b"oops"), Reply(503, b"busy"), Reply(200, verdict)]
    assert fetch(NAME, cache_dir=cache, url=server.url, backoff=0.01).read_bytes() == verdict
    assert server.requests == 3


def test_500_until_retries_run_out(server, cache):
    server.plan = [Reply(500, b"oops")]
    assert "3 of 3 attempts" in _error(cache_dir=cache, url=server.url, retries=3, backoff=0.0)
    assert server.requests == 3
    _assert_nothing_written(cache)


def test_connection_refused_is_a_download_error(cache, monkeypatch):
    monkeypatch.delenv(data.MIRROR_ENV)
    message = _error(cache_dir=cache, url="http://127.0.0.1:9/x", retries=1, timeout=(0.5, 0.5))
    assert f"set {data.MIRROR_ENV}" in message
    _assert_nothing_written(cache)


# --------------------------------------------------------------------------- the mirror


def test_mirror_hit_makes_no_request(server, cache, mirror_dir):
    path = fetch(NAME, cache_dir=cache, mirror=mirror_dir, url=server.url)
    assert path == mirror_dir / SOURCE.filename
    assert server.requests == 0
    _assert_nothing_written(cache)


def test_mirror_from_the_environment(mirror_dir, cache):
    assert fetch("tinyshakespeare", cache_dir=cache) == mirror_dir / "tinyshakespeare.txt"


def test_mirror_found_under_the_url_basename(server, cache, tmp_path, mirror_dir):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    upstream = mirror / "Indian_Names.csv"  # the upstream name, not the registry filename
    upstream.write_bytes((mirror_dir / "indian_names_raw.csv").read_bytes())
    assert fetch("indian_names_raw", cache_dir=cache, mirror=mirror, url=server.url) == upstream
    assert server.requests == 0


@pytest.mark.parametrize("where", ["env", "argument"])
@pytest.mark.parametrize("kind", ["missing", "file"])
def test_mirror_that_is_not_a_folder_is_an_error(server, cache, tmp_path, monkeypatch, where, kind):
    mirror = tmp_path / "mirror"
    if kind == "file":
        mirror.write_text("not a folder")
    kwargs = {"mirror": mirror} if where == "argument" else {}
    if where == "env":
        monkeypatch.setenv(data.MIRROR_ENV, str(mirror))
    message = _error(cache_dir=cache, url=server.url, **kwargs)
    assert str(mirror) in message
    assert ("does not exist" if kind == "missing" else "is not a folder") in message
    assert ("$" + data.MIRROR_ENV if where == "env" else "the mirror argument") in message
    assert server.requests == 0  # not silently skipped


def test_broken_mirror_does_not_matter_on_a_cache_hit(server, cache, verdict, tmp_path, monkeypatch):
    server.plan = [Reply(200, verdict)]
    fetch(NAME, cache_dir=cache, url=server.url)
    monkeypatch.setenv(data.MIRROR_ENV, str(tmp_path / "gone"))
    assert fetch(NAME, cache_dir=cache, url=server.url) == cache / SOURCE.filename


def test_mirror_without_the_file_falls_through_and_says_so(server, cache, tmp_path, verdict):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    server.plan = [Reply(404)]
    message = _error(cache_dir=cache, mirror=mirror, url=server.url)
    assert f"The mirror {mirror} (the mirror argument) has no the-verdict.txt" in message
    assert f"set {data.MIRROR_ENV}" not in message  # it is set already
    server.plan = [Reply(200, verdict)]
    assert fetch(NAME, cache_dir=cache, mirror=mirror, url=server.url) == cache / SOURCE.filename


@pytest.mark.parametrize(("content", "match"), [
    (b"not the verdict", "has the wrong size: expected 20,479 bytes, found 15"),
    ("same size, wrong byte", "has the wrong SHA-256"),
    ("a folder", "is not a regular file"),
])
def test_wrong_mirror_file_is_an_error(server, cache, tmp_path, verdict, content, match):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    path = mirror / SOURCE.filename
    if content == "a folder":
        path.mkdir()
    else:
        path.write_bytes(verdict[:-1] + b"!" if content == "same size, wrong byte" else content)
    message = _error(cache_dir=cache, mirror=mirror, url=server.url)
    assert match in message and str(path) in message
    if "SHA" in match:
        assert SOURCE.sha256 in message and hashlib.sha256(path.read_bytes()).hexdigest() in message
    assert server.requests == 0


def test_unreadable_mirror_file_is_an_error(server, cache, mirror_dir, monkeypatch):
    def denied(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(sources, "sha256_file", denied)
    message = _error(cache_dir=cache, mirror=mirror_dir, url=server.url)
    assert f"cannot read mirror file {mirror_dir / SOURCE.filename}" in message
    assert "Permission denied" in message


# --------------------------------------------------------------------------- the cache


def test_corrupted_cache_file_is_fetched_again(server, cache, verdict):
    cache.mkdir()
    (cache / SOURCE.filename).write_bytes(b"stale")
    server.plan = [Reply(200, verdict)]
    assert fetch(NAME, cache_dir=cache, url=server.url).read_bytes() == verdict
    assert server.requests == 1


def test_unreadable_cache_file_falls_through_to_the_download(server, cache, verdict, monkeypatch):
    cache.mkdir()
    (cache / SOURCE.filename).write_bytes(verdict)
    real = sources.sha256_file

    def denied(path):
        if Path(path).parent == cache:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(sources, "sha256_file", denied)
    server.plan = [Reply(200, verdict)]
    assert fetch(NAME, cache_dir=cache, url=server.url).read_bytes() == verdict
    assert server.requests == 1


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_chmod_000_cache_file_falls_through_to_the_download(server, cache, verdict):
    cache.mkdir()
    (cache / SOURCE.filename).write_bytes(verdict)
    (cache / SOURCE.filename).chmod(0)
    server.plan = [Reply(200, verdict)]
    assert fetch(NAME, cache_dir=cache, url=server.url).read_bytes() == verdict


def test_undeletable_stale_cache_file_is_replaced(server, cache, verdict, monkeypatch):
    cache.mkdir()
    stale = cache / SOURCE.filename
    stale.write_bytes(b"stale")
    real = Path.unlink

    def unlink(self, missing_ok=False):
        if self == stale:
            raise PermissionError(13, "Operation not permitted", str(self))
        return real(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    server.plan = [Reply(200, verdict)]
    assert fetch(NAME, cache_dir=cache, url=server.url).read_bytes() == verdict


def test_folder_in_place_of_the_cache_file(server, cache, verdict, mirror_dir):
    (cache / SOURCE.filename).mkdir(parents=True)
    server.plan = [Reply(200, verdict)]
    message = _error(cache_dir=cache, url=server.url)
    assert f"the cache path {cache / SOURCE.filename} for dataset 'the_verdict' exists but is not a file" in message
    assert server.requests == 0  # refused before downloading
    # With a mirror the cache is not needed.
    assert fetch(NAME, cache_dir=cache, mirror=mirror_dir) == mirror_dir / SOURCE.filename


def test_file_in_place_of_the_cache_folder(server, cache, tmp_path):
    cache.write_text("a file")
    message = _error(cache_dir=cache / "sub", url=server.url)
    assert f"cannot create the cache folder {cache / 'sub'}" in message and data.CACHE_ENV in message
    assert server.requests == 0


def test_cache_folder_not_writable(server, cache, verdict, monkeypatch):
    def denied(dest):
        raise PermissionError(13, "Permission denied", str(dest))

    monkeypatch.setattr(download, "_open_part", denied)
    server.plan = [Reply(200, verdict)]
    message = _error(cache_dir=cache, url=server.url, retries=3)
    assert f"cannot write {cache / SOURCE.filename}" in message and "Permission denied" in message
    assert server.requests == 0  # a local error is not retried


def test_rename_failure_leaves_nothing_behind(server, cache, verdict, monkeypatch):
    def no_space(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(download.os, "replace", no_space)
    server.plan = [Reply(200, verdict)]
    message = _error(cache_dir=cache, url=server.url)
    assert f"cannot write {cache / SOURCE.filename} (via .the-verdict.txt." in message
    assert "No space left on device" in message
    _assert_nothing_written(cache)


def test_interrupted_download_leaves_nothing_behind(server, cache, verdict, monkeypatch):
    def interrupted(response):
        yield verdict[:100]
        raise KeyboardInterrupt

    monkeypatch.setattr(download, "_chunks", interrupted)
    server.plan = [Reply(200, verdict)]
    with pytest.raises(KeyboardInterrupt):
        fetch(NAME, cache_dir=cache, url=server.url)
    _assert_nothing_written(cache)


@pytest.mark.skipif(download.fcntl is None, reason="needs flock")
def test_part_of_a_killed_process_is_removed_but_a_live_one_is_kept(server, cache, verdict):
    cache.mkdir()
    part = cache / f".{SOURCE.filename}.0badf00d.part"
    writer = subprocess.Popen(  # a download in progress: holds the lock, like _download
        [sys.executable, "-c", "import fcntl, sys, time\n"
         f"f = open({str(part)!r}, 'wb'); fcntl.flock(f, fcntl.LOCK_EX); f.write(b'half')\n"
         "f.flush(); print('locked', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert writer.stdout.readline() == "locked\n"
        os.utime(part, (time.time() - 60, time.time() - 60))
        server.plan = [Reply(200, verdict)]
        fetch(NAME, cache_dir=cache, url=server.url)
        assert part.exists()  # still being written: kept
    finally:
        writer.kill()
        writer.wait()
    (cache / SOURCE.filename).unlink()
    fetch(NAME, cache_dir=cache, url=server.url)
    assert not part.exists()  # its owner was killed: removed
    assert sorted(p.name for p in cache.iterdir()) == [SOURCE.filename]


def test_cache_hit_also_removes_a_stale_part(server, cache, verdict):
    server.plan = [Reply(200, verdict)]
    fetch(NAME, cache_dir=cache, url=server.url)
    part = cache / f".{SOURCE.filename}.deadbeef.part"
    part.write_bytes(b"half")
    os.utime(part, (time.time() - 60, time.time() - 60))
    fetch(NAME, cache_dir=cache, url=server.url)
    assert not part.exists() and server.requests == 1


# --------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"retries": 0}, ValueError, "retries"),
    ({"retries": 1.5}, TypeError, "retries"),
    ({"backoff": -1.0}, ValueError, "backoff"),
    ({"backoff": "1"}, TypeError, "backoff"),
    ({"deadline": 0}, ValueError, "deadline"),
    ({"deadline": float("nan")}, ValueError, "deadline"),
    ({"timeout": (1.0,)}, ValueError, "timeout"),
    ({"timeout": "5"}, TypeError, "timeout"),
    ({"timeout": (0, 1)}, ValueError, r"timeout\[0\]"),
    ({"cache_dir": 5}, TypeError, "cache_dir"),
    ({"cache_dir": ""}, ValueError, "cache_dir"),
    ({"mirror": 5}, TypeError, "mirror"),
    ({"url": b"http://x"}, TypeError, "url"),
    ({"no_such_option": 1}, TypeError, "no_such_option"),
])
def test_fetch_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        fetch(NAME, **kwargs)


def test_fetch_source_needs_a_source():
    with pytest.raises(TypeError, match="source must be a DataSource"):
        fetch_source(NAME)


@pytest.mark.parametrize(("change", "error"), [
    ({"sha256": "abc"}, ValueError),
    ({"sha256": SOURCE.sha256.upper()}, ValueError),
    ({"size": -1}, ValueError),
    ({"size": 20479.0}, TypeError),
    ({"filename": "../evil"}, ValueError),
    ({"filename": ""}, ValueError),
    ({"url": None}, TypeError),
])
def test_data_source_checks_its_fields(change, error):
    with pytest.raises(error):
        replace(SOURCE, **change)


def test_default_deadline_has_a_floor_and_grows_with_size():
    assert download.default_deadline(20_479) == 120.0
    assert download.default_deadline(10_000_000) == 1000.0
