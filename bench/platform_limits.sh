#!/usr/bin/env bash
# The platform-limits run (issue 17): a full catalogue sent to each platform's
# strict local fake at its documented limit, against the least time that
# limit allows. Each bench prints its own figures and "ratio"; run them in one
# sitting to compare. Needs DATABASE_URL (each bench makes a throw-away
# database next to it); REDIS_URL is not needed.
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/posinv_bench bash bench/platform_limits.sh
set -euo pipefail
cd "$(dirname "$0")"
PY=../.venv/bin/python
echo "machine: $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg); database: ${DATABASE_URL:?set DATABASE_URL}"
for bench in limits_shopify.py limits_woocommerce.py limits_baselinker.py; do
  echo "== $bench"
  $PY "$bench"
done
