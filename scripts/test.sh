#!/usr/bin/env bash
# Run the test suite (creating .venv and installing everything first if needed).
# Extra arguments go to pytest, e.g. scripts/test.sh tests/test_bpe.py -k merge
set -euo pipefail
source "$(dirname "$0")/env.sh"
exec python -m pytest "$@"
