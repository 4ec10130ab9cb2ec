#!/usr/bin/env bash
# Build the whole book into _build/html: create .venv and install what is needed,
# download (or take from $LLMSCRATCH_DATA_MIRROR) and verify every dataset, then execute
# every page and render the site. Warnings are errors. MathJax is installed from npm
# (scripts/mathjax.sh) and served from the site itself, so the site reads offline.
#
# Pages are cached (jupyter-cache in _build/.jupyter_cache) and re-executed only when
# their code changes; the cache is also cleared whenever the llmscratch package or the
# requirements change, so it never serves outputs the current code would not produce.
set -euo pipefail
source "$(dirname "$0")/env.sh"
export LLMSCRATCH_PROGRESS=0   # no progress bars in the built pages
# (no MPLBACKEND here: the kernels must use their inline backend, or plt.show() draws nothing)
bash scripts/mathjax.sh
echo "== data"
python -m llmscratch.data fetch
python scripts/cache_guard.py
echo "== executing and rendering the book"
jupyter-book build . --builder html -W --keep-going "$@"
echo "== the site is in $ROOT/_build/html/index.html"
