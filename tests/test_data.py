"""Tests for llmscratch.data: the checked download cache (against a local HTTP server) and
names cleaning (unit tests plus the real mirror file). No test touches the internet."""

from __future__ import annotations

import hashlib
import http.server
import threading
import time
from pathlib import Path

import pytest

from llmscratch import data
from llmscratch.data import DataDownloadError, clean_names, fetch

NAME = "the_verdict"  # the smallest registry file (20 KB)
SOURCE = data.REGISTRY[NAME]


class _Server:
    """A local HTTP server whose answers the test controls.

    ``plan`` is a list of ``(status, body, delay_s)``; request i gets ``plan[i]``
    (the last entry repeats). ``requests`` counts the GET requests seen.
    """

    def __init__(self) -> None:
        self.plan: list[tuple[int, bytes, float]] = []
        self.requests = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                status, body, delay = server.plan[min(server.requests, len(server.plan) - 1)]
                server.requests += 1
                time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up (timeout test)
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
def verdict_bytes(mirror_dir) -> bytes:
    return (mirror_dir / SOURCE.filename).read_bytes()


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


def _assert_nothing_written(cache: Path) -> None:
    leftovers = sorted(p.name for p in cache.iterdir()) if cache.exists() else []
    assert leftovers == [], f"half-written files left in the cache: {leftovers}"


# --------------------------------------------------------------------------- the registry


def test_every_registry_entry_matches_its_mirror_file(mirror_dir):
    assert set(data.REGISTRY) == {
        "tinyshakespeare", "indian_names_raw", "names_en", "gpt2_tiktoken",
        "instruction_data", "instruction_data_with_preference", "the_verdict",
    }
    for name, source in data.REGISTRY.items():
        assert source.name == name
        assert source.url.startswith("https://")
        assert data.sha256_file(mirror_dir / source.filename) == source.sha256, name


def test_unknown_name_lists_the_known_names():
    with pytest.raises(ValueError, match="unknown dataset name 'nope'.*tinyshakespeare"):
        fetch("nope")


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "a"))
    assert data.default_cache_dir() == tmp_path / "a"
    monkeypatch.delenv(data.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.default_cache_dir() == tmp_path / "xdg" / "llmscratch"


# --------------------------------------------------------------------------- fetch


def test_download_lands_in_the_cache_then_hits_the_cache(server, cache, verdict_bytes):
    server.plan = [(200, verdict_bytes, 0.0)]
    path = fetch(NAME, cache_dir=cache, url=server.url)
    assert path == cache / SOURCE.filename
    assert path.read_bytes() == verdict_bytes
    assert server.requests == 1
    assert sorted(p.name for p in cache.iterdir()) == [SOURCE.filename]  # no temp files

    assert fetch(NAME, cache_dir=cache, url=server.url) == path
    assert server.requests == 1  # cache hit: the server saw nothing


def test_corrupted_cache_file_is_fetched_again(server, cache, verdict_bytes):
    cache.mkdir()
    (cache / SOURCE.filename).write_bytes(b"stale")
    server.plan = [(200, verdict_bytes, 0.0)]
    assert fetch(NAME, cache_dir=cache, url=server.url).read_bytes() == verdict_bytes
    assert server.requests == 1


def test_env_cache_dir_is_the_default(server, verdict_bytes, monkeypatch, tmp_path):
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "from_env"))
    server.plan = [(200, verdict_bytes, 0.0)]
    assert fetch(NAME, url=server.url) == tmp_path / "from_env" / SOURCE.filename
    assert data.load_text(NAME, url=server.url) == verdict_bytes.decode("utf-8")
    assert server.requests == 1


def test_mirror_hit_makes_no_request(server, cache, mirror_dir):
    server.plan = [(500, b"", 0.0)]
    path = fetch(NAME, cache_dir=cache, mirror=mirror_dir, url=server.url)
    assert path == mirror_dir / SOURCE.filename
    assert server.requests == 0
    _assert_nothing_written(cache)


def test_mirror_found_under_the_url_basename(server, cache, tmp_path, mirror_dir):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    upstream = mirror / "Indian_Names.csv"  # the upstream name, not the registry filename
    upstream.write_bytes((mirror_dir / "indian_names_raw.csv").read_bytes())
    assert fetch("indian_names_raw", cache_dir=cache, mirror=mirror, url=server.url) == upstream
    upstream.write_bytes(b"x")
    with pytest.raises(DataDownloadError, match="wrong SHA-256"):
        fetch("indian_names_raw", cache_dir=cache, mirror=mirror, url=server.url)
    assert server.requests == 0


def test_mirror_file_with_wrong_hash_is_an_error(server, cache, tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / SOURCE.filename).write_bytes(b"not the verdict")
    actual = hashlib.sha256(b"not the verdict").hexdigest()
    with pytest.raises(DataDownloadError) as info:
        fetch(NAME, cache_dir=cache, mirror=mirror, url=server.url)
    message = str(info.value)
    assert "wrong SHA-256" in message and SOURCE.sha256 in message and actual in message
    assert str(mirror / SOURCE.filename) in message
    assert server.requests == 0


def test_mirror_from_the_environment(mirror_dir, cache):
    # conftest points LLMSCRATCH_DATA_MIRROR at the real mirror
    assert fetch("tinyshakespeare", cache_dir=cache) == mirror_dir / "tinyshakespeare.txt"


def test_checksum_mismatch_leaves_nothing_behind(server, cache, verdict_bytes):
    corrupted = verdict_bytes[:-1] + b"!"
    server.plan = [(200, corrupted, 0.0)]
    with pytest.raises(DataDownloadError) as info:
        fetch(NAME, cache_dir=cache, url=server.url, backoff=0.0)
    message = str(info.value)
    assert SOURCE.sha256 in message
    assert hashlib.sha256(corrupted).hexdigest() in message
    assert server.requests == 1  # a checksum mismatch is not retried
    _assert_nothing_written(cache)


