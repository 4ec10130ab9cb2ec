"""Getting the data: a registry of datasets, a checked download cache, and names cleaning.

Taught in chapter 1, "Getting the data".

Every file the book uses is listed in :data:`REGISTRY` with its upstream URL (pinned to a
commit where the host allows it) and its SHA-256. :func:`fetch` returns a local path to a
verified copy, looking in three places in order:

1. the cache folder (``$LLMSCRATCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/llmscratch``, else
   ``~/.cache/llmscratch``);
2. an offline mirror folder named by ``$LLMSCRATCH_DATA_MIRROR`` (a folder holding the
   files under their registry ``filename``); a mirror hit returns the mirror's own path,
   nothing is copied;
3. the network, with ``requests``: streamed into a temporary file next to the cache entry,
   checked against the SHA-256, then moved into place with :func:`os.replace`, so a failed
   or interrupted download never leaves a half-written file behind.

Command line::

    python -m llmscratch.data list            # the registry
    python -m llmscratch.data fetch [NAME...] # download (all if no NAME) and print paths
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import requests
from tqdm.auto import tqdm

CACHE_ENV = "LLMSCRATCH_CACHE_DIR"
MIRROR_ENV = "LLMSCRATCH_DATA_MIRROR"

_GITHUB = "https://raw.githubusercontent.com"
_RASBT = f"{_GITHUB}/rasbt/LLMs-from-scratch/28c65cdfbc3338e2e040016eea4b7fdf556e4d57"


@dataclass(frozen=True)
class DataSource:
    """One downloadable file: where it lives, what it hashes to, and its licence."""

    name: str  # registry key, e.g. "tinyshakespeare"
    url: str  # upstream URL
    sha256: str  # hex digest of the exact bytes
    filename: str  # name in the cache and in the mirror folder
    licence: str  # short licence note


REGISTRY: dict[str, DataSource] = {
    source.name: source
    for source in [
        DataSource(
            "tinyshakespeare",
            f"{_GITHUB}/karpathy/char-rnn/6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e"
            "/data/tinyshakespeare/input.txt",
            "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
            "tinyshakespeare.txt",
            "MIT (karpathy/char-rnn); the text is public domain",
        ),
        DataSource(
            "indian_names_raw",
            f"{_GITHUB}/balasahebgulave/Dataset-Indian-Names"
            "/80401358aaa609cbe30ae57afbea37654879d0ab/Indian_Names.csv",
            "f7b2bd2a8ad89a0c865296f81aff9df7a8ab360f6c6b0a0bde996b5172b9c47a",
            "indian_names_raw.csv",
            "not stated (no licence file upstream)",
        ),
        DataSource(
            "names_en",
            f"{_GITHUB}/karpathy/makemore/988aa59e4d8fefa526d06f3b453ad116258398d4/names.txt",
            "0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d",
            "names_en.txt",
            "MIT (karpathy/makemore); names from ssa.gov",
        ),
        DataSource(
            "gpt2_tiktoken",
            f"{_GITHUB}/openai/whisper/main/whisper/assets/gpt2.tiktoken",
            "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
            "gpt2.tiktoken",
            "MIT (openai/whisper)",
        ),
        DataSource(
            "instruction_data",
            f"{_RASBT}/ch07/01_main-chapter-code/instruction-data.json",
            "7e09a9af353722ca15c18bc580f093f9c39d3178335a75177319cb1e1d163944",
            "instruction-data.json",
            "Apache-2.0 (rasbt/LLMs-from-scratch)",
        ),
        DataSource(
            "instruction_data_with_preference",
            f"{_RASBT}/ch07/04_preference-tuning-with-dpo/instruction-data-with-preference.json",
            "305315abf14f65fa42c01a0877572f832606571c2a7d49f152ac1d758b16756e",
            "instruction-data-with-preference.json",
            "Apache-2.0 (rasbt/LLMs-from-scratch); generated with Llama 3.1 70B",
        ),
        DataSource(
            "the_verdict",
            f"{_RASBT}/ch02/01_main-chapter-code/the-verdict.txt",
            "b41e41a68f0398a3154ae69e2e4c0e2694e17fe0d66730536837f1b01935b31f",
            "the-verdict.txt",
            "public domain (Edith Wharton); repository Apache-2.0",
        ),
    ]
}


class DataDownloadError(RuntimeError):
    """A dataset could not be obtained, or the bytes found do not match the registry."""


def default_cache_dir() -> Path:
    """``$LLMSCRATCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/llmscratch``, else ``~/.cache/llmscratch``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "llmscratch"


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _source(name: str) -> DataSource:
    if name not in REGISTRY:
        raise ValueError(f"unknown dataset name {name!r}; known names: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def _offline_hint(source: DataSource) -> str:
    return f"For offline use, set {MIRROR_ENV} to a folder holding {source.filename}."


def _from_mirror(source: DataSource, mirror: Path) -> Path | None:
    """The verified mirror copy of ``source``, None if the mirror lacks it.

    Raises DataDownloadError if the mirror holds the file with the wrong SHA-256.
    """
    for filename in dict.fromkeys([source.filename, Path(urlparse(source.url).path).name]):
        path = mirror / filename
        if path.is_file():
            actual = sha256_file(path)
            if actual != source.sha256:
                raise DataDownloadError(
                    f"mirror file {path} for dataset {source.name!r} has the wrong SHA-256: "
                    f"expected {source.sha256}, got {actual}. Replace it with the file from "
                    f"{source.url} or unset {MIRROR_ENV}."
                )
            return path
    return None


def _is_transient(exc: Exception) -> bool:
    """Worth retrying: connection errors, timeouts and 5xx answers (not 404 and other 4xx)."""
    if isinstance(exc, requests.HTTPError):
        return exc.response is not None and exc.response.status_code >= 500
    transient = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
    return isinstance(exc, transient)


def _download(
    source: DataSource,
    url: str,
    dest: Path,
    *,
    timeout: tuple[float, float],
    session: requests.Session,
) -> None:
    """One attempt: stream ``url`` into a temp file beside ``dest``, verify, rename into place."""
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as f, session.get(url, stream=True, timeout=timeout) as response:
            response.raise_for_status()
            total = int(response.headers.get("Content-Length", 0)) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=source.name, disable=None) as bar:
                for chunk in response.iter_content(chunk_size=1 << 16):
                    f.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if digest.hexdigest() != source.sha256:
            raise DataDownloadError(
                f"checksum mismatch: expected sha256 {source.sha256}, got {digest.hexdigest()}"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)  # a no-op after a successful os.replace


