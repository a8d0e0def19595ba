"""PostgreSQL restarted during a register push: the main system (gunicorn)
runs on a private PostgreSQL cluster that the test stops (immediate mode, as
a crash) and starts again while this process, as the register node, keeps
pushing its entries. Afterwards every entry and receipt is on the main
system exactly once, in order, and its stock equals the sales."""
from __future__ import annotations

import threading
import time

import pytest
from rest_framework.test import APIClient

from pos.models import SyncEntry
from pos.services.node import MainUnreachable, register_push
from tests.pos.realsystems import Main, create_register, expected_on_hand, provision, sales
from tests.support.processes import manage, process_env, started_server
from tests.support.services import private_postgres

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_postgres_restart_during_a_push_loses_no_entry_and_applies_none_twice(settings):
    with private_postgres() as pg:
        env = process_env(database=pg.create_database("posinv_h_pgrestart"), redis=False)
        manage("migrate", "--noinput", env=env)
        main = Main(url="", env=env, staff_token=provision(env, locations=["S1"]))
        create_register(main, "R1", location="S1", records_per_run=20)
        with started_server(env=env, migrate=False, name="main-pg") as url:
            main.url = url
            # given a register node (this process) with 150 sales = 601 entries waiting
            settings.POSINV_NODE = "register"
            settings.POSINV_REGISTER_CODE = "R1"
            settings.POSINV_REGISTER_TOKEN = main.tokens["R1"]
            settings.MAIN_URL = url
            till = APIClient()
            till.credentials(HTTP_AUTHORIZATION=f"Token {main.tokens['R1']}")
            receipts = sales(150, prefix="R1")
            for receipt in receipts:
                assert till.post("/api/v1/till/receipts/", receipt, format="json").status_code == 201
            total = SyncEntry.objects.filter(state="pending").count()
            assert total == 1 + 150 * 4

            # when the main system's PostgreSQL crashes and comes back while the node pushes
            outage = threading.Event()

            def crash_and_recover():
                pg.stop("immediate")
                outage.set()
                time.sleep(2)
                pg.start()

            crasher = None
            failures, calls = [], 0
            deadline = time.monotonic() + 120
            while SyncEntry.objects.filter(state="pending").exists() and time.monotonic() < deadline:
                try:
                    register_push(max_calls=1)
                    calls += 1
                except MainUnreachable as exc:
                    failures.append(str(exc))
                    time.sleep(0.2)
                if crasher is None and calls >= 3:
                    crasher = threading.Thread(target=crash_and_recover)
                    crasher.start()
                    outage.wait(30)
            crasher.join(60)
            status = main.status("R1")
            got = main.receipts("R1")
            on_hand = main.on_hand("S1")
            verified = manage("verify_ledger", env=env, check=False)

    # then the push failed while the database was down, and resumed without loss or double
    assert failures, "the outage must have been seen by the node"
    assert all("HTTP 5" in f or "Connection" in f or "connect" in f.lower() for f in failures), failures[:3]
    assert SyncEntry.objects.filter(state="pending").count() == 0
    assert (status["last_applied_entry_no"], status["entries"], status["missing"]) == (601, {"applied": 601}, None)
    assert sorted(r["receipt_no"] for r in got) == [f"R1-{n:06d}" for n in range(1, 151)]
    assert sum(len(r["lines"]) for r in got) == 300
    assert on_hand == expected_on_hand(receipts)
    assert verified.returncode == 0, verified.stdout + verified.stderr
