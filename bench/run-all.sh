#!/usr/bin/env bash
# `make bench`: every benchmark in bench/ (each prints its figures and ratios).
# On PostgreSQL when DATABASE_URL is set (each bench uses a throw-away
# database next to it), else on SQLite. Record results in bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")"
PY=../.venv/bin/python
echo "machine: $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg); database: ${DATABASE_URL:-sqlite}"
for bench in ledger.py articles_import.py $(ls *.py | grep -v -e '^_' -e '^ledger.py$' -e '^articles_import.py$' || true); do
  echo "== $bench"
  $PY "$bench"
done
