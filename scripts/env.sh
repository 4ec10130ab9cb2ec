# Sourced by book.sh and test.sh: make sure .venv exists and holds requirements.txt and
# the package, then activate it. Re-installs only when requirements.txt or pyproject.toml
# changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "== creating the virtual environment .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.llmscratch-installed
want="$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "== installing requirements.txt and the llmscratch package into .venv"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r requirements.txt
  .venv/bin/python -m pip install --quiet --no-deps -e .
  echo "$want" > "$stamp"
fi
# shellcheck disable=SC1091
source .venv/bin/activate
