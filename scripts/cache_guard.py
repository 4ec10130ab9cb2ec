"""Clear the executed-page cache when the code the pages run has changed.

jupyter-cache keys a page on its own code cells only. A page whose cells did not
change but whose imported ``llmscratch`` code did would be served stale outputs; this
script stores a hash of the package sources, the requirements and ``scripts/book.sh``
(which sets the kernel's environment) next to the cache and deletes the cache when the
hash differs. It also deletes Sphinx's saved environment (``_build/.doctrees``) and the
executed notebooks: otherwise Sphinx would consider the unchanged pages up to date, never
ask for them to be executed again, and keep rendering their old outputs.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "_build" / ".jupyter_cache"
# Everything that holds executed outputs; all of it goes when the code changes.
STALE = (CACHE, ROOT / "_build" / ".doctrees", ROOT / "_build" / "jupyter_execute")
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
        if any(path.exists() for path in STALE):
            print("== package code changed: clearing the executed pages, so every page runs again")
        for path in STALE:
            if path.exists():
                shutil.rmtree(path)
        STAMP.parent.mkdir(parents=True, exist_ok=True)
        STAMP.write_text(want + "\n")


if __name__ == "__main__":
    main()