def fetch(
    name: str,
    *,
    cache_dir: str | os.PathLike | None = None,
    mirror: str | os.PathLike | None = None,
    url: str | None = None,
    timeout: tuple[float, float] = (5.0, 30.0),
    retries: int = 3,
    backoff: float = 0.5,
    session: requests.Session | None = None,
) -> Path:
    """Return the local path of a verified copy of dataset ``name``.

    Looks in the cache, then the mirror, then downloads (see the module docstring).
    A cached file whose SHA-256 is wrong is deleted and fetched again.

    Args:
        name: a key of :data:`REGISTRY`.
        cache_dir: cache folder; default :func:`default_cache_dir`.
        mirror: offline mirror folder; default ``$LLMSCRATCH_DATA_MIRROR`` (unset or empty:
            no mirror). A mirror hit returns the path inside the mirror (no copy).
        url: download from here instead of the registry URL (a local server, another host);
            the registry SHA-256 still applies.
        timeout: ``(connect, read)`` timeouts in seconds for each request.
        retries: download attempts (>= 1); connection errors, timeouts and 5xx answers are
            retried after ``backoff``, ``2 * backoff``, ... seconds, 4xx answers and checksum
            mismatches are not.
        backoff: base wait between attempts, in seconds.
        session: a ``requests.Session`` to use (default: a new one, closed afterwards).

    Raises:
        ValueError: unknown ``name``, ``retries < 1`` or ``backoff < 0``.
        DataDownloadError: the mirror file has the wrong SHA-256, or every download attempt
            failed; the message names the dataset, URL, cache path and the mirror variable,
            and the underlying exception is chained.
    """
    source = _source(name)
    if retries < 1:
        raise ValueError(f"retries must be >= 1, got {retries}")
    if backoff < 0:
        raise ValueError(f"backoff must be >= 0 seconds, got {backoff}")
    url = url or source.url
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    dest = cache / source.filename

    # 1. The cache.
    if dest.is_file():
        if sha256_file(dest) == source.sha256:
            return dest
        dest.unlink()  # stale or corrupted: fetch it again

    # 2. The offline mirror.
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV)
    if mirror:
        found = _from_mirror(source, Path(mirror))
        if found is not None:
            return found

    # 3. The network.
    cache.mkdir(parents=True, exist_ok=True)
    http = session or requests.Session()
    try:
        for attempt in range(1, retries + 1):
            if attempt > 1:
                time.sleep(backoff * 2 ** (attempt - 2))  # 0.5 s, 1 s, 2 s, ...
            try:
                _download(source, url, dest, timeout=timeout, session=http)
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
        f"(gave up after {attempt} of {retries} attempts): {error}. {_offline_hint(source)}"
    ) from error


