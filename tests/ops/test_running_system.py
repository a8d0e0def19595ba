"""The dashboard, /healthz and /metrics against a running system: gunicorn
on 127.0.0.1, PostgreSQL, Redis and real rqworker processes. Sales pushed
over HTTP with a register token; the worker stopped and started again
while a job waits."""
from __future__ import annotations

import re
import socket

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.pos.factories import receipt_entries
from tests.pos.realsystems import create_register, main_system
from tests.support.processes import manage, started_worker, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

ADMIN = """
from django.contrib.auth import get_user_model
get_user_model().objects.create_superuser("ops", "ops@example.com", "ops-pass-123")
"""


def metrics(url: str) -> dict:
    text = requests.get(f"{url}/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def login(url: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{url}/admin/login/", timeout=10)
    answer = session.post(f"{url}/admin/login/?next=/ops/health/", timeout=10, data={
        "username": "ops", "password": "ops-pass-123", "csrfmiddlewaretoken": session.cookies["csrftoken"],
        "next": "/ops/health/"})
    assert answer.url.endswith("/ops/health/"), answer.text[:500]
    return session


def section(page: str, anchor: str) -> str:
    return re.search(rf'id="{anchor}".*?</div>', page, re.S).group(0)


def register_row(page: str, code: str) -> str:
    return re.search(rf'<tr class="ops-row [^"]*" data-register="{code}".*?</tr>', page, re.S).group(0)


def test_dashboard_healthz_and_metrics_follow_a_running_system_with_real_workers(redis_conn):
    with main_system("opsmain") as main:
        token = create_register(main, "R1", location="S1", interval=60)
        manage("shell", "-c", ADMIN, env=main.env)
        session = login(main.url)

        health = requests.get(f"{main.url}/healthz", timeout=10).json()
        workers = health["checks"].pop("workers")
        assert health["checks"] == {"database": "ok", "migrations": "ok", "redis": "ok"}
        # no worker yet: fine while nothing waits, a failure once jobs wait (and /healthz?scope=web ignores it)
        assert (workers, health["status"]) in {("none running", "ok"), ("failed", "unavailable")}, health
        assert requests.get(f"{main.url}/healthz?scope=web", timeout=10).status_code == 200

        # No worker yet: the verification asked for from the dashboard waits in the queue.
        page = session.get(f"{main.url}/ops/health/", timeout=10).text
        assert "no transfer yet" in register_row(page, "R1")
        session.post(f"{main.url}/ops/health/verify-ledger/", timeout=10,
                     data={"csrfmiddlewaretoken": session.cookies["csrftoken"]})
        waiting = metrics(main.url)
        assert waiting[("posinv_rq_workers", ())] == 0
        assert waiting[("posinv_rq_queue_depth", (("queue", "low"),))] == 1
        assert waiting[("posinv_health_status", (("section", "queues"),))] == 2  # red: queued, nobody to run it
        queues = section(session.get(f"{main.url}/ops/health/", timeout=10).text, "ops-queues")
        depth = sum(value for (name, _), value in waiting.items() if name == "posinv_rq_queue_depth")
        assert f"{int(depth)} jobs queued and no worker running" in queues, queues  # ours + the ledger's wake-up

        with started_worker(env=main.env, name="ops-worker"):
            wait_until(lambda: metrics(main.url)[("posinv_rq_workers", ())] == 1, timeout=30,
                       message="the worker to register")
            wait_until(lambda: requests.get(f"{main.url}/healthz", timeout=10).json()["checks"]["workers"] == "ok",
                       timeout=30, message="/healthz to see a live worker that reaches the database")
            wait_until(lambda: ("posinv_ledger_drifting_pairs", ()) in metrics(main.url), timeout=30,
                       message="the waiting verification to run")
            pushed = requests.post(
                f"{main.url}/api/v1/registers/R1/entries/", timeout=30,
                headers={"Authorization": f"Token {token}"},
                json={"entries": receipt_entries(1, "R1-000001", [("SKU-001", "2", "1.20"), ("SKU-002", "1", "3.00")])},
            )
            assert pushed.status_code == 200 and pushed.json()["applied"] == 4

            running = metrics(main.url)
            page = session.get(f"{main.url}/ops/health/", timeout=10).text

        assert running[("posinv_rq_queue_depth", (("queue", "low"),))] == 0
        assert running[("posinv_ledger_drifting_pairs", ())] == 0
        assert running[("posinv_sync_entries_pending", (("register", "R1"),))] == 0
        assert running[("posinv_sync_entries_failed", (("register", "R1"),))] == 0
        assert running[("posinv_propagation_lag_seconds", (("path", "register"), ("stat", "max")))] > 0
        assert running[("posinv_stock_moves_per_minute", ())] >= 0.4  # 2 sale moves (+ opening stock) in 5 min
        assert running[("posinv_health_status", (("section", "registers"),))] == 0
        assert running[("posinv_health_status", (("section", "ledger"),))] == 0
        assert 'data-status="green"' in register_row(page, "R1")
        assert "1 workers running" in page
        assert "1 workers on 1 host" in page
        assert re.search(rf'<tr data-worker="[^"]+"><td>[^<]+</td><td>{re.escape(socket.gethostname())} / \d+</td>'
                         r'<td>(idle|busy)', page)
        # The worker deregistered on SIGTERM: the dashboard says so.
        wait_until(lambda: metrics(main.url)[("posinv_rq_workers", ())] == 0, timeout=15,
                   message="the worker to deregister")
        assert "no worker running" in session.get(f"{main.url}/ops/health/", timeout=10).text
