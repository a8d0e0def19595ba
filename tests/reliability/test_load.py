"""The short load run (CI): 30 s of 5 registers pushing and 4 live tills
selling against a real gunicorn server on PostgreSQL, while 2 real rqworkers
feed 3 fake carts over HTTP. Zero loss is asserted exactly; throughput and
p99 are printed (run with -s) and recorded in docs/reliability.md. The
long version is bench/soak.py (50 registers, 20 tills, 5 minutes)."""
from __future__ import annotations

import json
import os

import pytest
from django.conf import settings
from django.db import connection

from tests.support.loadrun import load_run

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.e2e, pytest.mark.slow]

SECONDS = float(os.environ.get("POSINV_LOAD_SECONDS", "30"))


def _test_database_url() -> str:
    s = connection.settings_dict
    host = f"{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}"
    return f"postgres://{s.get('USER') or 'postgres'}@{host}/{s['NAME']}"


def test_a_short_load_run_loses_nothing_and_the_carts_end_equal_to_the_ledger(transactional_db, rq_mode):
    result = load_run(database_url=_test_database_url(), redis_url=settings.REDIS_URL, registers=5, tills=4,
                      seconds=SECONDS, workers=2, web_workers=2, push_every=1.0, sell_every=0.5)
    print("LOAD " + json.dumps(result))
    # every pushed receipt and every sale is stored exactly once
    assert result["pushes"] > 0 and result["sales"] > 0
    assert result["receipts_missing"] == {}
    assert result["receipts_stored"] == result["receipts_sent"]
    assert result["entries_applied"] == result["entries_sent"]
    assert result["live_sales_stored"] == result["sales"]
    # the ledger invariant holds and each cart shows the ledger
    assert result["drift"] == []
    assert result["carts_converged"], result["cart_mismatches"]
    assert result["stack_failed"] == 0
    assert all(result["processes_alive"].values()), result["processes_alive"]
