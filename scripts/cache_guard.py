"""Clear the executed-page cache when the code the pages run has changed.

jupyter-cache keys a page on its own code cells only. A page whose cells did not
change but whose imported ``llmscratch`` code did would be served stale outputs; this
script stores a hash of the package sources, the requirements and ``scripts/book.sh``
(which sets the kernel's environment) next to the cache and deletes the cache when the
hash differs.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "_build" / ".jupyter_cache"
STAMP = ROOT / "_build" / ".llmscratch-code-hash"


def code_hash() -> str:
    h = hashlib.sha256()
    # book.sh sets the kernel's environment (e.g. the matplotlib backend), which changes
    # outputs without changing any cell.
    files = sorted((ROOT / "llmscratch").rglob("*.py")) + [
        ROOT / "requirements.txt",
        ROOT / "scripts" / "book.sh",
    ]
    for path in files:
        h.update(str(path.relative_to(ROOT)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def main() -> None:
    want = code_hash()
    have = STAMP.read_text().strip() if STAMP.exists() else None
    if have != want:
        if CACHE.exists():
            print("== package code changed: clearing the executed-page cache")
            shutil.rmtree(CACHE)
        STAMP.parent.mkdir(parents=True, exist_ok=True)
        STAMP.write_text(want + "\n")


if __name__ == "__main__":
    main()
