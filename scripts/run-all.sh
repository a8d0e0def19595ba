#!/usr/bin/env bash
# `make run`: migrate, demo data, then web + scheduler (+ RQ workers with REDIS_URL).
# Stops everything it started on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export DEBUG="${DEBUG:-1}"
PORT="${PORT:-8000}"

$PY manage.py migrate --noinput
$PY manage.py demo_data

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

if [ -n "${REDIS_URL:-}" ]; then
  $PY manage.py run_worker high default low &
  pids+=($!)
  echo "RQ worker started (queues high, default, low)."
else
  echo "No REDIS_URL: jobs run in-process."
fi
$PY manage.py run_scheduler &
pids+=($!)
echo "Serving on http://127.0.0.1:${PORT}/admin/ (API: /api/v1/, docs: /api/docs/)"
$PY manage.py runserver "127.0.0.1:${PORT}" --noreload &
pids+=($!)
wait -n "${pids[@]}"
