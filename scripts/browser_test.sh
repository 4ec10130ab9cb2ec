#!/usr/bin/env bash
# Test the built site in headless Chromium (tests/browser): every page loads without
# console errors or network access outside the site, its math is typeset, its images
# load, its cells show no errors and its links resolve; every chapter has its header,
# cite box and exercises with solutions that open; search finds "attention".
# Screenshots of each chapter's first screen land in _build/screenshots/.
#
# Needs the built site (scripts/book.sh) and Chromium with its ChromeDriver
# (Debian: apt-get install chromium chromium-driver). Extra arguments go to pytest.
#   LLMSCRATCH_SITE=/path/to/html scripts/browser_test.sh   # test another build
set -euo pipefail
source "$(dirname "$0")/env.sh"
export LLMSCRATCH_SITE="${LLMSCRATCH_SITE:-$ROOT/_build/html}"
if [ ! -f "$LLMSCRATCH_SITE/index.html" ]; then
  echo "no site in $LLMSCRATCH_SITE: run scripts/book.sh first" >&2
  exit 1
fi
exec python -m pytest tests/browser -p no:cacheprovider "$@"
