"""Cold build of the whole book: total wall time and each page's execution time.

A cold build starts with no executed-page cache and no trained-model cache, as on a
fresh clone, so every page executes and every model trains. The build writes into a
temporary folder; the repository's own _build is left alone.

    python benchmarks/book_build.py            # needs the data (or LLMSCRATCH_DATA_MIRROR)

Prints one line per page, then one line of JSON:
``cold_build_seconds``, ``page_execution_seconds`` (page -> seconds) and
``ch1_ch2_execution_seconds`` (target: under 180 on 2 cores).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = re.compile(r"book/([\w.-]+)\.md: Executed notebook in ([\d.]+) seconds")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="llmscratch-bench-") as tmp:
        env = dict(os.environ, LLMSCRATCH_CACHE_DIR=str(Path(tmp) / "cache"), LLMSCRATCH_PROGRESS="0", MPLBACKEND="Agg")
        jb = Path(sys.executable).parent / "jupyter-book"
        cmd = [str(jb), "build", str(ROOT), "--path-output", str(Path(tmp) / "out"), "--builder", "html", "-W", "--keep-going"]
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        print(log[-4000:], file=sys.stderr)
        print(f"the book build failed (exit {proc.returncode})", file=sys.stderr)
        return 1
    pages = {name: float(s) for name, s in EXECUTED.findall(log)}
    for name, s in pages.items():
        print(f"{name:<28} executed in {s:7.1f} s")
    ch12 = sum(s for name, s in pages.items() if name.startswith(("01-", "02-")))
    print(f"chapters 1 and 2 together: {ch12:.1f} s (target < 180 s)")
    print(f"cold build of the whole book: {seconds:.1f} s")
    print(json.dumps({"cold_build_seconds": round(seconds, 1),
                      "page_execution_seconds": pages,
                      "ch1_ch2_execution_seconds": round(ch12, 1)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