def load_text(name: str, **fetch_kwargs) -> str:
    """The dataset ``name`` decoded as UTF-8 text; ``fetch_kwargs`` go to :func:`fetch`."""
    return fetch(name, **fetch_kwargs).read_text(encoding="utf-8")


# --------------------------------------------------------------------------- names cleaning

_REASONS = ("non_alpha", "too_short", "too_long", "duplicate")
_A_TO_Z = re.compile(r"[a-z]*")  # '*' so that an empty line counts as too short


@dataclass(frozen=True)
class NamesReport:
    """What :func:`clean_names` kept and dropped; ``examples`` maps a reason to <= 5 entries."""

    total: int
    kept: int
    dropped_non_alpha: int
    dropped_too_short: int
    dropped_too_long: int
    dropped_duplicate: int
    examples: dict[str, tuple[str, ...]] = field(default_factory=dict)


def clean_names(raw: Iterable[str], *, min_len: int = 2, max_len: int = 15) -> tuple[list[str], NamesReport]:
    """Strip and lowercase each name; keep it if it is a-z only, in bounds and new.

    The default bounds, 2 to 15 letters, keep every real name in both name lists
    (makemore's ``names_en`` spans 2 to 15 letters; the longest Indian name is
    ``warnakulasuriya``, 15) and drop typing noise such as ``lllllllllllllllllll`` (19).
    The first occurrence of a duplicate is kept and the input order is preserved.

    Example: ``[" Asha", "asha", "al0k", "x"] -> ["asha"]`` (one duplicate, one non-alpha,
    one too short).

    Raises:
        ValueError: ``min_len < 1`` or ``max_len < min_len``.
    """
    if min_len < 1:
        raise ValueError(f"min_len must be >= 1, got {min_len}")
    if max_len < min_len:
        raise ValueError(f"max_len must be >= min_len ({min_len}), got {max_len}")
    names: list[str] = []
    seen: set[str] = set()
    dropped: dict[str, list[str]] = {reason: [] for reason in _REASONS}
    for entry in raw:
        name = entry.strip().lower()
        if not _A_TO_Z.fullmatch(name):
            reason = "non_alpha"
        elif len(name) < min_len:
            reason = "too_short"
        elif len(name) > max_len:
            reason = "too_long"
        elif name in seen:
            reason = "duplicate"
        else:
            names.append(name)
            seen.add(name)
            continue
        dropped[reason].append(entry.strip())
    report = NamesReport(
        total=len(names) + sum(len(entries) for entries in dropped.values()),
        kept=len(names),
        dropped_non_alpha=len(dropped["non_alpha"]),
        dropped_too_short=len(dropped["too_short"]),
        dropped_too_long=len(dropped["too_long"]),
        dropped_duplicate=len(dropped["duplicate"]),
        examples={reason: tuple(entries[:5]) for reason, entries in dropped.items() if entries},
    )
    return names, report


def load_indian_names(
    *, min_len: int = 2, max_len: int = 15, **fetch_kwargs
) -> tuple[list[str], NamesReport]:
    """Fetch ``indian_names_raw`` (CSV, header ``,Name``) and :func:`clean_names` its Name column.

    ``fetch_kwargs`` go to :func:`fetch`. With the default bounds this gives 6,466 names
    (6,486 rows; 19 with characters outside a-z and one of 19 letters are dropped).

    Raises:
        ValueError: the CSV has no ``Name`` column, or bad bounds (see :func:`clean_names`).
    """
    path = fetch("indian_names_raw", **fetch_kwargs)
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if "Name" not in (reader.fieldnames or []):
            raise ValueError(f"{path} has no 'Name' column (header: {reader.fieldnames})")
        return clean_names((row["Name"] for row in reader), min_len=min_len, max_len=max_len)


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m llmscratch.data {list, fetch [NAME ...]}``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m llmscratch.data", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="show the registry")
    fetch_cmd = commands.add_parser("fetch", help="download datasets (all if no NAME)")
    fetch_cmd.add_argument("names", nargs="*", metavar="NAME", help=", ".join(REGISTRY))
    args = parser.parse_args(argv)

    if args.command == "list":
        for source in REGISTRY.values():
            print(f"{source.name:<34} {source.filename:<40} {source.licence}")
        return 0

    unknown = [name for name in args.names if name not in REGISTRY]
    if unknown:
        parser.error(f"unknown dataset(s) {', '.join(unknown)}; known: {', '.join(REGISTRY)}")
    for name in args.names or REGISTRY:
        try:
            path = fetch(name)
        except DataDownloadError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"{name:<34} {path}  {path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
