#!/usr/bin/env bash
# Build the whole book as one PDF: _build/pdf/llm-from-scratch.pdf
#
# Renders every page into one HTML page (Sphinx's singlehtml builder; executed pages come
# from the same cache as scripts/book.sh, so after a site build nothing is re-run), then
# prints it with headless Chromium once MathJax has typeset the math. Needs Chromium and
# its ChromeDriver (Debian: apt-get install chromium chromium-driver); no TeX.
set -euo pipefail
source "$(dirname "$0")/env.sh"
export LLMSCRATCH_PROGRESS=0
unset MPLBACKEND   # figures are drawn by the kernel's inline backend (see book.sh)
bash scripts/mathjax.sh
python -m llmscratch.data fetch > /dev/null
python scripts/cache_guard.py
echo "== rendering the book as one page"
jupyter-book build . --builder singlehtml -W --keep-going "$@"
echo "== printing it with headless Chromium"
root="$(python -c 'import yaml; print(yaml.safe_load(open("_toc.yml"))["root"])')"
python scripts/print_pdf.py _build/singlehtml "$root.html" _build/pdf/llm-from-scratch.pdf
