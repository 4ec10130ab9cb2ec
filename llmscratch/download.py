"""Downloading a pinned file safely: a verified cache, an offline mirror, HTTP with limits.

Used by :mod:`llmscratch.data` (chapter 1, "Getting the data"), which lists the book's
files; this module is the machinery, and :mod:`llmscratch.sources` the record of a file,
the cache and the mirror. :func:`fetch_source` returns a local path to a
verified copy of one :class:`~llmscratch.sources.DataSource`, looking in three places in order:

1. the cache folder (``$LLMSCRATCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/llmscratch``, else
   ``~/.cache/llmscratch``). A cached file that cannot be read or does not match is
   fetched again;
2. an offline mirror folder named by ``$LLMSCRATCH_DATA_MIRROR`` (a folder holding the
   files under their ``filename`` or their URL's basename). A mirror hit returns the
   mirror's own path and copies nothing. A mirror that is not a folder, or that holds a
   wrong file, is an error: a mirror is set on purpose, so it is never silently skipped;
3. the network, with ``requests``: streamed into a ``.part`` file next to the cache entry,
   stopped as soon as more bytes than the registry's size arrive or the deadline passes,
   checked against the SHA-256, then moved into place with :func:`os.replace`. A failed
   or interrupted download leaves nothing behind; a ``.part`` file of a killed process is
   deleted by the next fetch. Files get the user's normal permissions (``0o666 & ~umask``).

Every failure is a :class:`~llmscratch.sources.DataDownloadError` whose message names the file, and the path
or URL involved; argument errors are ``TypeError``/``ValueError``.
"""

from __future__ import annotations

import glob
import hashlib
import os
import secrets
import stat
import time
from pathlib import Path

import requests
import urllib3
from tqdm.auto import tqdm

from .sources import (
    CACHE_ENV,
    MIRROR_ENV,
    DataDownloadError,
    DataSource,
    _cached,
    _from_mirror,
    _mirror_folder,
    _mirror_names,
    _stat,
    default_cache_dir,
)
from .validate import check_float, check_int, check_path

try:
    import fcntl
except ImportError:  # Windows: an open file cannot be deleted, which protects a live download
    fcntl = None

_CHUNK = 1 << 16  # bytes read per network call, at most
_PART_MIN_AGE = 2.0  # seconds; a younger unlocked .part may be one whose owner is about to lock it


def default_deadline(size: int) -> float:
    """The default total time for one file, in seconds: 120 s, or the time at 10 kB/s if longer."""
    return max(120.0, size / 10_000)


# --------------------------------------------------------------------------- the network


def _remove_stale_parts(dest: Path) -> None:
    """Delete ``.part`` files of ``dest`` left by a killed process, not those being written.

    A download holds an exclusive ``flock`` on its ``.part`` file; the kernel drops it when
    the process dies, so an unlocked ``.part`` (older than a moment) is garbage.
    """
    try:
        parts = list(dest.parent.glob(f".{glob.escape(dest.name)}.*.part"))
    except OSError:
        return
    for part in parts:
        try:
            with open(part, "rb") as f:
                if fcntl is not None:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: in use
                    if time.time() - os.fstat(f.fileno()).st_mtime < _PART_MIN_AGE:
                        continue
                part.unlink()
        except OSError:
            continue  # in use, already gone or not ours to delete: leave it


