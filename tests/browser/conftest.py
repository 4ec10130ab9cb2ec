"""Browser tests of the built site: they need a build, so the unit tests skip them.

``scripts/browser_test.sh`` runs them after ``scripts/book.sh``; it sets
``LLMSCRATCH_SITE`` to the built HTML folder (``_build/html`` unless told otherwise).
Without that variable nothing in this folder is collected.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"

if not os.environ.get("LLMSCRATCH_SITE"):
    collect_ignore_glob = ["test_*.py"]
elif str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))  # site_browser: the shared server and browser helpers
