"""Where a verified data file lives: its registry record, the cache folder and the offline mirror.

Used by :mod:`llmscratch.download` (chapter 1, "Getting the data"): a
:class:`~llmscratch.sources.DataSource` pins a file's URL, SHA-256 and size; before anything is downloaded,
the cache folder (:func:`~llmscratch.sources.default_cache_dir`) and then the offline mirror folder named by
``$LLMSCRATCH_DATA_MIRROR`` are searched for a copy with exactly that size and hash. A
mirror that is not a folder, or that holds a wrong file, is an error
(:class:`~llmscratch.sources.DataDownloadError`): a mirror is set on purpose, so it is never silently skipped.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from .validate import check_int

CACHE_ENV = "LLMSCRATCH_CACHE_DIR"
MIRROR_ENV = "LLMSCRATCH_DATA_MIRROR"


@dataclass(frozen=True)
class DataSource:
    """One downloadable file: where it lives, what it hashes to, its size and its licence.

    Raises:
        TypeError, ValueError: a field of the wrong type, a ``sha256`` that is not 64 hex
            digits, a negative ``size``, or a ``filename`` that is not a plain file name.
    """

    name: str  # registry key, e.g. "tinyshakespeare"
    url: str  # upstream URL
    sha256: str  # hex digest of the exact bytes
    size: int  # exact size in bytes; a download stops as soon as it exceeds this
    filename: str  # name in the cache and in the mirror folder
    licence: str  # short licence note

    def __post_init__(self) -> None:
        for field_name in ("name", "url", "sha256", "filename", "licence"):
            if not isinstance(getattr(self, field_name), str):
                raise TypeError(f"DataSource.{field_name} must be a str, got {getattr(self, field_name)!r}")
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(f"DataSource.sha256 must be 64 lowercase hex digits, got {self.sha256!r}")
        check_int("DataSource.size", self.size, minimum=0)
        if not self.name or self.filename in ("", ".", "..") or re.search(r"[/\\\0]", self.filename):
            raise ValueError(
                f"DataSource needs a name and a plain file name, got {self.name!r}, {self.filename!r}"
            )


class DataDownloadError(RuntimeError):
    """A dataset could not be obtained, or the bytes found do not match the registry."""


def default_cache_dir() -> Path:
    """``$LLMSCRATCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/llmscratch``, else ``~/.cache/llmscratch``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "llmscratch"


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 digest of a file, read in 1 MiB chunks (raises ``OSError`` if unreadable)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _stat(path: Path) -> os.stat_result | None:
    """``os.stat(path)``, None if nothing is there; other ``OSError``\\ s propagate."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


# --------------------------------------------------------------------------- cache and mirror


def _cached(source: DataSource, dest: Path) -> bool:
    """True if ``dest`` holds the verified file; removes a wrong one if it can.

    A file that cannot be read (or a directory in its place) counts as a miss: the
    download's write step replaces it or names it in its error.
    """
    try:
        st = _stat(dest)
        if st is None or not stat.S_ISREG(st.st_mode):
            return False
        if st.st_size == source.size and sha256_file(dest) == source.sha256:
            return True
        dest.unlink()  # stale or corrupted: fetch it again
    except OSError:
        pass
    return False


def _mirror_folder(mirror: str | os.PathLike | None) -> tuple[Path, str] | None:
    """The mirror folder to consult and a phrase saying where it came from; None for none.

    Raises:
        DataDownloadError: the mirror names a missing folder, a file, or cannot be read.
    """
    if mirror is None:
        value, origin = os.environ.get(MIRROR_ENV, ""), f"${MIRROR_ENV}"
    else:
        value, origin = os.fspath(mirror), "the mirror argument"
    if not value:  # unset or empty: no mirror
        return None
    folder = Path(value)
    try:
        st = _stat(folder)
    except OSError as exc:
        raise DataDownloadError(f"cannot read the mirror folder {folder} ({origin}): {exc}") from exc
    problem = "does not exist" if st is None else None if stat.S_ISDIR(st.st_mode) else "is not a folder"
    if problem:
        raise DataDownloadError(
            f"the data mirror {folder} ({origin}) {problem}. Point {MIRROR_ENV} at the folder "
            f"holding the data files, or unset it to download them."
        )
    return folder, origin


def _mirror_names(source: DataSource) -> list[str]:
    return list(dict.fromkeys([source.filename, Path(urlparse(source.url).path).name]))


def _from_mirror(source: DataSource, folder: Path, origin: str) -> Path | None:
    """The verified mirror copy of ``source``, None if the mirror lacks it.

    Raises:
        DataDownloadError: the mirror holds the file with the wrong size or SHA-256, or it
            cannot be read.
    """
    for filename in _mirror_names(source):
        path = folder / filename
        fix = f"Replace it with the file from {source.url} or unset {MIRROR_ENV}."
        try:
            st = _stat(path)
            if st is None:
                continue
            if not stat.S_ISREG(st.st_mode):
                raise DataDownloadError(f"mirror path {path} ({origin}) is not a regular file. {fix}")
            if st.st_size != source.size:
                raise DataDownloadError(
                    f"mirror file {path} for dataset {source.name!r} has the wrong size: expected "
                    f"{source.size:,} bytes, found {st.st_size:,}. {fix}"
                )
            actual = sha256_file(path)
        except OSError as exc:
            raise DataDownloadError(f"cannot read mirror file {path} ({origin}): {exc}") from exc
        if actual != source.sha256:
            raise DataDownloadError(
                f"mirror file {path} for dataset {source.name!r} has the wrong SHA-256: "
                f"expected {source.sha256}, got {actual}. {fix}"
            )
        return path
    return None