def test_404_names_dataset_url_and_mirror_variable_and_is_not_retried(server, cache):
    server.plan = [(404, b"not found", 0.0)]
    with pytest.raises(DataDownloadError) as info:
        fetch(NAME, cache_dir=cache, url=server.url, retries=3, backoff=0.0)
    message = str(info.value)
    for part in (NAME, server.url, str(cache / SOURCE.filename), data.MIRROR_ENV, "404"):
        assert part in message
    assert info.value.__cause__ is not None  # the requests error is chained
    assert server.requests == 1
    _assert_nothing_written(cache)


def test_read_timeout_is_an_error_and_writes_nothing(server, cache, verdict_bytes):
    server.plan = [(200, verdict_bytes, 0.6)]
    start = time.perf_counter()
    with pytest.raises(DataDownloadError, match="could not download dataset 'the_verdict'"):
        fetch(NAME, cache_dir=cache, url=server.url, timeout=(1.0, 0.1), retries=2, backoff=0.0)
    assert time.perf_counter() - start < 1.0  # gave up on the read timeout, twice
    assert server.requests == 2  # timeouts are retried
    _assert_nothing_written(cache)


def test_transient_500_is_retried(server, cache, verdict_bytes):
    server.plan = [(500, b"oops", 0.0), (503, b"busy", 0.0), (200, verdict_bytes, 0.0)]
    path = fetch(NAME, cache_dir=cache, url=server.url, retries=3, backoff=0.01)
    assert path.read_bytes() == verdict_bytes
    assert server.requests == 3


def test_500_until_retries_run_out(server, cache):
    server.plan = [(500, b"oops", 0.0)]
    with pytest.raises(DataDownloadError, match="3 of 3 attempts"):
        fetch(NAME, cache_dir=cache, url=server.url, retries=3, backoff=0.0)
    assert server.requests == 3
    _assert_nothing_written(cache)


def test_connection_refused_is_a_download_error(cache, monkeypatch):
    monkeypatch.delenv(data.MIRROR_ENV)
    with pytest.raises(DataDownloadError, match=data.MIRROR_ENV):
        fetch(NAME, cache_dir=cache, url="http://127.0.0.1:9/x", retries=1, timeout=(0.5, 0.5))
    _assert_nothing_written(cache)


@pytest.mark.parametrize("kwargs", [{"retries": 0}, {"backoff": -1.0}])
def test_fetch_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        fetch(NAME, **kwargs)


# --------------------------------------------------------------------------- the CLI


def test_cli_list_and_fetch(capsys, mirror_dir):
    assert data.main(["list"]) == 0
    assert "gpt2_tiktoken" in capsys.readouterr().out
    assert data.main(["fetch", "the_verdict", "names_en"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("the_verdict") and "20,479 bytes" in lines[0]
    with pytest.raises(SystemExit):
        data.main(["fetch", "nope"])


# --------------------------------------------------------------------------- names cleaning


def test_clean_names_strips_lowercases_and_keeps_order():
    names, report = clean_names(["  Ravi\r", "ASHA", "zoe"])
    assert names == ["ravi", "asha", "zoe"]
    assert (report.total, report.kept) == (3, 3)


def test_clean_names_drops_each_reason():
    raw = ["al0k", "s/o", "amit,", "", "a", "x" * 16, "Ravi", "ravi ", "asha", "RAVI"]
    names, report = clean_names(raw, min_len=2, max_len=15)
    assert names == ["ravi", "asha"]
    assert report.dropped_non_alpha == 3
    assert report.dropped_too_short == 2  # "" and "a"
    assert report.dropped_too_long == 1
    assert report.dropped_duplicate == 2
    assert report.examples["non_alpha"] == ("al0k", "s/o", "amit,")
    assert report.examples["duplicate"] == ("ravi", "RAVI")
    dropped = (report.dropped_non_alpha + report.dropped_too_short
               + report.dropped_too_long + report.dropped_duplicate)
    assert report.kept + dropped == report.total == len(raw)


def test_clean_names_bounds_are_inclusive_and_examples_capped():
    names, report = clean_names(["ab", "abcd", "abcde"] + ["q1"] * 9, min_len=2, max_len=4)
    assert names == ["ab", "abcd"]
    assert report.dropped_too_long == 1
    assert report.dropped_non_alpha == 9 and len(report.examples["non_alpha"]) == 5


def test_clean_names_rejects_non_ascii_letters():
    names, report = clean_names(["josé", "zoë", "jose"])
    assert names == ["jose"] and report.dropped_non_alpha == 2


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"min_len": 0}, "min_len"),
    ({"min_len": 5, "max_len": 4}, "max_len"),
])
def test_clean_names_rejects_bad_bounds(kwargs, match):
    with pytest.raises(ValueError, match=match):
        clean_names(["asha"], **kwargs)


def test_load_indian_names_on_the_real_file(mirror_dir):
    names, report = data.load_indian_names(mirror=mirror_dir)
    assert len(names) > 6000
    assert all(name.isascii() and name.isalpha() and name.islower() for name in names)
    assert len(set(names)) == len(names)
    assert report.total == 6486 and report.dropped_non_alpha == 19

    # Agrees with the derived file, which applied the same rules without a length bound.
    reference = (mirror_dir / "indian_names.txt").read_text(encoding="utf-8").split()
    unbounded, _ = data.load_indian_names(mirror=mirror_dir, max_len=100)
    assert unbounded == reference
