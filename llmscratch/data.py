"""Getting the data: a registry of datasets, a checked download cache, and names cleaning.

Taught in chapter 1, "Getting the data".

Every file the book uses is listed in :data:`REGISTRY` (read from ``registry.json``) with its upstream URL (pinned to a
commit where the host allows it), its SHA-256 and its size. :func:`fetch` returns a local
path to a verified copy, looking in three places in order (the machinery, and what it
does under faults, is in :mod:`llmscratch.download`):

1. the cache folder (``$LLMSCRATCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/llmscratch``, else
   ``~/.cache/llmscratch``);
2. an offline mirror folder named by ``$LLMSCRATCH_DATA_MIRROR`` (a folder holding the
   files under their registry ``filename``); a mirror hit returns the mirror's own path,
   nothing is copied;
3. the network, with ``requests``: streamed into a temporary file next to the cache entry,
   checked against the size and SHA-256, then moved into place with :func:`os.replace`, so
   a failed or interrupted download never leaves a half-written file behind.

Command line::

    python -m llmscratch.data list            # the registry
    python -m llmscratch.data fetch [NAME...] # download (all if no NAME) and print paths
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .download import fetch_source
from .sources import CACHE_ENV, MIRROR_ENV, DataDownloadError, DataSource, default_cache_dir, sha256_file
from .validate import check_int

__all__ = [
    "CACHE_ENV", "MIRROR_ENV", "REGISTRY", "DataDownloadError", "DataSource", "NamesReport",
    "clean_names", "default_cache_dir", "fetch", "load_indian_names", "load_text", "main",
    "sha256_file",
]

_REGISTRY_FILE = Path(__file__).with_name("registry.json")


def _load_registry(path: Path = _REGISTRY_FILE) -> dict[str, DataSource]:
    """The records of ``registry.json`` (a data file, not code: a new dataset there
    leaves the checkpoint cache keys of earlier chapters unchanged)."""
    records = json.loads(path.read_text(encoding="utf-8"))["sources"]
    fields = ("name", "url", "sha256", "size", "filename", "licence")
    return {r["name"]: DataSource(*(r[f] for f in fields)) for r in records}


REGISTRY: dict[str, DataSource] = _load_registry()


def _source(name: str) -> DataSource:
    if not isinstance(name, str):
        raise TypeError(f"name must be a str (a dataset name), got {type(name).__name__} {name!r}")
    if name not in REGISTRY:
        raise ValueError(f"unknown dataset name {name!r}; known names: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def fetch(name: str, **options) -> Path:
    """Return the local path of a verified copy of dataset ``name``.

    Looks in the cache, then the mirror, then downloads (see the module docstring).

    Args:
        name: a key of :data:`REGISTRY`.
        options: ``cache_dir``, ``mirror``, ``url``, ``timeout`` (seconds), ``retries``,
            ``backoff`` (seconds), ``deadline`` (seconds) and ``session``, passed to
            :func:`llmscratch.download.fetch_source`, which documents them.

    Raises:
        TypeError: ``name`` is not a str, or an option is unknown or of the wrong type.
        ValueError: unknown ``name`` (the message lists the known names), or an option out
            of range.
        DataDownloadError: the file could not be obtained (see ``fetch_source``).
    """
    return fetch_source(_source(name), **options)


def load_text(name: str, **fetch_kwargs) -> str:
    """The dataset ``name`` decoded as UTF-8 text; ``fetch_kwargs`` go to :func:`fetch`.

    Raises: as :func:`fetch`.
    """
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


def clean_names(
    raw: Iterable[str], *, min_len: int = 2, max_len: int = 15
) -> tuple[list[str], NamesReport]:
    """Strip and lowercase each name; keep it if it is a-z only, in bounds and new.

    The default bounds, 2 to 15 letters, keep every real name in both name lists
    (makemore's ``names_en`` spans 2 to 15 letters; the longest Indian name is
    ``warnakulasuriya``, 15) and drop typing noise such as ``lllllllllllllllllll`` (19).
    The first occurrence of a duplicate is kept and the input order is preserved.

    Example: ``[" Asha", "asha", "al0k", "x"] -> ["asha"]`` (one duplicate, one
    non-alpha, one too short).

    Args:
        raw: the names, an iterable of str (a single str is refused, not read
            letter by letter).
        min_len, max_len: the shortest and longest name kept, in letters (ints,
            1 <= min_len <= max_len).

    Raises:
        TypeError: ``raw`` is a str or bytes or not iterable, an entry is not a
            str, or a bound is not an int.
        ValueError: ``min_len < 1`` or ``max_len < min_len``.
    """
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Iterable):
        raise TypeError("raw must be an iterable of names (str), "
                        f"got {type(raw).__name__} {raw!r:.40}")
    check_int("min_len", min_len, minimum=1)
    check_int("max_len", max_len)
    if max_len < min_len:
        raise ValueError(f"max_len must be >= min_len ({min_len}), got {max_len}")
    names: list[str] = []
    seen: set[str] = set()
    dropped: dict[str, list[str]] = {reason: [] for reason in _REASONS}
    for i, entry in enumerate(raw):
        if not isinstance(entry, str):
            raise TypeError(f"raw[{i}] must be a str, "
                            f"got {type(entry).__name__} {entry!r}")
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
        examples={
            reason: tuple(entries[:5]) for reason, entries in dropped.items() if entries
        },
    )
    return names, report


def load_indian_names(
    *, min_len: int = 2, max_len: int = 15, **fetch_kwargs
) -> tuple[list[str], NamesReport]:
    """Fetch ``indian_names_raw`` (CSV, header ``,Name``) and :func:`clean_names` its Name column.

    ``fetch_kwargs`` go to :func:`fetch`. With the default bounds this gives 6,466 names
    (6,486 rows; 19 with characters outside a-z and one of 19 letters are dropped).

    Raises:
        TypeError, ValueError: bad bounds (see :func:`clean_names`), checked before fetching.
        ValueError: the CSV has no ``Name`` column.
        DataDownloadError: as :func:`fetch`.
    """
    clean_names([], min_len=min_len, max_len=max_len)  # check the bounds before any download
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