def _open_part(dest: Path) -> tuple[Path, int]:
    """Create a new ``.part`` file beside ``dest`` (mode ``0o666 & ~umask``); path and fd."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        part = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
        try:
            return part, os.open(part, flags, 0o666)
        except FileExistsError:
            continue


def _chunks(response: requests.Response):
    """The decoded body in pieces of at most ``_CHUNK`` bytes, each as soon as it arrives.

    ``iter_content`` waits until a whole chunk has arrived, so a server trickling bytes
    would never let the deadline be checked; ``read1`` returns what one read gives.
    urllib3's errors are mapped to those ``iter_content`` raises.
    """
    raw = response.raw
    read = raw.read1 if hasattr(raw, "read1") else raw.read  # read1: urllib3 >= 2
    try:
        while chunk := read(_CHUNK, decode_content=True):
            yield chunk
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise requests.exceptions.ReadTimeout(exc) from exc
    except urllib3.exceptions.DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc) from exc
    except (urllib3.exceptions.ProtocolError, urllib3.exceptions.SSLError) as exc:
        raise requests.exceptions.ChunkedEncodingError(exc) from exc


def _too_late(source: DataSource, deadline: float, received: int) -> DataDownloadError:
    return DataDownloadError(
        f"{source.filename} did not arrive within the deadline of {deadline:g} s "
        f"(received {received:,} of {source.size:,} bytes)"
    )


def _download(
    source: DataSource,
    url: str,
    dest: Path,
    *,
    timeout: tuple[float, float],
    session: requests.Session,
    deadline: float,
    end: float,
) -> None:
    """One attempt: stream ``url`` into a ``.part`` beside ``dest``, verify, rename into place.

    ``end`` is the ``time.monotonic()`` by which the file must be complete; each network
    read also waits at most the time left.
    """
    left = end - time.monotonic()
    if left <= 0:
        raise _too_late(source, deadline, 0)
    timeout = (min(timeout[0], left), min(timeout[1], left))
    part = None
    digest, received = hashlib.sha256(), 0
    try:
        part, fd = _open_part(dest)
        with os.fdopen(fd, "wb") as f, session.get(url, stream=True, timeout=timeout) as response:
            if fcntl is not None:
                fcntl.flock(f, fcntl.LOCK_EX)  # see _remove_stale_parts
            response.raise_for_status()
            announced = response.headers.get("Content-Length", "")
            identity = response.headers.get("Content-Encoding", "identity") == "identity"
            if identity and announced.isdigit() and int(announced) > source.size:
                raise DataDownloadError(
                    f"{source.filename}: the server announces {int(announced):,} bytes "
                    f"(Content-Length), the registry expects {source.size:,}; nothing was read"
                )
            with tqdm(total=source.size, unit="B", unit_scale=True, desc=source.name, disable=None) as bar:
                for chunk in _chunks(response):
                    received += len(chunk)
                    if received > source.size:
                        raise DataDownloadError(
                            f"{source.filename} is too large: expected {source.size:,} bytes, "
                            f"received {received:,} already; stopped"
                        )
                    if time.monotonic() > end:
                        raise _too_late(source, deadline, received)
                    f.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if digest.hexdigest() != source.sha256:
            raise DataDownloadError(
                f"checksum mismatch for {source.filename} ({received:,} of {source.size:,} bytes "
                f"received): expected sha256 {source.sha256}, got {digest.hexdigest()}"
            )
        os.replace(part, dest)
    except requests.RequestException as exc:  # requests' errors are OSErrors too: keep them
        if time.monotonic() >= end:  # a read cut short by the time left
            raise _too_late(source, deadline, received) from exc
        raise  # the caller decides about retrying it
    except OSError as exc:  # the local side: cannot create, write or rename the file
        where = dest if part is None else f"{dest} (via {part.name})"
        raise DataDownloadError(f"cannot write {where}: {exc}") from exc
    finally:
        if part is not None:
            try:
                part.unlink(missing_ok=True)  # a no-op after a successful os.replace
            except OSError:
                pass


def _is_transient(exc: Exception) -> bool:
    """Worth retrying: connection errors, timeouts and 5xx answers (not 404 and other 4xx)."""
    if isinstance(exc, requests.HTTPError):
        return exc.response is not None and exc.response.status_code >= 500
    transient = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
    return isinstance(exc, transient)


def _check_timeout(timeout) -> tuple[float, float]:
    if isinstance(timeout, (tuple, list)):
        if len(timeout) != 2:
            raise ValueError(f"timeout must be one number or a (connect, read) pair, got {timeout!r}")
        pair = timeout
    elif isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        pair = (timeout, timeout)
    else:
        raise TypeError(f"timeout must be a number or a (connect, read) pair, got {timeout!r}")
    connect, read = (check_float(f"timeout[{i}]", t, minimum=0, min_inclusive=False) for i, t in enumerate(pair))
    return connect, read


def fetch_source(
    source: DataSource,
    *,
    cache_dir: str | os.PathLike | None = None,
    mirror: str | os.PathLike | None = None,
    url: str | None = None,
    timeout: float | tuple[float, float] = (5.0, 30.0),
    retries: int = 3,
    backoff: float = 0.5,
    deadline: float | None = None,
    session: requests.Session | None = None,
) -> Path:
    """Return the local path of a verified copy of ``source`` (see the module docstring).

    Args:
        source: the file to get.
        cache_dir: cache folder; default :func:`~llmscratch.sources.default_cache_dir`.
        mirror: offline mirror folder; default ``$LLMSCRATCH_DATA_MIRROR`` (unset or empty,
            or ``mirror=""``: no mirror). Consulted only when the cache misses.
        url: download from here instead of ``source.url`` (a local server, another host);
            the size and SHA-256 of ``source`` still apply.
        timeout: seconds to wait for a connection and for each read, as ``(connect, read)``
            or one number for both.
        retries: download attempts (>= 1); connection errors, timeouts and 5xx answers are
            retried after ``backoff``, ``2 * backoff``, ... seconds; 4xx answers, wrong
            sizes, checksum mismatches, local write errors and the deadline are not.
        backoff: base wait between attempts, in seconds (>= 0).
        deadline: most seconds the download may take in all, attempts and waits included
            (> 0); default :func:`default_deadline` of ``source.size`` (at least 120 s).
        session: a ``requests.Session`` to use (default: a new one, closed afterwards).

    Raises:
        TypeError, ValueError: an argument of the wrong type or out of range.
        ~llmscratch.sources.DataDownloadError: the mirror is not a folder, or holds a
            wrong or unreadable file; the cache cannot be written; the server sends more than ``source.size`` bytes
            or announces more; the deadline passes; or every attempt failed. The message
            names the dataset, the file, the URL or path and, for downloads, the mirror
            variable; the underlying exception is chained. Nothing half-written is left.
    """
    if not isinstance(source, DataSource):
        raise TypeError(f"source must be a DataSource, got {type(source).__name__}")
    check_path("cache_dir", cache_dir, optional=True)
    check_path("mirror", mirror, optional=True)
    if url is not None and not isinstance(url, str):
        raise TypeError(f"url must be a str, got {type(url).__name__} {url!r}")
    timeout = _check_timeout(timeout)
    check_int("retries", retries, minimum=1)
    backoff = check_float("backoff", backoff, minimum=0)
    if deadline is None:
        deadline = default_deadline(source.size)
    deadline = check_float("deadline", deadline, minimum=0, min_inclusive=False)
    if cache_dir is not None and not os.fspath(cache_dir):
        raise ValueError("cache_dir must not be empty (None for the default)")
    end = time.monotonic() + deadline
    url = url or source.url
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    dest = cache / source.filename

    # 1. The cache (first clearing away what a killed download left).
    _remove_stale_parts(dest)
    if _cached(source, dest):
        return dest

    # 2. The offline mirror.
    found = _mirror_folder(mirror)
    if found is not None:
        path = _from_mirror(source, *found)
        if path is not None:
            return path
        hint = (f"The mirror {found[0]} ({found[1]}) has no {' or '.join(_mirror_names(source))}; "
                f"copy the file there to work offline.")
    else:
        hint = f"For offline use, set {MIRROR_ENV} to a folder holding {source.filename}."

    # 3. The network.
    try:
        cache.mkdir(parents=True, exist_ok=True)
        st = _stat(dest)
    except OSError as exc:
        raise DataDownloadError(
            f"cannot create the cache folder {cache} for dataset {source.name!r}: {exc}. "
            f"Set {CACHE_ENV} to a writable folder."
        ) from exc
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise DataDownloadError(
            f"the cache path {dest} for dataset {source.name!r} exists but is not a file; "
            f"remove it, or set {CACHE_ENV} to another folder."
        )
    http = session or requests.Session()
    stopped = ""
    try:
        for attempt in range(1, retries + 1):
            if attempt > 1:
                wait = backoff * 2 ** (attempt - 2)  # 0.5 s, 1 s, 2 s, ...
                if time.monotonic() + wait >= end:
                    attempt -= 1
                    stopped = f"; the deadline of {deadline:g} s left no time for another"
                    break
                time.sleep(wait)
            try:
                _download(source, url, dest, timeout=timeout, session=http, deadline=deadline, end=end)
                return dest
            except (requests.RequestException, DataDownloadError) as exc:
                error = exc
                if not _is_transient(exc):
                    break
    finally:
        if session is None:
            http.close()
    raise DataDownloadError(
        f"could not download dataset {source.name!r} from {url} to {dest} "
        f"(gave up after {attempt} of {retries} attempts{stopped}): {error}. {hint}"
    ) from error
