"""PostgreSQL restarted during a register push: the main system (gunicorn)
runs on a private PostgreSQL cluster that the test stops (immediate mode, as
a crash) and starts again while this process, as the register node, keeps
pushing its entries. Afterwards every entry and receipt is on the main
system exactly once, in order, and its stock equals the sales.

And the processes carry on without a restart: the connections of the web,
the worker and the scheduler terminated, then PostgreSQL restarted, and the
same worker runs the next jobs and the web answers no 500."""
from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import pytest
import requests
from rest_framework.test import APIClient

from pos.models import SyncEntry
from pos.services.node import MainUnreachable, register_push
from tests.pos.realsystems import Main, create_register, expected_on_hand, provision, sales
from tests.support.processes import manage, process_env, started_server
from tests.support.services import private_postgres

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_postgres_restart_during_a_push_loses_no_entry_and_applies_none_twice(settings):
    with private_postgres(durable_commits=True) as pg:
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


def _terminate_other_backends(pg, database: str) -> int:
    """pg_terminate_backend on every connection to `database` (the web's, the
    worker's, the scheduler's): what a DBA, a failover or a proxy does."""
    import psycopg

    with psycopg.connect(pg.database_url("postgres"), autocommit=True) as conn:
        return len(conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = %s AND pid <> pg_backend_pid()", [database]).fetchall())


def test_a_worker_and_the_web_carry_on_after_their_connections_die_and_after_a_postgres_restart():
    """The same worker process, never restarted, dispatches the changes of
    sales made after its connection was terminated and after PostgreSQL
    restarted; the web answers every sale after the restart with 201 (no
    500 per process for a dead kept connection); /healthz says the worker
    reaches the database again."""
    from tests.reliability.systems import seed, sell, state
    from tests.support.processes import started_command, started_worker, wait_until
    from tests.support.services import private_redis

    with private_postgres(durable_commits=True) as pg, private_redis() as redis:
        env = process_env(database=pg.create_database("posinv_h_pgconn"), redis=False, REDIS_URL=redis.url,
                          POSINV_CHANGES_SWEEP_SECONDS="1", POSINV_SCHEDULER_TICK_SECONDS="0.5",
                          POSINV_HEARTBEAT_SECONDS="1", POSINV_DEAD_AFTER_SECONDS="5",
                          POSINV_REPORTS_ROLLUP_MINUTES="0.02")  # a recorded job run every ~1 s
        manage("migrate", "--noinput", env=env)
        tokens = seed(env, tills=["T1"])
        with started_server(env=env, migrate=False, name="pgconn-web") as url, \
                started_worker(env=env, name="pgconn-worker") as worker, \
                started_command("run_scheduler", "--interval", "0.5", env=env, name="pgconn-sched"):
            sold = iter(range(1, 1000))

            def sell_and_drain(count: int) -> list[int]:
                """Sell; then the worker must dispatch the changes and run a recorded job (the
                rollup's job run, which starts outside any transaction) successfully."""
                since = rollup_runs(env)[-1][0] if rollup_runs(env) else 0
                statuses = [sell(url, tokens["T1"], till="T1", n=next(sold)).status_code for _ in range(count)]
                wait_until(lambda: state(env)["changes_waiting"] == 0, timeout=30, interval=0.5,
                           message=f"the worker to dispatch the changes; worker log:\n{worker.log()}")
                wait_until(lambda: [r for r in rollup_runs(env) if r[0] > since and r[1] == "succeeded"],
                           timeout=30, interval=0.5,
                           message=lambda: f"a rollup run to succeed: {rollup_runs(env)[-3:]}\n{worker.log()}")
                return statuses

            # given a worker and a web process that have each used their database connection
            assert sell_and_drain(10) == [201] * 10
            # when every connection to the database is terminated under them
            assert _terminate_other_backends(pg, "posinv_h_pgconn") >= 3
            fault_ends = [datetime.now(UTC)]
            # then the next sales are answered and the same worker dispatches their changes
            after_terminate = sell_and_drain(10)
            # when PostgreSQL crashes and comes back
            pg.stop("immediate")
            time.sleep(1)
            pg.start()
            fault_ends.append(datetime.now(UTC))
            # then the web answers every sale (each gunicorn worker finds its kept connection dead and
            # reconnects instead of answering 500) and the same worker dispatches again
            after_restart = sell_and_drain(20)
            healthz = wait_until(lambda: (answer := requests.get(f"{url}/healthz", timeout=5)).status_code == 200
                                 and answer, timeout=30, interval=0.5, message="/healthz to be 200 again")
            final = state(env)
            runs = rollup_runs(env)
            worker_alive = worker.alive()
            worker_log = worker.log(200000)

    assert after_terminate == [201] * 10
    assert after_restart == [201] * 20
    assert worker_alive, worker_log[-3000:]
    assert healthz.json()["checks"]["workers"] == "ok"
    assert "connection is closed" not in worker_log
    assert (final["live_sales"], final["changes_waiting"], final["drift"]) == (40, 0, [])
    # no job that started after a fault failed: its first query found the dead connection and opened a
    # new one (a job in flight at the fault may fail: it is logged at once)
    assert jobs_failed_after(worker_log, fault_ends, grace_seconds=0.3) == []
    assert [r for r in runs if r[1] == "succeeded"], runs


def jobs_failed_after(log: str, fault_ends: list[datetime], *, grace_seconds: float) -> list[str]:
    """The worker log's job failures logged more than `grace_seconds` after a fault's end and before the next."""
    failed = []
    for line in log.splitlines():
        if "exception raised while executing" not in line or not line.startswith("{"):
            continue
        at = datetime.fromisoformat(json.loads(line)["ts"])
        before = [end for end in fault_ends if end <= at]
        if before and (at - before[-1]).total_seconds() > grace_seconds:
            failed.append(line[:300])
    return failed


ROLLUP_RUNS = """
import json
from backoffice.jobs import ROLLUP_JOB
from posinv.models import JobRun
print("RUNS=" + json.dumps(list(JobRun.objects.filter(name=ROLLUP_JOB).order_by("pk")
                                .values_list("pk", "status", "error"))))
"""


def rollup_runs(env: dict) -> list[list]:
    """[pk, status, error] of every recorded rollup run, oldest first."""
    import re

    out = manage("shell", "-c", ROLLUP_RUNS, env=env).stdout
    return json.loads(re.search(r"RUNS=(.+)", out).group(1))
