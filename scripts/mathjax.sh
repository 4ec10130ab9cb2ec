#!/usr/bin/env bash
# Install the pinned MathJax (npm package "mathjax", see scripts/mathjax/package.json and
# its lock file) into .venv/mathjax, so the site serves MathJax itself and reads offline.
# Re-installs only when the pinned version changes. Needs Node.js's npm.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
dest=.venv/mathjax
stamp="$dest/.installed"
want="$(cat scripts/mathjax/package.json scripts/mathjax/package-lock.json | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
   && [ -f "$dest/node_modules/mathjax/es5/tex-mml-chtml.js" ]; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "npm not found: install Node.js (https://nodejs.org), which the book uses to install MathJax" >&2
  exit 1
fi
echo "== installing MathJax (npm ci) into $dest"
rm -rf "$dest"
mkdir -p "$dest"
cp scripts/mathjax/package.json scripts/mathjax/package-lock.json "$dest/"
npm ci --prefix "$dest" --no-audit --no-fund --ignore-scripts --loglevel=error
echo "$want" > "$stamp"
