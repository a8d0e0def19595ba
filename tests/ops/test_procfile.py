"""The Procfile runs a whole system on one machine under honcho: web,
worker(s) and scheduler come up against PostgreSQL and Redis, /healthz is
200, /metrics sees the workers, and the scheduler's ledger verification
arrives through a worker."""
from __future__ import annotations

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import (
    PYTHON,
    create_database,
    database_url,
    drop_database,
    free_port,
    manage,
    process_env,
    spawn,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def samples(url: str) -> dict:
    text = requests.get(f"{url}/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_honcho_runs_web_two_workers_and_the_scheduler_from_the_procfile(redis_conn):
    env = process_env(database=database_url("procfile"), POSINV_SCHEDULER_TICK_SECONDS="0.5")
    create_database(env["DATABASE_URL"])
    try:
        manage("migrate", "--noinput", env=env)
        port = free_port()
        honcho = spawn([PYTHON, "-m", "honcho", "start", "-f", "Procfile", "-p", str(port), "-c", "worker=2"],
                       env=env, name="honcho")
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: requests.get(f"{url}/healthz?scope=web", timeout=2).ok, timeout=60,
                       message=f"the Procfile's web process; log:\n{honcho.log()}")
            wait_until(lambda: samples(url)[("posinv_rq_workers", ())] == 2, timeout=30,
                       message="two workers registered")
            health = wait_until(lambda: (answer := requests.get(f"{url}/healthz", timeout=2)).ok and answer,
                                timeout=30, message=f"/healthz 200; log:\n{honcho.log()}")
            assert health.json()["checks"] == {"database": "ok", "migrations": "ok", "redis": "ok", "workers": "ok"}
            # The scheduler offers the daily ledger verification at once on a fresh system; a worker runs it.
            wait_until(lambda: samples(url).get(("posinv_ledger_drifting_pairs", ())) == 0, timeout=30,
                       message=f"the scheduled verification; log:\n{honcho.log()}")
            assert honcho.alive()
        finally:
            honcho.stop(timeout=20)
        assert "web.1" in honcho.log(20000) and "worker.2" in honcho.log(20000) and "scheduler.1" in honcho.log(20000)
    finally:
        drop_database(env["DATABASE_URL"])
